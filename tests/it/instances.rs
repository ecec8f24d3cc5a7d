//! Several `agency-sso serve` processes on one PostgreSQL database, as
//! behind a load balancer: one service to the people using it. And the
//! process killed (`SIGKILL`) or stopped (`SIGTERM`) in the middle of a
//! burst of launches: every token that left has its record, and the audit
//! chain verifies afterwards; a message to a site that was being sent is
//! sent again after the restart.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use url::Url;

use agency_sso::domain::audit::Actor;

use crate::idp::{Signing, CLIENT_ID, CLIENT_SECRET};
use crate::support::{blog_with_editors, run_ok, Backend, Browser, StandInSites, TestApp};

/// One `agency-sso serve` process; killed when dropped.
struct Instance {
    child: Child,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `serve` on the app's database and data folder (so the same master
/// key), signing people in with the app's provider. Its public URL is the
/// app's: as behind a load balancer, every instance answers for one origin.
async fn serve(app: &TestApp, extra: &[(&str, &str)]) -> Instance {
    serve_on(app, free_port(), extra).await
}

async fn serve_on(app: &TestApp, port: u16, extra: &[(&str, &str)]) -> Instance {
    serve_with(app, port, extra, Stdio::null()).await
}

/// `serve_on`, its log (standard error) going to `log`.
async fn serve_with(app: &TestApp, port: u16, extra: &[(&str, &str)], log: Stdio) -> Instance {
    let mut c = app.command();
    c.arg("serve")
        .env("SSO_BIND", format!("127.0.0.1:{port}"))
        .env("SSO_OIDC_ISSUER", app.idp.issuer())
        .env("SSO_OIDC_CLIENT_ID", CLIENT_ID)
        .env("SSO_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("SSO_KEY_REFRESH_SECONDS", "1")
        .env("SSO_LAUNCH_RATE", "off")
        .env("SSO_LAUNCH_CLIENT_RATE", "off")
        .env("LEPTOS_OUTPUT_NAME", "agency-sso")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in extra {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "{url} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instance { child, url }
}

/// Sign in through `base`: start there, come back there.
/// A sign-in through the server at `base`, fresh (as sensitive actions ask:
/// the server runs on the real clock, so `auth_time` is the real time).
async fn sign_in_at(app: &TestApp, browser: &Browser, base: &str, email: &str) {
    let res = browser
        .get(format!("{base}/auth/login?reauth=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    let param = |k: &str| {
        to.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    let mut claims = app.idp.claims(email, &param("nonce"));
    // The servers' clock: the real one, moved by the test's clock file if any.
    let offset = std::fs::read_to_string(app.data_dir.join("clock-offset"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    claims["auth_time"] =
        serde_json::json!(time::OffsetDateTime::now_utc().unix_timestamp() + offset);
    let code = app
        .idp
        .issue_code(claims, &param("code_challenge"), Signing::Rs256);
    let mut back = Url::parse(&format!("{base}/auth/callback")).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &param("state"));
    let res = browser.get(back).send().await.unwrap();
    let status = res.status();
    assert_eq!(
        status,
        303,
        "sign-in of {email} through {base}: {}",
        crate::support::page_text(&res.text().await.unwrap_or_default())
    );
}

async fn launch_at(app: &TestApp, browser: &Browser, base: &str, site: &str) -> reqwest::Response {
    browser
        .post(format!("{base}/launch"))
        .header("origin", &app.url)
        .form(&[("site", site), ("path", "")])
        .send()
        .await
        .unwrap()
}

/// Part `i` (0: header, 1: claims) of the token a launch redirected to.
fn token_part(res: &reqwest::Response, i: usize) -> serde_json::Value {
    use base64::Engine;
    assert_eq!(res.status(), 303);
    let to = Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    let token = to
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let part = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&part).unwrap()
}

fn kid_of(res: &reqwest::Response) -> String {
    token_part(res, 0)["kid"].as_str().unwrap().to_string()
}

fn jti_of(res: &reqwest::Response) -> String {
    token_part(res, 1)["jti"].as_str().unwrap().to_string()
}

async fn kids_published(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

/// A site Sam is an editor on; returns its id.
async fn blog_for_sam(app: &TestApp) -> String {
    blog_with_editors(app, &["sam@agency.test"]).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_behave_as_one_service() {
    let app = TestApp::start(Backend::Postgres).await;
    let clock_file = app.data_dir.join("clock-offset");
    std::fs::write(&clock_file, "0").unwrap();
    let clock = clock_file.display().to_string();
    let a = serve(&app, &[("SSO_TEST_CLOCK_FILE", &clock)]).await;
    let b = serve(&app, &[("SSO_TEST_CLOCK_FILE", &clock)]).await;
    let blog = blog_for_sam(&app).await;

    // A session made on one is valid on the other.
    let sam = app.browser();
    sign_in_at(&app, &sam, &a.url, "sam@agency.test").await;
    let home = sam.get(format!("{}/", b.url)).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(
        home.text().await.unwrap().contains("Blog"),
        "B shows Sam's sites"
    );

    // Launches alternate between them, in parallel: each one recorded once,
    // and the audit chain does not fork.
    let mut jtis = Vec::new();
    for round in 0..10 {
        let (x, y) = tokio::join!(
            launch_at(&app, &sam, &a.url, &blog),
            launch_at(&app, &sam, &b.url, &blog)
        );
        for r in [x, y] {
            assert_eq!(r.status(), 303, "round {round}");
            jtis.push(jti_of(&r));
        }
    }
    let recorded = count(
        &app,
        "SELECT COUNT(DISTINCT jti) FROM audit_log WHERE kind = 'launch'",
    )
    .await;
    assert_eq!(recorded, 20);
    for jti in &jtis {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE jti = $1")
            .bind(jti)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1, "{jti} recorded once");
    }
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");

    // A grant revoked (here through the library, as on any instance) is
    // refused on both at once.
    agency_sso::service::access::revoke(
        &app.state.db,
        "sam@agency.test",
        &blog,
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    for base in [&a.url, &b.url] {
        let r = launch_at(&app, &sam, base, &blog).await;
        assert_eq!(r.status(), 403, "{base} refuses at once");
    }

    // Scheduled rotation, with both instances running the schedule: the
    // next key is made once, published by both within the refresh delay,
    // and once it signs, both sign with it.
    let first = kids_published(&a.url).await;
    assert_eq!(first.len(), 1);
    std::fs::write(&clock_file, (24 * 86_400).to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let both = loop {
        let (ka, kb) = (kids_published(&a.url).await, kids_published(&b.url).await);
        if ka.len() == 2 && ka == kb {
            break ka;
        }
        assert!(
            Instant::now() < deadline,
            "both publish the next key: {ka:?} {kb:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let next = both.iter().find(|k| !first.contains(k)).unwrap().clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM signing_keys").await,
        2,
        "made once"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'key_created'"
        )
        .await,
        2
    );

    std::fs::write(&clock_file, (32 * 86_400).to_string()).unwrap();
    agency_sso::service::access::grant(
        &app.state.db,
        &["agency.test".to_string()],
        "sam@agency.test",
        &blog,
        "editor",
        &Actor::command_line(),
        app.clock.now_for_tests() + 32 * 86_400,
    )
    .await
    .unwrap();
    // Sam's session is past its absolute lifetime at +32 days: sign in again.
    let sam = app.browser();
    sign_in_at(&app, &sam, &b.url, "sam@agency.test").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ra, rb) = tokio::join!(
            launch_at(&app, &sam, &a.url, &blog),
            launch_at(&app, &sam, &b.url, &blog)
        );
        if kid_of(&ra) == next && kid_of(&rb) == next {
            break;
        }
        assert!(Instant::now() < deadline, "both sign with the new key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'key_activated'"
        )
        .await,
        1,
        "the next key was activated once"
    );
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// Fire launches from several tasks until told to stop; returns the jti of
/// every 303 received.
async fn burst(
    app: &TestApp,
    sam: &Browser,
    base: &str,
    site: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let mut got = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let res = sam
            .post(format!("{base}/launch"))
            .header("origin", &app.url)
            .form(&[("site", site), ("path", "")])
            .send()
            .await;
        match res {
            Ok(r) if r.status() == 303 => got.push(jti_of(&r)),
            Ok(r) => assert!(
                r.status() == 503 || r.status().is_server_error(),
                "unexpected {}",
                r.status()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    got
}

async fn killed_or_stopped_mid_burst(backend: Backend, signal: &str) {
    let app = TestApp::start(backend).await;
    let blog = blog_for_sam(&app).await;
    let port = free_port();
    let first = serve_on(&app, port, &[]).await;
    let sam = std::sync::Arc::new(app.browser());
    sign_in_at(&app, &sam, &first.url, "sam@agency.test").await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, sam, stop, blog, base) = (
            app.clone(),
            sam.clone(),
            stop.clone(),
            blog.clone(),
            first.url.clone(),
        );
        tasks.push(tokio::spawn(async move {
            burst(&app, &sam, &base, &blog, stop).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = first.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut first = first;
    let exit = tokio::task::block_in_place(|| first.child.wait()).unwrap();
    if signal == "-TERM" {
        assert!(exit.success(), "a SIGTERM stop is clean: {exit:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    assert!(sent.len() > 10, "the burst launched: {}", sent.len());

    // Every token that left has its record.
    for jti in &sent {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE jti = $1")
            .bind(jti)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1, "{jti} was sent, so it was recorded");
    }
    // Restarted: the chain verifies, the key ring loads, launches work.
    let again = serve_on(&app, port, &[]).await;
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
    let r = launch_at(&app, &sam, &again.url, &blog).await;
    assert_eq!(r.status(), 303, "the session survived the restart");
}

crate::on_both_databases!(
    killed_mid_burst,
    stopped_mid_burst,
    killed_mid_send,
    an_elevation_ends_on_time_across_a_restart
);

/// Just-in-time access, from the command line: Sam made eligible for
/// administrator, a request filed on his behalf and approved by the
/// operator; the serving process raises him on the site, is killed, and the
/// one started after the end has passed lowers him (the end is a row with
/// a due time, not a timer in a process).
async fn an_elevation_ends_on_time_across_a_restart(backend: Backend) {
    const SAM: &str = "sam@agency.test";
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = sites.granted_site(&app, "blog", SAM, "editor").await;
    let made = run_ok(app.command().args([
        "grants",
        "add",
        SAM,
        &blog,
        "--role",
        "editor",
        "--eligible",
        "administrator",
        "--max-hours",
        "1",
    ]));
    assert!(
        made.contains("may enter") && made.contains("ask for administrator for up to 1 hour"),
        "{made}"
    );
    let listed = run_ok(app.command().args(["grants", "list", "--email", SAM]));
    assert!(listed.contains("administrator (1 hour)"), "{listed}");
    let sam = app.signed_in(SAM).await;
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );

    let clock_file = app.data_dir.join("clock-offset");
    std::fs::write(&clock_file, "0").unwrap();
    sites.set_clock_offset(0);
    let clock = clock_file.display().to_string();
    let port = free_port();
    let mut first = serve_on(&app, port, &[("SSO_TEST_CLOCK_FILE", &clock)]).await;

    let filed = run_ok(app.command().args([
        "access",
        "request",
        SAM,
        &blog,
        "--role",
        "administrator",
        "--hours",
        "1",
        "--reason",
        "INC-4711: the checkout is broken",
    ]));
    let id = filed.lines().last().unwrap().trim().to_string();
    let pending = run_ok(app.command().args(["access", "list"]));
    assert!(
        pending.contains(&id) && pending.contains("pending"),
        "{pending}"
    );
    let approved = run_ok(
        app.command()
            .args(["access", "approve", &id, "--comment", "ok"]),
    );
    assert!(
        approved.starts_with("approved: sam@agency.test is administrator"),
        "{approved}"
    );
    wait_for(
        20,
        "the serving process raised Sam on the site",
        async || {
            sites
                .user("blog", SAM)
                .is_some_and(|u| u["role"] == "administrator")
        },
    )
    .await;
    let active = run_ok(app.command().args(["access", "list", "--active"]));
    assert!(active.contains(&id), "{active}");

    kill_after(&app, &mut first.child, Duration::ZERO).await;
    // Past the end while nothing runs; then a new process starts.
    std::fs::write(&clock_file, "3601").unwrap();
    sites.set_clock_offset(3601);
    let _again = serve_on(&app, port, &[("SSO_TEST_CLOCK_FILE", &clock)]).await;
    wait_for(20, "the new process lowered Sam to editor", async || {
        sites
            .user("blog", SAM)
            .is_some_and(|u| u["role"] == "editor")
    })
    .await;
    let state: (String, String, String) =
        sqlx::query_as("SELECT state, end_reason, requested_by FROM elevations WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(
        state,
        ("ended".into(), "expired".into(), "command line".into()),
        "filed on Sam's behalf, recorded as the operator's"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'elevation_expired'"
        )
        .await,
        1
    );
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

async fn killed_mid_burst(backend: Backend) {
    killed_or_stopped_mid_burst(backend, "-KILL").await;
}

async fn stopped_mid_burst(backend: Backend) {
    killed_or_stopped_mid_burst(backend, "-TERM").await;
}

/// Wait until `done` holds, or fail saying `what` after `secs` seconds.
async fn wait_for(secs: u64, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The dashboard killed (SIGKILL) while a site is still working on its
/// message: the site carries it out, but no one records its answer. After
/// a restart nothing is sent while the dead process's claim holds; once it
/// has run out (the clock moved past it) the message goes again, the site
/// does the same thing again (a lock is a lock), every message ends done
/// with one audit record, and the evidence says the first attempt was
/// interrupted.
async fn killed_mid_send(backend: Backend) {
    use agency_sso::store::messages;
    const SAM: &str = "sam@agency.test";
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let slow = sites.granted_site(&app, "slow", SAM, "editor").await;
    let quick = sites.granted_site(&app, "quick", SAM, "editor").await;
    app.signed_in(SAM).await;
    let clock_file = app.data_dir.join("clock-offset");
    std::fs::write(&clock_file, "0").unwrap();
    sites.set_clock_offset(0);
    let clock = clock_file.display().to_string();
    let port = free_port();
    let mut first = serve_on(&app, port, &[("SSO_TEST_CLOCK_FILE", &clock)]).await;
    let person = agency_sso::store::people::find_by_email(&app.state.db, SAM)
        .await
        .unwrap()
        .remove(0);
    let state_of = async |site: &str| {
        messages::for_person(&app.state.db, &person.id)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.site_id == site)
            .map(|m| m.state)
            .unwrap()
    };
    // The slow site takes 15 s (the suite may load the machine meanwhile).
    sites.set_slow("slow", 15);

    run_ok(app.command().args(["users", "disable", SAM]));
    wait_for(15, "the slow site got its message", async || {
        sites.arrivals("slow") == 1
    })
    .await;
    // The slow site is still working on its message.
    assert!(sites.received("slow").is_empty());
    kill_after(&app, &mut first.child, Duration::ZERO).await;
    wait_for(25, "the slow site carried out the message", async || {
        sites.received("slow").len() == 1
    })
    .await;
    assert_eq!(state_of(&slow).await, "pending", "its answer was lost");
    sites.set_slow("slow", 0);

    // Restarted: the dead process's claim holds the message for a while ...
    let _again = serve_on(&app, port, &[("SSO_TEST_CLOCK_FILE", &clock)]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sites.received("slow").len(), 1);
    // ... and once it has run out, the message goes again.
    std::fs::write(&clock_file, "61").unwrap();
    sites.set_clock_offset(61);
    wait_for(20, "the messages were all delivered", async || {
        state_of(&slow).await == "done" && state_of(&quick).await == "done"
    })
    .await;
    let got = sites.received("slow");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|m| m["action"] == "lock" && m["email"] == SAM));
    assert_ne!(
        got[0]["jti"], got[1]["jti"],
        "each attempt is its own token"
    );
    // The quick site was told (once, or again if an answer was lost).
    let quick_got = sites.received("quick");
    assert!(!quick_got.is_empty() && quick_got.iter().all(|m| m["action"] == "lock"));
    let delivered = count(
        &app,
        "SELECT COUNT(*) FROM audit_log WHERE kind = 'site_message_delivered'",
    )
    .await;
    assert_eq!(delivered, 2, "one record per message");
    let attempts = messages::attempts_for_person(&app.state.db, &person.id)
        .await
        .unwrap();
    let messages = messages::for_person(&app.state.db, &person.id)
        .await
        .unwrap();
    let outcomes = |site: &str| -> Vec<String> {
        let m = messages.iter().find(|m| m.site_id == site).unwrap();
        attempts
            .iter()
            .filter(|a| a.message_id == m.id)
            .map(|a| a.outcome.clone())
            .collect()
    };
    assert_eq!(outcomes(&slow), ["interrupted", "delivered"]);
    assert_eq!(outcomes(&quick).last().unwrap(), "delivered");
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// Two `serve` processes on one PostgreSQL database, each with its worker:
/// a leaver's 60 sites are each told once, whichever process sends, and
/// each message has one attempt and one audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_send_each_message_once() {
    const SAM: &str = "sam@agency.test";
    let app = TestApp::start(Backend::Postgres).await;
    let sites = StandInSites::start(&app).await;
    sites.set_clock_offset(0);
    for i in 0..60 {
        sites
            .granted_site(&app, &format!("s{i}"), SAM, "editor")
            .await;
    }
    app.signed_in(SAM).await;
    let _a = serve(&app, &[]).await;
    let _b = serve(&app, &[]).await;
    run_ok(app.command().args(["users", "disable", SAM]));
    wait_for(60, "every site was told", async || {
        count(
            &app,
            "SELECT COUNT(*) FROM site_messages WHERE state = 'done'",
        )
        .await
            == 60
    })
    .await;
    for i in 0..60 {
        let got = sites.received(&format!("s{i}"));
        assert_eq!(got.len(), 1, "s{i}: {got:?}");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM site_message_attempts").await,
        60
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'site_message_delivered'"
        )
        .await,
        60
    );
}

/// SIGKILL `child` once `after` has passed; true if it had already exited. Returns
/// once the database is done with the dead process: on PostgreSQL a COMMIT
/// it sent just before dying is still carried out by its server process, so
/// reading at once could see the state before that commit and the next
/// round the state after it.
async fn kill_after(app: &TestApp, child: &mut Child, after: Duration) -> bool {
    tokio::time::sleep(after).await;
    let done = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = tokio::task::block_in_place(|| child.wait());
    if app.state.db.kind == agency_sso::config::DbKind::Postgres {
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(
            app,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
             AND state IS DISTINCT FROM 'idle'",
        )
        .await
            > 0
        {
            assert!(
                Instant::now() < deadline,
                "the killed process's transactions did not end"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    done
}

/// Keys in the database, and key creations in the audit log: one each.
async fn keys_and_their_records(app: &TestApp) -> (i64, i64, i64) {
    (
        count(app, "SELECT COUNT(*) FROM signing_keys").await,
        count(
            app,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'key_created'",
        )
        .await,
        count(
            app,
            "SELECT COUNT(*) FROM signing_keys WHERE state = 'active'",
        )
        .await,
    )
}

crate::on_both_databases!(killed_mid_rotation, killed_mid_import);

/// Watch a process's standard error for `marker`: the receiver gets one
/// message when the line appears (the rest is read and dropped, so that the
/// process never blocks on a full pipe).
fn watch_for(
    stderr: std::process::ChildStderr,
    marker: &'static str,
) -> std::sync::mpsc::Receiver<()> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(marker) {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// Wait (at most a minute) for a marker `watch_for` saw; false if none came.
async fn seen(marks: std::sync::mpsc::Receiver<()>) -> bool {
    tokio::task::spawn_blocking(move || marks.recv_timeout(Duration::from_secs(60)).is_ok())
        .await
        .unwrap()
}

/// `keys rotate --now`, its debug log watched for its first step.
fn rotation(app: &TestApp) -> (Child, std::sync::mpsc::Receiver<()>) {
    let mut child = app
        .command()
        .env("RUST_LOG", "agency_sso=debug")
        .args(["keys", "rotate", "--now"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marks = watch_for(child.stderr.take().unwrap(), "generating a signing key");
    (child, marks)
}

/// `keys rotate --now` killed at moments spread over its run, counted from
/// its first step (the key's generation, which it logs), through its
/// transaction, to after it: each time the ring is whole (one active key,
/// every key with its record), the chain verifies, and a restarted service
/// signs with the ring's active key. At least one kill lands after the
/// rotation began and before it committed (no new key): the test says so
/// rather than assume it.
async fn killed_mid_rotation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let blog = blog_for_sam(&app).await;
    // How long one rotation takes here from its first step, to spread the kills over it.
    let (mut child, marks) = rotation(&app);
    assert!(seen(marks).await, "the rotation should begin");
    let started = Instant::now();
    assert!(tokio::task::block_in_place(|| child.wait())
        .unwrap()
        .success());
    let took = started.elapsed();
    let (mut completed, mut cut) = (0, 0);
    for i in 0..8u32 {
        let (keys_before, _, _) = keys_and_their_records(&app).await;
        let (mut child, marks) = rotation(&app);
        assert!(seen(marks).await, "round {i}: the rotation should begin");
        let finished = kill_after(&app, &mut child, took * i / 6).await;
        let (keys, created, active) = keys_and_their_records(&app).await;
        assert_eq!(active, 1, "round {i}: exactly one key signs");
        assert_eq!(
            keys, created,
            "round {i}: every key has its record, no record without key"
        );
        if finished {
            completed += 1;
        } else if keys == keys_before {
            // Begun (it logged its first step), not committed.
            cut += 1;
        }
    }
    assert!(
        cut > 0,
        "no rotation was killed between its start and its commit ({completed} of 8 finished)"
    );
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
    // The service starts on the ring and signs with its active key.
    let active: String = sqlx::query_scalar("SELECT kid FROM signing_keys WHERE state = 'active'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let server = serve(&app, &[]).await;
    let sam = app.browser();
    sign_in_at(&app, &sam, &server.url, "sam@agency.test").await;
    let res = launch_at(&app, &sam, &server.url, &blog).await;
    assert_eq!(kid_of(&res), active);
    assert!(kids_published(&server.url).await.contains(&active));
}

/// An admin's import of 3,000 sites, with the process killed at moments
/// spread over the apply, counted from the moment the import is inside its
/// transaction (which it logs): all of it or none of it each time, with
/// its one record or none, and the chain verifies. At least one kill lands
/// inside the transaction before its commit (nothing kept, no answer); a
/// last round, not killed, keeps the whole import with its record.
async fn killed_mid_import(backend: Backend) {
    let app = TestApp::start(backend).await;
    let port = free_port();
    let mut csv = String::from("name,client,url\n");
    for i in 0..3000 {
        csv.push_str(&format!(
            "Site {i},Client {},https://s{i}.client.example\n",
            i % 40
        ));
    }
    let mut outcomes = Vec::new();
    // The last round is not killed: the same import, whole.
    for delay in [0u64, 30, 100, 250, 500, 1000, 2000]
        .map(Some)
        .into_iter()
        .chain([None])
    {
        let mut server = serve_with(
            &app,
            port,
            &[
                ("SSO_ADMIN_EMAILS", "boss@agency.test"),
                ("RUST_LOG", "warn,agency_sso::service::sites=debug"),
            ],
            Stdio::piped(),
        )
        .await;
        let marks = watch_for(server.child.stderr.take().unwrap(), "applying an import");
        let boss = app.browser();
        sign_in_at(&app, &boss, &server.url, "boss@agency.test").await;
        let call = |name: &str, form: Vec<(&'static str, String)>| {
            boss.post(format!("{}/api/{name}", server.url))
                .header("origin", &app.url)
                .header("referer", format!("{}/admin/import", app.url))
                .form(&form)
                .send()
        };
        let preview: serde_json::Value = call("admin_import_preview", vec![("csv", csv.clone())])
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let digest = preview["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("a preview: {preview}"))
            .to_string();
        let apply = call(
            "admin_import_apply",
            vec![("csv", csv.clone()), ("digest", digest)],
        );
        let child = &mut server.child;
        let kill = async {
            // Only once the import is inside its transaction.
            let begun = seen(marks).await;
            if let Some(ms) = delay {
                kill_after(&app, child, Duration::from_millis(ms)).await;
            }
            begun
        };
        let (answer, begun) = tokio::join!(apply, kill);
        let delay_ms = delay.map_or("no kill".into(), |ms| format!("{ms} ms"));
        assert!(begun, "{delay_ms}: the import should have begun");
        let answered = matches!(&answer, Ok(r) if r.status() == 200);
        let sites = count(&app, "SELECT COUNT(*) FROM sites").await;
        let records = count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'sites_imported'",
        )
        .await;
        assert!(
            (sites == 0 && records == 0) || (sites == 3000 && records == 1),
            "after a kill at {delay_ms}: {sites} sites, {records} import records"
        );
        if answered || delay.is_none() {
            assert!(answered, "{delay_ms}: {answer:?}");
            assert_eq!(sites, 3000, "an import that answered is kept");
        }
        outcomes.push((delay_ms, answered, sites));
        if sites == 3000 {
            break;
        }
    }
    assert!(
        outcomes
            .iter()
            .any(|(_, answered, sites)| !answered && *sites == 0),
        "at least one apply was killed inside its transaction, before its commit: {outcomes:?}"
    );
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// `SSO_LOG_FORMAT=json`: every line the service writes is one JSON object
/// with time, level and message; a request's lines carry its request id
/// (the one sent back in `x-request-id`) and its path without the query;
/// no code, state, token or secret appears, whatever the requests held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_request_ids_and_no_secrets() {
    let app = TestApp::start(Backend::Sqlite).await;
    let blog = blog_for_sam(&app).await;
    let log_path = app.data_dir.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = serve_with(
        &app,
        free_port(),
        &[("SSO_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        Stdio::from(log),
    )
    .await;
    let sam = app.browser();
    sign_in_at(&app, &sam, &server.url, "sam@agency.test").await;
    let launched = launch_at(&app, &sam, &server.url, &blog).await;
    let token = Url::parse(launched.headers()[LOCATION].to_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string())
        .unwrap();
    // A callback with a made-up code and state: refused, and neither logged.
    let res = sam
        .get(format!(
            "{}/auth/callback?code=CODE-4711-SECRET&state=STATE-4711",
            server.url
        ))
        .header("x-request-id", "req-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-4711");
    assert!(res.status().is_client_error());

    let mut server = server;
    std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let exit = tokio::task::block_in_place(|| server.child.wait()).unwrap();
    assert!(exit.success());

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let said = |m: &str| lines.iter().any(|l| l["fields"]["message"] == m);
    assert!(
        said("agency-sso is serving") && said("agency-sso stopped"),
        "{text}"
    );
    let traced: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "req-4711")
        .collect();
    assert!(
        !traced.is_empty(),
        "the request's lines carry its id: {text}"
    );
    assert!(traced.iter().all(|l| l["span"]["path"] == "/auth/callback"));
    let master = std::fs::read_to_string(app.data_dir.join("master.key")).unwrap();
    for secret in [
        "CODE-4711-SECRET",
        "STATE-4711",
        token.as_str(),
        CLIENT_SECRET,
        master.trim(),
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
    assert!(
        crate::support::leak_in(&text, &[]).is_none(),
        "{:?}",
        crate::support::leak_in(&text, &[])
    );
}

crate::on_both_databases!(backed_up_while_serving_and_restored);

/// A backup taken while staff launch (SQLite: `agency-sso backup`;
/// PostgreSQL: `pg_dump`, as the README says), restored into a new
/// database and served with the same master key: the same key set, the
/// chain verifies, the launches made before the backup are in it, and
/// sign-in and launches work on the restored copy.
async fn backed_up_while_serving_and_restored(backend: Backend) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let app = Arc::new(TestApp::start(backend).await);
    let blog = blog_for_sam(&app).await;
    let server = serve(&app, &[]).await;
    let sam = Arc::new(app.browser());
    sign_in_at(&app, &sam, &server.url, "sam@agency.test").await;
    for _ in 0..3 {
        assert_eq!(
            launch_at(&app, &sam, &server.url, &blog).await.status(),
            303
        );
    }
    let before = count(&app, "SELECT COUNT(*) FROM audit_log WHERE kind = 'launch'").await;
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (app, sam, stop, blog, base) = (
            app.clone(),
            sam.clone(),
            stop.clone(),
            blog.clone(),
            server.url.clone(),
        );
        tokio::spawn(async move { burst(&app, &sam, &base, &blog, stop).await })
    };
    let dump = app.data_dir.join("backup");
    let restored_url = match backend {
        Backend::Sqlite => {
            let out = run_ok(app.command().arg("backup").arg(&dump));
            assert!(out.contains("master key"), "{out}");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dump).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the copy is its owner's only");
            // A second backup to the same file is refused, the first kept.
            let err = crate::support::run_err(app.command().arg("backup").arg(&dump));
            assert!(err.contains("exists"), "{err}");
            format!("sqlite://{}", dump.display())
        }
        Backend::Postgres => {
            run_ok(
                std::process::Command::new("pg_dump")
                    .args(["--format=custom", "--file"])
                    .arg(&dump)
                    .arg(&app.database_url),
            );
            let url = crate::support::fresh_database(Backend::Postgres, &app.data_dir).await;
            run_ok(
                std::process::Command::new("pg_restore")
                    .args(["--no-owner", "--dbname", &url])
                    .arg(&dump),
            );
            url
        }
    };
    stop.store(true, Ordering::SeqCst);
    let sent = busy.await.unwrap();
    assert!(!sent.is_empty(), "launches went on during the backup");
    let live_kids = kids_published(&server.url).await;
    drop(server);

    let restored = serve(&app, &[("SSO_DATABASE_URL", restored_url.as_str())]).await;
    assert_eq!(
        kids_published(&restored.url).await,
        live_kids,
        "the same key set"
    );
    let verified = run_ok(
        app.command()
            .env("SSO_DATABASE_URL", &restored_url)
            .args(["audit", "verify"]),
    );
    assert!(verified.contains("verified"), "{verified}");
    let restored_launches: i64 = {
        let pool = sqlx::AnyPool::connect(&restored_url).await.unwrap();
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE kind = 'launch'")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    };
    assert!(
        restored_launches >= before,
        "launches before the backup are in it: {restored_launches} < {before}"
    );
    if backend == Backend::Sqlite {
        // The copy holds no session: Sam signs in again.
        let home = sam.get(format!("{}/", restored.url)).send().await.unwrap();
        assert!(crate::support::page_text(&home.text().await.unwrap()).contains("Sign in with"));
    }
    sign_in_at(&app, &sam, &restored.url, "sam@agency.test").await;
    let res = launch_at(&app, &sam, &restored.url, &blog).await;
    assert!(
        live_kids.contains(&kid_of(&res)),
        "signed with a key sites already hold"
    );
}

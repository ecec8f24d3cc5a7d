//! Several `agency-sso serve` processes on one PostgreSQL database, as
//! behind a load balancer: one service to the people using it. And the
//! process killed (`SIGKILL`) or stopped (`SIGTERM`) in the middle of a
//! burst of launches: every token that left has its record, and the audit
//! chain verifies afterwards.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use url::Url;

use agency_sso::domain::audit::Actor;

use crate::idp::{Signing, CLIENT_ID, CLIENT_SECRET};
use crate::support::{blog_with_editors, run_ok, Backend, Browser, TestApp};

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
        .stderr(Stdio::null());
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
async fn sign_in_at(app: &TestApp, browser: &Browser, base: &str, email: &str) {
    let res = browser
        .get(format!("{base}/auth/login"))
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
    let code = app.idp.issue_code(
        app.idp.claims(email, &param("nonce")),
        &param("code_challenge"),
        Signing::Rs256,
    );
    let mut back = Url::parse(&format!("{base}/auth/callback")).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &param("state"));
    let res = browser.get(back).send().await.unwrap();
    assert_eq!(res.status(), 303, "sign-in of {email} through {base}");
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
    agency_sso::sites::revoke(
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
    agency_sso::sites::grant(
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

crate::on_both_databases!(killed_mid_burst, stopped_mid_burst);

async fn killed_mid_burst(backend: Backend) {
    killed_or_stopped_mid_burst(backend, "-KILL").await;
}

async fn stopped_mid_burst(backend: Backend) {
    killed_or_stopped_mid_burst(backend, "-TERM").await;
}

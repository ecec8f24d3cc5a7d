//! The database goes away and comes back while the dashboard runs: clear
//! error pages, `/readyz` failing, no token without its record, and full
//! service again once it is back, without a restart. PostgreSQL is reached
//! through a TCP proxy on loopback that the test cuts and restores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::LOCATION;
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::support::{
    blog_with_editors, page_text, pg_admin_url, run_ok, server_fn, Backend, Options, TestApp,
};

/// A proxy to the PostgreSQL server that can be cut (every connection
/// dropped, new ones refused) and restored.
struct Cuttable {
    port: u16,
    up: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cuttable {
    async fn start() -> Cuttable {
        let target = Url::parse(&pg_admin_url()).unwrap();
        let target = format!(
            "{}:{}",
            target.host_str().unwrap(),
            target.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, live2) = (up.clone(), live.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                live2.lock().unwrap().push(task.abort_handle());
            }
        });
        Cuttable { port, up, live }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.live.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_fails_closed_and_service_comes_back_by_itself() {
    let proxy = Cuttable::start().await;
    let mut opts = Options::new(Backend::Postgres);
    opts.pg_port = Some(proxy.port);
    let app = TestApp::start_with(opts).await;
    let st = &app.state;
    let blog = blog_with_editors(&app, &["sam@agency.test"]).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let launch = || {
        sam.post(app.at("/launch"))
            .header("origin", &app.url)
            .form(&[("site", blog.as_str()), ("path", "")])
            .send()
    };
    assert_eq!(launch().await.unwrap().status(), 303);
    let (issued_before, _) = agency_sso::store::launches::count(&st.db).await.unwrap();

    proxy.cut();
    let ready = reqwest::get(app.at("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "database_unreachable");

    // A launch: a clear page, and no token.
    let res = launch().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(
        res.headers().get(LOCATION).is_none(),
        "no token without its record"
    );
    let text = page_text(&res.text().await.unwrap());
    assert!(
        text.contains("no sign-in was sent to the site") || text.contains("try again"),
        "{text}"
    );
    // The home page: a page that says what is wrong, not a blank error.
    let res = sam.get(app.at("/")).send().await.unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = page_text(&res.text().await.unwrap());
    assert!(text.to_lowercase().contains("try again"), "{text}");
    // Sign-in cannot be completed either, and says so.
    let res = sam.get(app.at("/auth/login")).send().await.unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert!(res.headers().get(LOCATION).is_none());

    // Back: full service, same process.
    proxy.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = reqwest::get(app.at("/readyz")).await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = launch().await.unwrap();
    assert_eq!(res.status(), 303, "launches work again");
    assert!(app.home(&sam).await.contains("Blog"));
    let (issued_after, _) = agency_sso::store::launches::count(&st.db).await.unwrap();
    assert_eq!(
        issued_after,
        issued_before + 1,
        "only the launch that was sent is recorded"
    );
    let verified = crate::support::run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// Wait until `/readyz` answers 200 again (the pool reconnects by itself).
async fn wait_ready(app: &TestApp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while reqwest::get(app.at("/readyz")).await.unwrap().status() != 200 {
        assert!(std::time::Instant::now() < deadline, "ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The database away in the middle of a sign-in, an admin's edit and a
/// key rotation: each fails with a clear answer and writes nothing; sites
/// keep fetching the key set; once it is back, each works, same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_admin_edits_and_rotation_fail_closed_during_an_outage() {
    let proxy = Cuttable::start().await;
    let mut opts = Options::new(Backend::Postgres);
    opts.pg_port = Some(proxy.port);
    let app = TestApp::start_with(opts).await;
    let st = &app.state;
    let blog = blog_with_editors(&app, &[]).await;
    let boss = app.browser();
    app.sign_in_fresh(&boss, "boss@agency.test").await;
    let ann = app.browser();
    let attempt = app.begin(&ann).await;
    let (_, ring_before) = crate::support::key_ring(st).await;
    let records_before = agency_sso::store::audit::count(&st.db).await.unwrap();
    let jwks_before = reqwest::get(app.at("/.well-known/jwks.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rename = |name: &'static str| {
        crate::support::site_form(&[
            ("id", blog.as_str()),
            ("version", "1"),
            ("name", name),
            ("client", "Client"),
            ("url", "https://blog.client.example"),
            ("enabled", "on"),
        ])
    };

    proxy.cut();

    // Ann comes back from the provider: a page saying to try again, no session.
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let res = app
        .finish(&ann, &attempt, claims, crate::idp::Signing::Rs256)
        .await;
    assert!(res.status().is_server_error(), "{}", res.status());
    assert!(res.headers().get(LOCATION).is_none());
    let text = page_text(&res.text().await.unwrap());
    assert!(text.to_lowercase().contains("try again"), "{text}");

    // The admin renames the site: an error the console shows, nothing changed.
    let (status, body) = server_fn(&app, &boss, "admin_save_site", &rename("Renamed")).await;
    // The console shows this error's words: "The dashboard cannot reach
    // its database right now. Please try again in a moment."
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "Unavailable", "the console's error for this");

    // Rotation, from the command line and on the schedule: refused, ring kept.
    let out = app.command().args(["keys", "rotate"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.lines().count() <= 3 && !err.trim().is_empty(), "{err}");
    assert!(
        st.keys
            .maintain(app.clock.now_for_tests() + 40 * 86400)
            .await
            .is_err(),
        "a due rotation cannot happen without the database"
    );
    // Sites keep verifying: the key set is served from memory.
    let jwks = reqwest::get(app.at("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    assert_eq!(jwks.text().await.unwrap(), jwks_before);

    proxy.restore();
    wait_ready(&app).await;

    // Nothing of the failed attempts was written.
    let (_, ring_after) = crate::support::key_ring(st).await;
    assert_eq!(ring_after.keys.len(), ring_before.keys.len());
    assert_eq!(
        agency_sso::store::audit::count(&st.db).await.unwrap(),
        records_before,
        "no record of anything that did not happen"
    );
    let site = agency_sso::store::sites::find(&st.db, &blog)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(site.name, "Blog");
    assert!(!page_text(&app.home(&ann).await).contains("Welcome"));

    // And each works again.
    app.sign_in(&ann, "ann@agency.test").await;
    assert!(page_text(&app.home(&ann).await).contains("Welcome"));
    let (status, body) = server_fn(&app, &boss, "admin_save_site", &rename("Blog (renamed)")).await;
    assert_eq!(status, 200, "{body}");
    run_ok(app.command().args(["keys", "rotate"]));
    st.keys.refresh(app.clock.now_for_tests()).await.unwrap();
    let (_, ring_rotated) = crate::support::key_ring(st).await;
    assert_eq!(ring_rotated.keys.len(), ring_before.keys.len() + 1);
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// The database goes away while messages to sites are being sent (every
/// connection dropped, new ones refused, as when it restarts): the sites
/// carry them out, but their answers cannot be written, so the messages
/// stay claimed and pending, and the worker's next round fails without
/// losing anything. Once it is back, the claims run out, every message is
/// sent again (the site does the same thing again) and ends done, with one
/// audit record each, the first attempt noted as interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_sites_outlive_the_database_going_away_mid_send() {
    use agency_sso::service::messages::{deliver_due, http_client};
    use agency_sso::store::messages;
    const SAM: &str = "sam@agency.test";
    let proxy = Cuttable::start().await;
    let mut opts = Options::new(Backend::Postgres);
    opts.pg_port = Some(proxy.port);
    let app = TestApp::start_with(opts).await;
    let sites = crate::support::StandInSites::start(&app).await;
    let names = ["s1", "s2", "s3", "s4"];
    for name in names {
        sites.granted_site(&app, name, SAM, "editor").await;
        sites.set_slow(name, 2);
    }
    app.signed_in(SAM).await;
    let person = agency_sso::store::people::find_by_email(&app.state.db, SAM)
        .await
        .unwrap()
        .remove(0);
    // Disabled by an admin (on the test's clock, as the worker here runs).
    let admin = app.signed_in_fresh("boss@agency.test").await;
    let (status, body) = server_fn(
        &app,
        &admin,
        "admin_set_standing",
        &[("id", person.id.as_str()), ("change", "disable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let ctx = app.state.core.clone();
    let sending = tokio::spawn(async move { deliver_due(&ctx, &http_client(), "w1").await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.cut();
    assert_eq!(sending.await.unwrap().unwrap(), 4, "all four were sent");
    for name in names {
        assert_eq!(sites.received(name).len(), 1, "{name} carried it out");
    }
    // Gone: the next round cannot claim anything, and says so.
    let ctx = &app.state.core;
    assert!(deliver_due(ctx, &http_client(), "w1").await.is_err());

    proxy.restore();
    wait_ready(&app).await;
    let pending = messages::for_person(&app.state.db, &person.id)
        .await
        .unwrap();
    assert!(
        pending.iter().all(|m| m.state == "pending"),
        "the answers written nowhere are not taken as delivered: {pending:?}"
    );
    // The claims hold until they run out; then everything goes again.
    assert_eq!(deliver_due(ctx, &http_client(), "w2").await.unwrap(), 0);
    for name in names {
        sites.set_slow(name, 0);
    }
    app.clock.advance(61);
    sites.follow_clock(&app);
    assert_eq!(deliver_due(ctx, &http_client(), "w2").await.unwrap(), 4);
    let done = messages::for_person(&app.state.db, &person.id)
        .await
        .unwrap();
    assert!(done.iter().all(|m| m.state == "done"), "{done:?}");
    for name in names {
        let got = sites.received(name);
        assert_eq!(got.len(), 2, "{name}: {got:?}");
        assert!(got.iter().all(|m| m["action"] == "lock"));
    }
    let delivered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE kind = 'site_message_delivered'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(delivered, 4);
    let attempts = messages::attempts_for_person(&app.state.db, &person.id)
        .await
        .unwrap();
    for m in &done {
        let outcomes: Vec<&str> = attempts
            .iter()
            .filter(|a| a.message_id == m.id)
            .map(|a| a.outcome.as_str())
            .collect();
        assert_eq!(outcomes, ["interrupted", "delivered"], "{}", m.site_url);
    }
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

//! What every response carries, what every state-changing request must
//! show, and the health endpoints.

use crate::on_both_databases;
use crate::support::{page_text, Backend, Options, TestApp};

on_both_databases!(readiness_follows_the_database);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_a_script_nonce() {
    let app = TestApp::start(Backend::Sqlite).await;
    let res = app.browser().get(app.at("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("script nonce in the CSP")
        .to_string();
    assert!(nonce.len() >= 16, "{nonce}");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );
    assert!(h.contains_key("x-request-id"));

    // Every inline script the page carries has this response's nonce.
    let html = res.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let scripts = scraper::Selector::parse("script").unwrap();
    let mut inline = 0;
    for s in doc.select(&scripts) {
        if s.value().attr("src").is_none() && !s.inner_html().trim().is_empty() {
            inline += 1;
            assert_eq!(
                s.value().attr("nonce"),
                Some(nonce.as_str()),
                "{}",
                s.html()
            );
        }
    }
    assert!(inline > 0, "the hydration script is inline");

    // A second response has a different nonce.
    let again = app.browser().get(app.at("/")).send().await.unwrap();
    let csp2 = again.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp2.contains(&nonce));

    // Non-page responses get the strict default policy.
    let res = app.browser().get(app.at("/healthz")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(
        res.headers()["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_before_they_act() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = app.browser();
    app.sign_in(&browser, "ann@agency.test").await;

    // A form on another site posting our sign-out, and a server function
    // called from another origin, and a scripted POST without any origin.
    let attempts = [
        (
            "/auth/logout",
            Some("https://evil.test"),
            Some("cross-site"),
            "csrf_cross_site",
        ),
        (
            "/auth/logout",
            Some("https://evil.test"),
            None,
            "csrf_origin_mismatch",
        ),
        ("/auth/logout", None, None, "csrf_origin_missing"),
        ("/api/viewer", Some("null"), None, "csrf_origin_mismatch"),
    ];
    for (path, origin, site, code) in attempts {
        let mut req = browser
            .post(app.at(path))
            .header("accept", "application/json");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{path} {origin:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path} {origin:?}");
    }
    // A browser form post gets a readable page.
    let res = browser
        .post(app.at("/auth/logout"))
        .header("origin", "https://evil.test")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(page_text(&res.text().await.unwrap())
        .contains("did not come from a page of this dashboard"));

    // None of them signed Ann out.
    assert!(page_text(&app.home(&browser).await).contains("Welcome"));

    // Sign-out is POST only: a GET (e.g. an <img> on another site) does nothing.
    let res = browser.get(app.at("/auth/logout")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(page_text(&app.home(&browser).await).contains("Welcome"));
}

async fn readiness_follows_the_database(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.browser();
    let res = client.get(app.at("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = client.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    app.state.db.pool.close().await;
    let res = client.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "database_unreachable");
    // The process itself is still alive.
    assert_eq!(
        client
            .get(app.at("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pages_are_404() {
    let app = TestApp::start(Backend::Sqlite).await;
    let res = app
        .browser()
        .get(app.at("/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(page_text(&res.text().await.unwrap()).contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_is_sent_precompressed_to_browsers_that_accept_it() {
    let app = TestApp::start(Backend::Sqlite).await;
    // A site folder as a release build leaves it: the bundle and its brotli copy.
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let wasm = b"\0asm plain bundle bytes".to_vec();
    let brotli = b"brotli-encoded bundle bytes".to_vec();
    std::fs::write(pkg.join("agency-sso.wasm"), &wasm).unwrap();
    std::fs::write(pkg.join("agency-sso.wasm.br"), &brotli).unwrap();
    std::fs::write(pkg.join("agency-sso.js"), "export default 1;").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = app.state.with_leptos(
        leptos::prelude::LeptosOptions::builder()
            .output_name("agency-sso")
            .site_root(site.path().display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build(),
    );
    crate::support::serve_in_background(listener, &state);
    let client = reqwest::Client::new();
    let get = |enc: &'static str, path: &'static str| {
        client
            .get(format!("http://{addr}/pkg/{path}"))
            .header("accept-encoding", enc)
            .send()
    };

    let br = get("gzip, deflate, br", "agency-sso.wasm").await.unwrap();
    assert_eq!(br.status(), 200);
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.headers()["content-type"], "application/wasm");
    assert_eq!(br.headers()["vary"], "accept-encoding");
    assert_eq!(br.headers()["cache-control"], "no-cache");
    assert!(br.headers().get("set-cookie").is_none());
    assert_eq!(br.bytes().await.unwrap().as_ref(), brotli.as_slice());

    // A browser without brotli gets the file as it is; so does a file with no copy.
    let plain = get("gzip", "agency-sso.wasm").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().as_ref(), wasm.as_slice());
    let js = get("br", "agency-sso.js").await.unwrap();
    assert!(js.headers().get("content-encoding").is_none());
    assert_eq!(js.text().await.unwrap(), "export default 1;");
    assert_eq!(get("br", "missing.wasm").await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_https_cookies_are_host_bound_and_hsts_is_sent() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let app = TestApp::start_with(
        Options::new(Backend::Sqlite)
            .with("public-url", "https://sso.agency.test")
            .with("master-key", key),
    )
    .await;
    let res = app.browser().get(app.at("/healthz")).send().await.unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let res = app
        .browser()
        .get(app.at("/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The attempt's cookie, and then the session's, are host-bound.
    let host_bound = |cookie: &str, name: &str| {
        assert!(cookie.starts_with(&format!("{name}=")), "{cookie}");
        assert!(
            cookie.contains("Secure") && cookie.contains("Path=/"),
            "{cookie}"
        );
        assert!(
            cookie.contains("HttpOnly") && !cookie.contains("Domain"),
            "{cookie}"
        );
    };
    let attempt = res.headers()["set-cookie"].to_str().unwrap().to_string();
    host_bound(&attempt, "__Host-agency-sso-attempt");
    // The provider is told to send the browser back to the public URL.
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fsso.agency.test%2Fauth%2Fcallback"),
        "{location}"
    );
    // Back from the provider (the browser sends the attempt's cookie back).
    let to = url::Url::parse(&location).unwrap();
    let param = |k: &str| {
        to.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    let code = app.idp.issue_code(
        app.idp.claims("ann@agency.test", &param("nonce")),
        &param("code_challenge"),
        crate::idp::Signing::Rs256,
    );
    let res = app
        .browser()
        .get(app.at(&format!(
            "/auth/callback?code={code}&state={}",
            param("state")
        )))
        .header("cookie", attempt.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-agency-sso="))
        .expect("a session cookie");
    host_bound(session, "__Host-agency-sso");
    let cleared = cookies
        .iter()
        .find(|c| c.starts_with("__Host-agency-sso-attempt="))
        .expect("the attempt cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_before_it_acts() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = app.browser();
    app.sign_in(&browser, "sam@agency.test").await;
    let huge = "x".repeat(5 << 20);
    let res = browser
        .post(app.at("/launch"))
        .header("origin", &app.url)
        .form(&[("site", huge.as_str()), ("path", "")])
        .send()
        .await;
    // The server answers 413 as soon as it sees the length; the client may
    // still be writing the body then, and see the connection closed first.
    match res {
        Ok(res) => {
            assert_eq!(res.status(), 413);
            assert!(res.headers().get("location").is_none());
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let health = reqwest::get(app.at("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the server carries on");
    let records = crate::support::audit_texts(&app.database_url).await;
    assert!(
        !records.iter().any(|(_, t)| t.starts_with("launch")),
        "nothing was decided or recorded"
    );
}

/// Slow clients (slowloris): connections that dribble a request head are
/// closed once `SSO_CLIENT_TIMEOUT_SECONDS` has passed, a body that stalls
/// is refused without acting, and meanwhile everyone else is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_hold_up_others() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let app =
        TestApp::start_with(Options::new(Backend::Sqlite).with("client-timeout-seconds", "2"))
            .await;
    let blog = crate::support::blog_with_editors(&app, &["sam@agency.test"]).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let addr = app.url.trim_start_matches("http://").to_string();

    // 200 connections, each sending one more header line every 300 ms and
    // never the blank line that ends the head.
    let mut dribblers = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        dribblers.push(tokio::spawn(async move {
            let opened = Instant::now();
            let mut buf = [0u8; 256];
            while opened.elapsed() < Duration::from_secs(30) {
                if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                    Err(_) => continue, // still open, nothing said
                    Ok(_) => break,     // closed (EOF or reset), or an answer before closing
                }
            }
            opened.elapsed()
        }));
    }

    // Meanwhile Sam works as usual.
    let launches_before = launches(&app).await;
    for _ in 0..5 {
        assert_eq!(app.launch(&sam, &blog).await.status(), 303);
    }
    assert!(page_text(&app.home(&sam).await).contains("Blog"));

    for d in dribblers {
        let held = d.await.unwrap();
        assert!(
            held >= Duration::from_millis(1500) && held < Duration::from_secs(15),
            "a dribbling connection was held {held:?}: it should be cut at about 2 s"
        );
    }

    // A launch whose body stalls after a few bytes: refused, nothing decided.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /launch HTTP/1.1\r\nHost: {addr}\r\nOrigin: {}\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nsite={blog}",
        app.url,
        sam.cookie_header()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled request was not cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a stalled body is refused: {answer}"
    );
    assert!(!answer.to_lowercase().contains("location:"), "{answer}");
    assert_eq!(
        launches(&app).await,
        launches_before + 5,
        "only Sam's five launches are recorded"
    );
    let health = reqwest::get(app.at("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the server carries on");
}

async fn launches(app: &TestApp) -> i64 {
    agency_sso::store::launches::count(&app.state.db)
        .await
        .unwrap()
        .0
}

/// Building a router runs the app once with data loading switched off
/// process-wide; a page whose data started loading at that moment used to
/// wait forever (answered 408 after 30 s). A router built while another
/// serves, as a second instance in one process does, must not stall the
/// pages being rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_another_router_does_not_stall_pages_being_rendered() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let app = TestApp::start(Backend::Sqlite).await;
    crate::support::blog_with_editors(&app, &["sam@agency.test"]).await;
    let sam = app.signed_in("sam@agency.test").await;
    /// Stops the builder however the test ends (the runtime waits for it).
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_exit = Stop(stop.clone());
    let builder = {
        let (state, stop) = (app.state.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut built = 0;
            while !stop.load(Ordering::Relaxed) {
                drop(agency_sso::server::router(state.clone()));
                built += 1;
            }
            built
        })
    };
    for i in 0..40 {
        let page = tokio::time::timeout(Duration::from_secs(10), app.home(&sam))
            .await
            .unwrap_or_else(|_| panic!("home page {i} stalled while routers were being built"));
        let text = page_text(&page);
        assert!(
            text.contains("Blog"),
            "home page {i} lists Sam's site: {text}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(builder.await.unwrap() > 0, "routers were built meanwhile");
}

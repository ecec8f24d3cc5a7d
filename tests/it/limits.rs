//! Floods of sign-in and launch attempts: bounded per client address and
//! per person, answered 429 with a readable page and `Retry-After`, recorded
//! once per flood; the limit lifts by itself as time passes (the test
//! clock, no sleeping). Behind a trusted proxy, the forwarded address is the
//! client.

use reqwest::header::{LOCATION, RETRY_AFTER};

use crate::on_both_databases;
use crate::support::{audit_texts, blog_with_editors, page_text, Backend, Options, TestApp};

on_both_databases!(
    sign_in_floods_from_one_address_are_refused_and_recorded_once,
    launches_beyond_a_persons_rate_are_refused_without_a_token,
);

/// The `rate_limited` records: (subject, reason, ip).
async fn rate_limited(app: &TestApp) -> Vec<(String, String, String)> {
    audit_texts(&app.database_url)
        .await
        .into_iter()
        .filter_map(|(_, t)| {
            let f: Vec<&str> = t.split('|').collect();
            (f[0] == "rate_limited").then(|| (f[2].to_string(), f[8].to_string(), f[9].to_string()))
        })
        .collect()
}

async fn sign_in_floods_from_one_address_are_refused_and_recorded_once(backend: Backend) {
    let app = TestApp::start_with(Options::new(backend).with("sign-in-rate", "3/min")).await;
    let browser = app.browser();
    for _ in 0..3 {
        app.begin(&browser).await;
    }
    for _ in 0..2 {
        let res = browser.get(app.at("/auth/login")).send().await.unwrap();
        assert_eq!(res.status(), 429);
        assert!(res.headers().get(LOCATION).is_none());
        assert_eq!(res.headers()[RETRY_AFTER], "20");
        let text = page_text(&res.text().await.unwrap());
        assert!(text.contains("Too many sign-in attempts"), "{text}");
        assert!(text.contains("Wait 20 seconds"), "{text}");
        assert!(text.contains("rate_limited"), "{text}");
    }
    // The return from the provider counts too.
    let res = browser
        .get(app.at("/auth/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(
        rate_limited(&app).await,
        [(
            String::new(),
            "sign_in_per_client".to_string(),
            "127.0.0.1".to_string()
        )],
        "one record for the flood"
    );

    // Twenty seconds earn one attempt back, and a sign-in goes through.
    app.clock.advance(20);
    let attempt = app.begin(&browser).await;
    assert!(!attempt.state.is_empty());
    app.clock.advance(20);
    let claims = app.idp.claims("sam@agency.test", &attempt.nonce);
    let res = app
        .finish(&browser, &attempt, claims, crate::idp::Signing::Rs256)
        .await;
    assert_eq!(res.status(), 303);
    assert!(
        app.home(&browser).await.contains("Test Person"),
        "signed in"
    );
}

async fn launches_beyond_a_persons_rate_are_refused_without_a_token(backend: Backend) {
    let app = TestApp::start_with(Options::new(backend).with("launch-rate", "2/min")).await;
    let site = blog_with_editors(&app, &["sam@agency.test", "sasha@agency.test"]).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let launch = |b: &crate::support::Browser| {
        b.post(app.at("/launch"))
            .header("origin", &app.url)
            .form(&[("site", site.as_str()), ("path", "")])
            .send()
    };
    for _ in 0..2 {
        let res = launch(&sam).await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(res.headers()[LOCATION].to_str().unwrap().contains("token="));
    }
    let res = launch(&sam).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get(LOCATION).is_none(), "no token leaves");
    let text = page_text(&res.text().await.unwrap());
    assert!(text.contains("Too many sites opened"), "{text}");
    assert!(text.contains("Wait 30 seconds"), "{text}");
    let (issued, _) = agency_sso::store::launches::count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(issued, 2, "the refused launch issued nothing");
    assert_eq!(
        rate_limited(&app).await,
        [(
            "sam@agency.test".to_string(),
            "launch_per_person".to_string(),
            "127.0.0.1".to_string()
        )]
    );

    // Someone else from the same address is not held up by Sam.
    let sasha = app.browser();
    app.sign_in(&sasha, "sasha@agency.test").await;
    assert_eq!(launch(&sasha).await.unwrap().status(), 303);

    // Half a minute later Sam may open one more.
    app.clock.advance(30);
    assert_eq!(launch(&sam).await.unwrap().status(), 303);
    assert_eq!(launch(&sam).await.unwrap().status(), 429);
}

/// Start a sign-in with `X-Forwarded-For: xff`; returns the status.
async fn login_from(app: &TestApp, xff: &str) -> u16 {
    app.browser()
        .get(app.at("/auth/login"))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = TestApp::start_with(
        Options::new(Backend::Sqlite)
            .with("sign-in-rate", "1/min")
            .with("trusted-proxies", "127.0.0.1"),
    )
    .await;
    let login = |xff: &'static str| login_from(&app, xff);
    assert_eq!(login("198.51.100.7").await, 303);
    assert_eq!(login("198.51.100.7").await, 429);
    // Another client behind the same proxy has its own allowance.
    assert_eq!(login("203.0.113.9").await, 303);
    // A client cannot pick its address by sending its own header: the
    // proxy appends the address it saw, and that one counts.
    assert_eq!(login("203.0.113.50, 198.51.100.7").await, 429);
    assert_eq!(
        rate_limited(&app).await,
        [(
            String::new(),
            "sign_in_per_client".to_string(),
            "198.51.100.7".to_string()
        )]
    );
}

/// Start a sign-in with one header line per entry of `lines`.
async fn login_with(app: &TestApp, name: &str, lines: &[&str]) -> u16 {
    let mut req = app.browser().get(app.at("/auth/login"));
    for line in lines {
        req = req.header(name, *line);
    }
    req.send().await.unwrap().status().as_u16()
}

/// HAProxy adds its own `X-Forwarded-For` line after the one a client sent:
/// the proxy's line names the client, whatever the client's line says; an
/// IPv6 client sweeping its /64 is one client; `Forwarded` works the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forwarded_line_is_read_and_ipv6_clients_are_limited_per_64() {
    let app = TestApp::start_with(
        Options::new(Backend::Sqlite)
            .with("sign-in-rate", "2/min")
            .with("trusted-proxies", "127.0.0.1"),
    )
    .await;
    let xff = |lines: &'static [&'static str]| login_with(&app, "x-forwarded-for", lines);
    assert_eq!(xff(&["203.0.113.1", "198.51.100.7"]).await, 303);
    assert_eq!(xff(&["203.0.113.2", "198.51.100.7"]).await, 303);
    // A new forged first line each time changes nothing: 198.51.100.7 is limited.
    assert_eq!(xff(&["203.0.113.3", "198.51.100.7"]).await, 429);
    assert_eq!(xff(&["203.0.113.4", "198.51.100.7"]).await, 429);
    assert_eq!(
        rate_limited(&app).await,
        [(
            String::new(),
            "sign_in_per_client".to_string(),
            "198.51.100.7".to_string()
        )]
    );
    // Fifty addresses of one /64: two sign-ins, the rest refused.
    let mut answers = Vec::new();
    for i in 1..=50 {
        let line = format!("2001:db8:77:1::{i:x}");
        answers.push(login_with(&app, "x-forwarded-for", &[&line]).await);
    }
    assert_eq!(
        answers.iter().filter(|s| **s == 303).count(),
        2,
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|s| **s == 429).count(), 48);
    // The next /64 is someone else.
    assert_eq!(xff(&["2001:db8:77:2::1"]).await, 303);

    let forwarded = TestApp::start_with(
        Options::new(Backend::Sqlite)
            .with("sign-in-rate", "1/min")
            .with("trusted-proxies", "127.0.0.1")
            .with("proxy-header", "forwarded"),
    )
    .await;
    let fwd = |lines: &'static [&'static str]| login_with(&forwarded, "forwarded", lines);
    assert_eq!(
        fwd(&["for=203.0.113.1", "for=\"[2001:db8::9]:4711\""]).await,
        303
    );
    assert_eq!(
        fwd(&["for=203.0.113.2", "for=\"[2001:db8::10]\""]).await,
        429
    );
    // X-Forwarded-For is not what this proxy writes: a client's is ignored.
    let xff_only = login_with(&forwarded, "x-forwarded-for", &["198.51.100.99"]).await;
    assert_eq!(xff_only, 303, "the proxy's own address, first time");
    let xff_only = login_with(&forwarded, "x-forwarded-for", &["198.51.100.98"]).await;
    assert_eq!(xff_only, 429, "still the proxy's address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_proxy_forwarded_headers_are_ignored() {
    let app =
        TestApp::start_with(Options::new(Backend::Sqlite).with("sign-in-rate", "1/min")).await;
    let login = |xff: &'static str| login_from(&app, xff);
    assert_eq!(login("198.51.100.1").await, 303);
    assert_eq!(login("198.51.100.2").await, 429);
}

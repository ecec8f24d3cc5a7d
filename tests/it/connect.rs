//! Connecting a site in one step: connection codes made by the command
//! line or an approval in the browser, redeemed by stand-in connector
//! sites (the plugin's own verifier, a pending attempt as the plugin keeps
//! it), the URL proved by a signed call to the site, and every refusal
//! leaving nothing half-made.

use agency_sso::domain::audit::{kind, Actor, Event};
use agency_sso::domain::sites::{Profile, SiteInput};
use agency_sso::service::connect::{make_codes, MadeCode};
use agency_sso::store;
use serde_json::{json, Value};

use crate::on_both_databases;
use crate::support::{page_text, Backend, StandInSites, TestApp};

const ADMIN: &str = "boss@agency.test";
const SAM: &str = "sam@agency.test";

async fn codes(app: &TestApp, urls: &[String]) -> Vec<MadeCode> {
    make_codes(
        &app.state.db,
        &app.state.config.public_url,
        urls,
        "Acme",
        24 * 3600,
        &Actor::person(ADMIN, Default::default()),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap()
}

/// A site's redemption, as the plugin sends it: (status, answer).
async fn redeem(app: &TestApp, code: &str, site_url: &str, attempt: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(app.at("/connector/connect"))
        .json(&json!({
            "code": code, "site_url": site_url, "attempt": attempt,
            "site_name": "Alpha Shop", "plugin_version": "0.3.0", "wp_version": "6.1.1",
            "php_version": "8.2.7", "multisite": false
        }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn records(app: &TestApp, k: &str) -> Vec<Event> {
    store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.kind == k)
        .collect()
}

async fn site_count(app: &TestApp) -> usize {
    agency_sso::service::sites::list(&app.state.db)
        .await
        .unwrap()
        .len()
}

on_both_databases!(
    a_code_connects_its_site_once_and_staff_get_in,
    refused_codes_leave_nothing_half_made,
    two_redemptions_of_one_code_connect_once,
    two_approvals_of_one_site_at_once_make_one_site,
    an_existing_site_is_switched_to_the_connector,
);

async fn a_code_connects_its_site_once_and_staff_get_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let issuer = app.state.config.public_url.to_string();
    let url = sites.url("alpha");
    let made = codes(&app, std::slice::from_ref(&url)).await;
    let code = &made[0].code;
    assert!(code.starts_with("asso1."), "{code}");
    // Only the hash is kept.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT code_hash FROM connect_codes")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!code.contains(&stored[0].0));

    sites.set_pending("alpha", &issuer, Some("attempt-1"));
    let (status, answer) = redeem(&app, code, &url, "attempt-1").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["connected"], true);
    assert_eq!(answer["issuer"], issuer.as_str());
    assert_eq!(answer["site_url"], url.as_str());
    assert_eq!(answer["created"], true);
    // The site was asked to confirm, and it did so for this attempt.
    let got = sites.site_received("alpha");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["action"], "connect");

    let site = agency_sso::service::sites::find_site(&app.state.db, &url)
        .await
        .unwrap();
    assert_eq!(site.profile, Profile::Connector);
    assert_eq!(site.name, "Alpha Shop");
    assert_eq!(site.client, "Acme");
    assert_eq!(answer["site_id"], site.id.as_str());
    let connected = records(&app, kind::SITE_CONNECTED).await;
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0].actor, ADMIN, "the admin who made the code");
    assert_eq!(connected[0].site_id, site.id);
    let detail: Value = serde_json::from_str(&connected[0].detail).unwrap();
    assert_eq!(detail["via"], "code");
    assert_eq!(detail["created"], true);
    assert_eq!(detail["site"]["plugin_version"], "0.3.0");
    assert_eq!(records(&app, kind::CONNECT_CODE_CREATED).await.len(), 1);
    // The code never appears in the audit log.
    let all = crate::support::audit_texts(&app.database_url).await;
    assert!(all.iter().all(|(_, t)| !t.contains(&code[40..])));

    // Used once: the same code again is refused, recorded, nothing changes.
    let (status, again) = redeem(&app, code, &url, "attempt-1").await;
    assert_eq!((status, again["error"].as_str()), (409, Some("code_used")));
    assert!(again["message"].as_str().unwrap().contains("already used"));
    let refused = records(&app, kind::SITE_CONNECT_REFUSED).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].reason, "code_used");
    assert_eq!(site_count(&app).await, 1);

    // A staff member granted a role gets in, as the plugin signs them in.
    crate::support::grant(&app, SAM, &site.id, "editor").await;
    let sam = app.signed_in(SAM).await;
    let entered = sites.enter(&app, &sam, &site.id).await;
    assert_eq!(entered["user"]["role"], "editor", "{entered}");
}

async fn refused_codes_leave_nothing_half_made(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let issuer = app.state.config.public_url.to_string();
    let (alpha, beta) = (sites.url("alpha"), sites.url("beta"));
    let made = codes(&app, &[alpha.clone(), beta.clone()]).await;
    let (for_alpha, for_beta) = (&made[0].code, &made[1].code);
    sites.set_pending("alpha", &issuer, Some("a1"));
    sites.set_pending("beta", &issuer, Some("b1"));

    let refused = |status: u16, answer: &Value, code: &str, words: &str| {
        assert_eq!(answer["error"], code, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(words),
            "{answer}"
        );
        assert!((400..600).contains(&status));
    };
    // A code used from another site.
    let (s, a) = redeem(&app, for_alpha, &beta, "b1").await;
    assert_eq!(s, 422);
    refused(s, &a, "wrong_site", &format!("for {alpha}, not for {beta}"));
    // Not a code at all; a code of no one.
    let (s, a) = redeem(&app, "hello", &alpha, "a1").await;
    refused(s, &a, "code_malformed", "starts with asso1");
    let forged = agency_sso::domain::connect::new_code(&issuer, &[9; 32]).code;
    let (s, a) = redeem(&app, &forged, &alpha, "a1").await;
    assert_eq!(s, 404);
    refused(s, &a, "code_unknown", "no such connection code");
    // A site with no connection attempt of its own does not confirm: the
    // code is kept for the real attempt.
    sites.set_pending("alpha", &issuer, None);
    let (s, a) = redeem(&app, for_alpha, &alpha, "a1").await;
    assert_eq!(s, 502);
    refused(s, &a, "site_refused", "no_pending_connection");
    // Another attempt than the site's own.
    sites.set_pending("alpha", &issuer, Some("a2"));
    let (s, a) = redeem(&app, for_alpha, &alpha, "a1").await;
    refused(s, &a, "site_refused", "attempt_mismatch");
    // The site down, answering garbage, a huge body, too slowly.
    sites.set_down("alpha", true);
    let (s, a) = redeem(&app, for_alpha, &alpha, "a2").await;
    refused(s, &a, "site_refused", "HTTP 503");
    sites.set_down("alpha", false);
    sites.set_answer("alpha", Some("<html>Welcome to my blog</html>"));
    let (s, a) = redeem(&app, for_alpha, &alpha, "a2").await;
    refused(s, &a, "site_refused", "not the connector's confirmation");
    sites.set_answer("alpha", Some(&"x".repeat(40_000)));
    let (s, a) = redeem(&app, for_alpha, &alpha, "a2").await;
    refused(s, &a, "site_refused", "longer than 16 KiB");
    sites.set_answer("alpha", None);
    sites.set_slow("alpha", 12);
    let (s, a) = redeem(&app, for_alpha, &alpha, "a2").await;
    refused(s, &a, "site_unreachable", "did not answer in time");
    sites.set_slow("alpha", 0);
    // A URL where nothing answers.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nowhere = format!("http://127.0.0.1:{closed}/site");
    let code_nowhere = codes(&app, std::slice::from_ref(&nowhere)).await[0]
        .code
        .clone();
    let (s, a) = redeem(&app, &code_nowhere, &nowhere, "n1").await;
    refused(s, &a, "site_unreachable", "could not reach this site");
    // A site that redirects (a moved site, or one that sends the call away).
    let redirecting = redirecting_site().await;
    let code_moved = codes(&app, std::slice::from_ref(&redirecting)).await[0]
        .code
        .clone();
    let (s, a) = redeem(&app, &code_moved, &redirecting, "r1").await;
    refused(s, &a, "site_refused", "a redirect");

    // Nothing was made by any of it; each refusal of a known code is recorded.
    assert_eq!(site_count(&app).await, 0);
    let reasons: Vec<String> = records(&app, kind::SITE_CONNECT_REFUSED)
        .await
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "wrong_site",
            "site_refused",
            "site_refused",
            "site_refused",
            "site_refused",
            "site_refused",
            "site_unreachable",
            "site_unreachable",
            "site_refused"
        ]
    );

    // Still usable once the site is right: then an expired code is refused.
    let (s, a) = redeem(&app, for_alpha, &alpha, "a2").await;
    assert_eq!(s, 200, "{a}");
    app.clock.advance(24 * 3600 + 1);
    sites.follow_clock(&app);
    let (s, a) = redeem(&app, for_beta, &beta, "b1").await;
    assert_eq!(s, 410);
    refused(s, &a, "code_expired", "expired");
    assert_eq!(site_count(&app).await, 1);
}

/// A site whose every answer is a redirect elsewhere: its URL.
async fn redirecting_site() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(|| async { axum::response::Redirect::temporary("http://127.0.0.1:9/elsewhere") });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/moved")
}

async fn two_redemptions_of_one_code_connect_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let issuer = app.state.config.public_url.to_string();
    let url = sites.url("alpha");
    let code = codes(&app, std::slice::from_ref(&url)).await[0]
        .code
        .clone();
    sites.set_pending("alpha", &issuer, Some("a1"));
    // The code pasted twice at once (two admins, two tabs).
    let (one, two) = tokio::join!(
        redeem(&app, &code, &url, "a1"),
        redeem(&app, &code, &url, "a1")
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{one:?} {two:?}");
    assert_eq!(site_count(&app).await, 1);
    assert_eq!(records(&app, kind::SITE_CONNECTED).await.len(), 1);
}

async fn two_approvals_of_one_site_at_once_make_one_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let issuer = app.state.config.public_url.to_string();
    let url = sites.url("alpha");
    // Two admins approve the same site's request; both codes come back at once.
    let (ada, other) = (
        Actor::person(ADMIN, Default::default()),
        Actor::person("other-admin@agency.test", Default::default()),
    );
    let now = app.clock.now_for_tests();
    let approve =
        |who| agency_sso::service::connect::approve(&app.state.db, &issuer, &url, who, now);
    let (one, two) = tokio::join!(approve(&ada), approve(&other));
    let (one, two) = (one.unwrap().code, two.unwrap().code);
    sites.set_pending("alpha", &issuer, Some("a1"));
    let (a, b) = tokio::join!(
        redeem(&app, &one, &url, "a1"),
        redeem(&app, &two, &url, "a1")
    );
    // Whichever wins, there is one site, a connector site, and neither
    // redemption left anything half-made.
    assert!(a.0 == 200 || b.0 == 200, "{a:?} {b:?}");
    assert_eq!(site_count(&app).await, 1);
    let site = agency_sso::service::sites::find_site(&app.state.db, &url)
        .await
        .unwrap();
    assert_eq!(site.profile, Profile::Connector);
    let connected = records(&app, kind::SITE_CONNECTED).await;
    let refused = records(&app, kind::SITE_CONNECT_REFUSED).await;
    assert_eq!(connected.len() + refused.len(), 2);
    assert!(connected.iter().all(|e| e.site_id == site.id));
}

async fn an_existing_site_is_switched_to_the_connector(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let issuer = app.state.config.public_url.to_string();
    let url = sites.url("alpha");
    let id = crate::support::add_site(
        &app,
        SiteInput {
            name: "Alpha (TWL)".into(),
            client: "Acme".into(),
            url: url.clone(),
            profile: "twl-sso".into(),
            ..SiteInput::default()
        },
    )
    .await;
    crate::support::grant(&app, SAM, &id, "author").await;
    let code = codes(&app, std::slice::from_ref(&url)).await[0]
        .code
        .clone();
    sites.set_pending("alpha", &issuer, Some("a1"));
    let (s, a) = redeem(&app, &code, &url, "a1").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["created"], false);
    assert_eq!(a["site_id"], id.as_str());
    let site = agency_sso::service::sites::find_site(&app.state.db, &id)
        .await
        .unwrap();
    assert_eq!(site.profile, Profile::Connector);
    assert_eq!(site.name, "Alpha (TWL)", "its settings are kept");
    assert_eq!(
        site.login_template,
        Profile::Connector.default_login_template()
    );
    let detail: Value =
        serde_json::from_str(&records(&app, kind::SITE_CONNECTED).await[0].detail).unwrap();
    assert_eq!(detail["before"]["profile"], "twl-sso");
    assert_eq!(detail["after"]["profile"], "connector");
    // The grant stands, and the launch now goes through the connector.
    let sam = app.signed_in(SAM).await;
    let entered = sites.enter(&app, &sam, &id).await;
    assert_eq!(entered["user"]["role"], "author", "{entered}");
}

/// The browser way: the plugin's button sends the site admin's browser to
/// the dashboard, an admin with a fresh sign-in approves, and the browser
/// goes back to the site with a short-lived code bound to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_approves_a_site_in_the_browser() {
    let app = TestApp::start(Backend::Sqlite).await;
    let sites = StandInSites::start(&app).await;
    let issuer = app.state.config.public_url.to_string();
    let url = sites.url("alpha");
    let back = format!("{url}/wp-admin/admin-post.php?action=agency_sso_connect_back&_wpnonce=n1");
    let ask = format!(
        "/connect?site={}&state=s1&return={}",
        agency_sso::shared::query::encode(&url),
        agency_sso::shared::query::encode(&back)
    );

    // Signed out, or not freshly: sent to sign in again, then back here.
    let stranger = app.browser();
    let res = stranger.get(app.at(&ask)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with("/auth/login?reauth=1&return_to=%2Fconnect"),
        "{to}"
    );
    let stale = app.signed_in(ADMIN).await;
    let res = stale.get(app.at(&ask)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    // Staff cannot approve.
    let sam = app.signed_in_fresh(SAM).await;
    let res = sam.get(app.at(&ask)).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(page_text(&res.text().await.unwrap()).contains("Only an admin can connect a site"));

    let admin = app.signed_in_fresh(ADMIN).await;
    let res = admin.get(app.at(&ask)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("form-action 'self' {}", sites.base)),
        "{csp}"
    );
    let html = page_text(&res.text().await.unwrap());
    assert!(
        html.contains(&format!("Site address, as WordPress reports it: {url}")),
        "{html}"
    );
    assert!(html.contains("It will be added as a new site"), "{html}");

    // The way back must be the site's own.
    for evil in [
        "https://evil.test/wp-admin/admin-post.php",
        &format!("{}/other/wp-admin/admin-post.php", sites.base),
        &format!("{url}/../x#frag"),
    ] {
        let bad = format!(
            "/connect?site={}&state=s1&return={}",
            agency_sso::shared::query::encode(&url),
            agency_sso::shared::query::encode(evil)
        );
        let res = admin.get(app.at(&bad)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{evil}");
    }

    // A decision from another site's page is refused (no Origin of ours).
    let form = [
        ("site", url.as_str()),
        ("state", "s1"),
        ("return", back.as_str()),
        ("decision", "approve"),
    ];
    let res = admin
        .post(app.at("/connect"))
        .header("origin", "https://evil.test")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(records(&app, kind::CONNECT_CODE_CREATED).await.len(), 0);

    // Cancel: back to the site, saying so.
    let mut cancel = form;
    cancel[3] = ("decision", "cancel");
    let res = admin
        .post(app.at("/connect"))
        .header("origin", &app.url)
        .form(&cancel)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap();
    assert_eq!(to, format!("{back}&error=cancelled&state=s1"));

    // Approve: back to the site with a code bound to it.
    let res = admin
        .post(app.at("/connect"))
        .header("origin", &app.url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let to = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(&back));
    let pairs: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "s1");
    let code = pairs["code"].clone();

    // The site redeems it; the record names the approving admin.
    sites.set_pending("alpha", &issuer, Some("a1"));
    let (s, a) = redeem(&app, &code, &url, "a1").await;
    assert_eq!(s, 200, "{a}");
    let connected = records(&app, kind::SITE_CONNECTED).await;
    assert_eq!(connected[0].actor, ADMIN);
    let detail: Value = serde_json::from_str(&connected[0].detail).unwrap();
    assert_eq!(detail["via"], "approval");
    // An approval's code lasts ten minutes.
    let code_made = records(&app, kind::CONNECT_CODE_CREATED).await;
    let made: Value = serde_json::from_str(&code_made[0].detail).unwrap();
    assert_eq!(made["expires_at"].as_i64().unwrap() - code_made[0].at, 600);
}

/// The console makes codes too (a fresh sign-in first), shown once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_makes_codes_after_a_fresh_sign_in() {
    let app = TestApp::start(Backend::Sqlite).await;
    let form = [
        ("urls", "https://one.example\nhttps://two.example/shop/"),
        ("client", "Acme"),
        ("hours", "2"),
    ];
    let stale = app.signed_in(ADMIN).await;
    let (status, body) =
        crate::support::server_fn(&app, &stale, "admin_connect_codes", &form).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("reauth=1"), "{body}");
    let admin = app.signed_in_fresh(ADMIN).await;
    let (status, body) =
        crate::support::server_fn(&app, &admin, "admin_connect_codes", &form).await;
    assert_eq!(status, 200, "{body}");
    let made = body.as_array().unwrap();
    assert_eq!(made.len(), 2);
    assert_eq!(made[1]["url"], "https://two.example/shop");
    assert!(made[0]["code"].as_str().unwrap().starts_with("asso1."));
    let bad = [
        ("urls", "http://plain.example"),
        ("client", ""),
        ("hours", ""),
    ];
    let (status, body) = crate::support::server_fn(&app, &admin, "admin_connect_codes", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("http://plain.example"), "{body}");
    assert_eq!(records(&app, kind::CONNECT_CODE_CREATED).await.len(), 2);
}

/// `agency-sso sites connect-code`: one code per URL given or in an import
/// CSV, printed as CSV for a fleet's script; a bad URL makes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_makes_codes_for_a_fleet() {
    let app = TestApp::start(Backend::Sqlite).await;
    let csv = app.data_dir.with_file_name("fleet.csv");
    std::fs::write(
        &csv,
        "name,client,url\nOne,Acme,https://one.example\nTwo,Acme,https://two.example/blog/\n",
    )
    .unwrap();
    let out = crate::support::run_ok(
        app.command()
            .args([
                "sites",
                "connect-code",
                "https://three.example",
                "--from-csv",
            ])
            .arg(&csv)
            .args(["--hours", "48"]),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "url,code,expires_utc");
    let urls: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://three.example",
            "https://one.example",
            "https://two.example/blog"
        ]
    );
    let codes: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    for c in &codes {
        let parsed = agency_sso::domain::connect::parse_code(c).expect("a code");
        assert_eq!(parsed.issuer, app.url);
    }
    let made = records(&app, kind::CONNECT_CODE_CREATED).await;
    assert_eq!(made.len(), 3);
    assert_eq!(made[0].actor, "command line");
    let detail: Value = serde_json::from_str(&made[0].detail).unwrap();
    assert!((detail["expires_at"].as_i64().unwrap() - made[0].at - 48 * 3600).abs() < 5);

    let err = crate::support::run_err(app.command().args([
        "sites",
        "connect-code",
        "https://four.example",
        "http://plain.example",
    ]));
    assert!(err.contains("http://plain.example"), "{err}");
    assert_eq!(records(&app, kind::CONNECT_CODE_CREATED).await.len(), 3);
}

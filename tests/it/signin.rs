//! Staff sign-in through the callback, against a provider on loopback.

use agency_sso::store;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;

use crate::idp::Signing;
use crate::on_both_databases;
use crate::support::{page_text, run_ok, Backend, TestApp};

on_both_databases!(
    staff_member_signs_in_and_sees_their_name,
    bootstrap_admin_is_admin_from_first_sign_in,
    sign_out_deletes_the_server_side_session,
    disabling_a_person_ends_their_sessions_and_blocks_sign_in,
    a_database_dump_holds_no_live_session,
    access_follows_the_person_not_the_address,
);

/// Sign in as `email` under the provider subject `sub`; the answer.
async fn arrive(app: &TestApp, email: &str, sub: &str) -> (u16, String) {
    let b = app.browser();
    let attempt = app.begin(&b).await;
    let mut claims = app.idp.claims(email, &attempt.nonce);
    claims["sub"] = json!(sub);
    let res = app.finish(&b, &attempt, claims, Signing::Rs256).await;
    let status = res.status().as_u16();
    (status, page_text(&res.text().await.unwrap()))
}

async fn people_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM people")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// A disabled address stays disabled whatever the subject; an address that
/// arrives under a new subject is held until an admin confirms it is the
/// same person (then the old account no longer signs in); the bootstrap
/// list makes an admin at the first sign-in only.
async fn access_follows_the_person_not_the_address(backend: Backend) {
    use crate::support::server_fn;
    let app = TestApp::start_with(
        crate::support::Options::new(backend)
            .with("admin-emails", "boss@agency.test,chief@agency.test"),
    )
    .await;
    let boss = app.signed_in_fresh("boss@agency.test").await;

    // Sam leaves, and comes back through a new account at the provider.
    assert_eq!(arrive(&app, "sam@agency.test", "sam-1").await.0, 303);
    run_ok(app.command().args(["users", "disable", "sam@agency.test"]));
    let before = people_count(&app).await;
    let (status, page) = arrive(&app, "sam@agency.test", "sam-2").await;
    assert_eq!(status, 403);
    assert!(page.contains("person_disabled"), "{page}");
    assert_eq!(
        people_count(&app).await,
        before,
        "no fresh, enabled row for the leaver"
    );

    // Ann's address arrives under another subject: held, not a second Ann.
    assert_eq!(arrive(&app, "ann@agency.test", "ann-1").await.0, 303);
    let ann = store::people::find_by_email(&app.state.db, "ann@agency.test")
        .await
        .unwrap()[0]
        .clone();
    let (status, page) = arrive(&app, "ann@agency.test", "ann-2").await;
    assert_eq!(status, 403);
    assert!(
        page.contains("identity_held") && page.contains("An admin must confirm"),
        "{page}"
    );
    assert_eq!(arrive(&app, "ann@agency.test", "ann-2").await.0, 403);
    // The admin sees it, with how often it was tried.
    let (status, people) = crate::support::people_page(&app, &boss).await;
    assert_eq!(status, 200, "{people}");
    let held = &people["held"][0];
    assert_eq!(
        (&held["email"], &held["subject"], &held["attempts"]),
        (&json!("ann@agency.test"), &json!("ann-2"), &json!(2)),
        "{people}"
    );
    let html = app.page(&boss, "/admin/people").await;
    assert!(page_text(&html).contains("New accounts waiting for confirmation"));
    // Confirming hands it the person, not a copy: same id, grants and history.
    let issuer = held["issuer"].as_str().unwrap().to_string();
    let decide = [
        ("issuer", issuer.as_str()),
        ("subject", "ann-2"),
        ("decision", "confirm"),
    ];
    let (status, body) = server_fn(&app, &boss, "admin_decide_held", &decide).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(arrive(&app, "ann@agency.test", "ann-2").await.0, 303);
    let now_ann = store::people::find_by_email(&app.state.db, "ann@agency.test")
        .await
        .unwrap();
    assert_eq!(now_ann.len(), 1);
    assert_eq!(
        (now_ann[0].id.as_str(), now_ann[0].subject.as_str()),
        (ann.id.as_str(), "ann-2")
    );
    // The old account is now the stranger.
    assert_eq!(arrive(&app, "ann@agency.test", "ann-1").await.0, 403);
    // A refused one is forgotten (and held again if it comes back); the
    // command line lists and decides them too.
    let held = run_ok(app.command().args(["users", "held"]));
    assert!(held.contains("ann@agency.test  account ann-1"), "{held}");
    let out = run_ok(app.command().args([
        "users",
        "decide-held",
        "ann@agency.test",
        "--decision",
        "refuse",
    ]));
    assert!(out.contains("refused"), "{out}");
    assert_eq!(run_ok(app.command().args(["users", "held"])), "");
    let records = crate::support::audit_texts(&app.database_url).await;
    assert!(records
        .iter()
        .any(|(_, t)| t.starts_with("identity_confirmed|boss@agency.test|ann@agency.test")));
    assert!(records
        .iter()
        .any(|(_, t)| t.starts_with("identity_refused|command line|ann@agency.test")));

    // SSO_ADMIN_EMAILS makes an admin at the first sign-in, not at every one.
    let chief = app.browser();
    app.sign_in(&chief, "chief@agency.test").await;
    let chief_id = store::people::find_by_email(&app.state.db, "chief@agency.test")
        .await
        .unwrap()[0]
        .id
        .clone();
    let (status, body) = server_fn(
        &app,
        &boss,
        "admin_set_standing",
        &[("id", chief_id.as_str()), ("change", "demote")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.sign_in(&chief, "chief@agency.test").await;
    let chief = store::people::find_by_email(&app.state.db, "chief@agency.test")
        .await
        .unwrap();
    assert!(!chief[0].is_admin, "re-promoted by the bootstrap list");

    // Ann's account now says it is chief@ (her address changed at the
    // provider to one someone else holds): held, and she is not handed it.
    let (status, page) = arrive(&app, "chief@agency.test", "ann-2").await;
    assert_eq!(status, 403);
    assert!(page.contains("identity_held"), "{page}");
    assert_eq!(
        store::people::find_by_email(&app.state.db, "chief@agency.test")
            .await
            .unwrap()
            .len(),
        1
    );
    let ann_now = store::people::find(&app.state.db, &ann.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann_now.email, "ann@agency.test");
}

/// The sessions table keys rows by a hash of the cookie's value and keeps
/// no copy of it: a dump or a read replica cannot be replayed as a cookie.
async fn a_database_dump_holds_no_live_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.browser();
    app.sign_in_fresh(&boss, "boss@agency.test").await;
    let ann = app.browser();
    app.sign_in(&ann, "ann@agency.test").await;
    let cookies: Vec<String> = [&boss, &ann]
        .iter()
        .map(|b| {
            let header = b.cookie_header();
            let value = header
                .split("; ")
                .find_map(|c| c.strip_prefix("agency-sso="))
                .expect(&header)
                .to_string();
            assert!(value.len() >= 16, "{header}");
            value
        })
        .collect();
    let dump: Vec<(String, String)> = sqlx::query_as("SELECT id, record FROM sessions")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert!(dump.len() >= 2);
    for (id, record) in &dump {
        for cookie in &cookies {
            assert_ne!(id, cookie, "a row is keyed by the cookie's value");
            assert!(
                !record.contains(cookie.as_str()),
                "the record holds the cookie: {record}"
            );
        }
        // Replaying the stored key (or the record's placeholder) as the cookie.
        let thief = app.browser();
        let page = thief
            .get(app.at("/"))
            .header("cookie", format!("agency-sso={id}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page_text(&page).contains("Sign in with"),
            "signed in by a dumped id"
        );
    }
    // The real cookies still work.
    assert!(page_text(&app.home(&boss).await).contains("boss@agency.test"));
}

async fn staff_member_signs_in_and_sees_their_name(backend: Backend) {
    let app = TestApp::start(backend).await;
    let browser = app.browser();

    let page = page_text(&app.home(&browser).await);
    assert!(
        page.contains("Sign in with your identity provider"),
        "{page}"
    );

    let attempt = app.begin(&browser).await;
    assert_eq!(
        attempt.challenge_method.as_deref(),
        Some("S256"),
        "PKCE S256"
    );
    assert!(attempt.state.len() >= 16 && attempt.nonce.len() >= 16);
    assert!(attempt.scope.split(' ').any(|s| s == "openid"));
    assert!(attempt.scope.split(' ').any(|s| s == "email"));

    let before = browser.cookie_header();
    assert!(
        before.contains("agency-sso-attempt=") && !before.contains("agency-sso="),
        "the attempt lives in its own sealed cookie, not in a session: {before}"
    );
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "starting a sign-in writes nothing");
    let mut claims = app.idp.claims("Ann@Agency.test", &attempt.nonce);
    claims["name"] = json!("Ann Example");
    let res = app.finish(&browser, &attempt, claims, Signing::Rs256).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    let after = browser.cookie_header();
    assert!(
        after.contains("agency-sso=") && !after.contains("agency-sso-attempt="),
        "a session once signed in, and the attempt gone: {after}"
    );

    let page = page_text(&app.home(&browser).await);
    assert!(page.contains("Welcome, Ann Example"), "{page}");
    assert!(
        page.contains("ann@agency.test"),
        "e-mail is lower-cased: {page}"
    );
    assert!(page.contains("Staff"), "{page}");
    assert!(page.contains("Sign out"), "{page}");

    let people = store::people::find_by_email(&app.state.db, "ann@agency.test")
        .await
        .unwrap();
    assert_eq!(people.len(), 1);
    assert!(!people[0].is_admin);
    assert_eq!(people[0].issuer, app.idp.issuer());
    assert_eq!(people[0].subject, "sub-Ann@Agency.test");
}

async fn bootstrap_admin_is_admin_from_first_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let browser = app.browser();
    app.sign_in(&browser, "boss@agency.test").await;
    let page = page_text(&app.home(&browser).await);
    assert!(page.contains("Admin"), "{page}");
    let people = store::people::find_by_email(&app.state.db, "boss@agency.test")
        .await
        .unwrap();
    assert!(people[0].is_admin);
}

async fn sign_out_deletes_the_server_side_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let browser = app.browser();
    app.sign_in(&browser, "ann@agency.test").await;
    let person = &store::people::find_by_email(&app.state.db, "ann@agency.test")
        .await
        .unwrap()[0];
    let now = app.clock.now_for_tests();
    assert_eq!(
        store::sessions::count_for_person(&app.state.db, &person.id, now)
            .await
            .unwrap(),
        1
    );

    // Capture the cookie to replay it after sign-out, as a thief would.
    let res = browser.get(app.at("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let stolen = browser.cookie_header();
    assert!(stolen.contains("agency-sso="), "{stolen}");

    let res = browser
        .post(app.at("/auth/logout"))
        .header("origin", &app.url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        store::sessions::count_for_person(&app.state.db, &person.id, now)
            .await
            .unwrap(),
        0
    );
    assert!(page_text(&app.home(&browser).await).contains("Sign in with"));

    let replay = reqwest::Client::new()
        .get(app.at("/"))
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    let page = page_text(&replay.text().await.unwrap());
    assert!(
        page.contains("Sign in with") && !page.contains("Welcome"),
        "{page}"
    );
}

async fn disabling_a_person_ends_their_sessions_and_blocks_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let browser = app.browser();
    app.sign_in(&browser, "ann@agency.test").await;
    assert!(page_text(&app.home(&browser).await).contains("Welcome"));

    let person = &store::people::find_by_email(&app.state.db, "ann@agency.test")
        .await
        .unwrap()[0];
    let ended = agency_sso::service::people::set_disabled(
        &app.state.db,
        &person.email,
        true,
        &agency_sso::domain::audit::Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    assert_eq!(ended, [(person.email.clone(), 1)]);
    let page = page_text(&app.home(&browser).await);
    assert!(
        page.contains("Sign in with") && !page.contains("Welcome"),
        "{page}"
    );

    let other = app.browser();
    let attempt = app.begin(&other).await;
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let res = app.finish(&other, &attempt, claims, Signing::Rs256).await;
    assert_eq!(res.status(), 403);
    let page = page_text(&res.text().await.unwrap());
    assert!(page.contains("ann@agency.test has been disabled"), "{page}");
    assert!(page.contains("person_disabled"), "{page}");
    assert!(page_text(&app.home(&other).await).contains("Sign in with"));
}

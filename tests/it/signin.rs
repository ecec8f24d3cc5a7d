//! Staff sign-in through the callback, against a provider on loopback.

use agency_sso::store;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;

use crate::idp::Signing;
use crate::on_both_databases;
use crate::support::{page_text, Backend, TestApp};

on_both_databases!(
    staff_member_signs_in_and_sees_their_name,
    bootstrap_admin_is_admin_from_first_sign_in,
    sign_out_deletes_the_server_side_session,
    disabling_a_person_ends_their_sessions_and_blocks_sign_in,
);

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
        before.contains("agency-sso="),
        "the attempt lives in a session: {before}"
    );
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
    assert_ne!(before, after, "the session id is cycled at sign-in");

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

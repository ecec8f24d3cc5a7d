//! The callback's negative cases: each must be refused with a clear page,
//! leave nobody signed in, and store nothing of the attempt.

use serde_json::{json, Value};

use crate::idp::Signing;
use crate::support::{audit_texts, blog_with_editors, page_text, Backend, Options, TestApp};

struct Case {
    name: &'static str,
    tweak: fn(&mut Value, &str),
    signing: Signing,
    status: u16,
    code: &'static str,
    says: &'static str,
}

fn none(_: &mut Value, _: &str) {}

const UNVERIFIABLE: &str = "could not be verified";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "wrong nonce",
            tweak: |c, _| c["nonce"] = json!("not-the-nonce"),
            signing: Signing::Rs256,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "missing nonce",
            tweak: |c, _| {
                c.as_object_mut().unwrap().remove("nonce");
            },
            signing: Signing::Rs256,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "wrong audience",
            tweak: |c, _| c["aud"] = json!("some-other-client"),
            signing: Signing::Rs256,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "wrong issuer",
            tweak: |c, _| c["iss"] = json!("https://evil.test"),
            signing: Signing::Rs256,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "expired",
            tweak: |c, _| {
                let now = c["iat"].as_i64().unwrap();
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            },
            signing: Signing::Rs256,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "issued in the future",
            tweak: |c, _| {
                let now = c["iat"].as_i64().unwrap();
                c["iat"] = json!(now + 3600);
                c["exp"] = json!(now + 7200);
            },
            signing: Signing::Rs256,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "alg none",
            tweak: none,
            signing: Signing::AlgNone,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "HS256 keyed with the public key",
            tweak: none,
            signing: Signing::Hs256WithPublicKey,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "HS256 keyed with the client secret",
            tweak: none,
            signing: Signing::Hs256WithClientSecret,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "unknown kid",
            tweak: none,
            signing: Signing::UnknownKid,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "signed by a key the provider does not publish",
            tweak: none,
            signing: Signing::ForeignKey,
            status: 401,
            code: "id_token_invalid",
            says: UNVERIFIABLE,
        },
        Case {
            name: "unverified e-mail",
            tweak: |c, _| c["email_verified"] = json!(false),
            signing: Signing::Rs256,
            status: 403,
            code: "email_unverified",
            says: "has not been verified",
        },
        Case {
            name: "no email_verified claim (Entra ID)",
            tweak: |c, _| {
                c.as_object_mut().unwrap().remove("email_verified");
            },
            signing: Signing::Rs256,
            status: 403,
            code: "email_verification_unknown",
            says: "SSO_TRUST_UNVERIFIED_EMAIL",
        },
        Case {
            name: "Entra's xms_edov says the domain is not verified",
            tweak: |c, _| {
                c.as_object_mut().unwrap().remove("email_verified");
                c["xms_edov"] = json!(false);
            },
            signing: Signing::Rs256,
            status: 403,
            code: "email_unverified",
            says: "has not been verified",
        },
        Case {
            name: "no e-mail",
            tweak: |c, _| {
                c.as_object_mut().unwrap().remove("email");
            },
            signing: Signing::Rs256,
            status: 403,
            code: "email_missing",
            says: "did not share an e-mail",
        },
        Case {
            name: "domain outside the agency",
            tweak: |c, _| c["email"] = json!("olly@elsewhere.test"),
            signing: Signing::Rs256,
            status: 403,
            code: "domain_not_allowed",
            says: "olly@elsewhere.test is not in a domain allowed",
        },
        Case {
            name: "look-alike domain",
            tweak: |c, _| c["email"] = json!("ann@agency.test.evil.test"),
            signing: Signing::Rs256,
            status: 403,
            code: "domain_not_allowed",
            says: "not in a domain allowed",
        },
        Case {
            name: "wrong hd",
            tweak: |c, _| c["hd"] = json!("elsewhere.test"),
            signing: Signing::Rs256,
            status: 403,
            code: "hosted_domain_mismatch",
            says: "does not match an allowed domain",
        },
    ]
}

/// Every case against one dashboard, each in a fresh browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forged_or_unacceptable_id_token_is_refused() {
    let app = TestApp::start(Backend::Sqlite).await;
    for case in cases() {
        let browser = app.browser();
        let attempt = app.begin(&browser).await;
        let mut claims = app.idp.claims("ann@agency.test", &attempt.nonce);
        (case.tweak)(&mut claims, &attempt.nonce);
        let res = app.finish(&browser, &attempt, claims, case.signing).await;
        assert_eq!(res.status().as_u16(), case.status, "{}", case.name);
        let page = page_text(&res.text().await.unwrap());
        assert!(page.contains(case.code), "{}: {page}", case.name);
        assert!(page.contains(case.says), "{}: {page}", case.name);
        assert!(
            page.contains("Try signing in again"),
            "{}: {page}",
            case.name
        );
        assert!(
            page_text(&app.home(&browser).await).contains("Sign in with"),
            "{}: nobody is signed in afterwards",
            case.name
        );
    }
    let (people,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM people")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(people, 0, "no refused attempt created a person");
    let (sessions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "no refused attempt left a session behind");
}

/// Microsoft Entra ID sends no `email_verified`: its `xms_edov` optional
/// claim admits the person, and so does trusting the provider's addresses
/// (`SSO_TRUST_UNVERIFIED_EMAIL`), which still refuses an explicit `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_without_email_verified_are_admitted_only_as_configured() {
    async fn sign_in(app: &TestApp, tweak: impl Fn(&mut Value)) -> (u16, String) {
        let browser = app.browser();
        let attempt = app.begin(&browser).await;
        let mut claims = app.idp.claims("ann@agency.test", &attempt.nonce);
        claims.as_object_mut().unwrap().remove("email_verified");
        tweak(&mut claims);
        let res = app.finish(&browser, &attempt, claims, Signing::Rs256).await;
        let status = res.status().as_u16();
        let home = page_text(&app.home(&browser).await);
        (status, home)
    }
    let strict = TestApp::start(Backend::Sqlite).await;
    let (status, home) = sign_in(&strict, |c| c["xms_edov"] = json!(true)).await;
    assert_eq!(status, 303, "xms_edov: true admits");
    assert!(!home.contains("Sign in with"), "{home}");
    // Entra may send it as a string.
    let (status, _) = sign_in(&strict, |c| c["xms_edov"] = json!("1")).await;
    assert_eq!(status, 303);
    let (status, _) = sign_in(&strict, |_| {}).await;
    assert_eq!(status, 403);

    let trusting =
        TestApp::start_with(Options::new(Backend::Sqlite).with("trust-unverified-email", "true"))
            .await;
    let (status, home) = sign_in(&trusting, |_| {}).await;
    assert_eq!(status, 303, "no claim at all, provider trusted");
    assert!(!home.contains("Sign in with"), "{home}");
    let (status, home) = sign_in(&trusting, |c| c["email_verified"] = json!(false)).await;
    assert_eq!(
        status, 403,
        "an explicit false is refused whatever is trusted"
    );
    assert!(home.contains("Sign in with"), "{home}");
}

/// Strangers cannot make the dashboard write: starting sign-ins stores
/// nothing, and a flood of bogus callbacks from many addresses leaves a
/// handful of audit records, the first of each flood saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_sign_ins_from_many_addresses_write_almost_nothing() {
    let app = TestApp::start_with(
        Options::new(Backend::Sqlite)
            .with("trusted-proxies", "127.0.0.1")
            .with("sign-in-rate", "off"),
    )
    .await;
    let records_before = audit_texts(&app.database_url).await.len();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for i in 0..300u32 {
        let from = format!("198.51.{}.{}", i / 250, i % 250 + 1);
        let login = client
            .get(app.at("/auth/login"))
            .header("x-forwarded-for", &from)
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 303);
        let bogus = client
            .get(app.at(&format!("/auth/callback?code=c{i}&state=s{i}")))
            .header("x-forwarded-for", &from)
            .send()
            .await
            .unwrap();
        assert_eq!(bogus.status(), 400);
    }
    let (sessions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "no sign-in attempt reached the database");
    let records = audit_texts(&app.database_url).await;
    let failures: Vec<&String> = records[records_before..]
        .iter()
        .map(|(_, t)| t)
        .filter(|t| t.contains("sign_in_failed"))
        .collect();
    // 300 failures from 300 addresses within a minute: the overall limit
    // (120 a minute) records the first ones and one saying a flood began.
    assert!(failures.len() <= 121, "{} records", failures.len());
    assert_eq!(
        failures
            .iter()
            .filter(|t| t.contains("counted in the metrics"))
            .count(),
        1
    );
    // A genuine failure of someone the provider vouched for is still recorded.
    let eve = app.browser();
    let attempt = app.begin(&eve).await;
    let claims = app.idp.claims("eve@elsewhere.test", &attempt.nonce);
    let res = app.finish(&eve, &attempt, claims, Signing::Rs256).await;
    assert_eq!(res.status(), 403);
    let records = audit_texts(&app.database_url).await;
    assert!(records.last().unwrap().1.contains("eve@elsewhere.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_mode_sends_hd_and_requires_it_in_the_id_token() {
    let app = TestApp::start_with(Options::new(Backend::Sqlite).with("require-hd", "true")).await;
    let browser = app.browser();
    let attempt = app.begin(&browser).await;
    assert_eq!(attempt.hd.as_deref(), Some("agency.test"), "hd hint sent");
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let res = app.finish(&browser, &attempt, claims, Signing::Rs256).await;
    assert_eq!(res.status(), 403, "no hd claim: a consumer Google account");
    assert!(page_text(&res.text().await.unwrap()).contains("hosted_domain_missing"));

    let browser = app.browser();
    let attempt = app.begin(&browser).await;
    let mut claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    claims["hd"] = json!("agency.test");
    let res = app.finish(&browser, &attempt, claims, Signing::Rs256).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_mismatch_and_missing_attempt_are_refused() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = app.browser();
    let attempt = app.begin(&browser).await;
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let code = app
        .idp
        .issue_code(claims, &attempt.challenge, Signing::Rs256);
    let res = app.callback(&browser, &code, "forged-state").await;
    assert_eq!(res.status(), 400);
    let page = page_text(&res.text().await.unwrap());
    assert!(
        page.contains("state_mismatch") && page.contains("does not belong to this attempt"),
        "{page}"
    );

    // The attempt was used up by the forged response: the genuine state no longer works either.
    let res = app.callback(&browser, &code, &attempt.state).await;
    assert_eq!(res.status(), 400);
    assert!(page_text(&res.text().await.unwrap()).contains("no_attempt"));

    // A forged callback link sent to someone signed in does not sign them out.
    let signed_in = app.browser();
    app.sign_in(&signed_in, "ann@agency.test").await;
    let res = app
        .callback(&signed_in, "forged-code", "forged-state")
        .await;
    assert_eq!(res.status(), 400);
    assert!(page_text(&app.home(&signed_in).await).contains("Welcome"));

    // A callback in a browser that never started a sign-in (login CSRF).
    let res = app.callback(&app.browser(), "any-code", "any-state").await;
    assert_eq!(res.status(), 400);
    assert!(page_text(&res.text().await.unwrap()).contains("not started from this browser"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_is_refused() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = app.browser();
    let attempt = app.begin(&browser).await;
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let code = app
        .idp
        .issue_code(claims, &attempt.challenge, Signing::Rs256);
    assert_eq!(
        app.callback(&browser, &code, &attempt.state).await.status(),
        303
    );

    // The same response replayed in the same browser: the attempt is gone.
    let res = app.callback(&browser, &code, &attempt.state).await;
    assert_eq!(res.status(), 400);

    // Replayed into a fresh attempt: the provider refuses the used code.
    let thief = app.browser();
    let fresh = app.begin(&thief).await;
    let res = app.callback(&thief, &code, &fresh.state).await;
    assert_eq!(res.status(), 502);
    let page = page_text(&res.text().await.unwrap());
    assert!(page.contains("code_exchange_failed"), "{page}");
    assert!(page_text(&app.home(&thief).await).contains("Sign in with"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_expires_and_a_session_ends_at_its_absolute_limit() {
    let app =
        TestApp::start_with(Options::new(Backend::Sqlite).with("session-max-hours", "12")).await;
    let browser = app.browser();
    let attempt = app.begin(&browser).await;
    app.clock.advance(11 * 60);
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let res = app.finish(&browser, &attempt, claims, Signing::Rs256).await;
    assert_eq!(res.status(), 400);
    let page = page_text(&res.text().await.unwrap());
    assert!(
        page.contains("Sign-in expired") && page.contains("attempt_expired"),
        "{page}"
    );

    app.sign_in(&browser, "ann@agency.test").await;
    app.clock.advance(11 * 3600);
    assert!(page_text(&app.home(&browser).await).contains("Welcome"));
    app.clock.advance(3600);
    let page = page_text(&app.home(&browser).await);
    assert!(
        page.contains("Sign in with") && !page.contains("Welcome"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_at_the_provider() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = app.browser();
    let attempt = app.begin(&browser).await;
    let url = format!(
        "{}?error=access_denied&error_description=%3Cscript%3Ex%3C%2Fscript%3E&state={}",
        app.at("/auth/callback"),
        attempt.state
    );
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>x"),
        "provider text is never echoed raw"
    );
    assert!(page_text(&html).contains("Sign-in was cancelled at the identity provider."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_provider_gives_a_clear_page() {
    // Nothing listens on this port: bind one and drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = Options::new(Backend::Sqlite);
    opts.issuer = Some(format!("http://127.0.0.1:{port}"));
    let app = TestApp::start_with(opts).await;
    let browser = app.browser();
    let res = browser.get(app.at("/auth/login")).send().await.unwrap();
    assert_eq!(res.status(), 502);
    let page = page_text(&res.text().await.unwrap());
    assert!(page.contains("Identity provider unavailable"), "{page}");
    assert!(page.contains("could not be reached"), "{page}");
}

/// The provider slow, not down: sign-in fails with a clear page once
/// `SSO_OIDC_TIMEOUT_SECONDS` has passed (well before the provider would
/// answer), the failure is recorded, and staff already signed in keep
/// working meanwhile. A dashboard that has not yet discovered the slow
/// provider says so after the same bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_provider_times_out_with_a_clear_page_and_staff_keep_working() {
    use std::time::{Duration, Instant};
    let app =
        TestApp::start_with(Options::new(Backend::Sqlite).with("oidc-timeout-seconds", "3")).await;
    let blog = blog_with_editors(&app, &["sam@agency.test"]).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;

    // From now on the provider takes 60 s to answer anything.
    app.idp.set_delay(Duration::from_secs(60));
    let ann = app.browser();
    let attempt = app.begin(&ann).await;
    let claims = app.idp.claims("ann@agency.test", &attempt.nonce);
    let code = app
        .idp
        .issue_code(claims, &attempt.challenge, Signing::Rs256);
    let started = Instant::now();
    let ann_returns = async {
        let res = app.callback(&ann, &code, &attempt.state).await;
        (res, started.elapsed())
    };
    let sam_works = async {
        assert!(page_text(&app.home(&sam).await).contains("Blog"));
        let res = app.launch(&sam, &blog).await;
        assert_eq!(res.status(), 303, "launches do not need the provider");
        started.elapsed()
    };
    let ((res, ann_waited), sam_took) = tokio::join!(ann_returns, sam_works);
    assert!(
        sam_took < ann_waited,
        "Sam ({sam_took:?}) was held up by Ann's sign-in ({ann_waited:?})"
    );
    assert!(
        ann_waited >= Duration::from_secs(3) && ann_waited < Duration::from_secs(20),
        "bounded by the configured timeout, not the provider: {ann_waited:?}"
    );
    assert_eq!(res.status(), 502);
    let page = page_text(&res.text().await.unwrap());
    assert!(page.contains("Identity provider unavailable"), "{page}");
    assert!(page.contains("try again in a moment"), "{page}");
    assert!(
        page_text(&app.page(&ann, "/").await).contains("Sign in with"),
        "Ann is not signed in"
    );
    let failures: Vec<String> = audit_texts(&app.database_url)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("sign_in_failed|"))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("provider_unavailable"), "{failures:?}");

    // A second dashboard meeting the slow provider at discovery.
    let mut opts = Options::new(Backend::Sqlite).with("oidc-timeout-seconds", "3");
    opts.issuer = Some(app.idp.issuer().to_string());
    let cold = TestApp::start_with(opts).await;
    let started = Instant::now();
    let res = cold
        .browser()
        .get(cold.at("/auth/login"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(res.status(), 502);
    assert!(page_text(&res.text().await.unwrap()).contains("could not be reached"));

    // The provider answers again: Ann signs in, no restart.
    app.idp.set_delay(Duration::ZERO);
    app.sign_in(&ann, "ann@agency.test").await;
    assert!(page_text(&app.home(&ann).await).contains("Welcome"));
}

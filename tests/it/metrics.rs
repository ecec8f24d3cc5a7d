//! `/metrics` as Prometheus scrapes it: off without a token, 401 with a
//! wrong one, and with the right one counts that follow what happened.

use agency_sso::domain::audit::Actor;
use agency_sso::domain::sites::SiteInput;

use crate::support::{Backend, Options, TestApp};

const TOKEN: &str = "metrics-token-0123456789";

/// The value of the line that starts with `series ` (exact series).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_without_a_token_and_guarded_with_one() {
    let app = TestApp::start(Backend::Sqlite).await;
    let res = reqwest::get(app.at("/metrics")).await.unwrap();
    assert_eq!(res.status(), 404);

    let app = TestApp::start_with(Options::new(Backend::Sqlite).with("metrics-token", TOKEN)).await;
    let client = reqwest::Client::new();
    let res = client.get(app.at("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
    let res = client
        .get(app.at("/metrics"))
        .bearer_auth("metrics-token-0123456788")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_refusals_limits_keys_and_the_audit_chain_are_counted() {
    let app = TestApp::start_with(
        Options::new(Backend::Postgres)
            .with("metrics-token", TOKEN)
            .with("launch-rate", "2/min"),
    )
    .await;
    let now = app.clock.now_for_tests();
    let site = |name: &str, url: &str| SiteInput {
        name: name.into(),
        client: "Client".into(),
        url: url.into(),
        ..SiteInput::default()
    };
    let st = &app.state;
    let blog = agency_sso::service::sites::create_site(
        &st.db,
        &st.master_keys,
        site("Blog", "https://blog.example"),
        &Actor::command_line(),
        now,
    )
    .await
    .unwrap()
    .id;
    let shop = agency_sso::service::sites::create_site(
        &st.db,
        &st.master_keys,
        site("Shop", "https://shop.example"),
        &Actor::command_line(),
        now,
    )
    .await
    .unwrap()
    .id;
    agency_sso::service::access::grant(
        &st.db,
        &["agency.test".to_string()],
        "sam@agency.test",
        &blog,
        "editor",
        &Actor::command_line(),
        now,
    )
    .await
    .unwrap();
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    for s in [&blog, &shop, &blog] {
        sam.post(app.at("/launch"))
            .header("origin", &app.url)
            .form(&[("site", s.as_str()), ("path", "")])
            .send()
            .await
            .unwrap();
    }
    reqwest::get(app.at("/.well-known/jwks.json"))
        .await
        .unwrap();

    let res = reqwest::Client::new()
        .get(app.at("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    // Every line is a comment or `series value`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = l
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {l:?}"));
        assert!(series.starts_with("agency_sso_"), "{l}");
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
    // One issued (blog), one refused (no grant on the shop), one over Sam's limit.
    assert_eq!(value(&text, "agency_sso_launches_total"), Some(1.0));
    assert_eq!(
        value(
            &text,
            "agency_sso_launch_refusals_total{reason=\"no_grant\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "agency_sso_rate_limited_total{limit=\"launch_per_person\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "agency_sso_http_requests_total{route=\"launch\",status=\"3xx\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "agency_sso_http_requests_total{route=\"launch\",status=\"4xx\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "agency_sso_http_request_duration_seconds_count{route=\"launch\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "agency_sso_http_requests_total{route=\"jwks\",status=\"2xx\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "agency_sso_http_requests_total{route=\"sign_in\",status=\"3xx\"}"
        ),
        Some(2.0)
    );
    let signer = app.state.keys.signer().unwrap();
    let age = value(
        &text,
        &format!(
            "agency_sso_signing_key_age_seconds{{kid=\"{}\",state=\"active\"}}",
            signer.kid()
        ),
    );
    assert!(age.is_some_and(|a| (0.0..60.0).contains(&a)), "{text}");
    let (head, _) = agency_sso::store::audit::head(&app.state.db).await.unwrap();
    assert_eq!(
        value(&text, "agency_sso_audit_chain_length"),
        Some(head as f64)
    );
    assert_eq!(value(&text, "agency_sso_database_up"), Some(1.0));
}

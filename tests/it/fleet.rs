//! The fleet: every connector site asked how it stands by a signed status
//! message (stand-in sites answering with the plugin's shape, from their
//! own key cache and refusal counts), the worst first; a site asked to
//! refetch the key set does; sites that do not answer, or answer
//! garbage, are shown as unreachable with why; the command line prints it.

use agency_sso::domain::fleet::{shipped_version, Standing};
use agency_sso::service::fleet::{check_due, check_soon, fleet, readiness, FleetEntry};
use agency_sso::service::messages::http_client;

use crate::on_both_databases;
use crate::support::{Backend, StandInSites, TestApp};

const SAM: &str = "sam@agency.test";

async fn ask_due(app: &TestApp) {
    let client = http_client();
    while check_due(&app.state.core, &client, "test").await.unwrap() > 0 {}
}

fn entry<'a>(entries: &'a [FleetEntry], url: &str) -> &'a FleetEntry {
    entries.iter().find(|e| e.url == url).expect(url)
}

on_both_databases!(
    every_connector_site_says_how_it_stands,
    a_rotation_waits_for_the_sites_that_lack_the_next_key,
);

async fn every_connector_site_says_how_it_stands(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    for name in ["alpha", "beta", "gamma", "delta"] {
        sites.granted_site(&app, name, SAM, "editor").await;
    }
    // A site of another profile is not part of the fleet.
    crate::support::add_site(
        &app,
        agency_sso::domain::sites::SiteInput {
            name: "Twl".into(),
            client: "Acme".into(),
            url: "https://twl.example".into(),
            ..Default::default()
        },
    )
    .await;
    let entries = fleet(&app.state.core).await.unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| e.standing == Standing::Unchecked));
    assert!(entries.iter().all(|e| e.connected_by == "manual"));

    // beta counted refusals; gamma is down; delta answers garbage.
    std::fs::write(
        sites.dir().join("beta.refusals.json"),
        r#"{"refusals":{"token_expired":2,"wrong_audience":1},"refusals_since":1000}"#,
    )
    .unwrap();
    sites.set_down("gamma", true);
    sites.set_answer("delta", Some("<html>hello</html>"));
    // Asked to refetch the key set first: they then hold the signing key.
    check_soon(&app.state.core, None, true).await.unwrap();
    ask_due(&app).await;

    let entries = fleet(&app.state.core).await.unwrap();
    let kid = app.state.keys.signer().unwrap().kid().to_string();
    let alpha = entry(&entries, &sites.url("alpha"));
    assert_eq!(alpha.standing, Standing::Ok, "{alpha:?}");
    assert_eq!(alpha.plugin_version, shipped_version());
    assert_eq!(
        (alpha.wp_version.as_str(), alpha.outdated),
        ("6.1.1", false)
    );
    assert!(
        alpha.keys.contains(&kid) && alpha.has_active_key,
        "{alpha:?}"
    );
    assert!(alpha.answered_at.is_some());
    let beta = entry(&entries, &sites.url("beta"));
    assert_eq!(beta.standing, Standing::Refusing);
    assert_eq!(
        beta.attention,
        "It refused 3: token_expired ×2, wrong_audience ×1."
    );
    let gamma = entry(&entries, &sites.url("gamma"));
    assert_eq!(gamma.standing, Standing::Unreachable);
    assert!(
        gamma.attention.contains("HTTP 503") && gamma.attention.contains("never answered"),
        "{}",
        gamma.attention
    );
    let delta = entry(&entries, &sites.url("delta"));
    assert_eq!(delta.standing, Standing::Unreachable);
    assert!(
        delta.problem.contains("not the connector's report"),
        "{}",
        delta.problem
    );
    // Worst first.
    let order: Vec<Standing> = entries.iter().map(|e| e.standing).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    // Each site was asked once, and not again until it is due.
    assert_eq!(sites.site_received("alpha").len(), 1);
    assert_eq!(sites.site_received("alpha")[0]["action"], "refresh-keys");
    ask_due(&app).await;
    assert_eq!(sites.site_received("alpha").len(), 1);

    // gamma comes back: asked again after the retry delay (still to
    // refetch the keys, as asked), it reports and holds the key.
    sites.set_down("gamma", false);
    app.clock.advance(agency_sso::service::fleet::RETRY + 1);
    sites.follow_clock(&app);
    ask_due(&app).await;
    let entries = fleet(&app.state.core).await.unwrap();
    let gamma = entry(&entries, &sites.url("gamma"));
    assert_eq!(gamma.standing, Standing::Ok, "{gamma:?}");
    assert_eq!(
        sites.site_received("gamma").last().unwrap()["action"],
        "refresh-keys"
    );

    // The command line (another process, on this machine's clock) asks
    // every site now and waits for the answers.
    sites.set_clock_offset(0);
    let out = crate::support::run_ok(app.command().args(["sites", "status", "--check", "--csv"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("url,name,client,standing,attention"));
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        out.contains(&format!(
            "\"{}\",\"alpha\",\"Acme\",\"ok\"",
            sites.url("alpha")
        )),
        "{out}"
    );
    assert_eq!(sites.site_received("alpha").len(), 2);
    assert_eq!(sites.site_received("alpha")[1]["action"], "status");
    let only = crate::support::run_ok(
        app.command()
            .args(["sites", "status", "--state", "refusing"]),
    );
    assert_eq!(only.lines().count(), 2, "{only}");
    assert!(only.contains(&sites.url("beta")));
}

async fn a_rotation_waits_for_the_sites_that_lack_the_next_key(backend: Backend) {
    use agency_sso::domain::audit::{kind, Actor};
    let app = TestApp::start_with(
        crate::support::Options::new(backend)
            .with("key-publish-ahead-hours", "3")
            .with("jwks-max-age", "3600"),
    )
    .await;
    let sites = StandInSites::start(&app).await;
    let a = sites.granted_site(&app, "alpha", SAM, "editor").await;
    sites.granted_site(&app, "beta", SAM, "editor").await;
    check_soon(&app.state.core, None, false).await.unwrap();
    ask_due(&app).await;
    // A rotation is scheduled: the next key is published, due in three hours.
    let now = app.clock.now_for_tests();
    let (at, _) = app
        .state
        .keys
        .rotate_soon(&Actor::command_line(), now)
        .await
        .unwrap();
    let next = app.state.keys.snapshot().ring.next().unwrap().kid.clone();
    // Asked how they stand, the sites still hold their cached set (max-age an hour).
    check_soon(&app.state.core, None, false).await.unwrap();
    ask_due(&app).await;
    let ready = readiness(&app.state.core).await.unwrap().unwrap();
    assert_eq!(
        (ready.kid.as_str(), ready.holding, ready.answered),
        (next.as_str(), 0, 2)
    );
    let entries = fleet(&app.state.core).await.unwrap();
    let alpha = entry(&entries, &sites.url("alpha"));
    assert_eq!(alpha.standing, Standing::MissingKey);
    assert!(
        alpha.attention.contains(&format!("next key {next}")),
        "{}",
        alpha.attention
    );

    // Its time comes: the schedule waits, and says so once.
    app.clock.advance(at - now + 1);
    sites.follow_clock(&app);
    let old = app.state.keys.signer().unwrap().kid().to_string();
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    assert_eq!(
        app.state.keys.signer().unwrap().kid(),
        old,
        "still the old key"
    );
    let held = crate::support::audit_texts(&app.database_url)
        .await
        .into_iter()
        .filter(|(_, t)| t.contains(kind::KEY_ACTIVATION_HELD))
        .count();
    assert_eq!(held, 1);

    // The keys page says so, and staff cannot ask.
    let admin = app.signed_in("boss@agency.test").await;
    let (status, body) = crate::support::server_fn(&app, &admin, "admin_key_readiness", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["kid"].as_str(),
            body["holding"].as_u64(),
            body["answered"].as_u64()
        ),
        (Some(next.as_str()), Some(0), Some(2))
    );
    let staff = app.signed_in(SAM).await;
    let (status, _) = crate::support::server_fn(&app, &staff, "admin_refetch_next_key", &[]).await;
    assert_eq!(status, 403);

    // One site is asked to refetch: one of two hold it, still waiting.
    check_soon(&app.state.core, Some(std::slice::from_ref(&a)), true)
        .await
        .unwrap();
    ask_due(&app).await;
    let ready = readiness(&app.state.core).await.unwrap().unwrap();
    assert_eq!((ready.holding, ready.answered), (1, 2));
    assert_eq!(
        ready
            .lacking
            .iter()
            .map(|(_, u)| u.clone())
            .collect::<Vec<_>>(),
        [sites.url("beta")]
    );
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    assert_eq!(app.state.keys.signer().unwrap().kid(), old);
    // Then the rest, from the keys page: the rotation goes on at the next turn.
    let (status, body) =
        crate::support::server_fn(&app, &admin, "admin_refetch_next_key", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("1 site(s) will be asked"),
        "{body}"
    );
    ask_due(&app).await;
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    assert_eq!(app.state.keys.signer().unwrap().kid(), next);
}

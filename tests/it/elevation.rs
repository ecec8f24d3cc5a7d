//! Just-in-time access through the services, as the console and the
//! command line call them: eligible grants, requests, decisions, and
//! elevations that raise the role on a connector site at once and lower it
//! at their end (the stand-in sites run the plugin's own PHP), each step
//! one audit record.

use agency_sso::domain::audit::{kind, Actor, Origin};
use agency_sso::service::elevation::{
    self as jit, Approver, Decided, Elevation, ElevationError, Requester,
};
use agency_sso::service::messages::{deliver_due, http_client};
use agency_sso::store;

use crate::on_both_databases;
use crate::support::{Backend, StandInSites, TestApp};

const ADMIN: &str = "boss@agency.test";
const SAM: &str = "sam@agency.test";
const SASHA: &str = "sasha@agency.test";
const REASON: &str = "INC-4711: the checkout is broken";

fn lasting() -> agency_sso::domain::access::GrantTerms {
    agency_sso::domain::access::GrantTerms {
        expires_at: None,
        reason: String::new(),
    }
}

fn person(email: &str) -> Actor {
    Actor::person(email, Origin::default())
}

async fn deliver(app: &TestApp) -> usize {
    deliver_due(&app.state.core, &http_client(), "w")
        .await
        .unwrap()
}

async fn kinds(app: &TestApp) -> Vec<String> {
    store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.kind)
        .filter(|k| k.starts_with("elevation_"))
        .collect()
}

async fn records(app: &TestApp, k: &str) -> Vec<agency_sso::domain::audit::Event> {
    store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.kind == k)
        .collect()
}

/// Sam holds editor on a connector site and may ask for administrator for
/// up to two hours; returns the site's id.
async fn eligible_site(app: &TestApp, sites: &StandInSites, name: &str) -> String {
    let id = sites.granted_site(app, name, SAM, "editor").await;
    agency_sso::service::access::grant_eligible(
        &app.state.db,
        &[],
        SAM,
        &id,
        "editor",
        &lasting(),
        Some(("administrator", 120)),
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    id
}

async fn ask(
    app: &TestApp,
    email: &str,
    site: &str,
    role: &str,
    minutes: i64,
    reason: &str,
) -> Result<Elevation, ElevationError> {
    let me = person(email);
    let by = Requester {
        actor: &me,
        on_behalf: false,
    };
    jit::request(
        &app.state.db,
        &by,
        email,
        site,
        role,
        minutes,
        reason,
        app.clock.now_for_tests(),
    )
    .await
}

async fn decide_as(
    app: &TestApp,
    email: &str,
    is_admin: bool,
    id: &str,
    approve: bool,
    comment: &str,
) -> Result<Decided, ElevationError> {
    let me = person(email);
    let by = Approver {
        actor: &me,
        email: Some(email),
        is_admin,
    };
    jit::decide(
        &app.state.db,
        &by,
        id,
        approve,
        comment,
        app.clock.now_for_tests(),
    )
    .await
}

fn code<T: std::fmt::Debug>(r: Result<T, ElevationError>) -> &'static str {
    r.unwrap_err().code()
}

async fn elevation_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM elevations")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// Sam asks for administrator with a reason; the admin approves; the
/// site is told at once (Sam never launches again for it); his next launch
/// carries administrator; when the clock passes the end, the expiry job
/// lowers him to editor on the site, and his launches carry editor again.
/// Every step is one record.
async fn an_approved_elevation_raises_the_role_at_once_and_ends_by_itself(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let sam = app.signed_in(SAM).await;
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );

    let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    assert_eq!((asked.state.as_str(), asked.minutes), ("pending", 60));
    assert_eq!(asked.reason, REASON);
    // Pending: launches still carry editor.
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );

    let d = decide_as(&app, ADMIN, true, &asked.id, true, "go ahead")
        .await
        .unwrap();
    assert!(!d.self_approved);
    assert_eq!(d.messages, 1, "the role goes to the site with the approval");
    let approved_at = app.clock.now_for_tests();
    assert_eq!(d.elevation.state, "active");
    assert_eq!(d.elevation.ends_at, Some(approved_at + 3600));
    // Decided: a second decision is told so.
    assert_eq!(
        code(decide_as(&app, "lead@agency.test", true, &asked.id, false, "too late").await),
        "not_pending"
    );

    assert_eq!(deliver(&app).await, 1);
    let got = sites.received("blog");
    assert_eq!(
        (got[0]["action"].as_str(), got[0]["role"].as_str()),
        (Some("set-role"), Some("administrator"))
    );
    assert_eq!(sites.user("blog", SAM).unwrap()["role"], "administrator");
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "administrator",
        "the launch carries the elevated role"
    );

    // Ten seconds before the end nothing happens; after it, the job ends it.
    app.clock.advance(3590);
    sites.follow_clock(&app);
    let now = app.clock.now_for_tests();
    assert_eq!(jit::end_due(&app.state.db, now).await.unwrap(), 0);
    app.clock.advance(10);
    sites.follow_clock(&app);
    let now = app.clock.now_for_tests();
    assert_eq!(jit::end_due(&app.state.db, now).await.unwrap(), 1);
    // Another instance looking finds nothing left to do.
    assert_eq!(jit::end_due(&app.state.db, now).await.unwrap(), 0);
    assert_eq!(deliver(&app).await, 1);
    let got = sites.received("blog");
    assert_eq!(
        (got[1]["action"].as_str(), got[1]["role"].as_str()),
        (Some("set-role"), Some("editor"))
    );
    assert_eq!(sites.user("blog", SAM).unwrap()["role"], "editor");
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );

    assert_eq!(
        kinds(&app).await,
        [
            kind::ELEVATION_REQUESTED,
            kind::ELEVATION_APPROVED,
            kind::ELEVATION_STARTED,
            kind::ELEVATION_EXPIRED,
        ]
    );
    let approved = &records(&app, kind::ELEVATION_APPROVED).await[0];
    assert_eq!(
        (
            approved.actor.as_str(),
            approved.subject.as_str(),
            approved.role.as_str()
        ),
        (ADMIN, SAM, "administrator")
    );
    assert_eq!(approved.reason, REASON);
    assert!(approved.detail.contains("go ahead"), "{}", approved.detail);
    let expired = &records(&app, kind::ELEVATION_EXPIRED).await[0];
    assert_eq!(expired.actor, "system");
    // The chain holds.
    agency_sso::service::audit::verify(&app.state.db, &app.state.master_keys, &[])
        .await
        .unwrap();
}

/// What may be asked: the eligible role, within the limit, with a reason,
/// one at a time, on a site one is eligible on. Each refusal has its code
/// and writes nothing.
async fn requests_outside_the_rules_are_refused_and_write_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let shop = sites.granted_site(&app, "shop", SAM, "editor").await;
    let before = kinds(&app).await.len();
    let cases = [
        (
            blog.as_str(),
            "administrator",
            121,
            REASON,
            "duration_too_long",
        ),
        (
            blog.as_str(),
            "administrator",
            2,
            REASON,
            "duration_too_short",
        ),
        (blog.as_str(), "author", 60, REASON, "role_not_eligible"),
        (
            blog.as_str(),
            "shop_manager",
            60,
            REASON,
            "role_not_on_site",
        ),
        (
            blog.as_str(),
            "administrator",
            60,
            "urgent",
            "reason_too_short",
        ),
        (shop.as_str(), "administrator", 60, REASON, "not_eligible"),
    ];
    for (site, role, minutes, reason, want) in cases {
        let got = ask(&app, SAM, site, role, minutes, reason).await;
        assert_eq!(code(got), want, "{role} {minutes} {reason}");
    }
    assert_eq!(elevation_rows(&app).await, 0);
    assert_eq!(kinds(&app).await.len(), before);
    // A message a person reads.
    let e = ask(&app, SAM, &blog, "administrator", 121, REASON)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "You may ask for up to 2 hours at a time on this site."
    );

    // One open at a time.
    let first = ask(&app, SAM, &blog, "administrator", 30, REASON)
        .await
        .unwrap();
    assert_eq!(
        code(ask(&app, SAM, &blog, "administrator", 30, REASON).await),
        "request_open"
    );
    assert_eq!(elevation_rows(&app).await, 1);
    // Withdrawn while pending, then asked again.
    let me = person(SAM);
    // Sasha cannot withdraw Sam's request.
    assert_eq!(
        code(jit::cancel(&app.state.db, &person(SASHA), false, &first.id, 0).await),
        "unknown_request"
    );
    let gone = jit::cancel(
        &app.state.db,
        &me,
        false,
        &first.id,
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    assert_eq!(gone.state, "cancelled");
    assert_eq!(
        code(decide_as(&app, ADMIN, true, &first.id, true, "").await),
        "not_pending"
    );
    ask(&app, SAM, &blog, "administrator", 30, REASON)
        .await
        .unwrap();
    assert_eq!(
        kinds(&app).await[before..],
        [
            kind::ELEVATION_REQUESTED,
            kind::ELEVATION_CANCELLED,
            kind::ELEVATION_REQUESTED
        ]
    );
}

/// Who decides: not the requester (not even an admin on their own), not a
/// colleague; an admin, someone named for the site, or the operator. A
/// denial says why. Two approvers at once: one decision wins.
async fn only_approvers_decide_and_one_decision_wins(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    assert_eq!(
        code(decide_as(&app, SAM, true, &asked.id, true, "").await),
        "own_request"
    );
    assert_eq!(
        code(decide_as(&app, SASHA, false, &asked.id, true, "").await),
        "not_an_approver"
    );
    assert_eq!(
        code(decide_as(&app, ADMIN, true, &asked.id, false, " ").await),
        "comment_required"
    );
    // Named for the site: Sasha may decide now.
    jit::set_site_approver(
        &app.state.db,
        &[],
        SASHA,
        &blog,
        true,
        &Actor::command_line(),
        0,
    )
    .await
    .unwrap();
    let denied = decide_as(
        &app,
        SASHA,
        false,
        &asked.id,
        false,
        "not during the code freeze",
    )
    .await
    .unwrap();
    assert_eq!(denied.elevation.state, "denied");
    assert_eq!(denied.elevation.comment, "not during the code freeze");
    assert_eq!(denied.messages, 0);

    // Two admins approve at the same moment: exactly one wins.
    let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        decide_as(&app, ADMIN, true, &asked.id, true, ""),
        decide_as(&app, "ada@agency.test", true, &asked.id, false, "no, wait"),
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let loser = if a.is_ok() { b } else { a };
    assert_eq!(code(loser), "not_pending");
    let decisions = records(&app, kind::ELEVATION_APPROVED).await.len()
        + records(&app, kind::ELEVATION_DENIED).await.len();
    assert_eq!(decisions, 2, "the denial before, and the one winner");
}

/// An elevation never outlives what it rests on: the eligibility taken
/// away, the grant revoked, the person disabled each end it at once, with
/// its record and the role sent to the site.
async fn an_elevation_ends_with_the_eligibility_it_rests_on(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let sam = app.signed_in(SAM).await;
    sites.enter(&app, &sam, &blog).await;
    let elevate = || async {
        let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
            .await
            .unwrap();
        decide_as(&app, ADMIN, true, &asked.id, true, "")
            .await
            .unwrap();
        deliver(&app).await;
        assert_eq!(sites.user("blog", SAM).unwrap()["role"], "administrator");
        asked.id
    };
    let state = |id: String| {
        let db = app.state.db.clone();
        async move {
            let mut conn = db.pool.acquire().await.unwrap();
            let e = store::elevations::find(&mut conn, &id)
                .await
                .unwrap()
                .unwrap();
            (e.state, e.end_reason)
        }
    };
    let by = Actor::command_line();

    // The eligibility taken away: editor again at once.
    let id = elevate().await;
    jit::set_eligibility(
        &app.state.db,
        SAM,
        &blog,
        None,
        &by,
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    assert_eq!(state(id).await, ("ended".into(), "eligibility_lost".into()));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(sites.user("blog", SAM).unwrap()["role"], "editor");
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );

    // The grant revoked: no role left there.
    jit::set_eligibility(
        &app.state.db,
        SAM,
        &blog,
        Some(("administrator", 60)),
        &by,
        0,
    )
    .await
    .unwrap();
    let id = elevate().await;
    agency_sso::service::access::revoke(&app.state.db, SAM, &blog, &by, app.clock.now_for_tests())
        .await
        .unwrap();
    assert_eq!(state(id).await, ("ended".into(), "eligibility_lost".into()));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(sites.user("blog", SAM).unwrap()["role"], "");

    // The person disabled: the elevation ends with the lock.
    agency_sso::service::access::grant_eligible(
        &app.state.db,
        &[],
        SAM,
        &blog,
        "editor",
        &lasting(),
        Some(("administrator", 60)),
        &by,
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    sites.enter(&app, &sam, &blog).await;
    let id = elevate().await;
    agency_sso::service::people::set_disabled(
        &app.state.db,
        SAM,
        true,
        &by,
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    assert_eq!(state(id).await, ("ended".into(), "eligibility_lost".into()));
    assert_eq!(records(&app, kind::ELEVATION_ENDED).await.len(), 3);
    // Nothing is left to expire later.
    app.clock.advance(7200);
    assert_eq!(
        jit::end_due(&app.state.db, app.clock.now_for_tests())
            .await
            .unwrap(),
        0
    );
}

/// Break-glass: where an admin allows it, an eligible person approves
/// their own request within the site's short limit; the record says so.
async fn break_glass_self_approval_is_allowed_where_set_and_flagged(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let asked = ask(&app, SAM, &blog, "administrator", 45, REASON)
        .await
        .unwrap();
    assert_eq!(
        code(decide_as(&app, SAM, false, &asked.id, true, "").await),
        "own_request"
    );
    jit::set_self_approval(&app.state.db, &blog, Some(30), &Actor::command_line(), 0)
        .await
        .unwrap();
    assert_eq!(
        code(decide_as(&app, SAM, false, &asked.id, true, "").await),
        "self_approval_too_long"
    );
    let me = person(SAM);
    jit::cancel(&app.state.db, &me, false, &asked.id, 0)
        .await
        .unwrap();
    let asked = ask(&app, SAM, &blog, "administrator", 30, REASON)
        .await
        .unwrap();
    let d = decide_as(&app, SAM, false, &asked.id, true, "3 a.m., nobody answers")
        .await
        .unwrap();
    assert!(d.self_approved);
    assert_eq!(d.elevation.self_approved, 1);
    let flagged = records(&app, kind::ELEVATION_SELF_APPROVED).await;
    assert_eq!(flagged.len(), 1);
    let detail: serde_json::Value = serde_json::from_str(&flagged[0].detail).unwrap();
    assert_eq!(detail["break_glass"], true);
    assert_eq!(flagged[0].actor, SAM);
    // Sam ends it early himself.
    let ended = jit::end_early(
        &app.state.db,
        &me,
        false,
        &asked.id,
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    assert_eq!(
        (ended.state.as_str(), ended.end_reason.as_str()),
        ("ended", "ended_early")
    );
    assert_eq!(records(&app, kind::ELEVATION_ENDED_EARLY).await.len(), 1);
}

/// The console's functions, over HTTP as the pages call them: Sam sees
/// where he may ask and asks (a refusal carries its code); a request from
/// another origin is refused before it runs; approving needs an admin's
/// recent sign-in; Sam ends it himself.
async fn the_console_asks_and_decides_by_the_same_rules(backend: Backend) {
    use crate::support::server_fn;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let sam = app.signed_in(SAM).await;
    let (status, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert_eq!(status, 200, "{cards}");
    assert_eq!(cards.as_array().unwrap().len(), 1, "{cards}");
    assert_eq!(cards[0]["eligible_role"], "administrator");
    assert_eq!(cards[0]["limit"], "2 hours");
    assert!(cards[0]["open"].is_null());

    let ask = |reason: &'static str| {
        let (app, sam, blog) = (&app, &sam, blog.clone());
        async move {
            server_fn(
                app,
                sam,
                "request_access",
                &[
                    ("site", blog.as_str()),
                    ("role", "administrator"),
                    ("minutes", "60"),
                    ("reason", reason),
                ],
            )
            .await
        }
    };
    let (status, body) = ask("urgent").await;
    assert_ne!(status, 200);
    assert!(body.to_string().contains("reason_too_short"), "{body}");
    // From another site's page: refused at the edge, nothing written.
    let res = sam
        .post(app.at("/api/request_access"))
        .header("origin", "https://evil.example")
        .form(&[
            ("site", blog.as_str()),
            ("role", "administrator"),
            ("minutes", "60"),
            ("reason", REASON),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(elevation_rows(&app).await, 0);

    let (status, body) = ask(REASON).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("Asked: administrator on blog for 1 hour"),
        "{body}"
    );
    let id: String = sqlx::query_scalar("SELECT id FROM elevations")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();

    // Sam cannot decide it through the console.
    let (status, _) = server_fn(
        &app,
        &sam,
        "admin_decide_access",
        &[("id", &id), ("decision", "approve"), ("comment", "")],
    )
    .await;
    assert_eq!(status, 403);
    // An admin whose sign-in is not recent is sent to sign in again.
    let stale = app.signed_in(ADMIN).await;
    let (status, body) = server_fn(
        &app,
        &stale,
        "admin_decide_access",
        &[("id", &id), ("decision", "approve"), ("comment", "")],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, n) = server_fn(&app, &stale, "admin_access_waiting", &[]).await;
    assert_eq!((status, n), (200, serde_json::json!(1)));
    let fresh = app.signed_in_fresh(ADMIN).await;
    let (status, body) = server_fn(
        &app,
        &fresh,
        "admin_decide_access",
        &[("id", &id), ("decision", "approve"), ("comment", "ok")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("Approved: sam@agency.test is administrator"),
        "{body}"
    );
    let (_, view) = server_fn(&app, &fresh, "admin_access", &[]).await;
    assert_eq!(view["pending"].as_array().unwrap().len(), 0, "{view}");
    assert_eq!(view["active"][0]["email"], SAM, "{view}");

    let (_, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert_eq!(cards[0]["open"][1], "active", "{cards}");
    let (status, body) = server_fn(
        &app,
        &sam,
        "close_access",
        &[("id", &id), ("state", "active")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert!(cards[0]["open"].is_null(), "{cards}");
    assert_eq!(records(&app, kind::ELEVATION_ENDED_EARLY).await.len(), 1);
}

/// The console's settings for a site: an admin makes a grant eligible in
/// the grant form, sets break-glass (a recent sign-in needed) and names an
/// approver; that approver, not an admin, sees Sam's request on their home
/// page and decides it there.
async fn a_named_approver_decides_from_their_home_page(backend: Backend) {
    use crate::support::server_fn;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = sites.granted_site(&app, "blog", SAM, "editor").await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let grant = |eligible: &'static str| {
        let (app, boss, blog) = (&app, &boss, blog.clone());
        async move {
            server_fn(
                app,
                boss,
                "admin_grant",
                &[
                    ("site", blog.as_str()),
                    ("email", SAM),
                    ("role", "editor"),
                    ("duration", ""),
                    ("reason", ""),
                    ("eligible", eligible),
                    ("eligible_minutes", "60"),
                ],
            )
            .await
        }
    };
    let (status, body) = grant("administrator").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "sam@agency.test can now enter blog as editor, and ask for administrator for up to 1 hour."
    );
    let (status, body) = grant("author").await;
    assert_eq!(status, 422, "not above editor: {body}");
    let (_, site) = server_fn(&app, &boss, "admin_site", &[("id", &blog)]).await;
    let row = site["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == SAM)
        .unwrap()
        .clone();
    assert_eq!(
        row["eligible"], "may ask for administrator, up to 1 hour at a time",
        "{row}"
    );

    let stale = app.signed_in(ADMIN).await;
    let (status, _) = server_fn(
        &app,
        &stale,
        "admin_set_break_glass",
        &[("site", &blog), ("minutes", "30")],
    )
    .await;
    assert_eq!(status, 401, "break-glass needs a recent sign-in");
    let (status, body) = server_fn(
        &app,
        &boss,
        "admin_set_break_glass",
        &[("site", &blog), ("minutes", "30")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server_fn(
        &app,
        &boss,
        "admin_set_approver",
        &[("site", &blog), ("email", SASHA), ("on", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, site) = server_fn(&app, &boss, "admin_site", &[("id", &blog)]).await;
    assert_eq!(
        (
            site["self_approval"].as_str(),
            site["approvers"][0].as_str()
        ),
        (Some("30"), Some(SASHA))
    );

    ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    // Sasha, not an admin, sees it on her home page.
    let sasha = app.signed_in(SASHA).await;
    let (status, cards) = server_fn(&app, &sasha, "my_decisions", &[]).await;
    assert_eq!(status, 200, "{cards}");
    assert_eq!(
        cards[0]["label"], "sam@agency.test asks for administrator on blog",
        "{cards}"
    );
    // Sam sees none: his own request is not his to decide.
    let sam = app.signed_in(SAM).await;
    let (_, none) = server_fn(&app, &sam, "my_decisions", &[]).await;
    assert_eq!(none, serde_json::json!([]));
    let id = cards[0]["id"].as_str().unwrap().to_string();
    let (status, body) = server_fn(
        &app,
        &sasha,
        "decide_access",
        &[("id", &id), ("decision", "approve"), ("comment", "")],
    )
    .await;
    assert_ne!(status, 200);
    assert!(body.to_string().contains("reauth_required"), "{body}");
    let sasha = app.signed_in_fresh(SASHA).await;
    let (status, body) = server_fn(
        &app,
        &sasha,
        "decide_access",
        &[("id", &id), ("decision", "approve"), ("comment", "")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("Approved: sam@agency.test is administrator on blog"),
        "{body}"
    );
    let approved = &records(&app, kind::ELEVATION_APPROVED).await[0];
    assert_eq!(approved.actor, SASHA);

    // Taken off again from the grant form: eligible for nothing, the
    // elevation ends with it.
    let (status, body) = grant("none").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(records(&app, kind::ELEVATION_ENDED).await.len(), 1);
}

/// Through a team: the team's grant makes its members eligible; an
/// elevation resting on it ends when the member leaves the team, and the
/// team's named approver may decide its members' requests.
async fn a_team_grant_makes_its_members_eligible_until_they_leave(backend: Backend) {
    use agency_sso::service::teams;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    // The site exists, Sam holds nothing there himself.
    let blog = sites.granted_site(&app, "blog", SASHA, "author").await;
    let by = Actor::command_line();
    let now = app.clock.now_for_tests();
    let ops = teams::create_team(&app.state.db, "Ops", "", &by, now)
        .await
        .unwrap();
    teams::add_members(&app.state.db, &[], &ops, SAM, &by, now)
        .await
        .unwrap();
    let terms = lasting();
    // Not above the team's own role: refused.
    let refused = teams::grant_team(
        &app.state.db,
        &ops,
        Some(&blog),
        None,
        "editor",
        &terms,
        Some(("author", 60)),
        &by,
        now,
    )
    .await;
    assert!(refused.unwrap_err().to_string().contains("not above"));
    teams::grant_team(
        &app.state.db,
        &ops,
        Some(&blog),
        None,
        "editor",
        &terms,
        Some(("administrator", 60)),
        &by,
        now,
    )
    .await
    .unwrap();
    let sam = app.signed_in(SAM).await;
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );
    let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    // Named for the team from the command line: the lead decides its members' requests.
    let named = crate::support::run_ok(app.command().args([
        "access",
        "approver",
        "lead@agency.test",
        "--team",
        "Ops",
    ]));
    assert_eq!(
        named.trim(),
        "lead@agency.test may decide requests for the team Ops's members"
    );
    decide_as(&app, "lead@agency.test", false, &asked.id, true, "")
        .await
        .unwrap();
    deliver(&app).await;
    assert_eq!(sites.user("blog", SAM).unwrap()["role"], "administrator");
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "administrator"
    );

    teams::remove_member(&app.state.db, &ops, SAM, &by, app.clock.now_for_tests())
        .await
        .unwrap();
    let ended = records(&app, kind::ELEVATION_ENDED).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(
        sites.user("blog", SAM).unwrap()["role"],
        "",
        "no grant left there: locked"
    );
}

on_both_databases!(
    a_team_grant_makes_its_members_eligible_until_they_leave,
    a_named_approver_decides_from_their_home_page,
    the_console_asks_and_decides_by_the_same_rules,
    an_approved_elevation_raises_the_role_at_once_and_ends_by_itself,
    requests_outside_the_rules_are_refused_and_write_nothing,
    only_approvers_decide_and_one_decision_wins,
    an_elevation_ends_with_the_eligibility_it_rests_on,
    break_glass_self_approval_is_allowed_where_set_and_flagged,
);

/// A webhook receiver on loopback: it answers 503 while `down`, 200
/// otherwise, and keeps every request it got (headers and body).
struct Receiver {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn receiver() -> Receiver {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let (g, d) = (got.clone(), down.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, d) = (g.clone(), d.clone());
            async move {
                g.lock().unwrap().push((headers, body));
                if d.load(Ordering::SeqCst) {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got, down }
}

const HOOK_SECRET: &str = "0123456789abcdef0123456789abcdef-hook";

/// Requests and decisions reach the agency's webhook, signed, in the shape
/// Slack takes; while the receiver is down they wait and are tried again
/// (the same idempotency key each time) until it answers; without a
/// webhook set they are skipped.
async fn requests_and_decisions_reach_the_webhook_even_after_it_was_down(backend: Backend) {
    use agency_sso::domain::notify;
    use agency_sso::service::notify::deliver_due as notify_due;
    use std::sync::atomic::Ordering;
    let hook = receiver().await;
    let app = TestApp::start_with(
        crate::support::Options::new(backend)
            .with("notify-url", hook.url.clone())
            .with("notify-secret", HOOK_SECRET),
    )
    .await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let client = http_client();
    let send = || notify_due(&app.state.core, &client, "n1");

    // The receiver is down: the request's notification waits.
    hook.down.store(true, Ordering::SeqCst);
    let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(hook.got.lock().unwrap().len(), 1);
    // Not due again at once: backoff.
    assert_eq!(send().await.unwrap(), 0);
    let waiting = store::notifications::all(&app.state.db).await.unwrap();
    assert_eq!(waiting[0].state, "pending");
    assert!(waiting[0].last_error.contains("503"), "{waiting:?}");
    // Down a while longer: tried again once due.
    app.clock.advance(11);
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(hook.got.lock().unwrap().len(), 2);

    // Back up: delivered, and the approval after it too, in order.
    hook.down.store(false, Ordering::SeqCst);
    decide_as(&app, ADMIN, true, &asked.id, true, "go ahead")
        .await
        .unwrap();
    app.clock.advance(30);
    assert_eq!(send().await.unwrap(), 2);
    assert_eq!(send().await.unwrap(), 0);
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let now = app.clock.now_for_tests();
    let bodies: Vec<serde_json::Value> = got
        .iter()
        .map(|(headers, body)| {
            let sig = headers[notify::SIGNATURE_HEADER].to_str().unwrap();
            assert!(
                notify::verify(HOOK_SECRET.as_bytes(), sig, body, now, 600),
                "signed with the shared secret: {sig}"
            );
            assert_eq!(headers["content-type"], "application/json");
            serde_json::from_str(body).unwrap()
        })
        .collect();
    let keys: Vec<&str> = got
        .iter()
        .map(|(h, _)| h[notify::IDEMPOTENCY_HEADER].to_str().unwrap())
        .collect();
    // The request was tried three times under one key; the approval has its own.
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[1], keys[2]);
    assert_ne!(keys[2], keys[3]);
    assert_eq!(
        bodies[0]["text"],
        format!(
            "sam@agency.test asks for administrator on blog ({}) for 1 hour: \"{REASON}\". Decide at {}/admin/access",
            sites.url("blog"),
            app.url
        )
    );
    assert_eq!(
        bodies[2]["agency_sso"]["facts"]["elevation_id"],
        asked.id.as_str()
    );
    assert_eq!(
        bodies[3]["text"],
        "boss@agency.test approved sam@agency.test as administrator on blog for 1 hour (\"go ahead\")."
    );
    let all = store::notifications::all(&app.state.db).await.unwrap();
    assert!(all.iter().all(|n| n.state == "done"), "{all:?}");
}

/// Without a webhook set, notifications are written and skipped, never sent.
async fn without_a_webhook_notifications_are_skipped(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    let client = http_client();
    assert_eq!(
        agency_sso::service::notify::deliver_due(&app.state.core, &client, "n")
            .await
            .unwrap(),
        1
    );
    let all = store::notifications::all(&app.state.db).await.unwrap();
    assert_eq!((all.len(), all[0].state.as_str()), (1, "skipped"));
}

on_both_databases!(
    requests_and_decisions_reach_the_webhook_even_after_it_was_down,
    without_a_webhook_notifications_are_skipped,
);

/// Eligibility travels in the grants CSV: the console's export writes it,
/// an import previews each row (nothing written), applies with a fresh
/// sign-in in one go (invalid rows skipped and named), and reads an export
/// back unchanged; a preview gone stale is refused. The command line does
/// the same (a dry run first, `none` takes an eligibility away).
async fn eligibility_travels_in_the_grants_csv(backend: Backend) {
    use crate::support::server_fn;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = sites.granted_site(&app, "blog", SAM, "editor").await;
    let url = sites.url("blog");
    let boss = app.signed_in_fresh(ADMIN).await;
    let export = || async {
        let res = boss.get(app.at("/admin/grants.csv")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("grants.csv"));
        res.text().await.unwrap()
    };
    let header = "email,site,role,expires_utc,reason,eligible_role,eligible_max_minutes";
    assert_eq!(
        export().await,
        format!("{header}\n\"sam@agency.test\",\"{url}\",\"editor\",\"\",\"\",\"\",\"\"\n")
    );
    // Staff cannot export it.
    let sam = app.signed_in(SAM).await;
    let res = sam.get(app.at("/admin/grants.csv")).send().await.unwrap();
    assert_eq!(res.status(), 403);

    let csv = format!(
        "{header}\n\
         sam@agency.test,{url}/,editor,,,administrator,120\n\
         sasha@agency.test,{url},author,,,,\n\
         sasha@agency.test,{url},shop_manager,,,,\n\
         eve@agency.test,https://nowhere.example,editor,,,,\n"
    );
    let preview = |csv: String| {
        let (app, boss) = (&app, &boss);
        async move {
            let (status, p) = server_fn(
                app,
                boss,
                "admin_import_preview",
                &[("csv", csv.as_str()), ("kind", "grants")],
            )
            .await;
            assert_eq!(status, 200, "{p}");
            p
        }
    };
    let p = preview(csv.clone()).await;
    let actions: Vec<&str> = p["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["update", "create", "invalid", "invalid"], "{p}");
    assert_eq!(
        p["rows"][0]["notes"],
        serde_json::json!(["may ask for administrator for up to 2 hours"])
    );
    assert!(
        p["rows"][2]["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("role: \"shop_manager\" may not be granted on blog"),
        "{p}"
    );
    assert!(
        p["rows"][3]["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("site: no site has the URL"),
        "{p}"
    );
    // The dry run wrote nothing.
    let (_, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert_eq!(cards, serde_json::json!([]));
    assert!(records(&app, kind::GRANTS_IMPORTED).await.is_empty());

    // Applying needs a recent sign-in.
    let stale = app.signed_in(ADMIN).await;
    let digest = p["digest"].as_str().unwrap().to_string();
    let apply = |who: &'static str, csv: String, digest: String| {
        let (app, boss, stale) = (&app, &boss, &stale);
        async move {
            let b = if who == "stale" { stale } else { boss };
            server_fn(
                app,
                b,
                "admin_import_apply",
                &[
                    ("csv", csv.as_str()),
                    ("digest", digest.as_str()),
                    ("kind", "grants"),
                ],
            )
            .await
        }
    };
    let (status, _) = apply("stale", csv.clone(), digest.clone()).await;
    assert_eq!(status, 401);
    let (status, body) = apply("fresh", csv.clone(), digest.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "Imported: 1 grant(s) added, 1 updated, 0 unchanged, 2 invalid row(s) skipped."
    );
    let (_, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert_eq!(
        (
            cards[0]["eligible_role"].as_str(),
            cards[0]["limit"].as_str()
        ),
        (Some("administrator"), Some("2 hours")),
        "{cards}"
    );
    // The picker's row offers the request.
    let (_, mine) = server_fn(&app, &sam, "my_sites", &[]).await;
    assert_eq!(mine[0]["e"], "Request administrator", "{mine}");
    let imported = records(&app, kind::GRANTS_IMPORTED).await;
    assert_eq!(imported.len(), 1);
    let detail: serde_json::Value = serde_json::from_str(&imported[0].detail).unwrap();
    assert_eq!(detail["skipped"].as_array().unwrap().len(), 2, "{detail}");

    // The export carries the eligibility, and imports back unchanged.
    let again = export().await;
    assert!(
        again.contains(&format!(
            "\"sam@agency.test\",\"{url}\",\"editor\",\"\",\"\",\"administrator\",\"120\""
        )),
        "{again}"
    );
    let p = preview(again.clone()).await;
    assert_eq!(
        (
            p["unchanged"].as_u64(),
            p["create"].as_u64(),
            p["update"].as_u64()
        ),
        (Some(2), Some(0), Some(0)),
        "{p}"
    );

    // Previewed, then the grants change: the preview is refused.
    let csv = format!("{header}\nsasha@agency.test,{url},editor,,,,\n");
    let p = preview(csv.clone()).await;
    agency_sso::service::access::grant(
        &app.state.db,
        &[],
        SASHA,
        &blog,
        "contributor",
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    let (status, body) = apply("fresh", csv, p["digest"].as_str().unwrap().into()).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("preview the file again"),
        "{body}"
    );
    assert_eq!(records(&app, kind::GRANTS_IMPORTED).await.len(), 1);

    // The command line: a dry run, then --apply; `none` takes it away.
    let file = sites.dir().join("grants.csv");
    std::fs::write(
        &file,
        format!("email,site,role,eligible_role\nsam@agency.test,{url},editor,none\n"),
    )
    .unwrap();
    let dry = crate::support::run_ok(app.command().args(["grants", "import"]).arg(&file));
    assert!(
        dry.contains(&format!(
            "line 2: sam@agency.test on {url}: update (eligibility)"
        )),
        "{dry}"
    );
    assert!(dry.contains("Dry run: 0 to add, 1 to update"), "{dry}");
    let (_, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert_eq!(
        cards.as_array().unwrap().len(),
        1,
        "the dry run changed nothing"
    );
    let done = crate::support::run_ok(
        app.command()
            .args(["grants", "import", "--apply"])
            .arg(&file),
    );
    assert!(
        done.ends_with(
            "Imported: 0 grant(s) added, 1 updated, 0 unchanged, 0 invalid row(s) skipped.\n"
        ),
        "{done}"
    );
    let (_, cards) = server_fn(&app, &sam, "my_access", &[]).await;
    assert_eq!(cards, serde_json::json!([]));
    let out = crate::support::run_ok(app.command().args(["grants", "export", "--site", &blog]));
    assert!(
        out.contains(&format!(
            "\"sam@agency.test\",\"{url}\",\"editor\",\"\",\"\",\"\",\"\""
        )),
        "{out}"
    );
}

/// A person's page lists their elevations in force (with End now) and
/// their requests waiting; the offboarding checklist names the elevations
/// in force, and after disabling them, none. A team's approvers are named
/// and removed from the team's page.
async fn the_console_shows_elevations_and_names_team_approvers(backend: Backend) {
    use crate::support::server_fn;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = eligible_site(&app, &sites, "blog").await;
    let shop = eligible_site(&app, &sites, "shop").await;
    let asked = ask(&app, SAM, &blog, "administrator", 60, REASON)
        .await
        .unwrap();
    decide_as(&app, ADMIN, true, &asked.id, true, "")
        .await
        .unwrap();
    ask(&app, SAM, &shop, "administrator", 30, REASON)
        .await
        .unwrap();
    let boss = app.signed_in_fresh(ADMIN).await;
    app.signed_in(SAM).await;
    let sam_id = store::people::find_by_email(&app.state.db, SAM)
        .await
        .unwrap()
        .remove(0)
        .id;
    let (status, page) = server_fn(&app, &boss, "admin_person", &[("id", &sam_id)]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["elevated"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["elevated"][0]["site_name"], "blog");
    assert_eq!(page["elevated"][0]["role"], "administrator");
    assert_eq!(page["asking"][0]["site_name"], "shop", "{page}");
    assert_eq!(page["asking"][0]["duration"], "30 minutes", "{page}");
    let (_, checklist) = server_fn(&app, &boss, "admin_offboarding", &[("id", &sam_id)]).await;
    let line = checklist["elevated"][0].as_str().unwrap();
    assert!(
        line.starts_with(&format!("administrator on {} until ", sites.url("blog"))),
        "{checklist}"
    );
    let (status, body) = server_fn(
        &app,
        &boss,
        "admin_set_standing",
        &[("id", &sam_id), ("change", "disable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, checklist) = server_fn(&app, &boss, "admin_offboarding", &[("id", &sam_id)]).await;
    assert_eq!(checklist["elevated"], serde_json::json!([]), "{checklist}");
    let (_, page) = server_fn(&app, &boss, "admin_person", &[("id", &sam_id)]).await;
    assert_eq!(page["elevated"], serde_json::json!([]), "{page}");

    // A team's approvers, from its page.
    let ops = crate::support::create_team(&app, &boss, "Ops", "").await;
    let name = |on: &'static str| {
        let (app, boss, ops) = (&app, &boss, ops.clone());
        async move {
            server_fn(
                app,
                boss,
                "admin_set_approver",
                &[
                    ("team", ops.as_str()),
                    ("email", "lead@agency.test"),
                    ("on", on),
                ],
            )
            .await
        }
    };
    let (status, body) = name("true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "lead@agency.test may now decide requests for the team Ops."
    );
    let (_, team) = server_fn(&app, &boss, "admin_team", &[("id", &ops)]).await;
    assert_eq!(team["approvers"], serde_json::json!(["lead@agency.test"]));
    let (status, body) = name("false").await;
    assert_eq!(status, 200, "{body}");
    let (_, team) = server_fn(&app, &boss, "admin_team", &[("id", &ops)]).await;
    assert_eq!(team["approvers"], serde_json::json!([]));
    // Neither a site nor a team: refused.
    let (status, _) = server_fn(
        &app,
        &boss,
        "admin_set_approver",
        &[("email", "lead@agency.test"), ("on", "true")],
    )
    .await;
    assert_eq!(status, 409);
}

on_both_databases!(
    eligibility_travels_in_the_grants_csv,
    the_console_shows_elevations_and_names_team_approvers,
);

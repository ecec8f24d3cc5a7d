//! Offboarding that reaches the sites: the messages a change calls for are
//! written with it, sent to stand-in connector sites that check them with
//! the plugin's own code, retried while a site is down, delivered once
//! across instances, and shown per site in a checklist.

use agency_sso::domain::audit::kind;
use agency_sso::domain::sites::SiteInput;
use agency_sso::service::messages::{deliver_due, http_client};
use agency_sso::store;
use serde_json::Value;

use crate::on_both_databases;
use crate::support::{
    grant, import_apply, import_preview, server_fn, site_form, Backend, Browser, StandInSites,
    TestApp,
};

const ADMIN: &str = "boss@agency.test";
const SAM: &str = "sam@agency.test";

async fn site(app: &TestApp, name: &str, url: &str, profile: &str) -> String {
    let input = SiteInput {
        name: name.into(),
        client: "Acme".into(),
        url: url.into(),
        profile: profile.into(),
        ..SiteInput::default()
    };
    crate::support::add_site(app, input).await
}

/// Send what is due now, as one instance's worker does.
async fn deliver(app: &TestApp, owner: &str) -> usize {
    deliver_due(&app.state.core, &http_client(), owner)
        .await
        .unwrap()
}

async fn messages_of(app: &TestApp, email: &str) -> Vec<store::messages::Message> {
    let p = store::people::find_by_email(&app.state.db, email)
        .await
        .unwrap()
        .remove(0);
    store::messages::for_person(&app.state.db, &p.id)
        .await
        .unwrap()
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

/// Each message's attempts, as (outcome, detail) in order, by site id.
async fn attempts_by_site(
    app: &TestApp,
    email: &str,
) -> std::collections::HashMap<String, Vec<(String, String)>> {
    let messages = messages_of(app, email).await;
    let id = person_id(app, email).await;
    let mut out: std::collections::HashMap<String, Vec<(String, String)>> = Default::default();
    for a in store::messages::attempts_for_person(&app.state.db, &id)
        .await
        .unwrap()
    {
        let m = messages.iter().find(|m| m.id == a.message_id).unwrap();
        out.entry(m.site_id.clone())
            .or_default()
            .push((a.outcome, a.detail));
    }
    out
}

async fn person_id(app: &TestApp, email: &str) -> String {
    store::people::find_by_email(&app.state.db, email)
        .await
        .unwrap()
        .remove(0)
        .id
}

async fn disable(app: &TestApp, admin: &Browser, email: &str) {
    let id = person_id(app, email).await;
    let (status, body) = server_fn(
        app,
        admin,
        "admin_set_standing",
        &[("id", &id), ("change", "disable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Sam entered one connector site and holds a grant on another; an admin
/// disables him: both are told to lock his account (a connector site he
/// has nothing to do with is not). The one he entered locks the account it
/// made at his launch and ends its session; the other has no account for
/// him. Each answer is recorded in the audit chain, and his checklist
/// shows them beside the site on another plugin that must be handled by
/// hand.
async fn disabling_a_person_locks_them_out_of_every_connector_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let entered = site(&app, "Entered", &sites.url("entered"), "connector").await;
    let granted = site(&app, "Granted", &sites.url("granted"), "connector").await;
    site(&app, "Unrelated", &sites.url("unrelated"), "connector").await;
    let twl = site(&app, "Old plugin", "https://old.acme.example", "twl-sso").await;
    for s in [&entered, &granted, &twl] {
        grant(&app, SAM, s, "editor").await;
    }
    let sam = app.signed_in(SAM).await;
    let landed = sites.enter(&app, &sam, &entered).await;
    assert_eq!(landed["user"]["role"], "editor", "{landed}");
    assert_eq!(landed["user"]["sessions"], 1, "{landed}");
    let admin = app.signed_in_fresh(ADMIN).await;

    disable(&app, &admin, SAM).await;
    // Written with the change, before any is sent.
    let waiting = messages_of(&app, SAM).await;
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting
        .iter()
        .all(|m| m.action == "lock" && m.state == "pending"));
    let changed = records(&app, kind::PERSON_CHANGED).await;
    let detail: Value = serde_json::from_str(&changed.last().unwrap().detail).unwrap();
    assert_eq!(detail["sites_to_lock"], 2);

    assert_eq!(deliver(&app, "w1").await, 2);
    let sam_id = person_id(&app, SAM).await;
    for (name, id) in [("entered", &entered), ("granted", &granted)] {
        let got = sites.received(name);
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(got[0]["action"], "lock");
        assert_eq!(got[0]["email"], SAM);
        // The person by their stable subject, as in a connector launch
        // token, and the message's place in the order.
        assert_eq!(got[0]["sub"], sam_id.as_str());
        let m = waiting.iter().find(|m| &m.site_id == id).unwrap();
        assert_eq!(got[0]["seq"], m.seq);
    }
    assert!(sites.received("unrelated").is_empty());
    assert!(messages_of(&app, SAM)
        .await
        .iter()
        .all(|m| m.state == "done"));
    // The account the launch made is locked, its session ended; the site
    // he never entered has no account for him.
    let there = sites.user("entered", SAM).unwrap();
    assert!(there["locked_at"].as_i64().unwrap() > 0, "{there}");
    assert_eq!(
        (there["sessions"].as_i64(), there["role"].as_str()),
        (Some(0), Some("editor"))
    );
    assert_eq!(
        there["subject"],
        format!("{} {sam_id}", app.state.config.public_url)
    );
    assert!(sites.users("granted").is_empty());

    // The audit chain names each site and what it reported.
    let delivered = records(&app, kind::SITE_MESSAGE_DELIVERED).await;
    assert_eq!(delivered.len(), 2);
    let mut urls: Vec<&str> = delivered.iter().map(|e| e.site_url.as_str()).collect();
    urls.sort();
    assert_eq!(urls, [sites.url("entered"), sites.url("granted")]);
    for e in &delivered {
        assert_eq!(e.subject, SAM);
        let d: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(d["action"], "lock");
        assert_eq!(d["cause"], "person_disabled");
        let a = &d["site_answer"];
        if e.site_url == sites.url("entered") {
            assert_eq!(
                (
                    &a["user_found"],
                    &a["locked"],
                    &a["sessions_ended"],
                    &a["role_before"]
                ),
                (
                    &Value::Bool(true),
                    &Value::Bool(true),
                    &Value::from(1),
                    &Value::from("editor")
                ),
                "{a}"
            );
        } else {
            assert_eq!(
                (&a["user_found"], &a["locked"], &a["role_before"]),
                (&Value::Bool(false), &Value::Bool(false), &Value::Null),
                "{a}"
            );
        }
    }

    // The checklist, in the console and as the CSV an agency hands a client.
    let id = person_id(&app, SAM).await;
    let (status, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    assert_eq!(status, 200, "{list}");
    let steps = list["steps"].as_array().unwrap();
    assert_eq!(list["pending"], 0);
    let state_of = |url: &str| {
        steps
            .iter()
            .find(|s| s["site_url"] == url)
            .map(|s| {
                (
                    s["state"].as_str().unwrap().to_string(),
                    s["report"].as_str().unwrap().to_string(),
                )
            })
            .unwrap()
    };
    let (state, report) = state_of(&sites.url("entered"));
    assert_eq!(state, "done");
    assert!(
        report.contains("1 session(s) ended") && report.contains("account locked"),
        "{report}"
    );
    // The branch for a site where they never had an account.
    let (state, report) = state_of(&sites.url("granted"));
    assert_eq!(
        (state.as_str(), report.as_str()),
        ("done", "No account for them there: nothing to do.")
    );
    let (state, report) = state_of("https://old.acme.example");
    assert_eq!(state, "by-hand");
    assert!(
        report.contains("twl-sso plugin takes no messages"),
        "{report}"
    );
    let csv = admin
        .get(app.at(&format!("/admin/people/offboarding.csv?id={id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("site_url,client,profile,action"), "{csv}");
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("\"{}\",", sites.url("entered"))))
        .unwrap();
    assert!(
        line.contains(r#","lock","#)
            && line.contains(r#","done","carried out","#)
            && line.contains(r#","true","1","0","editor","editor","true","#),
        "{line}"
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("\"{}\",", sites.url("granted"))))
        .unwrap();
    assert!(
        line.contains(r#","done","no account for them there: nothing to do","#)
            && line.contains(r#","false","0","0","","","false","#),
        "{line}"
    );
    assert!(csv
        .lines()
        .any(|l| l.starts_with(r#""https://old.acme.example""#) && l.contains("by hand")));
    assert!(
        line.ends_with("delivered: the site carried it out\""),
        "{line}"
    );
    // Got through at the first attempt: the page does not unfold a history.
    assert!(steps.iter().all(|s| s["history"] == serde_json::json!([])));
    let attempts = attempts_by_site(&app, SAM).await;
    assert_eq!(attempts[&granted].len(), 1);
    assert_eq!(attempts[&granted][0].0, "delivered");
    // Staff get neither the checklist nor its export.
    let (status, _) = server_fn(&app, &sam, "admin_offboarding", &[("id", &id)]).await;
    assert!(status == 401 || status == 403, "{status}");
}

/// A site that is down when the person is disabled: the message waits and
/// is retried with backoff, shown pending, and delivered once the site is
/// back; one that stays down is given up after days, recorded as failed.
async fn a_site_that_is_down_gets_the_message_when_it_is_back(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let flaky = site(&app, "Flaky", &sites.url("flaky"), "connector").await;
    let gone = site(&app, "Gone", &sites.url("gone"), "connector").await;
    grant(&app, SAM, &flaky, "editor").await;
    grant(&app, SAM, &gone, "editor").await;
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    sites.set_down("flaky", true);
    sites.set_down("gone", true);

    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w1").await, 2);
    let m = messages_of(&app, SAM).await;
    assert!(m.iter().all(|m| m.state == "pending" && m.attempts == 1));
    assert!(
        m[0].last_error.as_deref().unwrap().contains("site_down"),
        "{m:?}"
    );
    // Not due again at once: it backs off.
    assert_eq!(deliver(&app, "w1").await, 0);
    let id = person_id(&app, SAM).await;
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    assert_eq!(list["pending"], 2);
    assert!(list["steps"][0]["report"]
        .as_str()
        .unwrap()
        .starts_with("Tried 1 time(s)"));

    app.clock.advance(20);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w1").await, 2);
    sites.set_down("flaky", false);
    app.clock.advance(60);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w1").await, 2);
    assert_eq!(sites.received("flaky").len(), 1);
    let flaky_msg = messages_of(&app, SAM)
        .await
        .into_iter()
        .find(|m| m.site_id == flaky)
        .unwrap();
    assert_eq!((flaky_msg.state.as_str(), flaky_msg.attempts), ("done", 3));
    // A message tried again keeps its place in the order.
    assert_eq!(sites.received("flaky")[0]["seq"], flaky_msg.seq);
    // Each attempt is kept, with what came of it.
    let outcomes = |v: &Vec<(String, String)>| v.iter().map(|a| a.0.clone()).collect::<Vec<_>>();
    let attempts = attempts_by_site(&app, SAM).await;
    assert_eq!(outcomes(&attempts[&flaky]), ["retry", "retry", "delivered"]);
    assert!(attempts[&flaky][0].1.contains("site_down"), "{attempts:?}");
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    let step = list["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site_url"] == sites.url("flaky"))
        .unwrap()
        .clone();
    let history: Vec<&str> = step["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(
        history[0].starts_with("Attempt 1, ")
            && history[0].contains("did not get through, tried again later: HTTP 503: site_down"),
        "{history:?}"
    );
    assert!(history[2].ends_with("delivered: the site carried it out"));

    // Three days on, the one still down is given up, and the chain says so.
    app.clock.advance(3 * 86_400);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w1").await, 1);
    let gone_msg = messages_of(&app, SAM)
        .await
        .into_iter()
        .find(|m| m.site_id == gone)
        .unwrap();
    assert_eq!(gone_msg.state, "failed");
    let failed = records(&app, kind::SITE_MESSAGE_FAILED).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].site_url, sites.url("gone"));
    assert!(
        failed[0].detail.contains("given up after 4 attempts"),
        "{}",
        failed[0].detail
    );
    assert!(sites.received("gone").is_empty());
    let attempts = attempts_by_site(&app, SAM).await;
    assert_eq!(
        outcomes(&attempts[&gone]),
        ["retry", "retry", "retry", "given-up"]
    );
    // Days later the admin signs in again for the evidence.
    let admin = app.signed_in(ADMIN).await;
    let csv = admin
        .text(app.at(&format!("/admin/people/offboarding.csv?id={id}")))
        .await;
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("\"{}\",", sites.url("gone"))))
        .unwrap();
    assert!(
        line.contains("#1 ")
            && line.contains(" | #4 ")
            && line.contains("given up after 4 attempts"),
        "{line}"
    );
}

/// A site's answer is read up to 16 KiB and must be the plugin's fixed
/// shape, answer this very message (its jti and action) and say it was
/// done: anything else is not a delivery. It is kept as an unexpected
/// answer (none of the site's own text stored beyond the shape's fields),
/// tried again like a failure, and shown on the checklist as needing
/// attention until an answer confirms it.
async fn an_answer_that_does_not_confirm_the_message_is_not_a_delivery(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let names = [
        "honest",
        "padded",
        "any-action",
        "other-jti",
        "not-locked",
        "huge",
    ];
    let mut ids = std::collections::HashMap::new();
    for name in names {
        ids.insert(name, sites.granted_site(&app, name, SAM, "editor").await);
    }
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    let answer = |jti: &str, locked: bool, extra: &str| {
        format!(
            r#"{{"jti":"{jti}","action":"lock","superseded":false,"user_found":true,"sessions_ended":3,"application_passwords_revoked":0,"role_before":"editor","role_after":"editor","locked":{locked}{extra}}}"#
        )
    };
    // Under 16 KiB, with a field of the site's own: done, the field not kept.
    let note = format!(r#","note":"{}""#, "n".repeat(10_000));
    sites.set_answer("padded", Some(&answer("{jti}", true, &note)));
    // What the worker once took as done: any 2xx JSON with an action.
    sites.set_answer("any-action", Some(r#"{"action":"x"}"#));
    sites.set_answer(
        "other-jti",
        Some(&answer("AAAAAAAAAAAAAAAAAAAAAA", true, "")),
    );
    sites.set_answer("not-locked", Some(&answer("{jti}", false, "")));
    let pad = format!(r#","pad":"{}""#, "x".repeat(20_000));
    sites.set_answer("huge", Some(&answer("{jti}", true, &pad)));

    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w").await, 6);
    let messages = messages_of(&app, SAM).await;
    let of = |name: &str| messages.iter().find(|m| m.site_id == ids[name]).unwrap();
    assert_eq!(of("honest").state, "done");
    let padded = of("padded");
    assert_eq!(padded.state, "done");
    let stored: Value = serde_json::from_str(padded.result.as_deref().unwrap()).unwrap();
    let mut keys: Vec<&str> = stored
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "action",
            "application_passwords_revoked",
            "jti",
            "locked",
            "role_after",
            "role_before",
            "sessions_ended",
            "superseded",
            "user_found"
        ]
    );
    assert_eq!(stored["sessions_ended"], 3);
    for name in ["any-action", "other-jti", "not-locked", "huge"] {
        let m = of(name);
        assert_eq!((m.state.as_str(), m.attempts), ("pending", 1), "{name}");
        let error = m.last_error.as_deref().unwrap();
        assert!(error.starts_with("unexpected answer: "), "{name}: {error}");
    }
    assert!(of("other-jti")
        .last_error
        .as_deref()
        .unwrap()
        .contains("another message"));
    assert!(of("not-locked")
        .last_error
        .as_deref()
        .unwrap()
        .contains("not locked"));
    assert!(of("huge").last_error.as_deref().unwrap().contains("16 KiB"));
    let attempts = attempts_by_site(&app, SAM).await;
    assert_eq!(attempts[&ids["huge"]][0].0, "unexpected");
    // Nothing of the sites' own text was kept: not in the messages, their
    // attempts, nor the audit chain.
    let chain = store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap();
    let kept = format!("{messages:?} {attempts:?} {chain:?}");
    assert!(!kept.contains("nnnnnnnnnn") && !kept.contains("xxxxxxxxxx"));

    // The checklist: those four need attention, first, and say why.
    let id = person_id(&app, SAM).await;
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    assert_eq!(
        (list["attention"].as_u64(), list["done"].as_u64()),
        (Some(4), Some(2)),
        "{list}"
    );
    let steps = list["steps"].as_array().unwrap();
    for s in &steps[..4] {
        assert_eq!(s["state"], "attention", "{s}");
        assert!(
            s["report"].as_str().unwrap().starts_with("Needs attention"),
            "{s}"
        );
    }
    let csv = admin
        .text(app.at(&format!("/admin/people/offboarding.csv?id={id}")))
        .await;
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("\"{}\",", sites.url("not-locked"))))
        .unwrap();
    assert!(line.contains("needs attention"), "{line}");

    // The sites answer as the plugin does again: the next attempt is done.
    for name in names {
        sites.set_answer(name, None);
    }
    app.clock.advance(20);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w").await, 4);
    assert!(messages_of(&app, SAM)
        .await
        .iter()
        .all(|m| m.state == "done"));
    let attempts = attempts_by_site(&app, SAM).await;
    let outcomes: Vec<&str> = attempts[&ids["any-action"]]
        .iter()
        .map(|a| a.0.as_str())
        .collect();
    assert_eq!(outcomes, ["unexpected", "delivered"]);
}

/// A site's messages that have not got through follow it. When its URL
/// changes, the next attempt goes to the new address (the token's audience
/// is the site's URL when it is sent; the old address hears nothing more)
/// and keeps its seq; when it is deleted or leaves the connector profile,
/// they are cancelled, each with an audit record, and the checklist says so.
async fn waiting_messages_follow_their_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let moved = sites.granted_site(&app, "old-home", SAM, "editor").await;
    let deleted = sites.granted_site(&app, "deleted", SAM, "editor").await;
    let leaving = sites.granted_site(&app, "leaving", SAM, "editor").await;
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    for name in ["old-home", "deleted", "leaving"] {
        sites.set_down(name, true);
    }
    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w").await, 3);
    let written = messages_of(&app, SAM).await;
    assert!(written.iter().all(|m| m.state == "pending"));

    let save = |id: &str, url: &str, profile: &str| {
        let (app, admin) = (&app, &admin);
        let (id, url, profile) = (id.to_string(), url.to_string(), profile.to_string());
        async move {
            let site = agency_sso::service::sites::find_site(&app.state.db, &id)
                .await
                .unwrap();
            let version = site.version.to_string();
            let form = site_form(&[
                ("id", id.as_str()),
                ("version", version.as_str()),
                ("name", site.name.as_str()),
                ("client", site.client.as_str()),
                ("url", url.as_str()),
                ("profile", profile.as_str()),
                ("enabled", "on"),
            ]);
            let (status, body) = server_fn(app, admin, "admin_save_site", &form).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // The site moves; another is deleted; a third goes back to TWL SSO.
    save(&moved, &sites.url("new-home"), "connector").await;
    let (status, body) = server_fn(
        &app,
        &admin,
        "admin_delete_site",
        &[("id", &deleted), ("confirm", &sites.url("deleted"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    save(&leaving, &sites.url("leaving"), "twl-sso").await;

    let after = messages_of(&app, SAM).await;
    let of = |id: &str| after.iter().find(|m| m.site_id == id).unwrap().clone();
    let was = |id: &str| written.iter().find(|m| m.site_id == id).unwrap().clone();
    let retargeted = of(&moved);
    assert_eq!(
        (retargeted.state.as_str(), retargeted.site_url.as_str()),
        ("pending", sites.url("new-home").as_str())
    );
    assert_eq!(retargeted.seq, was(&moved).seq);
    for (id, why) in [
        (&deleted, "the site was deleted"),
        (
            &leaving,
            "no longer uses the connector profile (now twl-sso)",
        ),
    ] {
        let m = of(id);
        assert_eq!(m.state, "cancelled", "{m:?}");
        assert!(m.last_error.as_deref().unwrap().contains(why), "{m:?}");
    }
    let cancelled = records(&app, kind::SITE_MESSAGE_CANCELLED).await;
    assert_eq!(cancelled.len(), 2);
    assert!(cancelled
        .iter()
        .all(|e| e.subject == SAM && e.actor == ADMIN));
    let mut urls: Vec<&str> = cancelled.iter().map(|e| e.site_url.as_str()).collect();
    urls.sort();
    assert_eq!(urls, [sites.url("deleted"), sites.url("leaving")]);
    let changed = records(&app, kind::SITE_CHANGED).await;
    let detail: Value = serde_json::from_str(&changed[changed.len() - 2].detail).unwrap();
    assert_eq!(detail["messages_retargeted"], 1, "{detail}");

    // Every site answers again: only the moved one is tried, at its new
    // address, with the audience it has now.
    for name in ["old-home", "deleted", "leaving"] {
        sites.set_down(name, false);
    }
    app.clock.advance(20);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w").await, 1);
    let got = sites.received("new-home");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["seq"], retargeted.seq);
    for name in ["old-home", "deleted", "leaving"] {
        assert_eq!(
            sites.arrivals(name),
            1,
            "{name} heard only the first attempt"
        );
    }

    // The checklist says what became of each.
    let id = person_id(&app, SAM).await;
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    assert_eq!(
        (list["cancelled"].as_u64(), list["done"].as_u64()),
        (Some(2), Some(1)),
        "{list}"
    );
    let steps = list["steps"].as_array().unwrap();
    let step = |url: &str, state: &str| {
        steps
            .iter()
            .find(|s| s["site_url"] == url && s["state"] == state)
            .unwrap_or_else(|| panic!("no {state} step for {url}: {list}"))
            .clone()
    };
    assert!(step(&sites.url("deleted"), "cancelled")["report"]
        .as_str()
        .unwrap()
        .starts_with("Cancelled: the site was deleted"));
    step(&sites.url("leaving"), "cancelled");
    // Now on TWL SSO, where sessions are ended by hand.
    step(&sites.url("leaving"), "by-hand");
    step(&sites.url("new-home"), "done");
    let csv = admin
        .text(app.at(&format!("/admin/people/offboarding.csv?id={id}")))
        .await;
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("\"{}\",", sites.url("deleted")))
                && l.contains("cancelled: the site was deleted")),
        "{csv}"
    );
}

/// The sites find the person as the plugin does: by the stable subject;
/// an account bound by an older dashboard to the e-mail subject is moved
/// over to it (at a message or a launch, the same account either way); an
/// unbound account with the address is matched, but one bound to someone
/// else, or one that administers the site, is not the person's ("no
/// account for them there"), is left alone, and a launch into it is refused.
async fn sites_find_the_person_by_the_stable_subject(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let iss = app.state.config.public_url.clone();
    let mut ids = std::collections::HashMap::new();
    for name in ["legacy", "plain", "taken", "admin"] {
        ids.insert(name, sites.granted_site(&app, name, SAM, "editor").await);
    }
    let legacy = format!("{iss} {SAM}");
    sites.add_user(
        "legacy",
        "sam",
        serde_json::json!({ "email": SAM, "subject": legacy, "role": "editor", "sessions": 2 }),
    );
    sites.add_user(
        "plain",
        "sam",
        serde_json::json!({ "email": SAM, "role": "author", "sessions": 1 }),
    );
    let someone = format!("{iss} 00000000-0000-4000-8000-000000000000");
    sites.add_user(
        "taken",
        "sam2",
        serde_json::json!({ "email": SAM, "subject": someone, "role": "author", "sessions": 1 }),
    );
    sites.add_user(
        "admin",
        "owner",
        serde_json::json!({ "email": SAM, "role": "administrator", "sessions": 1 }),
    );
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    let stable = format!("{iss} {}", person_id(&app, SAM).await);

    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w").await, 4);
    let found = |name: &str| sites.received(name)[0]["user_found"].clone();
    // The legacy binding, moved to the stable subject and locked.
    assert_eq!(found("legacy"), true);
    let there = sites.user("legacy", SAM).unwrap();
    assert_eq!(there["subject"], stable.as_str());
    assert!(there["locked_at"].as_i64().unwrap() > 0 && there["sessions"] == 0);
    // An unbound account with the address: locked, not bound by a message.
    assert_eq!(found("plain"), true);
    let there = sites.user("plain", SAM).unwrap();
    assert!(there["locked_at"].as_i64().unwrap() > 0 && there["subject"] == "");
    // Someone else's account, and an administrator's: not touched.
    for (name, subject) in [("taken", someone.as_str()), ("admin", "")] {
        assert_eq!(found(name), false, "{name}");
        let there = sites.user(name, SAM).unwrap();
        assert_eq!(
            (
                there["locked_at"].as_i64(),
                there["sessions"].as_i64(),
                there["subject"].as_str()
            ),
            (Some(0), Some(1), Some(subject)),
            "{name}: {there}"
        );
    }
    let id = person_id(&app, SAM).await;
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    let report = |name: &str| {
        list["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["site_url"] == sites.url(name).as_str())
            .unwrap()["report"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(report("legacy"), "2 session(s) ended, account locked");
    for name in ["taken", "admin"] {
        assert_eq!(report(name), "No account for them there: nothing to do.");
    }

    // Let back in, Sam launches: the same accounts (the lock lifted by a
    // token issued after it), now all bound to his stable subject; the
    // accounts that are not his are refused.
    let (status, body) = server_fn(
        &app,
        &admin,
        "admin_set_standing",
        &[("id", &id), ("change", "enable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.clock.advance(1);
    sites.follow_clock(&app);
    let sam = app.signed_in(SAM).await;
    for (name, login) in [("legacy", "sam"), ("plain", "sam")] {
        let landed = sites.enter(&app, &sam, &ids[name]).await;
        assert_eq!(landed["user"]["login"], login, "{name}: {landed}");
        assert_eq!(landed["user"]["subject"], stable.as_str());
        assert_eq!(landed["user"]["locked_at"], 0);
        assert_eq!(sites.users(name).len(), 1, "{name}: one account");
    }
    assert_eq!(
        sites.enter(&app, &sam, &ids["taken"]).await["error"],
        "account_bound_elsewhere"
    );
    assert_eq!(
        sites.enter(&app, &sam, &ids["admin"]).await["error"],
        "account_link_required"
    );
}

/// A lock still on its way (the site was down) arrives after a newer
/// change the site has applied: the site answers it as superseded and does
/// nothing, the dashboard counts it as delivered, and the checklist says a
/// newer change had been applied.
async fn an_older_message_than_the_site_applied_is_superseded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = sites.granted_site(&app, "blog", SAM, "editor").await;
    let sam = app.signed_in(SAM).await;
    sites.enter(&app, &sam, &blog).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    let id = person_id(&app, SAM).await;

    // Disabled while the blog is down: the lock waits for its next try.
    sites.set_down("blog", true);
    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w").await, 1);
    // Let back in, and given a lower role: the newer change, due at once.
    let (status, body) = server_fn(
        &app,
        &admin,
        "admin_set_standing",
        &[("id", &id), ("change", "enable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    grant(&app, SAM, &blog, "author").await;
    let waiting = messages_of(&app, SAM).await;
    let of = |action: &str| waiting.iter().find(|m| m.action == action).unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(of("lock").seq < of("set-role").seq);
    sites.set_down("blog", false);
    assert_eq!(deliver(&app, "w").await, 1);
    assert_eq!(sites.user("blog", SAM).unwrap()["role"], "author");

    // The lock's next try: older than what the blog applied.
    app.clock.advance(20);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w").await, 1);
    let got = sites.received("blog");
    assert_eq!(got.last().unwrap()["superseded"], true, "{got:?}");
    let there = sites.user("blog", SAM).unwrap();
    assert_eq!(
        (
            there["role"].as_str(),
            there["locked_at"].as_i64(),
            there["sessions"].as_i64()
        ),
        (Some("author"), Some(0), Some(1)),
        "nothing done: {there}"
    );
    let done = messages_of(&app, SAM).await;
    assert!(done.iter().all(|m| m.state == "done"), "{done:?}");
    let delivered = records(&app, kind::SITE_MESSAGE_DELIVERED).await;
    let d: Value = serde_json::from_str(&delivered.last().unwrap().detail).unwrap();
    assert_eq!(
        (&d["action"], &d["site_answer"]["superseded"]),
        (&Value::from("lock"), &Value::Bool(true))
    );
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    let step = list["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["asked"] == "Lock the account")
        .unwrap()
        .clone();
    assert_eq!(step["state"], "done");
    assert!(
        step["report"]
            .as_str()
            .unwrap()
            .starts_with("Superseded by a newer change"),
        "{step}"
    );
    let csv = admin
        .text(app.at(&format!("/admin/people/offboarding.csv?id={id}")))
        .await;
    assert!(
        csv.lines()
            .any(|l| l.contains(r#","lock","#) && l.contains("superseded by a newer change")),
        "{csv}"
    );
}

/// A message signed right after an emergency rotation reaches a site that
/// cached the key set before it: the site fetches the set again for the
/// unknown kid, as the plugin does. A second rotation within the minute
/// finds the site holding off (one refetch a minute): the message is
/// refused as signed by an unknown key, tried again, and delivered once
/// the minute is over. And the cache lasts the max-age the dashboard sends.
async fn a_message_right_after_an_emergency_rotation_gets_through(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = sites.granted_site(&app, "blog", SAM, "editor").await;
    let sam = app.signed_in(SAM).await;
    sites.enter(&app, &sam, &blog).await;
    assert_eq!(sites.key_fetches("blog"), 1);
    let admin = app.signed_in_fresh(ADMIN).await;
    let id = person_id(&app, SAM).await;
    let revoke = |why: &'static str| {
        let app = &app;
        async move {
            let kid = app.state.keys.signer().unwrap().kid().to_string();
            app.state
                .keys
                .revoke(
                    &kid,
                    why,
                    &agency_sso::domain::audit::Actor::command_line(),
                    app.clock.now_for_tests(),
                )
                .await
                .unwrap();
            let now = app.state.keys.signer().unwrap().kid().to_string();
            assert_ne!(now, kid);
            now
        }
    };
    let end_sessions = || {
        let (app, admin, id) = (&app, &admin, &id);
        async move {
            let (status, body) = server_fn(
                app,
                admin,
                "admin_end_wordpress_sessions",
                &[("person", id)],
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let ending = || {
        let app = &app;
        async move {
            messages_of(app, SAM)
                .await
                .into_iter()
                .rfind(|m| m.action == "end-sessions")
                .unwrap()
        }
    };
    // Emergency: the key the site cached is revoked, a new one signs.
    revoke("test: suspected leak").await;
    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w").await, 1);
    assert_eq!(messages_of(&app, SAM).await[0].state, "done");
    assert!(
        sites.user("blog", SAM).unwrap()["locked_at"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(
        sites.key_fetches("blog"),
        2,
        "fetched again for the new kid"
    );

    // Again within the minute: the site does not fetch again yet.
    revoke("test: the new one leaked too").await;
    end_sessions().await;
    assert_eq!(deliver(&app, "w").await, 1);
    let m = ending().await;
    assert_eq!(m.state, "pending");
    assert_eq!(m.last_error.as_deref(), Some("HTTP 401: unknown_key"));
    assert_eq!(sites.key_fetches("blog"), 2);
    // Its next tries (15 s, then 30 s on) still fall within the minute.
    for wait in [20, 30] {
        app.clock.advance(wait);
        sites.follow_clock(&app);
        assert_eq!(deliver(&app, "w").await, 1);
        assert_eq!(sites.key_fetches("blog"), 2);
    }
    app.clock.advance(60);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w").await, 1);
    assert_eq!(sites.key_fetches("blog"), 3);
    let got: Vec<String> = store::messages::attempts_for_person(&app.state.db, &id)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.message_id == m.id)
        .map(|a| a.outcome)
        .collect();
    assert_eq!(got, ["retry", "retry", "retry", "delivered"]);

    // Known keys are served from the cache for its max-age (300 s here),
    // then fetched again.
    app.clock.advance(200);
    sites.follow_clock(&app);
    end_sessions().await;
    assert_eq!(deliver(&app, "w").await, 1);
    assert_eq!(sites.key_fetches("blog"), 3);
    app.clock.advance(120);
    sites.follow_clock(&app);
    end_sessions().await;
    assert_eq!(deliver(&app, "w").await, 1);
    assert_eq!(sites.key_fetches("blog"), 4);
    assert!(messages_of(&app, SAM)
        .await
        .iter()
        .all(|m| m.state == "done"));
}

/// An instance killed mid-send: its claim runs out and another instance
/// sends the message; the site, which may have got the first attempt, gets
/// a second one with its own jti, and the action is the same.
async fn a_message_claimed_by_a_killed_instance_is_sent_by_another(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let slow = site(&app, "Slow", &sites.url("slow"), "connector").await;
    let idle = site(&app, "Idle", &sites.url("idle"), "connector").await;
    grant(&app, SAM, &slow, "editor").await;
    grant(&app, SAM, &idle, "editor").await;
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    disable(&app, &admin, SAM).await;

    // One instance claims both and dies before sending the idle site's
    // message (its claim taken, nothing sent) ...
    let now = app.clock.now_for_tests();
    let claimed = store::messages::claim_due(&app.state.db, "dead", now, now + 60, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // ... and another dies while the slow site is working on its message.
    sites.set_slow("slow", 2);
    let ctx = app.state.core.clone();
    let cut = tokio::spawn(async move { deliver_due(&ctx, &http_client(), "killed").await });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    cut.abort();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    sites.set_slow("slow", 0);

    // Their claims hold the messages until they run out.
    assert_eq!(deliver(&app, "alive").await, 0);
    app.clock.advance(61);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "alive").await, 2);
    assert!(messages_of(&app, SAM)
        .await
        .iter()
        .all(|m| m.state == "done"));
    assert_eq!(sites.received("idle").len(), 1);
    let slow_got = sites.received("slow");
    assert!(!slow_got.is_empty() && slow_got.len() <= 2, "{slow_got:?}");
    assert!(slow_got.iter().all(|m| m["action"] == "lock"));
    if slow_got.len() == 2 {
        assert_ne!(slow_got[0]["jti"], slow_got[1]["jti"]);
    }
    // One final record per message, whoever sent it.
    assert_eq!(records(&app, kind::SITE_MESSAGE_DELIVERED).await.len(), 2);
    // Each message's first attempt has no outcome: it says so.
    for (site, attempts) in attempts_by_site(&app, SAM).await {
        let outcomes: Vec<&str> = attempts.iter().map(|a| a.0.as_str()).collect();
        assert_eq!(outcomes, ["interrupted", "delivered"], "{site}");
    }
}

/// Roles follow grants without a launch: lowered, then taken away (the
/// account is locked there), through a team too, and when a time-limited
/// grant ends (noticed by the expiry job, with its own record).
async fn grant_changes_set_the_role_on_the_sites_entered(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = site(&app, "Blog", &sites.url("blog"), "connector").await;
    let shop = site(&app, "Shop", &sites.url("shop"), "connector").await;
    let never = site(&app, "Never entered", &sites.url("never"), "connector").await;
    grant(&app, SAM, &blog, "editor").await;
    grant(&app, SAM, &never, "editor").await;
    let sam = app.signed_in(SAM).await;
    assert_eq!(
        sites.enter(&app, &sam, &blog).await["user"]["role"],
        "editor"
    );
    let admin = app.signed_in_fresh(ADMIN).await;
    let on = |name: &str| sites.user(name, SAM).unwrap();
    let form = |site: &str, role: &str, minutes: &str| {
        vec![
            ("site", site.to_string()),
            ("email", SAM.to_string()),
            ("role", role.to_string()),
            ("duration", minutes.to_string()),
            (
                "reason",
                if minutes.is_empty() { "" } else { "cover" }.to_string(),
            ),
        ]
    };
    let call = |name: &'static str, f: Vec<(&'static str, String)>| {
        let (app, admin) = (&app, &admin);
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = server_fn(app, admin, name, &f).await;
            assert_eq!(status, 200, "{name}: {body}");
        }
    };

    // Lowered from editor to author: the site is told at once.
    call("admin_grant", form(&blog, "author", "")).await;
    // Lowered where Sam never entered: there is no account to change.
    call("admin_grant", form(&never, "author", "")).await;
    assert_eq!(deliver(&app, "w").await, 1);
    assert_eq!(sites.received("blog")[0]["action"], "set-role");
    assert_eq!(sites.received("blog")[0]["role"], "author");
    assert!(sites.received("never").is_empty());
    // The blog's account has that role now, its session kept.
    assert_eq!(
        (on("blog")["role"].as_str(), on("blog")["sessions"].as_i64()),
        (Some("author"), Some(1))
    );
    // The same role again: nothing to say.
    call("admin_grant", form(&blog, "author", "")).await;
    assert_eq!(deliver(&app, "w").await, 0);

    // Taken away: no role left there, so the account is locked.
    call(
        "admin_revoke_grant",
        vec![("site", blog.clone()), ("email", SAM.into())],
    )
    .await;
    assert_eq!(deliver(&app, "w").await, 1);
    let got = sites.received("blog");
    assert_eq!(
        (got[1]["action"].as_str(), got[1]["role"].as_str()),
        (Some("set-role"), Some(""))
    );
    // No role there any more, the account locked and its session ended.
    let there = on("blog");
    assert_eq!(
        (there["role"].as_str(), there["sessions"].as_i64()),
        (Some(""), Some(0)),
        "{there}"
    );
    assert!(there["locked_at"].as_i64().unwrap() > 0, "{there}");

    // Through a team: the shop, entered as a team's contributor, then the
    // membership ends.
    let team = crate::support::create_team(&app, &admin, "Writers", "").await;
    call(
        "admin_add_members",
        vec![("team", team.clone()), ("emails", SAM.into())],
    )
    .await;
    call(
        "admin_grant_team",
        vec![
            ("team", team.clone()),
            ("target", "site".into()),
            ("site", shop.clone()),
            ("role", "contributor".into()),
            ("duration", String::new()),
            ("reason", String::new()),
        ],
    )
    .await;
    assert_eq!(
        sites.enter(&app, &sam, &shop).await["user"]["role"],
        "contributor"
    );
    assert_eq!(
        deliver(&app, "w").await,
        0,
        "a role given at a launch is not sent again"
    );
    call(
        "admin_remove_member",
        vec![("team", team.clone()), ("email", SAM.into())],
    )
    .await;
    assert_eq!(deliver(&app, "w").await, 1);
    let got = sites.received("shop");
    assert_eq!(
        (got[0]["action"].as_str(), got[0]["role"].as_str()),
        (Some("set-role"), Some(""))
    );
    assert_eq!(on("shop")["role"], "");

    // A time-limited grant ends: the job notices, records it, and the site
    // is told the role Sam holds there now (the lasting one).
    let notice = |app: &TestApp| {
        let (db, now) = (app.state.db.clone(), app.clock.now_for_tests());
        async move {
            agency_sso::service::messages::notice_expired_grants(&db, now)
                .await
                .unwrap()
        }
    };
    // The job's first look starts its watch: grants that ended before it
    // existed are not its business.
    assert_eq!(notice(&app).await, 0);
    grant(&app, SAM, &blog, "subscriber").await;
    call("admin_grant", form(&blog, "editor", "60")).await;
    deliver(&app, "w").await;
    let before = sites.received("blog").len();
    app.clock.advance(3_601);
    sites.follow_clock(&app);
    assert_eq!(notice(&app).await, 1);
    // Another instance looking at the same stretch of time finds it done.
    assert_eq!(notice(&app).await, 0);
    let expired = records(&app, kind::GRANT_EXPIRED).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].subject.as_str(), expired[0].role.as_str()),
        (SAM, "editor")
    );
    assert_eq!(deliver(&app, "w").await, 1);
    let got = sites.received("blog");
    assert_eq!(got.len(), before + 1);
    assert_eq!(got[before]["role"], "subscriber");
    // Each newer message to the blog came with a greater seq, the person
    // named by the same stable subject.
    let seqs: Vec<i64> = got.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let id = person_id(&app, SAM).await;
    assert!(got.iter().all(|m| m["sub"] == id.as_str()), "{got:?}");
    // The blog holds the last of them: subscriber, still locked since the
    // revoke (a launch after it would lift the lock).
    let there = on("blog");
    assert_eq!(there["role"], "subscriber");
    assert_eq!(there["last_seq"], *seqs.last().unwrap());
    assert!(there["locked_at"].as_i64().unwrap() > 0);
}

/// "End all WordPress sessions", from the console and the command line.
async fn ending_wordpress_sessions_asks_every_connector_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let one = site(&app, "One", &sites.url("one"), "connector").await;
    let two = site(&app, "Two", &sites.url("two"), "connector").await;
    site(&app, "Old", "https://old.acme.example", "twl-sso").await;
    grant(&app, SAM, &one, "editor").await;
    grant(&app, SAM, &two, "author").await;
    // Sam has an account on the first, made by hand before the plugin (not
    // bound yet: matched by e-mail), signed in twice, with an application
    // password; none on the second.
    sites.add_user(
        "one",
        "sam",
        serde_json::json!({ "email": SAM, "role": "editor", "sessions": 2, "app_passwords": 1 }),
    );
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    let id = person_id(&app, SAM).await;
    let (status, body) = server_fn(
        &app,
        &admin,
        "admin_end_wordpress_sessions",
        &[("person", &id)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("2 connector site(s) asked"),
        "{body}"
    );
    assert_eq!(deliver(&app, "w").await, 2);
    for name in ["one", "two"] {
        assert_eq!(sites.received(name)[0]["action"], "end-sessions");
    }
    let there = sites.user("one", SAM).unwrap();
    assert_eq!(
        (
            there["sessions"].as_i64(),
            there["app_passwords"].as_i64(),
            there["locked_at"].as_i64()
        ),
        (Some(0), Some(0), Some(0)),
        "{there}"
    );
    let (_, list) = server_fn(&app, &admin, "admin_offboarding", &[("id", &id)]).await;
    let report = |url: String| {
        list["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["site_url"] == url.as_str())
            .unwrap()["report"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        report(sites.url("one")),
        "2 session(s) ended, 1 application password(s) revoked"
    );
    assert_eq!(
        report(sites.url("two")),
        "No account for them there: nothing to do."
    );
    let asked = records(&app, kind::SITE_SESSIONS_END_REQUESTED).await;
    assert_eq!(asked[0].actor, ADMIN);

    let out = app
        .command()
        .args(["users", "end-sessions", "Sam@agency.test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("2 connector site(s) asked to end sam@agency.test's WordPress sessions"));
    // The command line wrote them by the system clock, a little ahead of the test's.
    app.clock.advance(60);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w").await, 2);
    assert_eq!(sites.received("one").len(), 2);
    let asked = records(&app, kind::SITE_SESSIONS_END_REQUESTED).await;
    assert_eq!(asked[1].actor, "command line");
    let csv = app
        .command()
        .args(["users", "offboarding", SAM])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(
        csv.lines()
            .filter(|l| l.contains(r#","end-sessions","#))
            .count(),
        4,
        "{csv}"
    );
}

/// An import that moves a connector site to another profile cancels the
/// messages still waiting for it, as the console's edit does: recorded,
/// shown as cancelled, and never sent when the site answers again.
async fn an_import_that_moves_a_site_off_the_connector_cancels_its_messages(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let leaving = sites.granted_site(&app, "leaving", SAM, "editor").await;
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    sites.set_down("leaving", true);
    disable(&app, &admin, SAM).await;
    assert_eq!(deliver(&app, "w").await, 1);

    let csv = format!(
        "name,client,url,profile\nleaving,Acme,{},twl-sso\n",
        sites.url("leaving")
    );
    let (preview, actions) = import_preview(&app, &admin, &csv).await;
    assert_eq!(actions, ["update"], "{preview}");
    let (status, body) = import_apply(&app, &admin, &csv, &preview).await;
    assert_eq!(status, 200, "{body}");

    let m = messages_of(&app, SAM)
        .await
        .into_iter()
        .find(|m| m.site_id == leaving)
        .unwrap();
    assert_eq!(m.state, "cancelled", "{m:?}");
    assert!(
        m.last_error
            .as_deref()
            .unwrap()
            .contains("no longer uses the connector profile (now twl-sso)"),
        "{m:?}"
    );
    let cancelled = records(&app, kind::SITE_MESSAGE_CANCELLED).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        (cancelled[0].subject.as_str(), cancelled[0].actor.as_str()),
        (SAM, ADMIN)
    );

    // The site answers again: nothing more goes to it.
    sites.set_down("leaving", false);
    app.clock.advance(20);
    sites.follow_clock(&app);
    assert_eq!(deliver(&app, "w").await, 0);
    assert_eq!(sites.arrivals("leaving"), 1);
}

on_both_databases!(
    disabling_a_person_locks_them_out_of_every_connector_site,
    a_site_that_is_down_gets_the_message_when_it_is_back,
    an_answer_that_does_not_confirm_the_message_is_not_a_delivery,
    waiting_messages_follow_their_site,
    an_import_that_moves_a_site_off_the_connector_cancels_its_messages,
    sites_find_the_person_by_the_stable_subject,
    an_older_message_than_the_site_applied_is_superseded,
    a_message_right_after_an_emergency_rotation_gets_through,
    a_message_claimed_by_a_killed_instance_is_sent_by_another,
    grant_changes_set_the_role_on_the_sites_entered,
    ending_wordpress_sessions_asks_every_connector_site,
);

/// Two instances on one PostgreSQL database, both sending: each message
/// reaches its site once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_send_each_message_once() {
    let app = TestApp::start(Backend::Postgres).await;
    let sites = StandInSites::start(&app).await;
    for i in 0..60 {
        let s = site(
            &app,
            &format!("S{i}"),
            &sites.url(&format!("s{i}")),
            "connector",
        )
        .await;
        grant(&app, SAM, &s, "editor").await;
    }
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    disable(&app, &admin, SAM).await;
    let (_, other) = app.another_instance().await;
    let client = http_client();
    let (a, b) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += deliver_due(&app.state.core, &client, "a").await.unwrap();
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += deliver_due(&other.core, &client, "b").await.unwrap();
            }
            n
        }
    );
    assert_eq!(a + b, 60, "a sent {a}, b sent {b}");
    for i in 0..60 {
        assert_eq!(sites.received(&format!("s{i}")).len(), 1, "site s{i}");
    }
    assert_eq!(records(&app, kind::SITE_MESSAGE_DELIVERED).await.len(), 60);
}

/// What the sites refuse, checked by the plugin's own code: a launch token
/// posted as a message, a message for another site, one replayed, one
/// expired, one without the logout event, and one signed by another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_refuse_messages_that_are_not_the_dashboards_for_them() {
    use agency_sso::domain::messages::{logout_claims, Addressed, SiteAction, TYP};
    let app = TestApp::start(Backend::Sqlite).await;
    let sites = StandInSites::start(&app).await;
    let signer = app.state.keys.signer().unwrap();
    let now = app.clock.now_for_tests();
    let iss = app.state.config.public_url.clone();
    fn to<'a>(issuer: &'a str, audience: &'a str) -> Addressed<'a> {
        Addressed {
            issuer,
            audience,
            subject: "a-person",
            email: SAM,
            seq: 1,
        }
    }
    let claims =
        |aud: &str, jti: &str, at: i64| logout_claims(&to(&iss, aud), &SiteAction::Lock, at, jti);
    let post = |token: String| {
        let url = format!(
            "{}/?rest_route=/agency-sso/v1/back-channel",
            sites.url("site")
        );
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .form(&[("logout_token", token)])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body["error"].as_str().unwrap_or("").to_string())
        }
    };
    let good = signer
        .sign_typed(
            TYP,
            &claims(&sites.url("site"), "jti-000000000000000001", now),
        )
        .unwrap();
    assert_eq!(post(good.clone()).await, (200, String::new()));
    assert_eq!(post(good).await, (409, "token_replayed".into()));
    let elsewhere = signer
        .sign_typed(
            TYP,
            &claims(&sites.url("other"), "jti-000000000000000002", now),
        )
        .unwrap();
    assert_eq!(post(elsewhere).await, (401, "wrong_audience".into()));
    let old = signer
        .sign_typed(
            TYP,
            &claims(&sites.url("site"), "jti-000000000000000003", now - 600),
        )
        .unwrap();
    assert_eq!(post(old).await, (401, "token_expired".into()));
    let launch_typed = signer
        .sign(&claims(&sites.url("site"), "jti-000000000000000004", now))
        .unwrap();
    assert_eq!(post(launch_typed).await, (401, "wrong_type".into()));
    let mut no_event = claims(&sites.url("site"), "jti-000000000000000005", now);
    no_event.as_object_mut().unwrap().remove("events");
    assert_eq!(
        post(signer.sign_typed(TYP, &no_event).unwrap()).await,
        (400, "not_a_logout_token".into())
    );
    let mut with_nonce = claims(&sites.url("site"), "jti-000000000000000006", now);
    with_nonce["nonce"] = "n".into();
    assert_eq!(
        post(signer.sign_typed(TYP, &with_nonce).unwrap()).await,
        (400, "not_a_logout_token".into())
    );
    let stranger = agency_sso::domain::tokens::Signer::from_pkcs1_der(
        "stranger",
        &agency_sso::domain::keys::generate(2048, &mut rand::rngs::OsRng)
            .unwrap()
            .private_der,
    )
    .unwrap();
    let forged = stranger
        .sign_typed(
            TYP,
            &claims(&sites.url("site"), "jti-000000000000000007", now),
        )
        .unwrap();
    assert_eq!(post(forged).await, (401, "unknown_key".into()));
    let unknown_role = logout_claims(
        &to(&iss, &sites.url("site")),
        &SiteAction::SetRole("shop_manager".into()),
        now,
        "jti-000000000000000008",
    );
    assert_eq!(
        post(signer.sign_typed(TYP, &unknown_role).unwrap()).await,
        (422, "role_not_allowed".into())
    );
    // Only the first message was carried out.
    assert_eq!(sites.received("site").len(), 1);
}

/// A site that takes its time holds up only itself: the others are told
/// while it is still working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_site_does_not_hold_up_the_others() {
    let app = TestApp::start(Backend::Sqlite).await;
    let sites = StandInSites::start(&app).await;
    for name in ["slow", "a", "b", "c", "d"] {
        let s = site(&app, name, &sites.url(name), "connector").await;
        grant(&app, SAM, &s, "editor").await;
    }
    app.signed_in(SAM).await;
    let admin = app.signed_in_fresh(ADMIN).await;
    sites.set_held("slow", true);
    disable(&app, &admin, SAM).await;
    let ctx = app.state.core.clone();
    let sending = tokio::spawn(async move { deliver_due(&ctx, &http_client(), "w").await });
    // The others are told while the slow site still holds its message
    // (it holds it until released, at most 9 s).
    let told = |sites: &StandInSites| {
        ["a", "b", "c", "d"]
            .into_iter()
            .filter(|name| sites.received(name).len() == 1)
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while told(&sites) < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(told(&sites), 4, "the others waited for the slow site");
    assert!(sites.received("slow").is_empty());
    assert!(!sending.is_finished(), "the slow site was not waited for");
    sites.set_held("slow", false);
    assert_eq!(sending.await.unwrap().unwrap(), 5);
    let states: Vec<String> = messages_of(&app, SAM)
        .await
        .into_iter()
        .map(|m| m.state)
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "done").count(),
        5,
        "{states:?}"
    );
}

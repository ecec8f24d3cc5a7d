//! The audit log: every action recorded with its request id, tampering of
//! every kind named by `audit verify`, checkpoints that catch a rewritten
//! chain, pruning through a checkpoint, the export, and two instances
//! appending under load.

use agency_sso::domain::audit::{chain_hash, from_hex, kind, to_hex, Actor, Problem, Stored};
use agency_sso::domain::sites::SiteInput;
use agency_sso::store;
use reqwest::header::LOCATION;
use serde_json::Value;

use crate::on_both_databases;
use crate::support::{grant, page_text, run_ok, Backend, Browser, Options, TestApp};

const BLOG: &str = "https://blog.client-one.example";
const SHOP: &str = "https://shop.client-two.example";

async fn add_site(app: &TestApp, name: &str, client: &str, url: &str) -> String {
    let input = SiteInput {
        name: name.into(),
        client: client.into(),
        url: url.into(),
        ..SiteInput::default()
    };
    crate::support::add_site(app, input).await
}

/// POST /launch as a browser on the dashboard's page would.
async fn launch(app: &TestApp, browser: &Browser, site: &str) -> reqwest::Response {
    browser
        .post(app.at("/launch"))
        .header("origin", &app.url)
        .form(&[("site", site), ("path", "")])
        .send()
        .await
        .unwrap()
}

/// The `jti` of the token in a launch's redirect.
fn jti_of(res: &reqwest::Response) -> String {
    use base64::Engine;
    assert_eq!(res.status(), 303, "the launch should go through");
    let loc = res.headers()[LOCATION].to_str().unwrap();
    let url = url::Url::parse(loc).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token" || k == "mo_jwt_token")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

/// Every record, oldest first.
async fn all(app: &TestApp) -> Vec<Stored> {
    store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap()
}

fn detail(s: &Stored) -> Value {
    serde_json::from_str(&s.event.detail).unwrap()
}

async fn verify(app: &TestApp) -> Result<u64, Problem> {
    agency_sso::service::audit::verify(&app.state.db, &app.state.master_keys, &[])
        .await
        .unwrap()
        .outcome
        .map(|s| s.records)
}

async fn every_action_is_recorded_with_who_where_and_its_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let blog = add_site(&app, "Client One Blog", "Client One", BLOG).await;
    grant(&app, "sam@agency.test", &blog, "editor").await;

    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let res = launch(&app, &sam, &blog).await;
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let jti = jti_of(&res);
    let refused = launch(&app, &sam, "no-such-site").await;
    assert_eq!(refused.status(), 403);

    // A sign-in the policy refuses.
    let eve = app.browser();
    let attempt = app.begin(&eve).await;
    let claims = app.idp.claims("eve@elsewhere.test", &attempt.nonce);
    let res = app
        .finish(&eve, &attempt, claims, crate::idp::Signing::Rs256)
        .await;
    assert_eq!(res.status(), 403);

    // Admin changes from the command line, and a key rotation.
    run_ok(app.command().args(["sites", "disable", BLOG]));
    run_ok(app.command().args(["keys", "rotate"]));
    // Sign-out, and a person disabled with a live session.
    let ann = app.browser();
    app.sign_in(&ann, "ann@agency.test").await;
    let out = ann
        .post(app.at("/auth/logout"))
        .header("origin", &app.url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    run_ok(app.command().args(["users", "disable", "sam@agency.test"]));

    let records = all(&app).await;
    let find = |k: &str| {
        records
            .iter()
            .filter(|r| r.event.kind == k)
            .cloned()
            .collect::<Vec<_>>()
    };
    let started = &find(kind::SERVICE_STARTED)[0];
    assert_eq!(detail(started)["public_url"], app.url.as_str());
    assert_eq!(started.event.actor, "system");

    let created = &find(kind::SITE_CREATED)[0];
    assert_eq!(created.event.site_url, BLOG);
    assert_eq!(detail(created)["after"]["name"], "Client One Blog");
    let granted = &find(kind::GRANT_SET)[0];
    assert_eq!(
        (granted.event.subject.as_str(), granted.event.role.as_str()),
        ("sam@agency.test", "editor")
    );
    assert_eq!(detail(granted)["before"], Value::Null);

    let signed_in = &find(kind::SIGN_IN)[0];
    assert_eq!(signed_in.event.subject, "sam@agency.test");
    assert_eq!(signed_in.event.ip, "127.0.0.1");
    assert_eq!(signed_in.event.request_id.len(), 36, "a request id is kept");

    let launched = &find(kind::LAUNCH)[0];
    assert_eq!(launched.event.jti.as_deref(), Some(jti.as_str()));
    assert_eq!(launched.event.request_id, request_id);
    assert_eq!(
        (launched.event.role.as_str(), launched.event.client.as_str()),
        ("editor", "Client One")
    );
    assert_eq!(
        detail(launched)["kid"].as_str(),
        records
            .iter()
            .find(|r| r.event.kind == kind::KEY_CREATED)
            .map(|r| detail(r)["kid"].as_str().unwrap().to_string())
            .as_deref()
    );
    assert_eq!(launched.event.user_agent, "", "reqwest sends none");
    let refusal = &find(kind::LAUNCH_REFUSED)[0];
    assert_eq!(
        (
            refusal.event.outcome.as_str(),
            refusal.event.reason.as_str()
        ),
        ("refused", "unknown_site")
    );

    let failed = &find(kind::SIGN_IN_FAILED)[0];
    assert_eq!(
        (failed.event.subject.as_str(), failed.event.reason.as_str()),
        ("eve@elsewhere.test", "domain_not_allowed")
    );

    let changed = &find(kind::SITE_CHANGED)[0];
    assert_eq!(changed.event.actor, "command line");
    assert_eq!(detail(changed)["before"]["enabled"], true);
    assert_eq!(detail(changed)["after"]["enabled"], false);

    let rotated = find(kind::KEY_CREATED);
    assert_eq!(rotated.len(), 2, "the first key and the rotation's");
    assert_eq!(rotated[1].event.actor, "command line");

    let out = &find(kind::SIGN_OUT)[0];
    assert_eq!(out.event.subject, "ann@agency.test");
    let disabled = &find(kind::PERSON_CHANGED)[0];
    assert_eq!(disabled.event.subject, "sam@agency.test");
    assert_eq!(detail(disabled)["after"]["disabled"], true);
    assert_eq!(detail(disabled)["sessions_ended"], 1);

    // All of it chains.
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(
        verified.contains(&format!(
            "{} record(s) #1..#{}",
            records.len(),
            records.len()
        )),
        "{verified}"
    );
}

/// Put a record back exactly as it was.
async fn insert_raw(app: &TestApp, r: &Stored) {
    store::audit::insert_stored(&app.state.db.pool, r)
        .await
        .unwrap();
}

async fn sql(app: &TestApp, q: &str) {
    sqlx::query(q).execute(&app.state.db.pool).await.unwrap();
}

/// Shift the records after `seq` by `by` (through negative numbers, so
/// the primary key never collides midway).
async fn renumber_after(app: &TestApp, seq: i64, by: i64) {
    sql(
        app,
        &format!("UPDATE audit_log SET seq = -seq WHERE seq > {seq}"),
    )
    .await;
    sql(
        app,
        &format!("UPDATE audit_log SET seq = -seq + ({by}) WHERE seq < 0"),
    )
    .await;
}

async fn swap(app: &TestApp, a: i64, b: i64) {
    sql(
        app,
        &format!("UPDATE audit_log SET seq = -1 WHERE seq = {a}"),
    )
    .await;
    sql(
        app,
        &format!("UPDATE audit_log SET seq = {a} WHERE seq = {b}"),
    )
    .await;
    sql(
        app,
        &format!("UPDATE audit_log SET seq = {b} WHERE seq = -1"),
    )
    .await;
}

/// Some real activity: sites, grants, sign-ins, launches.
async fn activity(app: &TestApp) -> String {
    let blog = add_site(app, "Client One Blog", "Client One", BLOG).await;
    let shop = add_site(app, "Client Two Shop", "Client Two", SHOP).await;
    grant(app, "sam@agency.test", &blog, "editor").await;
    grant(app, "sam@agency.test", &shop, "author").await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    for site in [&blog, &shop, &blog, &shop, &blog, &blog, &shop, &blog] {
        assert_eq!(launch(app, &sam, site).await.status(), 303);
    }
    blog
}

async fn tampering_of_every_kind_is_named(backend: Backend) {
    let app = TestApp::start(backend).await;
    activity(&app).await;
    let n = verify(&app).await.unwrap();
    assert!(n >= 14, "{n} records");

    // Altered: a launch's role raised after the fact.
    let fifth = store::audit::get(&app.state.db, 9).await.unwrap().unwrap();
    sql(
        &app,
        "UPDATE audit_log SET role = 'administrator' WHERE seq = 9",
    )
    .await;
    assert_eq!(verify(&app).await, Err(Problem::Altered { seq: 9 }));
    let out = app.command().args(["audit", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "verify fails");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("record #9 was altered"), "{said}");
    sqlx::query("UPDATE audit_log SET role = $1 WHERE seq = 9")
        .bind(&fifth.event.role)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(verify(&app).await, Ok(n), "restored");

    // Deleted.
    let sixth = store::audit::get(&app.state.db, 6).await.unwrap().unwrap();
    sql(&app, "DELETE FROM audit_log WHERE seq = 6").await;
    assert_eq!(verify(&app).await, Err(Problem::Deleted { from: 6, to: 6 }));
    // Deleted, and the numbers closed up behind it.
    renumber_after(&app, 6, -1).await;
    assert_eq!(verify(&app).await, Err(Problem::DeletedBefore { seq: 6 }));
    renumber_after(&app, 5, 1).await;
    insert_raw(&app, &sixth).await;
    assert_eq!(verify(&app).await, Ok(n), "restored");

    // The last records deleted: the head still names them.
    let last = store::audit::get(&app.state.db, n as i64)
        .await
        .unwrap()
        .unwrap();
    sql(&app, &format!("DELETE FROM audit_log WHERE seq = {n}")).await;
    assert_eq!(
        verify(&app).await,
        Err(Problem::Truncated {
            last: n as i64 - 1,
            head: n as i64
        })
    );
    insert_raw(&app, &last).await;

    // Inserted: a forged launch with a hash of its own, linked to #7,
    // the later records moved up to make room.
    let seventh = store::audit::get(&app.state.db, 7).await.unwrap().unwrap();
    let mut forged = seventh.clone();
    forged.seq = 8;
    forged.event.jti = Some("forged-jti".into());
    forged.event.role = "administrator".into();
    forged.prev_hash = seventh.hash.clone();
    forged.hash = to_hex(&chain_hash(
        &from_hex(&seventh.hash).unwrap(),
        &forged.event,
    ));
    renumber_after(&app, 7, 1).await;
    insert_raw(&app, &forged).await;
    assert_eq!(verify(&app).await, Err(Problem::Inserted { seq: 8 }));
    sql(&app, "DELETE FROM audit_log WHERE seq = 8").await;
    renumber_after(&app, 8, -1).await;
    assert_eq!(verify(&app).await, Ok(n), "restored");

    // Reordered: two records swapped.
    swap(&app, 10, 11).await;
    assert_eq!(
        verify(&app).await,
        Err(Problem::Reordered { seq: 10, after: 11 })
    );
    swap(&app, 10, 11).await;
    assert_eq!(verify(&app).await, Ok(n), "restored");
}

/// Rewrite the whole chain from #1 with one record changed, as someone
/// with write access to the database and the source code could.
async fn rewrite_chain(app: &TestApp, change_seq: i64) {
    let mut prev = agency_sso::domain::audit::GENESIS;
    for mut r in all(app).await {
        if r.seq == change_seq {
            r.event.role = "administrator".into();
        }
        let h = chain_hash(&prev, &r.event);
        sqlx::query("UPDATE audit_log SET role = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&r.event.role)
            .bind(to_hex(&prev))
            .bind(to_hex(&h))
            .bind(r.seq)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        prev = h;
    }
    sqlx::query("UPDATE audit_head SET hash = $1")
        .bind(to_hex(&prev))
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

async fn a_signed_checkpoint_catches_a_rewritten_chain(backend: Backend) {
    let app = TestApp::start(backend).await;
    activity(&app).await;
    // The checkpoint, as an auditor would keep it outside the database.
    let jws = run_ok(app.command().args(["audit", "checkpoint"]));
    assert_eq!(jws.trim().split('.').count(), 3, "{jws}");
    let held = app.data_dir.join("checkpoint.jws");
    std::fs::write(&held, &jws).unwrap();
    let n = verify(&app).await.unwrap();
    let report = agency_sso::service::audit::verify(&app.state.db, &app.state.master_keys, &[])
        .await
        .unwrap();
    assert_eq!(report.checkpoints_signed, 1);

    rewrite_chain(&app, 9).await;
    assert_eq!(
        verify(&app).await,
        Err(Problem::CheckpointMismatch { seq: n as i64 })
    );
    // Checkpoints deleted too: the chain alone looks fine, the held one does not.
    sql(&app, "DELETE FROM audit_checkpoints").await;
    assert_eq!(verify(&app).await, Ok(n), "the chain alone cannot tell");
    let out = app
        .command()
        .args(["audit", "verify", "--checkpoint"])
        .arg(&held)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("the checkpoint at #{n} does not match the chain")),
        "{said}"
    );

    // A forged checkpoint (not signed by the ring's key) is refused.
    let mut parts: Vec<String> = jws.trim().split('.').map(String::from).collect();
    parts[2] = parts[2].chars().rev().collect();
    std::fs::write(&held, parts.join(".")).unwrap();
    let out = app
        .command()
        .args(["audit", "verify", "--checkpoint"])
        .arg(&held)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not usable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn pruning_goes_through_a_checkpoint_and_what_remains_verifies(backend: Backend) {
    let app = TestApp::start(backend).await;
    activity(&app).await;
    let old = all(&app).await.len() as i64;
    app.clock.advance(40 * 86_400);
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let now = app.clock.now_for_tests();
    let (deleted, through) = agency_sso::service::audit::prune(
        &app.state.db,
        &app.state.keys,
        &app.state.config.public_url,
        now - 30 * 86_400,
        &Actor::command_line(),
        now,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((deleted, through), (old, old));
    let left = all(&app).await;
    assert_eq!(left[0].seq, old + 1);
    assert!(left
        .iter()
        .any(|r| r.event.kind == kind::AUDIT_PRUNED && detail(r)["deleted"] == old));
    assert_eq!(verify(&app).await, Ok(left.len() as u64));

    // Deleting more than retention did is caught.
    sql(
        &app,
        &format!("DELETE FROM audit_log WHERE seq = {}", old + 1),
    )
    .await;
    assert_eq!(
        verify(&app).await,
        Err(Problem::Deleted {
            from: old + 1,
            to: old + 1
        })
    );
}

async fn export_holds_exactly_the_filtered_records_and_staff_see_their_own(backend: Backend) {
    let app = TestApp::start(backend).await;
    let blog = activity(&app).await;
    // A site whose name a spreadsheet would run as a formula.
    let evil = add_site(
        &app,
        "=HYPERLINK(\"http://x\")",
        "=cmd|' /C calc'!A0",
        "https://evil-name.example",
    )
    .await;
    grant(&app, "sam@agency.test", &evil, "editor").await;
    let boss = app.browser();
    app.sign_in_fresh(&boss, "boss@agency.test").await;

    let get = |b: &Browser, q: &str| {
        let url = app.at(&format!("/audit/export?{q}"));
        let req = b.get(url);
        async move { req.send().await.unwrap() }
    };
    let res = get(
        &boss,
        &format!(
            "format=csv&person=sam%40agency.test&site={}",
            urlencode(BLOG)
        ),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"audit-"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,time_utc,event"));
    let expected: Vec<Stored> = all(&app)
        .await
        .into_iter()
        .rev()
        .filter(|r| {
            (r.event.subject == "sam@agency.test" || r.event.actor == "sam@agency.test")
                && r.event.site_id == blog
        })
        .collect();
    assert!(expected.len() >= 5, "grant and four launches");
    assert_eq!(lines.len() - 1, expected.len(), "{csv}");
    for (line, r) in lines[1..].iter().zip(&expected) {
        assert!(line.starts_with(&format!("\"{}\",", r.seq)), "{line}");
        assert!(line.contains("\"sam@agency.test\""), "{line}");
        assert!(line.contains(BLOG), "{line}");
    }

    // JSON Lines, and a formula neutralised in CSV.
    let jsonl = get(&boss, "format=jsonl&event=site_created")
        .await
        .text()
        .await
        .unwrap();
    let created: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(created.len(), 3);
    assert!(created.iter().all(|v| v["event"] == "site_created"));
    let csv = get(&boss, "format=csv&event=site_created")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("\"'=cmd|' /C calc'!A0\""), "{csv}");
    assert!(!csv.contains(",\"=cmd"), "{csv}");

    // The command line exports the same.
    let cli = run_ok(app.command().args([
        "audit",
        "export",
        "--format",
        "csv",
        "--person",
        "sam@agency.test",
        "--site",
        BLOG,
    ]));
    assert_eq!(cli.lines().count(), lines.len());

    // A bad filter is a clear JSON error.
    let res = get(&boss, "format=csv&event=nonsense").await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_filter");

    // Staff: not everyone's, only their own.
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let res = get(&sam, "format=csv").await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "admin_only");
    let mine = get(&sam, "mine=1&format=jsonl&person=boss%40agency.test")
        .await
        .text()
        .await
        .unwrap();
    assert!(!mine.is_empty());
    for l in mine.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(
            v["person"] == "sam@agency.test" || v["actor"] == "sam@agency.test",
            "{l}"
        );
    }
    // The pages: staff see their own activity, and not the audit log.
    let page = page_text(&app.page(&sam, "/activity").await);
    assert!(
        page.contains("Your activity") && page.contains("launch"),
        "{page}"
    );
    assert!(
        !page.contains("Audit log"),
        "no link to the whole log for staff: {page}"
    );
    let page = page_text(&app.page(&sam, "/audit").await);
    assert!(
        page.contains("Only admins can see the whole audit log"),
        "{page}"
    );
    // The admin's page, filtered to one person: the sites they entered.
    let html = app.page(&boss, "/audit?person=sam%40agency.test").await;
    let page = page_text(&html);
    assert!(page.contains("Sites this person entered"), "{page}");
    assert!(page.contains(BLOG) && page.contains(SHOP), "{page}");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Two instances on one PostgreSQL database, 1,000 launches alternating
/// between them, 64 in flight at once: one record per token, one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_append_to_one_chain_under_load() {
    let app = std::sync::Arc::new(
        TestApp::start_with(Options::new(Backend::Postgres).without_launch_limits()).await,
    );
    let (other, _state) = app.another_instance().await;
    let blog = add_site(&app, "Client One Blog", "Client One", BLOG).await;
    grant(&app, "sam@agency.test", &blog, "editor").await;
    let sam = std::sync::Arc::new(app.browser());
    app.sign_in(&sam, "sam@agency.test").await;

    let urls = [app.url.clone(), other];
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..64 {
        let (sam, urls, blog, origin) = (sam.clone(), urls.clone(), blog.clone(), app.url.clone());
        workers.spawn(async move {
            let mut jtis = Vec::new();
            for i in 0..16 {
                if w * 16 + i >= 1000 {
                    break;
                }
                let base = &urls[(w + i) % 2];
                let res = sam
                    .post(format!("{base}/launch"))
                    .header("origin", &origin)
                    .form(&[("site", blog.as_str()), ("path", "")])
                    .send()
                    .await
                    .unwrap();
                jtis.push(jti_of(&res));
            }
            jtis
        });
    }
    let mut jtis = std::collections::HashSet::new();
    while let Some(batch) = workers.join_next().await {
        jtis.extend(batch.unwrap());
    }
    assert_eq!(jtis.len(), 1000, "every launch issued a token");
    assert_eq!(
        store::launches::count(&app.state.db).await.unwrap(),
        (1000, 1000),
        "one launch record per token"
    );
    let records = all(&app).await;
    for r in records.iter().filter(|r| r.event.kind == kind::LAUNCH) {
        assert!(jtis.contains(r.event.jti.as_deref().unwrap()));
    }
    assert_eq!(verify(&app).await, Ok(records.len() as u64));
}

async fn sessions_that_end_by_themselves_are_recorded(backend: Backend) {
    use tower_sessions::ExpiredDeletion;
    let app = TestApp::start(backend).await;
    // Inactivity: the cleanup deletes the expired session and records it.
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    sql(
        &app,
        "UPDATE sessions SET expires_at = 1 WHERE person_id IS NOT NULL",
    )
    .await;
    store::sessions::DbSessionStore::new(app.state.db.clone())
        .delete_expired()
        .await
        .unwrap();
    let ended: Vec<Stored> = all(&app)
        .await
        .into_iter()
        .filter(|r| r.event.kind == kind::SESSION_ENDED)
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (
            ended[0].event.subject.as_str(),
            ended[0].event.reason.as_str()
        ),
        ("sam@agency.test", "idle_timeout")
    );
    assert!(page_text(&app.home(&sam).await).contains("Sign in with"));

    // The absolute lifetime (12 hours by default), however active.
    let ann = app.browser();
    app.sign_in(&ann, "ann@agency.test").await;
    app.clock.advance(12 * 3600 + 1);
    assert!(page_text(&app.home(&ann).await).contains("Sign in with"));
    let last = all(&app).await.pop().unwrap();
    assert_eq!(last.event.kind, kind::SESSION_ENDED);
    assert_eq!(
        (last.event.subject.as_str(), last.event.reason.as_str()),
        ("ann@agency.test", "absolute_lifetime")
    );
    assert_eq!(verify(&app).await.map(|n| n > 0), Ok(true));
}

/// Staff see in their own activity what an admin did to their access, by
/// whom and when, but not the admin's address, browser or request id; the
/// admin's audit log keeps all of it.
async fn staff_see_what_admins_did_but_not_where_from(backend: Backend) {
    const ADMIN_AGENT: &str = "BossBrowser/7.1 (home-laptop)";
    let app = TestApp::start(backend).await;
    let blog = add_site(&app, "Client One Blog", "Client One", BLOG).await;
    let boss = app.browser();
    app.sign_in_fresh(&boss, "boss@agency.test").await;
    let res = boss
        .post(app.at("/api/admin_grant"))
        .header("origin", &app.url)
        .header("user-agent", ADMIN_AGENT)
        .form(&[
            ("site", blog.as_str()),
            ("email", "sam@agency.test"),
            ("role", "editor"),
            ("duration", ""),
            ("reason", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let grant_request = res.headers()["x-request-id"].to_str().unwrap().to_string();

    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let launched = launch(&app, &sam, &blog).await;
    let launch_request = launched.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let page = page_text(&app.page(&sam, "/activity").await);
    assert!(
        page.contains("grant set") && page.contains("boss@agency.test"),
        "{page}"
    );
    assert!(!page.contains("BossBrowser"), "{page}");
    assert!(!page.contains(&grant_request), "{page}");
    // Sam's own records still say where from.
    assert!(page.contains(&launch_request), "{page}");
    let mine = sam.text(app.at("/audit/export?mine=1&format=jsonl")).await;
    let records: Vec<Value> = mine
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let granted = records
        .iter()
        .find(|v| v["event"] == kind::GRANT_SET)
        .expect(&mine);
    assert_eq!(granted["actor"], "boss@agency.test");
    assert_eq!(
        (
            &granted["ip"],
            &granted["user_agent"],
            &granted["request_id"]
        ),
        (&Value::from(""), &Value::from(""), &Value::from("")),
        "{granted}"
    );
    let own = records
        .iter()
        .find(|v| v["event"] == kind::LAUNCH)
        .expect(&mine);
    assert_eq!(own["ip"], "127.0.0.1", "{own}");

    // The admin's view of the same person keeps where from.
    let page = page_text(&app.page(&boss, "/audit?person=sam%40agency.test").await);
    assert!(
        page.contains(ADMIN_AGENT) && page.contains(&grant_request),
        "{page}"
    );
}

on_both_databases!(
    staff_see_what_admins_did_but_not_where_from,
    sessions_that_end_by_themselves_are_recorded,
    every_action_is_recorded_with_who_where_and_its_request,
    tampering_of_every_kind_is_named,
    a_signed_checkpoint_catches_a_rewritten_chain,
    pruning_goes_through_a_checkpoint_and_what_remains_verifies,
    export_holds_exactly_the_filtered_records_and_staff_see_their_own,
);

#[test]
fn the_leak_scanner_finds_tokens_and_secrets() {
    use crate::support::leak_in;
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYW0ifQ.c2lnbmF0dXJl";
    assert!(leak_in(&format!("deep_link=/x?t={jwt}"), &[]).is_some());
    assert!(leak_in("client secret test-client-secret here", &[]).is_some());
    assert!(leak_in("master key abc123", &["abc123".into()]).is_some());
    assert_eq!(leak_in("a launch of sam@agency.test, jti 4Qx9", &[]), None);
    assert_eq!(leak_in("eyJ alone is fine", &[]), None);
}

//! The admin API over real HTTP: tokens made in the console and on the
//! command line, every route through the same services as the console,
//! each scope refused where it should be, tokens revoked, expired or whose
//! maker is no longer an admin refused, retries under an Idempotency-Key
//! acting once, and the OpenAPI document naming exactly the routes served.

use serde_json::{json, Value};

use crate::on_both_databases;
use crate::support::{server_fn, Backend, StandInSites, TestApp};

const ADA: &str = "ada@agency.test";
const SAM: &str = "sam@agency.test";

const BOSS: &str = "boss@agency.test";

/// Ada signs in and the configured admin makes her an admin too.
async fn make_ada_admin(app: &TestApp) {
    app.signed_in(ADA).await;
    let id = person_id(app, ADA).await;
    let boss = app.signed_in_fresh(BOSS).await;
    let (status, body) = server_fn(
        app,
        &boss,
        "admin_set_standing",
        &[("id", id.as_str()), ("change", "promote")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn person_id(app: &TestApp, email: &str) -> String {
    agency_sso::store::people::find_by_email(&app.state.db, email)
        .await
        .unwrap()
        .remove(0)
        .id
}

/// A token made from the console by a fresh-signed-in admin (Ada).
async fn console_token(app: &TestApp, name: &str, scopes: &str, days: &str) -> String {
    if !agency_sso::store::people::find_by_email(&app.state.db, ADA)
        .await
        .unwrap()
        .iter()
        .any(|p| p.is_admin)
    {
        make_ada_admin(app).await;
    }
    let ada = app.signed_in_fresh(ADA).await;
    let (status, made) = server_fn(
        app,
        &ada,
        "admin_create_api_token",
        &[("name", name), ("scopes", scopes), ("days", days)],
    )
    .await;
    assert_eq!(status, 200, "{made}");
    made["secret"].as_str().unwrap().to_string()
}

/// One API call: the status and the JSON answer.
async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .request(method, app.at(&format!("/api/v1{path}")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, headers)
}

async fn records(app: &TestApp, kind: &str) -> Vec<agency_sso::domain::audit::Event> {
    agency_sso::store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.kind == kind)
        .collect()
}

/// A provisioning script's day: Ada makes a token in the console (shown
/// once, listed with its last use), the script adds a site, grants Sam a
/// role with just-in-time eligibility, pages through the sites, changes the
/// site, revokes and deletes; each change is recorded as the token and Ada.
/// Sam then launches into the site the API made.
async fn a_token_made_in_the_console_manages_sites_and_grants(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let token = console_token(
        &app,
        "provisioning",
        "sites:read,sites:write,access:read,access:write",
        "30",
    )
    .await;
    assert!(token.starts_with("asso_"), "{token}");

    // Without a token, with a wrong one: refused as problem details.
    let (status, p, headers) = call(&app, "", Method::GET, "/sites", None, None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (401, Some("token_invalid")),
        "{p}"
    );
    assert_eq!(p["status"], 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(headers["content-type"], "application/problem+json");
    let (status, _, _) = call(&app, "asso_notone", Method::GET, "/sites", None, None).await;
    assert_eq!(status, 401);

    let url = sites.url("shop");
    let (status, site, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(json!({ "name": "Shop", "client": "Acme", "url": url, "profile": "connector" })),
        None,
    )
    .await;
    assert_eq!(status, 201, "{site}");
    assert_eq!(site["profile"], "connector");
    let id = site["id"].as_str().unwrap().to_string();
    let encoded: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    let (status, by_url, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/sites/{encoded}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, by_url["id"].as_str()),
        (200, Some(id.as_str())),
        "by URL: {by_url}"
    );
    // A bad site: the console's codes and fields, nothing written.
    let (status, p, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(json!({ "name": "", "client": "Acme", "url": "ftp://x" })),
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (422, Some("invalid")), "{p}");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"name") && fields.contains(&"url"), "{p}");
    let (status, p, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(json!({ "name": "Again", "client": "Acme", "url": url })),
        None,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("duplicate_url")),
        "{p}"
    );
    let (status, p, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(json!({ "nmae": "x" })),
        None,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("invalid")),
        "unknown field: {p}"
    );

    // Grant Sam editor, eligible for administrator for an hour at a time.
    let (status, g, _) = call(
        &app,
        &token,
        Method::PUT,
        &format!("/sites/{id}/grants/{SAM}"),
        Some(json!({ "role": "editor", "eligible_role": "administrator", "eligible_max_minutes": 60 })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(
        (g["role"].as_str(), g["eligible_role"].as_str()),
        (Some("editor"), Some("administrator"))
    );
    let (status, p, _) = call(
        &app,
        &token,
        Method::PUT,
        &format!("/sites/{id}/grants/{SAM}"),
        Some(json!({ "role": "shop_manager" })),
        None,
    )
    .await;
    assert_eq!(status, 422, "{p}");
    let sam = app.signed_in(SAM).await;
    assert_eq!(sites.enter(&app, &sam, &id).await["user"]["role"], "editor");

    // The site's grants, and the sites a page at a time.
    let (_, grants, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/sites/{id}/grants"),
        None,
        None,
    )
    .await;
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    for n in 0..4 {
        let (status, _, _) = call(
            &app,
            &token,
            Method::POST,
            "/sites",
            Some(json!({ "name": format!("Blog {n}"), "client": "Blogs", "url": format!("https://blog{n}.example") })),
            None,
        )
        .await;
        assert_eq!(status, 201);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let q = if cursor.is_empty() {
            "/sites?limit=2".to_string()
        } else {
            format!("/sites?limit=2&cursor={cursor}")
        };
        let (status, page, _) = call(&app, &token, Method::GET, &q, None, None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 5);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["Shop", "Blog 0", "Blog 1", "Blog 2", "Blog 3"],
        "by client, then name"
    );
    let (_, page, _) = call(
        &app,
        &token,
        Method::GET,
        "/sites?client=Blogs&q=blog%202",
        None,
        None,
    )
    .await;
    assert_eq!(page["items"][0]["name"], "Blog 2", "{page}");
    assert_eq!(page["total"], 1);

    // A change, with the version read: a stale version is refused.
    let (status, changed, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/sites/{id}"),
        Some(json!({ "notes": "managed by the hosting panel", "version": site["version"] })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["notes"], "managed by the hosting panel");
    assert_eq!(changed["name"], "Shop", "what is left out stays");
    let (status, p, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/sites/{id}"),
        Some(json!({ "notes": "lost update", "version": site["version"] })),
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("conflict")), "{p}");
    let (status, off, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/sites/{id}"),
        Some(json!({ "enabled": false })),
        None,
    )
    .await;
    assert_eq!((status, off["enabled"].as_bool()), (200, Some(false)));

    // Revoke, then delete.
    let (status, _, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/sites/{id}/grants/{SAM}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, p, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/sites/{id}/grants/{SAM}"),
        None,
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("unknown_grant")));
    let (status, _, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/sites/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, p, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/sites/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("unknown_site")));

    // Recorded as the token and its maker, like the console's changes.
    let actor = format!("token provisioning (made by {ADA})");
    for k in [
        "site_created",
        "grant_set",
        "site_changed",
        "grant_revoked",
        "site_deleted",
    ] {
        let r = records(&app, k).await;
        assert!(r.iter().any(|e| e.actor == actor), "{k}: {r:?}");
    }
    let made = records(&app, "api_token_created").await;
    assert_eq!(made[0].actor, ADA);
    assert!(
        !made[0].detail.contains(&token[5..]),
        "the secret never enters the log"
    );
    let reads = records(&app, "api_call").await;
    assert!(reads
        .iter()
        .any(|e| e.actor == actor && e.detail.contains("/api/v1/sites") && e.outcome == "success"));

    // The console lists it with its last use, never its secret.
    let ada = app.signed_in(ADA).await;
    let (status, list) = server_fn(&app, &ada, "admin_api_tokens", &[]).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["name"], "provisioning");
    assert_eq!(list[0]["state"], "live");
    assert_ne!(list[0]["last_used"], "never");
    assert!(!list.to_string().contains(&token[5..]));
}

/// Each scope only opens its own routes; reads never write; a revoked,
/// an expired token, and one whose maker was demoted or disabled, act no
/// more; tokens cannot make tokens.
async fn tokens_act_only_within_their_scopes_and_their_makers_standing(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::start(backend).await;
    let reader = console_token(&app, "reader", "sites:read", "1").await;
    for (method, path) in [
        (Method::POST, "/sites"),
        (Method::GET, "/people"),
        (Method::GET, "/audit"),
        (Method::GET, "/keys"),
        (Method::POST, "/keys/rotate"),
        (Method::GET, "/teams"),
    ] {
        let (status, p, _) = call(&app, &reader, method.clone(), path, Some(json!({})), None).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (403, Some("scope_missing")),
            "{method} {path}: {p}"
        );
    }
    let (status, _, _) = call(&app, &reader, Method::GET, "/sites", None, None).await;
    assert_eq!(status, 200);
    // The refusals are recorded as the token's.
    let refused = records(&app, "api_call").await;
    assert!(refused
        .iter()
        .any(|e| e.outcome == "refused" && e.reason == "scope_missing"));
    // There is no route to make tokens.
    let (status, p, _) = call(
        &app,
        &reader,
        Method::POST,
        "/tokens",
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("no_route")), "{p}");

    // Expired: the day passes.
    app.clock.advance(86_400);
    let (status, p, _) = call(&app, &reader, Method::GET, "/sites", None, None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (401, Some("token_expired")),
        "{p}"
    );

    // Revoked from the command line.
    let other = console_token(&app, "other", "sites:read", "30").await;
    let out = crate::support::run_ok(app.command().args(["tokens", "revoke", "other"]));
    assert_eq!(out.trim(), "Token \"other\" is revoked: it acts no more.");
    let (status, p, _) = call(&app, &other, Method::GET, "/sites", None, None).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("token_revoked")));

    // Ada demoted: her tokens act no more; promoted again, they do.
    let live = console_token(&app, "live", "sites:read", "30").await;
    let boss = app.signed_in_fresh(BOSS).await;
    let ada_id = person_id(&app, ADA).await;
    let standing = |change: &'static str| {
        let (app, boss, id) = (&app, &boss, ada_id.clone());
        async move {
            let (status, body) = server_fn(
                app,
                boss,
                "admin_set_standing",
                &[("id", id.as_str()), ("change", change)],
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // Ada's own token cannot disable her, as she cannot in the console.
    let own = console_token(&app, "own", "people:write", "30").await;
    let (status, p, _) = call(
        &app,
        &own,
        Method::POST,
        &format!("/people/{ada_id}/disable"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("own_account")),
        "{p}"
    );
    standing("demote").await;
    let (status, p, _) = call(&app, &live, Method::GET, "/sites", None, None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (401, Some("token_maker_not_admin")),
        "{p}"
    );
    standing("promote").await;
    let (status, _, _) = call(&app, &live, Method::GET, "/sites", None, None).await;
    assert_eq!(status, 200);
    standing("disable").await;
    let (status, _, _) = call(&app, &live, Method::GET, "/sites", None, None).await;
    assert_eq!(status, 401);

    // The command line's tokens are the operator's.
    let out = crate::support::run_ok(app.command().args([
        "tokens",
        "create",
        "--name",
        "hr",
        "--scope",
        "people:read",
        "--scope",
        "people:write",
        "--days",
        "7",
    ]));
    let secret = out.trim().lines().last().unwrap().to_string();
    let (status, page, _) = call(&app, &secret, Method::GET, "/people", None, None).await;
    assert_eq!(status, 200, "{page}");
    let list = crate::support::run_ok(app.command().args(["tokens", "list"]));
    assert!(
        list.contains("hr")
            && list.contains("people:read people:write")
            && list.contains("command line"),
        "{list}"
    );
    assert!(!list.contains(&secret[5..]));
    let err = crate::support::run_err(app.command().args([
        "tokens",
        "create",
        "--name",
        "hr",
        "--scope",
        "people:read",
        "--days",
        "7",
    ]));
    assert!(err.contains("a token named \"hr\" exists already"), "{err}");
    let err = crate::support::run_err(app.command().args([
        "tokens", "create", "--name", "x", "--scope", "root", "--days", "7",
    ]));
    assert!(err.contains("\"root\" is not a scope"), "{err}");
    // The console asks for a recent sign-in to make one.
    let stale = app.signed_in(BOSS).await;
    let (status, _) = server_fn(
        &app,
        &stale,
        "admin_create_api_token",
        &[("name", "n"), ("scopes", "sites:read"), ("days", "1")],
    )
    .await;
    assert_eq!(status, 401);
}

/// A retried write under the same Idempotency-Key acts once and answers
/// the same; the key reused for another request is refused.
async fn a_retried_write_acts_once(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::start(backend).await;
    let token = console_token(&app, "panel", "sites:write,sites:read", "30").await;
    let body = json!({ "name": "Shop", "client": "Acme", "url": "https://shop.acme.example" });
    let (s1, first, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(body.clone()),
        Some("k-1"),
    )
    .await;
    let (s2, again, headers) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(body.clone()),
        Some("k-1"),
    )
    .await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first, again);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(records(&app, "site_created").await.len(), 1);
    let (_, page, _) = call(&app, &token, Method::GET, "/sites", None, None).await;
    assert_eq!(page["total"], 1);
    let other = json!({ "name": "Blog", "client": "Acme", "url": "https://blog.acme.example" });
    let (status, p, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(other.clone()),
        Some("k-1"),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // A refusal is kept too: the retry gets the same answer.
    let (s1, p1, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(body.clone()),
        Some("k-2"),
    )
    .await;
    let (s2, p2, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(body),
        Some("k-2"),
    )
    .await;
    assert_eq!((s1, s2), (409, 409));
    assert_eq!(p1, p2);
    let (status, _, _) = call(
        &app,
        &token,
        Method::POST,
        "/sites",
        Some(other),
        Some("bad key"),
    )
    .await;
    assert_eq!(status, 400);
}

/// People, teams, keys and the audit log through the API.
async fn people_teams_keys_and_the_audit_log(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::start(backend).await;
    let sites = StandInSites::start(&app).await;
    let blog = sites.granted_site(&app, "blog", SAM, "editor").await;
    let sam = app.signed_in(SAM).await;
    sites.enter(&app, &sam, &blog).await;
    let token = console_token(
        &app,
        "ops",
        "people:read,people:write,teams:read,teams:write,keys:read,keys:write,audit:read",
        "30",
    )
    .await;
    let (_, page, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/people?q={SAM}"),
        None,
        None,
    )
    .await;
    assert_eq!(page["total"], 1, "{page}");
    let sam_id = page["items"][0]["id"].as_str().unwrap().to_string();
    let (_, detail, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/people/{sam_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(detail["sites"][0]["role"], "editor", "{detail}");
    assert_eq!(detail["sessions"], 1);
    let (status, p, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/people/{sam_id}/disable"),
        None,
        None,
    )
    .await;
    assert_eq!((status, p["disabled"].as_bool()), (200, Some(true)), "{p}");
    // His session ended, the site was told to lock him: the checklist says so.
    assert!(!app.home(&sam).await.contains("Your sites"));
    let (_, steps, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/people/{sam_id}/offboarding"),
        None,
        None,
    )
    .await;
    assert_eq!(steps[0]["site_url"], sites.url("blog"), "{steps}");
    let (status, _, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/people/{sam_id}/enable"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, p, _) = call(
        &app,
        &token,
        Method::POST,
        "/people/nobody/disable",
        None,
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("unknown_person")));

    // Teams.
    let (status, team, _) = call(
        &app,
        &token,
        Method::POST,
        "/teams",
        Some(json!({ "name": "Ops" })),
        None,
    )
    .await;
    assert_eq!(status, 201, "{team}");
    let tid = team["team"]["id"].as_str().unwrap().to_string();
    let (_, team, _) = call(
        &app,
        &token,
        Method::PUT,
        &format!("/teams/{tid}/members/{SAM}"),
        None,
        None,
    )
    .await;
    assert_eq!(team["members"], json!([SAM]));
    let (status, team, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/teams/{tid}/grants"),
        Some(json!({ "client": "Acme", "role": "author" })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{team}");
    let gid = team["grants"][0]["id"].as_str().unwrap().to_string();
    let (status, team, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/teams/{tid}/grants/{gid}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, team["grants"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (_, teams, _) = call(&app, &token, Method::GET, "/teams", None, None).await;
    assert_eq!(teams[0]["name"], "Ops", "{teams}");
    assert_eq!(teams[0]["members"], 1);
    let (_, one, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/teams/{tid}"),
        None,
        None,
    )
    .await;
    assert_eq!(one["members"], json!([SAM]));
    let (_, one, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/teams/{tid}/members/{SAM}"),
        None,
        None,
    )
    .await;
    assert_eq!(one["members"], json!([]));
    let (status, _, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/teams/{tid}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, p, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/teams/{tid}"),
        None,
        None,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("unknown_team")));
    // Sam signs in again; his sessions are ended from the API.
    let sam = app.signed_in(SAM).await;
    let (status, ended, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/people/{sam_id}/end-sessions"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, ended["sessions_ended"].as_u64()),
        (200, Some(1)),
        "{ended}"
    );
    assert!(!app.home(&sam).await.contains("Your sites"));

    // Keys: listed, rotated now (revoking is the console's alone).
    let (_, keys, _) = call(&app, &token, Method::GET, "/keys", None, None).await;
    let active = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "active")
        .unwrap()["kid"]
        .clone();
    let (status, r, _) = call(
        &app,
        &token,
        Method::POST,
        "/keys/rotate",
        Some(json!({ "when": "now" })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (_, keys, _) = call(&app, &token, Method::GET, "/keys", None, None).await;
    let now_active = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "active")
        .unwrap()["kid"]
        .clone();
    assert_ne!(active, now_active);

    // The audit log, newest first, a page at a time, with filters.
    let (status, page, _) = call(&app, &token, Method::GET, "/audit?limit=3", None, None).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0]["seq"].as_i64() > items[1]["seq"].as_i64());
    let before = page["next_before"].as_i64().unwrap();
    let (_, older, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/audit?limit=3&before={before}"),
        None,
        None,
    )
    .await;
    assert!(older["items"][0]["seq"].as_i64().unwrap() < before);
    let (_, launches, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/audit?kind=launch&person={SAM}"),
        None,
        None,
    )
    .await;
    assert_eq!(launches["items"].as_array().unwrap().len(), 1, "{launches}");
    assert_eq!(launches["items"][0]["site_id"], blog.as_str());
    assert!(launches["next_before"].is_null());
}

/// The document: served without a token, OpenAPI 3.1, every route of the
/// router with its scope, valid by a validator from PyPI; and a page for people.
async fn the_openapi_document_describes_exactly_the_routes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = reqwest::get(app.at("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut served = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            served.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    served.sort();
    let mut table: Vec<String> = agency_sso::web::api::resources::endpoints()
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    table.sort();
    assert_eq!(served, table);
    // Every documented route answers (401 without a token), and nothing
    // else under /api/v1 does.
    for route in &table {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{id}", "x")
            .replace("{email}", "y")
            .replace("{grant}", "z");
        let res = reqwest::Client::new()
            .request(method.parse().unwrap(), app.at(&format!("/api/v1{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{route}");
    }
    let file = std::env::temp_dir().join(format!(
        "openapi-{}-{}.json",
        std::process::id(),
        app.url.rsplit(':').next().unwrap_or("")
    ));
    std::fs::write(&file, doc.to_string()).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .env("PYTHONPATH", format!("{root}/target/pyverifiers"))
        .output()
        .expect("python3 (scripts/test installs openapi-spec-validator)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success() && said.contains("OK"), "{said}");

    let page = reqwest::get(app.at("/api/v1/docs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/api/v1/sites/{id}/grants/{email}"), "{page}");
    assert!(page.contains("access:write"));
    assert!(page.contains("id=\"problem-scope_missing\""));
}

/// Every route refuses a token holding every scope but its own, and
/// writes nothing; a token makes at most 600 calls a minute.
async fn every_route_needs_its_own_scope_and_calls_are_limited_per_token(backend: Backend) {
    use agency_sso::domain::api::Scope;
    let app = TestApp::start(backend).await;
    let before = agency_sso::service::audit::head(&app.state.db)
        .await
        .unwrap()
        .0;
    let now = app.clock.now_for_tests();
    for (i, e) in agency_sso::web::api::resources::endpoints()
        .iter()
        .enumerate()
    {
        let others: Vec<String> = Scope::ALL
            .iter()
            .filter(|s| **s != e.scope)
            .map(|s| s.as_str().to_string())
            .collect();
        let (_, secret) = agency_sso::service::api_tokens::create(
            &app.state.db,
            &format!("all-but-{i}"),
            &others,
            1,
            agency_sso::service::api_tokens::OPERATOR,
            &agency_sso::domain::audit::Actor::command_line(),
            &[i as u8; 32],
            now,
        )
        .await
        .unwrap();
        let path = e
            .path
            .replace("{id}", "x")
            .replace("{email}", "y")
            .replace("{grant}", "z");
        let (status, p, _) = call(
            &app,
            &secret,
            e.method.clone(),
            &path,
            Some(json!({})),
            None,
        )
        .await;
        assert_eq!(
            (status, p["code"].as_str()),
            (403, Some("scope_missing")),
            "{} {}: {p}",
            e.method,
            e.path
        );
    }
    // Nothing but the tokens' making and the refusals was recorded.
    let kinds: Vec<String> = agency_sso::store::audit::chunk(&app.state.db, before, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.kind)
        .filter(|k| k != "api_token_created" && k != "api_call")
        .collect();
    assert_eq!(kinds, Vec::<String>::new());

    let (_, busy) = agency_sso::service::api_tokens::create(
        &app.state.db,
        "busy",
        &["sites:read".to_string()],
        1,
        agency_sso::service::api_tokens::OPERATOR,
        &agency_sso::domain::audit::Actor::command_line(),
        &[200; 32],
        now,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut limited = None;
    for n in 1..=700 {
        let res = client
            .get(app.at("/api/v1/sites?limit=1"))
            .bearer_auth(&busy)
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            limited = Some(n);
            break;
        }
        assert_eq!(res.status(), 200);
    }
    let n = limited.expect("never limited");
    assert!((590..=610).contains(&n), "limited at call {n}");
    // Another token is not held up.
    let fresh = console_token(&app, "fresh", "sites:read", "1").await;
    let (status, _, _) = call(&app, &fresh, reqwest::Method::GET, "/sites", None, None).await;
    assert_eq!(status, 200);
}

on_both_databases!(
    every_route_needs_its_own_scope_and_calls_are_limited_per_token,
    a_token_made_in_the_console_manages_sites_and_grants,
    tokens_act_only_within_their_scopes_and_their_makers_standing,
    a_retried_write_acts_once,
    people_teams_keys_and_the_audit_log,
    the_openapi_document_describes_exactly_the_routes,
);

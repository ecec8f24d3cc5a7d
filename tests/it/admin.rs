//! The admin console's server functions over real HTTP: staff get 403 from
//! every one of them (recorded), field errors come back by field, sensitive
//! actions ask for a recent sign-in, teams and time-limited grants decide
//! access, the last admin stays, an import previews then applies at once.

use agency_sso::domain::audit::{kind, Actor};
use agency_sso::domain::sites::SiteInput;
use agency_sso::store;
use serde_json::Value;

use crate::on_both_databases;
use crate::support::{
    create_team, import_apply, import_preview, page_text, server_fn as call, site_form, Backend,
    Browser, TestApp,
};

const ADMIN: &str = "boss@agency.test";

/// Server functions staff may call (their own data); every other one must be an admin's.
const STAFF_FUNCTIONS: [&str; 10] = [
    "/api/viewer",
    "/api/my_sites",
    "/api/set_favourite",
    "/api/audit_records",
    "/api/my_access",
    "/api/request_access",
    "/api/close_access",
    "/api/self_approve_access",
    "/api/my_decisions",
    "/api/decide_access",
];

async fn add_site(app: &TestApp, name: &str, client: &str, url: &str) -> String {
    let input = SiteInput {
        name: name.into(),
        client: client.into(),
        url: url.into(),
        ..SiteInput::default()
    };
    crate::support::add_site(app, input).await
}

async fn records_of(app: &TestApp, k: &str) -> Vec<agency_sso::domain::audit::Stored> {
    store::audit::chunk(&app.state.db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.kind == k)
        .collect()
}

/// POST /launch as the picker does; the role in the token, or the refusal.
async fn launch_role(app: &TestApp, b: &Browser, site: &str) -> Result<String, u16> {
    use base64::Engine;
    let res = b
        .post(app.at("/launch"))
        .header("origin", &app.url)
        .form(&[("site", site), ("path", "")])
        .send()
        .await
        .unwrap();
    if res.status() != 303 {
        return Err(res.status().as_u16());
    }
    let loc = res.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(loc).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    Ok(claims["wp_role"].as_str().unwrap().to_string())
}

async fn every_admin_function_refuses_staff_with_403_and_a_record(backend: Backend) {
    let app = TestApp::start(backend).await;
    let paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p.to_string())
        .collect();
    let admin_fns: Vec<&String> = paths
        .iter()
        .filter(|p| p.starts_with(agency_sso::web::admin::ADMIN_API_PREFIX))
        .collect();
    // Every server function is either the staff's own or behind the admin edge.
    for p in &paths {
        assert!(
            STAFF_FUNCTIONS.contains(&p.as_str()) || admin_fns.contains(&p),
            "{p} is neither a staff function nor named admin_*: it would skip the admin check"
        );
    }
    assert!(admin_fns.len() >= 25, "{admin_fns:?}");

    let sam = app.signed_in("sam@agency.test").await;
    let stranger = app.browser();
    for p in &admin_fns {
        let name = p.trim_start_matches("/api/");
        let (status, body) = call(&app, &sam, name, &[]).await;
        assert_eq!(status, 403, "{p} as staff: {body}");
        assert_eq!(body, Value::String("Forbidden".into()), "{p}");
        let (status, body) = call(&app, &stranger, name, &[]).await;
        assert_eq!(status, 401, "{p} signed out: {body}");
    }
    let refused = records_of(&app, kind::ADMIN_REFUSED).await;
    assert_eq!(refused.len(), admin_fns.len());
    for (r, p) in refused.iter().zip(&admin_fns) {
        assert_eq!(r.event.actor, "sam@agency.test");
        assert_eq!(r.event.outcome, "refused");
        let d: Value = serde_json::from_str(&r.event.detail).unwrap();
        assert_eq!(d["function"], p.trim_start_matches("/api/"));
    }
    // The same function answers an admin, and a cross-site POST is refused before it.
    let boss = app.signed_in_fresh(ADMIN).await;
    let (status, body) = call(&app, &boss, "admin_teams", &[]).await;
    assert_eq!((status, body), (200, Value::Array(vec![])));
    let res = boss
        .post(app.at("/api/admin_teams"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The console's pages tell staff it is for admins, and show nothing of it.
    let html = app.page(&sam, "/admin/people").await;
    assert!(
        page_text(&html).contains("Admins only"),
        "{}",
        page_text(&html)
    );
    assert!(!html.contains("boss@agency.test"));
}

async fn site_forms_answer_by_field_and_sensitive_actions_need_a_recent_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let before = store::audit::count(&app.state.db).await.unwrap();
    // Every problem at once, each by its field; nothing written.
    let (status, body) = call(
        &app,
        &boss,
        "admin_save_site",
        &site_form(&[("name", ""), ("url", "ftp://x"), ("token_lifetime", "9000")]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["Invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "url", "token_lifetime"], "{body}");
    assert_eq!(store::audit::count(&app.state.db).await.unwrap(), before);
    assert!(store::sites::list(&app.state.db).await.unwrap().is_empty());

    let (status, site) = call(
        &app,
        &boss,
        "admin_save_site",
        &site_form(&[
            ("name", "Acme Shop"),
            ("url", "https://shop.acme.example/"),
            ("token_lifetime", "120"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{site}");
    assert_eq!(site["url"], "https://shop.acme.example");
    let id = site["id"].as_str().unwrap().to_string();
    // The same URL again is a field error, not a crash.
    let (status, body) = call(
        &app,
        &boss,
        "admin_save_site",
        &site_form(&[("name", "Again"), ("url", "https://SHOP.acme.example")]),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["Invalid"][0]["field"], "url");
    // An edit from a stale form does not overwrite a newer change.
    let edit = |version: &'static str, name: &'static str| {
        site_form(&[
            ("id", id.as_str()),
            ("version", version),
            ("name", name),
            ("url", "https://shop.acme.example"),
            ("token_lifetime", "120"),
            ("enabled", "on"),
        ])
    };
    let (status, body) = call(&app, &boss, "admin_save_site", &edit("1", "Acme Store")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&app, &boss, "admin_save_site", &edit("1", "Stale")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["Refused"]
            .as_str()
            .unwrap()
            .starts_with("Someone else changed this meanwhile"),
        "{body}"
    );
    let changed = records_of(&app, kind::SITE_CHANGED).await;
    assert_eq!(changed.len(), 1);
    let d: Value = serde_json::from_str(&changed[0].event.detail).unwrap();
    assert_eq!(
        (d["before"]["name"].as_str(), d["after"]["name"].as_str()),
        (Some("Acme Shop"), Some("Acme Store"))
    );

    // Deleting is sensitive: sixteen minutes after sign-in, sign in again first.
    agency_sso::service::access::grant(
        &app.state.db,
        &[],
        "sam@agency.test",
        &id,
        "editor",
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    app.clock.advance(16 * 60);
    let (status, body) = call(
        &app,
        &boss,
        "admin_delete_site",
        &[("id", &id), ("confirm", "https://shop.acme.example")],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let url = body["Reauth"]["url"].as_str().unwrap();
    assert_eq!(url, "/auth/login?reauth=1&return_to=%2Fadmin%2Fsites");
    // That address asks the provider to authenticate again.
    let res = boss.get(app.at(url)).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap();
    assert!(
        to.contains("prompt=login") && to.contains("max_age=0"),
        "{to}"
    );
    let delete = [
        ("id", id.as_str()),
        ("confirm", "https://shop.acme.example"),
    ];
    // A plain sign-in (the provider's own session, nothing proved) does not count.
    app.sign_in(&boss, ADMIN).await;
    assert_eq!(call(&app, &boss, "admin_delete_site", &delete).await.0, 401);
    // Nor a fresh one asked for whose ID token has no auth_time, or an old
    // one: the person is told, and the action stays locked.
    let now = app.clock.now_for_tests();
    for auth_time in [None, Some(now - 3600)] {
        let attempt = app.begin_at(&boss, url).await;
        let mut claims = app.idp.claims(ADMIN, &attempt.nonce);
        if let Some(t) = auth_time {
            claims["auth_time"] = serde_json::json!(t);
        }
        let res = app
            .finish(&boss, &attempt, claims, crate::idp::Signing::Rs256)
            .await;
        assert_eq!(res.status(), 200);
        let page = page_text(&res.text().await.unwrap());
        assert!(
            page.contains("reauth_unproven") && page.contains("did not prove"),
            "{auth_time:?}: {page}"
        );
        assert_eq!(call(&app, &boss, "admin_delete_site", &delete).await.0, 401);
    }
    app.sign_in_fresh(&boss, ADMIN).await;
    let (status, body) = call(
        &app,
        &boss,
        "admin_delete_site",
        &[("id", &id), ("confirm", "shop")],
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["Invalid"][0]["field"], "confirm");
    assert!(store::sites::find(&app.state.db, &id)
        .await
        .unwrap()
        .is_some());
    let (status, body) = call(
        &app,
        &boss,
        "admin_delete_site",
        &[("id", &id), ("confirm", "https://shop.acme.example")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(store::sites::find(&app.state.db, &id)
        .await
        .unwrap()
        .is_none());
    assert!(store::grants::list(&app.state.db, None, None)
        .await
        .unwrap()
        .is_empty());
    let deleted = records_of(&app, kind::SITE_DELETED).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].event.site_url, "https://shop.acme.example");
    assert_eq!(deleted[0].event.actor, ADMIN);
}

async fn teams_and_time_limited_grants_decide_who_enters_with_which_role(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let shop = add_site(&app, "Acme Shop", "Acme", "https://shop.acme.example").await;
    let blog = add_site(&app, "Acme Blog", "Acme", "https://blog.acme.example").await;
    let other = add_site(&app, "Other", "Other Co", "https://other.example").await;

    // A team granted editor on every Acme site; a new hire added before they ever signed in.
    let team = create_team(&app, &boss, "Acme crew", "").await;
    let (status, body) = call(
        &app,
        &boss,
        "admin_create_team",
        &[("name", "Acme crew"), ("description", "")],
    )
    .await;
    assert_eq!(
        (status, &body["Invalid"][0]["field"]),
        (422, &Value::from("name"))
    );
    let (status, body) = call(
        &app,
        &boss,
        "admin_add_members",
        &[
            ("team", &team),
            ("emails", "nina@agency.test, nobody@elsewhere.test"),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["Invalid"][0]["field"]),
        (422, &Value::from("emails")),
        "{body}"
    );
    let (status, _) = call(
        &app,
        &boss,
        "admin_add_members",
        &[("team", &team), ("emails", "nina@agency.test")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &app,
        &boss,
        "admin_grant_team",
        &[
            ("team", &team),
            ("target", "client:Acme"),
            ("site", ""),
            ("role", "editor"),
            ("duration", ""),
            ("reason", ""),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let nina = app.signed_in("nina@agency.test").await;
    assert_eq!(launch_role(&app, &nina, &shop).await, Ok("editor".into()));
    assert_eq!(launch_role(&app, &nina, &blog).await, Ok("editor".into()));
    assert_eq!(launch_role(&app, &nina, &other).await, Err(403));
    // A site added to the client later is open to the team at once.
    let later = add_site(&app, "Acme Store", "Acme", "https://store.acme.example").await;
    assert_eq!(launch_role(&app, &nina, &later).await, Ok("editor".into()));

    // Four hours of administrator for an incident: a reason is required, and it ends by itself.
    let (status, body) = call(
        &app,
        &boss,
        "admin_grant",
        &[
            ("site", &shop),
            ("email", "nina@agency.test"),
            ("role", "administrator"),
            ("duration", "240"),
            ("reason", ""),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["Invalid"][0]["field"]),
        (422, &Value::from("reason")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        &boss,
        "admin_grant",
        &[
            ("site", &shop),
            ("email", "nina@agency.test"),
            ("role", "administrator"),
            ("duration", "240"),
            ("reason", "INC-7 checkout down"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        launch_role(&app, &nina, &shop).await,
        Ok("administrator".into())
    );
    // The site's page says which grant decides, and where each comes from.
    let (_, detail) = call(&app, &boss, "admin_site", &[("id", &shop)]).await;
    let rows: Vec<(String, String, bool)> = detail["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["role"].as_str().unwrap().into(),
                r["from"].as_str().unwrap().into(),
                r["effective"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        rows.contains(&("administrator".into(), "Direct".into(), true)),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("editor".into(), "Team Acme crew".into(), false)),
        "{rows:?}"
    );
    app.clock.advance(4 * 3600 + 1);
    assert_eq!(launch_role(&app, &nina, &shop).await, Ok("editor".into()));
    let grants = records_of(&app, kind::GRANT_SET).await;
    assert_eq!(grants.last().unwrap().event.reason, "INC-7 checkout down");

    // Leaving the team takes its access away at once.
    let (status, _) = call(
        &app,
        &boss,
        "admin_remove_member",
        &[("team", &team), ("email", "nina@agency.test")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(launch_role(&app, &nina, &blog).await, Err(403));
    for k in [
        kind::TEAM_CREATED,
        kind::TEAM_MEMBER_ADDED,
        kind::TEAM_GRANT_SET,
        kind::TEAM_MEMBER_REMOVED,
    ] {
        assert_eq!(records_of(&app, k).await.len(), 1, "{k}");
    }
}

async fn people_invited_promoted_disabled_and_the_last_admin_stays(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let boss_id = store::people::find_by_email(&app.state.db, ADMIN)
        .await
        .unwrap()[0]
        .id
        .clone();
    // The only admin can neither demote nor disable themself.
    let (status, body) = call(
        &app,
        &boss,
        "admin_set_standing",
        &[("id", &boss_id), ("change", "demote")],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    // An invitation as admin: the person is an admin from their first sign-in.
    let (status, body) = call(
        &app,
        &boss,
        "admin_invite",
        &[("email", "Ivy@Agency.test"), ("admin", "on")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &app,
        &boss,
        "admin_invite",
        &[("email", "ivy@elsewhere.test")],
    )
    .await;
    assert_eq!(
        (status, &body["Invalid"][0]["field"]),
        (422, &Value::from("email"))
    );
    let (_, page) = crate::support::people_page(&app, &boss).await;
    assert_eq!(page["invitations"][0]["email"], "ivy@agency.test", "{page}");
    let ivy = app.signed_in("ivy@agency.test").await;
    let ivy_p = store::people::find_by_email(&app.state.db, "ivy@agency.test")
        .await
        .unwrap()
        .remove(0);
    assert!(ivy_p.is_admin);
    assert!(store::people::invitations(&app.state.db)
        .await
        .unwrap()
        .is_empty());
    // Two admins now: one may demote the other, but not the last one left.
    let (status, body) = call(
        &app,
        &ivy,
        "admin_set_standing",
        &[("id", &boss_id), ("change", "demote")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&app, &boss, "admin_teams", &[]).await;
    assert_eq!(status, 403, "a demoted admin is staff at once: {body}");
    let (status, body) = call(
        &app,
        &ivy,
        "admin_set_standing",
        &[("id", &ivy_p.id), ("change", "disable")],
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Disabling someone mid-session: their session ends and their launches stop.
    let site = add_site(&app, "Acme Shop", "Acme", "https://shop.acme.example").await;
    agency_sso::service::access::grant(
        &app.state.db,
        &[],
        "sam@agency.test",
        &site,
        "editor",
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    let sam = app.signed_in("sam@agency.test").await;
    let sam_id = store::people::find_by_email(&app.state.db, "sam@agency.test")
        .await
        .unwrap()[0]
        .id
        .clone();
    assert_eq!(launch_role(&app, &sam, &site).await, Ok("editor".into()));
    let (status, body) = call(
        &app,
        &ivy,
        "admin_set_standing",
        &[("id", &sam_id), ("change", "disable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Signed out at once (the session is gone), so the launch is refused as unauthenticated.
    assert_eq!(launch_role(&app, &sam, &site).await, Err(401));
    assert!(page_text(&app.home(&sam).await).contains("Sign in with"));
    let changed = records_of(&app, kind::PERSON_CHANGED).await;
    let last: Value = serde_json::from_str(&changed.last().unwrap().event.detail).unwrap();
    assert_eq!(
        (
            last["after"]["disabled"].as_bool(),
            last["sessions_ended"].as_u64()
        ),
        (Some(true), Some(1))
    );

    // Sessions: one ended by its handle, from the admin's list.
    let (status, body) = call(
        &app,
        &ivy,
        "admin_set_standing",
        &[("id", &sam_id), ("change", "enable")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let laptop = app.signed_in("sam@agency.test").await;
    let phone = app.signed_in("sam@agency.test").await;
    let (_, list) = call(&app, &ivy, "admin_sessions", &[("q", "sam@")]).await;
    let rows = list["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(!list.to_string().contains(
        &laptop
            .cookie_header()
            .split('=')
            .nth(1)
            .unwrap()
            .to_string()
    ));
    let handle = rows[0]["handle"].as_str().unwrap();
    let (status, body) = call(
        &app,
        &ivy,
        "admin_end_sessions",
        &[("person", &sam_id), ("handle", handle)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let still = [app.home(&laptop).await, app.home(&phone).await]
        .iter()
        .filter(|h| !page_text(h).contains("Sign in with"))
        .count();
    assert_eq!(still, 1, "exactly one of Sam's two sessions ended");
}

/// miniOrange's free plugin checks no audience: a secret shared by two sites
/// lets a token for one open the other. The console, an edit and an import
/// each refuse a secret another site has, by field, and write nothing.
async fn a_miniorange_secret_belongs_to_one_site(backend: Backend) {
    const SECRET: &str = "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEf";
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let shop = |name: &'static str, url: &'static str, secret: &'static str| {
        site_form(&[
            ("name", name),
            ("url", url),
            ("profile", "miniorange"),
            ("signing", "HS256"),
            ("secret", secret),
        ])
    };
    let (status, first) = call(
        &app,
        &boss,
        "admin_save_site",
        &shop("Shop", "https://shop.acme.example", SECRET),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let audit_before = store::audit::count(&app.state.db).await.unwrap();
    // Leading and trailing spaces are not a different secret.
    let padded = format!(" {SECRET} ");
    let again = site_form(&[
        ("name", "Blog"),
        ("url", "https://blog.acme.example"),
        ("profile", "miniorange"),
        ("signing", "HS256"),
        ("secret", padded.as_str()),
    ]);
    let (status, body) = call(&app, &boss, "admin_save_site", &again).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["Invalid"][0]["field"], "secret");
    let message = body["Invalid"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("https://shop.acme.example already signs with this secret"),
        "{message}"
    );
    assert_eq!(store::sites::list(&app.state.db).await.unwrap().len(), 1);
    assert_eq!(
        store::audit::count(&app.state.db).await.unwrap(),
        audit_before
    );
    // With a secret of its own it is added; then an edit to the first's secret is refused.
    let (status, blog) = call(
        &app,
        &boss,
        "admin_save_site",
        &shop(
            "Blog",
            "https://blog.acme.example",
            "ZyXwVuTsRqPoNmLkJiHgFeDcBaZyXwVu",
        ),
    )
    .await;
    assert_eq!(status, 200, "{blog}");
    let blog_id = blog["id"].as_str().unwrap();
    let edit = site_form(&[
        ("id", blog_id),
        ("version", "1"),
        ("name", "Blog"),
        ("url", "https://blog.acme.example"),
        ("profile", "miniorange"),
        ("signing", "HS256"),
        ("secret", SECRET),
        ("enabled", "on"),
    ]);
    let (status, body) = call(&app, &boss, "admin_save_site", &edit).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["Invalid"][0]["field"], "secret");
    let launched = app.state.master_keys.open(
        &store::sites::sealed_secret(&app.state.db, blog_id)
            .await
            .unwrap()
            .unwrap(),
        &agency_sso::service::launch::secret_aad(blog_id),
    );
    assert_eq!(
        launched.unwrap().as_slice(),
        b"ZyXwVuTsRqPoNmLkJiHgFeDcBaZyXwVu"
    );
    // An import: a row with the shop's secret, and two new rows sharing one.
    let csv = format!(
        "name,client,url,profile,signing,secret\n\
         Wiki,Acme,https://wiki.acme.example,miniorange,HS256,{SECRET}\n\
         Docs,Acme,https://docs.acme.example,miniorange,HS256,QqQqQqQqQqQqQqQqQqQqQqQqQqQqQqQq\n\
         Help,Acme,https://help.acme.example,miniorange,HS256,QqQqQqQqQqQqQqQqQqQqQqQqQqQqQqQq\n"
    );
    let csv = csv.as_str();
    let (preview, actions) = import_preview(&app, &boss, csv).await;
    assert_eq!(actions, ["invalid", "create", "invalid"], "{preview}");
    assert!(preview["rows"][0]["notes"]
        .to_string()
        .contains("https://shop.acme.example already signs"));
    assert!(preview["rows"][2]["notes"]
        .to_string()
        .contains("https://docs.acme.example already signs"));
    let (status, body) = import_apply(&app, &boss, csv, &preview).await;
    assert_eq!(status, 200, "{body}");
    let urls: Vec<String> = store::sites::list(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.url)
        .collect();
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert!(urls.contains(&"https://docs.acme.example".to_string()));
}

async fn an_import_sets_the_connector_profile_and_moves_a_twl_site_to_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    add_site(&app, "Acme Shop", "Acme", "https://shop.acme.example").await;
    let csv = "name,client,url,profile\n\
               Acme Shop,Acme,https://shop.acme.example,connector\n\
               Acme Blog,Acme,https://acme.example/blog,connector\n\
               Acme Wiki,Acme,https://wiki.acme.example,conector\n";
    let (preview, actions) = import_preview(&app, &boss, csv).await;
    assert_eq!(actions, ["update", "create", "invalid"]);
    assert!(preview["rows"][2]["notes"]
        .to_string()
        .contains("use twl-sso, connector or miniorange"));
    let (status, body) = import_apply(&app, &boss, csv, &preview).await;
    assert_eq!(status, 200, "{body}");
    for url in ["https://shop.acme.example", "https://acme.example/blog"] {
        let s = store::sites::find_by_url(&app.state.db, url)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.profile.as_str(), "connector");
        // The TWL action is left behind with the profile.
        assert_eq!(
            s.login_template,
            "/wp-login.php?action=agency_sso&token={token}"
        );
    }
}

async fn an_import_previews_every_row_then_applies_in_one_go(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    add_site(&app, "Acme Shop", "Acme", "https://shop.acme.example").await;
    let csv = "name,client,url,roles,enabled\n\
               Acme Shop,Acme Ltd,https://shop.acme.example,,\n\
               Acme Blog,Acme Ltd,https://blog.acme.example,editor author,no\n\
               ,Acme Ltd,not a url,,\n\
               =HYPERLINK(\"x\"),Acme Ltd,https://wiki.acme.example,,\n";
    let (preview, actions) = import_preview(&app, &boss, csv).await;
    assert_eq!(actions, ["update", "create", "invalid", "create"]);
    assert_eq!(preview["rows"][0]["notes"], serde_json::json!(["client"]));
    let why = preview["rows"][2]["notes"].to_string();
    assert!(why.contains("name:") && why.contains("url:"), "{why}");
    // The dry run wrote nothing.
    assert_eq!(store::sites::list(&app.state.db).await.unwrap().len(), 1);
    // A change made after the preview means the admin must look again.
    let shop = store::sites::find_by_url(&app.state.db, "https://shop.acme.example")
        .await
        .unwrap()
        .unwrap();
    agency_sso::service::sites::set_site_enabled(
        &app.state.db,
        &shop.id,
        false,
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    let (status, body) = import_apply(&app, &boss, csv, &preview).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(store::sites::list(&app.state.db).await.unwrap().len(), 1);
    let (preview, _) = import_preview(&app, &boss, csv).await;
    let (status, body) = import_apply(&app, &boss, csv, &preview).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "Imported: 2 site(s) added, 1 updated, 0 unchanged, 1 invalid row(s) skipped."
    );
    let sites = store::sites::list(&app.state.db).await.unwrap();
    assert_eq!(sites.len(), 3);
    assert!(sites.iter().all(|s| s.client == "Acme Ltd"));
    let blog = sites
        .iter()
        .find(|s| s.url == "https://blog.acme.example")
        .unwrap();
    assert!(!blog.enabled);
    assert_eq!(blog.roles, ["editor", "author"]);
    // Bulk: all or nothing. The blog allows only editor and author.
    let ids = sites
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let (status, body) = call(
        &app,
        &boss,
        "admin_bulk_grant",
        &[
            ("sites", &ids),
            ("emails", "sam@agency.test, sasha@agency.test"),
            ("role", "administrator"),
            ("duration", ""),
            ("reason", ""),
        ],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["Refused"].as_str().unwrap().contains("Acme Blog"),
        "{body}"
    );
    assert!(store::grants::list(&app.state.db, None, None)
        .await
        .unwrap()
        .is_empty());
    let (status, body) = call(
        &app,
        &boss,
        "admin_bulk_grant",
        &[
            ("sites", &ids),
            ("emails", "sam@agency.test, sasha@agency.test"),
            ("role", "author"),
            ("duration", ""),
            ("reason", ""),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        store::grants::list(&app.state.db, None, None)
            .await
            .unwrap()
            .len(),
        6
    );
    let (status, body) = call(
        &app,
        &boss,
        "admin_bulk_revoke",
        &[("sites", &ids), ("emails", "sasha@agency.test")],
    )
    .await;
    assert_eq!(
        (status, body),
        (200, Value::from("3 direct grant(s) revoked on 3 site(s)."))
    );
    let left = store::grants::list(&app.state.db, None, None)
        .await
        .unwrap();
    assert!(left.len() == 3 && left.iter().all(|g| g.email == "sam@agency.test"));
    let imported = records_of(&app, kind::SITES_IMPORTED).await;
    let d: Value = serde_json::from_str(&imported[0].event.detail).unwrap();
    assert_eq!(d["skipped"][0]["line"], 4);
    // The export neutralises the formula a cell held and never carries secrets.
    let csv_out = boss
        .text(app.at("/admin/sites/export?client=Acme%20Ltd"))
        .await;
    assert_eq!(csv_out.lines().count(), 4, "{csv_out}");
    assert!(csv_out.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv_out}");
    let sam = app.signed_in("sam@agency.test").await;
    let res = sam.get(app.at("/admin/sites/export")).send().await.unwrap();
    assert_eq!(res.status(), 403);
}

/// What hands out control asks for a fresh sign-in too: a member for a
/// team that holds administrator (or a site's own highest role), a site's
/// URL, profile or secret, a site's highest custom role, and every key
/// action. The same changes without that weight do not.
async fn what_hands_out_control_asks_for_a_fresh_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let shop = add_site(&app, "Acme Shop", "Acme", "https://shop.acme.example").await;
    agency_sso::service::sites::set_site_roles(
        &app.state.db,
        &shop,
        &["shop_manager".to_string(), "customer".to_string()],
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    let admins = create_team(&app, &boss, "Acme admins", "").await;
    let writers = create_team(&app, &boss, "Acme writers", "").await;
    for (team, role) in [(&admins, "shop_manager"), (&writers, "customer")] {
        let (status, body) = call(
            &app,
            &boss,
            "admin_grant_team",
            &[
                ("team", team.as_str()),
                ("target", "site:"),
                ("site", shop.as_str()),
                ("role", role),
                ("duration", ""),
                ("reason", ""),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // Sixteen minutes on, the fresh sign-in no longer counts.
    app.clock.advance(16 * 60);
    let reauth = |(status, body): (u16, Value)| {
        assert_eq!(status, 401, "{body}");
        assert!(body["Reauth"]["url"].is_string(), "{body}");
    };
    let admins_member = [("team", admins.as_str()), ("emails", "nina@agency.test")];
    reauth(call(&app, &boss, "admin_add_members", &admins_member).await);
    let writers_member = [("team", writers.as_str()), ("emails", "nina@agency.test")];
    assert_eq!(
        call(&app, &boss, "admin_add_members", &writers_member)
            .await
            .0,
        200
    );
    // The shop's own highest role, granted directly.
    let grant = |role: &'static str| {
        vec![
            ("site", shop.clone()),
            ("email", "omar@agency.test".to_string()),
            ("role", role.to_string()),
            ("duration", String::new()),
            ("reason", String::new()),
        ]
    };
    let top = grant("shop_manager");
    let top: Vec<(&str, &str)> = top.iter().map(|(k, v)| (*k, v.as_str())).collect();
    reauth(call(&app, &boss, "admin_grant", &top).await);
    let low = grant("customer");
    let low: Vec<(&str, &str)> = low.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(call(&app, &boss, "admin_grant", &low).await.0, 200);
    // A site's URL is where tokens go; its name is not.
    let edit = |name: &'static str, url: &'static str| {
        site_form(&[
            ("id", shop.as_str()),
            ("version", "0"),
            ("name", name),
            ("url", url),
            ("roles", "shop_manager customer"),
        ])
    };
    reauth(
        call(
            &app,
            &boss,
            "admin_save_site",
            &edit("Acme Shop", "https://evil.example"),
        )
        .await,
    );
    let (status, body) = call(
        &app,
        &boss,
        "admin_save_site",
        &edit("Acme Store", "https://shop.acme.example"),
    )
    .await;
    assert_ne!(status, 401, "{body}");
    // Every key action, the gentle one too.
    reauth(call(&app, &boss, "admin_rotate_key", &[("now_or_soon", "soon")]).await);
    // Signed in afresh, all of it goes through.
    app.sign_in_fresh(&boss, ADMIN).await;
    assert_eq!(
        call(&app, &boss, "admin_add_members", &admins_member)
            .await
            .0,
        200
    );
    assert_eq!(call(&app, &boss, "admin_grant", &top).await.0, 200);
}

on_both_databases!(
    what_hands_out_control_asks_for_a_fresh_sign_in,
    a_miniorange_secret_belongs_to_one_site,
    every_admin_function_refuses_staff_with_403_and_a_record,
    site_forms_answer_by_field_and_sensitive_actions_need_a_recent_sign_in,
    teams_and_time_limited_grants_decide_who_enters_with_which_role,
    people_invited_promoted_disabled_and_the_last_admin_stays,
    an_import_previews_every_row_then_applies_in_one_go,
    an_import_sets_the_connector_profile_and_moves_a_twl_site_to_it,
);

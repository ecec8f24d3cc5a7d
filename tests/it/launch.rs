//! The launch as staff use it: sign in, POST /launch, follow the 303 to the
//! site with a token that the site's own verifier (PyJWT) accepts; every
//! refusal named, shown and recorded; no token without its record.

use reqwest::header::LOCATION;
use serde_json::{json, Value};
use url::Url;

use agency_sso::domain::audit::Actor;
use agency_sso::domain::sites::SiteInput;
use agency_sso::store;

use crate::idp::Signing;
use crate::on_both_databases;
use crate::support::{
    add_site, connector_php, miniorange_php, page_text, pyjwt, run_err, run_ok, run_verifier,
    Backend, Browser, Options, TestApp,
};

const BLOG: &str = "https://client-one.example/blog";
const SHOP: &str = "https://shop.client-two.example";
const SHOP_SECRET: &str = "miniorange-client-secret-0123456789abcdef";

fn site(name: &str, url: &str) -> SiteInput {
    SiteInput {
        name: name.into(),
        client: "Client One".into(),
        url: url.into(),
        ..SiteInput::default()
    }
}

async fn grant(app: &TestApp, email: &str, site: &str, role: &str) {
    let allowed = ["agency.test".to_string()];
    agency_sso::service::access::grant(
        &app.state.db,
        &allowed,
        email,
        site,
        role,
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
}

/// The blog (twl-sso) and the shop (miniOrange, HS256), Sam an editor on the
/// blog and shop manager on the shop, and a site Sam has no grant on.
async fn agency(app: &TestApp) -> (String, String, String) {
    let blog = add_site(app, site("Client One Blog", BLOG)).await;
    let mut shop = site("Client Two Shop", SHOP);
    shop.profile = "miniorange".into();
    shop.secret = Some(SHOP_SECRET.into());
    shop.roles = vec!["administrator".into(), "shop_manager".into()];
    let shop = add_site(app, shop).await;
    let locked = add_site(app, site("Locked", "https://locked.example")).await;
    grant(app, "sam@agency.test", &blog, "editor").await;
    grant(app, "Sam@Agency.test", &shop, "shop_manager").await;
    grant(app, "boss@agency.test", &locked, "administrator").await;
    (blog, shop, locked)
}

async fn launch(app: &TestApp, browser: &Browser, site: &str, path: &str) -> reqwest::Response {
    browser
        .post(app.at("/launch"))
        .header("origin", &app.url)
        .header("user-agent", "launch-test/1.0")
        .form(&[("site", site), ("path", path)])
        .send()
        .await
        .unwrap()
}

/// The token in a launch's redirect, and the redirect without it.
fn token_in(res: &reqwest::Response, param: &str) -> (String, Url) {
    assert_eq!(res.status(), 303, "a launch answers 303");
    let location = Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    let token = location
        .query_pairs()
        .find(|(k, _)| k == param)
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no {param} in {location}"));
    (token, location)
}

fn verify(app: &TestApp, audience: &str, secret: Option<&str>, tokens: &[&str]) -> Vec<Value> {
    let mut input = json!({
        "jwks_uri": app.at("/.well-known/jwks.json"),
        "issuer": app.url,
        "audience": audience,
        "tokens": tokens,
    });
    if let Some(s) = secret {
        input["secret"] = json!(s);
    }
    tokio::task::block_in_place(|| run_verifier(pyjwt(), &input.to_string(), "PyJWT"))
}

async fn refused_page(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 403);
    assert!(
        res.headers().get(LOCATION).is_none(),
        "a refusal never redirects"
    );
    page_text(&res.text().await.unwrap())
}

async fn latest(app: &TestApp) -> store::launches::LaunchRecord {
    store::launches::latest(&app.state.db, None, 1)
        .await
        .unwrap()
        .remove(0)
}

async fn a_launch_lands_with_a_token_the_site_verifies(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (blog, _, _) = agency(&app).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;

    let res = launch(&app, &sam, &blog, "/wp-admin/post.php?post=7&action=edit").await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (token, location) = token_in(&res, "token");
    assert_eq!(
        format!(
            "{}{}",
            location.origin().ascii_serialization(),
            location.path()
        ),
        "https://client-one.example/blog/wp-login.php"
    );
    let q: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(q[0], ("action".into(), "twl_sso".into()));
    assert_eq!(
        q[2],
        (
            "redirect_to".into(),
            format!("{BLOG}/wp-admin/post.php?post=7&action=edit")
        )
    );

    let got = verify(&app, BLOG, None, &[&token]);
    assert_eq!(got[0]["ok"], true, "{}", got[0]);
    let c = &got[0]["claims"];
    assert_eq!(c["aud"], BLOG);
    assert_eq!(c["iss"], app.url);
    assert_eq!(c["sub"], "sam@agency.test");
    assert_eq!(c["email"], "sam@agency.test");
    assert_eq!(c["wp_role"], "editor");
    assert_eq!(c["name"], "Test Person");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
    assert_eq!(got[0]["header"]["typ"], "JWT");
    let kid = app.state.keys.signer().unwrap().kid().to_string();
    assert_eq!(got[0]["kid"], kid.as_str());
    // The token does not verify for another site.
    assert_eq!(
        verify(&app, "https://client-one.example", None, &[&token])[0]["ok"],
        false
    );

    // The record names the jti and the key, never the token.
    let r = latest(&app).await;
    assert_eq!(
        (
            r.outcome.as_str(),
            r.email.as_str(),
            r.site_url.as_str(),
            r.role.as_deref()
        ),
        ("launched", "sam@agency.test", BLOG, Some("editor"))
    );
    assert_eq!(r.jti.as_deref(), c["jti"].as_str());
    assert_eq!(r.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(
        (r.ip.as_str(), r.user_agent.as_str()),
        ("127.0.0.1", "launch-test/1.0")
    );
    assert_eq!(
        r.deep_link.as_deref(),
        Some("/wp-admin/post.php?post=7&action=edit")
    );
    assert!(!r.request_id.is_empty());
    assert!(!format!("{r:?}").contains(&token));
}

async fn a_miniorange_site_gets_hs256_with_its_own_secret(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, shop, _) = agency(&app).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let res = launch(&app, &sam, &shop, "").await;
    let (token, location) = token_in(&res, "mo_jwt_token");
    assert_eq!(location.path(), "/");
    assert_eq!(location.query_pairs().count(), 1);

    let got = verify(&app, SHOP, Some(SHOP_SECRET), &[&token]);
    assert_eq!(got[0]["ok"], true, "{}", got[0]);
    assert_eq!(got[0]["header"]["alg"], "HS256");
    assert_eq!(got[0]["claims"]["username"], "sam@agency.test");
    assert_eq!(got[0]["claims"]["wp_role"], "shop_manager");
    // Not with another secret, and not as RS256 through the key set.
    assert_eq!(
        verify(
            &app,
            SHOP,
            Some("another-secret-0123456789abcdef-xyz"),
            &[&token]
        )[0]["ok"],
        false
    );
    assert_eq!(verify(&app, SHOP, None, &[&token])[0]["ok"], false);
    // The secret is sealed at rest.
    let sealed = store::sites::sealed_secret(&app.state.db, &shop)
        .await
        .unwrap()
        .unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains(SHOP_SECRET));
    assert_eq!(latest(&app).await.alg.as_deref(), Some("HS256"));
}

/// The tokens as miniOrange's free plugin checks them, in PHP.
fn miniorange_reads(secret: &str, tokens: &[String]) -> Vec<Value> {
    let input = json!({ "secret": secret, "username_claim": "username", "tokens": tokens });
    tokio::task::block_in_place(|| run_verifier(miniorange_php(), &input.to_string(), "PHP"))
}

/// An HS256 token over a payload written as given, as another signer might.
fn hs256_over(secret: &str, payload: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let text = format!(
        "{}.{}",
        b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(payload)
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, text.as_bytes());
    format!("{text}.{}", b64.encode(tag.as_ref()))
}

/// The connector plugin's verifier (PHP) over `tokens`, for `audience`.
fn connector_reads(app: &TestApp, audience: &str, typ: &str, tokens: &[String]) -> Vec<Value> {
    let input = json!({
        "jwks_uri": app.at("/.well-known/jwks.json"),
        "issuer": app.url,
        "audience": audience,
        "typ": typ,
        "tokens": tokens,
    });
    tokio::task::block_in_place(|| run_verifier(connector_php(), &input.to_string(), "PHP"))
}

async fn a_connector_site_gets_the_twl_token_at_its_own_action(backend: Backend) {
    const SITE: &str = "https://client-three.example/wp";
    let app = TestApp::start(backend).await;
    let mut input = site("Client Three", SITE);
    input.profile = "connector".into();
    let id = add_site(&app, input).await;
    grant(&app, "sam@agency.test", &id, "author").await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let sam_id = store::people::find_by_email(&app.state.db, "sam@agency.test")
        .await
        .unwrap()
        .remove(0)
        .id;

    let mut tokens = Vec::new();
    for _ in 0..5 {
        let res = launch(&app, &sam, &id, "/wp-admin/edit.php").await;
        let (token, location) = token_in(&res, "token");
        assert_eq!(location.path(), "/wp/wp-login.php");
        let query: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        assert_eq!(query[0], ("action".into(), "agency_sso".into()));
        assert!(query
            .iter()
            .any(|(k, v)| k == "redirect_to"
                && v == "https://client-three.example/wp/wp-admin/edit.php"));
        tokens.push(token);
    }
    // The plugin's own checks take every one, with the twl-sso claims but
    // for `sub`: the person's stable subject, not the address.
    for got in connector_reads(&app, SITE, "JWT", &tokens) {
        assert_eq!(got["ok"], true, "{got}");
        let c = &got["claims"];
        assert_eq!(
            (c["aud"].as_str(), c["iss"].as_str()),
            (Some(SITE), Some(app.url.as_str()))
        );
        assert_eq!(
            (c["sub"].as_str(), c["email"].as_str()),
            (Some(sam_id.as_str()), Some("sam@agency.test"))
        );
        assert_eq!(c["wp_role"], "author");
        assert_eq!(c["nbf"], c["iat"]);
        assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() <= 300);
    }
    // And refuse them for another site, or as a back-channel message.
    for got in connector_reads(&app, "https://client-three.example", "JWT", &tokens[..1]) {
        assert_eq!(got["code"], "wrong_audience", "{got}");
    }
    for got in connector_reads(&app, SITE, "logout+jwt", &tokens[..1]) {
        assert_eq!(got["code"], "wrong_type", "{got}");
    }
    // A standard verifier agrees (the contract is one token, several consumers).
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    for got in verify(&app, SITE, None, &t) {
        assert_eq!(got["ok"], true, "{got}");
    }
}

/// The claims of a launch's token, as PyJWT reads them.
async fn claims_at(app: &TestApp, browser: &Browser, site: &str, audience: &str) -> Value {
    let (token, _) = token_in(&launch(app, browser, site, "").await, "token");
    let got = verify(app, audience, None, &[&token]).remove(0);
    assert_eq!(got["ok"], true, "{got}");
    got["claims"].clone()
}

/// One person, one subject: a connector token's `sub` is the person's
/// stable, opaque id, the same after their address changes at the
/// provider (then `email` is the new one); a twl-sso site still gets the
/// address in `sub`, as its plugin reads it.
async fn a_connector_subject_stays_when_the_address_changes(backend: Backend) {
    const SITE: &str = "https://client-three.example/wp";
    const TWL: &str = "https://client-four.example";
    let app = TestApp::start(backend).await;
    let mut input = site("Client Three", SITE);
    input.profile = "connector".into();
    let connector = add_site(&app, input).await;
    let twl = add_site(&app, site("Client Four", TWL)).await;
    for email in ["sam@agency.test", "sam.new@agency.test"] {
        grant(&app, email, &connector, "author").await;
        grant(&app, email, &twl, "author").await;
    }
    let sam = app.browser();
    app.sign_in_as(&sam, "sam@agency.test", "sam-at-the-provider")
        .await;
    let id = store::people::find_by_email(&app.state.db, "sam@agency.test")
        .await
        .unwrap()
        .remove(0)
        .id;
    let before = claims_at(&app, &sam, &connector, SITE).await;
    assert_eq!(
        (before["sub"].as_str(), before["email"].as_str()),
        (Some(id.as_str()), Some("sam@agency.test"))
    );
    assert!(!id.contains('@') && !id.contains("sam"), "{id}");
    let old_twl = claims_at(&app, &sam, &twl, TWL).await;
    assert_eq!(old_twl["sub"], "sam@agency.test");

    // The same account at the provider, a new address.
    let renamed = app.browser();
    app.sign_in_as(&renamed, "Sam.New@agency.test", "sam-at-the-provider")
        .await;
    let after = claims_at(&app, &renamed, &connector, SITE).await;
    assert_eq!(
        (after["sub"].as_str(), after["email"].as_str()),
        (Some(id.as_str()), Some("sam.new@agency.test"))
    );
    let new_twl = claims_at(&app, &renamed, &twl, TWL).await;
    assert_eq!(new_twl["sub"], "sam.new@agency.test");
}

async fn the_miniorange_plugin_takes_every_launch(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, shop, _) = agency(&app).await;
    // Names whose UTF-8, or whose `>`, `?` and `~`, put `-` or `_` into
    // base64url at some alignments; a dozen launches each move the
    // alignment (the jti changes).
    for (email, name, given, family) in [
        ("sam@agency.test", "Sam Staff", "Sam", "Staff"),
        ("zoe+ops@agency.test", "Zoë Ødegård", "Zoë", "Ødegård"),
        ("odd-one@agency.test", "Odd >?~ One", ">?~", "~~?>>?~"),
    ] {
        grant(&app, email, &shop, "shop_manager").await;
        let browser = app.browser();
        let attempt = app.begin(&browser).await;
        let mut claims = app.idp.claims(email, &attempt.nonce);
        claims["name"] = json!(name);
        claims["given_name"] = json!(given);
        claims["family_name"] = json!(family);
        let res = app.finish(&browser, &attempt, claims, Signing::Rs256).await;
        assert_eq!(res.status(), 303, "{email} signs in");
        let mut tokens = Vec::new();
        for _ in 0..12 {
            tokens.push(token_in(&launch(&app, &browser, &shop, "").await, "mo_jwt_token").0);
        }
        for (got, token) in miniorange_reads(SHOP_SECRET, &tokens).iter().zip(&tokens) {
            assert_eq!(got["ok"], true, "{email}: {got} for {token}");
            assert_eq!(got["login"], email);
            assert_eq!(got["payload"]["name"], name);
            assert_eq!(got["payload"]["family_name"], family);
            assert_eq!(got["payload"].get("nbf"), None);
        }
    }

    // The same checks refuse what the plugin refuses: a token with nbf
    // (as the dashboard used to send), one whose payload's base64url has a
    // `-` or `_`, one past its exp, one with another secret.
    let now = app.clock.now_for_tests();
    let with_nbf = hs256_over(
        SHOP_SECRET,
        &format!(
            r#"{{"username":"sam@agency.test","exp":{},"nbf":{now}}}"#,
            now + 60
        ),
    );
    let dashed = (0..3)
        .map(|pad| {
            let payload = format!(
                r#"{{"username":"sam@agency.test","name":"{}a>b?c~","exp":{}}}"#,
                "x".repeat(pad),
                now + 60
            );
            hs256_over(SHOP_SECRET, &payload)
        })
        .find(|t| t.split('.').nth(1).unwrap().contains(['-', '_']))
        .expect("one alignment puts a - or _ in the payload's text");
    let expired = hs256_over(
        SHOP_SECRET,
        &format!(r#"{{"username":"sam@agency.test","exp":{}}}"#, now - 5),
    );
    let good = format!(r#"{{"username":"sam@agency.test","exp":{}}}"#, now + 60);
    let other_secret = hs256_over("another-secret-another-secret-xy", &good);
    let got = miniorange_reads(
        SHOP_SECRET,
        &[
            with_nbf,
            dashed,
            expired,
            other_secret,
            hs256_over(SHOP_SECRET, &good),
        ],
    );
    let errors: Vec<&Value> = got.iter().map(|g| &g["error"]).collect();
    assert_eq!(
        errors,
        [
            &json!("JWT Signature is invalid"),
            &json!("JWT Signature is invalid"),
            &json!("JWT Signature is invalid"),
            &json!("JWT Signature is invalid"),
            &Value::Null
        ]
    );
}

async fn the_home_page_lists_exactly_the_sites_one_may_enter(backend: Backend) {
    let app = TestApp::start(backend).await;
    agency(&app).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let text = page_text(&app.home(&sam).await);
    assert!(
        text.contains("Client One Blog Client One https://client-one.example/blog"),
        "{text}"
    );
    assert!(text.contains("Client Two Shop"), "{text}");
    assert!(
        text.contains("shop_manager") && text.contains("editor"),
        "{text}"
    );
    assert!(!text.contains("Locked"), "{text}");
    assert!(text.contains("2 sites"), "{text}");

    let nobody = app.browser();
    app.sign_in(&nobody, "nobody@agency.test").await;
    let text = page_text(&app.home(&nobody).await);
    assert!(
        text.contains("No client sites are open to you yet"),
        "{text}"
    );
}

async fn every_refusal_is_named_shown_and_recorded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (blog, _, locked) = agency(&app).await;
    let db = &app.state.db;
    let now = app.clock.now_for_tests();
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;

    // A site without a grant (a forged POST: it is not on Sam's page).
    let text = refused_page(launch(&app, &sam, &locked, "").await).await;
    assert!(text.contains("You have no access to this site"), "{text}");
    assert!(text.contains("no_grant"), "{text}");
    let r = latest(&app).await;
    assert_eq!(
        (r.outcome.as_str(), r.reason.as_deref(), r.site_url.as_str()),
        ("refused", Some("no_grant"), "https://locked.example")
    );
    assert_eq!(r.jti, None);

    // A deep link to another host, in every disguise.
    for bad in [
        "https://evil.example/",
        "//evil.example/wp-admin",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let text = refused_page(launch(&app, &sam, &blog, bad).await).await;
        assert!(text.contains("must be a path on the site"), "{bad}: {text}");
        assert_eq!(latest(&app).await.reason.as_deref(), Some("bad_deep_link"));
    }

    // An unknown site.
    let text = refused_page(launch(&app, &sam, "no-such-site", "").await).await;
    assert!(text.contains("There is no such site"), "{text}");

    // The role is no longer allowed on the site.
    let admin = Actor::command_line();
    agency_sso::service::sites::set_site_roles(
        db,
        &blog,
        &["administrator".to_string(), "subscriber".to_string()],
        &admin,
        now,
    )
    .await
    .unwrap();
    let text = refused_page(launch(&app, &sam, &blog, "").await).await;
    assert!(
        text.contains("role \"editor\" may no longer be granted"),
        "{text}"
    );
    assert_eq!(
        latest(&app).await.reason.as_deref(),
        Some("role_not_allowed")
    );
    agency_sso::service::sites::set_site_roles(db, &blog, &["editor".to_string()], &admin, now)
        .await
        .unwrap();
    assert_eq!(launch(&app, &sam, &blog, "").await.status(), 303);

    // The site disabled.
    agency_sso::service::sites::set_site_enabled(db, &blog, false, &admin, now)
        .await
        .unwrap();
    let text = refused_page(launch(&app, &sam, &blog, "").await).await;
    assert!(text.contains("This site is disabled"), "{text}");
    assert_eq!(latest(&app).await.reason.as_deref(), Some("site_disabled"));
    agency_sso::service::sites::set_site_enabled(db, &blog, true, &admin, now)
        .await
        .unwrap();

    // The grant revoked.
    agency_sso::service::access::revoke(db, "sam@agency.test", BLOG, &admin, now)
        .await
        .unwrap();
    let text = refused_page(launch(&app, &sam, &blog, "").await).await;
    assert!(text.contains("You have no access to this site"), "{text}");
    assert!(!page_text(&app.home(&sam).await).contains("Client One Blog"));

    // The person disabled: their session is gone, nothing is launched.
    agency_sso::service::people::set_disabled(db, "sam@agency.test", true, &admin, now)
        .await
        .unwrap();
    let res = launch(&app, &sam, &locked, "").await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(LOCATION).is_none());
    assert!(page_text(&res.text().await.unwrap()).contains("Your session has ended"));

    // A launch from another site's page never reaches the launch.
    let res = sam
        .post(app.at("/launch"))
        .header("origin", "https://evil.example")
        .form(&[("site", blog.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get(LOCATION).is_none());
}

/// A trigger that makes every write to the launch record fail, as a full
/// disk or a lost database would.
async fn break_the_launch_record(app: &TestApp, backend: Backend) {
    let pool = &app.state.db.pool;
    match backend {
        Backend::Sqlite => {
            sqlx::query("CREATE TRIGGER launches_broken BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'simulated failure'); END")
                .execute(pool)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query("CREATE FUNCTION launches_broken() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'simulated failure'; END $$ LANGUAGE plpgsql")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("CREATE TRIGGER launches_broken BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION launches_broken()")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn no_token_leaves_without_its_record(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (blog, other, _) = agency(&app).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;

    break_the_launch_record(&app, backend).await;
    let res = launch(&app, &sam, &blog, "").await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().get(LOCATION).is_none());
    let html = res.text().await.unwrap();
    assert!(!html.contains("eyJ"), "no token in the error page");
    assert!(page_text(&html).contains("could not record this launch, so no sign-in was sent"));
    assert_eq!(store::launches::count(&app.state.db).await.unwrap(), (0, 0));
    // Nothing of the failed transaction stays: not the "last launched"
    // mark written before the record failed, not the transaction itself
    // (the writer's next launch, once records can be written, goes through).
    let marked = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM site_prefs WHERE last_launched_at IS NOT NULL",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
    };
    assert_eq!(marked().await, 0, "no mark without its record");
    let repair = match backend {
        Backend::Sqlite => "DROP TRIGGER launches_broken",
        Backend::Postgres => "DROP TRIGGER launches_broken ON audit_log",
    };
    sqlx::query(repair)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let res = launch(&app, &sam, &blog, "").await;
    token_in(&res, "token");
    assert_eq!(store::launches::count(&app.state.db).await.unwrap(), (1, 1));
    assert_eq!(marked().await, 1);

    // The whole database gone: the same clear answer, no redirect. (The
    // launch recorder keeps a connection of its own, which closing the
    // service's pool leaves open: a site whose facts are not kept from an
    // earlier launch is launched, so that its facts must be read.)
    app.state.db.pool.close().await;
    let res = launch(&app, &sam, &other, "").await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().get(LOCATION).is_none());
    assert!(page_text(&res.text().await.unwrap()).contains("no sign-in was sent"));
}

/// A launch keeps the facts it was decided on for the next click on the
/// same site from the same session, which then reads nothing before its
/// record; any change to what they rest on, made by this instance or
/// straight in the database (another instance, the command line), is seen
/// by the next launch, and a session ended elsewhere launches nothing.
async fn kept_launch_facts_never_outlive_a_change(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (blog, _, _) = agency(&app).await;
    let db = &app.state.db;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let role_of = |res: reqwest::Response| {
        let (token, _) = token_in(&res, "token");
        verify(&app, BLOG, None, &[&token])[0]["claims"]["wp_role"].clone()
    };
    assert_eq!(role_of(launch(&app, &sam, &blog, "").await), "editor");
    assert_eq!(role_of(launch(&app, &sam, &blog, "").await), "editor");

    // A new role through the service, then one written straight in the
    // database: each is the next launch's.
    grant(&app, "sam@agency.test", &blog, "administrator").await;
    assert_eq!(
        role_of(launch(&app, &sam, &blog, "").await),
        "administrator"
    );
    sqlx::query(
        "UPDATE grants SET role = 'author' WHERE email = 'sam@agency.test' AND site_id = $1",
    )
    .bind(&blog)
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(role_of(launch(&app, &sam, &blog, "").await), "author");

    // The site renamed in the database: the token's audience follows.
    sqlx::query("UPDATE sites SET url = 'https://client-one.example/moved', version = version + 1 WHERE id = $1")
        .bind(&blog)
        .execute(&db.pool)
        .await
        .unwrap();
    let (_, location) = token_in(&launch(&app, &sam, &blog, "").await, "token");
    assert!(
        location
            .as_str()
            .starts_with("https://client-one.example/moved/"),
        "{location}"
    );

    // Revoked in the database: refused, and said so.
    sqlx::query("DELETE FROM grants WHERE email = 'sam@agency.test' AND site_id = $1")
        .bind(&blog)
        .execute(&db.pool)
        .await
        .unwrap();
    let text = refused_page(launch(&app, &sam, &blog, "").await).await;
    assert!(text.contains("You have no access to this site"), "{text}");
    grant(&app, "sam@agency.test", &blog, "editor").await;
    let (launched, _) = store::launches::count(db).await.unwrap();

    // Kept, then Sam's sessions ended (as another instance would): the next
    // launch sends no token and signs the browser out.
    assert_eq!(launch(&app, &sam, &blog, "").await.status(), 303);
    let sam_id = store::people::find_by_email(db, "sam@agency.test")
        .await
        .unwrap()
        .remove(0)
        .id;
    agency_sso::service::people::end_sessions(
        db,
        &sam_id,
        None,
        &Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
    let res = launch(&app, &sam, &blog, "").await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(LOCATION).is_none(), "no token");
    assert_eq!(
        store::launches::count(db).await.unwrap().0,
        launched + 1,
        "only the launch before the end"
    );

    // Kept facts are what a repeat launch goes on: with the service's
    // pool closed (nothing can be read), a site Sam launched is launched
    // again and recorded by the recorder's own connection; a site he has
    // not launched cannot be read, and sends nothing.
    app.sign_in(&sam, "sam@agency.test").await;
    assert_eq!(launch(&app, &sam, &blog, "").await.status(), 303);
    app.state.db.pool.close().await;
    let (token, _) = token_in(&launch(&app, &sam, &blog, "").await, "token");
    let jti = verify(&app, "https://client-one.example/moved", None, &[&token])[0]["claims"]["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let kind = match backend {
        Backend::Sqlite => agency_sso::config::DbKind::Sqlite,
        Backend::Postgres => agency_sso::config::DbKind::Postgres,
    };
    let reopened = store::Db::connect(&app.database_url, kind).await.unwrap();
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE jti = $1")
        .bind(&jti)
        .fetch_one(&reopened.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 1, "its record is committed");
    let other = launch(&app, &sam, "no-such-site", "").await;
    assert_eq!(other.status(), 503);
    assert!(other.headers().get(LOCATION).is_none());
}

/// Role changes racing launches from two browsers (50 launches, under the
/// per-person limit; a change every 25 ms, so that a launch decided on
/// facts that changed is decided again, not given up): none fails, and
/// the audit chain holds them in one order in which every launch carries
/// the role the last change before it set.
async fn launches_racing_role_changes_keep_one_order(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (blog, _, _) = agency(&app).await;
    let browsers = [app.browser(), app.browser()];
    for b in &browsers {
        app.sign_in(b, "sam@agency.test").await;
    }
    let changes = async {
        for i in 0..20 {
            let role = ["administrator", "author"][i % 2];
            grant(&app, "sam@agency.test", &blog, role).await;
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    };
    let (_, first, second) = tokio::join!(
        changes,
        clicks(&app, &browsers[0], &blog, 25),
        clicks(&app, &browsers[1], &blog, 25)
    );
    assert!(
        first.iter().chain(&second).all(|&s| s == 303),
        "{first:?} {second:?}"
    );
    let chain: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, role FROM audit_log WHERE site_id = $1 AND kind IN ('grant_set', 'launch') \
         AND subject = 'sam@agency.test' ORDER BY seq",
    )
    .bind(&blog)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    let mut role = String::new();
    let (mut launches, mut set) = (0, 0);
    for (kind, r) in chain {
        if kind == "grant_set" {
            role = r;
            set += 1;
        } else {
            assert_eq!(r, role, "launch #{launches} after {set} role changes");
            launches += 1;
        }
    }
    assert_eq!((launches, set), (50, 21));
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// `n` launches of a site, 10 ms apart: their statuses.
async fn clicks(app: &TestApp, b: &Browser, site: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        statuses.push(launch(app, b, site, "").await.status().as_u16());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    statuses
}

async fn ten_thousand_launches_ten_thousand_jtis(backend: Backend) {
    let app = std::sync::Arc::new(
        TestApp::start_with(Options::new(backend).without_launch_limits()).await,
    );
    let (blog, _, _) = agency(&app).await;
    let sam = std::sync::Arc::new(app.browser());
    app.sign_in(&sam, "sam@agency.test").await;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, sam, blog) = (app.clone(), sam.clone(), blog.clone());
        workers.spawn(async move {
            let mut jtis = Vec::with_capacity(1250);
            for _ in 0..1250 {
                let res = launch(&app, &sam, &blog, "").await;
                let (token, _) = token_in(&res, "token");
                let claims = token.split('.').nth(1).unwrap().to_string();
                jtis.push(claims);
            }
            jtis
        });
    }
    let mut jtis = std::collections::HashSet::new();
    while let Some(batch) = workers.join_next().await {
        for payload in batch.unwrap() {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            let c: Value = serde_json::from_slice(&bytes).unwrap();
            jtis.insert(c["jti"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(jtis.len(), 10_000);
    assert_eq!(
        store::launches::count(&app.state.db).await.unwrap(),
        (10_000, 10_000)
    );
}

async fn sites_and_grants_from_the_command_line(backend: Backend) {
    let app = TestApp::start(backend).await;
    let out = run_ok(app.command().args([
        "sites",
        "add",
        "--name",
        "Acme",
        "--client",
        "Acme Ltd",
        "--url",
        "https://Acme.example/",
    ]));
    assert!(
        out.contains("added site https://acme.example (twl-sso)"),
        "{out}"
    );
    let err = run_err(app.command().args([
        "sites",
        "add",
        "--name",
        "Acme 2",
        "--client",
        "Acme Ltd",
        "--url",
        "https://acme.example",
    ]));
    assert!(
        err.contains("a site with the URL https://acme.example already exists"),
        "{err}"
    );
    let err = run_err(app.command().args([
        "sites",
        "add",
        "--name",
        "Plain",
        "--client",
        "X",
        "--url",
        "http://plain.example",
        "--roles",
        "editor,Bad Role",
    ]));
    assert!(err.contains("url: the site URL must use https"), "{err}");
    assert!(
        err.contains("roles: \"Bad Role\" is not a role slug"),
        "{err}"
    );

    // An HS256 secret comes on standard input, never as an argument.
    let mut add = app.command();
    add.args([
        "sites",
        "add",
        "--name",
        "Shop",
        "--client",
        "Acme Ltd",
        "--url",
        "https://shop.acme.example",
        "--profile",
        "miniorange",
        "--secret-stdin",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = add.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), SHOP_SECRET.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = run_ok(app.command().args(["sites", "list"]));
    assert!(
        list.contains("miniorange  HS256  https://shop.acme.example"),
        "{list}"
    );
    assert!(!list.contains(SHOP_SECRET));

    let out = run_ok(app.command().args([
        "grants",
        "add",
        "Sam@agency.test",
        "https://acme.example",
        "--role",
        "editor",
    ]));
    assert!(
        out.contains("sam@agency.test may enter https://acme.example as editor"),
        "{out}"
    );
    let err = run_err(app.command().args([
        "grants",
        "add",
        "sam@agency.test",
        "https://acme.example",
        "--role",
        "shop_manager",
    ]));
    assert!(
        err.contains("the role shop_manager may not be granted on https://acme.example"),
        "{err}"
    );
    let err = run_err(app.command().args([
        "grants",
        "add",
        "olly@elsewhere.test",
        "https://acme.example",
        "--role",
        "editor",
    ]));
    assert!(err.contains("not in a domain allowed to sign in"), "{err}");
    let err = run_err(app.command().args([
        "grants",
        "add",
        "sam@agency.test",
        "https://nowhere.example",
        "--role",
        "editor",
    ]));
    assert!(
        err.contains("there is no site https://nowhere.example"),
        "{err}"
    );
    let list = run_ok(
        app.command()
            .args(["grants", "list", "--site", "https://acme.example"]),
    );
    assert!(
        list.contains("sam@agency.test") && list.contains("editor"),
        "{list}"
    );

    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    assert!(page_text(&app.home(&sam).await).contains("Acme Ltd"));
    run_ok(
        app.command()
            .args(["sites", "disable", "https://acme.example"]),
    );
    assert!(!page_text(&app.home(&sam).await).contains("Acme Ltd"));
    run_ok(
        app.command()
            .args(["sites", "enable", "https://acme.example"]),
    );
    run_ok(app.command().args([
        "grants",
        "revoke",
        "sam@agency.test",
        "https://acme.example",
    ]));
    assert!(!page_text(&app.home(&sam).await).contains("Acme Ltd"));
    let launches = run_ok(app.command().args(["launches", "list"]));
    assert!(launches.starts_with("AT"), "{launches}");
}

async fn the_record_is_written_only_while_the_decision_holds(backend: Backend) {
    use store::launches::{record_launch, LaunchRecord, StillTrue};
    let app = TestApp::start(backend).await;
    let (blog, _, _) = agency(&app).await;
    let db = &app.state.db;
    let now = app.clock.now_for_tests();
    app.sign_in(&app.browser(), "sam@agency.test").await;
    let person = store::people::find_by_email(db, "sam@agency.test")
        .await
        .unwrap()
        .remove(0);
    let site = store::sites::find(db, &blog).await.unwrap().unwrap();
    let grant = store::grants::applying(&db.pool, "sam@agency.test", &blog)
        .await
        .unwrap()
        .remove(0);
    let kid = app.state.keys.signer().unwrap().kid().to_string();
    let record = |n: u32| LaunchRecord {
        at: now,
        outcome: "launched".into(),
        reason: None,
        person_id: person.id.clone(),
        email: person.email.clone(),
        site_id: blog.clone(),
        site_url: site.url.clone(),
        client: site.client.clone(),
        role: Some("editor".into()),
        profile: Some("twl-sso".into()),
        alg: Some("RS256".into()),
        jti: Some(format!("jti-{n}")),
        kid: Some(kid.clone()),
        deep_link: None,
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        request_id: "r".into(),
    };
    let holds = StillTrue {
        site_version: site.version,
        grant_id: &grant.id,
        kid: Some(&kid),
    };
    assert!(record_launch(db, &record(1), &holds).await.unwrap());

    let moved = StillTrue {
        site_version: site.version + 1,
        ..holds.clone()
    };
    assert!(
        !record_launch(db, &record(2), &moved).await.unwrap(),
        "the site changed"
    );
    let other_key = StillTrue {
        kid: Some("retired-kid"),
        ..holds.clone()
    };
    assert!(
        !record_launch(db, &record(3), &other_key).await.unwrap(),
        "the key is not the active one"
    );
    let mut demoted = record(4);
    demoted.role = Some("administrator".into());
    assert!(
        !record_launch(db, &demoted, &holds).await.unwrap(),
        "the grant is for another role"
    );

    // The very grant the launch was decided on runs out.
    let expire = |at: Option<i64>| {
        sqlx::query("UPDATE grants SET expires_at = $1 WHERE email = $2 AND site_id = $3")
            .bind(at)
            .bind("sam@agency.test")
            .bind(blog.clone())
            .execute(&db.pool)
    };
    expire(Some(now)).await.unwrap();
    assert!(
        !record_launch(db, &record(5), &holds).await.unwrap(),
        "the grant expired"
    );
    expire(None).await.unwrap();
    assert!(record_launch(db, &record(6), &holds).await.unwrap());

    let admin = Actor::command_line();
    agency_sso::service::people::set_disabled(db, &person.email, true, &admin, now)
        .await
        .unwrap();
    assert!(
        !record_launch(db, &record(7), &holds).await.unwrap(),
        "the person was disabled"
    );
    assert_eq!(store::launches::count(db).await.unwrap(), (2, 2));

    // Several launches in one transaction (as the recorder writes them when
    // they arrive together): each is checked on its own facts, the ones
    // that hold are recorded in order, and the chain still verifies.
    agency_sso::service::people::set_disabled(db, &person.email, false, &admin, now)
        .await
        .unwrap();
    let pending = |n: u32, site_version: i64| store::launches::Pending {
        record: record(n),
        site_version,
        grant_id: grant.id.clone(),
        kid: Some(kid.clone()),
        facts_version: None,
        session: None,
    };
    let batch = [
        pending(8, site.version),
        pending(9, site.version + 1),
        pending(10, site.version),
    ];
    assert_eq!(
        store::launches::record_launches(db, &batch).await.unwrap(),
        [true, false, true]
    );

    // Facts kept in memory are recorded only at the facts' version they
    // were read at, and a launch only from a live session of its person.
    let facts_version = || async {
        sqlx::query_scalar::<_, i64>("SELECT n FROM launch_facts_version")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let sessions_of = |person: String| async move {
        sqlx::query_scalar::<_, String>("SELECT id FROM sessions WHERE person_id = $1")
            .bind(person)
            .fetch_all(&db.pool)
            .await
            .unwrap()
    };
    // (Disabling Sam above ended his sessions: he signs in again.)
    app.sign_in(&app.browser(), "sam@agency.test").await;
    let sam_session = sessions_of(person.id.clone()).await.remove(0);
    let live = |key: &str, now: i64| {
        Some(store::launches::LiveSession {
            key: key.to_string(),
            now,
        })
    };
    let version = facts_version().await;
    let kept = |n: u32, facts_version: i64, session| store::launches::Pending {
        facts_version: Some(facts_version),
        session,
        ..pending(n, site.version)
    };
    let wall = agency_sso::service::sessions::DbSessionStore::now();
    let ada = app.browser();
    app.sign_in(&ada, "admin@agency.test").await;
    let ada_id = store::people::find_by_email(db, "admin@agency.test")
        .await
        .unwrap()
        .remove(0)
        .id;
    let ada_session = sessions_of(ada_id).await.remove(0);
    // Ada's sign-in moved the version (a person row was written).
    let after_ada = facts_version().await;
    assert!(after_ada > version, "{after_ada} > {version}");
    let batch = [
        kept(11, after_ada, live(&sam_session, wall)),
        kept(12, version, live(&sam_session, wall)),
        kept(13, after_ada, live(&ada_session, wall)),
        kept(14, after_ada, live("no-such-session", wall)),
        kept(15, after_ada, live(&sam_session, wall + 13 * 3600)),
        kept(16, after_ada, live(&sam_session, wall)),
    ];
    assert_eq!(
        store::launches::record_launches(db, &batch).await.unwrap(),
        [true, false, false, false, false, true],
        "current version and Sam's live session only"
    );
    // Each table a launch is decided on moves the version.
    for change in [
        "UPDATE people SET name = name",
        "UPDATE sites SET notes = notes",
        "UPDATE grants SET role = role",
    ] {
        let before = facts_version().await;
        sqlx::query(change).execute(&db.pool).await.unwrap();
        assert!(facts_version().await > before, "{change}");
    }
    let jtis: Vec<Option<String>> = store::launches::latest(db, None, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.jti)
        .collect();
    assert_eq!(
        jtis,
        [
            Some("jti-16".into()),
            Some("jti-11".into()),
            Some("jti-10".into())
        ]
    );
    assert_eq!(store::launches::count(db).await.unwrap(), (6, 6));
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

/// A launch reads its session in the statement that reads its facts: a
/// session that has ended, by inactivity or by its absolute lifetime, or
/// that never signed in, launches nothing and says so, exactly as when the
/// session was read on its own; a live one launches as its person.
async fn a_launch_reads_its_session_with_its_facts(backend: Backend) {
    use agency_sso::domain::audit::kind;
    let app = TestApp::start(backend).await;
    let (blog, _, _) = agency(&app).await;
    let db = &app.state.db;
    let ended = || async {
        store::audit::latest_of(db, &[kind::SESSION_ENDED, kind::SESSION_ENDED], "", 10)
            .await
            .unwrap()
    };
    let signed_out = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 401);
        assert!(res.headers().get(LOCATION).is_none(), "no token");
        let text = page_text(&res.text().await.unwrap());
        assert!(text.contains("Your session has ended"), "{text}");
    };

    // Live: the launch is Sam's.
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let (token, _) = token_in(&launch(&app, &sam, &blog, "").await, "token");
    let got = verify(&app, BLOG, None, &[&token]);
    assert_eq!(got[0]["claims"]["sub"], "sam@agency.test", "{}", got[0]);
    assert_eq!(store::launches::count(db).await.unwrap(), (1, 1));

    // Ended by inactivity (the row's expiry passed): nothing is launched,
    // and the browser is signed out.
    sqlx::query("UPDATE sessions SET expires_at = 1 WHERE person_id IS NOT NULL")
        .execute(&db.pool)
        .await
        .unwrap();
    signed_out(launch(&app, &sam, &blog, "").await).await;
    assert!(page_text(&app.home(&sam).await).contains("Sign in with"));

    // A session that never signed in (a browser that started a sign-in and
    // came back with a launch instead), and a browser with no session.
    let stranger = app.browser();
    app.begin(&stranger).await;
    signed_out(launch(&app, &stranger, &blog, "").await).await;
    signed_out(launch(&app, &app.browser(), &blog, "").await).await;

    // Past its absolute lifetime, however recently used: ended, recorded
    // once, with whom it was, and the next click does not launch either.
    app.sign_in(&sam, "sam@agency.test").await;
    assert_eq!(launch(&app, &sam, &blog, "").await.status(), 303);
    let before = ended().await.len();
    app.clock.advance(12 * 3600 + 1);
    signed_out(launch(&app, &sam, &blog, "").await).await;
    let now_ended = ended().await;
    assert_eq!(now_ended.len(), before + 1);
    assert_eq!(
        (
            now_ended[0].event.subject.as_str(),
            now_ended[0].event.reason.as_str()
        ),
        ("sam@agency.test", "absolute_lifetime")
    );
    signed_out(launch(&app, &sam, &blog, "").await).await;
    assert_eq!(ended().await.len(), before + 1);
    assert_eq!(
        store::launches::count(db).await.unwrap(),
        (2, 2),
        "only the two live sessions launched"
    );

    // Signed in again, the new session launches (the clock is 12 hours
    // ahead of the verifier's now: the record says whose launch it was).
    app.sign_in(&sam, "sam@agency.test").await;
    assert_eq!(launch(&app, &sam, &blog, "").await.status(), 303);
    let r = latest(&app).await;
    assert_eq!(
        (r.outcome.as_str(), r.email.as_str()),
        ("launched", "sam@agency.test")
    );
    assert_eq!(store::launches::count(db).await.unwrap(), (3, 3));
}

on_both_databases!(
    a_launch_reads_its_session_with_its_facts,
    the_record_is_written_only_while_the_decision_holds,
    a_launch_lands_with_a_token_the_site_verifies,
    a_miniorange_site_gets_hs256_with_its_own_secret,
    the_miniorange_plugin_takes_every_launch,
    a_connector_site_gets_the_twl_token_at_its_own_action,
    a_connector_subject_stays_when_the_address_changes,
    the_home_page_lists_exactly_the_sites_one_may_enter,
    every_refusal_is_named_shown_and_recorded,
    no_token_leaves_without_its_record,
    kept_launch_facts_never_outlive_a_change,
    launches_racing_role_changes_keep_one_order,
    ten_thousand_launches_ten_thousand_jtis,
    sites_and_grants_from_the_command_line,
);

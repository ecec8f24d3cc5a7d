//! The signing key ring as client sites and operators meet it: the JWKS and
//! discovery over HTTP, tokens checked by verifiers nobody here wrote
//! (PyJWT, jose) across rotations, the binary's `keys` commands, several
//! processes on one database, and a process killed mid-rotation.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::on_both_databases;
use crate::support::{pyjwt, run_err, run_ok, run_verifier, Backend, TestApp};

const DAY: i64 = 86_400;
const SITE: &str = "https://client-one.example";

async fn get_jwks(app: &TestApp) -> (reqwest::header::HeaderMap, Value) {
    let res = reqwest::get(app.at("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    (headers, res.json().await.unwrap())
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// A token as the launch will mint it, with real-time `iat`/`exp` (the
/// verifiers use the real clock whatever the app's clock says).
fn token(app: &TestApp, email: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signer = app.state.keys.signer().expect("an active key");
    signer
        .sign(&json!({
            "iss": app.url, "aud": SITE, "sub": email, "email": email,
            "iat": now, "nbf": now, "exp": now + 60,
            "jti": uuid::Uuid::new_v4().to_string(), "wp_role": "editor",
        }))
        .unwrap()
}

fn header_kid(token: &str) -> String {
    let head = token.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(&B64.decode(head).unwrap()).unwrap();
    v["kid"].as_str().unwrap().to_string()
}

/// Results of verifying `tokens` with PyJWT and with jose, against the live JWKS.
fn verify_with_both(app: &TestApp, tokens: &[&str]) -> (Vec<Value>, Vec<Value>) {
    // The verifiers fetch the JWKS from this process: keep a worker free to answer.
    tokio::task::block_in_place(|| verify_blocking(app, tokens))
}

fn verify_blocking(app: &TestApp, tokens: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let input = json!({
        "jwks_uri": app.at("/.well-known/jwks.json"),
        "issuer": app.url,
        "audience": SITE,
        "tokens": tokens,
    })
    .to_string();
    let root = env!("CARGO_MANIFEST_DIR");
    let py = pyjwt();
    let mut node = Command::new("node");
    node.arg("verifiers.mjs")
        .current_dir(format!("{root}/end2end"));
    (
        run_verifier(py, &input, "PyJWT"),
        run_verifier(node, &input, "jose"),
    )
}

fn assert_verifies(results: &[Value], i: usize, kid: &str, who: &str) {
    let r = &results[i];
    assert_eq!(r["ok"], true, "{who}: token {i} should verify: {r}");
    assert_eq!(r["kid"], kid, "{who}");
    assert_eq!(r["claims"]["wp_role"], "editor", "{who}");
    assert_eq!(r["claims"]["aud"], SITE, "{who}");
}

/// Why a verifier must refuse a token. A refusal for any other reason (the
/// key set did not download, say) is not the refusal a test expects.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// `aud` is another site's.
    Audience,
    /// `iss` is another dashboard's.
    Issuer,
    Expired,
    /// The kid is not in the key set (revoked, removed or never published).
    UnknownKey,
}

impl Refusal {
    /// Whether `error`, as the verifier `who` words it, is this refusal.
    fn is(self, who: &str, error: &str) -> bool {
        match (who, self) {
            ("PyJWT", Refusal::Audience) => error.starts_with("InvalidAudienceError:"),
            ("PyJWT", Refusal::Issuer) => error.starts_with("InvalidIssuerError:"),
            ("PyJWT", Refusal::Expired) => error.starts_with("ExpiredSignatureError:"),
            ("PyJWT", Refusal::UnknownKey) => {
                error.starts_with("PyJWKClientError: Unable to find a signing key")
            }
            ("jose", Refusal::Audience) => {
                error.starts_with("ERR_JWT_CLAIM_VALIDATION_FAILED:") && error.contains(r#""aud""#)
            }
            ("jose", Refusal::Issuer) => {
                error.starts_with("ERR_JWT_CLAIM_VALIDATION_FAILED:") && error.contains(r#""iss""#)
            }
            ("jose", Refusal::Expired) => error.starts_with("ERR_JWT_EXPIRED:"),
            ("jose", Refusal::UnknownKey) => error.starts_with("ERR_JWKS_NO_MATCHING_KEY:"),
            _ => panic!("no wording known for {who}"),
        }
    }
}

/// Token `i` refused, for the reason `why`. Each batch with refusals holds
/// a token that must verify too, so a verifier that failed for another
/// reason (no key set at all) cannot pass for one that refused rightly.
fn assert_refused(results: &[Value], i: usize, why: Refusal, who: &str) {
    let r = &results[i];
    assert_eq!(r["ok"], false, "{who}: token {i} must not verify: {r}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        why.is(who, error),
        "{who}: token {i} should be refused as {why:?}, not: {error}"
    );
}

async fn jwks_is_public_cacheable_and_unchanging(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (h, doc) = get_jwks(&app).await;

    // One key on first start, with exactly the public members.
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{doc}");
    let k = &keys[0];
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(k.get(private).is_none(), "private member {private} in {k}");
    }
    let mut members: Vec<&str> = k.as_object().unwrap().keys().map(|s| s.as_str()).collect();
    members.sort();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(
        (k["kty"].as_str(), k["alg"].as_str(), k["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(k["e"], "AQAB");
    // 2048 bits by default.
    assert_eq!(B64.decode(k["n"].as_str().unwrap()).unwrap().len(), 256);
    // kid = RFC 7638 thumbprint, computed here independently.
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        k["e"].as_str().unwrap(),
        k["n"].as_str().unwrap()
    );
    assert_eq!(k["kid"], B64.encode(Sha256::digest(canonical.as_bytes())));
    assert_eq!(app.state.keys.signer().unwrap().kid(), k["kid"]);

    // Caching: public, 300 s, a strong ETag; If-None-Match gets 304 and no body.
    assert_eq!(h["cache-control"], "public, max-age=300");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    assert!(h.get("set-cookie").is_none());
    let client = reqwest::Client::new();
    let res = client
        .get(app.at("/.well-known/jwks.json"))
        .header("if-none-match", &etag)
        .header("cookie", "agency-sso=someone-s-session")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);
    assert!(
        res.headers().get("set-cookie").is_none(),
        "a cacheable answer must not set cookies"
    );
    assert!(res.bytes().await.unwrap().is_empty());
    let res = client
        .get(app.at("/.well-known/jwks.json"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Discovery points generic verifiers at the keys.
    let d: Value = reqwest::get(app.at("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], app.url);
    assert_eq!(d["jwks_uri"], app.at("/.well-known/jwks.json"));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));

    // At rest the private half is sealed: not DER, not PEM, and bound to its kid.
    let sealed: String = sqlx::query_scalar("SELECT private_key FROM signing_keys")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(sealed.starts_with(&format!("v1.{}.", app.state.master_keys.current().id())));
    assert!(!sealed.contains("MII") && !sealed.contains("PRIVATE"));
    let kid = k["kid"].as_str().unwrap();
    assert!(app
        .state
        .master_keys
        .open(&sealed, &format!("signing-key:{kid}"))
        .is_ok());
    assert!(app
        .state
        .master_keys
        .open(&sealed, "signing-key:another")
        .is_err());

    // A restart loads the same key: no new key, same ETag.
    let again = another_instance(&app).await;
    assert_eq!(again.snapshot().etag, etag);
    assert_eq!(again.signer().unwrap().kid(), kid);
}

async fn tokens_verify_with_pyjwt_and_jose_across_a_rotation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, doc) = get_jwks(&app).await;
    let k1 = kids(&doc)[0].clone();
    let a = token(&app, "sam@agency.test");
    assert_eq!(header_kid(&a), k1);

    // 23 days on: the next key is published a week before it signs.
    app.clock.advance(23 * DAY);
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    let (_, doc) = get_jwks(&app).await;
    let published = kids(&doc);
    assert_eq!(published.len(), 2, "{doc}");
    assert_eq!(published[0], k1, "the signer is listed first");
    let k2 = published[1].clone();
    assert_eq!(
        app.state.keys.signer().unwrap().kid(),
        k1,
        "the new key does not sign yet"
    );

    // Day 30: the new key signs; the old one stays published.
    app.clock.advance(7 * DAY);
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    let b = token(&app, "sasha@agency.test");
    assert_eq!(header_kid(&b), k2);
    assert_eq!(kids(&get_jwks(&app).await.1), [k2.clone(), k1.clone()]);
    let (py, jose) = verify_with_both(&app, &[&a, &b]);
    for (who, r) in [("PyJWT", &py), ("jose", &jose)] {
        assert_verifies(r, 0, &k1, who);
        assert_verifies(r, 1, &k2, who);
    }
    assert_eq!(py[1]["claims"]["sub"], "sasha@agency.test");

    // A token for another site or from another issuer is refused by both.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signer = app.state.keys.signer().unwrap();
    let other_site = signer
        .sign(&json!({"iss": app.url, "aud": "https://other.example", "sub": "x@agency.test", "iat": now, "exp": now + 60}))
        .unwrap();
    let other_iss = signer
        .sign(&json!({"iss": "https://evil.example", "aud": SITE, "sub": "x@agency.test", "iat": now, "exp": now + 60}))
        .unwrap();
    let expired = signer
        .sign(&json!({"iss": app.url, "aud": SITE, "sub": "x@agency.test", "iat": now - 400, "exp": now - 300}))
        .unwrap();
    let good = token(&app, "sam@agency.test");
    let (py, jose) = verify_with_both(&app, &[&other_site, &other_iss, &expired, &good]);
    for (who, r) in [("PyJWT", &py), ("jose", &jose)] {
        assert_refused(r, 0, Refusal::Audience, who);
        assert_refused(r, 1, Refusal::Issuer, who);
        assert_refused(r, 2, Refusal::Expired, who);
        assert_verifies(r, 3, &k2, who);
    }

    // Emergency: the active key is revoked. It leaves the JWKS at once and
    // tokens it signed fail everywhere; a new key signs.
    app.state
        .keys
        .revoke(
            &k2,
            "test: suspected leak",
            &agency_sso::domain::audit::Actor::command_line(),
            app.clock.now_for_tests(),
        )
        .await
        .unwrap();
    let published = kids(&get_jwks(&app).await.1);
    assert!(!published.contains(&k2), "{published:?}");
    let k3 = app.state.keys.signer().unwrap().kid().to_string();
    assert!(k3 != k1 && k3 != k2);
    let c = token(&app, "sam@agency.test");
    let (py, jose) = verify_with_both(&app, &[&a, &b, &c]);
    for (who, r) in [("PyJWT", &py), ("jose", &jose)] {
        assert_verifies(r, 0, &k1, who);
        assert_refused(r, 1, Refusal::UnknownKey, who);
        assert_verifies(r, 2, &k3, who);
    }
    // The revoked key's private half is destroyed.
    let left: Option<String> =
        sqlx::query_scalar("SELECT private_key FROM signing_keys WHERE kid = $1")
            .bind(&k2)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert!(left.is_none());

    // A week after it stopped signing, the retired key leaves the JWKS.
    app.clock.advance(7 * DAY);
    app.state
        .keys
        .maintain(app.clock.now_for_tests())
        .await
        .unwrap();
    assert_eq!(kids(&get_jwks(&app).await.1), std::slice::from_ref(&k3));
    let d = token(&app, "sam@agency.test");
    let (py, jose) = verify_with_both(&app, &[&a, &d]);
    for (who, r) in [("PyJWT", &py), ("jose", &jose)] {
        assert_refused(r, 0, Refusal::UnknownKey, who);
        assert_verifies(r, 1, &k3, who);
    }
}

async fn keys_commands_list_rotate_revoke_and_reach_the_running_service(backend: Backend) {
    let app =
        TestApp::start_with(crate::support::Options::new(backend).with("key-refresh-seconds", "1"))
            .await;
    app.spawn_key_upkeep();
    let k1 = app.state.keys.signer().unwrap().kid().to_string();
    let etag = get_jwks(&app).await.0["etag"].to_str().unwrap().to_string();

    let out = run_ok(app.command().args(["keys", "rotate"]));
    assert!(
        out.contains("is published now and starts signing at"),
        "{out}"
    );
    let list = run_ok(app.command().args(["keys", "list"]));
    let next_line = list
        .lines()
        .find(|l| l.starts_with("next"))
        .unwrap_or_else(|| panic!("{list}"));
    let k2 = next_line.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        list.lines()
            .any(|l| l.starts_with("active") && l.contains(&k1)),
        "{list}"
    );

    // The running service publishes the new key within its refresh delay,
    // without a restart (waiting for the change, with a deadline).
    wait_for_jwks(&app, |ks| ks.contains(&k2)).await;
    assert_ne!(get_jwks(&app).await.0["etag"].to_str().unwrap(), etag);
    assert_eq!(app.state.keys.signer().unwrap().kid(), k1);

    // Revoke the signer: the next key takes over, everywhere.
    let out = run_ok(
        app.command()
            .args(["keys", "revoke", &k1, "--reason", "laptop stolen"]),
    );
    assert!(out.contains(&format!("key {k1} revoked")), "{out}");
    wait_for_jwks(&app, |ks| ks == [k2.clone()]).await;
    let list = run_ok(app.command().args(["keys", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("revoked") && l.contains(&k1) && l.contains("laptop stolen")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("active") && l.contains(&k2)),
        "{list}"
    );
    // The in-process signer follows within the refresh delay too.
    for _ in 0..100 {
        if app.state.keys.signer().unwrap().kid() == k2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.state.keys.signer().unwrap().kid(), k2);

    // Mistakes are explained, and change nothing.
    let err = run_err(
        app.command()
            .args(["keys", "revoke", &k1, "--reason", "again"]),
    );
    assert!(err.contains("is already revoked"), "{err}");
    let err = run_err(
        app.command()
            .args(["keys", "revoke", "no-such-kid", "--reason", "x"]),
    );
    assert!(err.contains("no key with id no-such-kid"), "{err}");
    let err = run_err(app.command().args(["keys", "revoke", &k2, "--reason", " "]));
    assert!(err.contains("give a reason"), "{err}");
    assert_eq!(kids(&get_jwks(&app).await.1), std::slice::from_ref(&k2));
}

async fn a_new_master_key_is_introduced_with_rewrap(backend: Backend) {
    let app = TestApp::start(backend).await;
    let old = std::fs::read_to_string(app.data_dir.join("master.key")).unwrap();
    let new = B64.encode([7u8; 32]);
    let kid = app.state.keys.signer().unwrap().kid().to_string();

    // The new key alone cannot open what the old one sealed, and says which key it needs.
    let err = run_err(
        app.command()
            .env("SSO_MASTER_KEY", &new)
            .args(["keys", "rotate"]),
    );
    let old_id = app.state.master_keys.current().id().to_string();
    assert!(
        err.contains(&format!("sealed under master key {old_id}"))
            && err.contains("SSO_MASTER_KEYS_OLD"),
        "{err}"
    );
    assert!(
        !err.contains(old.trim()),
        "a master key must never be printed"
    );

    let out = run_ok(
        app.command()
            .env("SSO_MASTER_KEY", &new)
            .env("SSO_MASTER_KEYS_OLD", old.trim())
            .args(["keys", "rewrap"]),
    );
    assert!(out.contains("1 private key(s) resealed"), "{out}");
    // Now the new key alone serves, with the same signing key.
    let out = run_ok(
        app.command()
            .env("SSO_MASTER_KEY", &new)
            .args(["keys", "rotate"]),
    );
    assert!(out.contains("starts signing"), "{out}");
    let list = run_ok(
        app.command()
            .env("SSO_MASTER_KEY", &new)
            .args(["keys", "list"]),
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("active") && l.contains(&kid)),
        "{list}"
    );
    // And the old one no longer opens anything.
    let err = run_err(app.command().args(["keys", "rotate", "--now"]));
    assert!(err.contains("which is not configured"), "{err}");
}

async fn two_processes_rotating_at_once_make_one_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let spawn = || {
        app.command()
            .args(["keys", "rotate"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (_, ring) = crate::support::key_ring(&app.state).await;
    let mut states: Vec<&str> = ring.keys.iter().map(|k| k.state.as_str()).collect();
    states.sort();
    assert_eq!(states, ["active", "next"], "exactly one new key");
    // Both report the same key.
    let next = ring.next().unwrap().kid.clone();
    assert!(String::from_utf8_lossy(&a.stdout).contains(&next));
    assert!(String::from_utf8_lossy(&b.stdout).contains(&next));

    // The schedule, run by two instances at the same due moment, also makes one.
    let other = another_instance(&app).await;
    app.clock.advance(8 * DAY);
    let now = app.clock.now_for_tests();
    let (x, y) = tokio::join!(app.state.keys.maintain(now), other.maintain(now));
    x.unwrap();
    y.unwrap();
    let (_, ring) = crate::support::key_ring(&app.state).await;
    assert_eq!(ring.active().unwrap().kid, next);
    assert_eq!(
        ring.keys
            .iter()
            .filter(|k| k.state.as_str() == "retired")
            .count(),
        1
    );
    assert_eq!(ring.keys.len(), 2, "{:?}", ring.keys);
    app.state
        .keys
        .refresh(app.clock.now_for_tests())
        .await
        .unwrap();
    other.refresh(app.clock.now_for_tests()).await.unwrap();
    assert_eq!(app.state.keys.snapshot().etag, other.snapshot().etag);
}

/// Kill `keys rotate` while it waits for the lock on the ring (the test
/// holds it, as a slow peer would), then check that the ring is exactly as
/// before and that the next rotation works.
///
/// On PostgreSQL the lock is the ring's row: the rotation waits inside its
/// transaction (checked: its session waits on a lock), and any write it
/// made before it, in that transaction or another, would show. On SQLite
/// the only lock is the database's one write lock, which the test must
/// hold to make the rotation wait, so nothing of the rotation can be
/// written before the kill: there this half checks only that a rotation
/// killed while it waits (checked: still running, past its key's
/// generation) leaves no key and no lock behind, and that the next one
/// works. A rotation killed inside its transaction on SQLite is
/// `instances::killed_mid_rotation`'s (kills counted from the rotation's
/// first step, at least one before its commit).
async fn a_rotation_killed_while_it_waits_for_the_ring_lock_leaves_it_as_it_was(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (version, before) = crate::support::key_ring(&app.state).await;

    // Hold the ring lock from outside, as a slow peer would.
    let mut holder = app.state.db.pool.acquire().await.unwrap();
    match backend {
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *holder)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut *holder).await.unwrap();
            sqlx::query("SELECT version FROM key_ring WHERE id = 1 FOR UPDATE")
                .execute(&mut *holder)
                .await
                .unwrap();
        }
    }
    let mut child = app
        .command()
        .env("RUST_LOG", "agency_sso=debug")
        .args(["keys", "rotate"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until it has generated its key and entered the change.
    let stderr = child.stderr.take().unwrap();
    let reached = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("changing the key ring"))
    });
    let reached = tokio::time::timeout(std::time::Duration::from_secs(60), reached)
        .await
        .expect("the rotation should reach its transaction")
        .unwrap();
    assert!(reached);
    if backend == Backend::Postgres {
        // It is inside its transaction, waiting on the lock.
        let mut waited = false;
        for _ in 0..400 {
            let n: i64 = sqlx::query_scalar(
                // The statement text PostgreSQL shows for a waiting extended-protocol
                // statement can lag behind it: any session of this database
                // waiting on a lock is the rotation (nothing else runs here).
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut *holder)
            .await
            .unwrap();
            if n > 0 {
                waited = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let seen: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT wait_event_type, wait_event, query FROM pg_stat_activity WHERE datname = current_database()",
        )
        .fetch_all(&mut *holder)
        .await
        .unwrap();
        assert!(
            waited,
            "the rotation should be waiting for the ring lock: {seen:?}"
        );
    }
    // Still waiting: it cannot have finished without the lock.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the rotation should be waiting for the lock, not done"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);

    let (v, after) = crate::support::key_ring(&app.state).await;
    assert_eq!(
        (v, &after),
        (version, &before),
        "nothing of the killed rotation remains"
    );

    // After the restart everything works: a rotation, a fresh instance.
    let out = run_ok(app.command().args(["keys", "rotate"]));
    assert!(out.contains("starts signing"), "{out}");
    let (_, after) = crate::support::key_ring(&app.state).await;
    let mut states: Vec<&str> = after.keys.iter().map(|k| k.state.as_str()).collect();
    states.sort();
    assert_eq!(states, ["active", "next"]);
    app.state
        .keys
        .refresh(app.clock.now_for_tests())
        .await
        .unwrap();
    assert_eq!(kids(&get_jwks(&app).await.1).len(), 2);
}

/// Run a statement as someone with write access to the database alone would.
async fn sql(app: &TestApp, q: &str, binds: &[&str]) {
    let mut query = sqlx::query(q);
    for b in binds {
        query = query.bind(*b);
    }
    query.execute(&app.state.db.pool).await.unwrap();
}

async fn readyz(url: &str) -> (u16, Value) {
    let res = reqwest::get(format!("{url}/readyz")).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Whoever can write one SQL row cannot get a key published: a forged row
/// (its own key pair, no MAC) and a swapped modulus under a real kid are
/// both left out of the JWKS, named by `keys list` and `/readyz`, and
/// audited; a token signed with the forged key does not verify.
async fn key_rows_the_database_alone_wrote_are_never_published(backend: Backend) {
    let app = TestApp::start(backend).await;
    run_ok(app.command().args(["keys", "rotate"]));
    let (_, ring) = crate::support::key_ring(&app.state).await;
    let (active, next) = (
        ring.active().unwrap().kid.clone(),
        ring.next().unwrap().kid.clone(),
    );
    // The attacker's own key, inserted as a published (retired) key.
    let forged = agency_sso::domain::keys::generate(2048, &mut rand::rngs::OsRng).unwrap();
    let now = app.clock.now_for_tests();
    sql(
        &app,
        &format!(
            "INSERT INTO signing_keys (kid, state, bits, n, e, created_at, retired_at, remove_at) \
             VALUES ($1, 'retired', 2048, $2, $3, {now}, {now}, {})",
            now + 30 * DAY
        ),
        &[&forged.kid, &forged.n, &forged.e],
    )
    .await;
    // And their modulus under the real next key's id.
    sql(
        &app,
        "UPDATE signing_keys SET n = $1 WHERE kid = $2",
        &[&forged.n, &next],
    )
    .await;
    // Instances reload when the ring's version moves; so can an attacker.
    sql(&app, "UPDATE key_ring SET version = version + 1", &[]).await;
    app.state.keys.refresh(now).await.unwrap();

    let (_, doc) = get_jwks(&app).await;
    assert_eq!(kids(&doc), std::slice::from_ref(&active), "{doc}");
    assert!(
        !doc.to_string().contains(&forged.n),
        "the forged modulus is published"
    );
    // A token signed with the forged key, as an attacker would mint one.
    let signer =
        agency_sso::domain::tokens::Signer::from_pkcs1_der(&forged.kid, &forged.private_der)
            .unwrap();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let minted = signer
        .sign(&json!({
            "iss": app.url, "aud": SITE, "sub": "eve@agency.test", "email": "eve@agency.test",
            "iat": t, "nbf": t, "exp": t + 60, "jti": "forged-1", "wp_role": "administrator",
        }))
        .unwrap();
    let input = json!({
        "jwks_uri": app.at("/.well-known/jwks.json"),
        "issuer": app.url,
        "audience": SITE,
        "tokens": [minted, token(&app, "sam@agency.test")],
    })
    .to_string();
    let results = tokio::task::block_in_place(|| run_verifier(pyjwt(), &input, "PyJWT"));
    assert_refused(&results, 0, Refusal::UnknownKey, "PyJWT");
    assert_eq!(
        results[1]["ok"], true,
        "the real key still verifies: {}",
        results[1]
    );

    // Named where operators look.
    let list = run_ok(app.command().args(["keys", "list"]));
    for kid in [&forged.kid, &next] {
        assert!(
            list.lines()
                .any(|l| l.starts_with("rejected") && l.contains(kid.as_str())),
            "{kid}: {list}"
        );
    }
    let (status, body) = readyz(&app.url).await;
    assert_eq!(status, 200, "this instance still signs: {body}");
    let untrusted = body["untrusted_keys"].to_string();
    assert!(
        untrusted.contains(&forged.kid) && untrusted.contains(&next),
        "{body}"
    );
    assert!(
        untrusted.contains("thumbprint"),
        "the swapped n is named: {body}"
    );
    // And audited, once each.
    let records = crate::support::audit_texts(&app.database_url).await;
    for kid in [&forged.kid, &next] {
        let n = records
            .iter()
            .filter(|(_, t)| t.contains("key_rejected") && t.contains(kid.as_str()))
            .count();
        assert_eq!(n, 1, "{kid}");
    }
    // The next scheduled change gets past the forged next row: it is
    // revoked, and a fresh next key published in its place.
    run_ok(app.command().args(["keys", "rotate"]));
    app.state.keys.refresh(now).await.unwrap();
    let (state, reason): (String, String) =
        sqlx::query_as("SELECT state, revoked_reason FROM signing_keys WHERE kid = $1")
            .bind(&next)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(state, "revoked");
    assert!(reason.contains("integrity check"), "{reason}");
    let (_, ring) = crate::support::key_ring(&app.state).await;
    assert!(ring.get(&next).is_none(), "still not trusted");
    let fresh = ring.next().unwrap().kid.clone();
    assert_ne!(fresh, next);
    let (_, doc) = get_jwks(&app).await;
    assert_eq!(kids(&doc), [active, fresh], "{doc}");
}

/// An instance that lacks the master key another instance now uses (mid
/// master-key change) publishes only what it can vouch for, refuses
/// launches with a clear status, and says so in `/readyz`, instead of
/// serving its stale key set (a revoked key included) and signing with it.
async fn an_instance_that_cannot_open_the_new_key_says_so(backend: Backend) {
    let old = B64.encode([3u8; 32]);
    let new = B64.encode([4u8; 32]);
    let a =
        TestApp::start_with(crate::support::Options::new(backend).with("master-key", &old)).await;
    let revoked = a.state.keys.signer().unwrap().kid().to_string();
    let site = crate::support::add_site(
        &a,
        agency_sso::domain::sites::SiteInput {
            name: "Blog".into(),
            client: "Client One".into(),
            url: SITE.into(),
            ..Default::default()
        },
    )
    .await;
    crate::support::grant(&a, "sam@agency.test", &site, "editor").await;
    let sam = a.signed_in("sam@agency.test").await;
    assert_eq!(a.launch(&sam, &site).await.status(), 303);

    // The instance with the new master key revokes the signing key.
    let out = run_ok(
        a.command()
            .env("SSO_MASTER_KEY", &new)
            .env("SSO_MASTER_KEYS_OLD", &old)
            .args(["keys", "revoke", &revoked, "--reason", "laptop stolen"]),
    );
    assert!(out.contains("revoked"), "{out}");
    a.state.keys.refresh(a.clock.now_for_tests()).await.unwrap();

    let (_, doc) = get_jwks(&a).await;
    assert!(
        !kids(&doc).contains(&revoked),
        "the revoked key is still published: {doc}"
    );
    let res = a.launch(&sam, &site).await;
    assert_eq!(res.status(), 503);
    let page = crate::support::page_text(&res.text().await.unwrap());
    assert!(page.contains("signing_key_unavailable"), "{page}");
    let (status, body) = readyz(&a.url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "signing_key_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SSO_MASTER_KEYS_OLD"),
        "{body}"
    );
}

/// Rows from before key rows carried MACs (as an upgrade finds them) are
/// not called forged before the first start binds them; that start binds
/// the sound ones, once, with a record; a row without a MAC after that is forged.
async fn rows_from_before_macs_are_bound_once_at_the_first_start(backend: Backend) {
    let app = TestApp::start(backend).await;
    let kid = app.state.keys.signer().unwrap().kid().to_string();
    sql(&app, "UPDATE signing_keys SET mac = NULL", &[]).await;
    sql(&app, "UPDATE key_ring SET rows_bound_at = NULL", &[]).await;
    let list = run_ok(app.command().args(["keys", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("unchecked") && l.contains(&kid) && l.contains("not bound")),
        "{list}"
    );
    // The next start binds it.
    let started = another_instance(&app).await;
    assert_eq!(started.signer().unwrap().kid(), kid);
    let list = run_ok(app.command().args(["keys", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("active") && l.contains(&kid)),
        "{list}"
    );
    let records = crate::support::audit_texts(&app.database_url).await;
    assert!(
        records
            .iter()
            .any(|(_, t)| t.starts_with("key_rows_bound") && t.contains(&kid)),
        "bound with a record"
    );
    // Once only: a row losing its MAC afterwards is forged.
    sql(&app, "UPDATE signing_keys SET mac = NULL", &[]).await;
    let list = run_ok(app.command().args(["keys", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("rejected") && l.contains(&kid)),
        "{list}"
    );
}

on_both_databases!(
    rows_from_before_macs_are_bound_once_at_the_first_start,
    key_rows_the_database_alone_wrote_are_never_published,
    an_instance_that_cannot_open_the_new_key_says_so,
    jwks_is_public_cacheable_and_unchanging,
    tokens_verify_with_pyjwt_and_jose_across_a_rotation,
    keys_commands_list_rotate_revoke_and_reach_the_running_service,
    a_new_master_key_is_introduced_with_rewrap,
    two_processes_rotating_at_once_make_one_key,
    a_rotation_killed_while_it_waits_for_the_ring_lock_leaves_it_as_it_was,
);

/// A second instance's key ring on the same database, opened now.
async fn another_instance(app: &TestApp) -> std::sync::Arc<agency_sso::service::keys::KeyRing> {
    agency_sso::service::context::open_key_ring(
        &app.state.config,
        &app.state.db,
        &app.state.master_keys,
        app.clock.now_for_tests(),
    )
    .await
    .unwrap()
}

async fn wait_for_jwks(app: &TestApp, done: impl Fn(&[String]) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ks = kids(&get_jwks(app).await.1);
        if done(&ks) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the JWKS did not change within 10 s: {ks:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

//! The binary as an operator runs it.

use std::process::Command;

use agency_sso::domain::audit::kind;
use agency_sso::store;

use crate::on_both_databases;
use crate::support::{server_fn, site_form, Backend, Browser, TestApp};

pub fn agency_sso() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_agency-sso"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SSO_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn a_bad_setting_stops_with_one_line_naming_the_key() {
    let cases = [
        (
            vec![
                ("SSO_ALLOWED_DOMAINS", "agency.test"),
                ("SSO_PUBLIC_URL", "http://sso.agency.example"),
            ],
            "SSO_PUBLIC_URL: must be https",
        ),
        (
            vec![("SSO_ALLOWED_DOMAINS", "")],
            "SSO_ALLOWED_DOMAINS: missing",
        ),
        (
            vec![
                ("SSO_ALLOWED_DOMAINS", "agency.test"),
                ("SSO_PUBLIC_URL", "https://sso.agency.example"),
            ],
            "SSO_MASTER_KEY: required when SSO_PUBLIC_URL is https",
        ),
        (
            vec![
                ("SSO_ALLOWED_DOMAINS", "agency.test"),
                ("SSO_DATABASE_URL", "mysql://x"),
            ],
            "SSO_DATABASE_URL: must start with",
        ),
    ];
    for (env, expected) in cases {
        let out = agency_sso()
            .envs(env.clone())
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn serve_without_a_client_id_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = agency_sso()
        .env("SSO_ALLOWED_DOMAINS", "agency.test")
        .env(
            "SSO_DATABASE_URL",
            format!("sqlite://{}/x.db", dir.path().display()),
        )
        .env("SSO_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("SSO_OIDC_CLIENT_ID: missing"), "{err}");
}

#[test]
fn secrets_are_hidden_from_help() {
    let out = agency_sso()
        .env("SSO_OIDC_CLIENT_SECRET", "hunter2-secret")
        .env("SSO_MASTER_KEY", "bWFzdGVyLWtleS1oaWRkZW4=")
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("SSO_OIDC_CLIENT_SECRET"), "{help}");
    assert!(
        !help.contains("hunter2") && !help.contains("bWFzdGVy"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_disable_from_the_command_line_ends_sessions() {
    use agency_sso::config::DbKind;
    use agency_sso::domain::identity::Admitted;
    use agency_sso::store::{people, Db};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", dir.path().display());
    let db = Db::connect(&url, DbKind::Sqlite).await.unwrap();
    let who = Admitted {
        issuer: "https://idp.test".into(),
        subject: "s".into(),
        email: "ann@agency.test".into(),
        name: Some("Ann".into()),
        given_name: None,
        family_name: None,
        bootstrap_admin: false,
    };
    let p = people::record_sign_in(&db.pool, &who, "p1", 1)
        .await
        .unwrap()
        .unwrap();
    sqlx::query("INSERT INTO sessions (id, person_id, record, expires_at) VALUES ('s1', $1, '{}', 9999999999)")
        .bind(&p.id)
        .execute(&db.pool)
        .await
        .unwrap();

    let run = |args: &[&str]| {
        agency_sso()
            .env("SSO_ALLOWED_DOMAINS", "agency.test")
            .env("SSO_DATABASE_URL", &url)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["users", "disable", "Ann@agency.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "ann@agency.test disabled; 1 session(s) ended"
    );
    assert!(people::find(&db, "p1").await.unwrap().unwrap().disabled);

    let list = String::from_utf8(run(&["users", "list"]).stdout).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains("ann@agency.test") && l.contains("disabled")),
        "{list}"
    );

    let out = run(&["users", "disable", "nobody@agency.test"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("nobody with the e-mail address"));

    // The record is the console's: who changed, before and after, sessions ended.
    let (kind, detail): (String, String) =
        sqlx::query_as("SELECT kind, detail FROM audit_log WHERE subject = 'ann@agency.test' ORDER BY seq DESC LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(kind, "person_changed");
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["before"], serde_json::json!({ "disabled": false }));
    assert_eq!(detail["after"], serde_json::json!({ "disabled": true }));
    assert_eq!(detail["sessions_ended"], 1);

    // The last admin who can act is not disabled from here either: the
    // console's rule and message, nothing changed, nothing recorded.
    let boss = Admitted {
        subject: "b".into(),
        email: "boss@agency.test".into(),
        name: Some("Boss".into()),
        bootstrap_admin: true,
        ..who
    };
    let b = people::record_sign_in(&db.pool, &boss, "p2", 1)
        .await
        .unwrap()
        .unwrap();
    assert!(b.is_admin);
    let records = |db: &Db| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM audit_log")
                .fetch_one(&pool)
                .await
                .unwrap()
                .0
        }
    };
    let before = records(&db).await;
    let out = run(&["users", "disable", "boss@agency.test"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim(),
        "agency-sso: boss@agency.test is the last admin who can act: make someone else an admin first"
    );
    assert!(!people::find(&db, "p2").await.unwrap().unwrap().disabled);
    assert_eq!(records(&db).await, before);
}

/// A console server function that must succeed.
async fn console(app: &TestApp, admin: &Browser, name: &str, form: &[(&str, &str)]) {
    let (status, body) = server_fn(app, admin, name, form).await;
    assert_eq!(status, 200, "{name}: {body}");
}

/// The same changes made in the console and on the command line leave the
/// same audit records (the same kinds, in the same order, with the same
/// details), apart from who made them and from where.
async fn the_command_line_leaves_the_consoles_records(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh("boss@agency.test").await;
    for email in ["cora@agency.test", "clay@agency.test"] {
        app.signed_in(email).await;
    }
    let cli = |args: &[&str]| {
        let out = app.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let start = store::audit::head(&app.state.db).await.unwrap().0;

    // One story, told twice: a site added, a person granted a role on it,
    // the site disabled and enabled, the grant taken away, the person disabled.
    let story = |who: &str| {
        (
            format!("https://{who}.acme.example"),
            format!("{who}@agency.test"),
        )
    };
    let (url, email) = story("cora");
    let form = site_form(&[("name", "Told"), ("url", &url), ("client", "Acme")]);
    console(&app, &boss, "admin_save_site", &form).await;
    let id = store::sites::find_by_url(&app.state.db, &url)
        .await
        .unwrap()
        .unwrap()
        .id;
    let grant = [
        ("site", id.as_str()),
        ("email", &email),
        ("role", "editor"),
        ("duration", ""),
        ("reason", ""),
    ];
    console(&app, &boss, "admin_grant", &grant).await;
    for on in ["false", "true"] {
        let form = [("id", id.as_str()), ("enabled", on)];
        console(&app, &boss, "admin_set_site_enabled", &form).await;
    }
    let form = [("site", id.as_str()), ("email", &email)];
    console(&app, &boss, "admin_revoke_grant", &form).await;
    let person = store::people::find_by_email(&app.state.db, &email)
        .await
        .unwrap()
        .remove(0)
        .id;
    let form = [("id", person.as_str()), ("change", "disable")];
    console(&app, &boss, "admin_set_standing", &form).await;
    let middle = store::audit::head(&app.state.db).await.unwrap().0;

    let (url, email) = story("clay");
    cli(&[
        "sites", "add", "--name", "Told", "--client", "Acme", "--url", &url,
    ]);
    cli(&["grants", "add", &email, &url, "--role", "editor"]);
    cli(&["sites", "disable", &url]);
    cli(&["sites", "enable", &url]);
    cli(&["grants", "revoke", &email, &url]);
    cli(&["users", "disable", &email]);

    let records = store::audit::chunk(&app.state.db, start, 1000)
        .await
        .unwrap();
    // What a record says, with the story's own names and times taken out.
    let said = |r: &agency_sso::domain::audit::Stored| {
        let e = &r.event;
        let mut detail = e.detail.clone();
        for (from, to) in [
            ("https://cora.acme.example", "URL"),
            ("https://clay.acme.example", "URL"),
            ("cora@agency.test", "EMAIL"),
            ("clay@agency.test", "EMAIL"),
        ] {
            detail = detail.replace(from, to);
        }
        let mut detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        // Ids and times differ between any two runs of the story.
        if let Some(o) = detail.as_object_mut() {
            for k in ["id", "site_id", "person_id", "at", "sessions_ended"] {
                o.remove(k);
            }
        }
        (
            e.kind.clone(),
            e.outcome.clone(),
            e.subject.contains('@'),
            e.site_url.is_empty(),
            e.client.clone(),
            e.role.clone(),
            e.reason.clone(),
            detail,
        )
    };
    let (by_console, by_cli): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.seq <= middle);
    assert!(by_console
        .iter()
        .all(|r| r.event.actor == "boss@agency.test"));
    assert!(by_cli
        .iter()
        .all(|r| r.event.actor == "command line" && r.event.ip == "local"));
    let kinds: Vec<&str> = by_cli.iter().map(|r| r.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            kind::SITE_CREATED,
            kind::GRANT_SET,
            kind::SITE_CHANGED,
            kind::SITE_CHANGED,
            kind::GRANT_REVOKED,
            kind::PERSON_CHANGED,
        ]
    );
    let by_console: Vec<_> = by_console.into_iter().map(said).collect();
    let by_cli: Vec<_> = by_cli.into_iter().map(said).collect();
    assert_eq!(by_console, by_cli);
}

on_both_databases!(the_command_line_leaves_the_consoles_records);

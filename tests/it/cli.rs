//! The binary as an operator runs it.

use std::process::Command;

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

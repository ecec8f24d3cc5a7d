//! What an operator runs around a release: `--version`, `migrate --check`
//! and `migrate`, `check` before a start, `healthcheck` for a container,
//! and a database that a newer version migrated (refused in one line by
//! `serve`, while an instance already running keeps serving).

use crate::cli::agency_sso;
use crate::on_both_databases;
use crate::support::{blog_with_editors, fresh_database, run_ok, Backend, TestApp};

/// This binary's migrations (the folder's files).
fn migrations() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count()
}

#[test]
fn the_version_names_the_commit() {
    let out = run_ok(agency_sso().arg("--version"));
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let commit = String::from_utf8(git.stdout).unwrap();
    assert_eq!(
        out.trim(),
        format!(
            "agency-sso {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            commit.trim()
        )
    );
}

/// An empty database: `migrate --check` lists every migration and applies
/// none; `migrate` applies them and says which; then nothing is left.
async fn migrate_check_says_what_an_upgrade_would_apply(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    let migrate = |check: bool| {
        let mut c = agency_sso();
        c.env("SSO_DATABASE_URL", &url)
            .env("SSO_DATA_DIR", dir.path())
            .env("SSO_ALLOWED_DOMAINS", "agency.test")
            .arg("migrate");
        if check {
            c.arg("--check");
        }
        c.output().unwrap()
    };
    let out = migrate(true);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    if backend == Backend::Sqlite {
        // No file made by looking.
        assert_eq!(
            stdout.trim(),
            "no database yet: the first start creates it and applies every migration"
        );
        assert!(!dir.path().join("test.db").exists());
        std::fs::File::create(dir.path().join("test.db")).unwrap();
        let out = migrate(true);
        assert_eq!(out.status.code(), Some(1));
        let listed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("test.db")).unwrap().len(),
            0
        );
        check_listing(&listed);
    } else {
        check_listing(&stdout);
    }

    let applied = migrate(false);
    let stdout = String::from_utf8(applied.stdout).unwrap();
    assert!(applied.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("applied 0001 people and sessions\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with(&format!(
        "up to date ({} migration(s) applied now)\n",
        migrations()
    )));
    let again = migrate(true);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        format!("up to date (migration {})\n", migrations())
    );
}

fn check_listing(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), migrations() + 1, "{stdout}");
    assert_eq!(lines[0], "would apply 0001 people and sessions");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "{} migration(s) would be applied: run `agency-sso migrate`, or start the new version",
            migrations()
        )
    );
}

/// A newer agency-sso migrated the database (an additive change, as the
/// project's migrations are): the instance already running keeps serving
/// launches; this version refuses to start on it, in one line, and
/// `migrate --check` and `check` say the same.
async fn a_database_newer_than_the_binary_is_refused_in_one_line(backend: Backend) {
    let app = TestApp::start(backend).await;
    let blog = blog_with_editors(&app, &["sam@agency.test"]).await;
    let newer = 9_000;
    let pool = &app.state.db.pool;
    sqlx::query("CREATE TABLE from_a_newer_version (id TEXT PRIMARY KEY)")
        .execute(pool)
        .await
        .unwrap();
    let checksum = match backend {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    sqlx::query(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({newer}, 'from a newer version', TRUE, {checksum}, 1)"
    ))
    .execute(pool)
    .await
    .unwrap();

    // Still serving: Sam lands on the blog.
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let res = sam
        .post(app.at("/launch"))
        .header("origin", &app.url)
        .form(&[("site", blog.as_str()), ("path", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("token="));

    let line = format!(
        "agency-sso: the database was migrated by a newer agency-sso (its schema is at migration \
         {newer}; this agency-sso {} knows migrations up to {}): run that newer version, or \
         restore the backup taken before the upgrade",
        agency_sso::VERSION,
        migrations()
    );
    let serve = app
        .command()
        .env("SSO_OIDC_CLIENT_ID", "x")
        .env("SSO_OIDC_CLIENT_SECRET", "y")
        .env("SSO_BIND", "127.0.0.1:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!serve.status.success());
    let err = String::from_utf8(serve.stderr).unwrap();
    let last = err.lines().last().unwrap();
    assert_eq!(last, line, "{err}");

    let check = app.command().args(["migrate", "--check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(2));
    assert_eq!(String::from_utf8(check.stderr).unwrap().trim(), line);

    let out = app
        .command()
        .env("SSO_OIDC_ISSUER", app.idp.issuer())
        .env("SSO_OIDC_CLIENT_ID", "x")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "problem  {}",
            line.trim_start_matches("agency-sso: ")
        )),
        "{stdout}"
    );
}

/// `check` on a dashboard that is fine, then with each thing that would
/// stop it: another master key (the stored keys are not trusted), a
/// provider that does not answer.
async fn check_says_what_is_wrong_before_a_start(backend: Backend) {
    let app = TestApp::start(backend).await;
    let check = |extra: &[(&str, &str)]| {
        let mut c = app.command();
        c.env("SSO_OIDC_ISSUER", app.idp.issuer())
            .env("SSO_OIDC_CLIENT_ID", "x")
            .arg("check");
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, stdout) = check(&[]);
    assert_eq!(code, Some(0), "{stdout}");
    let kid = app.state.keys.snapshot().ring.active().unwrap().kid.clone();
    for expected in [
        "ok       settings read".to_string(),
        format!(
            "ok       database schema up to date (migration {})",
            migrations()
        ),
        format!("ok       signing key {kid} active"),
        format!(
            "ok       identity provider {} answers discovery",
            app.idp.issuer()
        ),
    ] {
        assert!(stdout.contains(&expected), "{expected}\n{stdout}");
    }
    assert!(stdout.contains("note     master key from "), "{stdout}");

    use base64::Engine;
    let other = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (code, stdout) = check(&[
        ("SSO_MASTER_KEY", other.as_str()),
        ("SSO_OIDC_ISSUER", dead.as_str()),
    ]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "problem  signing key {kid} (active) is not trusted here: "
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("problem  identity provider {dead}")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 problem(s): the dashboard would not start or not work as configured\n")
    );
    // Nothing changed by looking: the app still signs with its key.
    assert_eq!(app.state.keys.snapshot().ring.active().unwrap().kid, kid);
}

on_both_databases!(
    migrate_check_says_what_an_upgrade_would_apply,
    a_database_newer_than_the_binary_is_refused_in_one_line,
    check_says_what_is_wrong_before_a_start,
);

/// `healthcheck`, as a container's HEALTHCHECK runs it: 0 while the
/// dashboard at SSO_BIND answers /healthz, 1 when nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_asks_the_dashboard_on_its_bind_address() {
    let app = TestApp::start(Backend::Sqlite).await;
    let bind = app.url.trim_start_matches("http://").to_string();
    let ok = app
        .command()
        .env("SSO_BIND", &bind)
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let down = app
        .command()
        .env("SSO_BIND", &dead)
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    let err = String::from_utf8(down.stderr).unwrap();
    assert!(
        err.starts_with(&format!("agency-sso: http://{dead}/healthz: ")),
        "{err}"
    );
}

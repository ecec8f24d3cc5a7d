//! SQLite's file system full, or read-only: a clear error, never a panic,
//! a corrupt file or a token without its record; and service again, same
//! process, once there is room. The database lives on a small tmpfs the
//! test mounts (the suite runs as root, as CI does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::LOCATION;

use crate::support::{blog_with_editors, page_text, run_ok, Backend, Options, TestApp};

/// A tmpfs of `size` mounted on a fresh folder; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Write a file until the file system has no room left.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in [64 * 1024, 4096, 1] {
            let bytes = vec![0u8; chunk];
            while f.write_all(&bytes).is_ok() {}
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// The `jti` of the launch token in a launch's redirect.
fn jti_of(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string())
        .expect("a token in the redirect");
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

async fn integrity_check(db_file: &Path) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_file.display()))
        .await
        .unwrap();
    let (result,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_fails_closed_and_recovers_without_corruption() {
    let disk = SmallDisk::mount("6m");
    let db_file = disk.path().join("sso.db");
    let mut opts = Options::new(Backend::Sqlite).without_launch_limits();
    opts.database_url = Some(format!("sqlite://{}", db_file.display()));
    let app = TestApp::start_with(opts).await;
    let blog = blog_with_editors(&app, &["sam@agency.test"]).await;
    let sam = app.browser();
    app.sign_in(&sam, "sam@agency.test").await;
    let launch = || app.launch(&sam, &blog);
    let mut sent = Vec::new();
    let res = launch().await;
    assert_eq!(res.status(), 303);
    sent.push(jti_of(res.headers()[LOCATION].to_str().unwrap()));

    // No room left: launch until the database cannot grow (the log may
    // still have room for a few).
    let filler = disk.fill();
    let mut refusal = None;
    for _ in 0..3000 {
        let res = launch().await;
        let location = res
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        match location {
            Some(loc) if res.status() == 303 => sent.push(jti_of(&loc)),
            _ => {
                refusal = Some((res.status(), res.text().await.unwrap()));
                break;
            }
        }
    }
    let (status, html) = refusal.expect("a full disk must stop launches");
    assert!(status.is_server_error(), "{status}");
    let text = page_text(&html);
    assert!(
        text.to_lowercase().contains("try again"),
        "a page that says what to do: {text}"
    );
    // The other pages answer too, with a page rather than a crash.
    let res = sam.get(app.at("/")).send().await.unwrap();
    assert!(
        res.status() == 200 || res.status().is_server_error(),
        "{}",
        res.status()
    );
    let health = reqwest::get(app.at("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the process carries on");

    // Room again: service comes back by itself.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = launch().await;
        if res.status() == 303 {
            sent.push(jti_of(res.headers()[LOCATION].to_str().unwrap()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "launches work again once there is room"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(integrity_check(&db_file).await, "ok");
    let records: Vec<String> = crate::support::audit_texts(&app.database_url)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("launch|"))
        .collect();
    for jti in &sent {
        assert!(
            records.iter().any(|r| r.contains(jti.as_str())),
            "the token {jti} left without its record"
        );
    }
    let verified = run_ok(app.command().args(["audit", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_read_only_file_system_stops_with_a_clear_error() {
    let disk = SmallDisk::mount("8m");
    let env = |c: &mut Command| {
        c.env(
            "SSO_DATABASE_URL",
            format!("sqlite://{}/sso.db", disk.path().display()),
        )
        .env("SSO_DATA_DIR", disk.path().join("data"))
        .env("SSO_ALLOWED_DOMAINS", "agency.test")
        .env("SSO_OIDC_CLIENT_ID", "dashboard")
        .env("SSO_OIDC_CLIENT_SECRET", "secret")
        .env("SSO_OIDC_ISSUER", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn");
    };
    // Made and migrated while writable.
    let mut c = crate::cli::agency_sso();
    env(&mut c);
    run_ok(c.args(["sites", "list"]));
    let db_file = disk.path().join("sso.db");
    let before = std::fs::read(&db_file).unwrap();
    disk.remount("ro");

    let mut c = crate::cli::agency_sso();
    env(&mut c);
    let out = c
        .args([
            "sites",
            "add",
            "--name",
            "Blog",
            "--client",
            "C",
            "--url",
            "https://blog.example",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.to_lowercase().contains("read"),
        "names the cause: {err}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = crate::cli::agency_sso();
    env(&mut c);
    let mut child = c
        .arg("serve")
        .env("SSO_BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve must stop, not hang");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(!status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.to_lowercase().contains("read"),
        "names the cause: {err}"
    );
    disk.remount("rw");
    assert_eq!(
        std::fs::read(&db_file).unwrap(),
        before,
        "the file is unchanged"
    );
    assert_eq!(integrity_check(&db_file).await, "ok");
}

//! Shared by the benchmarks: the machine's ceiling, measured in the same
//! run; and what the suite and the soak both run: the release
//! `agency-sso serve` as its own process, the local identity provider its
//! people sign in through, a fresh PostgreSQL database.

// Every benchmark compiles this module and uses its own part of it.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};

/// How long each measurement runs.
pub const SECONDS: u64 = 3;

/// RSA-2048 signatures per second by `openssl speed`.
pub fn openssl(multi: Option<u32>) -> Option<f64> {
    let mut c = Command::new("openssl");
    c.args(["speed", "-seconds", &SECONDS.to_string()]);
    if let Some(m) = multi {
        c.args(["-multi", &m.to_string()]);
    }
    let out = c.arg("rsa2048").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "rsa 2048 bits 0.000213s 0.000006s [more times] 4692.4 155806.1 ...":
    // the first figure after the times is signatures per second.
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("rsa") && l.contains("2048 bits"))?;
    let after_bits = line.split("bits").nth(1)?;
    after_bits
        .split_whitespace()
        .find(|t| !t.ends_with('s'))?
        .parse()
        .ok()
}

// ---------------------------------------------------------------- output

pub fn say(what: &str) {
    eprintln!("\x1b[1m==> {what}\x1b[0m");
}

pub fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// "Run <date> on <cores> cores (<cpu>), <memory> GiB; commit <hash>": the
/// start of a report, naming the machine and the code it measured.
pub fn run_header(root: &Path) -> String {
    let out = |c: &mut Command| {
        c.output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = out(Command::new("git").args([
        "-C",
        &root.display().to_string(),
        "rev-parse",
        "--short",
        "HEAD",
    ]));
    let dirty = !out(Command::new("git").args([
        "-C",
        &root.display().to_string(),
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_empty();
    let date = out(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    format!(
        "Run {date} on {cores} cores ({cpu}), {mem_gib:.0} GiB; commit {commit}{}",
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    )
}

/// Print a report and write it to `target/<dir>/latest.md`.
pub fn publish(root: &Path, dir: &str, text: &str) -> anyhow::Result<()> {
    println!("\n{text}");
    let path = root.join("target").join(dir);
    std::fs::create_dir_all(&path)?;
    std::fs::File::create(path.join("latest.md"))?.write_all(text.as_bytes())?;
    eprintln!("report written to target/{dir}/latest.md");
    Ok(())
}

// ---------------------------------------------------------------- processes

/// The release `agency-sso` under `root`, which `script` builds.
pub fn release_binary(root: &Path, script: &str) -> anyhow::Result<PathBuf> {
    let bin = root.join("target/release/agency-sso");
    ensure!(
        bin.exists(),
        "{} is missing: run {script}, which builds it",
        bin.display()
    );
    Ok(bin)
}

/// A child process that is stopped when dropped.
pub struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> anyhow::Result<Proc> {
        let out = std::fs::File::create(log)?;
        let child = cmd
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc { child, name })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first: the dashboard and node shut down cleanly.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node server built on `oidc-provider`, once its discovery document answers.
pub async fn oidc_node(
    name: &'static str,
    script: &Path,
    env: &[(&str, String)],
    base: &str,
    log: &Path,
) -> anyhow::Result<Proc> {
    let proc = Proc::spawn(
        name,
        Command::new("node")
            .arg(script)
            .envs(env.iter().map(|(k, v)| (k, v))),
        log,
    )?;
    wait_for(&format!("{base}/.well-known/openid-configuration"), name).await?;
    Ok(proc)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub async fn wait_for(url: &str, what: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not answer at {url} within 30 s")
}

/// A process's figure from `/proc/<pid>/status`, in KiB (`field` as
/// written there, e.g. `VmRSS:`).
pub fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| field.trim_end_matches(':').to_string())
}

// ---------------------------------------------------------------- the identity provider

/// The local identity provider (`end2end/idp/server.mjs`), sending people
/// back to `dashboard_url`.
pub struct Idp {
    pub proc: Proc,
    pub url: String,
    pub secret: String,
}

pub async fn start_idp(root: &Path, dashboard_url: &str, log: &Path) -> anyhow::Result<Idp> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let secret = format!("bench-{}", uuid::Uuid::new_v4());
    let proc = oidc_node(
        "the identity provider",
        &root.join("end2end/idp/server.mjs"),
        &[
            ("IDP_PORT", port.to_string()),
            ("IDP_CLIENT_SECRET", secret.clone()),
            (
                "IDP_REDIRECT_URIS",
                format!("{dashboard_url}/auth/callback"),
            ),
        ],
        &url,
        log,
    )
    .await?;
    Ok(Idp { proc, url, secret })
}

/// Through the identity provider, like a person at a browser; returns the session cookie.
pub async fn sign_in(base: &str, account: &str) -> anyhow::Result<String> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()?;
    let chooser = client.get(format!("{base}/auth/login")).send().await?;
    ensure!(
        chooser.status().is_success(),
        "sign-in: {}",
        chooser.status()
    );
    let login = format!("{}/login", chooser.url());
    let home = client
        .post(login)
        .form(&[("account", account)])
        .send()
        .await?;
    ensure!(
        home.status().is_success() && home.url().as_str().starts_with(base),
        "sign-in as {account} ended at {} ({})",
        home.url(),
        home.status()
    );
    use reqwest::cookie::CookieStore as _;
    let cookies = jar.cookies(&base.parse()?).context("no session cookie")?;
    cookies
        .to_str()?
        .split("; ")
        .find(|c| c.starts_with("agency-sso="))
        .map(String::from)
        .context("no agency-sso cookie")
}

// ---------------------------------------------------------------- the dashboard

/// `agency-sso serve` as its own process, and the environment it runs with
/// (for the command-line tool on the same database).
pub struct Dashboard {
    pub proc: Proc,
    pub env: Vec<(String, String)>,
    pub bin: PathBuf,
}

impl Dashboard {
    /// Start `bin serve` with `env`, logging to `log`; returns once `url` is ready.
    pub async fn start(
        name: &'static str,
        bin: &Path,
        env: Vec<(String, String)>,
        log: &Path,
        url: &str,
    ) -> anyhow::Result<Dashboard> {
        let proc = Proc::spawn(
            name,
            Command::new(bin)
                .arg("serve")
                .envs(env.iter().map(|(k, v)| (k, v))),
            log,
        )?;
        let dash = Dashboard {
            proc,
            env,
            bin: bin.to_path_buf(),
        };
        wait_for(&format!("{url}/readyz"), name).await?;
        Ok(dash)
    }

    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()?;
        ensure!(
            out.status.success(),
            "agency-sso {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into())
    }

    /// Highest resident set size of the serving process so far, in KiB.
    pub fn peak_rss_kb(&self) -> anyhow::Result<u64> {
        status_kb(self.proc.pid(), "VmHWM:")
    }

    /// Resident set size of the serving process now, in KiB.
    pub fn rss_kb(&self) -> anyhow::Result<u64> {
        status_kb(self.proc.pid(), "VmRSS:")
    }
}

/// The dashboard's environment: public at `public_url`, listening on
/// `port`, its data in `data`, people signed in by `idp`, a fresh master
/// key, the launch and sign-in limits off.
pub fn dashboard_env(
    root: &Path,
    public_url: &str,
    port: u16,
    database_url: &str,
    data: &Path,
    idp: &Idp,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let master = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let site = root.join("target/site");
    [
        ("SSO_PUBLIC_URL", public_url.to_string()),
        ("SSO_BIND", format!("127.0.0.1:{port}")),
        ("SSO_DATABASE_URL", database_url.to_string()),
        ("SSO_DATA_DIR", data.display().to_string()),
        ("SSO_OIDC_ISSUER", idp.url.clone()),
        ("SSO_OIDC_CLIENT_ID", "agency-sso-local".into()),
        ("SSO_OIDC_CLIENT_SECRET", idp.secret.clone()),
        (
            "SSO_OIDC_PROVIDER_NAME",
            "the local identity provider".into(),
        ),
        ("SSO_ALLOWED_DOMAINS", "agency.test".into()),
        ("SSO_ADMIN_EMAILS", "admin@agency.test".into()),
        ("SSO_MASTER_KEY", master),
        // The load comes from one address and a few people, far above what
        // any person clicks: the launch limits would refuse most of it.
        ("SSO_LAUNCH_RATE", "off".into()),
        ("SSO_LAUNCH_CLIENT_RATE", "off".into()),
        ("SSO_SIGN_IN_RATE", "off".into()),
        // A load balancer's address: the bogus sign-ins come "from" many.
        ("SSO_TRUSTED_PROXIES", "127.0.0.1".into()),
        ("LEPTOS_SITE_ROOT", site.display().to_string()),
        ("LEPTOS_OUTPUT_NAME", "agency-sso".into()),
        ("LEPTOS_SITE_PKG_DIR", "pkg".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// POST /launch as the site picker does, from the dashboard's own origin.
pub async fn post_launch(
    client: &reqwest::Client,
    base: &str,
    origin: &str,
    cookie: &str,
    site_id: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/launch"))
        .header("cookie", cookie)
        .header("origin", origin)
        .form(&[("site", site_id), ("path", "")])
        .send()
        .await
}

/// The token in a launch's `Location`.
pub fn launch_token(location: &str) -> anyhow::Result<String> {
    url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string())
        .with_context(|| format!("no token in {location}"))
}

/// Part `i` of a JWT (0: header, 1: claims), decoded.
pub fn jwt_part(token: &str, i: usize) -> anyhow::Result<serde_json::Value> {
    use base64::Engine as _;
    let part = token.split('.').nth(i).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
    Ok(serde_json::from_slice(&bytes)?)
}

// ---------------------------------------------------------------- PostgreSQL

/// A fresh database on the suite's PostgreSQL server (`TEST_PG_URL`, else
/// the local one); `drop_it` removes it.
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> anyhow::Result<PgDatabase> {
        use sqlx::Connection;
        let admin = std::env::var("TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut conn = sqlx::PgConnection::connect(&admin).await?;
        let name = format!("sso_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let mut url = url::Url::parse(&admin)?;
        url.set_path(&name);
        Ok(PgDatabase {
            admin,
            name,
            url: url.to_string(),
        })
    }

    pub async fn drop_it(&self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

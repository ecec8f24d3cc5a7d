//! The soak: ten minutes (`SOAK_SECONDS`) of mixed load on two release
//! `agency-sso serve` processes sharing one fresh PostgreSQL database, as
//! behind a load balancer (one public URL, one data folder and master
//! key), every request going to the other instance than the one before.
//!
//! Run it with `scripts/soak` (it builds the release server binary first;
//! no WebAssembly bundle is needed). People sign in through the local
//! identity provider like anyone else; the load, from this process with
//! keep-alive connections, is paced (not as fast as possible) so that the
//! latencies are those of a busy day rather than of a queue:
//!
//! - launches, about 200/s: sixteen browsers, each one person clicking
//!   its own sixteen sites in turn, one launch at a time;
//! - the staff home page, 20/s (Sam, 302 sites);
//! - the JWKS, 100/s, half of it revalidated with `If-None-Match`;
//! - admin edits, 2/s, through the console's server functions with the
//!   form's `Origin`: renaming a site, granting a role on it, revoking it.
//!
//! It fails unless every response is the expected one (`303`, `200`,
//! `304`) with no transport error; each `303` has exactly one launch record
//! and each record its `303` (compared jti by jti, none twice);
//! `agency-sso audit verify` passes; neither instance logs an error; and
//! each instance's resident memory over the last minute is within
//! [`GROWTH_FLOOR_KB`] or [`GROWTH_SHARE`] (whichever is larger) of its
//! median over the second minute. The report goes to standard output and
//! `target/soak/latest.md`, the instances' logs beside it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

mod support;
use support::{
    dashboard_env, free_port, jwt_part, launch_token, ms, post_launch, publish, release_binary,
    run_header, say, sign_in, start_idp, status_kb, Dashboard, PgDatabase,
};

/// Seconds of load unless `SOAK_SECONDS` says otherwise.
const DEFAULT_SECONDS: u64 = 600;
/// Filler sites beside the demo ones; Sam may enter each.
const EXTRA_SITES: usize = 300;
/// Launching browsers. Each owns its sites: no two launches of one person
/// on one site are ever in flight together, as with people at browsers.
const LAUNCHERS: usize = 16;
/// Sites each launching browser clicks in turn.
const SITES_PER_LAUNCHER: usize = 16;
/// Launches per second, per browser (16 × 12.5 = 200/s).
const LAUNCH_RATE: f64 = 12.5;
/// Browsers showing Sam's home page, and how often each (4 × 5 = 20/s).
const VIEWERS: usize = 4;
const VIEW_RATE: f64 = 5.0;
/// Key set fetchers (half revalidating), and how often each (4 × 25 = 100/s).
const FETCHERS: usize = 4;
const FETCH_RATE: f64 = 25.0;
/// Admins editing, and how often each (2 × 1 = 2/s).
const ADMINS: usize = 2;
const ADMIN_RATE: f64 = 1.0;
/// Sites each admin edits in turn (none of them launched into).
const ADMIN_SITES: usize = 4;
/// Who the admins grant a role to and take it back from.
const GRANTEE: &str = "nina@agency.test";
/// How often each instance's resident memory is read.
const SAMPLE: Duration = Duration::from_secs(2);
/// Memory growth tolerated from the second minute to the last. After the
/// first minute the connection pools, the allocator's per-thread arenas and
/// the page caches are warm; what moves after that by a few MB is the
/// allocator's fragmentation, which comes and goes. A leak of one record,
/// session or request body per request would not: at the default load each
/// instance serves about 75,000 requests between those minutes, so 16 MB
/// is about 220 bytes per request (the report prints this resolution).
const GROWTH_FLOOR_KB: u64 = 16 * 1024;
/// ...or this share of the second minute's median, if that is larger.
const GROWTH_SHARE: f64 = 0.20;
/// The demo site's address (the tokens' audience; nothing answers there).
const DEMO: &str = "https://demo.soak.example";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = release_binary(&root, "scripts/soak")?;
    let seconds = match std::env::var("SOAK_SECONDS") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .with_context(|| format!("SOAK_SECONDS={v:?} is not a number of seconds"))?,
        Err(_) => DEFAULT_SECONDS,
    };
    ensure!(
        seconds >= 40,
        "SOAK_SECONDS must be at least 40: the memory check compares two stretches of the run"
    );
    let out = root.join("target/soak");
    std::fs::create_dir_all(&out)?;
    let tmp = tempfile::tempdir()?;
    say("a fresh PostgreSQL database");
    let pg = PgDatabase::create().await?;
    let outcome = soak(&root, &bin, tmp.path(), &out, &pg.url, seconds).await;
    pg.drop_it().await;
    outcome
}

async fn soak(
    root: &Path,
    bin: &Path,
    data: &Path,
    out: &Path,
    database_url: &str,
    seconds: u64,
) -> anyhow::Result<()> {
    say("the identity provider and two agency-sso instances on one database");
    let (port_a, port_b) = (free_port()?, free_port()?);
    let url_a = format!("http://127.0.0.1:{port_a}");
    let url_b = format!("http://127.0.0.1:{port_b}");
    // The public URL is A's address: the provider sends people back there,
    // and every state-changing request carries it as its Origin, whichever
    // instance it goes to (as behind a load balancer).
    let idp = start_idp(root, &url_a, &out.join("idp.log")).await?;
    let mut env_a = dashboard_env(root, &url_a, port_a, database_url, data, &idp);
    env_a.extend(
        [
            // Both instances re-read the key ring every second and sign
            // audit checkpoints every minute, as in tests/it/instances.rs:
            // more of what two instances share happens during the run.
            ("SSO_KEY_REFRESH_SECONDS", "1"),
            ("SSO_AUDIT_CHECKPOINT_MINUTES", "1"),
            // One JSON object per line: the log check reads the level.
            ("SSO_LOG_FORMAT", "json"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut env_b = env_a.clone();
    for (k, v) in env_b.iter_mut() {
        if k.as_str() == "SSO_BIND" {
            *v = format!("127.0.0.1:{port_b}");
        }
    }
    let log_a = out.join("agency-sso-a.log");
    let log_b = out.join("agency-sso-b.log");
    // One after the other: the first creates the schema and the first key.
    let a = Dashboard::start("agency-sso A", bin, env_a, &log_a, &url_a).await?;
    let b = Dashboard::start("agency-sso B", bin, env_b, &log_b, &url_b).await?;

    say("sites, grants and sessions");
    a.cli(&[
        "demo",
        "seed",
        "--site-url",
        DEMO,
        "--shop-secret",
        "soak-shop-secret-0123456789abcdef0123456",
        "--extra-sites",
        &EXTRA_SITES.to_string(),
    ])?;
    let db =
        agency_sso::store::Db::connect(database_url, agency_sso::config::DbKind::Postgres).await?;
    let extras = filler_sites(&db).await?;
    let launched_sites = LAUNCHERS * SITES_PER_LAUNCHER;
    ensure!(
        extras.len() == EXTRA_SITES && launched_sites + ADMINS * ADMIN_SITES <= EXTRA_SITES,
        "{} filler sites, {EXTRA_SITES} expected",
        extras.len()
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        // Below the server's idle keep-alive bound (SSO_CLIENT_TIMEOUT_SECONDS,
        // 10 s by default), as load balancers do: a connection is never
        // reused just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(5))
        .user_agent("agency-sso soak")
        .build()?;
    let ctx = Ctx {
        client,
        origin: url_a.clone(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;

    let mut workers: Vec<(Kind, Worker, f64)> = Vec::new();
    for w in 0..LAUNCHERS {
        let sites: Vec<(String, String)> = extras[..launched_sites]
            .iter()
            .skip(w)
            .step_by(LAUNCHERS)
            .cloned()
            .collect();
        // Sam may enter every filler site; Sasha is given hers here.
        let (account, email) = if w % 2 == 0 {
            ("sam-staff", "sam@agency.test")
        } else {
            ("sasha-staff", "sasha@agency.test")
        };
        if w % 2 == 1 {
            for (id, _) in &sites {
                agency_sso::service::access::grant(
                    &db,
                    &[],
                    email,
                    id,
                    "editor",
                    &agency_sso::domain::audit::Actor::command_line(),
                    now,
                )
                .await?;
            }
        }
        let cookie = sign_in(&url_a, account).await?;
        workers.push((
            Kind::Launch,
            Worker::Launcher {
                cookie,
                sites,
                next: 0,
            },
            LAUNCH_RATE,
        ));
    }
    for _ in 0..VIEWERS {
        let cookie = sign_in(&url_a, "sam-staff").await?;
        workers.push((Kind::Home, Worker::Viewer { cookie }, VIEW_RATE));
    }
    let etag = jwks_etag(&ctx.client, &url_a).await?;
    let etag_b = jwks_etag(&ctx.client, &url_b).await?;
    ensure!(
        etag == etag_b,
        "the instances serve the JWKS with different ETags: {etag} and {etag_b}"
    );
    for i in 0..FETCHERS {
        let worker = Worker::Fetcher {
            etag: etag.clone(),
            conditional: i % 2 == 1,
        };
        workers.push((Kind::Jwks, worker, FETCH_RATE));
    }
    for i in 0..ADMINS {
        let cookie = sign_in(&url_a, "ada-admin").await?;
        let first = launched_sites + i * ADMIN_SITES;
        let mut sites = Vec::new();
        for (id, _) in &extras[first..first + ADMIN_SITES] {
            let detail = admin_call(&ctx, &url_a, &cookie, "admin_site", &[("id", id.clone())])
                .await
                .map_err(|e| anyhow::anyhow!("reading a site for the admins: {e}"))?;
            let settings = detail["site"].clone();
            sites.push(EditedSite {
                id: id.clone(),
                name: settings["name"].as_str().unwrap_or("site").to_string(),
                settings,
            });
        }
        workers.push((
            Kind::Admin,
            Worker::Admin {
                cookie,
                sites,
                step: 0,
            },
            ADMIN_RATE,
        ));
    }

    // Every worker once on each instance: a mistake in the set-up shows now,
    // not after ten minutes of errors.
    let mut warm_up = Tally::default();
    for (kind, worker, _) in workers.iter_mut() {
        for base in [url_a.as_str(), url_b.as_str()] {
            worker
                .once(&ctx, base, &mut warm_up)
                .await
                .map_err(|e| anyhow::anyhow!("first {} on {base}: {e}", kind.name()))?;
        }
    }
    let (before, _) = agency_sso::store::launches::count(&db).await?;
    let before_jtis = launch_jtis(&db).await?;

    say(&format!(
        "{seconds} s of mixed load on both instances (progress each minute)"
    ));
    let started = Instant::now();
    let run = Arc::new(Run {
        ctx,
        bases: [url_a.clone(), url_b.clone()],
        live: Live::default(),
        started,
        deadline: started + Duration::from_secs(seconds),
    });
    let sampler = tokio::spawn(sample_memory(run.clone(), [a.proc.pid(), b.proc.pid()]));
    let mut tasks = Vec::new();
    for (i, (kind, worker, rate)) in workers.into_iter().enumerate() {
        tasks.push((
            kind,
            tokio::spawn(drive(run.clone(), kind, worker, rate, i)),
        ));
    }
    let mut totals: [Tally; 4] = Default::default();
    for (kind, task) in tasks {
        totals[kind as usize].merge(task.await?);
    }
    let memory = sampler.await?;
    let elapsed = started.elapsed().as_secs_f64();

    say("checking the records, the audit chain and the logs");
    let (after, distinct) = agency_sso::store::launches::count(&db).await?;
    let recorded: HashSet<String> = launch_jtis(&db)
        .await?
        .difference(&before_jtis)
        .cloned()
        .collect();
    db.pool.close().await;
    let launches = &totals[Kind::Launch as usize];
    let seen: HashSet<&str> = launches.jtis.iter().map(String::as_str).collect();
    let records = Records {
        responses: launches.launched,
        records: after - before,
        duplicated: (after - distinct) + (launches.jtis.len() - seen.len()) as i64,
        lost: seen.iter().filter(|j| !recorded.contains(**j)).count(),
        unanswered: recorded
            .iter()
            .filter(|j| !seen.contains(j.as_str()))
            .count(),
    };
    let verified = a.cli(&["audit", "verify"]);
    drop(a);
    drop(b);
    drop(idp);
    let logs = [scan_log(&log_a)?, scan_log(&log_b)?];

    let report = Report {
        header: format!("{}; command `scripts/soak`.", run_header(root)),
        seconds: elapsed,
        totals,
        records,
        verified,
        logs,
        memory,
    };
    report.finish(root)
}

/// The filler sites `demo seed` made, `(id, url)`, in their order.
async fn filler_sites(db: &agency_sso::store::Db) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query_as::<_, (String, String)>(
        "SELECT id, url FROM sites WHERE url LIKE 'https://site-%'",
    )
    .fetch_all(&db.pool)
    .await?;
    // https://site-0001.client-001.example: numbered from 1.
    let mut numbered: Vec<(u32, String, String)> = rows
        .into_iter()
        .filter_map(|(id, url)| {
            let n = url
                .strip_prefix("https://site-")?
                .get(..4)?
                .parse::<u32>()
                .ok()?;
            Some((n, id, url))
        })
        .collect();
    numbered.sort();
    Ok(numbered.into_iter().map(|(_, id, url)| (id, url)).collect())
}

/// The jti of every launch record.
async fn launch_jtis(db: &agency_sso::store::Db) -> anyhow::Result<HashSet<String>> {
    let rows: Vec<Option<String>> = sqlx::query_scalar("SELECT jti FROM audit_log WHERE kind = $1")
        .bind(agency_sso::domain::audit::kind::LAUNCH)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().flatten().collect())
}

async fn jwks_etag(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let res = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await?;
    ensure!(res.status() == 200, "JWKS at {base}: {}", res.status());
    Ok(res
        .headers()
        .get("etag")
        .context("the JWKS has no ETag")?
        .to_str()?
        .to_string())
}

// ---------------------------------------------------------------- the load

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Launch = 0,
    Home = 1,
    Jwks = 2,
    Admin = 3,
}

const KINDS: [Kind; 4] = [Kind::Launch, Kind::Home, Kind::Jwks, Kind::Admin];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Launch => "launch",
            Kind::Home => "home page view",
            Kind::Jwks => "JWKS fetch",
            Kind::Admin => "admin edit",
        }
    }

    fn row(self) -> &'static str {
        match self {
            Kind::Launch => "launches (`POST /launch`, 303)",
            Kind::Home => "staff home page (`GET /`, 200)",
            Kind::Jwks => "JWKS (200; 304 with `If-None-Match`)",
            Kind::Admin => "admin edits (server functions, 200)",
        }
    }

    /// Requests per second asked for, all workers of the kind together.
    fn asked(self) -> f64 {
        match self {
            Kind::Launch => LAUNCHERS as f64 * LAUNCH_RATE,
            Kind::Home => VIEWERS as f64 * VIEW_RATE,
            Kind::Jwks => FETCHERS as f64 * FETCH_RATE,
            Kind::Admin => ADMINS as f64 * ADMIN_RATE,
        }
    }
}

/// What every worker shares: the HTTP client (keep-alive) and the public origin.
struct Ctx {
    client: reqwest::Client,
    origin: String,
}

/// The running soak.
struct Run {
    ctx: Ctx,
    /// The two instances; each worker alternates between them.
    bases: [String; 2],
    live: Live,
    started: Instant,
    deadline: Instant,
}

/// Counts so far, for the progress lines.
#[derive(Default)]
struct Live {
    done: [AtomicU64; 4],
    failed: [AtomicU64; 4],
}

/// What one worker (or, merged, one kind) saw.
#[derive(Default)]
struct Tally {
    /// Latency of each good response, ms (from sending to the body's end).
    ms: Vec<f64>,
    errors: u64,
    /// The first few errors, for the report.
    first_errors: Vec<String>,
    /// Launches: 303s received, and the jti of each token received.
    launched: u64,
    jtis: Vec<String>,
    /// JWKS: 304s received.
    not_modified: u64,
}

impl Tally {
    fn fail(&mut self, e: String) {
        self.errors += 1;
        if self.first_errors.len() < 5 {
            self.first_errors.push(e);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ms.extend(other.ms);
        self.errors += other.errors;
        for e in other.first_errors {
            if self.first_errors.len() < 5 {
                self.first_errors.push(e);
            }
        }
        self.launched += other.launched;
        self.jtis.extend(other.jtis);
        self.not_modified += other.not_modified;
    }
}

/// A site an admin edits, as the edit form last showed it.
struct EditedSite {
    id: String,
    name: String,
    /// The site's settings as `admin_site` or the last save answered.
    settings: serde_json::Value,
}

/// One simulated client.
enum Worker {
    /// A person at a browser clicking their sites in turn.
    Launcher {
        cookie: String,
        /// `(id, url)`
        sites: Vec<(String, String)>,
        next: usize,
    },
    /// Sam opening the dashboard.
    Viewer { cookie: String },
    /// A client site fetching the key set, revalidating or not.
    Fetcher { etag: String, conditional: bool },
    /// An admin renaming each of their sites, then granting a role on it
    /// and revoking it.
    Admin {
        cookie: String,
        sites: Vec<EditedSite>,
        step: usize,
    },
}

impl Worker {
    /// One request to `base`, checked: Ok when it got the expected answer.
    async fn once(&mut self, ctx: &Ctx, base: &str, tally: &mut Tally) -> Result<(), String> {
        match self {
            Worker::Launcher {
                cookie,
                sites,
                next,
            } => {
                let (id, url) = &sites[*next % sites.len()];
                *next += 1;
                let res = post_launch(&ctx.client, base, &ctx.origin, cookie.as_str(), id)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = res.status().as_u16();
                let location = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                let body = res.bytes().await.map_err(|e| e.to_string())?;
                if status != 303 {
                    return Err(format!(
                        "launch answered {status}: {}",
                        excerpt(&String::from_utf8_lossy(&body))
                    ));
                }
                tally.launched += 1;
                let location = location.ok_or("a 303 without a Location")?;
                let jti = token_jti(&location, url).map_err(|e| format!("{e:#}"))?;
                tally.jtis.push(jti);
                Ok(())
            }
            Worker::Viewer { cookie } => {
                let res = ctx
                    .client
                    .get(format!("{base}/"))
                    .header("cookie", cookie.as_str())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = res.status().as_u16();
                let page = res.text().await.map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!("the home page answered {status}"));
                }
                // "Showing 60 of 302 sites": Sam's page, all of it.
                let count = format!("of {} sites", EXTRA_SITES + 2);
                if !page.contains(&count) {
                    return Err(format!("the home page does not say {count:?}"));
                }
                Ok(())
            }
            Worker::Fetcher { etag, conditional } => {
                let mut req = ctx.client.get(format!("{base}/.well-known/jwks.json"));
                if *conditional {
                    req = req.header("if-none-match", etag.as_str());
                }
                let res = req.send().await.map_err(|e| e.to_string())?;
                let status = res.status().as_u16();
                let tag = res
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = res.bytes().await.map_err(|e| e.to_string())?;
                match (status, *conditional) {
                    (304, true) => tally.not_modified += 1,
                    (200, false) => {
                        let keys: serde_json::Value = serde_json::from_slice(&body)
                            .map_err(|e| format!("the JWKS is not JSON: {e}"))?;
                        if keys["keys"].as_array().is_none_or(|k| k.is_empty()) {
                            return Err("a JWKS without keys".into());
                        }
                        // The key ring does not change during the run.
                        if tag != *etag {
                            return Err(format!("the JWKS ETag moved from {etag} to {tag}"));
                        }
                    }
                    (s, true) => return Err(format!("JWKS with If-None-Match answered {s}")),
                    (s, false) => return Err(format!("JWKS answered {s}")),
                }
                Ok(())
            }
            Worker::Admin {
                cookie,
                sites,
                step,
            } => {
                let k = *step;
                *step += 1;
                let n = sites.len();
                let site = &mut sites[(k / 3) % n];
                match k % 3 {
                    0 => {
                        let name = format!("{} (edit {})", site.name, k / 3 + 1);
                        let form = site_form(&site.settings, &name);
                        let saved =
                            admin_call(ctx, base, cookie.as_str(), "admin_save_site", &form)
                                .await?;
                        let was = site.settings["version"].as_i64().unwrap_or(0);
                        let now = saved["version"].as_i64().unwrap_or(0);
                        if saved["name"] != name.as_str() || now <= was {
                            return Err(format!(
                                "admin_save_site from version {was} answered {saved}"
                            ));
                        }
                        site.settings = saved;
                    }
                    1 => {
                        admin_call(
                            ctx,
                            base,
                            cookie.as_str(),
                            "admin_grant",
                            &[
                                ("site", site.id.clone()),
                                ("email", GRANTEE.to_string()),
                                ("role", "editor".to_string()),
                                ("duration", String::new()),
                                ("reason", "soak".to_string()),
                            ],
                        )
                        .await?;
                    }
                    _ => {
                        admin_call(
                            ctx,
                            base,
                            cookie.as_str(),
                            "admin_revoke_grant",
                            &[("site", site.id.clone()), ("email", GRANTEE.to_string())],
                        )
                        .await?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The jti of the token in a launch's Location, checking it is for `site_url`.
fn token_jti(location: &str, site_url: &str) -> anyhow::Result<String> {
    let token = launch_token(location)?;
    let claims = jwt_part(&token, 1)?;
    ensure!(
        claims["aud"] == site_url,
        "a token for {} from a launch of {site_url}",
        claims["aud"]
    );
    claims["jti"]
        .as_str()
        .map(String::from)
        .context("a token without a jti")
}

/// The site edit form's fields, from the site's settings, under a new name.
fn site_form(s: &serde_json::Value, name: &str) -> Vec<(&'static str, String)> {
    let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
    let roles = s["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut form = vec![
        ("id", text("id")),
        ("version", s["version"].as_i64().unwrap_or(0).to_string()),
        ("name", name.to_string()),
        ("client", text("client")),
        ("url", text("url")),
        ("profile", text("profile")),
        ("login_template", text("login_template")),
        ("username_claim", text("username_claim")),
        ("signing", text("signing")),
        ("secret", String::new()),
        ("roles", roles),
        (
            "token_lifetime",
            s["token_lifetime"].as_i64().unwrap_or(60).to_string(),
        ),
        ("notes", text("notes")),
    ];
    if s["enabled"].as_bool().unwrap_or(true) {
        form.push(("enabled", "on".to_string()));
    }
    form
}

/// Call an admin server function as the console's form does: a
/// same-origin POST from an admin page. The JSON answer of a 200.
async fn admin_call(
    ctx: &Ctx,
    base: &str,
    cookie: &str,
    function: &str,
    form: &[(&str, String)],
) -> Result<serde_json::Value, String> {
    let res = ctx
        .client
        .post(format!("{base}/api/{function}"))
        .header("cookie", cookie)
        .header("origin", ctx.origin.as_str())
        .header("referer", format!("{}/admin/sites", ctx.origin))
        .form(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{function} answered {status}: {}", excerpt(&text)));
    }
    serde_json::from_str(&text)
        .map_err(|e| format!("{function}: not JSON ({e}): {}", excerpt(&text)))
}

fn excerpt(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Run one worker at `rate` requests per second until the deadline,
/// alternating between the instances.
async fn drive(run: Arc<Run>, kind: Kind, mut worker: Worker, rate: f64, i: usize) -> Tally {
    let mut tally = Tally::default();
    let period = Duration::from_secs_f64(1.0 / rate);
    // Spread the workers' first requests over a period.
    let offset = period.mul_f64((i as f64 * 0.618_034).fract());
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = i;
    loop {
        ticks.tick().await;
        if Instant::now() >= run.deadline {
            break;
        }
        let base = run.bases[n % 2].as_str();
        n += 1;
        let sent = Instant::now();
        let outcome = worker.once(&run.ctx, base, &mut tally).await;
        run.live.done[kind as usize].fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => tally.ms.push(sent.elapsed().as_secs_f64() * 1000.0),
            Err(e) => {
                run.live.failed[kind as usize].fetch_add(1, Ordering::Relaxed);
                let which = if n % 2 == 1 { "A" } else { "B" };
                tally.fail(format!(
                    "{} on {which} at {:.0} s: {e}",
                    kind.name(),
                    run.started.elapsed().as_secs_f64()
                ));
            }
        }
    }
    tally
}

// ---------------------------------------------------------------- memory

/// Each instance's resident set size, sampled during the run.
struct Memory {
    /// Seconds since the start, and KiB for A and B.
    samples: Vec<(f64, [u64; 2])>,
    /// An instance whose memory could no longer be read (it had exited).
    gone: Option<String>,
}

/// Read both instances' RSS every [`SAMPLE`] until the deadline, and print
/// progress each minute.
async fn sample_memory(run: Arc<Run>, pids: [u32; 2]) -> Memory {
    let mut memory = Memory {
        samples: Vec::new(),
        gone: None,
    };
    let mut ticks = tokio::time::interval(SAMPLE);
    let mut next_note = 60.0;
    loop {
        ticks.tick().await;
        let t = run.started.elapsed().as_secs_f64();
        let read = |i: usize| status_kb(pids[i], "VmRSS:");
        match (read(0), read(1)) {
            (Ok(a), Ok(b)) => memory.samples.push((t, [a, b])),
            (Err(e), _) | (_, Err(e)) => {
                memory.gone = Some(format!("at {t:.0} s an instance had exited ({e:#})"));
                eprintln!("{}", memory.gone.as_deref().unwrap_or_default());
                return memory;
            }
        }
        if t >= next_note {
            next_note += 60.0;
            let counts: Vec<String> = KINDS
                .iter()
                .map(|k| {
                    format!(
                        "{} {} ({} failed)",
                        k.name(),
                        run.live.done[*k as usize].load(Ordering::Relaxed),
                        run.live.failed[*k as usize].load(Ordering::Relaxed)
                    )
                })
                .collect();
            let rss = memory.samples.last().map_or([0, 0], |s| s.1);
            eprintln!(
                "{t:>5.0} s: {}; RSS A {}, B {}",
                counts.join(", "),
                mb(rss[0]),
                mb(rss[1])
            );
        }
        if Instant::now() >= run.deadline {
            return memory;
        }
    }
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// One instance's memory over the run.
struct Growth {
    first: u64,
    base: u64,
    end: u64,
    max: u64,
    limit: u64,
}

impl Growth {
    /// The second stretch of the run (the second minute of ten) against the
    /// last one; a stretch is a minute, or a quarter of a shorter run.
    fn of(memory: &Memory, i: usize, seconds: f64) -> Option<Growth> {
        let stretch = (seconds / 4.0).min(60.0);
        let during = |from: f64, to: f64| -> Vec<u64> {
            memory
                .samples
                .iter()
                .filter(|(t, _)| *t >= from && *t < to)
                .map(|(_, kb)| kb[i])
                .collect()
        };
        let base = median(during(stretch, 2.0 * stretch))?;
        let end = median(during(seconds - stretch, f64::INFINITY))?;
        Some(Growth {
            first: memory.samples.first()?.1[i],
            base,
            end,
            max: memory.samples.iter().map(|(_, kb)| kb[i]).max()?,
            limit: GROWTH_FLOOR_KB.max((base as f64 * GROWTH_SHARE) as u64),
        })
    }

    fn met(&self) -> bool {
        self.end <= self.base + self.limit
    }
}

/// The median RSS of each minute (at most twenty stretches), for the report.
fn series(memory: &Memory, i: usize, seconds: f64) -> String {
    let stretch = (seconds / 20.0).max(60.0);
    let mut out = Vec::new();
    let mut from = 0.0;
    while from < seconds {
        let kb: Vec<u64> = memory
            .samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < from + stretch)
            .map(|(_, kb)| kb[i])
            .collect();
        if let Some(m) = median(kb) {
            out.push(format!("{:.1}", m as f64 / 1024.0));
        }
        from += stretch;
    }
    format!("{} MB (medians of {stretch:.0} s)", out.join(" → "))
}

// ---------------------------------------------------------------- logs

/// What an instance logged at error and warning level.
struct LogScan {
    errors: u64,
    warnings: u64,
    first: Vec<String>,
}

fn scan_log(path: &Path) -> anyhow::Result<LogScan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut scan = LogScan {
        errors: 0,
        warnings: 0,
        first: Vec::new(),
    };
    for line in text.lines() {
        // Most lines are requests at info level: only parse the others.
        if !(line.contains("ERROR") || line.contains("WARN") || line.contains("panicked")) {
            continue;
        }
        let level = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["level"].as_str().map(String::from));
        let error = match level.as_deref() {
            Some("ERROR") => true,
            Some("WARN") => {
                scan.warnings += 1;
                false
            }
            Some(_) => false,
            // Not a log record: a panic's message is the one that matters.
            None => line.contains("panicked"),
        };
        if error {
            scan.errors += 1;
            if scan.first.len() < 5 {
                scan.first.push(excerpt(line));
            }
        }
    }
    Ok(scan)
}

// ---------------------------------------------------------------- report

/// Launch records against the 303s the load received.
struct Records {
    responses: u64,
    records: i64,
    /// Records sharing a jti, plus tokens received twice.
    duplicated: i64,
    /// 303s whose jti has no record.
    lost: usize,
    /// Records whose jti no 303 brought.
    unanswered: usize,
}

impl Records {
    fn met(&self) -> bool {
        self.records == self.responses as i64
            && self.duplicated == 0
            && self.lost == 0
            && self.unanswered == 0
    }
}

struct Report {
    header: String,
    seconds: f64,
    totals: [Tally; 4],
    records: Records,
    verified: anyhow::Result<String>,
    logs: [LogScan; 2],
    memory: Memory,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

impl Report {
    fn finish(mut self, root: &Path) -> anyhow::Result<()> {
        let mut text = format!(
            "{}\n\nSoak: {:.0} s of mixed load on two `agency-sso serve` processes sharing one PostgreSQL database, each request to the other instance than the last.\n\n",
            self.header, self.seconds
        );
        text.push_str("| requests | responses | rate (asked) | errors | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        let mut failures = Vec::new();
        let (mut responses, mut errors) = (0u64, 0u64);
        for kind in KINDS {
            let t = &mut self.totals[kind as usize];
            t.ms.sort_by(f64::total_cmp);
            let n = t.ms.len() as u64 + t.errors;
            responses += n;
            errors += t.errors;
            let extra = if kind == Kind::Jwks {
                format!(" ({} × 304)", t.not_modified)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "| {} | {n}{extra} | {:.1}/s ({:.0}/s) | {} | {} | {} | {} |\n",
                kind.row(),
                n as f64 / self.seconds,
                kind.asked(),
                t.errors,
                ms(percentile(&t.ms, 0.50)),
                ms(percentile(&t.ms, 0.99)),
                ms(t.ms.last().copied().unwrap_or(0.0)),
            ));
            if n == 0 {
                failures.push(format!("no {} was made", kind.name()));
            }
        }

        text.push_str("\n| check | measured | target | |\n| --- | --- | --- | --- |\n");
        let mut check = |what: &str, measured: String, target: &str, met: bool| {
            text.push_str(&format!(
                "| {what} | {measured} | {target} | {} |\n",
                verdict(met)
            ));
            if !met {
                failures.push(what.to_string());
            }
        };
        check(
            "errors",
            format!("{errors} of {responses} requests"),
            "none: every answer 303, 200 or 304, no transport error",
            errors == 0,
        );
        let r = &self.records;
        check(
            "launch records",
            format!(
                "{} records for {} 303s; {} lost, {} without a 303, {} duplicated",
                r.records, r.responses, r.lost, r.unanswered, r.duplicated
            ),
            "one record per 303, jti by jti",
            r.met(),
        );
        let (verified, met) = match &self.verified {
            Ok(out) => (out.trim().to_string(), out.contains("audit log verified")),
            Err(e) => (format!("{e:#}"), false),
        };
        check(
            "audit chain",
            format!("`agency-sso audit verify`: {}", excerpt(&verified)),
            "verifies",
            met,
        );
        for (name, log) in ["A", "B"].iter().zip(&self.logs) {
            check(
                &format!("log of instance {name}"),
                format!("{} errors, {} warnings", log.errors, log.warnings),
                "no error",
                log.errors == 0,
            );
        }
        for (i, name) in ["A", "B"].iter().enumerate() {
            let what = format!("memory of instance {name}");
            match Growth::of(&self.memory, i, self.seconds) {
                Some(g) => {
                    let grown = g.end as i64 - g.base as i64;
                    // Requests this instance served from the middle of the
                    // first stretch compared to the middle of the last.
                    let stretch = (self.seconds / 4.0).min(60.0);
                    let served =
                        responses as f64 / 2.0 * (self.seconds - 2.0 * stretch) / self.seconds;
                    let per_request = grown.max(0) as f64 * 1024.0 / served.max(1.0);
                    check(
                        &what,
                        format!(
                            "RSS {} at the start, {} at most; median {} after warm-up, {} at the end ({:+.1} MB, {per_request:.0} bytes per request served in between)",
                            mb(g.first),
                            mb(g.max),
                            mb(g.base),
                            mb(g.end),
                            grown as f64 / 1024.0
                        ),
                        &format!("grows at most {}", mb(g.limit)),
                        g.met() && self.memory.gone.is_none(),
                    );
                }
                None => check(
                    &what,
                    self.memory
                        .gone
                        .clone()
                        .unwrap_or_else(|| "too few samples".into()),
                    "sampled to the end",
                    false,
                ),
            }
        }

        text.push('\n');
        for (i, name) in ["A", "B"].iter().enumerate() {
            text.push_str(&format!(
                "- RSS of {name}: {}\n",
                series(&self.memory, i, self.seconds)
            ));
        }
        text.push_str(&format!(
            "- Memory target: the median over the last {0:.0} s at most {1} or {2:.0}% (whichever is larger) above the median over seconds {0:.0} to {3:.0}.\n",
            (self.seconds / 4.0).min(60.0),
            mb(GROWTH_FLOOR_KB),
            GROWTH_SHARE * 100.0,
            2.0 * (self.seconds / 4.0).min(60.0),
        ));
        for kind in KINDS {
            for e in &self.totals[kind as usize].first_errors {
                text.push_str(&format!("- error: {e}\n"));
            }
        }
        for (name, log) in ["A", "B"].iter().zip(&self.logs) {
            for line in &log.first {
                text.push_str(&format!("- logged by {name}: `{line}`\n"));
            }
        }
        text.push_str("- Logs: `target/soak/agency-sso-a.log`, `target/soak/agency-sso-b.log`, `target/soak/idp.log`.\n");

        publish(root, "soak", &text)?;
        if !failures.is_empty() {
            bail!("the soak failed: {}", failures.join("; "));
        }
        Ok(())
    }
}

//! The benchmark suite: every figure beside a ceiling or a peer measured in
//! the same run, on this machine, printed as one table.
//!
//! Run it with `scripts/bench` (it builds the release binary and the
//! precompressed WebAssembly bundle first). It starts the release
//! `agency-sso serve` as its own process, on SQLite and then on PostgreSQL,
//! beside the local identity provider, and drives it from other processes:
//! `wrk` (Debian) for HTTP load with keep-alive, Chromium (Playwright) for
//! the filter. Its users sign in through the identity provider like anyone
//! else (the normal session path); no session is made in the store.
//!
//! Ceilings and peers, same run: `openssl speed -multi 2 rsa2048`; Debian's
//! nginx serving the same JWKS bytes from a file; the npm `oidc-provider`
//! minting RS256 JWT access tokens (client credentials with a resource
//! indicator) on node's cluster module, one worker per core.
//!
//! The report goes to standard output and to `target/bench/latest.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

mod support;
use support::{
    dashboard_env, free_port, jwt_part, launch_token, ms, oidc_node, post_launch, publish,
    release_binary, run_header, say, sign_in, start_idp, wait_for, Dashboard, PgDatabase, Proc,
};

/// Seconds of each throughput measurement.
const RUN: u64 = 10;
/// Seconds of each short measurement (JWKS, home page).
const SHORT: u64 = 5;
/// Sessions driving launches, signed in through the provider.
const SESSIONS: usize = 16;
/// Sites on the staff home page.
const HOME_SITES: usize = 5000;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = release_binary(&root, "scripts/bench")?;
    let tmp = tempfile::tempdir()?;
    let started = Instant::now();
    let mut report = Report::new(&root)?;

    say("ceiling: openssl speed -multi 2 rsa2048");
    let ceiling = openssl_speed(2)?;
    report.note(format!(
        "openssl speed -seconds {RUN} -multi 2 rsa2048: {ceiling:.0} sign/s"
    ));

    say("peer: oidc-provider, client credentials, JWT access tokens");
    let peer = peer_tokens(&root, tmp.path()).await?;
    eprintln!("peer: {:.0} tokens/s", peer.rps);

    say("agency-sso on SQLite");
    let sqlite_url = format!("sqlite://{}/sqlite/agency-sso.db", tmp.path().display());
    let on_sqlite = measure_dashboard(&root, &bin, tmp.path(), "sqlite", &sqlite_url, true).await?;

    say("agency-sso on PostgreSQL");
    let pg = PgDatabase::create().await?;
    let on_pg = measure_dashboard(&root, &bin, tmp.path(), "pg", &pg.url, false).await;
    pg.drop_it().await;
    let on_pg = on_pg?;

    say("nginx serving the same JWKS bytes");
    let jwks = on_sqlite.jwks.as_ref().context("JWKS measured on SQLite")?;
    let nginx = nginx_jwks(tmp.path(), &jwks.body).await?;

    say("hydrate bundle");
    let bundle = &on_sqlite.bundle;

    // The table.
    let pct = |a: f64, b: f64| 100.0 * a / b;
    let sq = &on_sqlite.launches;
    let pq = &on_pg.launches;
    for (db, l, target) in [("SQLite", sq, 60.0), ("PostgreSQL", pq, 50.0)] {
        report.row(
            &format!("launches/s, {db}"),
            format!(
                "{:.0}/s ({} responses, {} refused or failed, {} records)",
                l.max.rps, l.max.requests, l.max.bad, l.records
            ),
            format!("openssl -multi 2: {ceiling:.0} sign/s"),
            pct(l.max.rps, ceiling),
            &format!("≥ {target:.0}%"),
            pct(l.max.rps, ceiling) >= target,
        );
    }
    for (db, l) in [("SQLite", sq), ("PostgreSQL", pq)] {
        report.row(
            &format!("launch latency at half the maximum rate, {db}"),
            format!(
                "p99 {} (p50 {}) at {:.0}/s",
                ms(l.half.p99),
                ms(l.half.p50),
                l.half.rps
            ),
            format!("asked {:.0}/s", l.max.rps / 2.0),
            0.0,
            "p99 ≤ 25 ms",
            l.half.p99 <= 25.0 && l.half.rps >= l.max.rps * 0.45,
        );
    }
    let flood = on_sqlite
        .flood
        .as_ref()
        .context("bogus sign-ins measured")?;
    // What the limits allow: 120 at once, 2 a second earned back, and one
    // record a minute noting the flood.
    let allowed = 120 + (2.0 * flood.seconds).ceil() as i64 + (flood.seconds / 60.0).ceil() as i64;
    report.row(
        "launch latency while strangers send bogus sign-ins from many addresses, SQLite",
        format!(
            "p99 {} (p50 {}) at {:.0}/s, beside {} bogus callbacks in {:.1} s ({:.0}/s); {} audit records and {} session rows written for them",
            ms(flood.during.p99),
            ms(flood.during.p50),
            flood.during.rps,
            flood.bogus,
            flood.seconds,
            flood.bogus as f64 / flood.seconds.max(0.001),
            flood.failure_records,
            flood.session_rows
        ),
        format!("resting: p99 {} at {:.0}/s", ms(sq.half.p99), sq.half.rps),
        pct(flood.during.p99, sq.half.p99),
        &format!("p99 ≤ 25 ms; ≤ {allowed} records (120 + 2/s + 1/min), no sessions"),
        flood.during.p99 <= 25.0 && flood.failure_records <= allowed && flood.session_rows == 0,
    );
    let ours = on_sqlite.jwks.as_ref().context("JWKS")?;
    for (what, ours, theirs) in [
        ("JWKS requests/s", &ours.full, &nginx.full),
        (
            "JWKS requests/s with If-None-Match (304)",
            &ours.not_modified,
            &nginx.not_modified,
        ),
    ] {
        report.row(
            what,
            format!("{:.0}/s", ours.rps),
            format!("nginx: {:.0}/s", theirs.rps),
            pct(ours.rps, theirs.rps),
            "≥ 50%",
            pct(ours.rps, theirs.rps) >= 50.0,
        );
    }
    // Clearly ahead of the peer (a token with a durable record against one
    // without), not a tie.
    const AHEAD: f64 = 1.10;
    for (db, l) in [("SQLite", sq), ("PostgreSQL", pq)] {
        let met = l.max.rps >= AHEAD * peer.rps;
        // Every launch is one RS256 signature: no rate can pass the signing ceiling.
        let verdict = if met {
            "met".to_string()
        } else if AHEAD * peer.rps > ceiling {
            format!(
                "**missed**: out of reach, {AHEAD} × {:.0} = {:.0}/s is above the {ceiling:.0} signatures/s this machine can make",
                peer.rps,
                AHEAD * peer.rps
            )
        } else {
            "**missed**".to_string()
        };
        report.row_verdict(
            &format!("launches/s against the peer, {db}"),
            format!("{:.0}/s", l.max.rps),
            format!("oidc-provider: {:.0} tokens/s", peer.rps),
            pct(l.max.rps, peer.rps),
            "≥ 110%",
            verdict,
        );
    }
    let home = on_sqlite
        .home
        .as_ref()
        .context("home page measured on SQLite")?;
    report.row(
        &format!("staff home page, {HOME_SITES} sites: server render"),
        format!("p50 {} (p99 {})", ms(home.p50), ms(home.p99)),
        "-".into(),
        0.0,
        "p50 ≤ 30 ms",
        home.p50 <= 30.0,
    );
    let filter = on_sqlite.filter.as_ref().context("filter measured")?;
    report.row(
        "filtering one keystroke in Chromium",
        format!(
            "p50 {}, p95 {}, worst {}: keystroke to list laid out; next frame p50 {}",
            ms(filter.work_p50),
            ms(filter.work_p95),
            ms(filter.work_max),
            ms(filter.frame_p50)
        ),
        format!("{} keystrokes", filter.keystrokes),
        0.0,
        "p95 and worst ≤ 16 ms",
        filter.work_p95 <= 16.0 && filter.work_max <= 16.0,
    );
    for (db, m) in [("SQLite", &on_sqlite), ("PostgreSQL", &on_pg)] {
        report.row(
            &format!("peak RSS serving the launch benchmark, {db}"),
            format!("{:.1} MB", m.peak_rss_kb as f64 / 1024.0),
            "-".into(),
            0.0,
            "≤ 120 MB",
            m.peak_rss_kb as f64 / 1024.0 <= 120.0,
        );
    }
    let on_the_wire = bundle.served_bytes <= 1_000_000 && bundle.served_encoding == "br";
    report.row_verdict(
        "hydrate bundle",
        format!(
            "{} of wasm, served as {} ({})",
            kb(bundle.wasm_bytes),
            kb(bundle.served_bytes),
            bundle.served_encoding
        ),
        "-".into(),
        0.0,
        "≤ 1 MB, precompressed",
        match (on_the_wire, bundle.wasm_bytes <= 1_000_000) {
            (true, true) => "met".into(),
            (true, false) => format!(
                "met as sent; the uncompressed wasm is {} over 1 MB",
                kb(bundle.wasm_bytes - 1_000_000)
            ),
            _ => "**missed**".into(),
        },
    );
    report.note(format!(
        "suite ran in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    report.finish(&root)
}

fn kb(bytes: u64) -> String {
    format!("{:.0} KB", bytes as f64 / 1000.0)
}

// ---------------------------------------------------------------- report

struct Report {
    header: String,
    rows: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    fn new(root: &Path) -> anyhow::Result<Report> {
        Ok(Report {
            header: format!("{}; command `scripts/bench`.", run_header(root)),
            rows: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn row(
        &mut self,
        what: &str,
        measured: String,
        against: String,
        ratio: f64,
        target: &str,
        met: bool,
    ) {
        let verdict = if met { "met" } else { "**missed**" };
        self.row_verdict(what, measured, against, ratio, target, verdict.to_string());
    }

    fn row_verdict(
        &mut self,
        what: &str,
        measured: String,
        against: String,
        ratio: f64,
        target: &str,
        verdict: String,
    ) {
        let ratio = if ratio > 0.0 {
            format!("{ratio:.0}%")
        } else {
            "-".into()
        };
        self.rows.push(format!(
            "| {what} | {measured} | {against} | {ratio} | {target} | {verdict} |"
        ));
    }

    fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    fn finish(self, root: &Path) -> anyhow::Result<()> {
        let mut text = String::new();
        text.push_str(&self.header);
        text.push_str("\n\n| workload | measured | ceiling or peer, same run | ratio | target | |\n| --- | --- | --- | ---: | --- | --- |\n");
        for r in &self.rows {
            text.push_str(r);
            text.push('\n');
        }
        text.push('\n');
        for n in &self.notes {
            text.push_str(&format!("- {n}\n"));
        }
        publish(root, "bench", &text)
    }
}

// ---------------------------------------------------------------- processes

fn openssl_speed(multi: u32) -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-seconds",
            &RUN.to_string(),
            "-multi",
            &multi.to_string(),
            "rsa2048",
        ])
        .output()
        .context("openssl")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "rsa 2048 bits 0.000213s 0.000006s  4692.4 155806.1": signatures/s follows the times.
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("rsa") && l.contains("2048 bits"))
        .and_then(|l| l.split("bits").nth(1))
        .and_then(|rest| rest.split_whitespace().find(|t| !t.ends_with('s')))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("cannot read openssl speed's output:\n{text}"))
}

// ---------------------------------------------------------------- wrk

#[derive(Debug, Clone, Default)]
struct Load {
    rps: f64,
    requests: u64,
    /// Responses other than 2xx/3xx, plus socket errors.
    bad: u64,
    p50: f64,
    p99: f64,
}

struct WrkRun<'a> {
    url: &'a str,
    threads: u32,
    connections: u32,
    seconds: u64,
    script: Option<&'a Path>,
    headers: Vec<String>,
    env: Vec<(&'a str, String)>,
}

impl<'a> WrkRun<'a> {
    fn new(url: &'a str, connections: u32, seconds: u64) -> Self {
        WrkRun {
            url,
            threads: connections.min(2),
            connections,
            seconds,
            script: None,
            headers: Vec::new(),
            env: Vec::new(),
        }
    }

    fn run(&self) -> anyhow::Result<Load> {
        let mut c = Command::new("wrk");
        c.args([
            "--latency",
            "-t",
            &self.threads.to_string(),
            "-c",
            &self.connections.to_string(),
            "-d",
            &format!("{}s", self.seconds),
            "--timeout",
            "10s",
        ]);
        if let Some(s) = self.script {
            c.arg("-s").arg(s);
        }
        for h in &self.headers {
            c.args(["-H", h]);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let out = c.arg(self.url).output().context("wrk")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        ensure!(
            out.status.success(),
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
    }
}

fn parse_wrk(text: &str) -> Option<Load> {
    let duration = |v: &str| -> Option<f64> {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => return None,
        })
    };
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => load.p50 = duration(v)?,
            ["99%", v] => load.p99 = duration(v)?,
            [n, "requests", "in", ..] => load.requests = n.parse().ok()?,
            ["Requests/sec:", v] => load.rps = v.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => load.bad += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                load.bad += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    Some(load)
}

// ---------------------------------------------------------------- the dashboard

struct JwksFigures {
    body: Vec<u8>,
    full: Load,
    not_modified: Load,
}

struct LaunchFigures {
    max: Load,
    half: Load,
    records: i64,
}

struct FilterFigures {
    keystrokes: usize,
    work_p50: f64,
    work_p95: f64,
    work_max: f64,
    frame_p50: f64,
}

struct Bundle {
    wasm_bytes: u64,
    served_bytes: u64,
    served_encoding: String,
}

struct DashboardFigures {
    launches: LaunchFigures,
    peak_rss_kb: u64,
    flood: Option<FloodFigures>,
    jwks: Option<JwksFigures>,
    home: Option<Load>,
    filter: Option<FilterFigures>,
    bundle: Bundle,
}

async fn measure_dashboard(
    root: &Path,
    bin: &Path,
    tmp: &Path,
    name: &str,
    database_url: &str,
    everything: bool,
) -> anyhow::Result<DashboardFigures> {
    let data = tmp.join(name);
    std::fs::create_dir_all(&data)?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let idp = start_idp(root, &url, &data.join("idp.log")).await?;
    let env = dashboard_env(root, &url, port, database_url, &data, &idp);
    let dash = Dashboard::start("agency-sso", bin, env, &data.join("agency-sso.log"), &url).await?;
    let demo = "https://demo.bench.example";
    dash.cli(&[
        "demo",
        "seed",
        "--site-url",
        demo,
        "--shop-secret",
        "bench-shop-secret-0123456789abcdef0123",
        "--extra-sites",
        &(HOME_SITES - 2).to_string(),
    ])?;

    // Sessions: Sam, Sasha and Ada may enter the demo site; each signs in several times.
    let people = ["sam-staff", "sasha-staff", "ada-admin"];
    let mut cookies = Vec::new();
    for i in 0..SESSIONS {
        cookies.push(sign_in(&url, people[i % people.len()]).await?);
    }
    let db = agency_sso::store::Db::connect(
        database_url,
        if name == "sqlite" {
            agency_sso::config::DbKind::Sqlite
        } else {
            agency_sso::config::DbKind::Postgres
        },
    )
    .await?;
    let site_id: String = sqlx::query_scalar("SELECT id FROM sites WHERE url = $1")
        .bind(demo)
        .fetch_one(&db.pool)
        .await
        .context("the demo site")?;
    check_launch(&url, &cookies[0], &site_id, demo).await?;

    // Launches at the highest rate, then at half of it.
    let lua = data.join("launch.lua");
    std::fs::write(&lua, launch_script(&url, &site_id, &cookies))?;
    let mut w = WrkRun::new(&url, 32, 3);
    w.script = Some(&lua);
    w.run()?; // warm-up
    let (before, _) = agency_sso::store::launches::count(&db).await?;
    w.seconds = RUN;
    let max = w.run()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, distinct) = agency_sso::store::launches::count(&db).await?;
    let records = after - before;
    let launched = max.requests - max.bad;
    ensure!(
        records >= launched as i64 && after == distinct,
        "launch records: {records} for {launched} launches, {after} records with {distinct} distinct jti"
    );
    eprintln!("launches: {max:?}, {records} records");
    let half = paced(&url, &lua, max.rps / 2.0)?;
    eprintln!("at half the rate: {half:?}");
    let peak_rss_kb = dash.peak_rss_kb()?;

    let mut figures = DashboardFigures {
        launches: LaunchFigures { max, half, records },
        peak_rss_kb,
        flood: None,
        jwks: None,
        home: None,
        filter: None,
        bundle: Bundle {
            wasm_bytes: 0,
            served_bytes: 0,
            served_encoding: String::new(),
        },
    };
    if everything {
        let rate = figures.launches.max.rps / 2.0;
        figures.flood = Some(bogus_sign_ins(&url, &lua, &db, rate).await?);
        figures.jwks = Some(jwks_load(&format!("{url}/.well-known/jwks.json")).await?);
        figures.home = Some(home_load(&url).await?);
        figures.filter = Some(filter_in_chromium(root, &url)?);
        figures.bundle = bundle(root, &url).await?;
    }
    drop(db);
    drop(dash);
    drop(idp);
    Ok(figures)
}

/// Bogus sign-ins, at least [`BOGUS`] of them, each from its own address
/// behind the trusted proxy, sent as fast as 16 connections go while staff
/// launch at `rate`: what they cost the launches, and what they write.
struct FloodFigures {
    bogus: u64,
    seconds: f64,
    during: Load,
    failure_records: i64,
    session_rows: i64,
}

const BOGUS: u64 = 10_000;

async fn bogus_sign_ins(
    url: &str,
    lua: &Path,
    db: &agency_sso::store::Db,
    rate: f64,
) -> anyhow::Result<FloodFigures> {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let failures = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log WHERE kind = 'sign_in_failed'")
            .fetch_one(&db.pool)
            .await
    };
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions")
            .fetch_one(&db.pool)
            .await
    };
    let (failures_before, sessions_before) = (failures().await?, sessions().await?);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let flood = {
        let (stop, sent, base) = (stop.clone(), sent.clone(), url.to_string());
        tokio::spawn(async move {
            let started = Instant::now();
            let requests = futures_util::stream::iter(0u64..)
                .take_while(|i| {
                    let go = *i < BOGUS || !stop.load(Ordering::Relaxed);
                    async move { go }
                })
                .map(|i| {
                    let (c, base, sent) = (client.clone(), base.clone(), sent.clone());
                    async move {
                        let from = format!("198.18.{}.{}", (i / 250) % 250, i % 250 + 1);
                        let r = c
                            .get(format!("{base}/auth/callback?code=bogus{i}&state=bogus{i}"))
                            .header("x-forwarded-for", from)
                            .send()
                            .await;
                        if matches!(r, Ok(ref r) if r.status() == 400) {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .buffer_unordered(16);
            requests.collect::<Vec<()>>().await;
            started.elapsed().as_secs_f64()
        })
    };
    let (url2, lua2) = (url.to_string(), lua.to_path_buf());
    let during = tokio::task::spawn_blocking(move || paced(&url2, &lua2, rate)).await??;
    stop.store(true, Ordering::Relaxed);
    let seconds = flood.await?;
    let bogus = sent.load(Ordering::Relaxed);
    ensure!(
        bogus >= BOGUS,
        "only {bogus} bogus sign-ins were answered 400"
    );
    let figures = FloodFigures {
        bogus,
        seconds,
        during,
        failure_records: failures().await? - failures_before,
        session_rows: sessions().await? - sessions_before,
    };
    eprintln!(
        "bogus sign-ins: {} in {:.1} s, launches meanwhile {:?}, +{} records, +{} sessions",
        figures.bogus,
        figures.seconds,
        figures.during,
        figures.failure_records,
        figures.session_rows
    );
    Ok(figures)
}

/// One launch by hand: 303 to the site with an RS256 token for it.
async fn check_launch(
    base: &str,
    cookie: &str,
    site_id: &str,
    site_url: &str,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let res = post_launch(&client, base, base, cookie, site_id).await?;
    ensure!(res.status() == 303, "launch answered {}", res.status());
    let location = res
        .headers()
        .get("location")
        .context("no Location")?
        .to_str()?
        .to_string();
    let token = launch_token(&location)?;
    let claims = jwt_part(&token, 1)?;
    let header = jwt_part(&token, 0)?;
    ensure!(
        header["alg"] == "RS256" && claims["aud"] == site_url && token.split('.').count() == 3,
        "unexpected token: {header} {claims}"
    );
    Ok(())
}

fn launch_script(base: &str, site_id: &str, cookies: &[String]) -> String {
    let list = cookies
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"-- POST /launch as the signed-in sessions in turn.
local cookies = {{ {list} }}
local body = "site={site_id}&path="
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/launch", {{
    ["Cookie"] = cookies[n % #cookies + 1],
    ["Origin"] = "{base}",
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }}, body)
end
-- Pacing for the latency run: milliseconds between a response and the next request.
local pause = tonumber(os.getenv("WRK_PAUSE_MS") or "0")
if pause > 0 then
  delay = function() return pause end
end
"#
    )
}

/// Launch latency at `rate` launches/s: connections that wait between a
/// response and their next request, the wait tuned in a first short run.
fn paced(url: &str, lua: &Path, rate: f64) -> anyhow::Result<Load> {
    // Each connection sends one request every 20 ms or more (wrk's pause is in whole ms).
    let conns = ((rate * 0.02).ceil() as u32).max(2);
    let period_ms = 1000.0 * f64::from(conns) / rate;
    let mut pause = period_ms.floor().max(1.0);
    let mut load = Load::default();
    for seconds in [3, RUN] {
        let mut w = WrkRun::new(url, conns, seconds);
        w.threads = 1;
        w.script = Some(lua);
        w.env.push(("WRK_PAUSE_MS", format!("{pause:.0}")));
        load = w.run()?;
        // Per connection: one request every pause + response time.
        let service = 1000.0 * f64::from(conns) / load.rps.max(1.0) - pause;
        pause = (period_ms - service).round().max(1.0);
    }
    Ok(load)
}

async fn jwks_load(url: &str) -> anyhow::Result<JwksFigures> {
    let res = reqwest::get(url).await?;
    ensure!(res.status() == 200, "JWKS: {}", res.status());
    let etag = res
        .headers()
        .get("etag")
        .context("JWKS has no ETag")?
        .to_str()?
        .to_string();
    let body = res.bytes().await?.to_vec();
    let keys: serde_json::Value = serde_json::from_slice(&body)?;
    ensure!(
        keys["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "JWKS without keys"
    );
    let (full, not_modified) = http_pair(url, &etag).await?;
    Ok(JwksFigures {
        body,
        full,
        not_modified,
    })
}

/// The same GET twice under load: plain, and revalidated with `If-None-Match` (a 304 checked first).
async fn http_pair(url: &str, etag: &str) -> anyhow::Result<(Load, Load)> {
    let res = reqwest::Client::new()
        .get(url)
        .header("if-none-match", etag)
        .send()
        .await?;
    ensure!(
        res.status() == 304,
        "{url} with If-None-Match: {}",
        res.status()
    );
    let full = WrkRun::new(url, 32, SHORT).run()?;
    let mut w = WrkRun::new(url, 32, SHORT);
    w.headers.push(format!("If-None-Match: {etag}"));
    let not_modified = w.run()?;
    ensure!(
        full.bad == 0 && not_modified.bad == 0,
        "errors under load: {full:?} {not_modified:?}"
    );
    Ok((full, not_modified))
}

/// The staff home page, one request at a time, as Sam (who may enter every site).
async fn home_load(base: &str) -> anyhow::Result<Load> {
    let cookie = sign_in(base, "sam-staff").await?;
    let page = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        page.contains(&format!("of {HOME_SITES} sites")) && page.contains("Demo Site"),
        "the home page does not list Sam's {HOME_SITES} sites"
    );
    let mut w = WrkRun::new(base, 1, SHORT);
    w.headers.push(format!("Cookie: {cookie}"));
    let load = w.run()?;
    ensure!(load.bad == 0, "home page errors: {load:?}");
    Ok(load)
}

fn filter_in_chromium(root: &Path, base: &str) -> anyhow::Result<FilterFigures> {
    let out = Command::new("node")
        .current_dir(root.join("end2end"))
        .args(["bench/filter.mjs", base, "Sam Staff", "demo site", "5"])
        .output()
        .context("node")?;
    ensure!(
        out.status.success(),
        "filter benchmark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        v["narrowed"]
            .as_str()
            .is_some_and(|s| s.starts_with("1 of")),
        "the filter did not narrow to one site: {v}"
    );
    let times = |k: &str| -> Vec<f64> {
        let mut t: Vec<f64> = v[k]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        t.sort_by(f64::total_cmp);
        t
    };
    eprintln!(
        "filter, keystroke to list laid out (ms, in order): {}",
        v["work"]
    );
    let (work, frame) = (times("work"), times("frame"));
    ensure!(!work.is_empty(), "no keystroke measured: {v}");
    Ok(FilterFigures {
        keystrokes: work.len(),
        work_p50: work[work.len() / 2],
        work_p95: work[(work.len() * 95 / 100).min(work.len() - 1)],
        work_max: *work.last().unwrap_or(&0.0),
        frame_p50: frame.get(frame.len() / 2).copied().unwrap_or(0.0),
    })
}

async fn bundle(root: &Path, base: &str) -> anyhow::Result<Bundle> {
    let wasm = root.join("target/site/pkg/agency-sso.wasm");
    let wasm_bytes = std::fs::metadata(&wasm)
        .with_context(|| format!("{}", wasm.display()))?
        .len();
    let res = reqwest::Client::new()
        .get(format!("{base}/pkg/agency-sso.wasm"))
        .header("accept-encoding", "br, gzip")
        .send()
        .await?;
    ensure!(res.status() == 200, "wasm: {}", res.status());
    let served_encoding = res
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_string();
    let served_bytes = res.bytes().await?.len() as u64;
    Ok(Bundle {
        wasm_bytes,
        served_bytes,
        served_encoding,
    })
}

// ---------------------------------------------------------------- peers

async fn peer_tokens(root: &Path, tmp: &Path) -> anyhow::Result<Load> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let _peer = oidc_node(
        "oidc-provider",
        &root.join("end2end/bench/peer.mjs"),
        &[("PEER_PORT", port.to_string())],
        &base,
        &tmp.join("peer.log"),
    )
    .await?;
    let body = "grant_type=client_credentials&scope=wp&resource=https%3A%2F%2Fsite.example";
    let res: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth("bench", Some("bench-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    let token = res["access_token"].as_str().context("no access token")?;
    let (header, claims) = (jwt_part(token, 0)?, jwt_part(token, 1)?);
    ensure!(
        header["alg"] == "RS256" && claims["aud"] == "https://site.example",
        "peer token: {header} {claims}"
    );
    let lua = tmp.join("peer.lua");
    std::fs::write(
        &lua,
        format!(
            "wrk.method = \"POST\"\nwrk.body = \"{body}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n\
             wrk.headers[\"Authorization\"] = \"Basic YmVuY2g6YmVuY2gtc2VjcmV0\"\n"
        ),
    )?;
    let url = format!("{base}/token");
    let mut w = WrkRun::new(&url, 32, 3);
    w.script = Some(&lua);
    w.run()?; // warm-up (JIT)
    w.seconds = RUN;
    let load = w.run()?;
    ensure!(load.bad == 0, "peer errors under load: {load:?}");
    Ok(load)
}

async fn nginx_jwks(tmp: &Path, body: &[u8]) -> anyhow::Result<JwksFigures> {
    let dir = tmp.join("nginx");
    std::fs::create_dir_all(dir.join("www/.well-known"))?;
    std::fs::write(dir.join("www/.well-known/jwks.json"), body)?;
    let port = free_port()?;
    let d = dir.display();
    // Like the dashboard: two workers (one per core), each request logged.
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n  types {{ application/json json; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n\
             location = /.well-known/jwks.json {{\n      add_header Cache-Control \"public, max-age=300\";\n\
             add_header Access-Control-Allow-Origin *;\n    }}\n  }}\n}}\n"
        ),
    )?;
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| Command::new(p).arg("-v").output().is_ok())
        .context("nginx is not installed")?;
    let _nginx = Proc::spawn(
        "nginx",
        Command::new(nginx)
            .args(["-e", &format!("{d}/error.log"), "-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf")),
        &dir.join("stdout.log"),
    )?;
    let url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");
    wait_for(&url, "nginx").await?;
    let res = reqwest::get(&url).await?;
    let etag = res
        .headers()
        .get("etag")
        .context("nginx sent no ETag")?
        .to_str()?
        .to_string();
    ensure!(
        res.bytes().await?.as_ref() == body,
        "nginx serves other bytes"
    );
    let (full, not_modified) = http_pair(&url, &etag).await?;
    Ok(JwksFigures {
        body: body.to_vec(),
        full,
        not_modified,
    })
}

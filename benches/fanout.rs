//! Offboarding at scale: one person who holds 5,000 connector sites is
//! disabled; how long until every site has confirmed the lock, how much
//! memory the dashboard takes meanwhile, and what happens to everyone
//! else's launches during the fan-out. Then the fleet: every one of those
//! sites asked how it stands (`sites status --check`), and launches meanwhile.
//!
//! Run it with `scripts/bench-fanout` (it builds the release binary). The
//! release `agency-sso serve` runs as its own process, on SQLite and then
//! on the local PostgreSQL server (a fresh database), beside the
//! local identity provider; the 5,000 sites are stand-ins that check each
//! message with the connector plugin's own code
//! (tests/verifiers/back_channel_sites.php under PHP's built-in server,
//! four workers), so the time includes a real RS256 verification per site.
//!
//! Ceilings measured in the same run: `openssl speed -multi 2 rsa2048`
//! (every message is signed once) and the stand-in sites' own rate for
//! requests that are refused before any signature check (the floor of
//! PHP's cost per request); launch latency during the fan-out is given as
//! a ratio of the latency at rest, measured just before.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

mod support;
use support::{
    dashboard_env, free_port, ms, openssl, post_launch, publish, release_binary, run_header, say,
    sign_in, start_idp, wait_for, Dashboard, PgDatabase, Proc,
};

/// Connector sites the leaver holds.
const SITES: usize = 5000;
/// Launches measured at rest, and the most measured during the fan-out.
const LAUNCHES: usize = 300;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = release_binary(&root, "scripts/bench-fanout")?;

    say("ceiling: openssl speed -multi 2 rsa2048");
    let rsa = openssl(Some(2)).context("openssl speed")?;

    let sqlite = measure(&root, &bin, rsa, None).await?;
    let pg = PgDatabase::create().await?;
    let postgres = measure(&root, &bin, rsa, Some(&pg.url)).await;
    pg.drop_it().await;
    let report = format!("{}\n{sqlite}\n{}", run_header(&root), postgres?);
    publish(&root, "bench-fanout", &report)?;
    Ok(())
}

/// One run on SQLite (`postgres`: `None`) or on that PostgreSQL database:
/// its table.
async fn measure(
    root: &std::path::Path,
    bin: &std::path::Path,
    rsa: f64,
    postgres: Option<&str>,
) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data)?;
    let (db_name, kind) = match postgres {
        Some(_) => ("PostgreSQL", agency_sso::config::DbKind::Postgres),
        None => ("SQLite", agency_sso::config::DbKind::Sqlite),
    };
    say(&format!("the fan-out on {db_name}"));

    // The dashboard, its identity provider and the stand-in sites.
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let database_url = match postgres {
        Some(u) => u.to_string(),
        None => format!("sqlite://{}/fanout.db", data.display()),
    };
    let idp = start_idp(root, &url, &data.join("idp.log")).await?;
    let env = dashboard_env(root, &url, port, &database_url, &data, &idp);
    let dash = Dashboard::start("agency-sso", bin, env, &data.join("agency-sso.log"), &url).await?;
    let sites_port = free_port()?;
    let sites_dir = tmp.path().join("sites");
    std::fs::create_dir_all(&sites_dir)?;
    let _sites = Proc::spawn(
        "the stand-in sites",
        Command::new("php")
            .arg("-S")
            .arg(format!("127.0.0.1:{sites_port}"))
            .arg(root.join("tests/verifiers/back_channel_sites.php"))
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .env("AGENCY_SSO_ISSUER", &url)
            .env(
                "AGENCY_SSO_JWKS_URI",
                format!("{url}/.well-known/jwks.json"),
            )
            .env("STAND_IN_DIR", &sites_dir),
        &data.join("sites.log"),
    )?;
    let sites_base = format!("http://127.0.0.1:{sites_port}");
    for _ in 0..100 {
        if reqwest::get(format!("{sites_base}/ready")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(&format!("{url}/readyz"), "agency-sso").await?;

    // Zoë (the leaver) and Sam (everyone else) sign in; Zoë holds 5,000
    // connector sites, Sam one site he launches.
    say("seeding 5,000 connector sites");
    let sam = sign_in(&url, "sam-staff").await?;
    sign_in(&url, "zoe-odegard").await?;
    let db = agency_sso::store::Db::connect(&database_url, kind).await?;
    let masters = agency_sso::domain::secrets::MasterKeys::new(
        agency_sso::domain::secrets::MasterKey::new([0; 32]),
        Vec::new(),
    );
    let by = agency_sso::domain::audit::Actor::command_line();
    let now = || time::OffsetDateTime::now_utc().unix_timestamp();
    let mut ids = Vec::with_capacity(SITES);
    for i in 0..SITES {
        let site = agency_sso::service::sites::create_site(
            &db,
            &masters,
            agency_sso::domain::sites::SiteInput {
                name: format!("Client {i:04}"),
                client: format!("Client {:03}", i / 10),
                url: format!("{sites_base}/s{i}"),
                profile: "connector".into(),
                ..Default::default()
            },
            &by,
            now(),
        )
        .await?;
        ids.push(site.id);
    }
    let terms = agency_sso::domain::access::GrantTerms {
        expires_at: None,
        reason: String::new(),
    };
    agency_sso::service::access::bulk_grant(
        &db,
        &[],
        &["zoe@agency.test".to_string()],
        &ids,
        "editor",
        &terms,
        &by,
        now(),
    )
    .await?;
    let sam_site = agency_sso::service::sites::create_site(
        &db,
        &masters,
        agency_sso::domain::sites::SiteInput {
            name: "Sam's site".into(),
            client: "Elsewhere".into(),
            url: "https://sam.bench.example".into(),
            ..Default::default()
        },
        &by,
        now(),
    )
    .await?
    .id;
    agency_sso::service::access::grant(
        &db,
        &[],
        "sam@agency.test",
        &sam_site,
        "editor",
        &by,
        now(),
    )
    .await?;

    // Ceiling: the stand-in sites' own rate, a request refused before any
    // signature check (no token), over the same four PHP workers.
    say("ceiling: the stand-in sites' rate for a refused request");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let floor = {
        let started = Instant::now();
        let n = 2000usize;
        let route = format!("{sites_base}/s0/?rest_route=/agency-sso/v1/back-channel");
        let mut tasks = futures_util::stream::iter(0..n)
            .map(|_| {
                let (client, route) = (client.clone(), route.clone());
                async move {
                    client
                        .post(route)
                        .form(&[("logout_token", "")])
                        .send()
                        .await
                }
            })
            .buffer_unordered(32);
        use futures_util::StreamExt;
        let mut refused = 0;
        while let Some(r) = tasks.next().await {
            if r.map(|r| r.status() == 400).unwrap_or(false) {
                refused += 1;
            }
        }
        ensure!(refused == n, "the stand-in sites answered {refused} of {n}");
        n as f64 / started.elapsed().as_secs_f64()
    };

    // Launch latency at rest.
    say("launch latency at rest");
    let launch = |client: reqwest::Client| {
        let (url, sam, site) = (url.clone(), sam.clone(), sam_site.clone());
        async move {
            let t = Instant::now();
            let res = post_launch(&client, &url, &url, &sam, &site).await?;
            ensure!(res.status() == 303, "launch answered {}", res.status());
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let mut rest = Vec::with_capacity(LAUNCHES);
    for _ in 0..LAUNCHES {
        rest.push(launch(client.clone()).await?);
    }
    let rss_before = dash.rss_kb()?;

    // The fan-out: Zoë disabled from the command line; Sam keeps launching.
    say("disabling the person who holds 5,000 sites");
    let started = Instant::now();
    dash.cli(&["users", "disable", "zoe@agency.test"])?;
    let written = started.elapsed().as_secs_f64();
    let mut during = Vec::new();
    let mut peak_rss = rss_before;
    let confirmed = loop {
        if during.len() < LAUNCHES {
            during.push(launch(client.clone()).await?);
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak_rss = peak_rss.max(dash.rss_kb()?);
        let (done, failed): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) FROM site_messages",
        )
        .fetch_one(&db.pool)
        .await?;
        ensure!(failed == 0, "{failed} message(s) failed");
        if done as usize == SITES {
            break started.elapsed().as_secs_f64();
        }
        ensure!(
            started.elapsed() < Duration::from_secs(900),
            "only {done} of {SITES} confirmed after 15 minutes"
        );
    };
    let received = (0..SITES)
        .filter(|i| sites_dir.join(format!("s{i}.log")).exists())
        .count();
    ensure!(
        received == SITES,
        "{received} of {SITES} sites logged the lock"
    );

    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    let rest99 = pct(&mut rest, 0.99);
    let (rest50, rest95) = (pct(&mut rest, 0.5), pct(&mut rest, 0.95));
    let (dur50, dur95) = (pct(&mut during, 0.5), pct(&mut during, 0.95));

    // The fleet: every connector site asked how it stands, from the command
    // line (`sites status --check`, which waits for every answer), while
    // Sam keeps launching.
    say("asking 5,000 connector sites how they stand");
    let status_started = Instant::now();
    let checker = {
        let dash_bin = bin.to_path_buf();
        let env = dash.env.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(dash_bin)
                .args(["sites", "status", "--check", "--csv"])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
        })
    };
    let mut checking = Vec::new();
    while !checker.is_finished() {
        checking.push(launch(client.clone()).await?);
    }
    let out = checker.await??;
    let gathered = status_started.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "sites status --check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    // The fourth cell is the standing: every site answered with its report.
    let answered = csv
        .lines()
        .skip(1)
        .filter(|l| {
            let standing = l.split("\",\"").nth(3).unwrap_or("");
            standing != "unreachable" && standing != "unchecked"
        })
        .count();
    ensure!(
        csv.lines().count() == SITES + 1,
        "the status lists {} rows",
        csv.lines().count() - 1
    );
    ensure!(answered == SITES, "{answered} of {SITES} sites reported");
    ensure!(
        !checking.is_empty(),
        "no launch was measured while the sites were asked"
    );
    let (chk50, chk99) = (pct(&mut checking, 0.5), pct(&mut checking, 0.99));
    let status_rate = SITES as f64 / gathered;
    let rate = SITES as f64 / confirmed;
    let report = format!(
        "| offboarding fan-out ({SITES} connector sites, {db_name}) | figure | ceiling, same run | ratio |\n\
         |---|---|---|---|\n\
         | messages written with the change (`users disable`, whole command) | {} | | |\n\
         | all {SITES} confirmed by the sites | {confirmed:.1} s ({rate:.0}/s) | stand-in sites, refused request: {floor:.0}/s | {:.2} |\n\
         | signing, per message | | openssl rsa2048 sign, 2 cores: {rsa:.0}/s | {:.2} |\n\
         | launch latency for someone else, p50 | {} during, {} at rest | | {:.2} |\n\
         | launch latency for someone else, p95 | {} during, {} at rest | | {:.2} |\n\
         | dashboard memory (RSS) | {} MiB peak during, {} MiB before | | {:.2} |\n\n\
         | fleet status (`sites status --check`, {SITES} connector sites, {db_name}) | figure | ceiling, same run | ratio |\n\
         |---|---|---|---|\n\
         | every site's report gathered | {gathered:.1} s ({status_rate:.0}/s) | stand-in sites, refused request: {floor:.0}/s | {:.2} |\n\
         | launch latency for someone else, p50 ({} launches) | {} during, {} at rest | | {:.2} |\n\
         | launch latency for someone else, p99 | {} during, {} at rest | | {:.2} |\n",
        format_args!("{written:.1} s"),
        rate / floor,
        rate / rsa,
        ms(dur50),
        ms(rest50),
        dur50 / rest50,
        ms(dur95),
        ms(rest95),
        dur95 / rest95,
        peak_rss / 1024,
        rss_before / 1024,
        peak_rss as f64 / rss_before as f64,
        status_rate / floor,
        checking.len(),
        ms(chk50),
        ms(rest50),
        chk50 / rest50,
        ms(chk99),
        ms(rest99),
        chk99 / rest99,
    );
    drop(dash);
    db.pool.close().await;
    Ok(report)
}

//! Launch throughput and latency beside the machine's signing ceiling
//! (`openssl speed -multi 2 rsa2048`), measured in the same run, on SQLite
//! and on PostgreSQL.
//!
//! The whole dashboard runs in this process on loopback; clients POST
//! /launch with keep-alive, each launch answered 303 with a signed token
//! after its record is committed. Sessions are seeded in the session store
//! directly (the identity provider is not what is measured). The load
//! generator shares the two cores with the server, so the figures are a
//! lower bound.
//!
//! Run: `cargo bench --features ssr --bench launch` (about a minute).
//! `TEST_PG_URL` names the PostgreSQL server (default: the local one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agency_sso::config::ConfigArgs;
use agency_sso::domain::identity::Admitted;
use agency_sso::domain::session::SignedIn;
use agency_sso::domain::sites::SiteInput;
use agency_sso::server::{self, SystemClock};
use agency_sso::store::sessions::{DbSessionStore, SIGNED_IN_KEY};
use clap::Parser;
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

mod support;
use support::{openssl, SECONDS};

/// Concurrent clients, each with its own session, each one launch at a time.
const CLIENTS: usize = 16;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

struct Measured {
    rate: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
}

async fn measure(database_url: &str, data_dir: &std::path::Path) -> anyhow::Result<Measured> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let argv = [
        "bench",
        "--public-url",
        &url,
        "--database-url",
        database_url,
        "--data-dir",
        &data_dir.display().to_string(),
        "--oidc-issuer",
        "http://127.0.0.1:9/unused",
        "--oidc-client-id",
        "bench",
        "--oidc-client-secret",
        "bench",
        "--allowed-domains",
        "agency.test",
    ]
    .map(String::from);
    let config = Args::try_parse_from(argv)?
        .config
        .validate()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let state =
        server::build_state(config, Arc::new(SystemClock), server::leptos_options(addr)).await?;
    let router = server::router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let site = agency_sso::sites::create_site(
        &state.db,
        &state.master_keys,
        SiteInput {
            name: "Bench".into(),
            client: "Bench".into(),
            url: "https://bench.example".into(),
            ..SiteInput::default()
        },
        &agency_sso::domain::audit::Actor::command_line(),
        now,
    )
    .await?;
    let store = DbSessionStore::new(state.db.clone());
    let mut cookies = Vec::new();
    for i in 0..CLIENTS {
        let email = format!("staff{i}@agency.test");
        let who = Admitted {
            issuer: "https://idp.bench".into(),
            subject: format!("s{i}"),
            email: email.clone(),
            name: Some(format!("Staff {i}")),
            given_name: None,
            family_name: None,
            bootstrap_admin: false,
        };
        let person = agency_sso::store::people::record_sign_in(
            &state.db.pool,
            &who,
            &uuid::Uuid::new_v4().to_string(),
            now,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
        let admin = agency_sso::domain::audit::Actor::command_line();
        agency_sso::sites::grant(&state.db, &[], &email, &site.id, "editor", &admin, now).await?;
        let mut data = HashMap::new();
        data.insert(
            SIGNED_IN_KEY.to_string(),
            serde_json::to_value(SignedIn {
                person_id: person.id,
                signed_in_at: now,
            })?,
        );
        let mut record = Record {
            id: Id::default(),
            data,
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store
            .create(&mut record)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        cookies.push(format!("agency-sso={}", record.id));
    }

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let run = |secs: u64| {
        let (client, cookies, url, site) = (
            client.clone(),
            cookies.clone(),
            url.clone(),
            site.id.clone(),
        );
        async move {
            let end = Instant::now() + Duration::from_secs(secs);
            let mut tasks = tokio::task::JoinSet::new();
            for cookie in cookies {
                let (client, url, site) = (client.clone(), url.clone(), site.clone());
                tasks.spawn(async move {
                    let mut lat = Vec::new();
                    let mut failed = 0;
                    while Instant::now() < end {
                        let t = Instant::now();
                        let res = client
                            .post(format!("{url}/launch"))
                            .header("cookie", &cookie)
                            .header("origin", &url)
                            .form(&[("site", site.as_str())])
                            .send()
                            .await;
                        match res {
                            Ok(r) if r.status() == 303 => lat.push(t.elapsed()),
                            _ => failed += 1,
                        }
                    }
                    (lat, failed)
                });
            }
            let (mut all, mut failed) = (Vec::new(), 0);
            while let Some(r) = tasks.join_next().await {
                let (lat, f) = r.expect("client task");
                all.extend(lat);
                failed += f;
            }
            (all, failed)
        }
    };
    run(1).await; // warm up: connections, caches
    let start = Instant::now();
    let (mut lat, failed) = run(SECONDS * 2).await;
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Measured {
        rate,
        p50: pct(0.50),
        p99: pct(0.99),
        failed,
    })
}

async fn postgres_database() -> anyhow::Result<String> {
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
    Ok(url.to_string())
}

#[tokio::main]
async fn main() {
    eprintln!("measuring the ceiling (openssl speed, {SECONDS} s each)...");
    let ceiling = openssl(Some(2));
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}/bench.db", dir.path().display());
    eprintln!("launching on SQLite...");
    let on_sqlite = measure(&sqlite, &dir.path().join("sqlite")).await;
    eprintln!("launching on PostgreSQL...");
    let on_pg = match postgres_database().await {
        Ok(url) => measure(&url, &dir.path().join("pg")).await,
        Err(e) => Err(e),
    };

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!();
    println!(
        "Launches: POST /launch → 303 with an RS256 token, record committed ({CLIENTS} clients, keep-alive, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| database | launches/s | p50 | p99 | failed | ceiling: openssl speed -multi 2 rsa2048 | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, m) in [("SQLite", on_sqlite), ("PostgreSQL", on_pg)] {
        match m {
            Ok(m) => println!(
                "| {name} | {:.0} | {} | {} | {} | {} sign/s | {} |",
                m.rate,
                ms(m.p50),
                ms(m.p99),
                m.failed,
                ceiling.map_or("unavailable".into(), |c| format!("{c:.0}")),
                ceiling.map_or("-".into(), |c| format!("{:.0}%", 100.0 * m.rate / c)),
            ),
            Err(e) => println!("| {name} | unavailable: {e} | | | | | |"),
        }
    }
}

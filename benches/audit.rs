//! `audit verify` at a million records: the chain is written straight into
//! a fresh database (a million launches' worth of records, hashed as the
//! service hashes them), then walked and checked as the command does.
//! Prints records per second on SQLite and on PostgreSQL.
//!
//! Run: `cargo bench --features ssr --bench audit` (a few minutes: most of
//! it is writing the million records). `AUDIT_RECORDS` changes the count;
//! `TEST_PG_URL` names the PostgreSQL server (default: the local one).

use std::time::Instant;

use agency_sso::config::DbKind;
use agency_sso::domain::audit::{chain_hash, kind, to_hex, Event, Origin, GENESIS};
use agency_sso::store::Db;

/// Rows per INSERT statement (18 columns each).
const BATCH: usize = 500;

fn record(i: i64) -> Event {
    let origin = Origin {
        ip: "10.0.0.7".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0".into(),
        request_id: format!("{:08x}-5f7e-4c1b-9d1e-2f3a4b5c6d7e", i),
    };
    let mut e = Event::new(
        1_760_000_000 + i / 10,
        kind::LAUNCH,
        "success",
        "sam@agency.test",
        &origin,
    )
    .subject("sam@agency.test")
    .site(
        &format!("site-{}", i % 5000),
        &format!("https://site-{}.client.example", i % 5000),
        &format!("Client {}", i % 1000),
    )
    .role("editor")
    .detail(serde_json::json!({
        "alg": "RS256", "deep_link": null, "kid": "aFk3-9sZbq0c3f0Yd0V3pHk3pC9Zl8bqY1m2n3o4p5q",
        "person_id": "0b9e1c2a-5f7e-4c1b-9d1e-2f3a4b5c6d7e", "profile": "twl-sso",
    }));
    e.jti = Some(format!("jti-{i:020}"));
    e
}

async fn fill(db: &Db, n: i64) -> anyhow::Result<()> {
    let mut prev = GENESIS;
    let mut seq = 0i64;
    while seq < n {
        let mut tx = db.pool.begin().await?;
        for _ in 0..20 {
            let rows = (BATCH as i64).min(n - seq);
            if rows == 0 {
                break;
            }
            let mut sql = String::from(
                "INSERT INTO audit_log (seq, at, kind, outcome, actor, subject, site_id, site_url, \
                 client, role, jti, reason, ip, user_agent, request_id, detail, prev_hash, hash) VALUES ",
            );
            let mut events = Vec::with_capacity(rows as usize);
            for r in 0..rows {
                let b = r as usize * 18;
                if r > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(
                    &(1..=18)
                        .map(|c| format!("${}", b + c))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                sql.push(')');
                seq += 1;
                let e = record(seq);
                let h = chain_hash(&prev, &e);
                events.push((seq, e, to_hex(&prev), to_hex(&h)));
                prev = h;
            }
            let mut q = sqlx::query(&sql);
            for (s, e, p, h) in events {
                q = q
                    .bind(s)
                    .bind(e.at)
                    .bind(e.kind)
                    .bind(e.outcome)
                    .bind(e.actor)
                    .bind(e.subject)
                    .bind(e.site_id)
                    .bind(e.site_url)
                    .bind(e.client)
                    .bind(e.role)
                    .bind(e.jti)
                    .bind(e.reason)
                    .bind(e.ip)
                    .bind(e.user_agent)
                    .bind(e.request_id)
                    .bind(e.detail)
                    .bind(p)
                    .bind(h);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(n)
        .bind(to_hex(&prev))
        .execute(&db.pool)
        .await?;
    Ok(())
}

async fn measure(name: &str, url: &str, kind: DbKind, n: i64) -> anyhow::Result<()> {
    let db = Db::connect(url, kind).await?;
    // The service's start-up record is not part of the synthetic chain.
    sqlx::query("DELETE FROM audit_log")
        .execute(&db.pool)
        .await?;
    let t = Instant::now();
    fill(&db, n).await?;
    eprintln!(
        "{name}: wrote {n} records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    // The synthetic chain has no checkpoints: any master key will do.
    let masters = agency_sso::domain::secrets::MasterKeys::new(
        agency_sso::domain::secrets::MasterKey::new(rand::random()),
        vec![],
    );
    let report = agency_sso::service::audit::verify(&db, &masters, &[]).await?;
    let secs = t.elapsed().as_secs_f64();
    let summary = report
        .outcome
        .map_err(|p| anyhow::anyhow!("the synthetic chain does not verify: {p}"))?;
    anyhow::ensure!(
        summary.records as i64 == n,
        "walked {} of {n}",
        summary.records
    );
    println!(
        "| audit verify, {name} | {n} records | {secs:.1} s | {:.0} records/s |",
        n as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: i64 = std::env::var("AUDIT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}/audit.db", dir.path().display());
    measure("SQLite", &sqlite, DbKind::Sqlite, n).await?;

    let admin = std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!("sso_bench_audit_{}", std::process::id());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&name);
    let outcome = measure("PostgreSQL", url.as_str(), DbKind::Postgres, n).await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&pool)
        .await;
    outcome
}

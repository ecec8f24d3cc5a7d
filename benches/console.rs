//! The admin console's reads at agency scale: 5,000 sites, 500 people,
//! 100,000 direct grants and 20 teams granted on clients, on SQLite and on
//! PostgreSQL. Times, through the store code the pages call, the sites list
//! (first page, a search, a client filter), the people list, one site's
//! "who can enter", one person's grants (the home page and person page
//! read), and the grants applying to one launch. Prints p50 and worst of
//! 20 runs each.
//!
//! Run: `cargo bench --features ssr --bench console`. `TEST_PG_URL` names
//! the PostgreSQL server (default: the local one).

use std::time::Instant;

use agency_sso::config::DbKind;
use agency_sso::store::{self, Db};

const SITES: usize = 5_000;
const PEOPLE: usize = 500;
const GRANTS_PER_PERSON: usize = 200;
const TEAMS: usize = 20;
const RUNS: usize = 20;

/// Insert `rows` in batches: `head` is the INSERT up to VALUES, `row` a
/// value tuple with `{}` where each of the row's bound cells goes.
async fn insert(db: &Db, head: &str, row: &str, rows: &[Vec<String>]) -> anyhow::Result<()> {
    for chunk in rows.chunks(200) {
        let mut sql = format!("{head} VALUES ");
        let mut n = 0;
        for (r, cells) in chunk.iter().enumerate() {
            if r > 0 {
                sql.push(',');
            }
            let mut tuple = row.to_string();
            for _ in cells {
                n += 1;
                tuple = tuple.replacen("{}", &format!("${n}"), 1);
            }
            sql.push_str(&tuple);
        }
        let mut q = sqlx::query(&sql);
        for cells in chunk {
            for v in cells {
                q = q.bind(v.clone());
            }
        }
        q.execute(&db.pool).await?;
    }
    Ok(())
}

async fn seed(db: &Db) -> anyhow::Result<()> {
    let sites: Vec<Vec<String>> = (0..SITES)
        .map(|i| {
            vec![
                format!("site-{i:05}"),
                format!("Client {:03} site {}", i / 5, i % 5),
                format!("Client {:03}", i / 5),
                format!("https://site-{i:05}.client-{:03}.example", i / 5),
            ]
        })
        .collect();
    insert(
        db,
        "INSERT INTO sites (id, name, client, url, profile, login_template, username_claim, \
         signing, roles, token_lifetime, created_at, updated_at)",
        "({}, {}, {}, {}, 'twl-sso', '/wp-login.php?action=twl_sso&token={token}', 'username', \
         'RS256', 'administrator editor author contributor subscriber', 60, 0, 0)",
        &sites,
    )
    .await?;
    let people: Vec<Vec<String>> = (0..PEOPLE)
        .map(|i| {
            vec![
                format!("person-{i:03}"),
                format!("subject-{i:03}"),
                format!("person{i:03}@agency.test"),
                format!("Person {i:03}"),
            ]
        })
        .collect();
    insert(
        db,
        "INSERT INTO people (id, issuer, subject, email, name, is_admin, disabled, created_at)",
        "({}, 'https://idp.example', {}, {}, {}, 0, 0, 0)",
        &people,
    )
    .await?;
    let grants: Vec<Vec<String>> = (0..PEOPLE)
        .flat_map(|p| {
            (0..GRANTS_PER_PERSON).map(move |g| {
                vec![
                    format!("grant-{p:03}-{g:03}"),
                    format!("person{p:03}@agency.test"),
                    format!("site-{:05}", (p * 37 + g * 25) % SITES),
                ]
            })
        })
        .collect();
    insert(
        db,
        "INSERT INTO grants (id, email, site_id, role, reason, created_at, created_by)",
        "({}, {}, {}, 'editor', '', 0, 'bench')",
        &grants,
    )
    .await?;
    let teams: Vec<Vec<String>> = (0..TEAMS)
        .map(|t| vec![format!("team-{t}"), format!("Team {t}")])
        .collect();
    insert(
        db,
        "INSERT INTO teams (id, name, created_at)",
        "({}, {}, 0)",
        &teams,
    )
    .await?;
    let team_grants: Vec<Vec<String>> = (0..TEAMS)
        .map(|t| {
            vec![
                format!("tg-{t}"),
                format!("team-{t}"),
                format!("Client {:03}", t * 7),
            ]
        })
        .collect();
    insert(
        db,
        "INSERT INTO team_grants (id, team_id, client, role, created_at, created_by)",
        "({}, {}, {}, 'author', 0, 'bench')",
        &team_grants,
    )
    .await?;
    let members: Vec<Vec<String>> = (0..TEAMS)
        .flat_map(|t| {
            (0..25).map(move |m| {
                vec![
                    format!("team-{t}"),
                    format!("person{:03}@agency.test", (t * 25 + m) % PEOPLE),
                ]
            })
        })
        .collect();
    insert(
        db,
        "INSERT INTO team_members (team_id, email, added_at, added_by)",
        "({}, {}, 0, 'bench')",
        &members,
    )
    .await?;
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    Ok(())
}

/// p50 and worst of `RUNS` runs of `f`, in milliseconds.
async fn time<F, Fut, T>(mut f: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut ms = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok((ms[RUNS / 2], ms[RUNS - 1]))
}

async fn measure(name: &str, url: &str, kind: DbKind) -> anyhow::Result<()> {
    let db = Db::connect(url, kind).await?;
    let t = Instant::now();
    seed(&db).await?;
    eprintln!("{name}: seeded in {:.1} s", t.elapsed().as_secs_f64());
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grants")
        .fetch_one(&db.pool)
        .await?;
    anyhow::ensure!(n as usize == PEOPLE * GRANTS_PER_PERSON, "{n} grants");
    let all = store::sites::SiteQuery::default();
    let search = store::sites::SiteQuery {
        text: "client 123 site".into(),
        ..Default::default()
    };
    let client = store::sites::SiteQuery {
        client: "Client 777".into(),
        ..Default::default()
    };
    let rows: Vec<(&str, (f64, f64))> = vec![
        (
            "sites list, first page",
            time(|| store::sites::search(&db, &all, 0, 50)).await?,
        ),
        (
            "sites list, page 60",
            time(|| store::sites::search(&db, &all, 2950, 50)).await?,
        ),
        (
            "sites list, a search",
            time(|| store::sites::search(&db, &search, 0, 50)).await?,
        ),
        (
            "sites list, one client",
            time(|| store::sites::search(&db, &client, 0, 50)).await?,
        ),
        (
            "people list, first page",
            time(|| store::people::search(&db, "", "", 0, 0, 50)).await?,
        ),
        (
            "people list, a search",
            time(|| store::people::search(&db, "person 42", "", 0, 0, 50)).await?,
        ),
        (
            "who can enter one site",
            time(|| store::grants::site_access(&db, "site-00035")).await?,
        ),
        (
            "one person's grants (home, person page)",
            time(|| store::grants::granted_sites(&db, "person042@agency.test")).await?,
        ),
        (
            "grants applying to one launch",
            time(|| store::grants::applying(&db.pool, "person042@agency.test", "site-01579"))
                .await?,
        ),
    ];
    for (what, (p50, worst)) in rows {
        println!("| {name} | {what} | {p50:.2} ms | {worst:.2} ms |");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "| database | read (5,000 sites, 500 people, 100,000 grants) | p50 | worst of {RUNS} |"
    );
    println!("| --- | --- | --- | --- |");
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}/console.db", dir.path().display());
    measure("SQLite", &sqlite, DbKind::Sqlite).await?;

    let admin = std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!("sso_bench_console_{}", std::process::id());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&name);
    let outcome = measure("PostgreSQL", url.as_str(), DbKind::Postgres).await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&pool)
        .await;
    outcome
}

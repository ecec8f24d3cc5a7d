//! All SQL lives here. One connection pool for the whole process; the same
//! statements run on SQLite and PostgreSQL through sqlx's `Any` driver, with
//! a migration folder per dialect.

pub mod api_tokens;
pub mod audit;
pub mod connect;
pub mod elevations;
pub mod fleet;
pub mod grants;
pub mod keys;
pub mod launches;
pub mod messages;
pub mod notifications;
pub mod people;
pub mod sessions;
pub mod sites;
pub mod stream;
pub mod teams;

use std::time::Duration;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::config::DbKind;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The database handle passed in state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub kind: DbKind,
    /// Turns at SQLite's one write lock, shared by every clone.
    turns: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Db {
    /// Open the pool (creating a SQLite file and its folder on first run)
    /// and bring the schema up to date.
    pub async fn connect(url: &str, kind: DbKind) -> anyhow::Result<Db> {
        let db = Db::connect_unmigrated(url, kind).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Open the pool (creating a SQLite file and its folder on first run),
    /// leaving the schema as it is (`agency-sso migrate`).
    pub async fn connect_unmigrated(url: &str, kind: DbKind) -> anyhow::Result<Db> {
        let url = match kind {
            DbKind::Sqlite => prepare_sqlite(url)?,
            DbKind::Postgres => url.to_string(),
        };
        let max = match kind {
            DbKind::Sqlite => 8,
            DbKind::Postgres => 16,
        };
        Db::open(url.as_str(), kind, max).await
    }

    /// The database as it is, to look at (`migrate --check`, `check`):
    /// None when a SQLite file does not exist yet (none is created).
    pub async fn inspect(url: &str, kind: DbKind) -> anyhow::Result<Option<Db>> {
        install_default_drivers();
        let url = match kind {
            DbKind::Postgres => url.to_string(),
            DbKind::Sqlite => {
                let prepared = prepare_sqlite_path(url)?;
                if !std::path::Path::new(&prepared).exists() {
                    return Ok(None);
                }
                format!("sqlite://{prepared}?mode=ro")
            }
        };
        // Read only, and without the writers' settings (WAL would change an
        // empty file).
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        Ok(Some(Db {
            pool,
            kind,
            turns: Default::default(),
        }))
    }

    /// Open the pool of `max` connections without touching the schema
    /// (`migrate --check`, `check`).
    pub async fn open(url: &str, kind: DbKind, max: u32) -> anyhow::Result<Db> {
        install_default_drivers();
        let pool = pool_options(kind, max)
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        Ok(Db {
            pool,
            kind,
            turns: Default::default(),
        })
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Where the schema stands against this binary's migrations.
    pub async fn schema(&self) -> anyhow::Result<Schema> {
        let exists = match self.kind {
            DbKind::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            DbKind::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
            }
        };
        let (n,): (i64,) = sqlx::query_as(exists)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the database: {e}"))?;
        let applied: Vec<i64> = if n == 0 {
            Vec::new()
        } else {
            sqlx::query_as::<_, (i64,)>(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the database's migrations: {e}"))?
            .into_iter()
            .map(|(v,)| v)
            .collect()
        };
        let known: Vec<(i64, String)> = self
            .migrator()
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        Ok(Schema {
            pending: known
                .iter()
                .filter(|(v, _)| !applied.contains(v))
                .cloned()
                .collect(),
            unknown: applied
                .iter()
                .filter(|v| !known.iter().any(|(k, _)| k == *v))
                .copied()
                .collect(),
            known_max: known.iter().map(|(v, _)| *v).max().unwrap_or(0),
            applied,
        })
    }

    /// Bring the schema up to date; refused, in one line, on a database
    /// that a newer agency-sso has migrated.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let schema = self.schema().await?;
        if let Some(problem) = schema.newer() {
            anyhow::bail!(problem);
        }
        self.migrator()
            .run(&self.pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot apply database migrations: {e}"))
    }

    /// A pool of its own, of one connection to the same database, opened
    /// on first use by the runtime that uses it (a task on another runtime
    /// then never waits for this pool's connections, nor they for it).
    pub fn single(&self) -> Db {
        let options = (*self.pool.connect_options()).clone();
        Db {
            pool: pool_options(self.kind, 1).connect_lazy_with(options),
            kind: self.kind,
            turns: self.turns.clone(),
        }
    }

    /// Wait for this process's turn to write, on SQLite (`None` on
    /// PostgreSQL, whose writers do not wait for each other): hold it until
    /// the transaction has committed. SQLite has one writer at a time, and
    /// a connection that finds the lock taken sleeps in growing steps (1,
    /// 2, 5, 10, 15, 20, 25 ms...) before it looks again, so a launch behind
    /// a batch of outcomes that takes 5 ms would sleep 8 or 18. Writers that
    /// take turns here queue in order instead, and each starts the moment
    /// the one before it is done. Taken by the hot writers: the launch
    /// recorder and the outbox worker.
    pub async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.kind {
            DbKind::Sqlite => Some(self.turns.lock().await),
            DbKind::Postgres => None,
        }
    }

    /// For `/readyz`: can a statement round-trip right now?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// The database's schema against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Migrations applied (their versions).
    pub applied: Vec<i64>,
    /// This binary's migrations not applied yet: version and name.
    pub pending: Vec<(i64, String)>,
    /// Applied migrations this binary does not know (a newer one's).
    pub unknown: Vec<i64>,
    /// This binary's last migration.
    pub known_max: i64,
}

impl Schema {
    /// Why this binary must not run on the database: a newer one migrated it.
    pub fn newer(&self) -> Option<String> {
        let newest = *self.unknown.iter().max()?;
        Some(format!(
            "the database was migrated by a newer agency-sso (its schema is at migration {newest}; \
             this agency-sso {} knows migrations up to {}): run that newer version, or restore the \
             backup taken before the upgrade",
            crate::VERSION,
            self.known_max
        ))
    }
}

/// Pool settings: `max` connections, each set up for its dialect.
fn pool_options(kind: DbKind, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if kind == DbKind::Sqlite {
                    // WAL lets readers run beside the single writer; the busy
                    // timeout makes writers queue instead of failing at once.
                    // Temporary data (a multi-row statement's undo journal,
                    // sorts) stays in memory: by default SQLite keeps it in
                    // files, and the launch writer created, wrote and
                    // deleted them all through the launch benchmark.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                         PRAGMA temp_store = MEMORY;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

/// Copy a SQLite database to `file`, consistently while it is in use
/// (`VACUUM INTO`), without its sessions: a restored copy asks everyone to
/// sign in again, and a stolen copy holds no live session. The copy is
/// readable by its owner only, and checked before this returns.
pub async fn backup_sqlite(db: &Db, file: &std::path::Path) -> anyhow::Result<u64> {
    use sqlx::Connection;
    anyhow::ensure!(
        db.kind == DbKind::Sqlite,
        "only a SQLite database is copied this way"
    );
    anyhow::ensure!(!file.exists(), "{} exists: name a new file", file.display());
    let path = file
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not a UTF-8 path", file.display()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(path)
        .execute(&db.pool)
        .await
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut copy = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
    sqlx::query("DELETE FROM sessions")
        .execute(&mut copy)
        .await?;
    sqlx::query("VACUUM").execute(&mut copy).await?;
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut copy)
        .await?;
    copy.close().await?;
    anyhow::ensure!(check == "ok", "the copy does not check out: {check}");
    Ok(std::fs::metadata(file)?.len())
}

/// SQLite writes its file and, beside it, its write-ahead log: say plainly
/// when either cannot be written (a read-only mount, say) instead of the
/// driver's "unable to open database file".
fn check_writable(file: &std::path::Path) -> anyhow::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let read_only = |what: &std::path::Path, e: std::io::Error| {
        anyhow::anyhow!(
            "the SQLite database cannot be written: {} is read-only ({e})",
            what.display()
        )
    };
    let probe = dir.join(format!(".agency-sso-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| read_only(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    if file.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(|e| read_only(file, e))?;
    }
    Ok(())
}

/// Make sure the SQLite file's folder exists and that the file is created on first use.
/// The SQLite file a URL names.
fn prepare_sqlite_path(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("SSO_DATABASE_URL: name a SQLite file, e.g. sqlite://data/agency-sso.db");
    }
    Ok(path.to_string())
}

fn prepare_sqlite(url: &str) -> anyhow::Result<String> {
    let path = prepare_sqlite_path(url)?;
    let path = path.as_str();
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
    }
    if !query.contains("mode=ro") {
        check_writable(std::path::Path::new(path))?;
    }
    let mode = if query.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    let sep = if query.is_empty() || mode.is_empty() {
        ""
    } else {
        "&"
    };
    Ok(format!("sqlite://{path}?{query}{sep}{mode}"))
}

/// The dialect a connection speaks, for the few statements that differ
/// and run inside a caller's transaction (where no `Db` is at hand).
pub(crate) fn kind_of(conn: &sqlx::AnyConnection) -> DbKind {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        DbKind::Postgres
    } else {
        DbKind::Sqlite
    }
}

/// Booleans are stored as 0/1 integers so that one decoding serves both dialects.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = std::env::temp_dir().join(format!("sso-prep-{}", std::process::id()));
        let url = format!("sqlite://{}/x/app.db", dir.display());
        let out = prepare_sqlite(&url).unwrap();
        assert!(out.ends_with("/x/app.db?mode=rwc"), "{out}");
        assert!(dir.join("x").is_dir());
        let out = prepare_sqlite(&format!("{url}?mode=ro")).unwrap();
        assert!(out.ends_with("?mode=ro"), "{out}");
        assert!(prepare_sqlite("sqlite::memory:").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

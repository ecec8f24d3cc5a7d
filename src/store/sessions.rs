//! The tower-sessions store over our own `sessions` table. The person a
//! session belongs to is copied into a column, so that disabling a person
//! or "sign out everywhere" ends all their sessions in one statement.
//!
//! A row is keyed by a hash of the session id, never by the id (the cookie's
//! value): a database dump or a read replica holds no live session. The
//! stored record leaves the id out too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::Db;
use crate::domain::session::SignedIn;

/// Session key under which [`SignedIn`] is stored.
pub const SIGNED_IN_KEY: &str = "signed_in";

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Db,
    /// What this process last read or wrote for each session: its data
    /// and stored expiry, so that a request that changed nothing does not
    /// rewrite the row only to move the expiry by a few seconds.
    seen: Arc<Mutex<HashMap<Id, Seen>>>,
    /// Records a request has just read together with other data, for
    /// that request's own `load` (see [`DbSessionStore::prime`]).
    primed: Arc<Mutex<HashMap<Id, Record>>>,
}

/// What a save writes.
enum Change {
    Nothing,
    /// The expiry alone: the stored record is left as it is, so that a
    /// request that changed nothing never writes back data another request
    /// has changed since it was read.
    Expiry,
    Record,
}

#[derive(Debug)]
struct Seen {
    data: HashMap<String, serde_json::Value>,
    expires_at: i64,
}

/// A session whose data did not change is written again only once its
/// inactivity expiry has moved by this many seconds: an idle session may
/// therefore end up to this much earlier than the configured idle time.
pub const EXPIRY_SLACK_SECS: i64 = 60;

/// Sessions remembered per process; past this the memory starts over.
const SEEN_MAX: usize = 50_000;

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        DbSessionStore {
            db,
            seen: Arc::default(),
            primed: Arc::default(),
        }
    }

    /// The time sessions expire by (tower-sessions sets their expiry from
    /// the system clock, so they are read by it too), in Unix seconds.
    pub fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// Hand a session's stored record, just read from its row by the
    /// caller along with other data in one statement, to the next `load`
    /// of that session: the request's `Session` then gets it without
    /// reading the row a second time. The caller loads its session right
    /// after and then calls [`DbSessionStore::unprime`], so that a record
    /// is never served later than the request that read it.
    pub fn prime(&self, id: Id, stored: &str, expires_at: i64) -> session_store::Result<()> {
        let record = decode(id, stored, expires_at)?;
        self.primed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, record);
        Ok(())
    }

    /// Drop a primed record its `load` did not take.
    pub fn unprime(&self, id: &Id) {
        self.take_primed(id);
    }

    fn take_primed(&self, id: &Id) -> Option<Record> {
        self.primed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    fn remember(&self, record: &Record) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SEEN_MAX {
            seen.clear();
        }
        seen.insert(
            record.id,
            Seen {
                data: record.data.clone(),
                expires_at: record.expiry_date.unix_timestamp(),
            },
        );
    }

    fn forget(&self, id: &Id) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// What a save of `record` must write, against what was last read or written.
    fn change(&self, record: &Record) -> Change {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(&record.id) {
            Some(s) if s.data == record.data => {
                if (record.expiry_date.unix_timestamp() - s.expires_at).abs() < EXPIRY_SLACK_SECS {
                    Change::Nothing
                } else {
                    Change::Expiry
                }
            }
            _ => Change::Record,
        }
    }
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn person_of(record: &Record) -> Option<String> {
    record
        .data
        .get(SIGNED_IN_KEY)
        .and_then(|v| serde_json::from_value::<SignedIn>(v.clone()).ok())
        .map(|s| s.person_id)
}

/// The key a session's row is stored under: a hash of its id. Ids are 128
/// random bits, so the hash needs no key to be irreversible.
pub fn stored_id(id: &Id) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let d = Sha256::digest(format!("agency-sso session id\0{id}").as_bytes());
    let mut hex = String::with_capacity(64);
    for b in d {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The record as stored: without its id (a placeholder takes its place).
fn encode(record: &Record) -> session_store::Result<String> {
    let stored = Record {
        id: Id(0),
        ..record.clone()
    };
    serde_json::to_string(&stored).map_err(|e| session_store::Error::Encode(e.to_string()))
}

/// A stored record, given back its id (which the cookie brought) and the
/// row's expiry (moved alone when nothing else changed, see `save`).
fn decode(id: Id, stored: &str, expires_at: i64) -> session_store::Result<Record> {
    let mut record: Record =
        serde_json::from_str(stored).map_err(|e| session_store::Error::Decode(e.to_string()))?;
    record.id = id;
    if let Ok(at) = time::OffsetDateTime::from_unix_timestamp(expires_at) {
        record.expiry_date = at;
    }
    Ok(record)
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id that collides with a live one is drawn again rather than overwriting it.
        loop {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, person_id, record, expires_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(stored_id(&record.id))
            .bind(person_of(record))
            .bind(encode(record)?)
            .bind(record.expiry_date.unix_timestamp())
            .execute(&self.db.pool)
            .await
            .map_err(backend)?
            .rows_affected();
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Update only: a request that loaded the session before it was ended
    /// (sign-out, a disabled person, a cycled id) must not bring it back.
    /// New sessions go through `create`.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self.change(record) {
            Change::Nothing => return Ok(()),
            Change::Expiry => {
                sqlx::query("UPDATE sessions SET expires_at = $2 WHERE id = $1")
                    .bind(stored_id(&record.id))
                    .bind(record.expiry_date.unix_timestamp())
                    .execute(&self.db.pool)
                    .await
                    .map_err(backend)?;
            }
            Change::Record => {
                sqlx::query(
                    "UPDATE sessions SET person_id = $2, record = $3, expires_at = $4 WHERE id = $1",
                )
                .bind(stored_id(&record.id))
                .bind(person_of(record))
                .bind(encode(record)?)
                .bind(record.expiry_date.unix_timestamp())
                .execute(&self.db.pool)
                .await
                .map_err(backend)?;
            }
        }
        self.remember(record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        if let Some(record) = self.take_primed(id) {
            self.remember(&record);
            return Ok(Some(record));
        }
        let now = Self::now();
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT record, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(stored_id(id))
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(backend)?;
        let record: Option<Record> = row
            .map(|(json, expires_at)| decode(*id, &json, expires_at))
            .transpose()?;
        match &record {
            Some(r) => self.remember(r),
            None => self.forget(id),
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.forget(id);
        self.unprime(id);
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(stored_id(id))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    /// Expired sessions are deleted, and each signed-in one recorded as
    /// ended by inactivity, in the same transaction.
    async fn delete_expired(&self) -> session_store::Result<()> {
        use crate::domain::audit::{kind, Actor};
        let now = Self::now();
        let mut tx = super::audit::begin(&self.db).await.map_err(backend)?;
        let ended: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.email, p.id FROM sessions s JOIN people p ON p.id = s.person_id \
             WHERE s.expires_at <= $1",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for (email, person_id) in ended {
            let event = Actor::system()
                .did(now, kind::SESSION_ENDED)
                .subject(&email)
                .reason("idle_timeout")
                .detail(serde_json::json!({ "person_id": person_id }));
            super::audit::append(&mut tx, &event)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
}

/// How many live sessions a person has (for tests and the admin console).
pub async fn count_for_person(db: &Db, person_id: &str, now: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE person_id = $1 AND expires_at > $2")
            .bind(person_id)
            .bind(now)
            .fetch_one(&db.pool)
            .await?;
    Ok(n)
}

/// A session as the admin console shows it: never its stored key, only a
/// handle derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub handle: String,
    pub person_id: String,
    pub email: String,
    pub name: Option<String>,
    pub signed_in_at: Option<i64>,
    pub expires_at: i64,
}

/// A stable public handle for a session's stored key (a hash prefix, not reversible).
pub fn handle(session_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("agency-sso session handle:{session_id}").as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Signed-in sessions, newest expiry first; optionally one person's or
/// those whose person matches the typed text.
pub async fn active(
    db: &Db,
    text: &str,
    now: i64,
    limit: i64,
) -> Result<(Vec<ActiveSession>, i64), sqlx::Error> {
    let pattern = format!(
        "%{}%",
        super::sites::escape_like(&text.trim().to_lowercase())
    );
    let filter = "FROM sessions s JOIN people p ON p.id = s.person_id \
                  WHERE s.expires_at > $1 AND (p.email LIKE $2 ESCAPE '\\' \
                        OR LOWER(COALESCE(p.name, '')) LIKE $2 ESCAPE '\\')";
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {filter}"))
        .bind(now)
        .bind(&pattern)
        .fetch_one(&db.pool)
        .await?;
    let rows: Vec<(String, String, String, Option<String>, String, i64)> =
        sqlx::query_as(&format!(
            "SELECT s.id, p.id, p.email, p.name, s.record, s.expires_at {filter} \
             ORDER BY p.email, s.expires_at DESC LIMIT {}",
            limit.clamp(1, 500)
        ))
        .bind(now)
        .bind(&pattern)
        .fetch_all(&db.pool)
        .await?;
    Ok((
        rows.into_iter()
            .map(
                |(id, person_id, email, name, record, expires_at)| ActiveSession {
                    handle: handle(&id),
                    signed_in_at: signed_in_at(&record),
                    person_id,
                    email,
                    name,
                    expires_at,
                },
            )
            .collect(),
        total,
    ))
}

/// When the session's person signed in, read from the stored record.
fn signed_in_at(record: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(record).ok()?;
    v.get("data")?
        .get(SIGNED_IN_KEY)?
        .get("signed_in_at")?
        .as_i64()
}

pub async fn ids_of_person(
    conn: &mut sqlx::AnyConnection,
    person_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM sessions WHERE person_id = $1")
        .bind(person_id)
        .fetch_all(&mut *conn)
        .await
}

pub async fn delete_in(conn: &mut sqlx::AnyConnection, id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

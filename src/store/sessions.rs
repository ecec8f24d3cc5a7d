//! The tower-sessions store over our own `sessions` table. The person a
//! session belongs to is copied into a column, so that disabling a person
//! or "sign out everywhere" ends all their sessions in one statement.

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
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        DbSessionStore { db }
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

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(record).map_err(|e| session_store::Error::Encode(e.to_string()))
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
            .bind(record.id.to_string())
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
        sqlx::query(
            "UPDATE sessions SET person_id = $2, record = $3, expires_at = $4 WHERE id = $1",
        )
        .bind(record.id.to_string())
        .bind(person_of(record))
        .bind(encode(record)?)
        .bind(record.expiry_date.unix_timestamp())
        .execute(&self.db.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let row: Option<(String,)> =
            sqlx::query_as("SELECT record FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(id.to_string())
                .bind(now)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(backend)?;
        row.map(|(json,)| {
            serde_json::from_str(&json).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
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
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
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

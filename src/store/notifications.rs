//! The notifications outbox (see `migrations/*/0014_notifications.sql`).

use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::config::DbKind;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Notification {
    pub id: String,
    pub event: String,
    /// The facts told (JSON).
    pub body: String,
    pub created_at: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: String,
}

const COLUMNS: &str = "id, event, body, created_at, state, attempts, next_attempt_at, last_error";

/// Write one, due now, inside the caller's transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    event: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (id, event, body, created_at, state, next_attempt_at) \
         VALUES ($1, $2, $3, $4, 'pending', $4)",
    )
    .bind(id)
    .bind(event)
    .bind(body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether any is due (a read, so that an idle worker takes no lock).
pub async fn any_due(db: &Db, now: i64) -> Result<bool, sqlx::Error> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM notifications WHERE state = 'pending' AND next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(n.is_some())
}

/// Claim the due ones, oldest first, for `owner` until `lease_until`
/// (another worker skips them meanwhile; a claim that runs out, as when
/// its process died, is claimed again).
pub async fn claim_due(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let skip_locked = match db.kind {
        DbKind::Postgres => " FOR UPDATE SKIP LOCKED",
        DbKind::Sqlite => "",
    };
    let _turn = db.write_turn().await;
    let mut claimed: Vec<Notification> = sqlx::query_as(&format!(
        "UPDATE notifications SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM notifications WHERE state = 'pending' \
           AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
           ORDER BY created_at, id LIMIT $4{skip_locked}) \
         RETURNING {COLUMNS}"
    ))
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    // RETURNING keeps no order (PostgreSQL): sent oldest first.
    claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(claimed)
}

/// The outcome of an attempt by `owner`: `state` done, skipped or failed,
/// or pending again at `next_attempt_at`, with the error in words.
pub async fn finish(
    db: &Db,
    id: &str,
    owner: &str,
    state: &str,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "UPDATE notifications SET state = $1, next_attempt_at = $2, last_error = $3, \
                lease_owner = NULL, lease_until = NULL, \
                done_at = CASE WHEN $1 = 'pending' THEN NULL ELSE $4 END \
         WHERE id = $5 AND lease_owner = $6",
    )
    .bind(state)
    .bind(next_attempt_at)
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(owner)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Every notification, oldest first (tests, and the console later).
pub async fn all(db: &Db) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications ORDER BY created_at, id"
    ))
    .fetch_all(&db.pool)
    .await
}

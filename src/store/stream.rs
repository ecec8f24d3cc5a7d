//! Audit stream destinations, each with its cursor and lease.

use sqlx::FromRow;

use super::Db;

/// A destination as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Destination {
    pub id: String,
    pub name: String,
    pub target: String,
    pub secret_sealed: String,
    pub ca_pem: String,
    /// The last record the receiver acknowledged.
    pub last_seq: i64,
    pub created_at: i64,
    pub created_by: String,
    pub failures: i64,
    pub next_attempt_at: i64,
    pub last_error: String,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
}

const COLUMNS: &str = "id, name, target, secret_sealed, ca_pem, last_seq, created_at, created_by, \
     failures, next_attempt_at, last_error, last_attempt_at, last_success_at";

/// Store a new destination; false when the name is taken.
#[allow(clippy::too_many_arguments)]
pub async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    name: &str,
    target: &str,
    secret_sealed: &str,
    ca_pem: &str,
    last_seq: i64,
    created_by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO audit_destinations (id, name, target, secret_sealed, ca_pem, last_seq, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(target)
    .bind(secret_sealed)
    .bind(ca_pem)
    .bind(last_seq)
    .bind(now)
    .bind(created_by)
    .execute(ex)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn list(db: &Db) -> Result<Vec<Destination>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_destinations ORDER BY name"
    ))
    .fetch_all(&db.pool)
    .await
}

/// Remove a destination by name: the destination as it was, or `None`.
pub async fn remove<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    name: &str,
) -> Result<Option<Destination>, sqlx::Error> {
    sqlx::query_as(&format!(
        "DELETE FROM audit_destinations WHERE name = $1 RETURNING {COLUMNS}"
    ))
    .bind(name)
    .fetch_optional(ex)
    .await
}

/// The last record a destination acknowledged (`None`: no such destination).
pub async fn cursor(db: &Db, id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT last_seq FROM audit_destinations WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Take the lease of a destination that is due, for `owner` until
/// `until`: the destination, or `None` (not due, or another holds it).
pub async fn claim(
    db: &Db,
    id: &str,
    owner: &str,
    now: i64,
    until: i64,
) -> Result<Option<Destination>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE audit_destinations SET lease_owner = $2, lease_until = $4 \
         WHERE id = $1 AND next_attempt_at <= $3 \
           AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3) \
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .bind(now)
    .bind(until)
    .fetch_optional(&db.pool)
    .await
}

/// The receiver acknowledged everything up to `seq`: move the cursor
/// (only forward, and only while `owner` holds the lease).
pub async fn advance(
    db: &Db,
    id: &str,
    owner: &str,
    seq: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE audit_destinations SET last_seq = $3, failures = 0, last_error = '', \
             last_attempt_at = $4, last_success_at = $4, next_attempt_at = 0 \
         WHERE id = $1 AND lease_owner = $2 AND last_seq < $3",
    )
    .bind(id)
    .bind(owner)
    .bind(seq)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A delivery failed: say why and when to try again.
pub async fn failed(
    db: &Db,
    id: &str,
    owner: &str,
    error: &str,
    next_attempt_at: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_destinations SET failures = failures + 1, last_error = $3, \
             next_attempt_at = $4, last_attempt_at = $5, lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(error)
    .bind(next_attempt_at)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Give the lease back.
pub async fn release(db: &Db, id: &str, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_destinations SET lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .execute(&db.pool)
    .await?;
    Ok(())
}

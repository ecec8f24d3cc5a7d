//! API tokens (kept as the hash of their secret) and the answers kept
//! under Idempotency-Keys.

use sqlx::FromRow;

use super::Db;
use crate::domain::api::{split_scopes, Token};

#[derive(FromRow)]
struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for Token {
    fn from(r: TokenRow) -> Token {
        Token {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            scopes: split_scopes(&r.scopes),
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const COLUMNS: &str =
    "id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at, revoked_at";

/// Store a new token; false when the name is taken.
#[allow(clippy::too_many_arguments)]
pub async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    name: &str,
    secret_hash: &str,
    prefix: &str,
    scopes: &str,
    created_by: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO api_tokens (id, name, secret_hash, prefix, scopes, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(secret_hash)
    .bind(prefix)
    .bind(scopes)
    .bind(created_by)
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The token whose secret hashes so.
pub async fn by_hash(db: &Db, secret_hash: &str) -> Result<Option<Token>, sqlx::Error> {
    let row: Option<TokenRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE secret_hash = $1"
    ))
    .bind(secret_hash)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(Token::from))
}

/// Every token, newest first.
pub async fn list(db: &Db) -> Result<Vec<Token>, sqlx::Error> {
    let rows: Vec<TokenRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, name"
    ))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Token::from).collect())
}

/// Revoke a live token by name: the token as it was, or `None`.
pub async fn revoke<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    name: &str,
    now: i64,
) -> Result<Option<Token>, sqlx::Error> {
    let row: Option<TokenRow> = sqlx::query_as(&format!(
        "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Token::from))
}

/// Note a use, at most once a minute per token (a write per call would
/// make every read a write).
pub async fn touch(db: &Db, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $2 \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(id)
    .bind(now)
    .bind(now - 60)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// What a key holds: the request's fingerprint, and its answer (status 0:
/// still being carried out).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Kept {
    pub request_hash: String,
    pub status: i64,
    pub body: String,
    pub created_at: i64,
}

/// Claim a key for a request now being carried out: true when this call
/// claimed it; false when it is held (see [`kept`]). A claim left by a
/// request that never finished (a crash) is taken over after `stale` seconds.
pub async fn claim(
    db: &Db,
    token_id: &str,
    key: &str,
    request_hash: &str,
    now: i64,
    stale: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "DELETE FROM api_idempotency WHERE token_id = $1 AND idem_key = $2 AND status = 0 AND created_at < $3",
    )
    .bind(token_id)
    .bind(key)
    .bind(now - stale)
    .execute(&db.pool)
    .await?;
    let n = sqlx::query(
        "INSERT INTO api_idempotency (token_id, idem_key, request_hash, status, body, created_at) \
         VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (token_id, idem_key) DO NOTHING",
    )
    .bind(token_id)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// What a key holds now.
pub async fn kept(db: &Db, token_id: &str, key: &str) -> Result<Option<Kept>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_hash, status, body, created_at FROM api_idempotency \
         WHERE token_id = $1 AND idem_key = $2",
    )
    .bind(token_id)
    .bind(key)
    .fetch_optional(&db.pool)
    .await
}

/// Keep a request's answer under its key.
pub async fn keep(
    db: &Db,
    token_id: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_idempotency SET status = $3, body = $4 WHERE token_id = $1 AND idem_key = $2",
    )
    .bind(token_id)
    .bind(key)
    .bind(i64::from(status))
    .bind(body)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Let a key go (the request failed before it acted: a retry may act).
pub async fn release(db: &Db, token_id: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM api_idempotency WHERE token_id = $1 AND idem_key = $2")
        .bind(token_id)
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forget answers older than `before`.
pub async fn prune_kept(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM api_idempotency WHERE created_at < $1")
            .bind(before)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

//! Connection codes (`connect_codes`): written when an admin makes one,
//! used once in the transaction that connects the site.

use sqlx::FromRow;

use crate::domain::connect::StoredCode;

/// A code to write (its secret is never stored, only `hash`).
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub id: &'a str,
    pub hash: &'a str,
    pub site_url: &'a str,
    pub client: &'a str,
    pub via: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(FromRow)]
struct CodeRow {
    id: String,
    site_url: String,
    client: String,
    via: String,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl From<CodeRow> for StoredCode {
    fn from(r: CodeRow) -> StoredCode {
        StoredCode {
            id: r.id,
            site_url: r.site_url,
            client: r.client,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            via: r.via,
        }
    }
}

pub async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    c: &NewCode<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connect_codes (id, code_hash, site_url, client, via, created_by, created_at, \
                                    expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.id)
    .bind(c.hash)
    .bind(c.site_url)
    .bind(c.client)
    .bind(c.via)
    .bind(c.created_by)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// The code whose secret hashes to `hash`.
pub async fn find_by_hash<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    hash: &str,
) -> Result<Option<StoredCode>, sqlx::Error> {
    let row: Option<CodeRow> = sqlx::query_as(
        "SELECT id, site_url, client, via, created_by, created_at, expires_at, used_at \
         FROM connect_codes WHERE code_hash = $1",
    )
    .bind(hash)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// Use a code: only if nobody has and it has not expired (a compare-and-set,
/// so of two redemptions at once one wins). Returns whether it was this one.
pub async fn use_code<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    site_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connect_codes SET used_at = $1, site_id = $2 \
         WHERE id = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(site_id)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

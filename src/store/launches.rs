//! The launch record: written before a token leaves the dashboard.

use sqlx::FromRow;

use super::Db;
use crate::config::DbKind;

/// One launch, issued or refused. Never holds the token, only its `jti`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LaunchRecord {
    pub id: String,
    pub at: i64,
    /// `launched` or `refused`.
    pub outcome: String,
    /// The refusal's code.
    pub reason: Option<String>,
    pub person_id: String,
    pub email: String,
    pub site_id: String,
    pub site_url: String,
    pub role: Option<String>,
    pub profile: Option<String>,
    pub alg: Option<String>,
    pub jti: Option<String>,
    pub kid: Option<String>,
    pub deep_link: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// What a launch was decided on, checked again in the statement that
/// records it.
#[derive(Debug, Clone)]
pub struct StillTrue<'a> {
    /// The site as read: its version must not have moved.
    pub site_version: i64,
    /// The grant the role comes from: still there, same role, not expired.
    pub grant_id: &'a str,
    /// The RS256 key that signed: still the active key.
    pub kid: Option<&'a str>,
}

const COLUMNS: &str =
    "id, at, outcome, reason, person_id, email, site_id, site_url, role, profile, \
                       alg, jti, kid, deep_link, ip, user_agent, request_id";

/// Record an issued launch, if and only if what it was decided on still
/// holds: the person active, the site enabled and unchanged, the grant
/// live with that role, the signing key still active. Check and write are
/// one statement in one transaction, with the person's "last launched" mark.
/// Returns false (and writes nothing) when something changed meanwhile.
pub async fn record_launch(
    db: &Db,
    r: &LaunchRecord,
    still: &StillTrue<'_>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    // On PostgreSQL the facts are share-locked as they are read: a revoke,
    // disable or edit in flight is waited for and then seen (otherwise it
    // could commit between this statement's snapshot and its commit). On
    // SQLite one writer at a time gives the same.
    let lock = match db.kind {
        DbKind::Postgres => " FOR SHARE",
        DbKind::Sqlite => "",
    };
    let sql = format!(
        "INSERT INTO launches ({COLUMNS}) \
         SELECT $1, $2, 'launched', NULL, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
         WHERE EXISTS (SELECT 1 FROM people WHERE id = $3 AND disabled = 0{lock}) \
           AND EXISTS (SELECT 1 FROM sites WHERE id = $5 AND enabled = 1 AND version = $16{lock}) \
           AND EXISTS (SELECT 1 FROM grants WHERE id = $17 AND site_id = $5 AND email = $4 \
                       AND role = $7 AND (expires_at IS NULL OR expires_at > $2){lock}) \
           AND ($18 = '' OR EXISTS (SELECT 1 FROM signing_keys WHERE kid = $18 AND state = 'active'{lock}))"
    );
    let n = sqlx::query(&sql)
        .bind(&r.id)
        .bind(r.at)
        .bind(&r.person_id)
        .bind(&r.email)
        .bind(&r.site_id)
        .bind(&r.site_url)
        .bind(&r.role)
        .bind(&r.profile)
        .bind(&r.alg)
        .bind(&r.jti)
        .bind(&r.kid)
        .bind(&r.deep_link)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.request_id)
        .bind(still.site_version)
        .bind(still.grant_id)
        .bind(still.kid.unwrap_or(""))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO site_prefs (email, site_id, favourite, last_launched_at) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (email, site_id) DO UPDATE SET last_launched_at = excluded.last_launched_at",
    )
    .bind(&r.email)
    .bind(&r.site_id)
    .bind(r.at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Record a refused launch.
pub async fn record_refusal(db: &Db, r: &LaunchRecord) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO launches ({COLUMNS}) \
         VALUES ($1, $2, 'refused', $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12, $13, $14)"
    );
    sqlx::query(&sql)
        .bind(&r.id)
        .bind(r.at)
        .bind(&r.reason)
        .bind(&r.person_id)
        .bind(&r.email)
        .bind(&r.site_id)
        .bind(&r.site_url)
        .bind(&r.role)
        .bind(&r.profile)
        .bind(&r.alg)
        .bind(&r.deep_link)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.request_id)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// The latest launches, newest first; optionally one person's.
pub async fn latest(
    db: &Db,
    email: Option<&str>,
    limit: i64,
) -> Result<Vec<LaunchRecord>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM launches WHERE ($1 = '' OR email = $1) \
         ORDER BY seq DESC LIMIT $2"
    );
    sqlx::query_as(&sql)
        .bind(email.unwrap_or(""))
        .bind(limit)
        .fetch_all(&db.pool)
        .await
}

/// How many launches there are, and how many distinct `jti` they carry.
pub async fn count(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT jti) FROM launches WHERE outcome = 'launched'")
        .fetch_one(&db.pool)
        .await
}

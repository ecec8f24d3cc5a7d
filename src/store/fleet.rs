//! The fleet's checks (`site_status`): one row per connector site, claimed
//! under a lease when due, finished with the site's report or why there
//! was none.

use sqlx::FromRow;

use super::Db;
use crate::config::DbKind;
use crate::domain::fleet::StatusReport;

/// A check that is due, claimed.
#[derive(Debug, Clone, FromRow)]
pub struct Due {
    pub site_id: String,
    pub url: String,
    /// `status` or `refresh-keys`.
    pub next_action: String,
}

/// Make the rows of connector sites that have none, due at `due_at(i)`
/// for the i-th (the caller spreads them out). Returns how many.
pub async fn add_missing(db: &Db, due_at: impl Fn(usize) -> i64) -> Result<usize, sqlx::Error> {
    let missing: Vec<(String,)> = sqlx::query_as(
        "SELECT s.id FROM sites s WHERE s.profile = 'connector' \
         AND NOT EXISTS (SELECT 1 FROM site_status t WHERE t.site_id = s.id) ORDER BY s.id",
    )
    .fetch_all(&db.pool)
    .await?;
    if missing.is_empty() {
        return Ok(0);
    }
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    for (n, chunk) in missing.chunks(200).enumerate() {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 1 + 2 * i, 2 + 2 * i))
            .collect();
        let sql = format!(
            "INSERT INTO site_status (site_id, next_check_at) VALUES {} \
             ON CONFLICT (site_id) DO NOTHING",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (i, (id,)) in chunk.iter().enumerate() {
            q = q.bind(id).bind(due_at(n * 200 + i));
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(missing.len())
}

/// Claim up to `limit` due checks of connector sites for `owner` until
/// `lease_until`.
pub async fn claim_due(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    let skip_locked = match db.kind {
        DbKind::Postgres => " FOR UPDATE SKIP LOCKED",
        DbKind::Sqlite => "",
    };
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    let claimed: Vec<(String, String)> = sqlx::query_as(&format!(
        "UPDATE site_status SET lease_owner = $1, lease_until = $2 \
         WHERE site_id IN (SELECT t.site_id FROM site_status t JOIN sites s ON s.id = t.site_id \
           WHERE s.profile = 'connector' AND t.next_check_at <= $3 \
           AND (t.lease_until IS NULL OR t.lease_until < $3) \
           ORDER BY t.next_check_at LIMIT $4{skip_locked}) \
         RETURNING site_id, next_action"
    ))
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    // Their URLs now (a read after the claim: the site may have moved).
    let mut due = Vec::with_capacity(claimed.len());
    for chunk in claimed.chunks(200) {
        let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", 1 + i)).collect();
        let sql = format!("SELECT id, url FROM sites WHERE id IN ({})", ids.join(", "));
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for (id, _) in chunk {
            q = q.bind(id);
        }
        let urls: std::collections::HashMap<String, String> =
            q.fetch_all(&db.pool).await?.into_iter().collect();
        for (id, action) in chunk {
            if let Some(url) = urls.get(id) {
                due.push(Due {
                    site_id: id.clone(),
                    url: url.clone(),
                    next_action: action.clone(),
                });
            }
        }
    }
    Ok(due)
}

/// What one check came to.
#[derive(Debug, Clone)]
pub enum Checked {
    Report(Box<StatusReport>),
    Problem(String),
}

/// Write the outcomes of checks claimed by `owner` (one transaction), each
/// due again at its `next_check_at`. A report replaces the facts; a
/// problem keeps the last facts and says why there was no report.
pub async fn finish(
    db: &Db,
    owner: &str,
    now: i64,
    done: &[(String, Checked, i64)],
) -> Result<(), sqlx::Error> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    for (site_id, checked, next) in done {
        match checked {
            Checked::Report(r) => {
                sqlx::query(
                    "UPDATE site_status SET lease_owner = NULL, lease_until = NULL, \
                     next_action = 'status', next_check_at = $1, checked_at = $2, \
                     answered_at = $2, problem = '', plugin_version = $3, wp_version = $4, \
                     php_version = $5, multisite = $6, connected = $7, keys = $8, \
                     keys_fetched_at = $9, refusals = $10, refusals_since = $11 \
                     WHERE site_id = $12 AND lease_owner = $13",
                )
                .bind(*next)
                .bind(now)
                .bind(&r.plugin_version)
                .bind(&r.wp_version)
                .bind(&r.php_version)
                .bind(i32::from(r.multisite))
                .bind(i32::from(r.connected))
                .bind(r.keys.join(","))
                .bind(r.keys_fetched_at)
                .bind(serde_json::to_string(&r.refusals).unwrap_or_else(|_| "{}".into()))
                .bind(r.refusals_since)
                .bind(site_id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            }
            Checked::Problem(why) => {
                // A refresh asked for stays asked for.
                sqlx::query(
                    "UPDATE site_status SET lease_owner = NULL, lease_until = NULL, \
                     next_check_at = $1, checked_at = $2, problem = $3 \
                     WHERE site_id = $4 AND lease_owner = $5",
                )
                .bind(*next)
                .bind(now)
                .bind(why)
                .bind(site_id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await
}

/// Make checks due now: of these sites (their ids), or of every connector
/// site (`None`); `refresh` asks them to refetch the key set first.
/// Returns how many.
pub async fn due_now(
    db: &Db,
    sites: Option<&[String]>,
    refresh: bool,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let action = if refresh { "refresh-keys" } else { "status" };
    let _turn = db.write_turn().await;
    match sites {
        None => Ok(sqlx::query(
            "UPDATE site_status SET next_check_at = $1, next_action = $2 \
             WHERE site_id IN (SELECT id FROM sites WHERE profile = 'connector')",
        )
        .bind(now)
        .bind(action)
        .execute(&db.pool)
        .await?
        .rows_affected()),
        Some(ids) => {
            let mut n = 0;
            for chunk in ids.chunks(200) {
                let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", 3 + i)).collect();
                let sql = format!(
                    "UPDATE site_status SET next_check_at = $1, next_action = $2 \
                     WHERE site_id IN ({})",
                    marks.join(", ")
                );
                let mut q = sqlx::query(&sql).bind(now).bind(action);
                for id in chunk {
                    q = q.bind(id);
                }
                n += q.execute(&db.pool).await?.rows_affected();
            }
            Ok(n)
        }
    }
}

/// One connector site and what it last said, for the fleet's list.
#[derive(Debug, Clone, FromRow)]
pub struct FleetRow {
    pub site_id: String,
    pub name: String,
    pub client: String,
    pub url: String,
    pub enabled: i64,
    /// Connected by a code or an approval (rather than by hand).
    pub connected_by_code: i64,
    pub next_check_at: Option<i64>,
    pub checked_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub problem: Option<String>,
    pub plugin_version: Option<String>,
    pub wp_version: Option<String>,
    pub php_version: Option<String>,
    pub multisite: Option<i64>,
    pub connected: Option<i64>,
    pub keys: Option<String>,
    pub keys_fetched_at: Option<i64>,
    pub refusals: Option<String>,
    pub refusals_since: Option<i64>,
    pub next_action: Option<String>,
}

/// Every connector site with what it last said (none: never checked), by URL.
pub async fn rows(db: &Db) -> Result<Vec<FleetRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id AS site_id, s.name, s.client, s.url, s.enabled, \
           CASE WHEN EXISTS (SELECT 1 FROM connect_codes c WHERE c.site_id = s.id \
             AND c.used_at IS NOT NULL) THEN 1 ELSE 0 END AS connected_by_code, \
           t.next_check_at, t.checked_at, t.answered_at, t.problem, t.plugin_version, \
           t.wp_version, t.php_version, t.multisite, t.connected, t.keys, t.keys_fetched_at, \
           t.refusals, t.refusals_since, t.next_action \
         FROM sites s LEFT JOIN site_status t ON t.site_id = s.id \
         WHERE s.profile = 'connector' ORDER BY s.url",
    )
    .fetch_all(&db.pool)
    .await
}

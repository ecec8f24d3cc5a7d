//! Client sites. A site's sealed secret is read only by the launch.

use sqlx::FromRow;

use super::{flag, Db};
use crate::domain::sites::{join_roles, split_roles, Profile, Signing, Site, ValidSite};

#[derive(FromRow)]
struct SiteRow {
    id: String,
    name: String,
    client: String,
    url: String,
    profile: String,
    login_template: String,
    username_claim: String,
    signing: String,
    has_secret: i64,
    roles: String,
    token_lifetime: i64,
    enabled: i64,
    notes: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

pub(crate) const COLUMNS: &str = "sites.id, sites.name, sites.client, sites.url, sites.profile, \
     sites.login_template, sites.username_claim, sites.signing, \
     CASE WHEN sites.secret IS NULL THEN 0 ELSE 1 END AS has_secret, sites.roles, \
     sites.token_lifetime, sites.enabled, sites.notes, sites.version, sites.created_at, sites.updated_at";

impl TryFrom<SiteRow> for Site {
    type Error = sqlx::Error;
    fn try_from(r: SiteRow) -> Result<Site, sqlx::Error> {
        let bad = |what: &str, v: &str| {
            sqlx::Error::Decode(format!("site {}: unknown {what} {v:?}", r.id).into())
        };
        Ok(Site {
            profile: Profile::parse(&r.profile).ok_or_else(|| bad("profile", &r.profile))?,
            signing: Signing::parse(&r.signing).ok_or_else(|| bad("signing", &r.signing))?,
            id: r.id,
            name: r.name,
            client: r.client,
            url: r.url,
            login_template: r.login_template,
            username_claim: r.username_claim,
            has_secret: r.has_secret != 0,
            roles: split_roles(&r.roles),
            token_lifetime: r.token_lifetime,
            enabled: r.enabled != 0,
            notes: r.notes,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SiteStoreError {
    #[error("a site with the URL {0} already exists")]
    DuplicateUrl(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A unique-key violation, whichever database reports it.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Add a site. `sealed_secret` is its HS256 secret sealed for `id`.
pub async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    site: &ValidSite,
    sealed_secret: Option<&str>,
    now: i64,
) -> Result<Site, SiteStoreError> {
    let sql = format!(
        "INSERT INTO sites (id, name, client, url, profile, login_template, username_claim, \
                            signing, secret, roles, token_lifetime, enabled, notes, version, \
                            created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, 1, $13, $13) \
         RETURNING {}",
        COLUMNS.replace("sites.", "")
    );
    let row: Result<SiteRow, sqlx::Error> = sqlx::query_as(&sql)
        .bind(id)
        .bind(&site.name)
        .bind(&site.client)
        .bind(&site.url)
        .bind(site.profile.as_str())
        .bind(&site.login_template)
        .bind(&site.username_claim)
        .bind(site.signing.as_str())
        .bind(sealed_secret)
        .bind(join_roles(&site.roles))
        .bind(site.token_lifetime)
        .bind(&site.notes)
        .bind(now)
        .fetch_one(ex)
        .await;
    match row {
        Ok(r) => Ok(r.try_into()?),
        Err(e) if is_unique_violation(&e) => Err(SiteStoreError::DuplicateUrl(site.url.clone())),
        Err(e) => Err(e.into()),
    }
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Site>, sqlx::Error> {
    find_in(&db.pool, id).await
}

/// `find` inside a transaction.
pub async fn find_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
) -> Result<Option<Site>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sites WHERE id = $1");
    let row: Option<SiteRow> = sqlx::query_as(&sql).bind(id).fetch_optional(ex).await?;
    row.map(TryInto::try_into).transpose()
}

/// A site read with [`COLUMNS`] beside other tables' columns (left-joined:
/// `None` when the row has no site).
pub(crate) fn from_joined_row(row: &sqlx::any::AnyRow) -> Result<Option<Site>, sqlx::Error> {
    use sqlx::Row;
    if row.try_get::<Option<String>, _>("id")?.is_none() {
        return Ok(None);
    }
    SiteRow::from_row(row)?.try_into().map(Some)
}

pub async fn find_by_url(db: &Db, url: &str) -> Result<Option<Site>, sqlx::Error> {
    find_by_url_in(&db.pool, url).await
}

/// Every site, by client and name.
pub async fn list(db: &Db) -> Result<Vec<Site>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sites ORDER BY client, name, url");
    let rows: Vec<SiteRow> = sqlx::query_as(&sql).fetch_all(&db.pool).await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Enable or disable a site. Returns false when there is no such site.
pub async fn set_enabled<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    enabled: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    change(ex, id, "enabled", Column::Int(flag(enabled)), now).await
}

/// Replace the roles that may be granted on a site.
pub async fn set_roles<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    roles: &[String],
    now: i64,
) -> Result<bool, sqlx::Error> {
    change(ex, id, "roles", Column::Text(join_roles(roles)), now).await
}

enum Column {
    Int(i64),
    Text(String),
}

/// Set one column, bumping the version (a launch decided on the old site
/// will not be recorded). `column` is always a literal from this module.
async fn change<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    column: &'static str,
    value: Column,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE sites SET {column} = $1, version = version + 1, updated_at = $2 WHERE id = $3"
    );
    let q = sqlx::query(&sql);
    let q = match value {
        Column::Int(v) => q.bind(v),
        Column::Text(v) => q.bind(v),
    };
    let n = q.bind(now).bind(id).execute(ex).await?.rows_affected();
    Ok(n == 1)
}

/// The sealed HS256 secret of a site, if it has one.
pub async fn sealed_secret(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<String>>("SELECT secret FROM sites WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .map(Option::flatten)
}

/// Every sealed site secret (HS256 sites) with its site's id and URL.
pub async fn sealed_secrets(
    conn: &mut sqlx::AnyConnection,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, url, secret FROM sites WHERE secret IS NOT NULL")
        .fetch_all(conn)
        .await
}

/// What the admin list filters on. Empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteQuery {
    /// Words matched against name, client and URL (every word must match).
    pub text: String,
    pub client: String,
    pub profile: String,
    /// "on", "off" or "" for both.
    pub enabled: String,
}

/// One site in the admin list, with how many direct grants it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSite {
    pub site: Site,
    pub grants: i64,
}

/// The admin list: a page of matching sites by client and name, and how
/// many match in all.
pub async fn search(
    db: &Db,
    q: &SiteQuery,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ListedSite>, i64), sqlx::Error> {
    let mut conditions = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    for word in q.text.to_lowercase().split_whitespace().take(8) {
        binds.push(format!("%{}%", escape_like(word)));
        let n = binds.len();
        conditions.push(format!(
            "(LOWER(sites.name) LIKE ${n} ESCAPE '\\' OR LOWER(sites.client) LIKE ${n} ESCAPE '\\' \
              OR sites.url LIKE ${n} ESCAPE '\\')"
        ));
    }
    for (column, value) in [("client", &q.client), ("profile", &q.profile)] {
        if !value.is_empty() {
            binds.push(value.clone());
            conditions.push(format!("sites.{column} = ${}", binds.len()));
        }
    }
    match q.enabled.as_str() {
        "on" => conditions.push("sites.enabled = 1".into()),
        "off" => conditions.push("sites.enabled = 0".into()),
        _ => {}
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) FROM sites {filter}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for b in &binds {
        count = count.bind(b);
    }
    let total = count.fetch_one(&db.pool).await?;
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT COUNT(*) FROM grants g WHERE g.site_id = sites.id) AS grant_count \
         FROM sites {filter} ORDER BY sites.client, sites.name, sites.url LIMIT {limit} OFFSET {offset}",
        limit = limit.clamp(1, 500),
        offset = offset.max(0),
    );
    let mut page = sqlx::query_as::<_, ListedRow>(&sql);
    for b in &binds {
        page = page.bind(b);
    }
    let rows = page.fetch_all(&db.pool).await?;
    let sites = rows
        .into_iter()
        .map(|r| {
            Ok(ListedSite {
                grants: r.grant_count,
                site: r.site.try_into()?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((sites, total))
}

#[derive(FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    site: SiteRow,
    grant_count: i64,
}

/// `%`, `_` and `\` match themselves in a LIKE pattern built from typed text.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every client name, for the filter's choices.
pub async fn clients(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT client FROM sites ORDER BY client")
        .fetch_all(&db.pool)
        .await
}

/// Every site, keyed by URL, read inside a transaction (an import plans against it).
pub async fn all_by_url(
    conn: &mut sqlx::AnyConnection,
) -> Result<std::collections::HashMap<String, Site>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sites");
    let rows: Vec<SiteRow> = sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|r| Site::try_from(r).map(|s| (s.url.clone(), s)))
        .collect()
}

/// Replace a site's settings, if it is still at `version` (else false: someone
/// changed it meanwhile). `sealed_secret`: a new secret; an RS256 site loses
/// its secret, an HS256 site given none keeps it.
#[allow(clippy::too_many_arguments)]
pub async fn update<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
    version: i64,
    site: &ValidSite,
    sealed_secret: Option<&str>,
    enabled: bool,
    now: i64,
) -> Result<bool, SiteStoreError> {
    let done = sqlx::query(
        "UPDATE sites SET name = $1, client = $2, url = $3, profile = $4, login_template = $5, \
             username_claim = $6, signing = $7, \
             secret = CASE WHEN $7 = 'RS256' THEN NULL WHEN $8 <> '' THEN $8 ELSE secret END, \
             roles = $9, token_lifetime = $10, enabled = $11, notes = $12, \
             version = version + 1, updated_at = $13 \
         WHERE id = $14 AND version = $15",
    )
    .bind(&site.name)
    .bind(&site.client)
    .bind(&site.url)
    .bind(site.profile.as_str())
    .bind(&site.login_template)
    .bind(&site.username_claim)
    .bind(site.signing.as_str())
    .bind(sealed_secret.unwrap_or(""))
    .bind(join_roles(&site.roles))
    .bind(site.token_lifetime)
    .bind(flag(enabled))
    .bind(&site.notes)
    .bind(now)
    .bind(id)
    .bind(version)
    .execute(ex)
    .await;
    match done {
        Ok(r) => Ok(r.rows_affected() == 1),
        Err(e) if is_unique_violation(&e) => Err(SiteStoreError::DuplicateUrl(site.url.clone())),
        Err(e) => Err(e.into()),
    }
}

/// Delete a site; its grants, team grants and preferences go with it (its
/// audit records stay). Returns false when there was no such site.
pub async fn delete<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM sites WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// `find_by_url` inside a transaction.
pub async fn find_by_url_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    url: &str,
) -> Result<Option<Site>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sites WHERE url = $1");
    let row: Option<SiteRow> = sqlx::query_as(&sql).bind(url).fetch_optional(ex).await?;
    row.map(TryInto::try_into).transpose()
}

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

pub async fn find_by_url(db: &Db, url: &str) -> Result<Option<Site>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sites WHERE url = $1");
    let row: Option<SiteRow> = sqlx::query_as(&sql)
        .bind(url)
        .fetch_optional(&db.pool)
        .await?;
    row.map(TryInto::try_into).transpose()
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

//! Grants: one person (by e-mail) one WordPress role on one site.

use sqlx::FromRow;

use super::Db;
use crate::config::DbKind;
use crate::domain::access::{Grant, GrantSource};
use crate::domain::sites::{split_roles, Profile};

/// A grant as listed, with its site.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct GrantListing {
    pub id: String,
    pub email: String,
    pub site_id: String,
    pub site_name: String,
    pub site_url: String,
    pub role: String,
    pub expires_at: Option<i64>,
    pub reason: String,
    pub created_at: i64,
    pub created_by: String,
    /// Just-in-time access: the higher role it makes its holder eligible
    /// for, and for how many minutes at a time.
    pub eligible_role: Option<String>,
    pub eligible_minutes: Option<i64>,
}

/// Give `email` `role` on a site, replacing their grant of the same kind
/// there (lasting, or time-limited when `expires_at` is set: one of each
/// may stand side by side). Returns the grant's id.
#[allow(clippy::too_many_arguments)]
pub async fn put<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    new_id: &str,
    email: &str,
    site_id: &str,
    role: &str,
    expires_at: Option<i64>,
    reason: &str,
    created_by: &str,
    now: i64,
) -> Result<String, sqlx::Error> {
    let kind = if expires_at.is_some() {
        "NOT NULL"
    } else {
        "NULL"
    };
    sqlx::query_scalar(&format!(
        "INSERT INTO grants (id, email, site_id, role, expires_at, reason, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (email, site_id) WHERE expires_at IS {kind} DO UPDATE SET \
             role = excluded.role, expires_at = excluded.expires_at, reason = excluded.reason, \
             created_at = excluded.created_at, created_by = excluded.created_by \
         RETURNING id"
    ))
    .bind(new_id)
    .bind(email)
    .bind(site_id)
    .bind(role)
    .bind(expires_at)
    .bind(reason)
    .bind(now)
    .bind(created_by)
    .fetch_one(ex)
    .await
}

/// The grant of one kind (lasting, or time-limited) a person has on a site
/// now: (role, expires_at), for the record of a change.
pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    email: &str,
    site_id: &str,
    limited: bool,
) -> Result<Option<(String, Option<i64>)>, sqlx::Error> {
    let kind = if limited { "NOT NULL" } else { "NULL" };
    sqlx::query_as(&format!(
        "SELECT role, expires_at FROM grants WHERE email = $1 AND site_id = $2 AND expires_at IS {kind}"
    ))
    .bind(email)
    .bind(site_id)
    .fetch_optional(ex)
    .await
}

/// Every direct grant a person has on a site: (role, expires_at).
pub async fn direct<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    email: &str,
    site_id: &str,
) -> Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT role, expires_at FROM grants WHERE email = $1 AND site_id = $2 \
         ORDER BY expires_at IS NULL DESC",
    )
    .bind(email)
    .bind(site_id)
    .fetch_all(ex)
    .await
}

/// Take a person's direct grants on a site away. Returns whether there were any.
pub async fn revoke<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    email: &str,
    site_id: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM grants WHERE email = $1 AND site_id = $2")
        .bind(email)
        .bind(site_id)
        .execute(ex)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Grants, optionally only one person's or one site's.
pub async fn list(
    db: &Db,
    email: Option<&str>,
    site_id: Option<&str>,
) -> Result<Vec<GrantListing>, sqlx::Error> {
    list_in(&db.pool, email, site_id).await
}

/// [`list`], inside a transaction (an import plans against it).
pub async fn list_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    email: Option<&str>,
    site_id: Option<&str>,
) -> Result<Vec<GrantListing>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.id, g.email, g.site_id, s.name AS site_name, s.url AS site_url, g.role, \
                g.expires_at, g.reason, g.created_at, g.created_by, g.eligible_role, g.eligible_minutes \
         FROM grants g JOIN sites s ON s.id = g.site_id \
         WHERE ($1 = '' OR g.email = $1) AND ($2 = '' OR g.site_id = $2) \
         ORDER BY g.email, s.client, s.name",
    )
    .bind(email.unwrap_or(""))
    .bind(site_id.unwrap_or(""))
    .fetch_all(ex)
    .await
}

/// The grants of a person through their teams, as rows of (site, grant id,
/// role, expiry, team name): team grants on one site, and on every site of
/// a client. `$1` is the e-mail.
pub(crate) const TEAM_GRANTS_OF_PERSON: &str = "\
    SELECT tg.site_id AS site_id, tg.id AS grant_id, tg.role, tg.expires_at, t.name AS team \
    FROM team_members m JOIN team_grants tg ON tg.team_id = m.team_id JOIN teams t ON t.id = m.team_id \
    WHERE m.email = $1 AND tg.site_id IS NOT NULL \
    UNION ALL \
    SELECT cs.id AS site_id, tg.id AS grant_id, tg.role, tg.expires_at, t.name AS team \
    FROM team_members m JOIN team_grants tg ON tg.team_id = m.team_id JOIN teams t ON t.id = m.team_id \
    JOIN sites cs ON cs.client = tg.client \
    WHERE m.email = $1 AND tg.client IS NOT NULL";

/// Every grant a person holds, direct and through teams, as (site, grant id,
/// role, expiry, team name or '').
pub(crate) fn grants_of_person() -> String {
    format!(
        "SELECT g.site_id AS site_id, g.id AS grant_id, g.role, g.expires_at, '' AS team \
         FROM grants g WHERE g.email = $1 UNION ALL {TEAM_GRANTS_OF_PERSON} UNION ALL {}",
        super::elevations::ELEVATIONS_OF_PERSON
    )
}

pub(crate) fn source(team: String) -> GrantSource {
    if team.is_empty() {
        GrantSource::Direct
    } else if team == super::elevations::ELEVATION_SOURCE {
        GrantSource::Elevation
    } else {
        GrantSource::Team(team)
    }
}

/// Every grant that applies to a person on a site, direct and through teams.
pub async fn applying<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    email: &str,
    site_id: &str,
) -> Result<Vec<Grant>, sqlx::Error> {
    let sql = format!(
        "SELECT x.grant_id, x.role, x.expires_at, x.team FROM ({}) x WHERE x.site_id = $2",
        grants_of_person()
    );
    let rows: Vec<(String, String, Option<i64>, String)> = sqlx::query_as(&sql)
        .bind(email)
        .bind(site_id)
        .fetch_all(ex)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, role, expires_at, team)| Grant {
            id,
            role,
            expires_at,
            source: source(team),
        })
        .collect())
}

/// One site a person holds a grant on, with what the home page needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedSite {
    pub site_id: String,
    pub name: String,
    pub client: String,
    pub url: String,
    pub profile: Profile,
    pub enabled: bool,
    pub roles: Vec<String>,
    pub grants: Vec<Grant>,
    pub favourite: bool,
    pub last_launched_at: Option<i64>,
}

/// One row of [`granted_sites`]' result, as the database encodes it.
#[derive(serde::Deserialize)]
struct GrantedRow(
    String,      // site id
    String,      // name
    String,      // client
    String,      // url
    String,      // profile
    i64,         // enabled
    String,      // roles
    String,      // grant id
    String,      // role
    Option<i64>, // grant expires at
    String,      // team ('' for a direct grant)
    Option<i64>, // favourite
    Option<i64>, // last launched at
);

/// Every site a person holds a grant on, in one query (the home page with
/// thousands of sites must stay fast). The database hands the rows back
/// as one JSON array: one value to pass between the database and the
/// service instead of thousands of rows.
pub async fn granted_sites(db: &Db, email: &str) -> Result<Vec<GrantedSite>, sqlx::Error> {
    let (agg, array) = match db.kind {
        DbKind::Sqlite => ("json_group_array", "json_array"),
        DbKind::Postgres => ("json_agg", "json_build_array"),
    };
    let sql = format!(
        "SELECT CAST(COALESCE({agg}({array}(s.id, s.name, s.client, s.url, s.profile, s.enabled, \
                  s.roles, x.grant_id, x.role, x.expires_at, x.team, p.favourite, \
                  p.last_launched_at) ORDER BY s.id), '[]') AS TEXT) \
         FROM ({}) x \
         JOIN sites s ON s.id = x.site_id \
         LEFT JOIN site_prefs p ON p.email = $1 AND p.site_id = x.site_id",
        grants_of_person()
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(email)
        .fetch_one(&db.pool)
        .await?;
    let rows: Vec<GrantedRow> = serde_json::from_str(&json)
        .map_err(|e| sqlx::Error::Decode(format!("granted sites: {e}").into()))?;
    let mut out: Vec<GrantedSite> = Vec::with_capacity(rows.len());
    for r in rows {
        let grant = Grant {
            id: r.7,
            role: r.8,
            expires_at: r.9,
            source: source(r.10),
        };
        if let Some(last) = out.last_mut().filter(|s| s.site_id == r.0) {
            last.grants.push(grant);
            continue;
        }
        out.push(GrantedSite {
            profile: Profile::parse(&r.4).unwrap_or(Profile::TwlSso),
            site_id: r.0,
            name: r.1,
            client: r.2,
            url: r.3,
            enabled: r.5 != 0,
            roles: split_roles(&r.6),
            grants: vec![grant],
            favourite: r.11.unwrap_or(0) != 0,
            last_launched_at: r.12,
        });
    }
    Ok(out)
}

/// Pin or unpin a site for a person.
pub async fn set_favourite(
    db: &Db,
    email: &str,
    site_id: &str,
    on: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO site_prefs (email, site_id, favourite) VALUES ($1, $2, $3) \
         ON CONFLICT (email, site_id) DO UPDATE SET favourite = excluded.favourite",
    )
    .bind(email)
    .bind(site_id)
    .bind(super::flag(on))
    .execute(&db.pool)
    .await
    .map(|_| ())
}

/// One grant that lets someone into a site, direct or through a team.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SiteAccess {
    pub email: String,
    pub grant_id: String,
    pub role: String,
    pub expires_at: Option<i64>,
    pub reason: String,
    /// The team it comes through; empty for a direct grant.
    pub team: String,
    /// Just-in-time: the role it makes its holder eligible for, and the
    /// minutes at a time.
    pub eligible_role: Option<String>,
    pub eligible_minutes: Option<i64>,
}

/// Everyone with a grant on a site, direct and through teams, by e-mail.
pub async fn site_access(db: &Db, site_id: &str) -> Result<Vec<SiteAccess>, sqlx::Error> {
    sqlx::query_as(
        "SELECT email, grant_id, role, expires_at, reason, team, eligible_role, eligible_minutes FROM ( \
           SELECT g.email, g.id AS grant_id, g.role, g.expires_at, g.reason, '' AS team, \
                  g.eligible_role, g.eligible_minutes \
           FROM grants g WHERE g.site_id = $1 \
           UNION ALL \
           SELECT m.email, tg.id AS grant_id, tg.role, tg.expires_at, tg.reason, t.name AS team, \
                  tg.eligible_role, tg.eligible_minutes \
           FROM team_grants tg JOIN teams t ON t.id = tg.team_id \
           JOIN team_members m ON m.team_id = tg.team_id \
           JOIN sites s ON s.id = $1 \
           WHERE tg.site_id = s.id OR tg.client = s.client \
         ) x ORDER BY email, team LIMIT 2000",
    )
    .bind(site_id)
    .fetch_all(&db.pool)
    .await
}

/// How many direct grants a site has, read inside a transaction.
pub async fn count_on_site(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM grants WHERE site_id = $1")
        .bind(site_id)
        .fetch_one(&mut *conn)
        .await
}

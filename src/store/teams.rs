//! Teams: named sets of people (by e-mail) and the roles granted to them on
//! one site or on every site of a client.

use sqlx::{AnyConnection, FromRow};

use super::sites::is_unique_violation;
use super::Db;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub members: i64,
    pub grants: i64,
}

/// A team's grant as listed: on one site (with its URL) or on a client.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TeamGrant {
    pub id: String,
    pub team_id: String,
    pub site_id: Option<String>,
    pub site_url: Option<String>,
    pub client: Option<String>,
    pub role: String,
    pub expires_at: Option<i64>,
    pub reason: String,
    pub created_at: i64,
    pub created_by: String,
    /// Just-in-time: the role its members may ask for, minutes at a time.
    pub eligible_role: Option<String>,
    pub eligible_minutes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Member {
    pub email: String,
    pub name: Option<String>,
    pub added_at: i64,
    pub added_by: String,
}

const TEAM_COLUMNS: &str = "t.id, t.name, t.description, t.created_at, \
     (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id) AS members, \
     (SELECT COUNT(*) FROM team_grants g WHERE g.team_id = t.id) AS grants";

const GRANT_COLUMNS: &str = "g.id, g.team_id, g.site_id, s.url AS site_url, g.client, g.role, \
     g.expires_at, g.reason, g.created_at, g.created_by, g.eligible_role, g.eligible_minutes";

/// Create a team. `Ok(false)` when the name is taken.
pub async fn create(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    description: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO teams (id, name, description, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(now)
    .execute(&mut *conn)
    .await;
    match done {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delete a team with its members and grants.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn list(db: &Db) -> Result<Vec<Team>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TEAM_COLUMNS} FROM teams t ORDER BY t.name LIMIT 1000"
    ))
    .fetch_all(&db.pool)
    .await
}

pub async fn find<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    id: &str,
) -> Result<Option<Team>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TEAM_COLUMNS} FROM teams t WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

pub async fn members(db: &Db, team_id: &str) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.email, (SELECT p.name FROM people p WHERE p.email = m.email ORDER BY p.created_at LIMIT 1) AS name, \
                m.added_at, m.added_by \
         FROM team_members m WHERE m.team_id = $1 ORDER BY m.email",
    )
    .bind(team_id)
    .fetch_all(&db.pool)
    .await
}

/// Add someone. `Ok(false)` when they were already a member.
pub async fn add_member(
    conn: &mut AnyConnection,
    team_id: &str,
    email: &str,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO team_members (team_id, email, added_at, added_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (team_id, email) DO NOTHING",
    )
    .bind(team_id)
    .bind(email)
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn remove_member(
    conn: &mut AnyConnection,
    team_id: &str,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND email = $2")
        .bind(team_id)
        .bind(email)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// What a team grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Site(String),
    Client(String),
}

/// Grant a team a role on a target, replacing its grant there. Returns the
/// grant it replaced.
#[allow(clippy::too_many_arguments)]
pub async fn put_grant(
    conn: &mut AnyConnection,
    new_id: &str,
    team_id: &str,
    target: &Target,
    role: &str,
    expires_at: Option<i64>,
    reason: &str,
    by: &str,
    now: i64,
) -> Result<Option<TeamGrant>, sqlx::Error> {
    let (site_id, client) = match target {
        Target::Site(s) => (Some(s.as_str()), None),
        Target::Client(c) => (None, Some(c.as_str())),
    };
    let before: Option<TeamGrant> = sqlx::query_as(&format!(
        "SELECT {GRANT_COLUMNS} FROM team_grants g LEFT JOIN sites s ON s.id = g.site_id \
         WHERE g.team_id = $1 AND (g.site_id = $2 OR g.client = $3)"
    ))
    .bind(team_id)
    .bind(site_id.unwrap_or(""))
    .bind(client.unwrap_or(""))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(b) = &before {
        sqlx::query("DELETE FROM team_grants WHERE id = $1")
            .bind(&b.id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "INSERT INTO team_grants (id, team_id, site_id, client, role, expires_at, reason, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id)
    .bind(team_id)
    .bind(site_id)
    .bind(client)
    .bind(role)
    .bind(expires_at)
    .bind(reason)
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(before)
}

pub async fn find_grant(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<TeamGrant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GRANT_COLUMNS} FROM team_grants g LEFT JOIN sites s ON s.id = g.site_id WHERE g.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn revoke_grant(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM team_grants WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn grants(db: &Db, team_id: &str) -> Result<Vec<TeamGrant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GRANT_COLUMNS} FROM team_grants g LEFT JOIN sites s ON s.id = g.site_id \
         WHERE g.team_id = $1 ORDER BY COALESCE(g.client, s.url)"
    ))
    .bind(team_id)
    .fetch_all(&db.pool)
    .await
}

/// The names of the teams `email` belongs to, in order.
pub async fn names_of_member(db: &Db, email: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t.name FROM team_members m JOIN teams t ON t.id = m.team_id \
         WHERE m.email = $1 ORDER BY t.name",
    )
    .bind(email)
    .fetch_all(&db.pool)
    .await
}

/// The e-mail addresses of a team's members, read inside a transaction.
pub async fn member_emails(
    conn: &mut sqlx::AnyConnection,
    team_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT email FROM team_members WHERE team_id = $1 ORDER BY email")
        .bind(team_id)
        .fetch_all(&mut *conn)
        .await
}

/// The sites a team's grants reach (one grant's, when `grant_id` is not
/// empty): the granted sites and every site of the granted clients.
pub async fn granted_site_ids(
    conn: &mut sqlx::AnyConnection,
    team_id: &str,
    grant_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT COALESCE(tg.site_id, s.id) FROM team_grants tg \
         LEFT JOIN sites s ON tg.site_id IS NULL AND s.client = tg.client \
         WHERE tg.team_id = $1 AND ($2 = '' OR tg.id = $2) \
           AND COALESCE(tg.site_id, s.id) IS NOT NULL",
    )
    .bind(team_id)
    .bind(grant_id)
    .fetch_all(&mut *conn)
    .await
}

/// Every site of a client, read inside a transaction.
pub async fn client_site_ids(
    conn: &mut sqlx::AnyConnection,
    client: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM sites WHERE client = $1")
        .bind(client)
        .fetch_all(&mut *conn)
        .await
}

/// The role of each live grant of a team, with the roles (highest first) of
/// each site it reaches (none for a client grant with no sites yet).
pub async fn grant_roles_by_site(
    db: &Db,
    team_id: &str,
    now: i64,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tg.role, s.roles FROM team_grants tg \
         LEFT JOIN sites s ON s.id = tg.site_id OR (tg.site_id IS NULL AND s.client = tg.client) \
         WHERE tg.team_id = $1 AND (tg.expires_at IS NULL OR tg.expires_at > $2)",
    )
    .bind(team_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await
}

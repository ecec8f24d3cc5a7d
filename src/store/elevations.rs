//! Eligible grants, elevation requests and elevations, and the approvers
//! named for sites and teams.

use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::config::DbKind;

/// The team column of an elevation's row among a person's grants
/// ([`super::grants::grants_of_person`]): team names are trimmed, so none
/// starts with a space.
pub const ELEVATION_SOURCE: &str = " elevation";

/// A person's active elevations as rows of their grants (site, grant id,
/// role, expiry, team): only while the eligible grant they rest on still
/// makes the person eligible for that role. `$1` is the e-mail.
pub(crate) const ELEVATIONS_OF_PERSON: &str = "\
    SELECT e.site_id AS site_id, e.id AS grant_id, e.role, e.ends_at AS expires_at, ' elevation' AS team \
    FROM elevations e WHERE e.email = $1 AND e.state = 'active' AND ( \
      EXISTS (SELECT 1 FROM grants eg WHERE eg.id = e.grant_id AND eg.email = e.email \
              AND eg.site_id = e.site_id AND eg.eligible_role = e.role) \
      OR EXISTS (SELECT 1 FROM team_grants etg \
                 JOIN team_members em ON em.team_id = etg.team_id AND em.email = e.email \
                 WHERE etg.id = e.grant_id AND etg.eligible_role = e.role))";

/// One grant that makes a person eligible on a site.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct EligibleGrant {
    pub grant_id: String,
    /// The grant's own role.
    pub role: String,
    pub eligible_role: String,
    pub eligible_minutes: i64,
    pub expires_at: Option<i64>,
    /// The team it comes through ('' for a person's own grant).
    pub team: String,
    pub team_id: String,
}

/// The eligible grants of a person on a site, direct and through teams.
pub async fn eligible_grants(
    conn: &mut AnyConnection,
    email: &str,
    site_id: &str,
) -> Result<Vec<EligibleGrant>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.id AS grant_id, g.role, g.eligible_role, g.eligible_minutes, g.expires_at, \
                '' AS team, '' AS team_id \
         FROM grants g WHERE g.email = $1 AND g.site_id = $2 AND g.eligible_role IS NOT NULL \
         UNION ALL \
         SELECT tg.id AS grant_id, tg.role, tg.eligible_role, tg.eligible_minutes, tg.expires_at, \
                t.name AS team, t.id AS team_id \
         FROM team_members m JOIN team_grants tg ON tg.team_id = m.team_id \
         JOIN teams t ON t.id = m.team_id JOIN sites s ON s.id = $2 \
         WHERE m.email = $1 AND tg.eligible_role IS NOT NULL \
           AND (tg.site_id = s.id OR tg.client = s.client)",
    )
    .bind(email)
    .bind(site_id)
    .fetch_all(&mut *conn)
    .await
}

/// Make a person's grant of one kind on a site eligible for a higher role,
/// or not (`None`).
pub async fn set_grant_eligibility(
    conn: &mut AnyConnection,
    grant_id: &str,
    eligible: Option<(&str, i64)>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE grants SET eligible_role = $1, eligible_minutes = $2 WHERE id = $3")
        .bind(eligible.map(|e| e.0))
        .bind(eligible.map(|e| e.1))
        .bind(grant_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The same for a team's grant.
pub async fn set_team_grant_eligibility(
    conn: &mut AnyConnection,
    grant_id: &str,
    eligible: Option<(&str, i64)>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE team_grants SET eligible_role = $1, eligible_minutes = $2 WHERE id = $3")
        .bind(eligible.map(|e| e.0))
        .bind(eligible.map(|e| e.1))
        .bind(grant_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One request or elevation, with its site.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Elevation {
    pub id: String,
    pub email: String,
    pub site_id: String,
    pub site_url: String,
    pub site_name: String,
    pub site_client: String,
    pub grant_id: String,
    pub role: String,
    pub minutes: i64,
    pub reason: String,
    pub state: String,
    pub requested_at: i64,
    pub requested_by: String,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub comment: String,
    pub self_approved: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: String,
    pub ended_by: String,
}

const COLUMNS: &str = "e.id, e.email, e.site_id, s.url AS site_url, s.name AS site_name, \
    s.client AS site_client, e.grant_id, e.role, e.minutes, e.reason, e.state, e.requested_at, \
    e.requested_by, e.decided_at, e.decided_by, e.comment, e.self_approved, e.starts_at, \
    e.ends_at, e.ended_at, e.end_reason, e.ended_by";

/// A new pending request. Returns false when the person already has one
/// open (pending or active) on the site.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    email: &str,
    site_id: &str,
    grant_id: &str,
    role: &str,
    minutes: i64,
    reason: &str,
    requested_by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO elevations (id, email, site_id, grant_id, role, minutes, reason, state, \
                                 requested_at, requested_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9) \
         ON CONFLICT (email, site_id) WHERE state IN ('pending', 'active') DO NOTHING",
    )
    .bind(id)
    .bind(email)
    .bind(site_id)
    .bind(grant_id)
    .bind(role)
    .bind(minutes)
    .bind(reason)
    .bind(now)
    .bind(requested_by)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<Elevation>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM elevations e JOIN sites s ON s.id = e.site_id WHERE e.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// Decide a pending request: approve it (active from `now` until
/// `ends_at`) or deny it. Returns false when it was no longer pending
/// (someone decided first, or it was cancelled).
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    conn: &mut AnyConnection,
    id: &str,
    approve: bool,
    by: &str,
    comment: &str,
    self_approved: bool,
    ends_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = if approve {
        sqlx::query(
            "UPDATE elevations SET state = 'active', decided_at = $1, decided_by = $2, comment = $3, \
                    self_approved = $4, starts_at = $1, ends_at = $5 \
             WHERE id = $6 AND state = 'pending'",
        )
        .bind(now)
        .bind(by)
        .bind(comment)
        .bind(i64::from(self_approved))
        .bind(ends_at)
        .bind(id)
        .execute(&mut *conn)
        .await?
    } else {
        sqlx::query(
            "UPDATE elevations SET state = 'denied', decided_at = $1, decided_by = $2, comment = $3 \
             WHERE id = $4 AND state = 'pending'",
        )
        .bind(now)
        .bind(by)
        .bind(comment)
        .bind(id)
        .execute(&mut *conn)
        .await?
    };
    Ok(n.rows_affected() == 1)
}

/// Withdraw a pending request. Returns false when it was no longer pending.
pub async fn cancel(
    conn: &mut AnyConnection,
    id: &str,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE elevations SET state = 'cancelled', ended_at = $1, ended_by = $2 \
         WHERE id = $3 AND state = 'pending'",
    )
    .bind(now)
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// End an active elevation. Returns false when it was not active.
pub async fn end(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE elevations SET state = 'ended', ended_at = $1, end_reason = $2, ended_by = $3 \
         WHERE id = $4 AND state = 'active'",
    )
    .bind(now)
    .bind(reason)
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Active elevations whose time is up, oldest first, at most `limit`; on
/// PostgreSQL locked for the caller's transaction (others skip them).
pub async fn due(
    conn: &mut AnyConnection,
    kind: DbKind,
    now: i64,
    limit: i64,
) -> Result<Vec<Elevation>, sqlx::Error> {
    let lock = match kind {
        DbKind::Postgres => " FOR UPDATE OF e SKIP LOCKED",
        DbKind::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM elevations e JOIN sites s ON s.id = e.site_id \
         WHERE e.state = 'active' AND e.ends_at <= $1 ORDER BY e.ends_at LIMIT $2{lock}"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// The open (pending or active) requests and elevations of a person,
/// optionally on one site only.
pub async fn open_of(
    conn: &mut AnyConnection,
    email: &str,
    site_id: Option<&str>,
) -> Result<Vec<Elevation>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM elevations e JOIN sites s ON s.id = e.site_id \
         WHERE e.email = $1 AND e.state IN ('pending', 'active') AND ($2 = '' OR e.site_id = $2) \
         ORDER BY e.requested_at"
    ))
    .bind(email)
    .bind(site_id.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await
}

/// Which requests and elevations a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Pending,
    Active,
    /// Everything, newest first.
    All,
}

/// Requests and elevations, at most `limit`: pending ones oldest first
/// (the longest waiting on top), the others newest first.
pub async fn list(
    db: &Db,
    which: Which,
    email: Option<&str>,
    limit: i64,
) -> Result<Vec<Elevation>, sqlx::Error> {
    let (cond, order) = match which {
        Which::Pending => ("e.state = 'pending'", "e.requested_at, e.id"),
        Which::Active => ("e.state = 'active'", "e.ends_at, e.id"),
        Which::All => ("1 = 1", "e.requested_at DESC, e.id"),
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM elevations e JOIN sites s ON s.id = e.site_id \
         WHERE {cond} AND ($1 = '' OR e.email = $1) ORDER BY {order} LIMIT $2"
    ))
    .bind(email.unwrap_or(""))
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// How many requests wait for a decision.
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM elevations WHERE state = 'pending'")
        .fetch_one(&db.pool)
        .await
}

/// Whether `email` is named an approver for this site, or for the team
/// whose grant (`grant_id`) the request rests on.
pub async fn is_named_approver(
    conn: &mut AnyConnection,
    email: &str,
    site_id: &str,
    grant_id: &str,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM approvers a WHERE a.email = $1 AND (a.site_id = $2 \
           OR a.team_id IN (SELECT team_id FROM team_grants WHERE id = $3))",
    )
    .bind(email)
    .bind(site_id)
    .bind(grant_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Name an approver for a site or a team. Returns false when already named.
pub async fn add_approver(
    conn: &mut AnyConnection,
    email: &str,
    site_id: Option<&str>,
    team_id: Option<&str>,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let conflict = if site_id.is_some() {
        "(email, site_id) WHERE site_id IS NOT NULL"
    } else {
        "(email, team_id) WHERE team_id IS NOT NULL"
    };
    let n = sqlx::query(&format!(
        "INSERT INTO approvers (email, site_id, team_id, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT {conflict} DO NOTHING"
    ))
    .bind(email)
    .bind(site_id)
    .bind(team_id)
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Remove a named approver. Returns whether one was named.
pub async fn remove_approver(
    conn: &mut AnyConnection,
    email: &str,
    site_id: Option<&str>,
    team_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "DELETE FROM approvers WHERE email = $1 AND COALESCE(site_id, '') = $2 \
         AND COALESCE(team_id, '') = $3",
    )
    .bind(email)
    .bind(site_id.unwrap_or(""))
    .bind(team_id.unwrap_or(""))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The approvers named for a site, and for the teams whose grants cover it.
pub async fn approvers_for_site(db: &Db, site_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT a.email FROM approvers a WHERE a.site_id = $1 OR a.team_id IN ( \
           SELECT tg.team_id FROM team_grants tg JOIN sites s ON s.id = $1 \
           WHERE tg.site_id = s.id OR tg.client = s.client) ORDER BY a.email",
    )
    .bind(site_id)
    .fetch_all(&db.pool)
    .await
}

/// The approvers named for a team.
pub async fn approvers_for_team(db: &Db, team_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT email FROM approvers WHERE team_id = $1 ORDER BY email")
        .bind(team_id)
        .fetch_all(&db.pool)
        .await
}

/// A site's break-glass limit in minutes (`None`: no self-approval).
pub async fn self_approval_minutes(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT self_approval_minutes FROM sites WHERE id = $1")
        .bind(site_id)
        .fetch_optional(&mut *conn)
        .await
        .map(Option::flatten)
}

/// Set a site's break-glass limit (`None`: off). Moves the site's version,
/// so a launch decided before the change is checked again.
pub async fn set_self_approval_minutes(
    conn: &mut AnyConnection,
    site_id: &str,
    minutes: Option<i64>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE sites SET self_approval_minutes = $1, version = version + 1, updated_at = $2 WHERE id = $3",
    )
    .bind(minutes)
    .bind(now)
    .bind(site_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A person's lasting direct grant on a site: (id, role).
pub async fn lasting_grant(
    conn: &mut AnyConnection,
    email: &str,
    site_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, role FROM grants WHERE email = $1 AND site_id = $2 AND expires_at IS NULL",
    )
    .bind(email)
    .bind(site_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Every open (pending or active) request and elevation of a person.
pub async fn open_of_person(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Vec<Elevation>, sqlx::Error> {
    open_of(conn, email, None).await
}

/// Open requests and elevations (of one person, or everyone's) that no
/// longer rest on an eligible grant for their role: the grant revoked or
/// changed, its eligibility taken away, the person out of the team.
pub async fn orphaned(
    conn: &mut AnyConnection,
    email: Option<&str>,
) -> Result<Vec<Elevation>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM elevations e JOIN sites s ON s.id = e.site_id \
         WHERE e.state IN ('pending', 'active') AND ($1 = '' OR e.email = $1) AND NOT ( \
           EXISTS (SELECT 1 FROM grants eg WHERE eg.id = e.grant_id AND eg.email = e.email \
                   AND eg.site_id = e.site_id AND eg.eligible_role = e.role) \
           OR EXISTS (SELECT 1 FROM team_grants etg \
                      JOIN team_members em ON em.team_id = etg.team_id AND em.email = e.email \
                      WHERE etg.id = e.grant_id AND etg.eligible_role = e.role)) \
         ORDER BY e.requested_at"
    ))
    .bind(email.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await
}

/// The role a direct grant makes its holder eligible for, if any.
pub async fn eligible_role_of(
    conn: &mut AnyConnection,
    grant_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    Ok(eligibility_of(conn, grant_id).await?.map(|(role, _)| role))
}

/// What a direct grant makes its holder eligible for: (role, minutes).
pub async fn eligibility_of(
    conn: &mut AnyConnection,
    grant_id: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row: Option<(Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT eligible_role, eligible_minutes FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some((Some(role), Some(minutes))) => Some((role, minutes)),
        _ => None,
    })
}

/// Whether an active elevation's time is up.
pub async fn any_due(db: &Db, now: i64) -> Result<bool, sqlx::Error> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM elevations WHERE state = 'active' AND ends_at <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(n.is_some())
}

/// One grant making a person eligible on a site, with the site.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct EligibleSite {
    pub site_id: String,
    pub site_name: String,
    pub site_url: String,
    pub client: String,
    /// The site's roles, highest first (as stored: see `split_roles`).
    pub roles: String,
    pub role: String,
    pub eligible_role: String,
    pub eligible_minutes: i64,
    pub expires_at: Option<i64>,
    /// The site's break-glass limit (`None`: no self-approval).
    pub self_approval_minutes: Option<i64>,
}

/// Every eligible grant of a person, direct and through teams, on enabled
/// sites, by client and name.
pub async fn eligible_sites(db: &Db, email: &str) -> Result<Vec<EligibleSite>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id AS site_id, s.name AS site_name, s.url AS site_url, s.client, s.roles, \
                x.role, x.eligible_role, x.eligible_minutes, x.expires_at, s.self_approval_minutes FROM ( \
           SELECT g.site_id, g.role, g.eligible_role, g.eligible_minutes, g.expires_at \
           FROM grants g WHERE g.email = $1 AND g.eligible_role IS NOT NULL \
           UNION ALL \
           SELECT ts.id AS site_id, tg.role, tg.eligible_role, tg.eligible_minutes, tg.expires_at \
           FROM team_members m JOIN team_grants tg ON tg.team_id = m.team_id \
           JOIN sites ts ON tg.site_id = ts.id OR tg.client = ts.client \
           WHERE m.email = $1 AND tg.eligible_role IS NOT NULL) x \
         JOIN sites s ON s.id = x.site_id WHERE s.enabled = 1 ORDER BY s.client, s.name, s.id",
    )
    .bind(email)
    .fetch_all(&db.pool)
    .await
}

/// When a person last launched a site, if ever.
pub async fn last_launched(
    db: &Db,
    email: &str,
    site_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT last_launched_at FROM site_prefs WHERE email = $1 AND site_id = $2")
        .bind(email)
        .bind(site_id)
        .fetch_optional(&db.pool)
        .await
        .map(Option::flatten)
}

/// How many elevations a person was granted on a site before.
pub async fn earlier_on_site(db: &Db, email: &str, site_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM elevations WHERE email = $1 AND site_id = $2 AND starts_at IS NOT NULL",
    )
    .bind(email)
    .bind(site_id)
    .fetch_one(&db.pool)
    .await
}

/// Pending requests that `email` is named to decide (for the site, or for
/// the team whose grant a request rests on), not their own, oldest first.
pub async fn pending_for_approver(
    db: &Db,
    email: &str,
    limit: i64,
) -> Result<Vec<Elevation>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM elevations e JOIN sites s ON s.id = e.site_id \
         WHERE e.state = 'pending' AND e.email <> $1 AND EXISTS ( \
           SELECT 1 FROM approvers a WHERE a.email = $1 AND (a.site_id = e.site_id \
             OR a.team_id IN (SELECT team_id FROM team_grants WHERE id = e.grant_id))) \
         ORDER BY e.requested_at, e.id LIMIT $2"
    ))
    .bind(email)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

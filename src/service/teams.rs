//! Managing teams: members by e-mail, and roles granted to the team on one
//! site or on every site of a client (now and later). Recorded; no web code.

use serde_json::json;

use crate::domain::access::GrantTerms;
use crate::domain::audit::{kind, Actor};
use crate::domain::sites::{check_role, FieldError};
use crate::service::messages::RoleWatch;
use crate::service::sites::{check_email, find_site, ManageError};
use crate::store::teams::Target;
use crate::store::{self, audit, Db};

// Reads with no rule of their own are the store's queries, named here so
// that the pages, handlers and command line never reach the store.
pub use crate::store::teams::{grants, list, members, Member, Team, TeamGrant};

fn invalid(field: &'static str, message: impl Into<String>) -> ManageError {
    ManageError::Invalid(vec![FieldError {
        field,
        message: message.into(),
    }])
}

async fn team(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Team, ManageError> {
    store::teams::find(&mut *conn, id)
        .await?
        .ok_or_else(|| ManageError::Refused("there is no such team".into()))
}

/// Every (e-mail, site) pair of these people and sites.
fn pairs(emails: &[String], sites: &[String]) -> Vec<(String, String)> {
    emails
        .iter()
        .flat_map(|e| sites.iter().map(move |s| (e.clone(), s.clone())))
        .collect()
}

/// The (member, site) pairs a team's grants (or one of them) reach.
async fn team_pairs(
    tx: &mut audit::Tx,
    team_id: &str,
    grant_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let emails = store::teams::member_emails(tx, team_id).await?;
    let sites = store::teams::granted_site_ids(tx, team_id, grant_id).await?;
    Ok(pairs(&emails, &sites))
}

pub async fn create_team(
    db: &Db,
    name: &str,
    description: &str,
    by: &Actor,
    now: i64,
) -> Result<String, ManageError> {
    let name = name.trim();
    let description = description.trim();
    use crate::domain::people::is_control_or_bidi;
    if name.chars().any(is_control_or_bidi) {
        return Err(invalid("name", "the team name contains control characters"));
    }
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid(
            "name",
            "give the team a name of up to 100 characters",
        ));
    }
    if description.chars().count() > 1000 || description.chars().any(is_control_or_bidi) {
        return Err(invalid(
            "description",
            "the description is longer than 1000 characters or holds control characters",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = audit::begin(db).await?;
    if !store::teams::create(&mut tx, &id, name, description, now).await? {
        return Err(invalid(
            "name",
            format!("a team named {name:?} already exists"),
        ));
    }
    let event = by
        .did(now, kind::TEAM_CREATED)
        .detail(json!({ "team_id": id, "name": name, "description": description }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn delete_team(db: &Db, id: &str, by: &Actor, now: i64) -> Result<(), ManageError> {
    let mut tx = audit::begin(db).await?;
    let t = team(&mut tx, id).await?;
    let reached = team_pairs(&mut tx, id, "").await?;
    let watch = RoleWatch::start(&mut tx, &reached, now).await?;
    store::teams::delete(&mut tx, id).await?;
    let event = by.did(now, kind::TEAM_DELETED).detail(json!({
        "team_id": t.id, "name": t.name, "members": t.members, "grants": t.grants,
    }));
    audit::append(&mut tx, &event).await?;
    watch.send_changes(&mut tx, "team_deleted", by, now).await?;
    crate::service::elevation::sweep(&mut tx, None, by, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Add people (one e-mail per line or comma-separated) to a team. Returns
/// the addresses added (those already in it are left as they are).
pub async fn add_members(
    db: &Db,
    allowed_domains: &[String],
    team_id: &str,
    emails: &str,
    by: &Actor,
    now: i64,
) -> Result<Vec<String>, ManageError> {
    let mut list = Vec::new();
    for raw in emails
        .split([',', '\n', ';', ' '])
        .filter(|e| !e.trim().is_empty())
    {
        let email =
            check_email(raw, allowed_domains).map_err(|e| invalid("emails", e.to_string()))?;
        if !list.contains(&email) {
            list.push(email);
        }
    }
    if list.is_empty() {
        return Err(invalid("emails", "give at least one e-mail address"));
    }
    if list.len() > 500 {
        return Err(invalid("emails", "add at most 500 people at once"));
    }
    let mut tx = audit::begin(db).await?;
    let t = team(&mut tx, team_id).await?;
    let sites = store::teams::granted_site_ids(&mut tx, &t.id, "").await?;
    let watch = RoleWatch::start(&mut tx, &pairs(&list, &sites), now).await?;
    let mut added = Vec::new();
    for email in list {
        if store::teams::add_member(&mut tx, &t.id, &email, &by.who, now).await? {
            let event = by
                .did(now, kind::TEAM_MEMBER_ADDED)
                .subject(&email)
                .detail(json!({ "team_id": t.id, "team": t.name }));
            audit::append(&mut tx, &event).await?;
            added.push(email);
        }
    }
    watch
        .send_changes(&mut tx, "team_member_added", by, now)
        .await?;
    tx.commit().await?;
    Ok(added)
}

pub async fn remove_member(
    db: &Db,
    team_id: &str,
    email: &str,
    by: &Actor,
    now: i64,
) -> Result<(), ManageError> {
    let email = email.trim().to_ascii_lowercase();
    let mut tx = audit::begin(db).await?;
    let t = team(&mut tx, team_id).await?;
    let sites = store::teams::granted_site_ids(&mut tx, &t.id, "").await?;
    let watch =
        RoleWatch::start(&mut tx, &pairs(std::slice::from_ref(&email), &sites), now).await?;
    if !store::teams::remove_member(&mut tx, &t.id, &email).await? {
        return Err(ManageError::Refused(format!(
            "{email} is not in {}",
            t.name
        )));
    }
    let event = by
        .did(now, kind::TEAM_MEMBER_REMOVED)
        .subject(&email)
        .detail(json!({ "team_id": t.id, "team": t.name }));
    audit::append(&mut tx, &event).await?;
    watch
        .send_changes(&mut tx, "team_member_removed", by, now)
        .await?;
    crate::service::elevation::sweep(&mut tx, None, by, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Grant a team a role on one site (`site` is its id or URL) or on every
/// site of a client. On a client, the role must be one that client's sites
/// can take (each site still only admits roles it allows).
#[allow(clippy::too_many_arguments)]
pub async fn grant_team(
    db: &Db,
    team_id: &str,
    site: Option<&str>,
    client: Option<&str>,
    role: &str,
    terms: &GrantTerms,
    eligible: Option<(&str, i64)>,
    by: &Actor,
    now: i64,
) -> Result<(), ManageError> {
    let role = check_role(role).map_err(|e| invalid("role", e.to_string()))?;
    // Just-in-time: a role above the grant's own, among the core roles (on
    // a client's sites each site still only admits roles it allows).
    let eligible = match eligible {
        Some((r, m)) => {
            let roles = match site.map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => find_site(db, s).await?.roles,
                None => crate::domain::sites::CORE_ROLES
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
            };
            let e = crate::domain::elevation::check_eligibility(&role, r.trim(), m, &roles)
                .map_err(|e| invalid(e.field, e.message))?;
            Some((e.role, e.max_minutes))
        }
        None => None,
    };
    let (target, site) = match (site.map(str::trim), client.map(str::trim)) {
        (Some(s), _) if !s.is_empty() => {
            let site = find_site(db, s).await?;
            crate::service::sites::allowed_role(&site, &role)
                .map_err(|e| invalid("role", e.to_string()))?;
            (Target::Site(site.id.clone()), Some(site))
        }
        (_, Some(c)) if !c.is_empty() => (Target::Client(c.to_string()), None),
        _ => return Err(invalid("target", "choose a site or a client")),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = audit::begin(db).await?;
    let t = team(&mut tx, team_id).await?;
    let reached = match &target {
        Target::Site(id) => vec![id.clone()],
        Target::Client(c) => store::teams::client_site_ids(&mut tx, c).await?,
    };
    if let (Target::Client(c), true) = (&target, reached.is_empty()) {
        return Err(invalid(
            "target",
            format!("there is no site of a client named {c:?}"),
        ));
    }
    let emails = store::teams::member_emails(&mut tx, &t.id).await?;
    let watch = RoleWatch::start(&mut tx, &pairs(&emails, &reached), now).await?;
    let before = store::teams::put_grant(
        &mut tx,
        &id,
        &t.id,
        &target,
        &role,
        terms.expires_at,
        &terms.reason,
        &by.who,
        now,
    )
    .await?;
    store::elevations::set_team_grant_eligibility(
        &mut tx,
        &id,
        eligible.as_ref().map(|(r, m)| (r.as_str(), *m)),
    )
    .await?;
    let mut event = by.did(now, kind::TEAM_GRANT_SET).role(&role);
    event = match (&target, &site) {
        (Target::Site(_), Some(s)) => event.site(&s.id, &s.url, &s.client),
        (Target::Client(c), _) => event.site("", "", c),
        _ => event,
    };
    if !terms.reason.is_empty() {
        event = event.reason(&terms.reason);
    }
    let event = event.detail(json!({
        "team_id": t.id,
        "team": t.name,
        "grant_id": id,
        "on": match &target { Target::Site(_) => "site", Target::Client(_) => "client" },
        "before": before.map(|b| json!({ "role": b.role, "expires_at": b.expires_at })),
        "after": { "role": role, "expires_at": terms.expires_at },
        "eligible": eligible.as_ref().map(|(r, m)| json!({ "role": r, "max_minutes": m })),
    }));
    audit::append(&mut tx, &event).await?;
    watch
        .send_changes(&mut tx, "team_grant_set", by, now)
        .await?;
    crate::service::elevation::sweep(&mut tx, None, by, now).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn revoke_team_grant(
    db: &Db,
    grant_id: &str,
    by: &Actor,
    now: i64,
) -> Result<(), ManageError> {
    let mut tx = audit::begin(db).await?;
    let g = store::teams::find_grant(&mut tx, grant_id)
        .await?
        .ok_or_else(|| ManageError::Refused("there is no such team grant".into()))?;
    let t = team(&mut tx, &g.team_id).await?;
    let reached = team_pairs(&mut tx, &t.id, &g.id).await?;
    let watch = RoleWatch::start(&mut tx, &reached, now).await?;
    store::teams::revoke_grant(&mut tx, grant_id).await?;
    let event = by
        .did(now, kind::TEAM_GRANT_REVOKED)
        .role(&g.role)
        .site(
            g.site_id.as_deref().unwrap_or(""),
            g.site_url.as_deref().unwrap_or(""),
            g.client.as_deref().unwrap_or(""),
        )
        .detail(json!({
            "team_id": t.id,
            "team": t.name,
            "grant_id": g.id,
            "before": { "role": g.role, "expires_at": g.expires_at },
        }));
    audit::append(&mut tx, &event).await?;
    watch
        .send_changes(&mut tx, "team_grant_revoked", by, now)
        .await?;
    crate::service::elevation::sweep(&mut tx, None, by, now).await?;
    tx.commit().await?;
    Ok(())
}

/// One team, if it exists.
pub async fn find(db: &Db, id: &str) -> Result<Option<Team>, sqlx::Error> {
    store::teams::find(&db.pool, id).await
}

/// The names of the teams `email` belongs to, in order.
pub async fn names_of_member(db: &Db, email: &str) -> Result<Vec<String>, sqlx::Error> {
    store::teams::names_of_member(db, email).await
}

/// What an admin sees of one team: its members and grants, and every
/// client (for the grant form).
pub struct TeamDetail {
    pub team: Team,
    pub members: Vec<Member>,
    pub grants: Vec<TeamGrant>,
    pub clients: Vec<String>,
}

/// One team as the console shows it; `None` when there is no such team.
pub async fn team_detail(db: &Db, id: &str) -> Result<Option<TeamDetail>, sqlx::Error> {
    let Some(team) = find(db, id).await? else {
        return Ok(None);
    };
    Ok(Some(TeamDetail {
        members: members(db, &team.id).await?,
        grants: grants(db, &team.id).await?,
        clients: crate::service::sites::clients(db).await?,
        team,
    }))
}

/// Does joining this team give a sensitive role somewhere (administrator,
/// or the highest role of a site it reaches)? Adding a member is then as
/// sensitive as granting that role.
pub async fn grants_a_sensitive_role(
    db: &Db,
    team_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let rows = crate::store::teams::grant_roles_by_site(db, team_id, now).await?;
    Ok(rows.iter().any(|(role, site_roles)| {
        let site_roles = site_roles
            .as_deref()
            .map(crate::domain::sites::split_roles)
            .unwrap_or_default();
        crate::domain::access::is_sensitive_role_on(role, &site_roles)
    }))
}

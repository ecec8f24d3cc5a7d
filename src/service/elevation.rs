//! Just-in-time access ([`crate::domain::elevation`]): eligible grants,
//! requests, decisions, and elevations that end by themselves. Each step is
//! one transaction with its audit record; a role that changes on a
//! connector site the person has entered goes there at once as a
//! `set-role` message through the outbox (raised on approval, lowered at
//! the end, whether or not the person launches again).

use serde_json::json;

use super::messages::{RoleWatch, Watched};
use super::sites::find_site;
use crate::domain::audit::{kind, Actor};
use crate::domain::elevation::{self as rule, Decider, Eligibility, EndReason, Refusal, State};
use crate::domain::sites::Site;
use crate::store::{self, audit, Db};

pub use crate::store::elevations::{Elevation, Which};

/// Why an elevation action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ElevationError {
    #[error("{}", .0.message())]
    Refused(Refusal),
    #[error("there is no site {0}")]
    UnknownSite(String),
    #[error("there is no request {0}")]
    UnknownRequest(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl ElevationError {
    /// The stable code the console, the API and the command line show.
    pub fn code(&self) -> &'static str {
        match self {
            ElevationError::Refused(r) => r.code(),
            ElevationError::UnknownSite(_) => "unknown_site",
            ElevationError::UnknownRequest(_) => "unknown_request",
            ElevationError::Invalid(_) => "invalid",
            ElevationError::Db(_) => "database",
        }
    }
}

impl From<Refusal> for ElevationError {
    fn from(r: Refusal) -> Self {
        ElevationError::Refused(r)
    }
}

impl From<super::sites::ManageError> for ElevationError {
    fn from(e: super::sites::ManageError) -> Self {
        use super::sites::ManageError as M;
        match e {
            M::UnknownSite(s) => ElevationError::UnknownSite(s),
            M::Db(e) => ElevationError::Db(e),
            e => ElevationError::Invalid(e.to_string()),
        }
    }
}

/// Who files a request: the person themselves (in the console), or the
/// server's operator on their behalf (the command line), recorded as such.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    pub actor: &'a Actor,
    pub on_behalf: bool,
}

/// The eligibilities of a person's grants on a site, as the rule reads them.
async fn eligibilities(
    conn: &mut sqlx::AnyConnection,
    email: &str,
    site_id: &str,
) -> Result<Vec<(String, Eligibility, Option<i64>)>, sqlx::Error> {
    Ok(store::elevations::eligible_grants(conn, email, site_id)
        .await?
        .into_iter()
        .map(|g| {
            (
                g.grant_id,
                Eligibility {
                    role: g.eligible_role,
                    max_minutes: g.eligible_minutes,
                },
                g.expires_at,
            )
        })
        .collect())
}

/// File a request for `role` on a site for `minutes`, with a reason.
/// Refused, with nothing written, when the person is not eligible for that
/// role there, asks for longer than allowed, or already has one open.
#[allow(clippy::too_many_arguments)]
pub async fn request(
    db: &Db,
    by: &Requester<'_>,
    email: &str,
    site: &str,
    role: &str,
    minutes: i64,
    reason: &str,
    now: i64,
) -> Result<Elevation, ElevationError> {
    let email = email.trim().to_ascii_lowercase();
    let site = find_site(db, site).await?;
    if !site.enabled {
        return Err(Refusal::SiteDisabled.into());
    }
    let role = role.trim();
    let mut tx = audit::begin(db).await?;
    let person = store::people::find_by_email_in(&mut tx, &email).await?;
    if person.as_ref().is_some_and(|p| p.disabled) {
        return Err(Refusal::PersonDisabled.into());
    }
    let eligible = eligibilities(&mut tx, &email, &site.id).await?;
    let chosen = rule::choose(&eligible, role, &site.roles, now);
    let ask = rule::check_request(chosen.map(|c| &c.1), role, minutes, reason, &site.roles)?;
    let grant_id = &chosen.expect("checked: eligible").0;
    let id = uuid::Uuid::new_v4().to_string();
    if !store::elevations::insert(
        &mut tx,
        &id,
        &email,
        &site.id,
        grant_id,
        &ask.role,
        ask.minutes,
        &ask.reason,
        &by.actor.who,
        now,
    )
    .await?
    {
        return Err(Refusal::AlreadyOpen.into());
    }
    let event = by
        .actor
        .did(now, kind::ELEVATION_REQUESTED)
        .subject(&email)
        .site(&site.id, &site.url, &site.client)
        .role(&ask.role)
        .reason(&ask.reason)
        .detail(json!({
            "elevation_id": id,
            "minutes": ask.minutes,
            "on_behalf": by.on_behalf,
        }));
    audit::append(&mut tx, &event).await?;
    let row = store::elevations::find(&mut tx, &id)
        .await?
        .expect("inserted in this transaction");
    super::notify::enqueue(&mut tx, kind::ELEVATION_REQUESTED, &row, now).await?;
    tx.commit().await?;
    Ok(row)
}

/// Who decides: an actor, and what the rule needs to know of them.
#[derive(Debug, Clone)]
pub struct Approver<'a> {
    pub actor: &'a Actor,
    /// `None` for the server's operator (the command line).
    pub email: Option<&'a str>,
    pub is_admin: bool,
}

/// How a decision went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub elevation: Elevation,
    /// Break-glass: approved by its own requester.
    pub self_approved: bool,
    /// How many `set-role` messages went out with it.
    pub messages: usize,
}

/// Approve or deny a pending request. Nobody decides their own (outside a
/// site's break-glass, approval only); a denial says why. When two decide
/// at once one wins and the other is told it was decided.
pub async fn decide(
    db: &Db,
    by: &Approver<'_>,
    id: &str,
    approve: bool,
    comment: &str,
    now: i64,
) -> Result<Decided, ElevationError> {
    let comment = rule::check_comment(comment, approve)?;
    let mut tx = audit::begin(db).await?;
    let e = store::elevations::find(&mut tx, id)
        .await?
        .ok_or_else(|| ElevationError::UnknownRequest(id.to_string()))?;
    let state = State::parse(&e.state).unwrap_or(State::Ended);
    if state != State::Pending {
        return Err(Refusal::NotPending(state).into());
    }
    let named = match by.email {
        Some(email) => {
            store::elevations::is_named_approver(&mut tx, email, &e.site_id, &e.grant_id).await?
        }
        None => false,
    };
    let limit = store::elevations::self_approval_minutes(&mut tx, &e.site_id).await?;
    let decider = Decider {
        email: by.email,
        is_admin: by.is_admin,
        named,
    };
    let self_approved = rule::may_decide(decider, &e.email, e.minutes, approve, limit)?;
    let site = store::sites::find_in(&mut *tx, &e.site_id)
        .await?
        .ok_or_else(|| ElevationError::UnknownSite(e.site_id.clone()))?;
    let mut ends_at = 0;
    let mut watch = None;
    if approve {
        // The eligibility it rests on must still hold, as when it was asked.
        let eligible = eligibilities(&mut tx, &e.email, &e.site_id).await?;
        let base = eligible
            .iter()
            .find(|(g, el, exp)| {
                *g == e.grant_id && el.role == e.role && exp.is_none_or(|t| t > now)
            })
            .ok_or(Refusal::NotEligible)?;
        if !site.enabled {
            return Err(Refusal::SiteDisabled.into());
        }
        ends_at = rule::ends_at(now, e.minutes, base.2);
        watch =
            Some(RoleWatch::start(&mut tx, &[(e.email.clone(), e.site_id.clone())], now).await?);
    }
    if !store::elevations::decide(
        &mut tx,
        id,
        approve,
        &by.actor.who,
        &comment,
        self_approved,
        ends_at,
        now,
    )
    .await?
    {
        // Someone decided (or it was withdrawn) between the read and now.
        let now_state = store::elevations::find(&mut tx, id)
            .await?
            .and_then(|e| State::parse(&e.state))
            .unwrap_or(State::Ended);
        return Err(Refusal::NotPending(now_state).into());
    }
    let what = match (approve, self_approved) {
        (true, true) => kind::ELEVATION_SELF_APPROVED,
        (true, false) => kind::ELEVATION_APPROVED,
        (false, _) => kind::ELEVATION_DENIED,
    };
    let mut detail = json!({
        "elevation_id": e.id,
        "minutes": e.minutes,
        "requested_by": e.requested_by,
    });
    if self_approved {
        detail["break_glass"] = json!(true);
    }
    if !comment.is_empty() {
        detail["comment"] = json!(comment);
    }
    let event = by
        .actor
        .did(now, what)
        .subject(&e.email)
        .site(&site.id, &site.url, &site.client)
        .role(&e.role)
        .reason(&e.reason)
        .detail(detail);
    audit::append(&mut tx, &event).await?;
    let mut messages = 0;
    if let Some(watch) = watch {
        let started = Actor::system()
            .did(now, kind::ELEVATION_STARTED)
            .subject(&e.email)
            .site(&site.id, &site.url, &site.client)
            .role(&e.role)
            .detail(json!({ "elevation_id": e.id, "ends_at": ends_at }));
        audit::append(&mut tx, &started).await?;
        messages = watch
            .send_changes(&mut tx, "elevation_started", by.actor, now)
            .await?;
    }
    let row = store::elevations::find(&mut tx, id)
        .await?
        .expect("decided in this transaction");
    super::notify::enqueue(&mut tx, what, &row, now).await?;
    tx.commit().await?;
    Ok(Decided {
        elevation: row,
        self_approved,
        messages,
    })
}

/// The record of one step of `e`, by `by`: the person, the site, the role.
fn about(e: &Elevation, by: &Actor, now: i64, what: &str) -> crate::domain::audit::Event {
    by.did(now, what)
        .subject(&e.email)
        .site(&e.site_id, &e.site_url, &e.site_client)
        .role(&e.role)
}

/// Withdraw a pending request: its requester, or the operator.
pub async fn cancel(
    db: &Db,
    by: &Actor,
    operator: bool,
    id: &str,
    now: i64,
) -> Result<Elevation, ElevationError> {
    let mut tx = audit::begin(db).await?;
    let e = store::elevations::find(&mut tx, id)
        .await?
        .ok_or_else(|| ElevationError::UnknownRequest(id.to_string()))?;
    if !operator && !e.email.eq_ignore_ascii_case(&by.who) {
        return Err(ElevationError::UnknownRequest(id.to_string()));
    }
    if !store::elevations::cancel(&mut tx, id, &by.who, now).await? {
        let state = State::parse(&e.state).unwrap_or(State::Ended);
        return Err(Refusal::NotPending(state).into());
    }
    let event =
        about(&e, by, now, kind::ELEVATION_CANCELLED).detail(json!({ "elevation_id": e.id }));
    audit::append(&mut tx, &event).await?;
    let row = store::elevations::find(&mut tx, id)
        .await?
        .expect("cancelled in this transaction");
    tx.commit().await?;
    Ok(row)
}

/// End an active elevation before its time: its holder, an admin or the
/// operator (`may_end_others`). The role goes back at once.
pub async fn end_early(
    db: &Db,
    by: &Actor,
    may_end_others: bool,
    id: &str,
    now: i64,
) -> Result<Elevation, ElevationError> {
    let mut tx = audit::begin(db).await?;
    let e = store::elevations::find(&mut tx, id)
        .await?
        .ok_or_else(|| ElevationError::UnknownRequest(id.to_string()))?;
    if !may_end_others && !e.email.eq_ignore_ascii_case(&by.who) {
        return Err(ElevationError::UnknownRequest(id.to_string()));
    }
    let state = State::parse(&e.state).unwrap_or(State::Ended);
    if state != State::Active {
        return Err(Refusal::NotActive(state).into());
    }
    end_in(&mut tx, &e, EndReason::EndedEarly, by, now).await?;
    let row = store::elevations::find(&mut tx, id)
        .await?
        .expect("ended in this transaction");
    tx.commit().await?;
    Ok(row)
}

/// End one active elevation inside the caller's transaction: its record,
/// and the role its holder has without it sent where it changed.
async fn end_in(
    tx: &mut audit::Tx,
    e: &Elevation,
    why: EndReason,
    by: &Actor,
    now: i64,
) -> Result<bool, sqlx::Error> {
    if !store::elevations::end(tx, &e.id, why.as_str(), &by.who, now).await? {
        return Ok(false);
    }
    let what = match why {
        EndReason::Expired => kind::ELEVATION_EXPIRED,
        EndReason::EndedEarly => kind::ELEVATION_ENDED_EARLY,
        EndReason::EligibilityLost => kind::ELEVATION_ENDED,
    };
    let event = about(e, by, now, what).detail(json!({
        "elevation_id": e.id,
        "end_reason": why.as_str(),
        "ends_at": e.ends_at,
    }));
    audit::append(tx, &event).await?;
    // The role was the elevated one until now (the expiry job runs after
    // its due time, when the rule no longer counts it): what it is now goes
    // to the site when it differs.
    if let Some(mut w) = Watched::find(tx, &e.email, &e.site_id).await? {
        w.before = Some(e.role.clone());
        let cause = match why {
            EndReason::Expired => "elevation_expired",
            EndReason::EndedEarly => "elevation_ended_early",
            EndReason::EligibilityLost => "elevation_ended",
        };
        RoleWatch::of(vec![w])
            .send_changes(tx, cause, by, now)
            .await?;
    }
    Ok(true)
}

/// End every elevation whose time is up (the server's worker calls this
/// every few seconds; several instances share the work). The end is the
/// row's due time, so it holds across restarts. Returns how many ended.
pub async fn end_due(db: &Db, now: i64) -> Result<usize, sqlx::Error> {
    // A read first: the write lock (SQLite) only when something is due.
    if !store::elevations::any_due(db, now).await? {
        return Ok(0);
    }
    let mut ended = 0;
    loop {
        let mut tx = audit::begin(db).await?;
        let due = store::elevations::due(&mut tx, db.kind, now, 50).await?;
        if due.is_empty() {
            return Ok(ended);
        }
        let by = Actor::system();
        for e in &due {
            if end_in(&mut tx, e, EndReason::Expired, &by, now).await? {
                ended += 1;
            }
        }
        tx.commit().await?;
    }
}

/// Inside a change to a grant (revoked, changed, its eligibility taken away)
/// or to a person (disabled): end what rested on it. Pending requests are
/// withdrawn, active elevations end; each with its record. The caller's own
/// role watch sends the role that results.
pub async fn end_resting_on(
    tx: &mut audit::Tx,
    open: Vec<Elevation>,
    by: &Actor,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let mut n = 0;
    let lost = EndReason::EligibilityLost.as_str();
    for e in open {
        let (done, what) = match State::parse(&e.state) {
            Some(State::Pending) => (
                store::elevations::cancel(tx, &e.id, &by.who, now).await?,
                kind::ELEVATION_CANCELLED,
            ),
            // Recorded here; the caller's watch sends the new role.
            Some(State::Active) => (
                store::elevations::end(tx, &e.id, lost, &by.who, now).await?,
                kind::ELEVATION_ENDED,
            ),
            _ => continue,
        };
        if done {
            let event = about(&e, by, now, what)
                .detail(json!({ "elevation_id": e.id, "end_reason": lost, "ends_at": e.ends_at }));
            audit::append(tx, &event).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// After a change to grants, teams or their members, inside its
/// transaction: end what no longer rests on an eligible grant (of one
/// person, or anyone's: `None`). Returns how many.
pub async fn sweep(
    tx: &mut audit::Tx,
    email: Option<&str>,
    by: &Actor,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let open = store::elevations::orphaned(tx, email).await?;
    end_resting_on(tx, open, by, now).await
}

/// Make a person's lasting grant on a site eligible for a higher role (or
/// not: `None`), recorded. Open elevations for a role it no longer allows end.
pub async fn set_eligibility(
    db: &Db,
    email: &str,
    site: &str,
    eligible: Option<(&str, i64)>,
    by: &Actor,
    now: i64,
) -> Result<Site, ElevationError> {
    let email = email.trim().to_ascii_lowercase();
    let site = find_site(db, site).await?;
    let mut tx = audit::begin(db).await?;
    let watch = RoleWatch::start(&mut tx, &[(email.clone(), site.id.clone())], now).await?;
    let Some((grant_id, role)) =
        store::elevations::lasting_grant(&mut tx, &email, &site.id).await?
    else {
        return Err(ElevationError::Invalid(format!(
            "{email} has no lasting grant on {} to make eligible",
            site.url
        )));
    };
    set_grant_eligibility_in(&mut tx, &email, &site, &grant_id, &role, eligible, by, now).await?;
    watch.send_changes(&mut tx, "grant_set", by, now).await?;
    tx.commit().await?;
    Ok(site)
}

/// Set a direct grant's eligibility inside the caller's transaction,
/// checked against the site's roles, recorded as a grant change.
#[allow(clippy::too_many_arguments)]
pub async fn set_grant_eligibility_in(
    tx: &mut audit::Tx,
    email: &str,
    site: &Site,
    grant_id: &str,
    role: &str,
    eligible: Option<(&str, i64)>,
    by: &Actor,
    now: i64,
) -> Result<(), ElevationError> {
    let checked = match eligible {
        Some((r, m)) => Some(
            rule::check_eligibility(role, r.trim(), m, &site.roles)
                .map_err(|e| ElevationError::Invalid(format!("{}: {}", e.field, e.message)))?,
        ),
        None => None,
    };
    let before = store::elevations::eligibility_of(tx, grant_id).await?;
    let after = checked.as_ref().map(|e| (e.role.clone(), e.max_minutes));
    if before == after {
        return Ok(());
    }
    store::elevations::set_grant_eligibility(
        tx,
        grant_id,
        checked.as_ref().map(|e| (e.role.as_str(), e.max_minutes)),
    )
    .await?;
    sweep(tx, Some(email), by, now).await?;
    let event = by
        .did(now, kind::GRANT_SET)
        .subject(email)
        .site(&site.id, &site.url, &site.client)
        .role(role)
        .detail(json!({
            "eligible": checked.as_ref().map(|e| json!({ "role": e.role, "max_minutes": e.max_minutes })),
        }));
    audit::append(tx, &event).await?;
    Ok(())
}

/// Set a site's break-glass self-approval limit (`None`: off), recorded.
pub async fn set_self_approval(
    db: &Db,
    site: &str,
    minutes: Option<i64>,
    by: &Actor,
    now: i64,
) -> Result<Site, ElevationError> {
    let site = find_site(db, site).await?;
    let minutes = rule::check_self_approval(minutes)
        .map_err(|e| ElevationError::Invalid(format!("{}: {}", e.field, e.message)))?;
    let mut tx = audit::begin(db).await?;
    store::elevations::set_self_approval_minutes(&mut tx, &site.id, minutes, now).await?;
    let event = by
        .did(now, kind::SITE_CHANGED)
        .site(&site.id, &site.url, &site.client)
        .detail(json!({ "self_approval_minutes": minutes }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(site)
}

/// Name (or remove) an approver for a site, recorded.
pub async fn set_site_approver(
    db: &Db,
    allowed_domains: &[String],
    email: &str,
    site: &str,
    on: bool,
    by: &Actor,
    now: i64,
) -> Result<Site, ElevationError> {
    let email = super::sites::check_email(email, allowed_domains)?;
    let site = find_site(db, site).await?;
    let event = by
        .did(now, kind::SITE_CHANGED)
        .subject(&email)
        .site(&site.id, &site.url, &site.client)
        .detail(json!({ "approver": on }));
    name_approver(db, &email, (Some(&site.id), None), on, event).await?;
    Ok(site)
}

/// Add (or remove) a named approver for a site or a team, and its record
/// when that changed anything.
async fn name_approver(
    db: &Db,
    email: &str,
    (site_id, team_id): (Option<&str>, Option<&str>),
    on: bool,
    event: crate::domain::audit::Event,
) -> Result<(), sqlx::Error> {
    let mut tx = audit::begin(db).await?;
    let changed = if on {
        store::elevations::add_approver(&mut tx, email, site_id, team_id, &event.actor, event.at)
            .await?
    } else {
        store::elevations::remove_approver(&mut tx, email, site_id, team_id).await?
    };
    if changed {
        audit::append(&mut tx, &event).await?;
    }
    tx.commit().await
}

/// Name (or remove) an approver for a team (by id or name): they decide
/// the requests that rest on that team's grants. Recorded.
pub async fn set_team_approver(
    db: &Db,
    allowed_domains: &[String],
    email: &str,
    team: &str,
    on: bool,
    by: &Actor,
    now: i64,
) -> Result<String, ElevationError> {
    let email = super::sites::check_email(email, allowed_domains)?;
    let teams = store::teams::list(db).await?;
    let Some(t) = teams
        .into_iter()
        .find(|t| t.id == team.trim() || t.name == team.trim())
    else {
        return Err(ElevationError::Invalid(format!(
            "there is no team {:?}",
            team.trim()
        )));
    };
    let event = by
        .did(now, kind::TEAM_GRANT_SET)
        .subject(&email)
        .detail(json!({ "team_id": t.id, "team": t.name, "approver": on }));
    name_approver(db, &email, (None, Some(&t.id)), on, event).await?;
    Ok(t.name)
}

/// Requests and elevations for the console and the command line.
pub async fn list(
    db: &Db,
    which: Which,
    email: Option<&str>,
    limit: i64,
) -> Result<Vec<Elevation>, sqlx::Error> {
    store::elevations::list(db, which, email, limit).await
}

/// How many requests wait for a decision (the count in the navigation).
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    store::elevations::pending_count(db).await
}

/// A site where a person may ask for a higher role, and what is open there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibleSite {
    pub site_id: String,
    pub site_name: String,
    pub site_url: String,
    pub client: String,
    /// The role the grant itself gives.
    pub role: String,
    pub eligible: Eligibility,
    /// A pending request or an elevation in force there.
    pub open: Option<Elevation>,
    /// Break-glass: the longest the person may approve for themselves there.
    pub self_approval_minutes: Option<i64>,
}

/// The sites where a person may ask for a higher role now (the grant
/// live), one per site (the highest role they may ask for, the longest
/// limit), with what they have open there.
pub async fn eligible_sites(
    db: &Db,
    email: &str,
    now: i64,
) -> Result<Vec<EligibleSite>, sqlx::Error> {
    let rows = store::elevations::eligible_sites(db, email).await?;
    let mut conn = db.pool.acquire().await?;
    let open = store::elevations::open_of_person(&mut conn, email).await?;
    drop(conn);
    let mut out: Vec<EligibleSite> = Vec::new();
    for r in rows
        .into_iter()
        .filter(|r| r.expires_at.is_none_or(|t| t > now))
    {
        let roles = crate::domain::sites::split_roles(&r.roles);
        let rank = |role: &str| roles.iter().position(|x| x == role).unwrap_or(usize::MAX);
        let eligible = Eligibility {
            role: r.eligible_role,
            max_minutes: r.eligible_minutes,
        };
        if let Some(seen) = out.iter_mut().find(|s| s.site_id == r.site_id) {
            let better = (rank(&eligible.role), -eligible.max_minutes)
                < (rank(&seen.eligible.role), -seen.eligible.max_minutes);
            if better {
                seen.eligible = eligible;
                seen.role = r.role;
            }
            continue;
        }
        out.push(EligibleSite {
            open: open.iter().find(|e| e.site_id == r.site_id).cloned(),
            site_id: r.site_id,
            site_name: r.site_name,
            site_url: r.site_url,
            client: r.client,
            role: r.role,
            eligible,
            self_approval_minutes: r.self_approval_minutes,
        });
    }
    Ok(out)
}

/// A request waiting for a decision, with what an approver weighs: when
/// the person last entered the site and how many times they were elevated
/// there before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub elevation: Elevation,
    pub last_launched_at: Option<i64>,
    pub earlier: i64,
}

/// The pending requests, the longest waiting first, with their context:
/// all of them (`None`: for admins), or those a named approver decides.
pub async fn waiting(
    db: &Db,
    approver: Option<&str>,
    limit: i64,
) -> Result<Vec<Waiting>, sqlx::Error> {
    let pending = match approver {
        None => store::elevations::list(db, Which::Pending, None, limit).await?,
        Some(email) => store::elevations::pending_for_approver(db, email, limit).await?,
    };
    let mut out = Vec::new();
    for e in pending {
        let last_launched_at = store::elevations::last_launched(db, &e.email, &e.site_id).await?;
        let earlier = store::elevations::earlier_on_site(db, &e.email, &e.site_id).await?;
        out.push(Waiting {
            elevation: e,
            last_launched_at,
            earlier,
        });
    }
    Ok(out)
}

/// The people named to decide the requests resting on a team's grants.
pub async fn team_approvers(db: &Db, team_id: &str) -> Result<Vec<String>, sqlx::Error> {
    store::elevations::approvers_for_team(db, team_id).await
}

/// A site's just-in-time settings: its break-glass limit and the people
/// named to decide its requests (for it, or for a team whose grant covers it).
pub async fn site_settings(
    db: &Db,
    site_id: &str,
) -> Result<(Option<i64>, Vec<String>), sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let limit = store::elevations::self_approval_minutes(&mut conn, site_id).await?;
    drop(conn);
    let approvers = store::elevations::approvers_for_site(db, site_id).await?;
    Ok((limit, approvers))
}

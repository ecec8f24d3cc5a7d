//! Managing people: disabling and enabling, recorded. No web code here.

use serde_json::json;

use crate::domain::audit::{kind, Actor};
use crate::domain::people::Person;
use crate::store::{self, audit, Db};

// Reads with no rule of their own are the store's queries, named here so
// that the pages, handlers and command line never reach the store.
pub use crate::store::people::{
    find, find_by_email, held, invitations, list, search, Held, Invitation, ListedPerson,
};

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("nobody with the e-mail address {0} has signed in")]
    Unknown(String),
    /// The console's rules refused it (the last admin, say).
    #[error(transparent)]
    Refused(#[from] StandingError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Disable (every session ends at once, launches are refused) or enable
/// again everyone who signed in with `email`, by the same rules and with
/// the same records as the console ([`set_standing`]: the last admin who
/// can act is never disabled). Returns, per person changed, how many
/// sessions ended; someone already in that state is left as they are.
pub async fn set_disabled(
    db: &Db,
    email: &str,
    disabled: bool,
    by: &Actor,
    now: i64,
) -> Result<Vec<(String, u64)>, PeopleError> {
    let email = email.trim().to_ascii_lowercase();
    let people = store::people::find_by_email(db, &email).await?;
    if people.is_empty() {
        return Err(PeopleError::Unknown(email));
    }
    let mut out = Vec::new();
    for p in people.into_iter().filter(|p| p.disabled != disabled) {
        let (_, ended) = change_standing(db, &p.id, Standing::Disabled(disabled), by, now).await?;
        out.push((p.email, ended));
    }
    Ok(out)
}

/// Why a change to a person was refused.
#[derive(Debug, thiserror::Error)]
pub enum StandingError {
    #[error("there is no such person")]
    Unknown,
    #[error("{0} is the last admin who can act: make someone else an admin first")]
    LastAdmin(String),
    #[error("you cannot disable yourself or take away your own admin role")]
    OwnAccount,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A change to one person's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Admin(bool),
    Disabled(bool),
}

/// Promote, demote, disable or enable one person, recorded. Disabling ends
/// all their sessions in the same transaction. The last admin who can act
/// is never demoted or disabled, and nobody does either to themselves.
pub async fn set_standing(
    db: &Db,
    person_id: &str,
    change: Standing,
    by: &Actor,
    now: i64,
) -> Result<crate::domain::people::Person, StandingError> {
    Ok(change_standing(db, person_id, change, by, now).await?.0)
}

/// [`set_standing`], also saying how many sessions ended.
async fn change_standing(
    db: &Db,
    person_id: &str,
    change: Standing,
    by: &Actor,
    now: i64,
) -> Result<(crate::domain::people::Person, u64), StandingError> {
    let mut tx = audit::begin(db).await?;
    let admins = store::people::active_admins_locked(&mut tx, db.kind).await?;
    let p = store::people::find_in(&mut tx, person_id)
        .await?
        .ok_or(StandingError::Unknown)?;
    let loses_admin = matches!(change, Standing::Admin(false) | Standing::Disabled(true));
    // Nobody, nor a token they made, takes their own standing away.
    if loses_admin && crate::domain::api::acts_as(&by.who, &p.email) {
        return Err(StandingError::OwnAccount);
    }
    if loses_admin && admins.len() == 1 && admins[0] == p.id {
        return Err(StandingError::LastAdmin(p.email));
    }
    let (before, after, ended) = match change {
        Standing::Admin(on) => {
            store::people::set_admin(&mut tx, &p.id, on).await?;
            (json!({ "admin": p.is_admin }), json!({ "admin": on }), 0)
        }
        Standing::Disabled(off) => {
            let ended = store::people::set_disabled(&mut tx, &p.id, off)
                .await?
                .unwrap_or(0);
            (
                json!({ "disabled": p.disabled }),
                json!({ "disabled": off }),
                ended,
            )
        }
    };
    // A person disabled is locked out of every connector site they could
    // enter, by messages written with this change.
    let locking = if change == Standing::Disabled(true) && !p.disabled {
        // Their requests are withdrawn and elevations end with them.
        let open = store::elevations::open_of_person(&mut tx, &p.email).await?;
        crate::service::elevation::end_resting_on(&mut tx, open, by, now).await?;
        crate::service::messages::lock_everywhere(&mut tx, &p, "person_disabled", by, now).await?
    } else {
        0
    };
    let event = by
        .did(now, kind::PERSON_CHANGED)
        .subject(&p.email)
        .detail(json!({
            "person_id": p.id,
            "before": before,
            "after": after,
            "sessions_ended": ended,
            "sites_to_lock": locking,
        }));
    audit::append(&mut tx, &event).await?;
    let after = store::people::find_in(&mut tx, &p.id)
        .await?
        .ok_or(StandingError::Unknown)?;
    tx.commit().await?;
    Ok((after, ended))
}

/// Invite someone by e-mail: they are listed before their first sign-in,
/// can be given grants and teams, and become an admin then if asked.
pub async fn invite(
    db: &Db,
    allowed_domains: &[String],
    email: &str,
    make_admin: bool,
    by: &Actor,
    now: i64,
) -> Result<String, crate::service::sites::ManageError> {
    use crate::service::sites::ManageError;
    let email = crate::service::sites::check_email(email, allowed_domains)?;
    if !store::people::find_by_email(db, &email).await?.is_empty() {
        return Err(ManageError::Refused(format!(
            "{email} has already signed in: find them in the list"
        )));
    }
    let mut tx = audit::begin(db).await?;
    let before = store::people::invite(&mut tx, &email, make_admin, &by.who, now).await?;
    let event = by
        .did(now, kind::PERSON_INVITED)
        .subject(&email)
        .detail(json!({
            "make_admin": make_admin,
            "invited_again": before.is_some(),
        }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(email)
}

/// Withdraw an invitation that was not used yet.
pub async fn withdraw_invitation(
    db: &Db,
    email: &str,
    by: &Actor,
    now: i64,
) -> Result<(), crate::service::sites::ManageError> {
    let email = email.trim().to_ascii_lowercase();
    let mut tx = audit::begin(db).await?;
    let Some(gone) = store::people::take_invitation(&mut tx, &email).await? else {
        return Err(crate::service::sites::ManageError::Refused(format!(
            "there is no open invitation for {email}"
        )));
    };
    let event = by
        .did(now, kind::INVITATION_WITHDRAWN)
        .subject(&email)
        .detail(json!({ "make_admin": gone.make_admin != 0, "invited_by": gone.invited_by }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// End one session (by its handle) or every session of a person, recorded
/// with who ended them. Returns how many ended.
pub async fn end_sessions(
    db: &Db,
    person_id: &str,
    handle: Option<&str>,
    by: &Actor,
    now: i64,
) -> Result<u64, StandingError> {
    let mut tx = audit::begin(db).await?;
    let p = store::people::find_in(&mut tx, person_id)
        .await?
        .ok_or(StandingError::Unknown)?;
    let ids = store::sessions::ids_of_person(&mut tx, person_id).await?;
    let chosen: Vec<&String> = ids
        .iter()
        .filter(|id| handle.is_none_or(|h| store::sessions::handle(id) == h))
        .collect();
    let mut ended = 0;
    for id in &chosen {
        ended += store::sessions::delete_in(&mut tx, id).await?;
    }
    if ended > 0 {
        let event = by
            .did(now, kind::SESSION_ENDED)
            .subject(&p.email)
            .reason("ended_by_admin")
            .detail(json!({
                "person_id": p.id,
                "sessions_ended": ended,
                "session": handle,
            }));
        audit::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// One page of the people list, and the invitations waiting.
pub struct PeoplePage {
    pub rows: Vec<ListedPerson>,
    pub total: i64,
    pub invitations: Vec<Invitation>,
    /// Sign-ins held for an admin (see [`decide_held`]).
    pub held: Vec<Held>,
}

pub async fn people_page(
    db: &Db,
    q: &str,
    standing: &str,
    now: i64,
    offset: i64,
    limit: i64,
) -> Result<PeoplePage, sqlx::Error> {
    let (rows, total) = search(db, q, standing, now, offset, limit).await?;
    let wanted = q.to_lowercase();
    let invitations = invitations(db)
        .await?
        .into_iter()
        .filter(|i| q.is_empty() || i.email.contains(&wanted))
        .collect();
    let held = held(db, "")
        .await?
        .into_iter()
        .filter(|h| q.is_empty() || h.email.contains(&wanted))
        .collect();
    Ok(PeoplePage {
        rows,
        total,
        invitations,
        held,
    })
}

/// Decide a held sign-in: `confirm` moves the person who holds its address
/// to its (issuer, subject) (their grants, teams and history stay theirs;
/// the old account at the provider can no longer sign in); otherwise it is
/// refused and forgotten (a new attempt is held again). Recorded either way.
/// Returns the address.
pub async fn decide_held(
    db: &Db,
    issuer: &str,
    subject: &str,
    confirm: bool,
    by: &Actor,
    now: i64,
) -> Result<String, crate::service::sites::ManageError> {
    use crate::service::sites::ManageError;
    let mut tx = audit::begin(db).await?;
    let Some(h) = store::people::take_held(&mut tx, issuer, subject).await? else {
        return Err(ManageError::Refused(
            "That sign-in is no longer waiting: it was decided already.".into(),
        ));
    };
    let identity = json!({ "issuer": h.issuer, "subject": h.subject, "attempts": h.attempts });
    if !confirm {
        let event = by
            .did(now, kind::IDENTITY_REFUSED)
            .subject(&h.email)
            .detail(json!({ "identity": identity }));
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        return Ok(h.email);
    }
    let holder = store::people::all_by_email_in(&mut tx, &h.email)
        .await?
        .into_iter()
        .find(|p| !p.disabled)
        .ok_or_else(|| {
            ManageError::Refused(format!(
                "Nobody enabled holds {} any more: nothing to confirm (a disabled address stays disabled).",
                h.email
            ))
        })?;
    if let Some(other) = store::people::find_by_subject_in(&mut tx, &h.issuer, &h.subject).await? {
        return Err(ManageError::Refused(format!(
            "That account already belongs to {} here (its address changed at the provider): disable one of them, or refuse this.",
            other.email
        )));
    }
    store::people::set_identity(&mut tx, &holder.id, &h.issuer, &h.subject).await?;
    let event = by
        .did(now, kind::IDENTITY_CONFIRMED)
        .subject(&h.email)
        .detail(json!({
            "person_id": holder.id,
            "before": { "issuer": holder.issuer, "subject": holder.subject },
            "after": identity,
        }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(h.email)
}

/// A site a person holds grants on, with the role those grants give now
/// (`None`: none of them does, or the person is disabled).
pub struct PersonSite {
    pub site: crate::service::access::GrantedSite,
    pub role: Option<String>,
}

/// What an admin sees of one person.
pub struct PersonDetail {
    pub person: Person,
    /// The first `shown` sites they hold grants on, by client and name.
    pub sites: Vec<PersonSite>,
    pub sites_total: usize,
    pub grants_total: i64,
    /// Sessions alive now.
    pub sessions: i64,
    pub teams: Vec<String>,
    /// Their latest audit records (by or about them), newest first.
    pub recent: Vec<crate::domain::audit::Stored>,
}

/// One person as the console shows them; `None` when there is no such person.
pub async fn person_detail(
    db: &Db,
    id: &str,
    now: i64,
    shown: usize,
) -> Result<Option<PersonDetail>, sqlx::Error> {
    use crate::domain::access::{decide, SiteStanding};
    let Some(person) = find(db, id).await? else {
        return Ok(None);
    };
    let mut granted = crate::service::access::granted_sites(db, &person.email).await?;
    let grants_total = granted.iter().map(|g| g.grants.len() as i64).sum();
    let sites_total = granted.len();
    granted.sort_by(|x, y| (&x.client, &x.name).cmp(&(&y.client, &y.name)));
    granted.truncate(shown);
    let sites = granted
        .into_iter()
        .map(|site| {
            let standing = SiteStanding {
                enabled: site.enabled,
                allowed_roles: &site.roles,
            };
            let role = decide(!person.disabled, standing, &site.grants, now)
                .ok()
                .map(|e| e.role);
            PersonSite { site, role }
        })
        .collect();
    let filter = crate::service::audit::Filter {
        person: person.email.clone(),
        ..Default::default()
    };
    Ok(Some(PersonDetail {
        sessions: crate::service::sessions::count_for_person(db, &person.id, now).await?,
        teams: crate::service::teams::names_of_member(db, &person.email).await?,
        recent: crate::service::audit::page(db, &filter, None, 20).await?,
        sites,
        sites_total,
        grants_total,
        person,
    }))
}

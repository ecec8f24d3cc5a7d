//! Who is signed in, and the sessions an admin sees and ends.

use tower_sessions::Session;

use crate::domain::audit::{kind, Actor, Origin};
use crate::domain::identity::Admitted;
use crate::domain::people::Person;
use crate::domain::session::SignedIn;
use crate::service::Context;
use crate::store::Db;

pub use crate::store::sessions::{
    active, count_for_person, ActiveSession, DbSessionStore, SIGNED_IN_KEY,
};

/// The signed-in person of this session, if any. Ends sessions that are past
/// their absolute lifetime or whose person was disabled or removed.
pub async fn current_person(
    st: &Context,
    session: &Session,
) -> Result<Option<Person>, CurrentError> {
    let Some(signed_in) = signed_in(st, session).await? else {
        return Ok(None);
    };
    let person = crate::store::people::find(&st.db, &signed_in.person_id)
        .await
        .map_err(|e| CurrentError(e.to_string()))?;
    match person {
        Some(p) if !p.disabled => Ok(Some(p)),
        _ => {
            let _ = session.flush().await;
            Ok(None)
        }
    }
}

/// Who the session says is signed in, within the session's absolute
/// lifetime, without reading the person: the caller reads them (the launch
/// reads them with the site and grants) and must refuse a missing or
/// disabled person and flush the session, as [`current_person`] does.
pub async fn signed_in(st: &Context, session: &Session) -> Result<Option<SignedIn>, CurrentError> {
    let signed_in: Option<SignedIn> = session
        .get(SIGNED_IN_KEY)
        .await
        .map_err(|e| CurrentError(e.to_string()))?;
    let Some(signed_in) = signed_in else {
        return Ok(None);
    };
    if !st.config.session.still_valid(&signed_in, st.clock.now()) {
        let _ = session.flush().await;
        // The absolute lifetime is over: record the end, with whom it was.
        if let Ok(Some(p)) = crate::store::people::find(&st.db, &signed_in.person_id).await {
            let event = Actor::system()
                .did(st.clock.now(), kind::SESSION_ENDED)
                .subject(&p.email)
                .reason("absolute_lifetime")
                .detail(serde_json::json!({ "signed_in_at": signed_in.signed_in_at }));
            if let Err(e) = crate::store::audit::record(&st.db, &[event]).await {
                tracing::warn!(error = %e, "cannot record the end of a session");
            }
        }
        return Ok(None);
    }
    Ok(Some(signed_in))
}

/// [`signed_in`] for a session whose stored record and expiry the caller
/// has read from its row (with other data, in one statement): the same
/// checks, without reading the row again.
pub async fn signed_in_with(
    st: &Context,
    session: &Session,
    id: tower_sessions::session::Id,
    stored: &str,
    expires_at: i64,
) -> Result<Option<SignedIn>, CurrentError> {
    st.sessions
        .prime(id, stored, expires_at)
        .map_err(|e| CurrentError(e.to_string()))?;
    let who = signed_in(st, session).await;
    st.sessions.unprime(&id);
    who
}

/// The session or the database could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the session: {0}")]
pub struct CurrentError(pub String);

/// What this session says of its sign-in (None when nobody is signed in).
pub async fn sign_in_of(session: &Session) -> Option<SignedIn> {
    session.get::<SignedIn>(SIGNED_IN_KEY).await.ok().flatten()
}

/// What became of a sign-in the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    SignedIn(Person),
    /// The address is disabled (whatever the subject).
    Disabled,
    /// Another subject holds the address: held until an admin confirms.
    Held,
}

/// Record a sign-in the provider vouched for and the configuration admits:
/// the person (created at their first sign-in), an invitation used up (and
/// the admin it made), and the audit record, in one transaction (which,
/// holding the audit chain's lock, serialises sign-ins: one address, one
/// enabled person). A disabled address writes nothing; a held one only
/// notes the attempt for the admins.
pub async fn sign_in(
    db: &Db,
    admitted: &Admitted,
    from: &Origin,
    now: i64,
) -> Result<SignInOutcome, sqlx::Error> {
    use crate::domain::people::{arrival, Arrival};
    let new_id = uuid::Uuid::new_v4().to_string();
    // The person and the record of their sign-in, in one transaction.
    let mut tx = crate::store::audit::begin(db).await?;
    let known =
        crate::store::people::find_by_subject_in(&mut tx, &admitted.issuer, &admitted.subject)
            .await?;
    let by_email = crate::store::people::all_by_email_in(&mut tx, &admitted.email).await?;
    let mut admitted = admitted.clone();
    match arrival(known.as_ref(), &by_email, admitted.bootstrap_admin) {
        Arrival::Disabled => return Ok(SignInOutcome::Disabled),
        Arrival::Held { .. } => {
            crate::store::people::hold(&mut tx, &admitted, now).await?;
            tx.commit().await?;
            return Ok(SignInOutcome::Held);
        }
        Arrival::Known(_) => {}
        Arrival::New { admin } => admitted.bootstrap_admin = admin,
    }
    let Some(mut person) =
        crate::store::people::record_sign_in(&mut *tx, &admitted, &new_id, now).await?
    else {
        return Ok(SignInOutcome::Disabled);
    };
    // An invitation is used up by the first sign-in (and makes an admin if it said so).
    let invitation = crate::store::people::take_invitation(&mut tx, &person.email).await?;
    if invitation.as_ref().is_some_and(|i| i.make_admin != 0) && !person.is_admin {
        crate::store::people::set_admin(&mut tx, &person.id, true).await?;
        person.is_admin = true;
    }
    let event = Actor::person(&person.email, from.clone())
        .did(now, kind::SIGN_IN)
        .subject(&person.email)
        .detail(serde_json::json!({
            "person_id": person.id,
            "issuer": person.issuer,
            "first_sign_in": person.id == new_id,
            "admin": person.is_admin,
            "invited_by": invitation.map(|i| i.invited_by),
        }));
    crate::store::audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(SignInOutcome::SignedIn(person))
}

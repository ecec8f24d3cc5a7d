//! Offboarding that reaches every site: the messages a change calls for
//! (a disabled person's accounts locked, a lowered or removed grant's role
//! set, sessions ended on request) are written in the change's own
//! transaction; a worker in every instance sends them to the `connector`
//! sites as signed logout tokens, retries them for days, and records each
//! final outcome in the audit chain. Sites on other profiles get nothing,
//! and the checklist says so.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::domain::access::{decide, SiteStanding};
use crate::domain::audit::{kind, outcome, Actor, Event, Origin, SYSTEM};
use crate::domain::messages::{
    judge, logout_claims, next_attempt, Addressed, Delivery, Sent, SiteAction, SiteAnswer,
    MAX_ANSWER_BYTES, ROUTE, TYP,
};
use crate::domain::people::Person;
use crate::domain::sites::{split_roles, Profile, Site};
use crate::domain::tokens::new_jti;
use crate::service::Context;
use crate::store::messages::{self as store, Attempt, Message, NewMessage, Outcome, Target};
use crate::store::{self as db_store, audit, Db};

/// How long one attempt may take, connection and answer included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How many sites are sent to at once, per instance.
pub const CONCURRENCY: usize = 32;
/// How many due messages an instance claims at a time. The claim is one
/// write (each message and its attempt record): small enough that a launch
/// waiting behind it on SQLite waits little (BENCHMARKS.md, session 18).
const BATCH: i64 = 64;
/// How long a claim holds a message against other instances, seconds
/// (well past the send timeout: an instance killed mid-send releases it
/// when this runs out).
const LEASE_SECS: i64 = 60;

/// Lock the person's account on every connector site they ever entered or
/// hold a grant on, inside the caller's transaction. Returns how many.
pub async fn lock_everywhere(
    conn: &mut sqlx::AnyConnection,
    person: &Person,
    cause: &str,
    by: &Actor,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let targets = store::connector_sites_of(conn, &person.email).await?;
    enqueue_all(conn, person, &targets, &SiteAction::Lock, cause, by, now).await
}

async fn enqueue_all(
    conn: &mut sqlx::AnyConnection,
    person: &Person,
    targets: &[Target],
    action: &SiteAction,
    cause: &str,
    by: &Actor,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let messages: Vec<NewMessage> = targets
        .iter()
        .map(|t| NewMessage {
            id: uuid::Uuid::new_v4().to_string(),
            person_id: &person.id,
            email: &person.email,
            site_id: &t.id,
            site_url: &t.url,
            client: &t.client,
            action: action.as_str(),
            role: action.role(),
            cause,
        })
        .collect();
    store::enqueue(conn, &messages, &by.who, now).await?;
    Ok(messages.len())
}

/// What a site's change did to its messages that had not got through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Followed {
    /// Pointed at the site's new URL (or client).
    pub retargeted: u64,
    /// Cancelled: the site was deleted or left the connector profile.
    pub cancelled: usize,
}

/// After a change to a site, inside its transaction: the site's messages
/// that have not got through follow it. A new URL is their audience from
/// the next attempt on (the old address, perhaps someone else's now, is
/// told nothing); a site deleted (`after` is `None`) or no longer on the
/// connector profile takes no message, so they are cancelled, each with
/// an audit record, and the checklist says so.
pub async fn follow_site(
    conn: &mut sqlx::AnyConnection,
    before: &Site,
    after: Option<&Site>,
    by: &Actor,
    now: i64,
) -> Result<Followed, sqlx::Error> {
    let why = match after {
        None => "the site was deleted before it got through".to_string(),
        Some(a) if a.profile != Profile::Connector => format!(
            "the site no longer uses the connector profile (now {}) and takes no messages",
            a.profile.as_str()
        ),
        Some(a) => {
            let retargeted = store::retarget(conn, &a.id, &a.url, &a.client).await?;
            return Ok(Followed {
                retargeted,
                cancelled: 0,
            });
        }
    };
    let cancelled = store::cancel_for_site(conn, &before.id, &why, now).await?;
    let events: Vec<Event> = cancelled
        .iter()
        .map(|m| {
            let mut e = by
                .did(now, kind::SITE_MESSAGE_CANCELLED)
                .subject(&m.email)
                .site(&m.site_id, &m.site_url, &m.client)
                .detail(json!({
                    "message_id": m.id,
                    "action": m.action,
                    "role": m.role,
                    "cause": m.cause,
                    "attempts": m.attempts,
                    "reason": why,
                }));
            if !m.role.is_empty() {
                e = e.role(&m.role);
            }
            e
        })
        .collect();
    if !events.is_empty() {
        audit::append_all(conn, &events).await?;
    }
    Ok(Followed {
        retargeted: 0,
        cancelled: cancelled.len(),
    })
}

/// "End all WordPress sessions" for one person: an end-sessions message to
/// every connector site they ever entered or hold a grant on, recorded.
/// Returns the person and how many sites were asked.
pub async fn end_sessions_everywhere(
    db: &Db,
    person_id: &str,
    by: &Actor,
    now: i64,
) -> Result<(Person, usize), MessageError> {
    let mut tx = audit::begin(db).await?;
    let person = db_store::people::find_in(&mut tx, person_id)
        .await?
        .ok_or(MessageError::UnknownPerson)?;
    let targets = store::connector_sites_of(&mut tx, &person.email).await?;
    let n = enqueue_all(
        &mut tx,
        &person,
        &targets,
        &SiteAction::EndSessions,
        "sessions_end_requested",
        by,
        now,
    )
    .await?;
    let event = by
        .did(now, kind::SITE_SESSIONS_END_REQUESTED)
        .subject(&person.email)
        .detail(json!({ "person_id": person.id, "sites": n }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok((person, n))
}

/// The e-mail address of a person, for the command line.
pub async fn end_sessions_by_email(
    db: &Db,
    email: &str,
    by: &Actor,
    now: i64,
) -> Result<(Person, usize), MessageError> {
    let email = email.trim().to_ascii_lowercase();
    let people = db_store::people::find_by_email(db, &email).await?;
    let Some(p) = people.first() else {
        return Err(MessageError::NoSuchEmail(email));
    };
    end_sessions_everywhere(db, &p.id, by, now).await
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("there is no such person")]
    UnknownPerson,
    #[error("nobody with the e-mail address {0} has signed in")]
    NoSuchEmail(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The roles some people hold on connector sites they entered, read before
/// a change to their grants, so that the change's transaction can send
/// each site the role that changed ([`RoleWatch::send_changes`]).
pub struct RoleWatch {
    watched: Vec<Watched>,
}

/// One (person, connector site) pair a role change may reach.
pub struct Watched {
    person: Person,
    site: Target,
    roles: Vec<String>,
    /// The role before the change.
    pub before: Option<String>,
}

impl Watched {
    /// The pair, when a role change there is something to send: an enabled
    /// person and a connector site they have entered. `before` is unset.
    pub async fn find(
        conn: &mut sqlx::AnyConnection,
        email: &str,
        site_id: &str,
    ) -> Result<Option<Watched>, sqlx::Error> {
        let Some(person) = db_store::people::find_by_email_in(conn, email).await? else {
            return Ok(None);
        };
        if person.disabled {
            return Ok(None);
        }
        let found = store::entered_connector_site(conn, &person.email, site_id).await?;
        Ok(found.map(|(site, roles)| Watched {
            person,
            site,
            roles: split_roles(&roles),
            before: None,
        }))
    }
}

impl RoleWatch {
    /// Watch pairs whose role before was set by the caller.
    pub fn of(watched: Vec<Watched>) -> RoleWatch {
        RoleWatch { watched }
    }

    /// Watch these (e-mail, site id) pairs: the ones of enabled people on
    /// connector sites they have entered (nothing is sent elsewhere).
    pub async fn start(
        conn: &mut sqlx::AnyConnection,
        pairs: &[(String, String)],
        now: i64,
    ) -> Result<RoleWatch, sqlx::Error> {
        let mut watched = Vec::new();
        for (email, site_id) in pairs {
            if let Some(mut w) = Watched::find(conn, email, site_id).await? {
                w.before = role_now(conn, &w.person.email, &w.site.id, &w.roles, now).await?;
                watched.push(w);
            }
        }
        Ok(RoleWatch { watched })
    }

    /// After the change, in its transaction: a set-role message to each
    /// watched site where the role changed (none left: `""`, the account
    /// is locked there). Returns how many.
    pub async fn send_changes(
        self,
        conn: &mut sqlx::AnyConnection,
        cause: &str,
        by: &Actor,
        now: i64,
    ) -> Result<usize, sqlx::Error> {
        let mut n = 0;
        for w in self.watched {
            let after = role_now(conn, &w.person.email, &w.site.id, &w.roles, now).await?;
            if after == w.before {
                continue;
            }
            let action = SiteAction::SetRole(after.unwrap_or_default());
            n += enqueue_all(conn, &w.person, &[w.site], &action, cause, by, now).await?;
        }
        Ok(n)
    }
}

/// The role a person's grants give on a site now (the site taken as enabled).
async fn role_now(
    conn: &mut sqlx::AnyConnection,
    email: &str,
    site_id: &str,
    roles: &[String],
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let grants = db_store::grants::applying(&mut *conn, email, site_id).await?;
    let standing = SiteStanding {
        enabled: true,
        allowed_roles: roles,
    };
    Ok(decide(true, standing, &grants, now).ok().map(|e| e.role))
}

/// Notice grants that ended since the job last looked: each gets an audit
/// record, and a site whose role for that person changed gets a set-role.
/// One instance handles each stretch of time. Returns how many ended.
pub async fn notice_expired_grants(db: &Db, now: i64) -> Result<usize, sqlx::Error> {
    const JOB: &str = "grant_expiry";
    let from = match store::mark(db, JOB).await? {
        Some(t) if t >= now => return Ok(0),
        Some(t) => t,
        // The first run starts now: grants that ended before were ended
        // before this job existed.
        None => now,
    };
    let mut tx = audit::begin(db).await?;
    if !store::move_mark(&mut tx, JOB, from, now).await? {
        return Ok(0);
    }
    let ended = store::expired_between(&mut tx, from, now).await?;
    let by = Actor::system();
    let mut watched = Vec::new();
    for (email, site_id, role) in &ended {
        let Some(site) = db_store::sites::find_in(&mut *tx, site_id).await? else {
            continue;
        };
        let event = by
            .did(now, kind::GRANT_EXPIRED)
            .subject(email)
            .site(&site.id, &site.url, &site.client)
            .role(role);
        audit::append(&mut tx, &event).await?;
        // The role before was at least the ended grant's; what it is now
        // goes to the site when it differs.
        if let Some(mut w) = Watched::find(&mut tx, email, site_id).await? {
            w.before = Some(role.clone());
            watched.push(w);
        }
    }
    RoleWatch { watched }
        .send_changes(&mut tx, "grant_expired", &by, now)
        .await?;
    tx.commit().await?;
    Ok(ended.len())
}

/// The worker: sends due messages, and every half minute notices grants
/// that ended. Runs until the process stops.
pub fn spawn_worker(ctx: Context) {
    tokio::spawn(async move {
        let owner = uuid::Uuid::new_v4().to_string();
        let client = http_client();
        // How often the periodic jobs look, by the monotonic clock: the
        // service's clock may be set back (a stepped system clock, a test
        // clock file), which must not stall them.
        let mut last_expiry_check: Option<std::time::Instant> = None;
        let mut last_elevation_check: Option<std::time::Instant> = None;
        let every = |last: Option<std::time::Instant>, secs: u64| {
            last.is_none_or(|t| t.elapsed() >= Duration::from_secs(secs))
        };
        loop {
            let now = ctx.now();
            // Elevations end on time (their rows' due times, read again
            // after a restart), checked every few seconds.
            if every(last_elevation_check, 5) {
                last_elevation_check = Some(std::time::Instant::now());
                if let Err(e) = super::elevation::end_due(&ctx.db, now).await {
                    tracing::warn!(error = %e, "cannot end the elevations that are due");
                }
            }
            if every(last_expiry_check, 30) {
                last_expiry_check = Some(std::time::Instant::now());
                if let Err(e) = notice_expired_grants(&ctx.db, now).await {
                    tracing::warn!(error = %e, "cannot look for grants that ended");
                }
            }
            match deliver_due(&ctx, &client, &owner).await {
                Ok(0) => tokio::time::sleep(Duration::from_secs(1)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot send the messages to sites");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
}

/// The client messages are sent with: bounded in time, no redirects (a
/// site that moved gets its URL fixed in the dashboard, not followed).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("agency-sso/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Claim the messages due now and send them, many sites at once (a slow
/// or hanging site holds up only its own slot). Outcomes are written as
/// they come, those that arrive together in one transaction, so the
/// fan-out takes the database's write lock as seldom as it can (launches
/// wait behind it on SQLite). Returns how many were tried.
pub async fn deliver_due(
    ctx: &Context,
    client: &reqwest::Client,
    owner: &str,
) -> Result<usize, sqlx::Error> {
    let now = ctx.now();
    let batch = store::claim_due(&ctx.db, owner, now, now + LEASE_SECS, BATCH).await?;
    let n = batch.len();
    let mut outcomes = futures_util::stream::iter(batch)
        .map(|m| async move {
            let delivery = attempt(ctx, client, &m).await;
            (m, delivery)
        })
        .buffer_unordered(CONCURRENCY)
        .ready_chunks(OUTCOMES_PER_WRITE);
    while let Some(done) = outcomes.next().await {
        if let Err(e) = record_all(ctx, owner, done).await {
            tracing::warn!(error = %e, "cannot record the outcome of messages to sites");
        }
    }
    Ok(n)
}

/// The most outcomes written in one transaction: fewer writes than one
/// per outcome, each short enough not to hold up launches on SQLite.
const OUTCOMES_PER_WRITE: usize = 16;

/// One attempt: a fresh token (its own `jti`, signed by the current key,
/// naming the person by their stable subject and current address, with the
/// message's `seq`), posted to the site's back-channel route; at most
/// [`MAX_ANSWER_BYTES`] of the answer are read.
async fn attempt(ctx: &Context, client: &reqwest::Client, m: &Message) -> Delivery {
    let Some(action) = SiteAction::parse(&m.action, &m.role) else {
        return Delivery::Refused(format!("unknown action {}", m.action));
    };
    let Some(signer) = ctx.keys.signer() else {
        return Delivery::Retry("no signing key is active".into());
    };
    let now = ctx.now();
    let jti = new_jti(&mut rand::rngs::OsRng);
    let to = Addressed {
        issuer: &ctx.config.public_url,
        audience: &m.site_url,
        subject: &m.person_id,
        email: &m.current_email,
        seq: m.seq,
    };
    let claims = logout_claims(&to, &action, now, &jti);
    let token = match signer.sign_typed(TYP, &claims) {
        Ok(t) => t,
        Err(e) => return Delivery::Retry(format!("cannot sign: {e}")),
    };
    let url = format!("{}{ROUTE}", m.site_url);
    let sent = Sent {
        jti: &jti,
        action: &action,
    };
    match client
        .post(&url)
        .form(&[("logout_token", token)])
        .send()
        .await
    {
        Ok(mut res) => {
            let status = res.status().as_u16();
            match read_capped(&mut res, MAX_ANSWER_BYTES).await {
                Ok((body, cut)) => judge(&sent, status, &body, cut),
                Err(e) if e.is_timeout() => {
                    Delivery::Retry("the site did not finish its answer in time".into())
                }
                Err(e) => {
                    Delivery::Retry(format!("the site's answer broke off: {}", root_cause(&e)))
                }
            }
        }
        Err(e) if e.is_timeout() => Delivery::Retry("the site did not answer in time".into()),
        Err(e) => Delivery::Retry(format!("the site cannot be reached: {}", root_cause(&e))),
    }
}

/// At most `max` bytes of a response's body, and whether there was more
/// (then the rest is not read: the connection is dropped).
pub(crate) async fn read_capped(
    res: &mut reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    if res.content_length().is_some_and(|n| n > max as u64) {
        return Ok((Vec::new(), true));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if body.len() + chunk.len() > max {
            return Ok((Vec::new(), true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

pub(crate) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What an attempt leaves on its message.
enum Settled {
    Done(String),
    Retry(String, i64),
    Unexpected(String, i64),
    /// Why; whether it was given up (rather than refused).
    Failed(String, bool),
}

impl Settled {
    fn as_outcome(&self) -> Outcome<'_> {
        match self {
            Settled::Done(result) => Outcome::Done { result },
            Settled::Retry(error, at) => Outcome::Retry { error, at: *at },
            Settled::Unexpected(error, at) => Outcome::Unexpected { error, at: *at },
            Settled::Failed(error, given_up) => Outcome::Failed {
                error,
                given_up: *given_up,
            },
        }
    }
}

/// What an attempt came to, and for a final outcome (done, refused, given
/// up) its audit record.
fn settle(m: &Message, delivery: Delivery, now: i64) -> (Settled, Option<Event>) {
    let event = |kind: &str, outcome: &str, extra: serde_json::Value| {
        let mut detail = json!({
            "message_id": m.id,
            "action": m.action,
            "role": m.role,
            "cause": m.cause,
            "attempts": m.attempts,
        });
        if let (Some(d), Some(x)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(x.clone());
        }
        let mut e = Event::new(now, kind, outcome, SYSTEM, &Origin::default())
            .subject(&m.email)
            .site(&m.site_id, &m.site_url, &m.client)
            .detail(detail);
        if !m.role.is_empty() {
            e = e.role(&m.role);
        }
        e
    };
    let failed = |why: String, given_up: bool| {
        let e = event(
            kind::SITE_MESSAGE_FAILED,
            outcome::FAILURE,
            json!({ "error": why }),
        );
        (Settled::Failed(why, given_up), Some(e))
    };
    match delivery {
        Delivery::Done(answer) => {
            // The answer's fields only, as the domain parsed them.
            let e = event(
                kind::SITE_MESSAGE_DELIVERED,
                outcome::SUCCESS,
                json!({ "site_answer": answer }),
            );
            let stored = serde_json::to_string(&answer).unwrap_or_default();
            (Settled::Done(stored), Some(e))
        }
        Delivery::Refused(why) => failed(why, false),
        Delivery::Unexpected(why) => {
            let why = format!("unexpected answer: {why}");
            match next_attempt(m.attempts, m.created_at, now) {
                Some(at) => (Settled::Unexpected(why, at), None),
                None => failed(
                    format!("given up after {} attempts: {why}", m.attempts),
                    true,
                ),
            }
        }
        Delivery::Retry(why) => match next_attempt(m.attempts, m.created_at, now) {
            Some(at) => (Settled::Retry(why, at), None),
            None => failed(
                format!("given up after {} attempts: {why}", m.attempts),
                true,
            ),
        },
    }
}

/// Write what attempts came to, in one transaction, final outcomes with
/// their audit records. A message whose lease ran out meanwhile (another
/// instance took it over) is left to that instance.
async fn record_all(
    ctx: &Context,
    owner: &str,
    attempts: Vec<(Message, Delivery)>,
) -> Result<(), sqlx::Error> {
    let _turn = ctx.db.write_turn().await;
    let now = ctx.now();
    let mut tx = audit::begin(&ctx.db).await?;
    let mut events = Vec::new();
    for (m, delivery) in attempts {
        let (settled, event) = settle(&m, delivery, now);
        let outcome = settled.as_outcome();
        if store::finish(&mut tx, &m.id, m.attempts, owner, &outcome, now).await? {
            events.extend(event);
        }
    }
    if !events.is_empty() {
        audit::append_all(&mut tx, &events).await?;
    }
    tx.commit().await
}

/// One row of a person's offboarding checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistRow {
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    /// `connector`, or the profile no message reaches.
    pub profile: String,
    /// The message, when one was sent (`None`: a site on another profile).
    pub message: Option<Message>,
    /// Each attempt to deliver it, first first.
    pub attempts: Vec<Attempt>,
}

/// A person's offboarding checklist: every message about them (the newest
/// word per site and action first), and the sites on other profiles they
/// entered or hold grants on, where the sessions must be ended by hand.
pub async fn checklist(db: &Db, person: &Person) -> Result<Vec<ChecklistRow>, sqlx::Error> {
    let mut attempts: std::collections::HashMap<String, Vec<Attempt>> = Default::default();
    for a in store::attempts_for_person(db, &person.id).await? {
        attempts.entry(a.message_id.clone()).or_default().push(a);
    }
    let mut rows: Vec<ChecklistRow> = store::for_person(db, &person.id)
        .await?
        .into_iter()
        .rev()
        .filter(|m| m.state != "superseded")
        .map(|m| ChecklistRow {
            site_id: m.site_id.clone(),
            site_url: m.site_url.clone(),
            client: m.client.clone(),
            profile: "connector".into(),
            attempts: attempts.remove(&m.id).unwrap_or_default(),
            message: Some(m),
        })
        .collect();
    for (id, url, client, profile) in store::other_sites_of(db, &person.email).await? {
        rows.push(ChecklistRow {
            site_id: id,
            site_url: url,
            client,
            profile,
            message: None,
            attempts: Vec::new(),
        });
    }
    Ok(rows)
}

/// [`checklist`] for a person by id, with the person; `None` when there
/// is no such person.
pub async fn checklist_of(
    db: &Db,
    person_id: &str,
) -> Result<Option<(Person, Vec<ChecklistRow>)>, sqlx::Error> {
    match db_store::people::find(db, person_id).await? {
        Some(p) => {
            let rows = checklist(db, &p).await?;
            Ok(Some((p, rows)))
        }
        None => Ok(None),
    }
}

pub use crate::store::messages::{counts, Message as SiteMessage};

/// The checklist's columns, in order.
pub const CHECKLIST_HEADER: &str = "site_url,client,profile,action,role,cause,state,outcome,\
attempts,requested_utc,last_attempt_utc,finished_utc,user_found,sessions_ended,\
application_passwords_revoked,role_before,role_after,locked,error,attempt_history";

/// What came of one attempt, in words (for the checklist and its export).
pub fn attempt_words(a: &Attempt) -> String {
    match a.outcome.as_str() {
        "delivered" => "delivered: the site carried it out".into(),
        "retry" => format!("did not get through, tried again later: {}", a.detail),
        "unexpected" => format!(
            "the site's answer did not confirm it (not counted as done, tried again later): {}",
            a.detail
        ),
        "refused" => format!("refused, not tried again: {}", a.detail),
        "given-up" | "cancelled" => a.detail.clone(),
        "interrupted" => "no outcome recorded: the dashboard stopped during this attempt \
                          (the site may have carried it out; the next attempt asks again)"
            .into(),
        _ => "sending now".into(),
    }
}

/// What the site reported, read from its stored answer (`None` before it
/// answered, or for an answer stored before answers were checked).
pub fn site_answer(m: &Message) -> Option<SiteAnswer> {
    m.result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
}

/// Where a checklist row stands: `done`, `pending`, `attention` (pending,
/// and the site's last answer did not confirm it), `failed`, `cancelled`,
/// or `by-hand` (a site on another profile).
pub fn row_state(r: &ChecklistRow) -> &'static str {
    let Some(m) = &r.message else {
        return "by-hand";
    };
    match m.state.as_str() {
        "done" => "done",
        "failed" => "failed",
        "cancelled" => "cancelled",
        _ if r.attempts.last().is_some_and(|a| a.outcome == "unexpected") => "attention",
        _ => "pending",
    }
}

/// What a row came to, in words (the checklist's outcome column).
pub fn row_outcome(r: &ChecklistRow) -> String {
    let Some(m) = &r.message else {
        return format!(
            "the {} plugin takes no messages: end the sessions on the site by hand",
            r.profile
        );
    };
    match (row_state(r), site_answer(m)) {
        ("done", Some(a)) if a.superseded => {
            "superseded by a newer change: the site had already applied a newer message \
             (or this one, at an earlier attempt), so it did nothing"
                .into()
        }
        ("done", Some(a)) if !a.user_found => "no account for them there: nothing to do".into(),
        ("done", _) => "carried out".into(),
        ("attention", _) => {
            "needs attention: the site's answer did not confirm it (tried again)".into()
        }
        ("pending", _) => "waiting to get through".into(),
        ("cancelled", _) => format!("cancelled: {}", m.last_error.clone().unwrap_or_default()),
        _ => "failed".into(),
    }
}

/// The checklist as CSV, the evidence an agency hands a client (cells are
/// made inert for spreadsheets, as the audit export's are).
pub fn checklist_csv(rows: &[ChecklistRow]) -> String {
    use crate::domain::audit::{csv_cell, utc};
    let time = |t: Option<i64>| t.map(utc).unwrap_or_default();
    let mut out = format!("{CHECKLIST_HEADER}\n");
    for r in rows {
        let cells: Vec<String> = match &r.message {
            Some(m) => {
                let a = site_answer(m);
                let a = a.as_ref();
                let role = |r: Option<&Option<String>>| r.cloned().flatten().unwrap_or_default();
                vec![
                    r.site_url.clone(),
                    r.client.clone(),
                    r.profile.clone(),
                    m.action.clone(),
                    m.role.clone(),
                    m.cause.clone(),
                    m.state.clone(),
                    row_outcome(r),
                    m.attempts.to_string(),
                    time(Some(m.created_at)),
                    time(m.last_attempt_at),
                    time(m.done_at),
                    a.map(|a| a.user_found.to_string()).unwrap_or_default(),
                    a.map(|a| a.sessions_ended.to_string()).unwrap_or_default(),
                    a.map(|a| a.application_passwords_revoked.to_string())
                        .unwrap_or_default(),
                    role(a.map(|a| &a.role_before)),
                    role(a.map(|a| &a.role_after)),
                    a.map(|a| a.locked.to_string()).unwrap_or_default(),
                    m.last_error.clone().unwrap_or_default(),
                    r.attempts
                        .iter()
                        .map(|a| {
                            format!("#{} {} {}", a.attempt, utc(a.started_at), attempt_words(a))
                        })
                        .collect::<Vec<_>>()
                        .join(" | "),
                ]
            }
            None => {
                let mut cells = vec![
                    r.site_url.clone(),
                    r.client.clone(),
                    r.profile.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "by hand".into(),
                    row_outcome(r),
                ];
                cells.resize(20, String::new());
                cells
            }
        };
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

//! The launch: from a click on a site to the site's login URL with a token.
//!
//! The decision is made on what the database says now (person, site,
//! grants; or what the same session's last launch of the site was decided
//! on, when nothing of it has changed since: see [`FactsCache`]), the
//! token is minted, and then the launch is recorded only if
//! everything the decision rested on still holds, checked in the
//! transaction that appends the audit record (see
//! `store::launches::record_launches`: several launches to one transaction,
//! and one check statement, when they arrive together). Only after that commit does the
//! caller get the URL with the token: no token leaves without its record.
//! Signing happens before the write so that the RSA signature does not sit
//! inside SQLite's single write lock.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::access::{self, Refusal, SiteStanding};
use crate::domain::people::Person;
use crate::domain::sites::{check_deep_link, login_url, Signing, Site};
use crate::domain::tokens::{launch_claims, launch_payload, new_jti, sign_hs256, LaunchFacts};
use crate::service::Context;
use crate::store;
use crate::store::launches::{LaunchRecord, Pending};

pub use crate::domain::audit::Origin;

// Reads with no rule of their own are the store's queries, named here so
// that the pages, handlers and command line never reach the store.
pub use crate::store::launches::{latest, Facts, LiveSession, SessionFacts};

/// What launches were last decided on, by session and site, so that the
/// next click on the same site from the same session reads nothing before
/// its record. Kept facts are used only while the launch facts' version
/// they were read at is the one the launch recorder last saw, and the
/// record's transaction checks that version again along with the session
/// (live, the person's), the site's version, the grant and the key: a
/// launch on facts that changed meanwhile, here or on another instance,
/// is not recorded, and is decided again on what the database says.
#[derive(Debug, Default)]
pub struct FactsCache {
    by_session: Mutex<HashMap<String, HashMap<String, SessionFacts>>>,
}

/// Sessions kept; past this the memory starts over.
const CACHE_SESSIONS: usize = 5_000;
/// Sites kept per session; past this that session's start over.
const CACHE_SITES: usize = 256;

impl FactsCache {
    fn get(
        &self,
        session: &LiveSession,
        site_id: &str,
        version: Option<i64>,
    ) -> Option<SessionFacts> {
        let version = version?;
        let map = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&session.key)?
            .get(site_id)
            .filter(|f| f.version == version && f.expires_at > session.now)
            .cloned()
    }

    fn put(&self, session: &LiveSession, site_id: &str, facts: &SessionFacts) {
        let mut map = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_SESSIONS && !map.contains_key(&session.key) {
            map.clear();
        }
        let sites = map.entry(session.key.clone()).or_default();
        if sites.len() >= CACHE_SITES {
            sites.clear();
        }
        sites.insert(site_id.to_string(), facts.clone());
    }

    fn forget(&self, session: &LiveSession, site_id: &str) {
        let mut map = self.by_session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sites) = map.get_mut(&session.key) {
            sites.remove(site_id);
        }
    }
}

/// A live session's stored record and the launch's facts: kept from an
/// earlier launch on the same site while nothing they rest on has changed
/// (see [`FactsCache`]), else read in one statement (see
/// `store::launches::facts_in_session`). `None` when the session is not
/// live. `now` is the session store's clock.
pub async fn session_facts(
    st: &Context,
    session: &tower_sessions::session::Id,
    site_id: &str,
    now: i64,
) -> Result<Option<(LiveSession, SessionFacts)>, sqlx::Error> {
    let live = LiveSession::of(session, now);
    if let Some(kept) = st
        .launch_facts
        .get(&live, site_id, st.launches.facts_version())
    {
        return Ok(Some((live, kept)));
    }
    let read = read_facts(st, &live, site_id).await?;
    Ok(read.map(|r| (live, r)))
}

/// Read a session's launch facts and keep them for its next launch.
async fn read_facts(
    st: &Context,
    live: &LiveSession,
    site_id: &str,
) -> Result<Option<SessionFacts>, sqlx::Error> {
    let read = store::launches::facts_in_session(&st.db, &live.key, site_id, live.now).await?;
    if let Some(r) = &read {
        st.launch_facts.put(live, site_id, r);
    }
    Ok(read)
}

#[derive(Debug)]
pub enum Launched {
    /// Send the browser here (the site's login URL, token included).
    Go {
        location: String,
        jti: String,
    },
    Refused(Refusal),
    /// The person was removed or disabled: their session is over.
    SignedOut,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no signing key is active")]
    NoSigner,
    #[error("the site's secret cannot be opened: {0}")]
    Secret(String),
    #[error("signing failed: {0}")]
    Sign(#[from] crate::domain::tokens::SignError),
    #[error("the site or its grants kept changing during the launch")]
    KeptChanging,
}

/// The site's secret is sealed for that site alone.
pub fn secret_aad(site_id: &str) -> String {
    format!("site-secret:{site_id}")
}

/// Launch `site_id` for the signed-in person `person_id` of the session
/// `session`, with an optional deep link. The person, the site and the
/// grants were read (or kept) by the caller with the session (`known`:
/// see [`session_facts`]), or are read here; a second decision reads them
/// again, and finds the session over if it is.
pub async fn launch_site(
    st: &Context,
    person_id: &str,
    site_id: &str,
    deep_link: &str,
    from: &Origin,
    session: &LiveSession,
    mut known: Option<SessionFacts>,
) -> Result<Launched, LaunchError> {
    // Decisions whose record did not hold: after three, give up.
    let mut attempt = 0;
    loop {
        let now = st.clock.now();
        // Facts the caller brought may have been kept from an earlier
        // launch: good enough to launch on (the record's transaction checks
        // them), not to refuse on. A refusal is decided on facts read here.
        let (read, fresh) = match known.take() {
            Some(f) => (f, false),
            None => match read_facts(st, session, site_id).await? {
                Some(f) => (f, true),
                None => return Ok(Launched::SignedOut),
            },
        };
        let facts_version = read.version;
        let facts = read.facts;
        // Removed or disabled before this click: the session is over. One
        // disabled after the first decision is refused (and recorded)
        // rather than retried. A session that names someone else now is over too.
        let person = match facts.person {
            Some(p) if p.id == person_id && (attempt > 0 || !p.disabled) => p,
            _ if !fresh => {
                st.launch_facts.forget(session, site_id);
                continue;
            }
            _ => return Ok(Launched::SignedOut),
        };
        let person = &person;
        let decided = match (facts.site, check_deep_link(deep_link)) {
            (None, _) => Err((None, Refusal::UnknownSite)),
            (Some(s), Err(_)) => Err((Some(s), Refusal::BadDeepLink)),
            (Some(site), Ok(deep)) => {
                let standing = SiteStanding {
                    enabled: site.enabled,
                    allowed_roles: &site.roles,
                };
                match access::decide(!person.disabled, standing, &facts.grants, now) {
                    Ok(entry) => Ok((site, deep, entry)),
                    Err(r) => Err((Some(site), r)),
                }
            }
        };
        let (site, deep, entry) = match decided {
            Ok(d) => d,
            Err(_) if !fresh => {
                st.launch_facts.forget(session, site_id);
                continue;
            }
            Err((site, why)) => {
                return refuse(
                    st,
                    person,
                    site.as_ref(),
                    site_id,
                    deep_link,
                    why,
                    from,
                    now,
                )
                .await
            }
        };

        let jti = new_jti(&mut rand::rngs::OsRng);
        let facts = LaunchFacts {
            issuer: &st.config.public_url,
            audience: &site.url,
            subject: &person.id,
            email: &person.email,
            name: person.name.as_deref(),
            given_name: person.given_name.as_deref(),
            family_name: person.family_name.as_deref(),
            role: &entry.role,
            now,
            lifetime: site.token_lifetime,
            jti: &jti,
        };
        let claims = launch_claims(site.profile, &site.username_claim, &facts);
        let payload = launch_payload(site.profile, &claims)?;
        let (token, kid) = match site.signing {
            Signing::Rs256 => {
                let signer = st.keys.signer().ok_or(LaunchError::NoSigner)?;
                (
                    signer.sign_launch(&payload)?,
                    Some(signer.kid().to_string()),
                )
            }
            Signing::Hs256 => {
                let sealed = store::sites::sealed_secret(&st.db, &site.id)
                    .await?
                    .ok_or_else(|| LaunchError::Secret("the site has no secret".into()))?;
                let secret = st
                    .master_keys
                    .open(&sealed, &secret_aad(&site.id))
                    .map_err(|e| LaunchError::Secret(e.to_string()))?;
                (sign_hs256(&secret, &payload)?, None)
            }
        };
        let record = LaunchRecord {
            at: now,
            outcome: "launched".into(),
            reason: None,
            person_id: person.id.clone(),
            email: person.email.clone(),
            site_id: site.id.clone(),
            site_url: site.url.clone(),
            client: site.client.clone(),
            role: Some(entry.role.clone()),
            profile: Some(site.profile.as_str().into()),
            alg: Some(site.signing.as_str().into()),
            jti: Some(jti.clone()),
            kid: kid.clone(),
            deep_link: deep.clone(),
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            request_id: from.request_id.clone(),
        };
        let pending = Pending {
            record,
            site_version: site.version,
            grant_id: entry.grant_id.clone(),
            kid: kid.clone(),
            facts_version: Some(facts_version),
            session: Some(session.clone()),
        };
        if st.launches.record(pending).await? {
            tracing::info!(%jti, site = %site.url, role = %entry.role, kid = kid.as_deref().unwrap_or("-"), "launch");
            return Ok(Launched::Go {
                location: login_url(&site.url, &site.login_template, &token, deep.as_deref()),
                jti,
            });
        }
        // Something changed between the decision and the record (or the
        // session ended): the token is dropped unsent. Forget the facts,
        // pick up a new signing key if that was it, and decide again.
        st.launch_facts.forget(session, site_id);
        tracing::info!(site = %site.url, "launch decided on stale facts; deciding again");
        attempt += 1;
        if attempt == 3 {
            return Err(LaunchError::KeptChanging);
        }
        if let Err(e) = st.keys.refresh(st.clock.now()).await {
            tracing::warn!(error = %e, "cannot refresh the key ring");
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn refuse(
    st: &Context,
    person: &Person,
    site: Option<&Site>,
    site_id: &str,
    deep_link: &str,
    why: Refusal,
    from: &Origin,
    now: i64,
) -> Result<Launched, LaunchError> {
    let record = LaunchRecord {
        at: now,
        outcome: "refused".into(),
        reason: Some(why.code().into()),
        person_id: person.id.clone(),
        email: person.email.clone(),
        site_id: site_id.chars().take(100).collect(),
        site_url: site.map(|s| s.url.clone()).unwrap_or_default(),
        client: site.map(|s| s.client.clone()).unwrap_or_default(),
        role: None,
        profile: site.map(|s| s.profile.as_str().into()),
        alg: site.map(|s| s.signing.as_str().into()),
        jti: None,
        kid: None,
        deep_link: Some(deep_link.chars().take(2000).collect()).filter(|d: &String| !d.is_empty()),
        ip: from.ip.clone(),
        user_agent: from.user_agent.clone(),
        request_id: from.request_id.clone(),
    };
    store::launches::record_refusal(&st.db, &record).await?;
    tracing::info!(code = why.code(), site = %record.site_url, "launch refused");
    Ok(Launched::Refused(why))
}

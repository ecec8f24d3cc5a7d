//! The launch: from a click on a site to the site's login URL with a token.
//!
//! The decision is made on what the database says now (person, site,
//! grants), the token is minted, and then the launch is recorded only if
//! everything the decision rested on still holds, checked in the
//! transaction that appends the audit record (see
//! `store::launches::record_launches`: several launches to one transaction,
//! and one check statement, when they arrive together). Only after that commit does the
//! caller get the URL with the token: no token leaves without its record.
//! Signing happens before the write so that the RSA signature does not sit
//! inside SQLite's single write lock.

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
pub use crate::store::launches::{latest, Facts};

/// A live session's stored record and the launch's facts, read in one
/// statement (see `store::launches::facts_in_session`).
pub async fn facts_in_session(
    db: &crate::store::Db,
    session: &tower_sessions::session::Id,
    site_id: &str,
    now: i64,
) -> Result<Option<(String, Facts)>, sqlx::Error> {
    let key = store::sessions::stored_id(session);
    store::launches::facts_in_session(db, &key, site_id, now).await
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

/// Launch `site_id` for the signed-in person `person_id`, with an optional
/// deep link. The person, the site and the grants are read together, or
/// were read by the caller (`known`, with the session: see
/// `store::launches::facts_in_session`); a second decision reads them again.
pub async fn launch_site(
    st: &Context,
    person_id: &str,
    site_id: &str,
    deep_link: &str,
    from: &Origin,
    mut known: Option<Facts>,
) -> Result<Launched, LaunchError> {
    for attempt in 0..3 {
        let now = st.clock.now();
        let facts = match known.take() {
            Some(f) => f,
            None => store::launches::facts(&st.db, person_id, site_id).await?,
        };
        // Removed or disabled before this click: the session is over. One
        // disabled after the first decision is refused (and recorded)
        // rather than retried.
        let person = match facts.person {
            Some(p) if attempt > 0 || !p.disabled => p,
            _ => return Ok(Launched::SignedOut),
        };
        let person = &person;
        let active = !person.disabled;
        let deep = check_deep_link(deep_link);
        let (site, deep) = match (facts.site, deep) {
            (None, _) => {
                return refuse(
                    st,
                    person,
                    None,
                    site_id,
                    deep_link,
                    Refusal::UnknownSite,
                    from,
                    now,
                )
                .await
            }
            (Some(s), Err(_)) => {
                return refuse(
                    st,
                    person,
                    Some(&s),
                    site_id,
                    deep_link,
                    Refusal::BadDeepLink,
                    from,
                    now,
                )
                .await
            }
            (Some(s), Ok(d)) => (s, d),
        };
        let grants = facts.grants;
        let standing = SiteStanding {
            enabled: site.enabled,
            allowed_roles: &site.roles,
        };
        let entry = match access::decide(active, standing, &grants, now) {
            Ok(e) => e,
            Err(r) => {
                return refuse(st, person, Some(&site), site_id, deep_link, r, from, now).await
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
        };
        if st.launches.record(pending).await? {
            tracing::info!(%jti, site = %site.url, role = %entry.role, kid = kid.as_deref().unwrap_or("-"), "launch");
            return Ok(Launched::Go {
                location: login_url(&site.url, &site.login_template, &token, deep.as_deref()),
                jti,
            });
        }
        // Something changed between the decision and the record: the token
        // is dropped unsent. Pick up a new signing key if that was it, and decide again.
        tracing::info!(site = %site.url, "launch decided on stale facts; deciding again");
        if let Err(e) = st.keys.refresh(st.clock.now()).await {
            tracing::warn!(error = %e, "cannot refresh the key ring");
        }
    }
    Err(LaunchError::KeptChanging)
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

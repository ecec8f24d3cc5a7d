//! The live key ring: the domain's ring kept in step with the database, an
//! in-memory snapshot (JWKS bytes, ETag, the parsed signer) that requests
//! read without touching the database, and the maintenance that rotates on
//! schedule. Every instance polls the ring's version and reloads when it
//! changes, so all of them publish a change within `refresh_secs`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;

use serde_json::json;

use crate::domain::audit::{kind, Actor, Event};
use crate::domain::keys::{self, Integrity, Jwks, KeyEvent, KeyRecord, NewKey, Ring, RingError};
use crate::domain::secrets::{MasterKeys, OpenError};
use crate::domain::tokens::Signer;
use crate::store::keys::{self as store, SealedKey, Sealing, StoredKey};
use crate::store::Db;

pub use crate::domain::keys::KeySettings;

/// What requests read: one consistent view of the ring.
pub struct Snapshot {
    pub version: i64,
    /// The rows this instance trusts (see [`keys::check_row`]): only they
    /// are published or sign.
    pub ring: Ring,
    pub jwks: Bytes,
    pub etag: String,
    pub signer: Option<Arc<Signer>>,
    /// Rows stored but not trusted here, and why.
    pub untrusted: Vec<Untrusted>,
    /// Why this instance cannot sign, when it cannot.
    pub signer_problem: Option<String>,
}

/// A stored key row this instance does not trust.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Untrusted {
    pub kid: String,
    pub state: String,
    pub why: String,
    /// Written without the master key or altered (else: this instance
    /// lacks the master key it names, and cannot tell).
    pub forged: bool,
}

/// The ring as stored, split by what this instance can trust.
#[derive(Debug, Clone)]
pub struct Checked {
    pub version: i64,
    pub ring: Ring,
    pub untrusted: Vec<Untrusted>,
}

fn verdict(masters: &MasterKeys, row: &StoredKey) -> Integrity {
    keys::check_row(
        masters,
        &row.record,
        row.mac.as_deref(),
        row.sealed.as_deref(),
    )
}

/// Split stored rows into the trusted ring and the rest.
/// `bound`: the rows from before MACs were bound (else a row without a MAC
/// is not forged, only not bound yet: the next start of the service binds it).
fn split(masters: &MasterKeys, rows: &[StoredKey], bound: bool) -> (Ring, Vec<Untrusted>) {
    let mut trusted = Vec::new();
    let mut untrusted = Vec::new();
    for row in rows {
        let verdict = match verdict(masters, row) {
            Integrity::Forged(_) if !bound && row.mac.is_none() => Integrity::Unchecked(
                "not bound to the master key yet: the next start of the service binds it".into(),
            ),
            v => v,
        };
        let (why, forged) = match verdict {
            Integrity::Sound => {
                trusted.push(row.record.clone());
                continue;
            }
            Integrity::Forged(why) => (why, true),
            Integrity::Unchecked(why) => (why, false),
        };
        untrusted.push(Untrusted {
            kid: row.record.kid.clone(),
            state: row.record.state.as_str().to_string(),
            why,
            forged,
        });
    }
    (Ring::new(trusted), untrusted)
}

/// The ring as stored, checked with `masters` (for `keys list`, the console
/// and `audit verify`).
pub async fn load(db: &Db, masters: &MasterKeys) -> Result<Checked, sqlx::Error> {
    let (version, rows, bound) = store::load(db).await?;
    let (ring, untrusted) = split(masters, &rows, bound);
    Ok(Checked {
        version,
        ring,
        untrusted,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Ring(#[from] RingError),
    #[error("the private key of {kid} cannot be opened: {error}")]
    Open { kid: String, error: OpenError },
    #[error("the private key of {kid} is missing")]
    MissingPrivateKey { kid: String },
    #[error("this instance cannot sign: {0}")]
    NoSigner(String),
    #[error("cannot generate a key: {0}")]
    Generate(String),
    #[error("the key {kid} does not load: {error}")]
    BadKey { kid: String, error: String },
    #[error("this instance cannot check key {kid} ({why}): change the ring from an instance that has every master key")]
    Unchecked { kid: String, why: String },
}

pub struct KeyRing {
    db: Db,
    masters: MasterKeys,
    settings: KeySettings,
    current: RwLock<Arc<Snapshot>>,
    /// The held rotation last recorded (the next key, and whether it was
    /// waiting or went on): recorded once each.
    held_noted: std::sync::Mutex<Option<(String, bool)>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("version", &self.snapshot().version)
            .finish_non_exhaustive()
    }
}

fn aad(kid: &str) -> String {
    keys::private_key_aad(kid)
}

impl KeyRing {
    /// Open the ring: bring it up to date at `now` (the very first start
    /// creates the first key) and load the signer.
    pub async fn open(
        db: Db,
        masters: MasterKeys,
        settings: KeySettings,
        now: i64,
    ) -> Result<KeyRing, KeyRingError> {
        let empty = Arc::new(Snapshot {
            version: -1,
            ring: Ring::default(),
            jwks: Bytes::new(),
            etag: String::new(),
            signer: None,
            untrusted: Vec::new(),
            signer_problem: None,
        });
        let ring = KeyRing {
            db,
            masters,
            settings,
            current: RwLock::new(empty),
            held_noted: std::sync::Mutex::new(None),
        };
        ring.bind_legacy_rows(now).await?;
        ring.reload(now).await?;
        ring.maintain(now).await?;
        if let Some(problem) = ring.snapshot().signer_problem.clone() {
            return Err(KeyRingError::NoSigner(problem));
        }
        Ok(ring)
    }

    pub fn settings(&self) -> &KeySettings {
        &self.settings
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key that signs right now.
    pub fn signer(&self) -> Option<Arc<Signer>> {
        self.snapshot().signer.clone()
    }

    /// Reload if the ring changed in the database. Returns whether it did.
    pub async fn refresh(&self, now: i64) -> Result<bool, KeyRingError> {
        if store::version(&self.db).await? == self.snapshot().version {
            return Ok(false);
        }
        self.reload(now).await?;
        Ok(true)
    }

    /// Bind the rows stored before key rows carried MACs (once per
    /// database): a row whose kid is its thumbprint and whose private half,
    /// where kept, opens and matches gets its MAC; any other stays unbound
    /// and is never trusted.
    async fn bind_legacy_rows(&self, now: i64) -> Result<(), KeyRingError> {
        let masters = &self.masters;
        let bound = store::bind_legacy_rows(
            &self.db,
            now,
            |row| match keys::check_material(masters, &row.record, row.sealed.as_deref()) {
                Integrity::Sound => Some(keys::row_mac(masters, &row.record)),
                _ => None,
            },
            |bound, refused| {
                Actor::system()
                    .did(now, kind::KEY_ROWS_BOUND)
                    .detail(json!({ "bound": bound, "refused": refused }))
            },
        )
        .await?;
        if let Some(bound) = bound.filter(|b| !b.is_empty()) {
            tracing::info!(
                count = bound.len(),
                "stored signing keys bound to the master key"
            );
        }
        Ok(())
    }

    /// Read the ring again and publish what this instance can trust. A row
    /// it cannot trust is left out (and a forged one recorded); an active
    /// key it cannot open leaves it without a signer, which launches and
    /// `/readyz` report, but the JWKS is still the trusted rows'.
    async fn reload(&self, now: i64) -> Result<(), KeyRingError> {
        let (version, rows, bound) = store::load(&self.db).await?;
        let (ring, untrusted) = split(&self.masters, &rows, bound);
        let old = self.snapshot();
        let (signer, signer_problem) = match ring.active() {
            None => (
                None,
                Some(match untrusted.iter().find(|u| u.state == "active") {
                    Some(u) => format!("the active key {} is not trusted here: {}", u.kid, u.why),
                    None => "no active signing key".to_string(),
                }),
            ),
            Some(a) => match old.signer.as_ref().filter(|s| s.kid() == a.kid) {
                Some(same) => (Some(same.clone()), None),
                None => {
                    let sealed = rows
                        .iter()
                        .find(|r| r.record.kid == a.kid)
                        .and_then(|r| r.sealed.as_deref());
                    match self.load_signer(&a.kid, sealed) {
                        Ok(s) => (Some(Arc::new(s)), None),
                        Err(e) => (None, Some(e.to_string())),
                    }
                }
            },
        };
        if let Some(problem) = &signer_problem {
            if old.signer_problem.as_ref() != Some(problem) {
                tracing::error!(problem = %problem, "this instance cannot sign: launches are refused");
            }
        }
        self.note_untrusted(&old.untrusted, &untrusted, now).await;
        let (bytes, etag) = Jwks::of(&ring).to_bytes_and_etag();
        let snap = Arc::new(Snapshot {
            version,
            ring,
            jwks: Bytes::from(bytes),
            etag,
            signer,
            untrusted,
            signer_problem,
        });
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        Ok(())
    }

    /// Log rows newly untrusted, and record newly forged ones in the audit
    /// log (best effort: they are left out of the JWKS either way).
    async fn note_untrusted(&self, before: &[Untrusted], now_seen: &[Untrusted], now: i64) {
        let mut events = Vec::new();
        for u in now_seen.iter().filter(|u| !before.contains(u)) {
            if u.forged {
                tracing::error!(kid = %u.kid, state = %u.state, why = %u.why, "a stored signing key failed its integrity check: not published");
                events.push(
                    Event::new(
                        now,
                        kind::KEY_REJECTED,
                        crate::domain::audit::outcome::REFUSED,
                        crate::domain::audit::SYSTEM,
                        &Default::default(),
                    )
                    .reason("integrity_check_failed")
                    .detail(json!({ "kid": u.kid, "state": u.state, "why": u.why })),
                );
            } else {
                tracing::warn!(kid = %u.kid, state = %u.state, why = %u.why, "a stored signing key cannot be checked here: not published by this instance");
            }
        }
        if !events.is_empty() {
            if let Err(e) = crate::service::audit::record(&self.db, &events).await {
                tracing::error!(error = %e, "cannot record the rejected signing keys");
            }
        }
    }

    fn load_signer(&self, kid: &str, sealed: Option<&str>) -> Result<Signer, KeyRingError> {
        let sealed = sealed.ok_or_else(|| KeyRingError::MissingPrivateKey {
            kid: kid.to_string(),
        })?;
        let der = self
            .masters
            .open(sealed, &aad(kid))
            .map_err(|error| KeyRingError::Open {
                kid: kid.to_string(),
                error,
            })?;
        Signer::from_pkcs1_der(kid, &der).map_err(|e| KeyRingError::BadKey {
            kid: kid.to_string(),
            error: e.to_string(),
        })
    }

    /// A fresh key, generated off the async runtime, and its sealed private half.
    async fn fresh_key(&self) -> Result<(NewKey, SealedKey), KeyRingError> {
        let bits = self.settings.bits;
        // The first step of a rotation (the tests that kill one wait for it).
        tracing::debug!(bits, "generating a signing key");
        let key = tokio::task::spawn_blocking(move || keys::generate(bits, &mut rand::rngs::OsRng))
            .await
            .map_err(|e| KeyRingError::Generate(e.to_string()))?
            .map_err(|e| KeyRingError::Generate(e.to_string()))?;
        let sealed = SealedKey {
            kid: key.kid.clone(),
            sealed: self
                .masters
                .seal(&key.private_der, &aad(&key.kid), &mut rand::rngs::OsRng),
        };
        Ok((key, sealed))
    }

    /// Apply a change under the ring lock, then reload and log what happened.
    async fn apply(
        &self,
        fresh: Option<(NewKey, SealedKey)>,
        by: &Actor,
        now: i64,
        decide: impl FnOnce(&mut Ring, Option<NewKey>) -> Result<Vec<KeyEvent>, RingError>,
    ) -> Result<Vec<KeyEvent>, KeyRingError> {
        let (key, sealed) = match fresh {
            Some((k, s)) => (Some(k), Some(s)),
            None => (None, None),
        };
        // A row this instance cannot check may be the real signer: deciding
        // without it could make a second one.
        if let Some(u) = self.snapshot().untrusted.iter().find(|u| !u.forged) {
            return Err(KeyRingError::Unchecked {
                kid: u.kid.clone(),
                why: u.why.clone(),
            });
        }
        tracing::debug!("changing the key ring");
        let masters = &self.masters;
        let verdict = |row: &StoredKey| verdict(masters, row);
        let mac = |k: &KeyRecord| keys::row_mac(masters, k);
        let record_forged = |k: &KeyRecord, why: &str| {
            Actor::system().did(now, kind::KEY_REVOKED).detail(
                json!({ "kid": k.kid, "reason": k.revoked_reason, "forged": true, "why": why }),
            )
        };
        let sealing = Sealing {
            verdict: &verdict,
            mac: &mac,
            now,
            record_forged: &record_forged,
        };
        let events = store::change(
            &self.db,
            &sealing,
            sealed.as_ref(),
            |ring| decide(ring, key).map_err(KeyRingError::from),
            |events: &Vec<KeyEvent>| events.iter().map(|e| audit_event(by, now, e)).collect(),
        )
        .await?;
        // Reload even when this change found nothing to do: another
        // instance may have done it, and the caller reports the ring as it is.
        self.reload(now).await?;
        for e in &events {
            log_event(e);
        }
        Ok(events)
    }

    /// The scheduled timeline at `now`: publish, activate, retire, remove.
    /// Cheap when nothing is due (decided on the in-memory snapshot).
    pub async fn maintain(&self, now: i64) -> Result<Vec<KeyEvent>, KeyRingError> {
        let policy = self.settings.policy;
        let snap = self.snapshot();
        // Rows this instance cannot check leave the schedule to the
        // instances that can (see `apply`).
        if snap.untrusted.iter().any(|u| !u.forged) {
            return Ok(Vec::new());
        }
        let hold = self.hold_rotation(&snap.ring, now).await;
        let mut trial = snap.ring.clone();
        let need = trial.needs(now, &policy);
        let due = !trial.advance_holding(now, &policy, None, hold).is_empty();
        if !due && need == keys::Need::Nothing {
            return Ok(Vec::new());
        }
        // Generate outside the lock: it takes a while, and another instance
        // may meanwhile have done the work (then this key is simply dropped).
        let fresh = if need == keys::Need::FreshKey {
            Some(self.fresh_key().await?)
        } else {
            None
        };
        self.apply(fresh, &Actor::system(), now, |ring, key| {
            Ok(ring.advance_holding(now, &policy, key, hold))
        })
        .await
    }

    /// Whether a due rotation waits: connector sites that answered recently
    /// and do not hold the next key yet hold it back, for up to
    /// [`fleet::ROTATION_WAIT_MAX`] past its time. Recorded when it starts
    /// to wait and when it goes on without them (once per key and
    /// instance). A fleet that cannot be read holds nothing back.
    async fn hold_rotation(&self, ring: &keys::Ring, now: i64) -> bool {
        use crate::domain::fleet::{self, Rotation};
        let (Some(_), Some(next)) = (ring.active(), ring.next()) else {
            return false;
        };
        let Some(at) = next.activates_at.filter(|t| *t <= now) else {
            return false;
        };
        let rows = match crate::store::fleet::rows(&self.db).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fleet before a rotation");
                return false;
            }
        };
        let lacking: Vec<String> = rows
            .into_iter()
            .filter(|r| r.answered_at.is_some_and(|t| now - t <= fleet::RECENT))
            .filter(|r| {
                !r.keys
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .any(|k| k == next.kid)
            })
            .map(|r| r.url)
            .collect();
        let decision = fleet::rotation(now, at, lacking.len());
        if decision != Rotation::Go {
            let waiting = decision == Rotation::Wait;
            let note = (next.kid.clone(), waiting);
            let first = {
                let mut noted = self.held_noted.lock().unwrap_or_else(|p| p.into_inner());
                let first = noted.as_ref() != Some(&note);
                *noted = Some(note);
                first
            };
            if first {
                let event = Actor::system()
                    .did(now, kind::KEY_ACTIVATION_HELD)
                    .detail(json!({
                        "kid": next.kid,
                        "due_at": at,
                        "waiting": waiting,
                        "sites_lacking": lacking.len(),
                        "sites": lacking.iter().take(20).collect::<Vec<_>>(),
                    }));
                if let Err(e) = crate::store::audit::record(&self.db, &[event]).await {
                    tracing::warn!(error = %e, "cannot record a held rotation");
                }
                if waiting {
                    tracing::warn!(kid = %next.kid, sites = lacking.len(), "the rotation waits for sites to fetch the next key");
                } else {
                    tracing::warn!(kid = %next.kid, sites = lacking.len(), "the rotation goes on although sites lack the next key");
                }
            }
        }
        decision == Rotation::Wait
    }

    /// Rotate ahead of schedule, safely: returns when the new key will sign.
    pub async fn rotate_soon(
        &self,
        by: &Actor,
        now: i64,
    ) -> Result<(i64, Vec<KeyEvent>), KeyRingError> {
        let policy = self.settings.policy;
        let fresh = self.fresh_key().await?;
        let mut when = now;
        let events = self
            .apply(Some(fresh), by, now, |ring, key| {
                let (at, ev) = ring.rotate_soon(now, &policy, key)?;
                when = at;
                Ok(ev)
            })
            .await?;
        Ok((when, events))
    }

    /// Emergency rotation: a new signer at once.
    pub async fn rotate_now(&self, by: &Actor, now: i64) -> Result<Vec<KeyEvent>, KeyRingError> {
        let policy = self.settings.policy;
        let fresh = self.fresh_key().await?;
        self.apply(Some(fresh), by, now, |ring, key| {
            ring.rotate_now(now, &policy, key)
        })
        .await
    }

    /// Take a key out of the JWKS at once; a new signer takes over if needed.
    pub async fn revoke(
        &self,
        kid: &str,
        reason: &str,
        by: &Actor,
        now: i64,
    ) -> Result<Vec<KeyEvent>, KeyRingError> {
        let policy = self.settings.policy;
        let fresh = self.fresh_key().await?;
        self.apply(Some(fresh), by, now, |ring, key| {
            ring.revoke(kid, reason, now, &policy, key)
        })
        .await
    }

    /// Reseal every kept private key under the current master key.
    pub async fn rewrap(&self, by: &Actor, now: i64) -> Result<u64, KeyRingError> {
        let masters = &self.masters;
        let master = masters.current().id();
        let record = |n: u64| {
            by.did(now, kind::KEY_REWRAPPED)
                .detail(json!({ "resealed": n, "master_key": master }))
        };
        let n = store::reseal(
            &self.db,
            |row| {
                let kid = &row.record.kid;
                match verdict(masters, row) {
                    Integrity::Sound => {}
                    // Never bound again: it stays untrusted.
                    Integrity::Forged(_) => return Ok(None),
                    Integrity::Unchecked(why) => {
                        return Err(KeyRingError::Unchecked {
                            kid: kid.clone(),
                            why,
                        })
                    }
                }
                let sealed = match row.sealed.as_deref() {
                    Some(s) if !masters.is_current(s) => {
                        let plain =
                            masters
                                .open(s, &aad(kid))
                                .map_err(|error| KeyRingError::Open {
                                    kid: kid.to_string(),
                                    error,
                                })?;
                        Some(masters.seal(&plain, &aad(kid), &mut rand::rngs::OsRng))
                    }
                    other => other.map(str::to_string),
                };
                let mac = keys::row_mac(masters, &row.record);
                if sealed == row.sealed && row.mac.as_deref() == Some(mac.as_str()) {
                    return Ok(None);
                }
                Ok::<_, KeyRingError>(Some((sealed, mac)))
            },
            record,
        )
        .await?;
        self.reload(now).await?;
        tracing::info!(
            count = n,
            master_key = self.masters.current().id(),
            "private keys resealed under the current master key"
        );
        Ok(n)
    }
}

/// The audit record of a change to the ring.
fn audit_event(by: &Actor, now: i64, e: &KeyEvent) -> Event {
    let (k, kid, detail) = match e {
        KeyEvent::Created {
            kid,
            state,
            activates_at,
        } => (
            kind::KEY_CREATED,
            kid,
            json!({ "state": state.as_str(), "activates_at": activates_at }),
        ),
        KeyEvent::Activated { kid } => (kind::KEY_ACTIVATED, kid, json!({})),
        KeyEvent::Retired { kid, remove_at } => {
            (kind::KEY_RETIRED, kid, json!({ "remove_at": remove_at }))
        }
        KeyEvent::Removed { kid } => (kind::KEY_REMOVED, kid, json!({})),
        KeyEvent::Revoked { kid, reason } => (kind::KEY_REVOKED, kid, json!({ "reason": reason })),
    };
    let mut detail = detail;
    detail["kid"] = json!(kid);
    by.did(now, k).detail(detail)
}

fn log_event(e: &KeyEvent) {
    match e {
        KeyEvent::Created {
            kid,
            state,
            activates_at,
        } => tracing::info!(
            kid,
            state = state.as_str(),
            activates_at,
            "signing key created"
        ),
        KeyEvent::Activated { kid } => tracing::info!(kid, "signing key activated"),
        KeyEvent::Retired { kid, remove_at } => {
            tracing::info!(kid, remove_at, "signing key retired")
        }
        KeyEvent::Removed { kid } => tracing::info!(kid, "signing key removed from the JWKS"),
        KeyEvent::Revoked { kid, reason } => tracing::warn!(kid, reason, "signing key revoked"),
    }
}

/// Keep this instance's ring current and run the schedule, forever.
pub fn spawn_maintenance(keys: Arc<KeyRing>, clock: Arc<dyn crate::service::Clock>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(keys.settings.refresh_secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = keys.refresh(clock.now()).await {
                tracing::warn!(error = %e, "cannot refresh the key ring");
                continue;
            }
            if let Err(e) = keys.maintain(clock.now()).await {
                tracing::warn!(error = %e, "cannot run the key rotation schedule");
            }
        }
    });
}

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
use crate::domain::keys::{self, Jwks, KeyEvent, NewKey, Ring, RingError};
use crate::domain::secrets::{MasterKeys, OpenError};
use crate::domain::tokens::Signer;
use crate::store::keys::{self as store, SealedKey};
use crate::store::Db;

// Reads with no rule of their own are the store's queries, named here so
// that the pages, handlers and command line never reach the store.
pub use crate::domain::keys::KeySettings;
pub use crate::store::keys::load;

/// What requests read: one consistent view of the ring.
pub struct Snapshot {
    pub version: i64,
    pub ring: Ring,
    pub jwks: Bytes,
    pub etag: String,
    pub signer: Option<Arc<Signer>>,
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
    #[error("the key ring has no active key")]
    NoActiveKey,
    #[error("cannot generate a key: {0}")]
    Generate(String),
    #[error("the key {kid} does not load: {error}")]
    BadKey { kid: String, error: String },
}

pub struct KeyRing {
    db: Db,
    masters: MasterKeys,
    settings: KeySettings,
    current: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("version", &self.snapshot().version)
            .finish_non_exhaustive()
    }
}

fn aad(kid: &str) -> String {
    format!("signing-key:{kid}")
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
        });
        let ring = KeyRing {
            db,
            masters,
            settings,
            current: RwLock::new(empty),
        };
        ring.reload().await?;
        ring.maintain(now).await?;
        if ring.snapshot().signer.is_none() {
            return Err(KeyRingError::NoActiveKey);
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
    pub async fn refresh(&self) -> Result<bool, KeyRingError> {
        if store::version(&self.db).await? == self.snapshot().version {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    async fn reload(&self) -> Result<(), KeyRingError> {
        let (version, ring) = store::load(&self.db).await?;
        let old = self.snapshot();
        let signer = match ring.active() {
            None => None,
            Some(a) => match old.signer.as_ref().filter(|s| s.kid() == a.kid) {
                Some(same) => Some(same.clone()),
                None => Some(Arc::new(self.load_signer(&a.kid).await?)),
            },
        };
        let (bytes, etag) = Jwks::of(&ring).to_bytes_and_etag();
        let snap = Arc::new(Snapshot {
            version,
            ring,
            jwks: Bytes::from(bytes),
            etag,
            signer,
        });
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        Ok(())
    }

    async fn load_signer(&self, kid: &str) -> Result<Signer, KeyRingError> {
        let sealed = store::sealed_private_key(&self.db, kid)
            .await?
            .ok_or_else(|| KeyRingError::MissingPrivateKey {
                kid: kid.to_string(),
            })?;
        let der = self
            .masters
            .open(&sealed, &aad(kid))
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
        tracing::debug!("changing the key ring");
        let events = store::change(
            &self.db,
            sealed.as_ref(),
            |ring| decide(ring, key).map_err(KeyRingError::from),
            |events: &Vec<KeyEvent>| events.iter().map(|e| audit_event(by, now, e)).collect(),
        )
        .await?;
        // Reload even when this change found nothing to do: another
        // instance may have done it, and the caller reports the ring as it is.
        self.reload().await?;
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
        let mut trial = snap.ring.clone();
        let need = trial.needs(now, &policy);
        let due = !trial.advance(now, &policy, None).is_empty();
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
            Ok(ring.advance(now, &policy, key))
        })
        .await
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
        let n = store::reseal_private_keys(
            &self.db,
            |kid, sealed| {
                if masters.is_current(sealed) {
                    return Ok(None);
                }
                let plain =
                    masters
                        .open(sealed, &aad(kid))
                        .map_err(|error| KeyRingError::Open {
                            kid: kid.to_string(),
                            error,
                        })?;
                Ok::<_, KeyRingError>(Some(masters.seal(
                    &plain,
                    &aad(kid),
                    &mut rand::rngs::OsRng,
                )))
            },
            record,
        )
        .await?;
        self.reload().await?;
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
            if let Err(e) = keys.refresh().await {
                tracing::warn!(error = %e, "cannot refresh the key ring");
                continue;
            }
            if let Err(e) = keys.maintain(clock.now()).await {
                tracing::warn!(error = %e, "cannot run the key rotation schedule");
            }
        }
    });
}

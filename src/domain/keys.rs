//! The signing key ring: key states, the rotation timeline, and the JWKS
//! document. Time and randomness are passed in; nothing here touches the
//! database or the web.
//!
//! Lifecycle: **next** (published, not signing) → **active** (the one
//! signer) → **retired** (published, no longer signing) → **removed**
//! (unpublished; the public half is kept so old audit checkpoints still
//! verify). **revoked** takes a key out of the JWKS at once.
//!
//! The contract with the sites: a key is published at least `publish_ahead`
//! (≥ one JWKS cache lifetime) before it signs, and stays published at least
//! `keep_after` (≥ longest token lifetime + one cache lifetime) after its
//! last signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::{CryptoRng, RngCore};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::secrets::{MacError, MasterKeys, OpenError};

/// No token lives longer than this (seconds); the contract's ceiling.
pub const MAX_TOKEN_LIFETIME: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Revoked,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
            KeyState::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<KeyState> {
        Some(match s {
            "next" => KeyState::Next,
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            "revoked" => KeyState::Revoked,
            "removed" => KeyState::Removed,
            _ => return None,
        })
    }

    /// In the JWKS: sites may need it to verify a token.
    pub fn is_published(self) -> bool {
        matches!(self, KeyState::Next | KeyState::Active | KeyState::Retired)
    }

    /// Its private half is still needed (kept sealed); otherwise destroyed.
    pub fn keeps_private_key(self) -> bool {
        matches!(self, KeyState::Next | KeyState::Active)
    }
}

/// One key of the ring: its public half and its timeline (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub state: KeyState,
    pub bits: u32,
    /// Modulus and exponent, base64url big-endian as in a JWK.
    pub n: String,
    pub e: String,
    pub created_at: i64,
    /// For a next key: when it is due to start signing.
    pub activates_at: Option<i64>,
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// For a retired key: when it leaves the JWKS.
    pub remove_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// How often keys rotate and how long they are published around their use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// A key signs for this long before the next one takes over.
    pub rotate_every: i64,
    /// A new key is in the JWKS this long before it signs.
    pub publish_ahead: i64,
    /// A retired key stays in the JWKS this long after it stopped signing.
    pub keep_after: i64,
}

impl RotationPolicy {
    /// The contract's defaults: rotate every 30 days, publish 7 days ahead, keep 7 days after.
    pub const DEFAULT: RotationPolicy = RotationPolicy {
        rotate_every: 30 * 86_400,
        publish_ahead: 7 * 86_400,
        keep_after: 7 * 86_400,
    };

    /// Is this policy safe for sites that cache the JWKS for `cache_secs`,
    /// with instances that notice a change within `refresh_secs`?
    pub fn check(&self, cache_secs: i64, refresh_secs: i64) -> Result<(), String> {
        if self.publish_ahead < cache_secs + refresh_secs {
            return Err(format!(
                "keys must be published at least one JWKS cache lifetime ({cache_secs} s) plus the refresh delay ({refresh_secs} s) before they sign"
            ));
        }
        if self.keep_after < MAX_TOKEN_LIFETIME + cache_secs + refresh_secs {
            return Err(format!(
                "retired keys must stay published at least the longest token lifetime ({MAX_TOKEN_LIFETIME} s) plus one JWKS cache lifetime ({cache_secs} s) plus the refresh delay ({refresh_secs} s)"
            ));
        }
        if self.rotate_every <= self.publish_ahead {
            return Err("the rotation period must be longer than the publish-ahead time".into());
        }
        Ok(())
    }
}

/// A freshly generated key: its public record (state to be decided) and
/// its private half as PKCS#1 DER, wiped from memory when dropped.
pub struct NewKey {
    pub kid: String,
    pub bits: u32,
    pub n: String,
    pub e: String,
    pub private_der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewKey({}, {} bits, <private>)", self.kid, self.bits)
    }
}

/// Generate an RSA key of `bits` bits. CPU-heavy: call it off the async runtime.
pub fn generate(bits: u32, rng: &mut (impl RngCore + CryptoRng)) -> anyhow::Result<NewKey> {
    let key = rsa::RsaPrivateKey::new(rng, bits as usize)?;
    let n = B64.encode(key.n().to_bytes_be());
    let e = B64.encode(key.e().to_bytes_be());
    let der = key.to_pkcs1_der()?;
    Ok(NewKey {
        kid: thumbprint(&n, &e),
        bits,
        n,
        e,
        private_der: Zeroizing::new(der.as_bytes().to_vec()),
    })
}

/// RFC 7638 JWK thumbprint of an RSA public key (base64url SHA-256 over the
/// required members in lexicographic order, no whitespace).
pub fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// The place a key's private half is sealed for (its AEAD associated data).
pub fn private_key_aad(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// What a key row's MAC is made for.
pub const ROW_MAC_PURPOSE: &str = "signing-key-row";

/// What a key row's MAC covers: every column but the sealed private half
/// (which carries its own authentication).
pub fn row_mac_input(k: &KeyRecord) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        k.kid,
        k.state.as_str(),
        k.bits,
        k.n,
        k.e,
        k.created_at,
        k.activates_at,
        k.activated_at,
        k.retired_at,
        k.remove_at,
        k.removed_at,
        k.revoked_at,
        k.revoked_reason,
    ]))
    .unwrap_or_default()
}

/// Whether a stored key row can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    Sound,
    /// This instance cannot tell: the row names a master key it does not have.
    Unchecked(String),
    /// Written without the master key, or altered: never published.
    Forged(String),
}

/// Check what a row's own material says, MAC aside: its `kid` is the RFC 7638
/// thumbprint of its public key, and a private half, where one is kept (as it
/// must be for a next or active key), opens here and is that key's pair.
pub fn check_material(masters: &MasterKeys, k: &KeyRecord, sealed: Option<&str>) -> Integrity {
    if thumbprint(&k.n, &k.e) != k.kid {
        return Integrity::Forged("its kid is not the thumbprint of its public key".into());
    }
    let Some(sealed) = sealed else {
        return if k.state.keeps_private_key() {
            Integrity::Forged(format!(
                "a {} key without its private half",
                k.state.as_str()
            ))
        } else {
            Integrity::Sound
        };
    };
    let der = match masters.open(sealed, &private_key_aad(&k.kid)) {
        Ok(der) => der,
        Err(OpenError::UnknownMasterKey(id)) => {
            return Integrity::Unchecked(format!(
                "its private half is sealed under master key {id}, which is not configured (give it in SSO_MASTER_KEYS_OLD)"
            ))
        }
        Err(e) => return Integrity::Forged(format!("its private half does not open: {e}")),
    };
    use rsa::pkcs1::DecodeRsaPrivateKey;
    match rsa::RsaPrivateKey::from_pkcs1_der(&der) {
        Ok(key)
            if B64.encode(key.n().to_bytes_be()) == k.n
                && B64.encode(key.e().to_bytes_be()) == k.e =>
        {
            Integrity::Sound
        }
        _ => Integrity::Forged("its private half is not the pair of its public key".into()),
    }
}

/// Check a stored row: its material ([`check_material`]) and its MAC.
pub fn check_row(
    masters: &MasterKeys,
    k: &KeyRecord,
    mac: Option<&str>,
    sealed: Option<&str>,
) -> Integrity {
    let mac = match masters.check_mac(ROW_MAC_PURPOSE, &row_mac_input(k), mac.unwrap_or("")) {
        Ok(()) => Integrity::Sound,
        Err(MacError::UnknownMasterKey(id)) => Integrity::Unchecked(format!(
            "its MAC was made under master key {id}, which is not configured (give it in SSO_MASTER_KEYS_OLD)"
        )),
        Err(e) => Integrity::Forged(e.to_string()),
    };
    match (check_material(masters, k, sealed), mac) {
        (Integrity::Forged(why), _) | (_, Integrity::Forged(why)) => Integrity::Forged(why),
        (Integrity::Unchecked(why), _) | (_, Integrity::Unchecked(why)) => {
            Integrity::Unchecked(why)
        }
        (Integrity::Sound, Integrity::Sound) => Integrity::Sound,
    }
}

/// A row's MAC under the current master key.
pub fn row_mac(masters: &MasterKeys, k: &KeyRecord) -> String {
    masters.mac(ROW_MAC_PURPOSE, &row_mac_input(k))
}

impl NewKey {
    fn record(&self, state: KeyState, now: i64) -> KeyRecord {
        KeyRecord {
            kid: self.kid.clone(),
            state,
            bits: self.bits,
            n: self.n.clone(),
            e: self.e.clone(),
            created_at: now,
            activates_at: None,
            activated_at: None,
            retired_at: None,
            remove_at: None,
            removed_at: None,
            revoked_at: None,
            revoked_reason: None,
        }
    }
}

/// What the ring needs before it can advance: nothing, or a fresh key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    FreshKey,
}

/// Why an operation on the ring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("no key with id {0}")]
    UnknownKey(String),
    #[error("key {0} is already {1}")]
    AlreadyGone(String, &'static str),
    #[error("give a reason for revoking the key")]
    ReasonRequired,
    #[error("a fresh key is needed for this step")]
    NeedsFreshKey,
}

/// The key ring as loaded: the domain's view of every key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    pub keys: Vec<KeyRecord>,
}

/// One change made to the ring, for the log and (later) the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEvent {
    Created {
        kid: String,
        state: KeyState,
        activates_at: Option<i64>,
    },
    Activated {
        kid: String,
    },
    Retired {
        kid: String,
        remove_at: i64,
    },
    Removed {
        kid: String,
    },
    Revoked {
        kid: String,
        reason: String,
    },
}

impl Ring {
    pub fn new(keys: Vec<KeyRecord>) -> Self {
        Ring { keys }
    }

    pub fn active(&self) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.state == KeyState::Active)
    }

    pub fn next(&self) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.state == KeyState::Next)
    }

    pub fn get(&self, kid: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    fn get_mut(&mut self, kid: &str) -> Option<&mut KeyRecord> {
        self.keys.iter_mut().find(|k| k.kid == kid)
    }

    /// The published keys, the signer first.
    pub fn published(&self) -> impl Iterator<Item = &KeyRecord> {
        let order = |s: KeyState| match s {
            KeyState::Active => 0,
            KeyState::Next => 1,
            _ => 2,
        };
        let mut keys: Vec<&KeyRecord> = self
            .keys
            .iter()
            .filter(|k| k.state.is_published())
            .collect();
        keys.sort_by_key(|k| (order(k.state), std::cmp::Reverse(k.created_at)));
        keys.into_iter()
    }

    /// Does the scheduled timeline at `now` call for a new key?
    pub fn needs(&self, now: i64, policy: &RotationPolicy) -> Need {
        match (self.active(), self.next()) {
            (None, None) => Need::FreshKey,
            (Some(a), None) => {
                let due = a.activated_at.unwrap_or(a.created_at) + policy.rotate_every;
                if now >= due - policy.publish_ahead {
                    Need::FreshKey
                } else {
                    Need::Nothing
                }
            }
            _ => Need::Nothing,
        }
    }

    /// Bring the ring up to date at `now`: remove retired keys whose time is
    /// up, activate a next key that is due (or at once when there is no
    /// active key), and publish a fresh key as next when the schedule calls
    /// for one. Without a fresh key where one is needed, it does what it
    /// can and leaves the rest for the next call.
    pub fn advance(
        &mut self,
        now: i64,
        policy: &RotationPolicy,
        fresh: Option<NewKey>,
    ) -> Vec<KeyEvent> {
        self.advance_holding(now, policy, fresh, false)
    }

    /// [`Ring::advance`], but with `hold_next` a due next key waits (while
    /// sites that should hold it do not yet); everything else goes on.
    pub fn advance_holding(
        &mut self,
        now: i64,
        policy: &RotationPolicy,
        mut fresh: Option<NewKey>,
        hold_next: bool,
    ) -> Vec<KeyEvent> {
        let mut events = Vec::new();
        for k in &mut self.keys {
            if k.state == KeyState::Retired && k.remove_at.is_some_and(|t| t <= now) {
                k.state = KeyState::Removed;
                k.removed_at = Some(now);
                events.push(KeyEvent::Removed { kid: k.kid.clone() });
            }
        }
        // At most two passes: activate a due next key, then schedule its successor.
        for _ in 0..2 {
            let due_next = self.next().and_then(|n| {
                let due = self.active().is_none()
                    || (!hold_next && n.activates_at.is_none_or(|t| t <= now));
                due.then(|| n.kid.clone())
            });
            if let Some(kid) = due_next {
                events.extend(self.activate(&kid, now, policy));
                continue;
            }
            if self.needs(now, policy) == Need::FreshKey {
                let Some(key) = fresh.take() else { break };
                match self.active() {
                    None => {
                        let mut r = key.record(KeyState::Active, now);
                        r.activated_at = Some(now);
                        events.push(KeyEvent::Created {
                            kid: r.kid.clone(),
                            state: KeyState::Active,
                            activates_at: Some(now),
                        });
                        self.keys.push(r);
                    }
                    Some(a) => {
                        let due = a.activated_at.unwrap_or(a.created_at) + policy.rotate_every;
                        let at = due.max(now + policy.publish_ahead);
                        let mut r = key.record(KeyState::Next, now);
                        r.activates_at = Some(at);
                        events.push(KeyEvent::Created {
                            kid: r.kid.clone(),
                            state: KeyState::Next,
                            activates_at: Some(at),
                        });
                        self.keys.push(r);
                    }
                }
                continue;
            }
            break;
        }
        events
    }

    /// The next key becomes the signer; the signer until now is retired.
    fn activate(&mut self, kid: &str, now: i64, policy: &RotationPolicy) -> Vec<KeyEvent> {
        let mut events = Vec::new();
        if let Some(old) = self.keys.iter_mut().find(|k| k.state == KeyState::Active) {
            old.state = KeyState::Retired;
            old.retired_at = Some(now);
            old.remove_at = Some(now + policy.keep_after);
            events.push(KeyEvent::Retired {
                kid: old.kid.clone(),
                remove_at: now + policy.keep_after,
            });
        }
        if let Some(k) = self.get_mut(kid) {
            k.state = KeyState::Active;
            k.activated_at = Some(now);
            events.push(KeyEvent::Activated {
                kid: kid.to_string(),
            });
        }
        events
    }

    /// Rotate ahead of schedule without breaking any site: a next key is
    /// published now (or the existing one brought forward) and signs as
    /// soon as it has been published `publish_ahead`. Returns when it will.
    pub fn rotate_soon(
        &mut self,
        now: i64,
        policy: &RotationPolicy,
        fresh: Option<NewKey>,
    ) -> Result<(i64, Vec<KeyEvent>), RingError> {
        if self.active().is_none() {
            let events = self.advance(now, policy, fresh);
            return Ok((now, events));
        }
        if let Some(next) = self.next().map(|k| k.kid.clone()) {
            let k = self.get_mut(&next).ok_or(RingError::UnknownKey(next))?;
            let earliest = k.created_at + policy.publish_ahead;
            let at = k.activates_at.unwrap_or(earliest).min(earliest.max(now));
            k.activates_at = Some(at);
            let events = self.advance(now, policy, None);
            return Ok((at, events));
        }
        let key = fresh.ok_or(RingError::NeedsFreshKey)?;
        let at = now + policy.publish_ahead;
        let mut r = key.record(KeyState::Next, now);
        r.activates_at = Some(at);
        let events = vec![KeyEvent::Created {
            kid: r.kid.clone(),
            state: KeyState::Next,
            activates_at: Some(at),
        }];
        self.keys.push(r);
        Ok((at, events))
    }

    /// Emergency rotation: a new signer now. The next key takes over if
    /// there is one (it is already published); otherwise a fresh key signs
    /// at once, and sites holding an old copy of the JWKS must fetch it
    /// again (the common verifiers do on an unknown `kid`).
    pub fn rotate_now(
        &mut self,
        now: i64,
        policy: &RotationPolicy,
        fresh: Option<NewKey>,
    ) -> Result<Vec<KeyEvent>, RingError> {
        if let Some(next) = self.next().map(|k| k.kid.clone()) {
            let mut events = self.activate(&next, now, policy);
            events.extend(self.advance(now, policy, fresh));
            return Ok(events);
        }
        let key = fresh.ok_or(RingError::NeedsFreshKey)?;
        let mut r = key.record(KeyState::Next, now);
        r.activates_at = Some(now);
        let kid = r.kid.clone();
        self.keys.push(r);
        let mut events = vec![KeyEvent::Created {
            kid: kid.clone(),
            state: KeyState::Next,
            activates_at: Some(now),
        }];
        events.extend(self.activate(&kid, now, policy));
        Ok(events)
    }

    /// Take a key out of service and out of the JWKS at once. If it was the
    /// signer, the next key takes over, or `fresh` does.
    pub fn revoke(
        &mut self,
        kid: &str,
        reason: &str,
        now: i64,
        policy: &RotationPolicy,
        fresh: Option<NewKey>,
    ) -> Result<Vec<KeyEvent>, RingError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(RingError::ReasonRequired);
        }
        let k = self
            .get_mut(kid)
            .ok_or_else(|| RingError::UnknownKey(kid.to_string()))?;
        if matches!(k.state, KeyState::Revoked | KeyState::Removed) {
            return Err(RingError::AlreadyGone(kid.to_string(), k.state.as_str()));
        }
        k.state = KeyState::Revoked;
        k.revoked_at = Some(now);
        k.revoked_reason = Some(reason.to_string());
        let mut events = vec![KeyEvent::Revoked {
            kid: kid.to_string(),
            reason: reason.to_string(),
        }];
        events.extend(self.advance(now, policy, fresh));
        Ok(events)
    }
}

/// One public key as published (RFC 7517), nothing private.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub n: String,
    pub e: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

impl Jwks {
    pub fn of(ring: &Ring) -> Jwks {
        Jwks {
            keys: ring
                .published()
                .map(|k| PublicJwk {
                    kty: "RSA",
                    kid: k.kid.clone(),
                    use_: "sig",
                    alg: "RS256",
                    n: k.n.clone(),
                    e: k.e.clone(),
                })
                .collect(),
        }
    }

    /// The exact bytes served and their strong ETag.
    pub fn to_bytes_and_etag(&self) -> (Vec<u8>, String) {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let etag = format!("\"{}\"", B64.encode(&Sha256::digest(&bytes)[..16]));
        (bytes, etag)
    }
}

/// Settings for keys, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySettings {
    pub bits: u32,
    pub policy: RotationPolicy,
    /// `Cache-Control: max-age` of the JWKS, seconds.
    pub jwks_max_age: i64,
    /// How often each instance looks for changes to the ring, seconds.
    pub refresh_secs: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            bits: 2048,
            policy: RotationPolicy::DEFAULT,
            jwks_max_age: 300,
            refresh_secs: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in key for timeline tests: only its id matters there.
    fn fake(i: u32) -> NewKey {
        NewKey {
            kid: format!("k{i}"),
            bits: 2048,
            n: format!("n{i}"),
            e: "AQAB".into(),
            private_der: Zeroizing::new(vec![]),
        }
    }

    const DAY: i64 = 86_400;
    const P: RotationPolicy = RotationPolicy::DEFAULT;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn first_start_makes_one_active_key_then_schedules_the_next() {
        let mut ring = Ring::default();
        let t0 = 1_000_000;
        assert_eq!(ring.needs(t0, &P), Need::FreshKey);
        ring.advance(t0, &P, Some(fake(1)));
        assert_eq!(ring.active().unwrap().kid, "k1");
        assert!(ring.next().is_none());
        // Nothing until a key must be published ahead of the 30-day rotation.
        assert_eq!(ring.needs(t0 + 23 * DAY - 1, &P), Need::Nothing);
        assert_eq!(ring.needs(t0 + 23 * DAY, &P), Need::FreshKey);
        let ev = ring.advance(t0 + 23 * DAY, &P, Some(fake(2)));
        assert_eq!(
            ev,
            vec![KeyEvent::Created {
                kid: "k2".into(),
                state: KeyState::Next,
                activates_at: Some(t0 + 30 * DAY)
            }]
        );
        // Published, not signing.
        let kids: Vec<_> = ring.published().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["k1", "k2"]);
        ring.advance(t0 + 30 * DAY - 1, &P, None);
        assert_eq!(ring.active().unwrap().kid, "k1");
        ring.advance(t0 + 30 * DAY, &P, None);
        assert_eq!(ring.active().unwrap().kid, "k2");
        assert_eq!(ring.get("k1").unwrap().state, KeyState::Retired);
        assert_eq!(ring.get("k1").unwrap().remove_at, Some(t0 + 37 * DAY));
        ring.advance(t0 + 37 * DAY, &P, None);
        assert_eq!(ring.get("k1").unwrap().state, KeyState::Removed);
        let kids: Vec<_> = ring.published().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["k2"]);
    }

    #[test]
    fn a_late_next_key_is_still_published_a_full_week_before_it_signs() {
        let mut ring = Ring::default();
        ring.advance(0, &P, Some(fake(1)));
        // The service was down for weeks: the rotation is overdue.
        ring.advance(40 * DAY, &P, Some(fake(2)));
        assert_eq!(ring.active().unwrap().kid, "k1");
        assert_eq!(ring.next().unwrap().activates_at, Some(47 * DAY));
    }

    #[test]
    fn revoking_the_signer_hands_over_at_once_and_unpublishes_it() {
        let mut ring = Ring::default();
        ring.advance(0, &P, Some(fake(1)));
        ring.advance(25 * DAY, &P, Some(fake(2)));
        let ev = ring.revoke("k1", "leaked", 26 * DAY, &P, None).unwrap();
        assert!(ev.contains(&KeyEvent::Activated { kid: "k2".into() }));
        assert_eq!(ring.active().unwrap().kid, "k2");
        assert!(ring.published().all(|k| k.kid != "k1"));
        assert_eq!(
            ring.revoke("k1", "again", 26 * DAY, &P, None).unwrap_err(),
            RingError::AlreadyGone("k1".into(), "revoked")
        );
        assert_eq!(
            ring.revoke("k2", "  ", 26 * DAY, &P, None).unwrap_err(),
            RingError::ReasonRequired
        );
        // Revoking the only key: a fresh key signs at once.
        ring.revoke("k2", "leaked too", 27 * DAY, &P, Some(fake(3)))
            .unwrap();
        assert_eq!(ring.active().unwrap().kid, "k3");
        assert_eq!(ring.published().count(), 1);
    }

    #[test]
    fn rotate_soon_publishes_first_and_signs_a_week_later() {
        let mut ring = Ring::default();
        ring.advance(0, &P, Some(fake(1)));
        let (at, _) = ring.rotate_soon(DAY, &P, Some(fake(2))).unwrap();
        assert_eq!(at, 8 * DAY);
        assert_eq!(ring.active().unwrap().kid, "k1");
        // Asked again a day later, the existing next key is kept, not doubled.
        let (at, _) = ring.rotate_soon(2 * DAY, &P, None).unwrap();
        assert_eq!(at, 8 * DAY);
        assert_eq!(ring.keys.len(), 2);
        ring.advance(8 * DAY, &P, None);
        assert_eq!(ring.active().unwrap().kid, "k2");
    }

    #[test]
    fn unsafe_policies_are_refused() {
        assert!(P.check(300, 5).is_ok());
        let short = RotationPolicy {
            publish_ahead: 200,
            ..P
        };
        assert!(short.check(300, 5).is_err());
        let brief = RotationPolicy {
            keep_after: MAX_TOKEN_LIFETIME + 300,
            ..P
        };
        assert!(brief.check(300, 5).is_err());
    }

    #[test]
    fn jwks_has_public_members_only_and_a_stable_etag() {
        let mut ring = Ring::default();
        ring.advance(0, &P, Some(fake(1)));
        let (bytes, etag) = Jwks::of(&ring).to_bytes_and_etag();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let key = &doc["keys"][0];
        let mut members: Vec<_> = key.as_object().unwrap().keys().cloned().collect();
        members.sort();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(Jwks::of(&ring).to_bytes_and_etag().1, etag);
        ring.advance(25 * DAY, &P, Some(fake(2)));
        assert_ne!(Jwks::of(&ring).to_bytes_and_etag().1, etag);
    }

    #[test]
    fn a_real_key_has_a_thumbprint_kid_and_parses_as_pkcs1() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let k = generate(2048, &mut rng).unwrap();
        assert_eq!(k.kid, thumbprint(&k.n, &k.e));
        assert_eq!(k.e, "AQAB");
        assert!(aws_lc_rs::signature::RsaKeyPair::from_der(&k.private_der).is_ok());
    }

    #[test]
    fn a_row_is_trusted_only_with_its_mac_its_thumbprint_and_its_own_private_half() {
        use crate::domain::secrets::MasterKey;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let masters = MasterKeys::new(MasterKey::new([5; 32]), vec![]);
        let key = generate(2048, &mut rng).unwrap();
        let other = generate(2048, &mut rng).unwrap();
        let sealed = masters.seal(&key.private_der, &private_key_aad(&key.kid), &mut rng);
        let active = key.record(KeyState::Active, 100);
        let mac = row_mac(&masters, &active);
        let check = |k: &KeyRecord, mac: Option<&str>, sealed: Option<&str>| {
            check_row(&masters, k, mac, sealed)
        };
        assert_eq!(check(&active, Some(&mac), Some(&sealed)), Integrity::Sound);
        // No MAC, or a MAC over other values (a state or a time changed).
        assert!(matches!(
            check(&active, None, Some(&sealed)),
            Integrity::Forged(_)
        ));
        let mut moved = active.clone();
        moved.activated_at = Some(50);
        assert!(matches!(
            check(&moved, Some(&mac), Some(&sealed)),
            Integrity::Forged(_)
        ));
        // Another modulus under the same kid (a swapped n), MAC recomputed
        // by someone who had the master key would still fail the thumbprint.
        let mut swapped = active.clone();
        swapped.n = other.n.clone();
        let swapped_mac = row_mac(&masters, &swapped);
        assert_eq!(
            check(&swapped, Some(&swapped_mac), Some(&sealed)),
            Integrity::Forged("its kid is not the thumbprint of its public key".into())
        );
        // Someone else's public key with its own kid, over this key's sealed half.
        let mut foreign = other.record(KeyState::Active, 100);
        let foreign_mac = row_mac(&masters, &foreign);
        assert!(matches!(
            check(&foreign, Some(&foreign_mac), Some(&sealed)),
            Integrity::Forged(_)
        ));
        let foreign_sealed = masters.seal(&key.private_der, &private_key_aad(&other.kid), &mut rng);
        assert_eq!(
            check(&foreign, Some(&foreign_mac), Some(&foreign_sealed)),
            Integrity::Forged("its private half is not the pair of its public key".into())
        );
        // An active key must keep its private half; a retired one need not.
        assert!(matches!(
            check(&active, Some(&mac), None),
            Integrity::Forged(_)
        ));
        foreign.state = KeyState::Retired;
        let retired_mac = row_mac(&masters, &foreign);
        assert_eq!(check(&foreign, Some(&retired_mac), None), Integrity::Sound);
        // Another instance's master key: unknown here, not forged.
        let elsewhere = MasterKeys::new(MasterKey::new([6; 32]), vec![]);
        assert!(matches!(
            check_row(&elsewhere, &active, Some(&mac), Some(&sealed)),
            Integrity::Unchecked(_)
        ));
    }

    mod timeline {
        //! A simulated year of scheduled, early and emergency rotations and
        //! revocations, checked at every step against what sites rely on.
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Wait(i64),
            RotateSoon,
            RotateNow,
            RevokeActive,
            RevokeNext,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                20 => (60i64..3 * DAY).prop_map(Op::Wait),
                1 => Just(Op::RotateSoon),
                1 => Just(Op::RotateNow),
                1 => Just(Op::RevokeActive),
                1 => Just(Op::RevokeNext),
            ]
        }

        struct Token {
            kid: String,
            signed_at: i64,
        }

        const CACHE: i64 = 300;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn every_live_token_verifies_and_revoked_keys_are_gone(ops in prop::collection::vec(op(), 200..400)) {
                let mut ring = Ring::default();
                let mut made = 0u32;
                let mut fresh = || { made += 1; Some(fake(made)) };
                let mut now = 1_700_000_000i64;
                let end = now + 365 * DAY;
                // Keys that started signing without the full publish-ahead
                // time: the first key and emergency hand-overs.
                let mut early: Vec<String> = Vec::new();
                let mut tokens: Vec<Token> = Vec::new();
                let mut last_rotate_now: Option<i64> = None;
                ring.advance(now, &P, fresh());
                early.push(ring.active().unwrap().kid.clone());
                for op in ops {
                    if now >= end { break; }
                    let before = ring.active().map(|k| k.kid.clone());
                    match op {
                        Op::Wait(d) => {
                            // Step through time the way the service does: it
                            // looks at the ring every few seconds, so advance
                            // at each due instant on the way.
                            let until = now + d;
                            while now < until {
                                let step = (until - now).min(3_600);
                                now += step;
                                let need = ring.needs(now, &P);
                                ring.advance(now, &P, if need == Need::FreshKey { fresh() } else { None });
                            }
                        }
                        Op::RotateSoon => { ring.rotate_soon(now, &P, fresh()).unwrap(); }
                        // Emergencies hand over at once, to the waiting next key if any.
                        Op::RotateNow => {
                            last_rotate_now = Some(now);
                            ring.rotate_now(now, &P, fresh()).unwrap();
                            early.push(ring.active().unwrap().kid.clone());
                        }
                        Op::RevokeActive => {
                            let kid = ring.active().unwrap().kid.clone();
                            ring.revoke(&kid, "test", now, &P, fresh()).unwrap();
                            early.push(ring.active().unwrap().kid.clone());
                        }
                        Op::RevokeNext => {
                            if let Some(kid) = ring.next().map(|k| k.kid.clone()) {
                                ring.revoke(&kid, "test", now, &P, None).unwrap();
                            }
                        }
                    }
                    // Exactly one active key, always.
                    let active: Vec<_> = ring.keys.iter().filter(|k| k.state == KeyState::Active).collect();
                    prop_assert_eq!(active.len(), 1);
                    prop_assert!(ring.keys.iter().filter(|k| k.state == KeyState::Next).count() <= 1);
                    // A small set (sites may try every key), unless emergency
                    // rotations left several retired keys that must stay a week.
                    if last_rotate_now.is_none_or(|t| now - t > P.keep_after) {
                        prop_assert!(ring.published().count() <= 3);
                    }
                    let active = active[0].clone();
                    // A change of signer never happens before the new key was published long enough, unless an emergency.
                    if before.as_deref() != Some(active.kid.as_str()) && !early.contains(&active.kid) {
                        prop_assert!(now - active.created_at >= P.publish_ahead,
                            "{} signs {} s after publication", active.kid, now - active.created_at);
                    }
                    // Sign a token now with the active key.
                    tokens.push(Token { kid: active.kid.clone(), signed_at: now });
                    tokens.retain(|t| t.signed_at + MAX_TOKEN_LIFETIME + CACHE > now);
                    let published: Vec<&str> = ring.published().map(|k| k.kid.as_str()).collect();
                    for t in &tokens {
                        let key = ring.get(&t.kid).unwrap();
                        if key.state == KeyState::Revoked {
                            prop_assert!(!published.contains(&t.kid.as_str()), "revoked {} still published", t.kid);
                        } else {
                            prop_assert!(published.contains(&t.kid.as_str()),
                                "token signed at {} by {} unverifiable at {}", t.signed_at, t.kid, now);
                        }
                    }
                    for k in &ring.keys {
                        if k.state == KeyState::Revoked {
                            prop_assert!(!published.contains(&k.kid.as_str()));
                        }
                        // A retired key stays for keep_after after its last signature.
                        if k.state == KeyState::Removed {
                            prop_assert!(k.removed_at.unwrap() - k.retired_at.unwrap() >= P.keep_after);
                        }
                    }
                }
            }
        }
    }
}

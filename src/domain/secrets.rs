//! Secrets at rest: AES-256-GCM under the master key.
//!
//! A sealed value is text: `v1.<master key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.
//! The id names the master key that sealed it, so a new master key can be
//! introduced while values sealed under an older one still open (until
//! `agency-sso keys rewrap` reseals them). The associated data binds a value
//! to its place (`signing-key:<kid>`, `site-secret:<id>`): a ciphertext
//! copied into another row does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::CryptoRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

/// One 32-byte master key; never printed.
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl MasterKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        // The id is a hash of the key under a fixed label: it tells keys
        // apart without saying anything usable about them.
        let mut h = Sha256::new();
        h.update(b"agency-sso master key id\0");
        h.update(bytes);
        let id = h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        MasterKey {
            key: Zeroizing::new(bytes),
            id,
        }
    }

    /// Twelve hex digits naming this key in sealed values and in logs.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.id)
    }
}

impl MasterKey {
    /// A key for one purpose, derived from this master key (HMAC-SHA256
    /// under a label): a MAC or a keyed digest never uses the master key itself.
    fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice())
            .expect("HMAC takes any key length");
        mac.update(b"agency-sso derived key\0");
        mac.update(purpose.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    fn mac_under(&self, purpose: &str, data: &[u8]) -> Hmac<Sha256> {
        let key = self.derive(purpose);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice())
            .expect("HMAC takes any key length");
        mac.update(data);
        mac
    }
}

/// A secret string: printed as `<redacted>`, compared only where needed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Why a MAC does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("it carries no MAC")]
    Missing,
    #[error("its MAC is not in a format this version knows")]
    Malformed,
    #[error("its MAC was made under master key {0}, which is not configured")]
    UnknownMasterKey(String),
    #[error("its MAC does not match: the row was written without the master key")]
    Mismatch,
}

/// The current master key (seals) and older ones (only open).
#[derive(Clone, Debug)]
pub struct MasterKeys {
    current: MasterKey,
    older: Vec<MasterKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the value is not in a sealed format this version knows")]
    Malformed,
    #[error("the value was sealed under master key {0}, which is not configured (give it in SSO_MASTER_KEYS_OLD)")]
    UnknownMasterKey(String),
    #[error("the value does not open: it was altered, moved, or sealed under another key")]
    Rejected,
}

impl MasterKeys {
    pub fn new(current: MasterKey, older: Vec<MasterKey>) -> Self {
        let older = older.into_iter().filter(|k| k.id != current.id).collect();
        MasterKeys { current, older }
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Seal `plain` for the place named by `aad`, under the current key.
    pub fn seal(&self, plain: &[u8], aad: &str, rng: &mut (impl RngCore + CryptoRng)) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(self.current.key.as_slice().into());
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            // Encryption fails only for inputs of gigabytes.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{VERSION}.{}.{}", self.current.id, B64.encode(out))
    }

    /// Open a sealed value for the place named by `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let key = self
            .key_by_id(id)
            .ok_or_else(|| OpenError::UnknownMasterKey(id.to_string()))?;
        let raw = B64.decode(body).map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(key.key.as_slice().into());
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Rejected)
    }

    /// A MAC of `data` for `purpose`, under a key derived from the current
    /// master key: `v1.<master key id>.<base64url(HMAC-SHA256)>`.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> String {
        let tag = self
            .current
            .mac_under(purpose, data)
            .finalize()
            .into_bytes();
        format!("{VERSION}.{}.{}", self.current.id, B64.encode(tag))
    }

    /// Check a MAC made by [`MasterKeys::mac`] under any configured master
    /// key (in constant time).
    pub fn check_mac(&self, purpose: &str, data: &[u8], mac: &str) -> Result<(), MacError> {
        if mac.is_empty() {
            return Err(MacError::Missing);
        }
        let mut parts = mac.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(MacError::Malformed);
        };
        let key = self
            .key_by_id(id)
            .ok_or_else(|| MacError::UnknownMasterKey(id.to_string()))?;
        let tag = B64.decode(body).map_err(|_| MacError::Malformed)?;
        key.mac_under(purpose, data)
            .verify_slice(&tag)
            .map_err(|_| MacError::Mismatch)
    }

    /// A keyed digest of a secret, under the current master key: tells two
    /// values apart (a preview from its apply) without being a plain hash
    /// of a human-chosen secret.
    pub fn keyed_digest(&self, purpose: &str, data: &[u8]) -> String {
        B64.encode(
            self.current
                .mac_under(purpose, data)
                .finalize()
                .into_bytes(),
        )
    }

    /// Is this sealed value under the current master key already?
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed_key_id(sealed) == Some(self.current.id.as_str())
    }

    fn key_by_id(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == id)
    }
}

/// The master key id a sealed value names.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(VERSION), Some(id)) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn keys(a: u8) -> MasterKeys {
        MasterKeys::new(MasterKey::new([a; 32]), vec![])
    }

    #[test]
    fn a_mac_checks_only_its_data_and_purpose_under_a_configured_key() {
        let k = keys(1);
        let mac = k.mac("signing-key-row", b"kid|n|active");
        assert!(mac.starts_with(&format!("v1.{}.", k.current().id())));
        assert_eq!(
            k.check_mac("signing-key-row", b"kid|n|active", &mac),
            Ok(())
        );
        assert_eq!(
            k.check_mac("signing-key-row", b"kid|n|retired", &mac),
            Err(MacError::Mismatch)
        );
        assert_eq!(
            k.check_mac("other", b"kid|n|active", &mac),
            Err(MacError::Mismatch)
        );
        assert_eq!(
            k.check_mac("signing-key-row", b"x", ""),
            Err(MacError::Missing)
        );
        assert_eq!(
            k.check_mac("signing-key-row", b"x", "v1.abc"),
            Err(MacError::Malformed)
        );
        assert!(matches!(
            keys(2).check_mac("signing-key-row", b"kid|n|active", &mac),
            Err(MacError::UnknownMasterKey(_))
        ));
        // An older master key still checks the MACs it made.
        let rotated = MasterKeys::new(MasterKey::new([2; 32]), vec![MasterKey::new([1; 32])]);
        assert_eq!(
            rotated.check_mac("signing-key-row", b"kid|n|active", &mac),
            Ok(())
        );
        // A keyed digest is not the plain hash, and differs per master key.
        let d = k.keyed_digest("import", b"secret");
        assert_ne!(d, B64.encode(Sha256::digest(b"secret")));
        assert_ne!(d, keys(2).keyed_digest("import", b"secret"));
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_place_under_its_key() {
        let mut rng = StdRng::seed_from_u64(7);
        let k = keys(1);
        let sealed = k.seal(b"private key bytes", "signing-key:abc", &mut rng);
        assert!(sealed.starts_with(&format!("v1.{}.", k.current().id())));
        assert!(!sealed.contains("private"));
        assert_eq!(
            k.open(&sealed, "signing-key:abc").unwrap().as_slice(),
            b"private key bytes"
        );
        assert_eq!(
            k.open(&sealed, "signing-key:abd").unwrap_err(),
            OpenError::Rejected
        );
        // Another master key is named, and refused, by id.
        assert!(matches!(
            keys(2).open(&sealed, "signing-key:abc").unwrap_err(),
            OpenError::UnknownMasterKey(id) if id == k.current().id()
        ));
        // A flipped bit anywhere in the body is caught.
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            k.open(&altered, "signing-key:abc").unwrap_err(),
            OpenError::Rejected
        );
        assert_eq!(k.open("plain", "x").unwrap_err(), OpenError::Malformed);
        // Two seals of the same value differ (fresh nonce).
        assert_ne!(
            sealed,
            k.seal(b"private key bytes", "signing-key:abc", &mut rng)
        );
    }

    #[test]
    fn an_older_master_key_still_opens_until_rewrapped() {
        let mut rng = StdRng::seed_from_u64(8);
        let old = keys(1);
        let sealed = old.seal(b"secret", "site-secret:1", &mut rng);
        let rotated = MasterKeys::new(MasterKey::new([2; 32]), vec![MasterKey::new([1; 32])]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(
            rotated.open(&sealed, "site-secret:1").unwrap().as_slice(),
            b"secret"
        );
        let resealed = rotated.seal(b"secret", "site-secret:1", &mut rng);
        assert!(rotated.is_current(&resealed));
        assert!(old.open(&resealed, "site-secret:1").is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = MasterKey::new([0x41; 32]);
        let shown = format!("{:?}", MasterKeys::new(k.clone(), vec![]));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("AAAA") && !shown.contains("65, 65"));
    }
}

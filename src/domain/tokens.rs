//! Signing tokens. The active key is parsed once and kept in memory; each
//! token costs one RSA signature and nothing else.
//!
//! jsonwebtoken's `encode` parses the DER private key again on every call
//! (its `EncodingKey` holds bytes), which the signing benchmark shows costs
//! a large share of a signature; so RS256 is signed here with a parsed
//! `ring` key pair, producing exactly the compact JWS that jsonwebtoken
//! would (the test below checks it against jsonwebtoken's own verifier).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Serialize;

/// The active key, ready to sign.
pub struct Signer {
    kid: String,
    key: RsaKeyPair,
    /// `base64url(header).`, the same for every token of this key.
    header_prefix: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, <private>)", self.kid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the private key does not parse: {0}")]
    BadKey(String),
    #[error("signing failed")]
    Failed,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

impl Signer {
    /// From a PKCS#1 DER private key and its `kid`.
    pub fn from_pkcs1_der(kid: &str, der: &[u8]) -> Result<Signer, SignError> {
        let key = RsaKeyPair::from_der(der).map_err(|e| SignError::BadKey(e.to_string()))?;
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            kid,
            typ: "JWT",
        })
        .map_err(|_| SignError::Failed)?;
        Ok(Signer {
            kid: kid.to_string(),
            key,
            header_prefix: format!("{}.", B64.encode(header)),
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact RS256 JWS over `claims`, with `kid` and `typ: JWT` in the header.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Failed)?;
        let mut out = String::with_capacity(self.header_prefix.len() + payload.len() * 4 / 3 + 350);
        out.push_str(&self.header_prefix);
        B64.encode_string(payload, &mut out);
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
            .map_err(|_| SignError::Failed)?;
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::generate;
    use rand::SeedableRng;

    #[test]
    fn tokens_verify_with_jsonwebtoken_and_carry_the_kid() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let key = generate(2048, &mut rng).unwrap();
        let signer = Signer::from_pkcs1_der(&key.kid, &key.private_der).unwrap();
        let claims = serde_json::json!({ "sub": "sam@agency.test", "aud": "https://client.example", "exp": 4_000_000_000u64 });
        let token = signer.sign(&claims).unwrap();

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert!(header.jku.is_none() && header.x5u.is_none() && header.jwk.is_none());

        let public = jsonwebtoken::DecodingKey::from_rsa_components(&key.n, &key.e).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&["https://client.example"]);
        let got = jsonwebtoken::decode::<serde_json::Value>(&token, &public, &v).unwrap();
        assert_eq!(got.claims["sub"], "sam@agency.test");

        // Another key's public half does not verify it.
        let other = generate(2048, &mut rng).unwrap();
        let wrong = jsonwebtoken::DecodingKey::from_rsa_components(&other.n, &other.e).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &wrong, &v).is_err());
    }

    #[test]
    fn a_broken_key_is_refused() {
        assert!(matches!(
            Signer::from_pkcs1_der("x", b"not der"),
            Err(SignError::BadKey(_))
        ));
    }
}

//! Signing tokens. The active key is parsed once and kept in memory; each
//! token costs one RSA signature and nothing else.
//!
//! jsonwebtoken's `encode` parses the DER private key again on every call
//! (its `EncodingKey` holds bytes), which the signing benchmark shows costs
//! a large share of a signature; so RS256 is signed here with a parsed
//! key pair, producing exactly the compact JWS that jsonwebtoken would (the
//! test below checks it against jsonwebtoken's own verifier). The key pair
//! is AWS-LC's (`aws-lc-rs`): on CPUs with AVX-512 IFMA it signs twice as
//! fast as `ring`, at OpenSSL's rate (see BENCHMARKS.md).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;

use super::keys::MAX_TOKEN_LIFETIME;
use super::sites::Profile;

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
        self.sign_after(&self.header_prefix, claims)
    }

    /// The same with another `typ` (RFC 8725 3.11: a JWS that is not a
    /// login token says so, and cannot be mistaken for one).
    pub fn sign_typed<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, SignError> {
        let header = serde_json::to_vec(&serde_json::json!({
            "alg": "RS256",
            "kid": self.kid,
            "typ": typ,
        }))
        .map_err(|_| SignError::Failed)?;
        self.sign_after(&format!("{}.", B64.encode(header)), claims)
    }

    fn sign_after<T: Serialize>(
        &self,
        header_prefix: &str,
        claims: &T,
    ) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Failed)?;
        let mut out = String::with_capacity(header_prefix.len() + payload.len() * 4 / 3 + 350);
        out.push_str(header_prefix);
        B64.encode_string(payload, &mut out);
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
            .map_err(|_| SignError::Failed)?;
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }
}

/// Everything a launch token says, before it is shaped for a profile.
#[derive(Debug, Clone)]
pub struct LaunchFacts<'a> {
    /// The dashboard's public URL.
    pub issuer: &'a str,
    /// The site URL (normalised).
    pub audience: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub given_name: Option<&'a str>,
    pub family_name: Option<&'a str>,
    pub role: &'a str,
    pub now: i64,
    pub lifetime: i64,
    pub jti: &'a str,
}

/// The claims of a launch token for a site's profile (CONTRACT.md):
/// `iss`, `aud`, `sub` and `email` (the e-mail, lower-cased), `exp`, `nbf`,
/// `iat`, `jti`, `wp_role`, the names when known; and for miniOrange the
/// e-mail again under the site's username claim.
pub fn launch_claims(
    profile: Profile,
    username_claim: &str,
    f: &LaunchFacts<'_>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let email = f.email.to_ascii_lowercase();
    let lifetime = f.lifetime.clamp(1, MAX_TOKEN_LIFETIME);
    let mut c = serde_json::Map::new();
    c.insert("iss".into(), Value::from(f.issuer));
    c.insert("aud".into(), Value::from(f.audience));
    c.insert("sub".into(), Value::from(email.clone()));
    c.insert("email".into(), Value::from(email.clone()));
    c.insert("exp".into(), Value::from(f.now + lifetime));
    c.insert("nbf".into(), Value::from(f.now));
    c.insert("iat".into(), Value::from(f.now));
    c.insert("jti".into(), Value::from(f.jti));
    c.insert("wp_role".into(), Value::from(f.role));
    for (k, v) in [
        ("name", f.name),
        ("given_name", f.given_name),
        ("family_name", f.family_name),
    ] {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            c.insert(k.into(), Value::from(v));
        }
    }
    if profile == Profile::MiniOrange {
        c.insert(username_claim.into(), Value::from(email));
    }
    c
}

/// A fresh token id: 128 random bits, base64url.
pub fn new_jti(rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    B64.encode(b)
}

/// A compact HS256 JWS (miniOrange free edition) with the site's secret.
pub fn sign_hs256<T: Serialize>(secret: &[u8], claims: &T) -> Result<String, SignError> {
    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
    let payload = serde_json::to_vec(claims).map_err(|_| SignError::Failed)?;
    let mut out = B64.encode(HEADER);
    out.push('.');
    B64.encode_string(payload, &mut out);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, out.as_bytes());
    out.push('.');
    B64.encode_string(tag.as_ref(), &mut out);
    Ok(out)
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

    fn facts<'a>(jti: &'a str) -> LaunchFacts<'a> {
        LaunchFacts {
            issuer: "https://sso.agency.example",
            audience: "https://client.example/blog",
            email: "Sam@Agency.Test",
            name: Some("Sam Staff"),
            given_name: Some("Sam"),
            family_name: None,
            role: "editor",
            now: 1_000,
            lifetime: 60,
            jti,
        }
    }

    #[test]
    fn launch_claims_follow_the_contract() {
        let c = launch_claims(Profile::TwlSso, "username", &facts("j1"));
        let want = serde_json::json!({
            "iss": "https://sso.agency.example", "aud": "https://client.example/blog",
            "sub": "sam@agency.test", "email": "sam@agency.test",
            "exp": 1060, "nbf": 1000, "iat": 1000, "jti": "j1", "wp_role": "editor",
            "name": "Sam Staff", "given_name": "Sam"
        });
        assert_eq!(serde_json::Value::Object(c), want);
        let m = launch_claims(Profile::MiniOrange, "login", &facts("j2"));
        assert_eq!(m["login"], "sam@agency.test");
        assert!(!m.contains_key("username"));
        // A lifetime beyond the contract's ceiling is cut to it.
        let mut long = facts("j3");
        long.lifetime = 86_400;
        assert_eq!(
            launch_claims(Profile::TwlSso, "username", &long)["exp"],
            1_300
        );
    }

    #[test]
    fn jtis_are_128_bits_and_fresh() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let a = new_jti(&mut rng);
        let b = new_jti(&mut rng);
        assert_eq!(B64.decode(&a).unwrap().len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn hs256_tokens_verify_with_the_site_secret_only() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let claims = launch_claims(Profile::MiniOrange, "username", &facts("j4"));
        let token = sign_hs256(secret, &claims).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&["https://client.example/blog"]);
        v.validate_exp = false;
        let got = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(secret),
            &v,
        )
        .unwrap();
        assert_eq!(got.claims["username"], "sam@agency.test");
        assert_eq!(got.header.typ.as_deref(), Some("JWT"));
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"another-secret-another-secret-xx"),
            &v,
        )
        .is_err());
    }

    #[test]
    fn a_broken_key_is_refused() {
        assert!(matches!(
            Signer::from_pkcs1_der("x", b"not der"),
            Err(SignError::BadKey(_))
        ));
    }
}

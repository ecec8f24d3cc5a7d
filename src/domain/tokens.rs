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
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Failed)?;
        self.sign_payload(&self.header_prefix, &payload)
    }

    /// A launch token: `sign` over the claims laid out for the site's
    /// profile (`launch_payload`). The header is the same for every profile:
    /// plain ASCII without `>`, `?` or `~` (`kid` is base64url), so its
    /// base64url text never holds `-` or `_` either (tested below).
    pub fn sign_launch(&self, payload: &LaunchPayload) -> Result<String, SignError> {
        self.sign_payload(&self.header_prefix, &payload.0)
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
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Failed)?;
        self.sign_payload(&format!("{}.", B64.encode(header)), &payload)
    }

    fn sign_payload(&self, header_prefix: &str, payload: &[u8]) -> Result<String, SignError> {
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
    /// The person's stable, opaque id (`people.id`): the `sub` of a
    /// connector token. Never the e-mail address.
    pub subject: &'a str,
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
/// `iat`, `jti`, `wp_role`, the names when known. For the connector, `sub`
/// is the person's stable subject instead: one person keeps one WordPress
/// account across a change of address. For miniOrange: no `nbf`
/// (its free edition refuses every token that carries one, whatever the
/// value) and the e-mail again under the site's username claim, the only
/// claim that plugin reads besides `exp`.
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
    let sub = match profile {
        Profile::Connector => f.subject.to_string(),
        Profile::TwlSso | Profile::MiniOrange => email.clone(),
    };
    c.insert("sub".into(), Value::from(sub));
    c.insert("email".into(), Value::from(email.clone()));
    c.insert("exp".into(), Value::from(f.now + lifetime));
    if profile != Profile::MiniOrange {
        c.insert("nbf".into(), Value::from(f.now));
    }
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

/// A launch token's payload, serialised as its site's plugin can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPayload(Vec<u8>);

impl LaunchPayload {
    /// The JSON text of the payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The payload of a launch token for a profile. Standard compact JSON,
/// except for miniOrange, whose plugin decodes the header and payload with
/// PHP's plain `base64_decode`: it drops base64url's `-` and `_`, and the
/// JSON no longer parses. There the payload is ASCII-only JSON in which
/// `>`, `?`, `~`, DEL and every non-ASCII character are written as
/// `\uXXXX` escapes (see `PlainBase64Safe`): the same JSON value, whose
/// base64url text has neither character.
pub fn launch_payload(
    profile: Profile,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<LaunchPayload, SignError> {
    let bytes = match profile {
        Profile::TwlSso | Profile::Connector => serde_json::to_vec(claims),
        Profile::MiniOrange => {
            let mut out = Vec::with_capacity(512);
            let written = claims.serialize(&mut serde_json::Serializer::with_formatter(
                &mut out,
                PlainBase64Safe,
            ));
            written.map(|()| out)
        }
    };
    bytes.map(LaunchPayload).map_err(|_| SignError::Failed)
}

/// A JSON formatter whose output encodes to base64url without `-` or `_`.
///
/// Base64 turns each 3 bytes into four 6-bit digits; `-` and `_` are the
/// digits 62 and 63. For a byte below 0x80 the first three digits of its
/// group stay under 62 (each takes at most the top bit of a later byte,
/// which is 0), so only the fourth, the low six bits of a group's third
/// byte, can be 62 or 63: bytes 0x3E `>`, 0x3F `?`, 0x7E `~` and 0x7F
/// DEL. JSON that holds none of those four and nothing above 0x7F
/// therefore encodes without either character at any alignment. Outside
/// strings serde_json writes none of them; inside, they are escaped here.
struct PlainBase64Safe;

impl serde_json::ser::Formatter for PlainBase64Safe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if ch.is_ascii() && !matches!(ch, '>' | '?' | '~' | '\x7f') {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// A fresh token id: 128 random bits, base64url.
pub fn new_jti(rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    B64.encode(b)
}

/// A compact HS256 JWS (miniOrange free edition) with the site's secret.
/// The header's base64url text is `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9`:
/// no `-` or `_`, as that plugin needs.
pub fn sign_hs256(secret: &[u8], payload: &LaunchPayload) -> Result<String, SignError> {
    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
    let mut out = B64.encode(HEADER);
    out.push('.');
    B64.encode_string(&payload.0, &mut out);
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
            subject: "0b9e8f2c-5d41-4a7e-9c3b-2f6d8e1a7c55",
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
        // Side by side: miniOrange gets the same claims without `nbf`
        // (its free edition refuses any token that has one), and the e-mail
        // under the site's username claim.
        let m = launch_claims(Profile::MiniOrange, "login", &facts("j2"));
        let want = serde_json::json!({
            "iss": "https://sso.agency.example", "aud": "https://client.example/blog",
            "sub": "sam@agency.test", "email": "sam@agency.test",
            "exp": 1060, "iat": 1000, "jti": "j2", "wp_role": "editor",
            "name": "Sam Staff", "given_name": "Sam", "login": "sam@agency.test"
        });
        assert_eq!(serde_json::Value::Object(m), want);
        // The connector: the twl-sso claims with the person's stable
        // subject, not the e-mail address, in `sub`.
        let c = launch_claims(Profile::Connector, "username", &facts("j1"));
        let mut want = launch_claims(Profile::TwlSso, "username", &facts("j1"));
        want.insert("sub".into(), "0b9e8f2c-5d41-4a7e-9c3b-2f6d8e1a7c55".into());
        assert_eq!(c, want);
        assert!(!c["sub"].as_str().unwrap().contains('@'));
        // A lifetime beyond the contract's ceiling is cut to it.
        let mut long = facts("j3");
        long.lifetime = 86_400;
        assert_eq!(
            launch_claims(Profile::TwlSso, "username", &long)["exp"],
            1_300
        );
    }

    /// PHP's `base64_decode` without its strict flag, as the miniOrange
    /// plugin calls it: characters outside the standard alphabet (base64url's
    /// `-` and `_` among them) are skipped, padding is optional, and the
    /// bits left over at the end are ignored.
    fn php_base64_decode(text: &str) -> Vec<u8> {
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        let mut kept: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/')
            .collect();
        if kept.len() % 4 == 1 {
            kept.pop();
        }
        let php = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        php.decode(kept).expect("filtered base64 decodes")
    }

    /// The header and payload of `token` as the miniOrange plugin reads them.
    fn as_miniorange_reads(token: &str) -> (serde_json::Value, serde_json::Value) {
        let mut parts = token.split('.');
        let mut next = || {
            let text = parts.next().expect("three parts");
            serde_json::from_slice(&php_base64_decode(text))
                .unwrap_or_else(|e| panic!("{text} does not decode as PHP does: {e}"))
        };
        (next(), next())
    }

    #[test]
    fn php_base64_decode_drops_what_base64url_adds() {
        // The check the tests below rely on: a `-` in base64url text breaks
        // PHP's decoding, as it breaks the plugin's.
        // `>`, `?` and `~` one after another: one of them ends a base64 group.
        let json = br#"{"name":"a>b?c~"}"#;
        let text = B64.encode(json);
        assert!(text.contains('-') || text.contains('_'), "{text}");
        assert!(serde_json::from_slice::<serde_json::Value>(&php_base64_decode(&text)).is_err());
        assert_eq!(php_base64_decode(&B64.encode(b"plain text")), b"plain text");
    }

    #[test]
    fn every_character_in_a_name_reaches_miniorange_intact() {
        // Every Unicode scalar value, at each of the three positions within
        // a base64 group, in one name: the payload is ASCII JSON without
        // `>`, `?`, `~` or DEL, its base64url text has no `-` or `_`, and
        // PHP's plain decoding gives back the same claims.
        let every: String = (0..=0x10FFFFu32).filter_map(char::from_u32).collect();
        for shift in 0..3 {
            let name = format!("{}{every}", "x".repeat(shift));
            let mut f = facts("j5");
            f.name = Some(name.as_str());
            let claims = launch_claims(Profile::MiniOrange, "username", &f);
            let payload = launch_payload(Profile::MiniOrange, &claims).unwrap();
            let bad = payload
                .as_bytes()
                .iter()
                .find(|b| !b.is_ascii() || matches!(b, b'>' | b'?' | b'~' | 0x7f));
            assert_eq!(bad, None, "shift {shift}");
            let token = sign_hs256(b"0123456789abcdef0123456789abcdef", &payload).unwrap();
            let (header, body) = token.rsplit_once('.').unwrap().0.split_once('.').unwrap();
            assert!(!header.contains(['-', '_']) && !body.contains(['-', '_']));
            let (h, p) = as_miniorange_reads(&token);
            assert_eq!(h, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
            assert_eq!(p, serde_json::Value::Object(claims), "shift {shift}");
        }
    }

    #[test]
    fn twl_sso_payloads_stay_plain_json() {
        // The twl-sso plugin decodes base64url properly: its payload is
        // serde_json's own compact text, UTF-8 as it is.
        let mut f = facts("j6");
        f.name = Some("Zoë Ødegård");
        let claims = launch_claims(Profile::TwlSso, "username", &f);
        let payload = launch_payload(Profile::TwlSso, &claims).unwrap();
        assert_eq!(payload.as_bytes(), serde_json::to_vec(&claims).unwrap());
        let m = launch_claims(Profile::MiniOrange, "username", &f);
        let payload = launch_payload(Profile::MiniOrange, &m).unwrap();
        let text = std::str::from_utf8(payload.as_bytes()).unwrap();
        assert!(
            text.contains(r#""name":"Zo\u00eb \u00d8deg\u00e5rd""#),
            "{text}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// Random people (names in any script, e-mails with `+` and `-`),
        /// sites, roles and username claims: the miniOrange token's first
        /// two parts decode with PHP's plain base64 to the very claims, RS256
        /// (premium edition) and HS256 alike, and carry no `nbf`.
        #[test]
        fn miniorange_tokens_decode_with_plain_base64(
            name in "\\PC{0,40}",
            given in proptest::option::of("\\PC{1,20}"),
            family in proptest::option::of("[\\p{Greek}\\p{Cyrillic}\\p{Han}\\p{Arabic}>?~ -]{1,20}"),
            email in "[a-z0-9][a-z0-9.+_-]{0,20}@[a-z0-9-]{1,12}\\.(test|example|co\\.uk)",
            site in "https://[a-z0-9-]{1,20}\\.example(/[a-z0-9~_-]{1,10})?",
            role in "[a-z][a-z0-9_-]{0,19}",
            // Site settings refuse the reserved claims (iss, exp, ...) here.
            claim in "(user|login|wp)[A-Za-z0-9_.-]{0,12}",
            now in 1_600_000_000i64..2_000_000_000,
            lifetime in 10i64..=300,
            jti_seed in proptest::prelude::any::<u64>(),
        ) {
            use rand::SeedableRng;
            let jti = new_jti(&mut rand::rngs::StdRng::seed_from_u64(jti_seed));
            let f = LaunchFacts {
                issuer: "https://sso.agency.example",
                audience: &site,
                subject: "p",
                email: &email,
                name: Some(name.as_str()),
                given_name: given.as_deref(),
                family_name: family.as_deref(),
                role: &role,
                now,
                lifetime,
                jti: &jti,
            };
            let claims = launch_claims(Profile::MiniOrange, &claim, &f);
            proptest::prop_assert!(!claims.contains_key("nbf"));
            proptest::prop_assert_eq!(&claims["exp"], &serde_json::json!(now + lifetime));
            let payload = launch_payload(Profile::MiniOrange, &claims).unwrap();
            let hs = sign_hs256(b"abcdefghijklmnopqrstuvwxyzABCDEF", &payload).unwrap();
            let rs = signer().sign_launch(&payload).unwrap();
            for token in [hs, rs] {
                let (_, body) = as_miniorange_reads(&token);
                proptest::prop_assert_eq!(body, serde_json::Value::Object(claims.clone()));
            }
        }
    }

    /// One signing key for the property test (RSA generation is slow).
    fn signer() -> &'static Signer {
        static SIGNER: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
        SIGNER.get_or_init(|| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(11);
            let key = generate(2048, &mut rng).unwrap();
            Signer::from_pkcs1_der(&key.kid, &key.private_der).unwrap()
        })
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
        let token = sign_hs256(
            secret,
            &launch_payload(Profile::MiniOrange, &claims).unwrap(),
        )
        .unwrap();
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

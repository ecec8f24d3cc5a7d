//! A small OpenID Connect provider on loopback for the callback's negative
//! cases: it signs ID tokens with a test key exactly as a test asks (wrong
//! audience, expired, `alg: none`, ...). The dashboard talks to it over real
//! HTTP with the real `openidconnect` crate; PKCE and client authentication
//! are checked as a real provider would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::Digest;

pub const CLIENT_ID: &str = "dashboard-under-test";
pub const CLIENT_SECRET: &str = "test-client-secret";
const KEY_PEM: &str = include_str!("fixtures/idp-test-key.pem");
const KID: &str = "test-key-1";

/// How the ID token of one grant is signed.
#[derive(Clone, Copy, Debug)]
pub enum Signing {
    Rs256,
    UnknownKid,
    AlgNone,
    /// The classic key-confusion attack: HS256 keyed with the RSA public key.
    Hs256WithPublicKey,
    /// RS256 with a key the provider does not publish.
    ForeignKey,
    /// HS256 keyed with the client secret: valid OIDC, but the dashboard
    /// accepts only asymmetric signatures (RFC 8725).
    Hs256WithClientSecret,
}

struct Grant {
    claims: Value,
    challenge: String,
    signing: Signing,
}

struct Inner {
    issuer: String,
    grants: Mutex<HashMap<String, Grant>>,
    public_pem: String,
    /// How long every answer is held back: a slow provider.
    delay_ms: AtomicU64,
}

#[derive(Clone)]
pub struct FakeIdp {
    inner: Arc<Inner>,
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl FakeIdp {
    pub async fn start() -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(KEY_PEM).unwrap();
        let public_pem = rsa::pkcs8::EncodePublicKey::to_public_key_pem(
            &key.to_public_key(),
            rsa::pkcs8::LineEnding::LF,
        )
        .unwrap();
        let idp = FakeIdp {
            inner: Arc::new(Inner {
                issuer,
                grants: Mutex::new(HashMap::new()),
                public_pem,
                delay_ms: AtomicU64::new(0),
            }),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Hold every answer back this long from now on (zero: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        self.inner
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    async fn slow(&self) {
        let ms = self.inner.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// Standard claims of a person of the agency, valid for `nonce` now.
    pub fn claims(&self, email: &str, nonce: &str) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": self.inner.issuer,
            "aud": CLIENT_ID,
            "sub": format!("sub-{email}"),
            "email": email,
            "email_verified": true,
            "name": "Test Person",
            "given_name": "Test",
            "family_name": "Person",
            "nonce": nonce,
            "iat": now,
            "exp": now + 300,
        })
    }

    /// Register the authorization code the provider "sent back" for an attempt.
    pub fn issue_code(&self, claims: Value, challenge: &str, signing: Signing) -> String {
        let code = b64(&rand_bytes());
        self.inner.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                claims,
                challenge: challenge.to_string(),
                signing,
            },
        );
        code
    }

    fn sign(&self, claims: &Value, signing: Signing) -> String {
        let rsa_key = || EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap();
        let with_kid = |kid: &str| {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(kid.into());
            h
        };
        match signing {
            Signing::Rs256 => jsonwebtoken::encode(&with_kid(KID), claims, &rsa_key()).unwrap(),
            Signing::UnknownKid => {
                jsonwebtoken::encode(&with_kid("no-such-key"), claims, &rsa_key()).unwrap()
            }
            Signing::ForeignKey => {
                let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
                let pem =
                    rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, Default::default()).unwrap();
                let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                jsonwebtoken::encode(&with_kid(KID), claims, &key).unwrap()
            }
            Signing::Hs256WithPublicKey => {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some(KID.into());
                let key = EncodingKey::from_secret(self.inner.public_pem.as_bytes());
                jsonwebtoken::encode(&h, claims, &key).unwrap()
            }
            Signing::Hs256WithClientSecret => {
                let key = EncodingKey::from_secret(CLIENT_SECRET.as_bytes());
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
            }
            Signing::AlgNone => {
                let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
                let body = b64(claims.to_string().as_bytes());
                format!("{header}.{body}.")
            }
        }
    }
}

fn rand_bytes() -> [u8; 24] {
    let mut b = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    b
}

async fn discovery(State(idp): State<FakeIdp>) -> Json<Value> {
    idp.slow().await;
    let iss = &idp.inner.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        // HS256 listed too, so that refusing it is the dashboard's own doing.
        "id_token_signing_alg_values_supported": ["RS256", "HS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<FakeIdp>) -> Json<Value> {
    idp.slow().await;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(KEY_PEM).unwrap();
    Json(json!({ "keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
    }]}))
}

fn oauth_error(code: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": code }))).into_response()
}

async fn token(
    State(idp): State<FakeIdp>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    idp.slow().await;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return oauth_error("invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error("unsupported_grant_type");
    }
    // Codes are single use: removed on first redemption, valid or not.
    let grant = form
        .get("code")
        .and_then(|c| idp.inner.grants.lock().unwrap().remove(c));
    let Some(grant) = grant else {
        return oauth_error("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if b64(&sha2::Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return oauth_error("invalid_grant");
    }
    let id_token = idp.sign(&grant.claims, grant.signing);
    Json(json!({
        "access_token": b64(&rand_bytes()),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

//! Staff sign-in with OpenID Connect (authorization code + PKCE, state and
//! nonce in the server-side session), sign-out, and who is signed in.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, Scope,
    TokenResponse as _,
};
use serde::Deserialize;
use tower_sessions::Session;

use super::oidc::{error_chain, ProviderError};
use super::pages::{error_page, ErrorPage};
use super::AppState;
use super::RequestOrigin;
use crate::domain::audit::{kind, outcome, Actor, Event, Origin};
use crate::domain::identity::{Refusal, VerifiedIdentity};
use crate::domain::people::Person;
use crate::domain::session::{
    proven_fresh, safe_return_path, AttemptError, PendingSignIn, SignedIn,
};
use crate::service::sessions::{current_person, SIGNED_IN_KEY};

/// The sign-in attempt in flight lives in its own cookie, sealed under the
/// master key, not in the database: a stranger starting sign-ins writes
/// nothing. It is read (and cleared) only by the callback.
const ATTEMPT_COOKIE: &str = "agency-sso-attempt";
const ATTEMPT_AAD: &str = "sign-in-attempt";

fn attempt_cookie_name(st: &AppState) -> String {
    if st.config.is_https() {
        format!("__Host-{ATTEMPT_COOKIE}")
    } else {
        ATTEMPT_COOKIE.to_string()
    }
}

/// The `Set-Cookie` value that stores (or, empty, clears) the attempt.
fn attempt_cookie(st: &AppState, value: &str) -> Option<axum::http::HeaderValue> {
    let max_age = if value.is_empty() {
        0
    } else {
        crate::domain::session::SIGN_IN_ATTEMPT_TTL_SECS
    };
    let secure = if st.config.is_https() { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        attempt_cookie_name(st)
    ))
    .ok()
}

/// The attempt the browser brought back, if it opens here.
fn attempt_of(st: &AppState, headers: &axum::http::HeaderMap) -> Option<PendingSignIn> {
    let name = attempt_cookie_name(st);
    let sealed = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name.as_str())?.strip_prefix('='))?;
    let plain = st.master_keys.open(sealed, ATTEMPT_AAD).ok()?;
    serde_json::from_slice(&plain).ok()
}

const ALLOWED_ID_TOKEN_ALGS: [CoreJwsSigningAlgorithm; 6] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
];

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    /// Set when a sensitive action asks for a fresh sign-in: the provider
    /// is asked to authenticate the person again, not to reuse its session.
    #[serde(default)]
    reauth: Option<String>,
}

/// GET /auth/login: start an attempt and send the browser to the provider.
pub async fn login(State(st): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let client = match st.oidc.client().await {
        Ok(c) => c,
        Err(e) => return SignInError::Provider(e).into_response(),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    if st.config.sign_in.require_hosted_domain {
        if let Some(hd) = st.config.sign_in.hosted_domain_hint() {
            request = request.add_extra_param("hd", hd.to_string());
        }
    }
    let reauth = q.reauth.is_some();
    if reauth {
        request = request
            .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
            .set_max_age(std::time::Duration::ZERO);
    }
    let (url, state, nonce) = request.url();
    let pending = PendingSignIn {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        started_at: st.clock.now(),
        return_to: safe_return_path(q.return_to.as_deref()),
        reauth,
    };
    let sealed = match serde_json::to_vec(&pending) {
        Ok(plain) => st
            .master_keys
            .seal(&plain, ATTEMPT_AAD, &mut rand::rngs::OsRng),
        Err(e) => {
            tracing::error!(error = %e, "cannot store the sign-in attempt");
            return SignInError::Storage.into_response();
        }
    };
    let mut res = Redirect::to(url.as_str()).into_response();
    match attempt_cookie(&st, &sealed) {
        Some(c) => {
            res.headers_mut().append(axum::http::header::SET_COOKIE, c);
            res
        }
        None => SignInError::Storage.into_response(),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /auth/callback: finish the attempt. Any failure shows what went
/// wrong and keeps nothing of the attempt (its cookie is cleared); a
/// session is made only once the sign-in succeeded.
pub async fn callback(
    State(st): State<AppState>,
    RequestOrigin(from): RequestOrigin,
    session: Session,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    // Single use: the attempt's cookie is cleared whatever happens next.
    let pending = attempt_of(&st, &headers);
    let mut res = finish(&st, &from, &session, pending, q).await;
    if let Some(c) = attempt_cookie(&st, "") {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    res
}

async fn finish(
    st: &AppState,
    from: &Origin,
    session: &Session,
    pending: Option<PendingSignIn>,
    q: CallbackQuery,
) -> Response {
    match finish_sign_in(st, pending, q, from).await {
        Ok((person, return_to, fresh)) => {
            let signed_in = SignedIn {
                person_id: person.id.clone(),
                signed_in_at: st.clock.now(),
                reauthenticated_at: match fresh {
                    Fresh::Proven(at) => Some(at),
                    _ => None,
                },
            };
            // A new session id at sign-in defeats session fixation.
            let stored = async {
                session.cycle_id().await?;
                session.insert(SIGNED_IN_KEY, signed_in).await?;
                session.save().await
            }
            .await;
            if let Err(e) = stored {
                tracing::error!(error = %e, "cannot store the session");
                let _ = session.flush().await;
                let failed = SignInError::Storage;
                record_failure(st, &failed, Some(&person.email), from).await;
                return failed.into_response();
            }
            tracing::info!(person = %person.id, email = %person.email, "signed in");
            if let Fresh::Unproven(why) = fresh {
                // Signed in, but not freshly enough for a sensitive action:
                // say so rather than send the person round again and again.
                tracing::warn!(person = %person.id, why = %why, "a fresh sign-in was asked for and not proved");
                let message = format!(
                    "You are signed in, but your identity provider did not prove that you signed in again just now ({why}), so the action that asked for it stays locked. Ask an admin to check that the provider honours prompt=login and max_age."
                );
                return error_page(ErrorPage {
                    status: StatusCode::OK,
                    title: "A fresh sign-in could not be confirmed",
                    message: &message,
                    code: "reauth_unproven",
                    action: Some((return_to.as_str(), "Go back")),
                });
            }
            Redirect::to(&return_to).into_response()
        }
        Err(e) => {
            tracing::warn!(code = e.code(), detail = ?e.detail(), "sign-in refused");
            record_failure(st, &e, e.email(), from).await;
            // Someone already signed in keeps their session (a forged link
            // must not sign them out); the attempt lived only in its cookie,
            // which the caller clears: nothing is read or written here.
            e.into_response()
        }
    }
}

/// Record a failed sign-in (best effort: the failure is shown either way).
/// A failure anyone can cause without an account (no ID token the provider
/// signed: a bogus callback, a forged state) is recorded at most a few
/// times a minute per address and overall, with one record a minute saying
/// a flood is on; the rest are only counted in the metrics, so strangers
/// cannot grow the audit log or hold its lock.
async fn record_failure(st: &AppState, e: &SignInError, email: Option<&str>, from: &Origin) {
    use crate::domain::limits::Verdict;
    st.metrics.sign_in_failed(e.code());
    let now = st.clock.now();
    let mut detail = serde_json::json!({ "message": e.message() });
    if !e.vouched_for() {
        let client = from
            .ip
            .parse()
            .map(crate::domain::limits::bucket_key)
            .unwrap_or_else(|_| from.ip.clone());
        match st.limits.record_failure(&client, now) {
            Verdict::Allowed => {}
            Verdict::Limited { first: true, .. } => {
                detail["flood"] = serde_json::json!(
                    "more failed sign-ins like this one are counted in the metrics, not recorded, until they slow down"
                );
            }
            Verdict::Limited { first: false, .. } => return,
        }
    }
    let email = email.unwrap_or("");
    let event = Event::new(now, kind::SIGN_IN_FAILED, outcome::FAILURE, email, from)
        .subject(email)
        .reason(e.code())
        .detail(detail);
    if let Err(err) = crate::service::audit::record(&st.db, &[event]).await {
        tracing::error!(error = %err, "cannot record the failed sign-in");
    }
}

/// How far ahead of ours the provider's clock may be.
const MAX_CLOCK_SKEW_SECS: i64 = 300;

async fn finish_sign_in(
    st: &AppState,
    pending: Option<PendingSignIn>,
    q: CallbackQuery,
    from: &Origin,
) -> Result<(Person, String, Fresh), SignInError> {
    let pending = pending.ok_or(SignInError::Attempt(AttemptError::NoAttempt))?;
    if let Some(error) = q.error {
        return Err(SignInError::ProviderSaid {
            error,
            description: q.error_description,
        });
    }
    pending
        .check(q.state.as_deref().unwrap_or(""), st.clock.now())
        .map_err(SignInError::Attempt)?;
    let code = q.code.ok_or(SignInError::ProviderSaid {
        error: "missing_code".into(),
        description: None,
    })?;

    let client = st.oidc.client().await.map_err(SignInError::Provider)?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| SignInError::Exchange(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&st.oidc.http)
        .await
        .map_err(|e| match e {
            // No answer (refused, reset, timed out): the provider is
            // unavailable, not the code refused; the person may retry.
            openidconnect::RequestTokenError::Request(e) => {
                SignInError::Provider(ProviderError::Unreachable(error_chain(&e)))
            }
            e => SignInError::Exchange(error_chain(&e)),
        })?;
    let id_token = token
        .id_token()
        .ok_or_else(|| SignInError::IdToken("the provider returned no ID token".into()))?;
    // Signature (against the provider's published keys), iss, aud, azp, exp and nonce.
    // Only asymmetric algorithms (RFC 8725 3.1): never HS* keyed with our
    // client secret, whatever the provider's discovery document lists.
    // An ID token issued in the future (beyond clock skew) is refused too:
    // the library checks only that it has not expired.
    let now = st.clock.now();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(ALLOWED_ID_TOKEN_ALGS.to_vec())
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > now + MAX_CLOCK_SKEW_SECS {
                Err(format!("issued {} s in the future", iat.timestamp() - now))
            } else {
                Ok(())
            }
        });
    let claims = match id_token.claims(&verifier, &Nonce::new(pending.nonce.clone())) {
        Ok(c) => c,
        Err(e) => {
            // An unknown key may mean the provider rotated: rediscover next time.
            st.oidc.forget().await;
            return Err(SignInError::IdToken(error_chain(&e)));
        }
    };
    // A fresh sign-in was asked for: it counts only when the ID token says
    // the provider authenticated the person just now.
    let auth_time = claims.auth_time().map(|t| t.timestamp());
    let fresh = if !pending.reauth {
        Fresh::NotAsked
    } else {
        match proven_fresh(true, auth_time, now, MAX_CLOCK_SKEW_SECS) {
            Some(at) => Fresh::Proven(at),
            None => Fresh::Unproven(match auth_time {
                None => "its ID token has no auth_time".to_string(),
                Some(at) => format!(
                    "the auth_time in its ID token is {} s from now, more than {} s",
                    now - at,
                    crate::domain::session::FRESH_AUTH_SECS
                ),
            }),
        }
    };
    let identity = VerifiedIdentity {
        issuer: claims.issuer().as_str().to_string(),
        subject: claims.subject().as_str().to_string(),
        email: claims.email().map(|e| e.as_str().to_string()),
        email_verified: claims.email_verified(),
        domain_owner_verified: claims.additional_claims().xms_edov,
        hosted_domain: claims.additional_claims().hd.clone(),
        name: default_locale(claims.name()),
        given_name: default_locale(claims.given_name()),
        family_name: default_locale(claims.family_name()),
    };
    let admitted = st
        .config
        .sign_in
        .admit(&identity)
        .map_err(SignInError::Refused)?;
    use crate::service::sessions::SignInOutcome;
    let person = match crate::service::sessions::sign_in(&st.db, &admitted, from, st.clock.now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record the sign-in");
            SignInError::Storage
        })? {
        SignInOutcome::SignedIn(p) => p,
        SignInOutcome::Disabled => {
            return Err(SignInError::Disabled {
                email: admitted.email.clone(),
            })
        }
        SignInOutcome::Held => {
            return Err(SignInError::Held {
                email: admitted.email.clone(),
            })
        }
    };
    Ok((person, pending.return_to, fresh))
}

/// Whether this sign-in proved a fresh authentication.
enum Fresh {
    NotAsked,
    Proven(i64),
    Unproven(String),
}

/// The claim's value without a language tag, as providers send it.
fn default_locale<T: std::ops::Deref<Target = String>>(
    claim: Option<&openidconnect::LocalizedClaim<T>>,
) -> Option<String> {
    claim.and_then(|c| c.get(None)).map(|v| v.to_string())
}

/// Why a sign-in failed: a stable code for logs, a sentence for the person.
#[derive(Debug)]
pub enum SignInError {
    Attempt(AttemptError),
    ProviderSaid {
        error: String,
        description: Option<String>,
    },
    Provider(ProviderError),
    Exchange(String),
    IdToken(String),
    Refused(Refusal),
    Disabled {
        email: String,
    },
    /// The address is someone's under another subject: an admin must confirm.
    Held {
        email: String,
    },
    Storage,
}

impl SignInError {
    /// Did the provider vouch for someone (a verified ID token) before this
    /// failed? Only then does it take an account to cause it.
    fn vouched_for(&self) -> bool {
        matches!(
            self,
            SignInError::Refused(_)
                | SignInError::Disabled { .. }
                | SignInError::Held { .. }
                | SignInError::Storage
        )
    }

    /// The e-mail address the failure concerns, where one is known.
    fn email(&self) -> Option<&str> {
        match self {
            SignInError::Disabled { email } | SignInError::Held { email } => Some(email),
            SignInError::Refused(r) => r.email(),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SignInError::Attempt(a) => a.code(),
            SignInError::ProviderSaid { .. } => "provider_error",
            SignInError::Provider(_) => "provider_unavailable",
            SignInError::Exchange(_) => "code_exchange_failed",
            SignInError::IdToken(_) => "id_token_invalid",
            SignInError::Refused(r) => r.code(),
            SignInError::Disabled { .. } => "person_disabled",
            SignInError::Held { .. } => "identity_held",
            SignInError::Storage => "storage_unavailable",
        }
    }

    /// Internal detail for the log (never shown to the person).
    fn detail(&self) -> String {
        match self {
            SignInError::ProviderSaid { error, description } => {
                // Attacker-controlled: bounded here, escaped by `?` where logged.
                format!("{error}: {}", description.as_deref().unwrap_or(""))
                    .chars()
                    .take(200)
                    .collect()
            }
            SignInError::Provider(e) => e.to_string(),
            SignInError::Exchange(e) | SignInError::IdToken(e) => e.clone(),
            other => other.message(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            SignInError::Attempt(_) | SignInError::ProviderSaid { .. } => StatusCode::BAD_REQUEST,
            SignInError::Provider(_) | SignInError::Exchange(_) => StatusCode::BAD_GATEWAY,
            SignInError::IdToken(_) => StatusCode::UNAUTHORIZED,
            SignInError::Refused(_) | SignInError::Disabled { .. } | SignInError::Held { .. } => {
                StatusCode::FORBIDDEN
            }
            SignInError::Storage => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            SignInError::Attempt(AttemptError::Expired) => "Sign-in expired",
            SignInError::Refused(_) => "Not allowed to sign in",
            SignInError::Disabled { .. } => "Account disabled",
            SignInError::Held { .. } => "Waiting for an admin",
            SignInError::Provider(_) => "Identity provider unavailable",
            _ => "Sign-in failed",
        }
    }

    fn message(&self) -> String {
        match self {
            SignInError::Attempt(a) => a.to_string(),
            SignInError::ProviderSaid { error, .. } if error == "access_denied" => {
                "Sign-in was cancelled at the identity provider.".into()
            }
            SignInError::ProviderSaid { .. } => {
                "The identity provider reported an error and did not sign you in.".into()
            }
            SignInError::Provider(ProviderError::NotConfigured(_)) => {
                "Sign-in is not configured on this dashboard. Ask an administrator.".into()
            }
            SignInError::Provider(_) => {
                "The identity provider could not be reached. Please try again in a moment.".into()
            }
            SignInError::Exchange(_) => {
                "The identity provider did not accept this sign-in (the link may have been used already).".into()
            }
            SignInError::IdToken(_) => {
                "The identity provider's answer could not be verified, so you were not signed in.".into()
            }
            SignInError::Refused(r) => r.to_string(),
            SignInError::Disabled { email } => {
                format!("The account {email} has been disabled. Ask an administrator if this is a mistake.")
            }
            SignInError::Held { email } => {
                format!("{email} already belongs to someone here, under another account at your identity provider. An admin must confirm that this new account is theirs before it can sign in; they have been shown this attempt.")
            }
            SignInError::Storage => {
                "The dashboard could not save your sign-in right now. Please try again in a moment.".into()
            }
        }
    }
}

impl std::fmt::Display for SignInError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl IntoResponse for SignInError {
    fn into_response(self) -> Response {
        error_page(ErrorPage {
            status: self.status(),
            title: self.title(),
            message: &self.message(),
            code: self.code(),
            action: Some(("/auth/login", "Try signing in again")),
        })
    }
}

/// POST /auth/logout: the server-side session is deleted, not just the cookie.
pub async fn logout(
    State(st): State<AppState>,
    RequestOrigin(from): RequestOrigin,
    session: Session,
) -> Response {
    if let Ok(Some(person)) = current_person(&st, &session).await {
        let event = Actor::person(&person.email, from)
            .did(st.clock.now(), kind::SIGN_OUT)
            .subject(&person.email);
        if let Err(e) = crate::service::audit::record(&st.db, &[event]).await {
            tracing::error!(error = %e, "cannot record the sign-out");
        }
    }
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot delete the session");
    }
    Redirect::to("/").into_response()
}

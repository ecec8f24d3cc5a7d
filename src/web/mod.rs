//! The axum side: sign-in, the key set, health, security middleware.

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod connect;
pub mod jwks;
pub mod launch;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod security;
pub mod site_files;
pub mod state;
pub mod update;

pub use state::{AppState, Services};

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::domain::audit::Origin;

/// Where a request came from, for the audit record: the peer address, the
/// user agent (bounded) and the request id.
pub struct RequestOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestOrigin(origin_of(parts)))
    }
}

/// Note where the request came from (see [`origin_of`]) in its extensions,
/// where the pages' server functions read it.
pub async fn note_origin(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (mut parts, body) = req.into_parts();
    let origin = origin_of(&parts);
    parts.extensions.insert(origin);
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

pub fn origin_of(parts: &Parts) -> Origin {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    Origin {
        ip: parts
            .extensions
            .get::<limits::ClientIp>()
            .map(|c| c.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            })
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into()),
        user_agent: header("user-agent").chars().take(500).collect(),
        request_id: request_id(&header("x-request-id")),
    }
}

/// The request id for the record: ours (a UUID), or a caller's only when it
/// is short and plain.
fn request_id(given: &str) -> String {
    if given.len() <= 64 && given.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        given.to_string()
    } else {
        "invalid".to_string()
    }
}

/// Routes served by plain handlers (the Leptos app adds its pages beside them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/logout", post(auth::logout))
        .route("/launch", post(launch::launch))
        .route("/connect", get(connect::ask).post(connect::decide))
        .route("/audit/export", get(audit::export))
        .route("/admin/sites/export", get(admin::export_sites))
        .route("/admin/fleet.csv", get(admin::export_fleet))
        .route("/admin/grants.csv", get(admin::export_grants))
        .route(
            "/admin/people/offboarding.csv",
            get(admin::export_offboarding),
        )
}

/// Routes outside the session layer: they never read or set a cookie, so
/// shared caches may keep their answers.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .route("/.well-known/openid-configuration", get(jwks::discovery))
        .route("/connector/connect", post(connect::redeem))
        .route("/connector/update.json", get(update::metadata))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
}

/// The hydrate bundle and the styles (`/pkg`): the release binary's own
/// ([`site_files`]) or read from files, sent brotli- or gzip-encoded when a
/// precompressed copy lies beside the file (`scripts/bench` and release
/// builds make them) and the browser accepts it. The names carry no
/// content hash, so browsers revalidate on each use.
pub fn assets(leptos: &leptos::prelude::LeptosOptions) -> (String, Router) {
    use axum::http::{header, HeaderValue};
    use tower_http::services::ServeDir;
    use tower_http::set_header::SetResponseHeaderLayer;
    let pkg = leptos.site_pkg_dir.to_string();
    if site_files::embedded() {
        let prefix = format!("/{pkg}");
        let files = Router::new().fallback(move |req: axum::extract::Request| {
            // Nested: the path arrives without the prefix.
            let path = format!("{prefix}{}", req.uri().path());
            let answer = site_files::answer(req.method(), &path, req.headers());
            async move { answer.unwrap_or_else(|| StatusCode::NOT_FOUND.into_response()) }
        });
        return (format!("/{pkg}"), files);
    }
    let dir = std::path::Path::new(&*leptos.site_root).join(&pkg);
    let files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::VARY,
            HeaderValue::from_static("accept-encoding"),
        ))
        .service(ServeDir::new(dir).precompressed_br().precompressed_gzip());
    (format!("/{pkg}"), Router::new().fallback_service(files))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The process can serve: its database answers within a bound.
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), st.ping()).await {
        Ok(Ok(())) => {
            // The database answers; can this instance sign, and which stored
            // keys does it refuse to publish?
            let keys = st.keys.snapshot();
            let untrusted = serde_json::to_value(&keys.untrusted).unwrap_or_default();
            match &keys.signer_problem {
                Some(problem) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({
                        "status": "unavailable",
                        "error": { "code": "signing_key_unavailable", "message": problem },
                        "untrusted_keys": untrusted,
                    })),
                ),
                None => (
                    StatusCode::OK,
                    Json(serde_json::json!({ "status": "ready", "untrusted_keys": untrusted })),
                ),
            }
        }
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_string(),
            };
            tracing::warn!(error = %why, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "error": { "code": "database_unreachable", "message": "the database is not reachable" }
                })),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::request_id;

    #[test]
    fn only_plain_request_ids_reach_the_record() {
        assert_eq!(
            request_id("0b9e1c2a-5f7e-4c1b-9d1e-2f3a4b5c6d7e"),
            "0b9e1c2a-5f7e-4c1b-9d1e-2f3a4b5c6d7e"
        );
        assert_eq!(request_id("x\r\nInjected: 1"), "invalid");
        assert_eq!(request_id(&"a".repeat(65)), "invalid");
    }
}

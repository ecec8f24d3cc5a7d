//! The axum side: sign-in, the key set, health, security middleware.

pub mod auth;
pub mod jwks;
pub mod launch;
pub mod oidc;
pub mod pages;
pub mod security;

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::server::AppState;

/// Routes served by plain handlers (the Leptos app adds its pages beside them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/logout", post(auth::logout))
        .route("/launch", post(launch::launch))
}

/// Routes outside the session layer: they never read or set a cookie, so
/// shared caches may keep their answers.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .route("/.well-known/openid-configuration", get(jwks::discovery))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The process can serve: its database answers within a bound.
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), st.db.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
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

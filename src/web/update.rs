//! The connector's update server: every connected site's plugin asks
//! `GET /connector/update.json` which version the dashboard ships, and
//! fetches the package (the zip the build makes beside the pages, at
//! `/agency-sso-connector.zip`) only when it is newer, checking its SHA-256
//! against the one published here before WordPress installs it.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::domain::fleet::{changelog_of, update_metadata};

/// The plugin's readme, as this dashboard ships it (its changelog is published).
const README: &str = include_str!("../../wordpress/agency-sso-connector/readme.txt");

/// The package's file name under the site root.
pub const PACKAGE: &str = "agency-sso-connector.zip";

/// `GET /connector/update.json`
pub async fn metadata(State(st): State<AppState>) -> Response {
    let bytes = match super::site_files::read(&st.leptos.site_root, PACKAGE).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(file = PACKAGE, site_root = %st.leptos.site_root, error = %e, "the connector package is missing");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                axum::Json(serde_json::json!({
                    "error": "no_package",
                    "message": "This dashboard has no connector package to offer (it was built without one).",
                })),
            )
                .into_response();
        }
    };
    let sha256 = crate::domain::audit::to_hex(&Sha256::digest(&bytes).into());
    let package = format!("{}/{PACKAGE}", st.config.public_url);
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        update_metadata(&package, &sha256, &changelog_of(README)).to_string(),
    )
        .into_response()
}

//! POST /launch: a click on a site in the dashboard. Cross-site requests
//! never get here (`security::same_origin_only`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::current_person;
use super::pages::{error_page, ErrorPage};
use crate::launch::{launch_site, Launched, Origin};
use crate::server::AppState;

#[derive(Deserialize)]
pub struct LaunchForm {
    #[serde(default)]
    site: String,
    /// Optional deep link: a path on the site.
    #[serde(default)]
    path: String,
}

pub async fn launch(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<LaunchForm>,
) -> Response {
    let person = match current_person(&st, &session).await {
        Ok(Some(p)) => p,
        Ok(None) => return error_page(ErrorPage {
            status: StatusCode::UNAUTHORIZED,
            title: "Please sign in again",
            message:
                "Your session has ended, so the site was not opened. Sign in and click it again.",
            code: "not_signed_in",
            action: Some(("/auth/login", "Sign in")),
        }),
        Err(e) => {
            tracing::error!(error = %e, "launch: cannot read the session");
            return unavailable();
        }
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let from = Origin {
        ip: peer.ip().to_string(),
        user_agent: header("user-agent").chars().take(500).collect(),
        request_id: request_id(&header("x-request-id")),
    };
    match launch_site(&st, &person, form.site.trim(), &form.path, &from).await {
        Ok(Launched::Go { location, .. }) => match HeaderValue::from_str(&location) {
            Ok(loc) => {
                let mut res = StatusCode::SEE_OTHER.into_response();
                res.headers_mut().insert(header::LOCATION, loc);
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res
            }
            Err(_) => {
                tracing::error!("launch: the login URL is not a valid header value");
                unavailable()
            }
        },
        Ok(Launched::Refused(why)) => {
            let message = why.message();
            error_page(ErrorPage {
                status: StatusCode::FORBIDDEN,
                title: "This site cannot be opened",
                message: &message,
                code: why.code(),
                action: None,
            })
        }
        Err(e) => {
            tracing::error!(error = %e, "launch failed; no token was issued");
            unavailable()
        }
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

fn unavailable() -> Response {
    error_page(ErrorPage {
        status: StatusCode::SERVICE_UNAVAILABLE,
        title: "The site could not be opened",
        message: "The dashboard could not record this launch, so no sign-in was sent to the site. Please try again in a moment.",
        code: "launch_unavailable",
        action: None,
    })
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

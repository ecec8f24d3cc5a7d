//! POST /launch: a click on a site in the dashboard. Cross-site requests
//! never get here (`security::same_origin_only`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

use super::limits::{refused, Scope};
use super::pages::{error_page, ErrorPage};
use super::AppState;
use super::RequestOrigin;
use crate::domain::limits::Verdict;
use crate::domain::session::SignedIn;
use crate::service::launch::{launch_site, Launched, LiveSession, SessionFacts};
use crate::service::sessions::DbSessionStore;
use crate::service::sessions::{signed_in, signed_in_with, CurrentError};

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
    RequestOrigin(from): RequestOrigin,
    session: Session,
    Form(form): Form<LaunchForm>,
) -> Response {
    let signed_out = || {
        error_page(ErrorPage {
            status: StatusCode::UNAUTHORIZED,
            title: "Please sign in again",
            message:
                "Your session has ended, so the site was not opened. Sign in and click it again.",
            code: "not_signed_in",
            action: Some(("/auth/login", "Sign in")),
        })
    };
    let site_id = form.site.trim();
    let (who, live, known) = match signed_in_with_facts(&st, &session, site_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return signed_out(),
        Err(e) => {
            tracing::error!(error = %e, "launch: cannot read the session");
            return unavailable();
        }
    };
    if let Verdict::Limited {
        retry_after_secs,
        first,
    } = st
        .limits
        .check(Scope::LaunchPerPerson, &who.person_id, st.clock.now())
    {
        let email = crate::service::people::find(&st.db, &who.person_id)
            .await
            .ok()
            .flatten()
            .map(|p| p.email)
            .unwrap_or_default();
        return refused(
            &st,
            Scope::LaunchPerPerson,
            &email,
            &from,
            retry_after_secs,
            first,
        )
        .await;
    }
    match launch_site(
        &st,
        &who.person_id,
        site_id,
        &form.path,
        &from,
        &live,
        known,
    )
    .await
    {
        Ok(Launched::SignedOut) => {
            let _ = session.flush().await;
            signed_out()
        }
        Ok(Launched::Go { location, .. }) => match HeaderValue::from_str(&location) {
            Ok(loc) => {
                st.metrics.launched();
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
            st.metrics.refused(why.code());
            let message = why.message();
            error_page(ErrorPage {
                status: StatusCode::FORBIDDEN,
                title: "This site cannot be opened",
                message: &message,
                code: why.code(),
                action: None,
            })
        }
        Err(crate::service::launch::LaunchError::NoSigner) => {
            tracing::error!(
                problem = st
                    .keys
                    .snapshot()
                    .signer_problem
                    .as_deref()
                    .unwrap_or("none"),
                "launch refused: this instance has no signing key it can use"
            );
            error_page(ErrorPage {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "The site could not be opened",
                message: "This dashboard server cannot sign right now (its signing key cannot be opened here), so no sign-in was sent to the site. Try again in a moment; if it persists, tell an admin.",
                code: "signing_key_unavailable",
                action: None,
            })
        }
        Err(e) => {
            tracing::error!(error = %e, "launch failed; no token was issued");
            unavailable()
        }
    }
}

/// The signed-in person, their live session, and the launch's facts read
/// (or kept from their last launch of the site) with that session (`None`
/// when they must be read again: they name another person).
async fn signed_in_with_facts(
    st: &AppState,
    session: &Session,
    site_id: &str,
) -> Result<Option<(SignedIn, LiveSession, Option<SessionFacts>)>, CurrentError> {
    let read = match session.id() {
        Some(id) => {
            let now = DbSessionStore::now();
            crate::service::launch::session_facts(st, &id, site_id, now)
                .await
                .map_err(|e| CurrentError(e.to_string()))?
                .map(|read| (id, read))
        }
        None => None,
    };
    let Some((id, (live, read))) = read else {
        // No live session (the cookie is then cleared by the session layer's
        // own read), unless one began meanwhile: its facts are read then.
        let who = signed_in(st, session).await?;
        return Ok(who
            .zip(session.id())
            .map(|(who, id)| (who, LiveSession::of(&id, DbSessionStore::now()), None)));
    };
    let Some(who) = signed_in_with(st, session, id, &read.record, read.expires_at).await? else {
        return Ok(None);
    };
    // The facts are the person's the session row names; anything else is read again.
    let known = read
        .facts
        .person
        .as_ref()
        .is_some_and(|p| p.id == who.person_id)
        .then_some(read);
    Ok(Some((who, live, known)))
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

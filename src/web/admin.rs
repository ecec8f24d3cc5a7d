//! The edge of the admin console: every server function whose endpoint
//! starts with `admin_` is refused to anyone but a signed-in admin before
//! its arguments are even read, and a staff member's attempt is recorded.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::AppState;
use crate::domain::audit::Origin;
use crate::shared::errors::AdminError;

/// Where the admin server functions live.
pub const ADMIN_API_PREFIX: &str = "/api/admin_";

pub async fn admin_guard(
    State(st): State<AppState>,
    session: Session,
    req: Request<Body>,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if !path.starts_with(ADMIN_API_PREFIX) {
        return next.run(req).await;
    }
    let function = path.trim_start_matches("/api/").to_string();
    let refuse = |e: AdminError| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
        let body = serde_json::to_string(&e).unwrap_or_default();
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    match crate::service::sessions::current_person(&st, &session).await {
        Ok(Some(p)) if p.is_admin => next.run(req).await,
        Ok(Some(p)) => {
            let (parts, _) = req.into_parts();
            record_refusal(&st, &p.email, super::origin_of(&parts), &function).await;
            refuse(AdminError::Forbidden)
        }
        Ok(None) => refuse(AdminError::SignIn),
        Err(e) => {
            tracing::error!(error = %e, "cannot read who is signed in");
            refuse(AdminError::Unavailable)
        }
    }
}

/// The signed-in admin of this request, or the answer for anyone else
/// (a staff member's attempt at `function` is recorded and refused with
/// `refusal`).
async fn signed_in_admin(
    st: &AppState,
    session: &Session,
    from: Origin,
    function: &str,
    refusal: &'static str,
) -> Result<crate::domain::people::Person, Response> {
    match crate::service::sessions::current_person(st, session).await {
        Ok(Some(p)) if p.is_admin => Ok(p),
        Ok(Some(p)) => {
            record_refusal(st, &p.email, from, function).await;
            Err((StatusCode::FORBIDDEN, refusal).into_response())
        }
        Ok(None) => Err((StatusCode::UNAUTHORIZED, "Please sign in.").into_response()),
        Err(_) => Err(unavailable()),
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unreachable.",
    )
        .into_response()
}

/// Record that a signed-in person who is not an admin called an admin function.
async fn record_refusal(st: &AppState, email: &str, from: Origin, function: &str) {
    crate::service::audit::record_admin_refusal(&st.db, email, from, function, st.clock.now())
        .await;
}

#[derive(serde::Deserialize, Default)]
pub struct ExportQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    enabled: String,
}

/// GET /admin/sites/export: the sites matching the list's filters as CSV
/// (secrets never included), for admins.
pub async fn export_sites(
    State(st): State<AppState>,
    session: Session,
    super::RequestOrigin(from): super::RequestOrigin,
    axum::extract::Query(q): axum::extract::Query<ExportQuery>,
) -> Response {
    if let Err(answer) = signed_in_admin(
        &st,
        &session,
        from,
        "export_sites",
        "Only admins can export the sites.",
    )
    .await
    {
        return answer;
    }
    let query = crate::service::sites::SiteQuery {
        text: q.q,
        client: q.client,
        profile: q.profile,
        enabled: q.enabled,
    };
    match crate::service::sites::export_sites(&st.db, &query).await {
        Ok(csv) => csv_download("sites.csv", csv),
        Err(e) => {
            tracing::error!(error = %e, "cannot export the sites");
            unavailable()
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct PersonQuery {
    #[serde(default)]
    id: String,
}

/// GET /admin/people/offboarding.csv?id=…: a person's offboarding
/// checklist as CSV (each site: what was asked, what the site reported,
/// what is pending or must be done by hand), for admins.
pub async fn export_offboarding(
    State(st): State<AppState>,
    session: Session,
    super::RequestOrigin(from): super::RequestOrigin,
    axum::extract::Query(q): axum::extract::Query<PersonQuery>,
) -> Response {
    if let Err(answer) = signed_in_admin(
        &st,
        &session,
        from,
        "export_offboarding",
        "Only admins can export a checklist.",
    )
    .await
    {
        return answer;
    }
    match crate::service::messages::checklist_of(&st.db, &q.id).await {
        Ok(None) => (StatusCode::NOT_FOUND, "There is no such person.").into_response(),
        Ok(Some((leaver, rows))) => csv_download(
            &format!(
                "offboarding-{}.csv",
                leaver.email.replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '@' && c != '.',
                    "-"
                )
            ),
            crate::service::messages::checklist_csv(&rows),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot export a checklist");
            unavailable()
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct FleetQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
}

/// GET /admin/fleet.csv: the fleet as the page filters it, every row.
pub async fn export_fleet(
    State(st): State<AppState>,
    session: Session,
    super::RequestOrigin(from): super::RequestOrigin,
    axum::extract::Query(q): axum::extract::Query<FleetQuery>,
) -> Response {
    if let Err(answer) = signed_in_admin(
        &st,
        &session,
        from,
        "export_fleet",
        "Only admins can export the fleet.",
    )
    .await
    {
        return answer;
    }
    let entries = match crate::service::fleet::fleet(&st.core).await {
        Ok(e) => crate::service::fleet::matching(e, &q.q, &q.state),
        Err(e) => {
            tracing::error!(error = %e, "cannot export the fleet");
            return unavailable();
        }
    };
    csv_download("fleet.csv", crate::service::fleet::fleet_csv(&entries))
}

/// A CSV file to download under `name` (a name of plain characters).
fn csv_download(name: &str, body: String) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize, Default)]
pub struct GrantsQuery {
    #[serde(default)]
    site: String,
}

/// GET /admin/grants.csv[?site=ID]: every person's grant (or one site's)
/// in the grants import's columns, for admins.
pub async fn export_grants(
    State(st): State<AppState>,
    session: Session,
    super::RequestOrigin(from): super::RequestOrigin,
    axum::extract::Query(q): axum::extract::Query<GrantsQuery>,
) -> Response {
    if let Err(answer) = signed_in_admin(
        &st,
        &session,
        from,
        "export_grants",
        "Only admins can export the grants.",
    )
    .await
    {
        return answer;
    }
    let site = (!q.site.is_empty()).then_some(q.site.as_str());
    match crate::service::access::export_grants(&st.db, site).await {
        Ok(csv) => csv_download("grants.csv", csv),
        Err(crate::service::sites::ManageError::UnknownSite(_)) => {
            (StatusCode::NOT_FOUND, "There is no such site.").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot export the grants");
            unavailable()
        }
    }
}

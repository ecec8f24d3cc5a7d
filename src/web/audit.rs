//! GET /audit/export: a filtered view of the audit log as CSV or JSON
//! Lines, streamed a page at a time (constant memory). Admins export any
//! view; anyone exports their own records (`mine=1`).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::AppState;
use crate::service::audit::filter_for;
use crate::service::audit::{export_page, Format};
use crate::service::sessions::current_person;
use crate::shared::query::AuditQuery;

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    mine: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

pub async fn export(
    State(st): State<AppState>,
    session: Session,
    Query(q): Query<ExportQuery>,
) -> Response {
    let viewer = match current_person(&st, &session).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "Please sign in.")
        }
        Err(e) => {
            tracing::error!(error = %e, "export: cannot read the session");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unreachable",
                "The dashboard cannot reach its database right now.",
            );
        }
    };
    let mine = q.mine == "1";
    if !mine && !viewer.is_admin {
        return json_error(
            StatusCode::FORBIDDEN,
            "admin_only",
            "Only admins can export the whole audit log; export your own activity instead.",
        );
    }
    let Some(format) = Format::parse(if q.format.is_empty() {
        "csv"
    } else {
        &q.format
    }) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_format",
            "format: csv or jsonl",
        );
    };
    let aq = AuditQuery {
        person: q.person.trim().to_string(),
        site: q.site.trim().to_string(),
        client: q.client.trim().to_string(),
        event: q.event.trim().to_string(),
        outcome: q.outcome.trim().to_string(),
        since: q.since.trim().to_string(),
        until: q.until.trim().to_string(),
        before: None,
    };
    let filter = match filter_for(&st.db, &aq, &viewer, mine).await {
        Ok(f) => f,
        Err(problem) => return json_error(StatusCode::BAD_REQUEST, "bad_filter", &problem),
    };
    let db = st.db.clone();
    let for_subject = mine.then(|| viewer.email.clone());
    // The header, then one page of records at a time.
    let first = Some(Ok::<_, std::io::Error>(format.header().to_string()))
        .filter(|_| !format.header().is_empty());
    let pages = futures_util::stream::unfold(Some(None::<i64>), move |cursor| {
        let (db, filter, for_subject) = (db.clone(), filter.clone(), for_subject.clone());
        async move {
            let before = cursor?;
            match export_page(&db, &filter, format, before, for_subject.as_deref()).await {
                Ok(Some((chunk, last))) => Some((Ok(chunk), Some(Some(last)))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped: cannot read the audit log");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(
        futures_util::stream::iter(first),
        pages,
    ));
    let name = format!(
        "audit-{}.{}",
        time::OffsetDateTime::from_unix_timestamp(st.clock.now())
            .map(|t| t.date().to_string())
            .unwrap_or_default(),
        format.extension()
    );
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

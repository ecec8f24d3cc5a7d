//! GET /audit/export: a filtered view of the audit log as CSV or JSON
//! Lines, streamed a page at a time (constant memory). Admins export any
//! view; anyone exports their own records (`mine=1`).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::current_person;
use crate::app::audit::AuditQuery;
use crate::audit::{export_page, Format};
use crate::domain::people::Person;
use crate::server::AppState;
use crate::store::audit::Filter;

/// The store's filter for a page's query, as `viewer` may see it: their
/// own records only unless they are an admin looking at everyone's.
/// Err: what is wrong with the filter, in words.
pub async fn filter_for(
    st: &AppState,
    q: &AuditQuery,
    viewer: &Person,
    mine: bool,
) -> Result<Filter, String> {
    let day = |s: &str, what: &str| -> Result<Option<i64>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(s, &fmt)
            .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
            .map_err(|_| format!("{what}: {s:?} is not a date (YYYY-MM-DD)"))
    };
    let site_id = if mine || q.site.is_empty() {
        String::new()
    } else {
        match crate::sites::find_site(&st.db, &q.site).await {
            Ok(s) => s.id,
            Err(crate::sites::ManageError::UnknownSite(_)) => {
                return Err(format!("Site: there is no site {:?}", q.site))
            }
            Err(e) => return Err(format!("Site: {e}")),
        }
    };
    let known = |v: &str, all: &[&str], what: &str| {
        if v.is_empty() || all.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(format!("{what}: {v:?} is not one of {}", all.join(", ")))
        }
    };
    Ok(Filter {
        person: if mine {
            viewer.email.clone()
        } else {
            q.person.clone()
        },
        site_id,
        client: if mine {
            String::new()
        } else {
            q.client.clone()
        },
        kind: known(&q.event, &crate::domain::audit::kind::ALL, "Event")?,
        outcome: known(&q.outcome, &crate::domain::audit::outcome::ALL, "Outcome")?,
        since: day(&q.since, "From")?,
        // The "to" day is included: up to the next midnight.
        until: day(&q.until, "To")?.map(|t| t + 86_400),
    })
}

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
    let filter = match filter_for(&st, &aq, &viewer, mine).await {
        Ok(f) => f,
        Err(problem) => return json_error(StatusCode::BAD_REQUEST, "bad_filter", &problem),
    };
    let db = st.db.clone();
    // The header, then one page of records at a time.
    let first = Some(Ok::<_, std::io::Error>(format.header().to_string()))
        .filter(|_| !format.header().is_empty());
    let pages = futures_util::stream::unfold(Some(None::<i64>), move |cursor| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            let before = cursor?;
            match export_page(&db, &filter, format, before).await {
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

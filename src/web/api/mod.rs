//! The admin API, `/api/v1`: JSON over HTTPS for scripts and other
//! systems, with scoped tokens (`Authorization: Bearer asso_…`), errors as
//! problem details (RFC 9457) carrying the console's stable codes, and an
//! `Idempotency-Key` on writes. Every route is one [`Endpoint`] in the
//! table of [`resources`]: the router and the OpenAPI document are both
//! made from that table, so the document cannot drift from what is served.
//! Each call goes through the same services as the console and leaves the
//! same records, as the token (its name and its maker).

pub mod openapi;
pub mod resources;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, MethodFilter, MethodRouter};
use axum::Router;
use serde_json::{json, Value};

use super::AppState;
use crate::domain::api::{self, Refusal, Scope, Token};
use crate::domain::audit::{kind, outcome, Actor, Event, Origin};
use crate::domain::limits::Verdict;

/// Where the API lives.
pub const BASE: &str = "/api/v1";

/// Largest request body the API reads (a site with its notes is far less).
const MAX_BODY: usize = 256 * 1024;

/// How long a claimed Idempotency-Key waits for its first request to
/// finish before another may take it over (the first one crashed).
const STALE_CLAIM_SECS: i64 = 60;

/// An error as the API tells it: RFC 9457 problem details, with the stable
/// `code` the console and the command line use.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub code: String,
    pub detail: String,
    /// Which fields were wrong, for `invalid`.
    pub errors: Vec<(String, String)>,
}

impl Problem {
    pub fn new(status: u16, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(404, "not_found", format!("there is no {what}"))
    }

    pub fn unavailable(e: &dyn std::fmt::Display) -> Problem {
        tracing::error!(error = %e, "an API call failed in the database");
        Problem::new(
            503,
            "unavailable",
            "the dashboard cannot reach its database right now: try again in a moment",
        )
    }

    fn title(&self) -> &'static str {
        match self.status {
            400 => "Bad request",
            401 => "Not authenticated",
            403 => "Not allowed",
            404 => "Not found",
            409 => "Conflict",
            422 => "Invalid",
            429 => "Too many requests",
            503 => "Unavailable",
            _ => "Error",
        }
    }

    pub fn body(&self) -> Value {
        let mut v = json!({
            "type": format!("{BASE}/docs#problem-{}", self.code),
            "title": self.title(),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        });
        if !self.errors.is_empty() {
            v["errors"] = self
                .errors
                .iter()
                .map(|(f, m)| json!({ "field": f, "message": m }))
                .collect();
        }
        v
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Problem {
        Problem::unavailable(&e)
    }
}

/// What a handler answers: a status and a JSON body.
pub type Answer = Result<(StatusCode, Value), Problem>;

/// One call, as a handler sees it.
pub struct Call {
    pub st: AppState,
    pub token: Token,
    /// The token, as the records name it.
    pub by: Actor,
    pub params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub body: Value,
    pub now: i64,
}

impl Call {
    /// A path parameter (always there: the route has it).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn query(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or("")
    }

    /// The body read as `T`, or a problem naming what is wrong.
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_value(self.body.clone()).map_err(|e| {
            Problem::new(
                422,
                "invalid",
                format!("the request body does not fit: {e}"),
            )
        })
    }
}

pub type Handler = fn(Call) -> Pin<Box<dyn Future<Output = Answer> + Send>>;

/// One route of the API.
pub struct Endpoint {
    pub method: Method,
    /// Below [`BASE`], with `{name}` parameters (as OpenAPI writes them).
    pub path: &'static str,
    pub scope: Scope,
    pub summary: &'static str,
    pub description: &'static str,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// The JSON Schema of the request body, for writes that take one.
    pub request: Option<fn() -> Value>,
    /// The JSON Schema of a successful answer, and its status.
    pub response: fn() -> Value,
    pub status: u16,
    pub handler: Handler,
}

impl Endpoint {
    fn writes(&self) -> bool {
        self.method != Method::GET
    }
}

/// The API's routes: every endpoint of the table, the document and its page.
pub fn routes() -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for (i, e) in resources::endpoints().iter().enumerate() {
        let filter = MethodFilter::try_from(e.method.clone()).expect("a plain method");
        let handler = move |State(st): State<AppState>, req: Request| dispatch(st, i, req);
        let route = by_path.remove(e.path).unwrap_or_default();
        by_path.insert(e.path, route.on(filter, handler));
    }
    let mut router = Router::new()
        .route(
            &format!("{BASE}/openapi.json"),
            axum::routing::get(openapi::document),
        )
        .route(&format!("{BASE}/docs"), axum::routing::get(openapi::page));
    for (path, route) in by_path {
        router = router.route(&format!("{BASE}{path}"), route);
    }
    router.route(&format!("{BASE}/{{*rest}}"), any(no_route))
}

async fn no_route(req: Request) -> Response {
    problem(&Problem::new(
        404,
        "no_route",
        format!(
            "{} {} is not a route of the API: see {BASE}/docs",
            req.method(),
            req.uri().path()
        ),
    ))
}

fn problem(p: &Problem) -> Response {
    let mut res = (
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        p.body().to_string(),
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if p.status == 401 {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"agency-sso\""),
        );
    }
    res
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// One call: the token, its scope and rate, the Idempotency-Key, the
/// handler, and the record of what no service recorded.
async fn dispatch(st: AppState, index: usize, req: Request) -> Response {
    let e = &resources::endpoints()[index];
    let now = st.clock.now();
    let (mut parts, body) = req.into_parts();
    let origin = super::origin_of(&parts);
    let params: HashMap<String, String> =
        match axum::extract::RawPathParams::from_request_parts(&mut parts, &st).await {
            Ok(p) => p
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Err(_) => HashMap::new(),
        };
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();

    // The token.
    let presented = bearer(&parts.headers);
    let token =
        match crate::service::api_tokens::authenticate(&st.db, presented, Some(e.scope), now).await
        {
            Err(err) => return problem(&Problem::unavailable(&err)),
            Ok(Ok(t)) => t,
            Ok(Err((known, refusal))) => {
                return refuse(&st, known.as_ref(), refusal, &origin, &parts, now).await;
            }
        };
    let by = Actor::person(&api::actor_name(&token.name, &token.created_by), origin);
    if let Verdict::Limited {
        retry_after_secs,
        first,
    } = st.limits.api_call(&token.id, now)
    {
        if first {
            record(&st, &by, &parts, outcome::REFUSED, "rate_limited", now).await;
        }
        let mut res = problem(&Problem::new(
            429,
            "rate_limited",
            "this token made too many calls: wait and try again",
        ));
        if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }

    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return problem(&Problem::new(
                413,
                "body_too_large",
                format!("the request body is larger than {} KiB", MAX_BODY / 1024),
            ))
        }
    };
    let body = match read_json(&bytes) {
        Ok(v) => v,
        Err(p) => return problem(&p),
    };

    // A write under an Idempotency-Key acts once.
    let key = idempotency_key(&parts.headers);
    let kept_key = match (&key, e.writes()) {
        (Some(Err(())), _) => {
            return problem(&Problem::new(
                400,
                "idempotency_key_invalid",
                "Idempotency-Key: 1 to 255 visible ASCII characters",
            ))
        }
        (Some(Ok(k)), true) => {
            let fingerprint = api::request_hash(parts.method.as_str(), parts.uri.path(), &bytes);
            match hold_key(&st, &token, k, &fingerprint, now).await {
                Ok(None) => Some(k.clone()),
                Ok(Some(answer)) => return answer,
                Err(err) => return problem(&Problem::unavailable(&err)),
            }
        }
        _ => None,
    };

    let call = Call {
        st: st.clone(),
        token: token.clone(),
        by: by.clone(),
        params,
        query,
        body,
        now,
    };
    let answer = (e.handler)(call).await;
    let (status, text) = match &answer {
        Ok((status, v)) => (*status, v.to_string()),
        Err(p) => (
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            p.body().to_string(),
        ),
    };
    if let Some(k) = &kept_key {
        let kept = if status.is_server_error() {
            crate::service::api_tokens::release(&st.db, &token.id, k).await
        } else {
            crate::service::api_tokens::keep(&st.db, &token.id, k, status.as_u16(), &text).await
        };
        if let Err(err) = kept {
            tracing::error!(error = %err, "cannot keep an answer under its Idempotency-Key");
        }
    }
    // Writes that acted are recorded by the services themselves; reads and
    // refusals are recorded here (reading the audit log is not: it would
    // grow by its own reading).
    match &answer {
        Ok(_) if e.writes() || e.scope == Scope::AuditRead => {}
        Ok(_) => record(&st, &by, &parts, outcome::SUCCESS, "", now).await,
        Err(p) if p.status < 500 => record(&st, &by, &parts, outcome::REFUSED, &p.code, now).await,
        Err(_) => {}
    }
    match answer {
        Ok((status, _)) => json_response(status, text),
        Err(p) => problem(&p),
    }
}

/// The token of an `Authorization: Bearer …` header, or "".
fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or("")
        .trim()
}

fn idempotency_key(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let v = headers.get("idempotency-key")?;
    Some(match v.to_str() {
        Ok(k) if api::check_idempotency_key(k) => Ok(k.to_string()),
        _ => Err(()),
    })
}

fn read_json(bytes: &Bytes) -> Result<Value, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            400,
            "bad_json",
            format!("the request body is not JSON: {e}"),
        )
    })
}

/// Claim `key` for this request: `None` when claimed (go on), or the
/// answer to send instead (the kept answer of the first request, or why not).
async fn hold_key(
    st: &AppState,
    token: &Token,
    key: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Option<Response>, sqlx::Error> {
    use crate::service::api_tokens as keys;
    if keys::claim(&st.db, &token.id, key, fingerprint, now, STALE_CLAIM_SECS).await? {
        return Ok(None);
    }
    let Some(kept) = keys::kept(&st.db, &token.id, key).await? else {
        // Released meanwhile: the first request failed; this one may act.
        return Ok(
            (!keys::claim(&st.db, &token.id, key, fingerprint, now, STALE_CLAIM_SECS).await?)
                .then(|| {
                    problem(&Problem::new(
                        409,
                        "request_in_progress",
                        "a request with this Idempotency-Key is being carried out: try again in a moment",
                    ))
                }),
        );
    };
    if kept.request_hash != fingerprint {
        return Ok(Some(problem(&Problem::new(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request: use a new key for a new request",
        ))));
    }
    if kept.status == 0 {
        return Ok(Some(problem(&Problem::new(
            409,
            "request_in_progress",
            "a request with this Idempotency-Key is being carried out: try again in a moment",
        ))));
    }
    let status = StatusCode::from_u16(kept.status as u16).unwrap_or(StatusCode::OK);
    let mut res = if status.is_success() {
        json_response(status, kept.body)
    } else {
        let mut r = json_response(status, kept.body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        r
    };
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(res))
}

/// Refuse a token: recorded when it is one of ours (revoked, expired, its
/// maker no longer an admin, a scope it lacks); anyone's guesses are only
/// counted against their address.
async fn refuse(
    st: &AppState,
    known: Option<&Token>,
    refusal: Refusal,
    origin: &Origin,
    parts: &axum::http::request::Parts,
    now: i64,
) -> Response {
    match known {
        Some(t) => {
            let by = Actor::person(&api::actor_name(&t.name, &t.created_by), origin.clone());
            record(st, &by, parts, outcome::REFUSED, refusal.code(), now).await;
        }
        None => {
            if let Verdict::Limited {
                retry_after_secs, ..
            } = st.limits.api_guess(&origin.ip, now)
            {
                let mut res = problem(&Problem::new(
                    429,
                    "rate_limited",
                    "too many calls without a valid token from this address",
                ));
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
        }
    }
    problem(&Problem::new(
        refusal.status(),
        refusal.code(),
        refusal.message(),
    ))
}

/// One `api_call` record: the method and path (never the query: it may
/// hold a person's address only as a filter, but keep it short).
async fn record(
    st: &AppState,
    by: &Actor,
    parts: &axum::http::request::Parts,
    result: &str,
    code: &str,
    now: i64,
) {
    let mut event: Event = by.did(now, kind::API_CALL).detail(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
    }));
    event.outcome = result.to_string();
    event.reason = code.to_string();
    if let Err(e) = crate::service::audit::record(&st.db, &[event]).await {
        tracing::error!(error = %e, "cannot record an API call");
    }
}

use axum::extract::FromRequestParts;

//! `/metrics` in Prometheus' text format: requests and their latency by
//! route, launches, refusals by reason, rate limits, sign-in failures,
//! signing key ages and the audit chain's length. Counting is lock-free on
//! the request path; served only with `SSO_METRICS_TOKEN` as a bearer token.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Route groups, as the `route` label.
const ROUTES: [&str; 10] = [
    "page",
    "launch",
    "sign_in",
    "jwks",
    "discovery",
    "server_fn",
    "assets",
    "health",
    "metrics",
    "export",
];

/// Latency buckets' upper bounds, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

fn route_of(path: &str) -> usize {
    match path {
        "/launch" => 1,
        p if p.starts_with("/auth/") => 2,
        "/.well-known/jwks.json" => 3,
        "/.well-known/openid-configuration" => 4,
        p if p.starts_with("/api/") => 5,
        p if p.starts_with("/pkg/") || p == "/favicon.svg" => 6,
        "/healthz" | "/readyz" => 7,
        "/metrics" => 8,
        "/audit/export" | "/admin/sites/export" | "/admin/grants.csv" => 9,
        _ => 0,
    }
}

#[derive(Default)]
struct Route {
    /// By status class: 1xx ... 5xx.
    status: [AtomicU64; 5],
    /// Cumulative counts are made at export; each bucket counts its own.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// The process's counters.
#[derive(Default)]
pub struct Metrics {
    routes: [Route; ROUTES.len()],
    launches: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    sign_in_failures: Mutex<BTreeMap<&'static str, u64>>,
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    *map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default() += 1;
}

impl Metrics {
    fn observe(&self, route: usize, status: StatusCode, seconds: f64) {
        let r = &self.routes[route];
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        r.status[class].fetch_add(1, Relaxed);
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        r.buckets[bucket].fetch_add(1, Relaxed);
        r.sum_micros.fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    /// A launch whose token was sent.
    pub fn launched(&self) {
        self.launches.fetch_add(1, Relaxed);
    }

    /// A launch refused, by the refusal's code.
    pub fn refused(&self, code: &'static str) {
        bump(&self.refusals, code);
    }

    pub fn sign_in_failed(&self, code: &'static str) {
        bump(&self.sign_in_failures, code);
    }

    pub fn rate_limited(&self, scope: &'static str) {
        bump(&self.rate_limited, scope);
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str("# HELP agency_sso_http_requests_total HTTP requests answered, by route group and status class.\n# TYPE agency_sso_http_requests_total counter\n");
        for (name, r) in ROUTES.iter().zip(&self.routes) {
            for (i, c) in r.status.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "agency_sso_http_requests_total{{route=\"{name}\",status=\"{}xx\"}} {n}",
                        i + 1
                    );
                }
            }
        }
        out.push_str("# HELP agency_sso_http_request_duration_seconds Time from request to response head, by route group.\n# TYPE agency_sso_http_request_duration_seconds histogram\n");
        for (name, r) in ROUTES.iter().zip(&self.routes) {
            let mut cumulative = 0;
            for (i, b) in r.buckets.iter().enumerate() {
                cumulative += b.load(Relaxed);
                let le = BUCKETS
                    .get(i)
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "+Inf".into());
                let _ = writeln!(
                    out,
                    "agency_sso_http_request_duration_seconds_bucket{{route=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "agency_sso_http_request_duration_seconds_sum{{route=\"{name}\"}} {}",
                r.sum_micros.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "agency_sso_http_request_duration_seconds_count{{route=\"{name}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP agency_sso_launches_total Launches whose token was sent (each recorded first).\n# TYPE agency_sso_launches_total counter\nagency_sso_launches_total {}",
            self.launches.load(Relaxed)
        );
        let labelled = |out: &mut String,
                        name: &str,
                        help: &str,
                        label: &str,
                        map: &Mutex<BTreeMap<&'static str, u64>>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (k, v) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
            }
        };
        labelled(
            &mut out,
            "agency_sso_launch_refusals_total",
            "Launches refused, by reason.",
            "reason",
            &self.refusals,
        );
        labelled(
            &mut out,
            "agency_sso_sign_in_failures_total",
            "Sign-ins refused or failed, by reason.",
            "reason",
            &self.sign_in_failures,
        );
        labelled(
            &mut out,
            "agency_sso_rate_limited_total",
            "Requests refused by a rate limit, by limit.",
            "limit",
            &self.rate_limited,
        );
        out.push_str("# HELP agency_sso_signing_key_age_seconds Age of each published signing key, by state.\n# TYPE agency_sso_signing_key_age_seconds gauge\n");
        for (kid, state, age) in &gauges.keys {
            let _ = writeln!(
                out,
                "agency_sso_signing_key_age_seconds{{kid=\"{kid}\",state=\"{state}\"}} {age}"
            );
        }
        if let Some(n) = gauges.audit_chain_length {
            let _ = writeln!(out, "# HELP agency_sso_audit_chain_length Records appended to the audit chain.\n# TYPE agency_sso_audit_chain_length gauge\nagency_sso_audit_chain_length {n}");
        }
        if !gauges.stream_lag.is_empty() {
            out.push_str("# HELP agency_sso_audit_stream_lag_records Records of the audit chain a stream destination has not acknowledged yet.\n# TYPE agency_sso_audit_stream_lag_records gauge\n");
            for (name, lag) in &gauges.stream_lag {
                let name = name.replace(['\\', '"', '\n'], "_");
                let _ = writeln!(
                    out,
                    "agency_sso_audit_stream_lag_records{{destination=\"{name}\"}} {lag}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP agency_sso_database_up Whether the database answered this scrape.\n# TYPE agency_sso_database_up gauge\nagency_sso_database_up {}",
            u8::from(gauges.audit_chain_length.is_some())
        );
        out
    }
}

/// What is read at scrape time.
pub struct Gauges {
    /// (kid, state, age in seconds).
    pub keys: Vec<(String, String, i64)>,
    /// Each audit stream destination's lag, in records.
    pub stream_lag: Vec<(String, i64)>,
    /// `None` when the database did not answer.
    pub audit_chain_length: Option<i64>,
}

/// Count every request by route group, status and time taken.
pub async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let started = Instant::now();
    let res = next.run(req).await;
    st.metrics
        .observe(route, res.status(), started.elapsed().as_secs_f64());
    res
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

/// `GET /metrics`: 404 unless a token is configured, 401 without it.
pub async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = st.config.metrics_token.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !bearer_matches(&headers, token.expose()) {
        let mut res = (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return res;
    }
    let now = st.clock.now();
    let keys = st
        .keys
        .snapshot()
        .ring
        .keys
        .iter()
        .map(|k| {
            (
                k.kid.clone(),
                k.state.as_str().to_string(),
                now - k.created_at,
            )
        })
        .collect();
    let (audit_chain_length, stream_lag) = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        crate::service::stream::status(&st.db),
    )
    .await
    {
        Ok(Ok((head, list))) => (
            Some(head),
            list.into_iter()
                .map(|d| (d.name, head - d.last_seq))
                .collect(),
        ),
        _ => (None, Vec::new()),
    };
    let body = st.metrics.render(&Gauges {
        keys,
        audit_chain_length,
        stream_lag,
    });
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_and_accumulates_buckets() {
        let m = Metrics::default();
        m.observe(1, StatusCode::SEE_OTHER, 0.004);
        m.observe(1, StatusCode::FORBIDDEN, 0.2);
        m.observe(3, StatusCode::OK, 0.0001);
        m.launched();
        m.refused("no_grant");
        m.refused("no_grant");
        m.rate_limited("launch_per_person");
        let text = m.render(&Gauges {
            keys: vec![("abc".into(), "active".into(), 60)],
            audit_chain_length: Some(42),
            stream_lag: vec![("SIEM".into(), 3)],
        });
        for line in [
            "agency_sso_http_requests_total{route=\"launch\",status=\"3xx\"} 1",
            "agency_sso_http_requests_total{route=\"launch\",status=\"4xx\"} 1",
            "agency_sso_http_request_duration_seconds_bucket{route=\"launch\",le=\"0.005\"} 1",
            "agency_sso_http_request_duration_seconds_bucket{route=\"launch\",le=\"0.25\"} 2",
            "agency_sso_http_request_duration_seconds_bucket{route=\"launch\",le=\"+Inf\"} 2",
            "agency_sso_http_request_duration_seconds_count{route=\"launch\"} 2",
            "agency_sso_http_request_duration_seconds_bucket{route=\"jwks\",le=\"0.001\"} 1",
            "agency_sso_launches_total 1",
            "agency_sso_launch_refusals_total{reason=\"no_grant\"} 2",
            "agency_sso_rate_limited_total{limit=\"launch_per_person\"} 1",
            "agency_sso_signing_key_age_seconds{kid=\"abc\",state=\"active\"} 60",
            "agency_sso_audit_chain_length 42",
            "agency_sso_audit_stream_lag_records{destination=\"SIEM\"} 3",
            "agency_sso_database_up 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn routes_are_grouped() {
        assert_eq!(ROUTES[route_of("/launch")], "launch");
        assert_eq!(ROUTES[route_of("/auth/callback")], "sign_in");
        assert_eq!(ROUTES[route_of("/pkg/agency-sso.wasm")], "assets");
        assert_eq!(ROUTES[route_of("/api/set_favourite")], "server_fn");
        assert_eq!(ROUTES[route_of("/admin/sites")], "page");
    }
}

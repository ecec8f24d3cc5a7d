//! Who the client is (behind trusted proxies), and the rate limits on
//! sign-in and launch: over a limit, a 429 page with `Retry-After`, and one
//! audit record per flood (`rate_limited`), not one per request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::pages::{error_page, ErrorPage};
use super::AppState;
use crate::config::LimitSettings;
use crate::domain::audit::{kind, outcome, Event, Origin};
use crate::domain::limits::{bucket_key, client_ip, forwarded_hops, Buckets, Verdict};

/// The client's address, as worked out once per request.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Keys remembered per limit before idle ones are dropped.
const MAX_KEYS: usize = 100_000;

/// The process's buckets, one set per limit.
#[derive(Debug)]
pub struct Limiter {
    sign_in: Option<Mutex<Buckets>>,
    launch_person: Option<Mutex<Buckets>>,
    launch_client: Option<Mutex<Buckets>>,
    /// Failed sign-ins anyone can cause (no verified ID token): recorded
    /// in the audit log at most this often per client, and overall.
    failures_per_client: Mutex<Buckets>,
    failures_overall: Mutex<Buckets>,
    /// Redemptions of connection codes, per client address.
    connect_per_client: Mutex<Buckets>,
    /// Admin API calls per token, and calls without a valid token per
    /// client address.
    api_per_token: Mutex<Buckets>,
    api_guesses_per_client: Mutex<Buckets>,
    /// When a flood of them was last noted (Unix seconds): at most one
    /// note a minute, however the flood ebbs and flows.
    flood_noted_at: std::sync::atomic::AtomicI64,
}

/// Unauthenticated sign-in failures recorded per client address...
const FAILURES_PER_CLIENT: &str = "10/min";
/// ... and from everyone together, per process.
const FAILURES_OVERALL: &str = "120/min";
/// Redemptions of connection codes per client address: a fleet's script
/// connecting its sites one after another stays well below.
const CONNECT_PER_CLIENT: &str = "120/min";
/// Admin API calls per token: a sync job walking 5,000 sites a page at a
/// time stays well below.
const API_PER_TOKEN: &str = "600/min";
/// Admin API calls without a valid token, per client address.
const API_GUESSES_PER_CLIENT: &str = "30/min";

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    SignIn,
    LaunchPerClient,
    LaunchPerPerson,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::SignIn => "sign_in_per_client",
            Scope::LaunchPerClient => "launch_per_client",
            Scope::LaunchPerPerson => "launch_per_person",
        }
    }
}

impl Limiter {
    pub fn new(s: LimitSettings) -> Limiter {
        let buckets = |r: Option<_>| r.map(|r| Mutex::new(Buckets::new(r, MAX_KEYS)));
        let fixed = |r: &str| {
            let rate = crate::domain::limits::Rate::parse(r)
                .ok()
                .flatten()
                .expect("a valid built-in rate");
            Mutex::new(Buckets::new(rate, MAX_KEYS))
        };
        Limiter {
            sign_in: buckets(s.sign_in),
            launch_person: buckets(s.launch_person),
            launch_client: buckets(s.launch_client),
            failures_per_client: fixed(FAILURES_PER_CLIENT),
            failures_overall: fixed(FAILURES_OVERALL),
            connect_per_client: fixed(CONNECT_PER_CLIENT),
            api_per_token: fixed(API_PER_TOKEN),
            api_guesses_per_client: fixed(API_GUESSES_PER_CLIENT),
            flood_noted_at: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// May a sign-in failure nobody authenticated caused be written to the
    /// audit log? Allowed below both limits; `Limited { first: true }` at
    /// most once a minute while they flood (record that one, saying the
    /// rest are only counted).
    pub fn record_failure(&self, client: &str, now: i64) -> Verdict {
        use std::sync::atomic::Ordering;
        let lock = |m: &Mutex<Buckets>, key: &str| {
            m.lock()
                .unwrap_or_else(|p| p.into_inner())
                .check(key, now.saturating_mul(1000))
        };
        let verdict = match lock(&self.failures_per_client, client) {
            Verdict::Allowed => lock(&self.failures_overall, "all"),
            limited => limited,
        };
        match verdict {
            Verdict::Limited {
                retry_after_secs,
                first: true,
            } => {
                let last = self.flood_noted_at.load(Ordering::Relaxed);
                let note = now.saturating_sub(last) >= 60
                    && self
                        .flood_noted_at
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                Verdict::Limited {
                    retry_after_secs,
                    first: note,
                }
            }
            v => v,
        }
    }

    /// Count one redemption of a connection code from `client`.
    pub fn connect_attempt(&self, client: &str, now: i64) -> Verdict {
        self.connect_per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(client, now.saturating_mul(1000))
    }

    /// Count one admin API call by a token.
    pub fn api_call(&self, token_id: &str, now: i64) -> Verdict {
        self.api_per_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(token_id, now.saturating_mul(1000))
    }

    /// Count one admin API call without a valid token from `client`.
    pub fn api_guess(&self, client: &str, now: i64) -> Verdict {
        self.api_guesses_per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(client, now.saturating_mul(1000))
    }

    /// Count one request of `key` against `scope` at `now` (Unix seconds).
    pub fn check(&self, scope: Scope, key: &str, now: i64) -> Verdict {
        let buckets = match scope {
            Scope::SignIn => &self.sign_in,
            Scope::LaunchPerClient => &self.launch_client,
            Scope::LaunchPerPerson => &self.launch_person,
        };
        match buckets {
            None => Verdict::Allowed,
            Some(b) => b
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .check(key, now.saturating_mul(1000)),
        }
    }
}

/// Works out the client's address for every request that may be recorded
/// (kept as [`ClientIp`] for the audit records; the public, sessionless
/// routes such as the JWKS never pass through here) and applies the per-client limits to sign-in
/// (`/auth/login`, `/auth/callback`) and launches (`POST /launch`).
pub async fn by_client(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = peer.map(|peer| {
        let header = st.config.proxy_header;
        let lines: Vec<&str> = req
            .headers()
            .get_all(header.name())
            .iter()
            .map(|v| v.to_str().unwrap_or("<unreadable>"))
            .collect();
        client_ip(
            peer,
            &forwarded_hops(header, &lines),
            &st.config.trusted_proxies,
        )
    });
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let scope = match (req.method(), req.uri().path()) {
        (&Method::GET, "/auth/login" | "/auth/callback") => Scope::SignIn,
        (&Method::POST, "/launch") => Scope::LaunchPerClient,
        _ => return next.run(req).await,
    };
    let key = ip.map_or_else(|| "unknown".into(), bucket_key);
    match st.limits.check(scope, &key, st.clock.now()) {
        Verdict::Allowed => next.run(req).await,
        Verdict::Limited {
            retry_after_secs,
            first,
        } => {
            let (parts, _) = req.into_parts();
            let from = super::origin_of(&parts);
            refused(&st, scope, "", &from, retry_after_secs, first).await
        }
    }
}

/// The answer to a request over a limit; the first of a flood is recorded.
pub async fn refused(
    st: &AppState,
    scope: Scope,
    email: &str,
    from: &Origin,
    retry_after_secs: u64,
    first: bool,
) -> Response {
    if first {
        let event = Event::new(
            st.clock.now(),
            kind::RATE_LIMITED,
            outcome::REFUSED,
            email,
            from,
        )
        .subject(email)
        .reason(scope.as_str())
        .detail(serde_json::json!({ "retry_after_secs": retry_after_secs }));
        if let Err(e) = crate::service::audit::record(&st.db, &[event]).await {
            tracing::error!(error = %e, "cannot record a rate limit");
        }
    }
    st.metrics.rate_limited(scope.as_str());
    tracing::info!(scope = scope.as_str(), ip = %from.ip, "rate limited");
    let (title, message) = match scope {
        Scope::SignIn => (
            "Too many sign-in attempts",
            format!(
                "Too many sign-in attempts came from your network. Wait {retry_after_secs} seconds and try again."
            ),
        ),
        Scope::LaunchPerClient | Scope::LaunchPerPerson => (
            "Too many sites opened",
            format!(
                "Too many sites were opened in a short time, so this one was not. Wait {retry_after_secs} seconds and try again."
            ),
        ),
    };
    let mut res = error_page(ErrorPage {
        status: StatusCode::TOO_MANY_REQUESTS,
        title,
        message: &message,
        code: "rate_limited",
        action: None,
    });
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

//! Headers on every response, and the cross-site request check that every
//! state-changing request passes (Leptos server functions have none).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::pages::{error_page, ErrorPage};
use super::AppState;

/// For responses that did not set their own policy (the Leptos shell sets
/// one with a per-response script nonce).
const DEFAULT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                           frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // The client sites' plugin checks the Referer origin of a launch (CONTRACT.md):
    // never `no-referrer`.
    set(
        h,
        header::REFERRER_POLICY,
        "strict-origin-when-cross-origin",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if st.config.is_https() {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        // Pages show who is signed in: never from a shared cache or the back button after sign-out.
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossSiteRefusal {
    CrossSite,
    OriginMismatch,
    OriginMissing,
}

impl CrossSiteRefusal {
    pub fn code(self) -> &'static str {
        match self {
            CrossSiteRefusal::CrossSite => "csrf_cross_site",
            CrossSiteRefusal::OriginMismatch => "csrf_origin_mismatch",
            CrossSiteRefusal::OriginMissing => "csrf_origin_missing",
        }
    }
}

/// A request may change state only when the browser says it comes from this
/// dashboard's own pages: `Sec-Fetch-Site: same-origin` (or `none`, typed by
/// the user), and an `Origin` equal to the public origin. A request carrying
/// neither header is refused: it cannot be shown to come from our pages.
pub fn check_same_origin(
    method: &Method,
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    public_origin: &str,
) -> Result<(), CrossSiteRefusal> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(site) = sec_fetch_site {
        if site != "same-origin" && site != "none" {
            return Err(CrossSiteRefusal::CrossSite);
        }
    }
    match origin {
        Some(o) if o.eq_ignore_ascii_case(public_origin) => Ok(()),
        Some(_) => Err(CrossSiteRefusal::OriginMismatch),
        None if sec_fetch_site.is_some() => Ok(()),
        None => Err(CrossSiteRefusal::OriginMissing),
    }
}

pub async fn same_origin_only(
    State(st): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let h = req.headers();
    let header_str = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let verdict = check_same_origin(
        req.method(),
        header_str("sec-fetch-site"),
        header_str("origin"),
        &st.config.public_origin,
    );
    match verdict {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::warn!(
                code = refusal.code(),
                method = %req.method(),
                path = %req.uri().path(),
                origin = header_str("origin").unwrap_or("-"),
                "cross-site request refused"
            );
            let wants_html = header_str("accept").is_some_and(|a| a.contains("text/html"));
            if wants_html {
                error_page(ErrorPage {
                    status: StatusCode::FORBIDDEN,
                    title: "Request refused",
                    message: "This request did not come from a page of this dashboard, so it was not carried out.",
                    code: refusal.code(),
                    action: None,
                })
            } else {
                (
                    StatusCode::FORBIDDEN,
                    axum::Json(serde_json::json!({
                        "error": {
                            "code": refusal.code(),
                            "message": "cross-site request refused: it did not come from this dashboard's pages"
                        }
                    })),
                )
                    .into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "https://sso.agency.example";

    #[test]
    fn safe_methods_pass() {
        assert_eq!(
            check_same_origin(
                &Method::GET,
                Some("cross-site"),
                Some("https://evil.test"),
                ME
            ),
            Ok(())
        );
    }

    #[test]
    fn same_origin_posts_pass() {
        assert_eq!(
            check_same_origin(&Method::POST, Some("same-origin"), Some(ME), ME),
            Ok(())
        );
        assert_eq!(check_same_origin(&Method::POST, None, Some(ME), ME), Ok(()));
        assert_eq!(
            check_same_origin(&Method::POST, Some("same-origin"), None, ME),
            Ok(())
        );
    }

    #[test]
    fn cross_site_posts_are_refused() {
        use CrossSiteRefusal::*;
        let cases = [
            (Some("cross-site"), Some("https://evil.test"), CrossSite),
            (
                Some("same-site"),
                Some("https://app.agency.example"),
                CrossSite,
            ),
            (None, Some("https://evil.test"), OriginMismatch),
            (None, Some("null"), OriginMismatch),
            (
                None,
                Some("https://sso.agency.example:8443"),
                OriginMismatch,
            ),
            (
                Some("same-origin"),
                Some("http://sso.agency.example"),
                OriginMismatch,
            ),
            (None, None, OriginMissing),
        ];
        for (site, origin, want) in cases {
            for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
                assert_eq!(
                    check_same_origin(&m, site, origin, ME),
                    Err(want),
                    "{site:?} {origin:?}"
                );
            }
        }
    }
}

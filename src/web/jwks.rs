//! What client sites fetch: the key set and the discovery document. Both
//! are served from memory (the key ring's snapshot), never from the database.

use axum::extract::State;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /.well-known/jwks.json`
pub async fn jwks(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let snap = st.keys.snapshot();
    let cache = cache_control(st.config.keys.jwks_max_age);
    let etag = HeaderValue::from_str(&snap.etag).unwrap_or(HeaderValue::from_static("\"\""));
    if headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| etag_matches(v, &snap.etag))
    {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (ETAG, etag),
                (CACHE_CONTROL, cache),
                (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
            ],
        )
            .into_response();
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (ETAG, etag),
            (CACHE_CONTROL, cache),
            (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        snap.jwks.clone(),
    )
        .into_response()
}

/// `GET /.well-known/openid-configuration`: enough for generic verifiers
/// to find the keys. The dashboard is not an OpenID provider, so it lists
/// no endpoints it does not have.
pub async fn discovery(State(st): State<AppState>) -> Response {
    let issuer = &st.config.public_url;
    let doc = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CACHE_CONTROL, cache_control(st.config.keys.jwks_max_age)),
            (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        doc.to_string(),
    )
        .into_response()
}

fn cache_control(max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or(HeaderValue::from_static("public, max-age=300"))
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): a list of
/// tags, `W/` ignored, or `*`.
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(etag)
    })
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", W/\"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
        assert!(!etag_matches("abc", "\"abc\""));
    }
}

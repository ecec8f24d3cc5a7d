//! Plain server-rendered pages for errors outside the Leptos app (sign-in
//! failures, refused requests). Everything shown is escaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use crate::shared::html::escape;

pub struct ErrorPage<'a> {
    pub status: StatusCode,
    pub title: &'a str,
    pub message: &'a str,
    /// Stable code, shown small so that people can quote it to an admin.
    pub code: &'a str,
    /// A link to offer: (href, label).
    pub action: Option<(&'a str, &'a str)>,
}

pub fn error_page(p: ErrorPage<'_>) -> Response {
    let action = p
        .action
        .map(|(href, label)| {
            format!(
                r#"<p><a class="button" href="{}">{}</a></p>"#,
                escape(href),
                escape(label)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Agency SSO</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/pkg/agency-sso.css"></head>
<body><main class="notice" role="main"><h1>{title}</h1><p class="message">{message}</p>{action}
<p class="code">Reference: <code>{code}</code></p><p><a href="/">Back to the dashboard</a></p></main></body></html>"#,
        title = escape(p.title),
        message = escape(p.message),
        code = escape(p.code),
    );
    let mut res = (p.status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// A server error that carries no body of its own (the session layer
/// answers a bare 500 when it cannot read or write the session store) is
/// replaced by a page that says what happened.
pub async fn explain_bare_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    if res.status().is_server_error() && res.headers().get(header::CONTENT_TYPE).is_none() {
        return error_page(ErrorPage {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "The dashboard is unavailable",
            message: "The dashboard cannot reach its database right now, so nothing was done. Please try again in a moment.",
            code: "unavailable",
            action: None,
        });
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_controls_but_line_breaks() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        // Line breaks and tabs are kept (a textarea's text); other controls go.
        assert_eq!(escape("a\u{0}b\nc\u{1b}\td"), "ab\nc\td");
    }
}

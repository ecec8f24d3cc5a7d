//! Connecting a site in one step, the web side.
//!
//! - `POST /connector/connect` (public, sessionless: the code is the
//!   authorisation): a site redeems a connection code; JSON in and out.
//! - `GET /connect?site=&state=&return=`: a site admin's browser, sent by
//!   the plugin's "Connect" button, lands here; a dashboard admin with a
//!   fresh sign-in sees the site's URL and approves or cancels.
//! - `POST /connect`: the decision (same-origin checked like every
//!   state-changing request); the browser goes back to the site with a
//!   short-lived code bound to it, or with `error=cancelled`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use tower_sessions::Session;

use super::pages::{error_page, escape, ErrorPage};
use super::{AppState, RequestOrigin};
use crate::domain::audit::Actor;
use crate::domain::connect::{Redeem, Refusal};
use crate::domain::sites::{normalise_url, Profile};
use crate::service::connect;

/// The most of a redemption's body that is read.
pub const MAX_REDEEM_BYTES: usize = 8 * 1024;

/// POST /connector/connect.
pub async fn redeem(
    State(st): State<AppState>,
    RequestOrigin(from): RequestOrigin,
    body: axum::body::Bytes,
) -> Response {
    let answer = |r: Refusal| {
        let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(r.body())).into_response()
    };
    if let crate::domain::limits::Verdict::Limited { .. } =
        st.limits.connect_attempt(&from.ip, st.clock.now())
    {
        return answer(Refusal::RateLimited);
    }
    if body.len() > MAX_REDEEM_BYTES {
        return answer(Refusal::BadRequest("the request is too large".into()));
    }
    let req: Redeem = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return answer(Refusal::BadRequest(
                "the body is not the connector's JSON request".into(),
            ))
        }
    };
    match connect::redeem(&st.core, &req, &from).await {
        Ok(done) => {
            tracing::info!(site = %done.site.id, url = %done.site.url, created = done.created, "site connected");
            Json(serde_json::json!({
                "connected": true,
                "issuer": st.config.public_url,
                "site_id": done.site.id,
                "site_url": done.site.url,
                "created": done.created,
            }))
            .into_response()
        }
        Err(r) => {
            tracing::warn!(code = r.code(), "a connection was refused");
            answer(r)
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Ask {
    #[serde(default)]
    site: String,
    #[serde(default)]
    state: String,
    #[serde(default, rename = "return")]
    back: String,
    /// On the decision: `approve` or `cancel`.
    #[serde(default)]
    decision: String,
}

/// A site's request, checked: its URL, the state to hand back, and where
/// its browser goes back to (on the site itself, nowhere else).
struct Request {
    site: String,
    state: String,
    back: url::Url,
}

fn check(ask: &Ask) -> Result<Request, String> {
    let site = normalise_url(&ask.site).map_err(|e| format!("the site's address: {e}"))?;
    if ask.state.is_empty()
        || ask.state.len() > 128
        || !ask
            .state
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("the request carries no valid state".into());
    }
    let back = url::Url::parse(ask.back.trim()).map_err(|_| "the return address is not a URL")?;
    let site_url = url::Url::parse(&site).map_err(|_| "the site's address is not a URL")?;
    let under_site = back.scheme() == site_url.scheme()
        && back.host_str() == site_url.host_str()
        && back.port_or_known_default() == site_url.port_or_known_default()
        && (back.path() == site_url.path()
            || back
                .path()
                .starts_with(&format!("{}/", site_url.path().trim_end_matches('/'))))
        && back.username().is_empty()
        && back.password().is_none()
        && back.fragment().is_none();
    if !under_site {
        return Err(format!(
            "the return address is not on the site {site}: the dashboard sends browsers back only to the site asking"
        ));
    }
    Ok(Request {
        site,
        state: ask.state.clone(),
        back,
    })
}

/// Who may approve: a signed-in admin with a recent sign-in; anyone else
/// is sent to sign in again and come back.
async fn approver(st: &AppState, session: &Session, here: &str) -> Result<Actor, Response> {
    let reauth = || {
        let back = crate::domain::session::safe_return_path(Some(here));
        Redirect::to(&format!(
            "/auth/login?reauth=1&return_to={}",
            crate::shared::query::encode(&back)
        ))
        .into_response()
    };
    let person = match crate::service::sessions::current_person(&st.core, session).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(reauth()),
        Err(e) => {
            tracing::error!(error = %e, "connect: cannot read who is signed in");
            return Err(page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The dashboard is unavailable",
                "The dashboard cannot read your session right now: nothing was done. Try again in a moment.",
                "unavailable",
            ));
        }
    };
    if !person.is_admin {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "Only an admin can connect a site",
            "Connecting a site to the dashboard is an admin's action. Ask an admin of the agency's dashboard to approve it.",
            "not_an_admin",
        ));
    }
    let now = st.clock.now();
    let recent = crate::service::sessions::sign_in_of(session)
        .await
        .is_some_and(|s| s.is_recent(now, st.config.reauth_secs));
    if !recent {
        return Err(reauth());
    }
    Ok(Actor::person(&person.email, Default::default()))
}

fn page_error(status: StatusCode, title: &str, message: &str, code: &str) -> Response {
    error_page(ErrorPage {
        status,
        title,
        message,
        code,
        action: None,
    })
}

/// GET /connect: the approval page.
pub async fn ask(
    State(st): State<AppState>,
    session: Session,
    uri: axum::http::Uri,
    Query(ask): Query<Ask>,
) -> Response {
    let here = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/connect".into());
    let req = match check(&ask) {
        Ok(r) => r,
        Err(why) => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "This connection request cannot be used",
                &format!("The link that brought you here is not a valid request to connect a site: {why}. Start again from the site's Settings → Agency SSO page."),
                "bad_connect_request",
            )
        }
    };
    if let Err(res) = approver(&st, &session, &here).await {
        return res;
    }
    let existing = match crate::service::sites::find_by_url(&st.db, &req.site).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "connect: cannot read the sites");
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The dashboard is unavailable",
                "The dashboard cannot reach its database right now: nothing was done.",
                "unavailable",
            );
        }
    };
    let what = match &existing {
        None => format!(
            "It will be added as a new site (client: {}) using this dashboard's connector plugin. Staff get into it once you grant them a role there.",
            crate::domain::connect::host_of(&req.site)
        ),
        Some(s) if s.profile == Profile::Connector => format!(
            "It is already the site “{}” ({}) here: approving connects it again.",
            s.name, s.client
        ),
        Some(s) => format!(
            "It is already the site “{}” ({}) here, signed in through {}: approving switches it to this dashboard's connector plugin. Its grants stay.",
            s.name,
            s.client,
            s.profile.as_str()
        ),
    };
    let hidden = |name: &str, value: &str| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            escape(value)
        )
    };
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect a site · Agency SSO</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/pkg/agency-sso.css"></head>
<body><main class="notice" role="main"><h1>Connect a site to this dashboard?</h1>
<p class="message">A WordPress site asks to be connected. Approve only a site you expect: its staff sign-ins will then be this dashboard's.</p>
<p class="connect-site">Site address, as WordPress reports it: <strong data-testid="connect-site">{site}</strong></p>
<p>{what}</p>
<p>The dashboard will confirm that this WordPress is the one actually served at that address before anything is changed.</p>
<form method="post" action="/connect">{s}{st}{b}
<button type="submit" name="decision" value="approve" class="button">Approve and connect</button>
<button type="submit" name="decision" value="cancel" class="button secondary">Cancel</button>
</form>
<p><a href="/">Back to the dashboard</a></p></main></body></html>"#,
        site = escape(&req.site),
        what = escape(&what),
        s = hidden("site", &req.site),
        st = hidden("state", &req.state),
        b = hidden("return", req.back.as_str()),
    );
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The decision's answer redirects the form to the site: allowed there only.
    let site_origin = url::Url::parse(&req.site)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self' {site_origin}"
    )) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    res
}

/// POST /connect: approve (a code for the site, back to it) or cancel.
pub async fn decide(
    State(st): State<AppState>,
    RequestOrigin(from): RequestOrigin,
    session: Session,
    Form(ask): Form<Ask>,
) -> Response {
    let req = match check(&ask) {
        Ok(r) => r,
        Err(why) => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "This connection request cannot be used",
                &why,
                "bad_connect_request",
            )
        }
    };
    let here = format!(
        "/connect?site={}&state={}&return={}",
        crate::shared::query::encode(&req.site),
        crate::shared::query::encode(&req.state),
        crate::shared::query::encode(req.back.as_str())
    );
    let by = match approver(&st, &session, &here).await {
        Ok(a) => Actor::person(&a.who, from),
        Err(res) => return res,
    };
    let mut back = req.back.clone();
    if ask.decision != "approve" {
        back.query_pairs_mut()
            .append_pair("error", "cancelled")
            .append_pair("state", &req.state);
        return Redirect::to(back.as_str()).into_response();
    }
    match connect::approve(
        &st.db,
        &st.config.public_url,
        &req.site,
        &by,
        st.clock.now(),
    )
    .await
    {
        Ok(made) => {
            tracing::info!(url = %made.url, by = %by.who, "site connection approved");
            back.query_pairs_mut()
                .append_pair("code", &made.code)
                .append_pair("state", &req.state);
            let mut res = Redirect::to(back.as_str()).into_response();
            // The code is in the URL: keep it out of the site's Referer chain.
            res.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            res
        }
        Err(e) => page_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The site could not be approved",
            &e.to_string(),
            "connect_not_approved",
        ),
    }
}

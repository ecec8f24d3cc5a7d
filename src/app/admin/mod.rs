//! The admin console: sites, people, teams and access, keys, sessions.
//!
//! Every admin server function's endpoint starts with `admin_`: the web
//! edge (`web::admin_guard`) refuses those to anyone but a signed-in admin
//! before their arguments are read (403, recorded), and each function
//! checks again through [`admin`]. Mutations validate their input and
//! answer field by field; sensitive ones ask for a recent sign-in.

pub mod access;
pub mod fleet;
pub mod keys;
pub mod people;
pub mod sessions;
pub mod sites;
pub mod stream;
pub mod teams;
pub mod tokens;

use leptos::prelude::*;

use super::{get_viewer, PersonView, TopBar};

pub use crate::shared::errors::{AdminError, FieldProblem};

/// What a page's server side knows while an admin function runs.
#[cfg(feature = "ssr")]
pub struct Admin {
    pub st: crate::service::Context,
    pub person: crate::domain::people::Person,
    pub by: crate::domain::audit::Actor,
    pub now: i64,
    signed_in: Option<crate::domain::session::SignedIn>,
    referer: Option<String>,
}

#[cfg(feature = "ssr")]
fn fail<T>(e: AdminError) -> Result<T, AdminError> {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(code) = axum::http::StatusCode::from_u16(e.status()) {
            res.set_status(code);
        }
    }
    Err(e)
}

/// The signed-in admin, or the error the caller gets (a staff member's
/// attempt is recorded; the web edge has normally refused it already).
#[cfg(feature = "ssr")]
pub async fn admin(function: &'static str) -> Result<Admin, AdminError> {
    use crate::domain::audit::{Actor, Origin};
    let st = expect_context::<crate::service::Context>();
    let session: tower_sessions::Session = leptos_axum::extract()
        .await
        .map_err(|e| AdminError::Transport(e.to_string()))?;
    // The web edge notes where each request came from.
    let axum::Extension(origin): axum::Extension<Origin> = leptos_axum::extract()
        .await
        .map_err(|e| AdminError::Transport(e.to_string()))?;
    let headers: axum::http::HeaderMap = leptos_axum::extract()
        .await
        .map_err(|e| AdminError::Transport(e.to_string()))?;
    let person = match crate::service::sessions::current_person(&st, &session).await {
        Ok(Some(p)) => p,
        Ok(None) => return fail(AdminError::SignIn),
        Err(e) => {
            tracing::error!(error = %e, "cannot read who is signed in");
            return fail(AdminError::Unavailable);
        }
    };
    if !person.is_admin {
        crate::service::audit::record_admin_refusal(
            &st.db,
            &person.email,
            origin,
            function,
            st.now(),
        )
        .await;
        return fail(AdminError::Forbidden);
    }
    let signed_in = crate::service::sessions::sign_in_of(&session).await;
    let referer = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix(st.config.public_origin.as_str()))
        .map(str::to_string);
    Ok(Admin {
        by: Actor::person(&person.email, origin),
        now: st.clock.now(),
        st,
        person,
        signed_in,
        referer,
    })
}

#[cfg(feature = "ssr")]
impl Admin {
    /// Sensitive actions need a sign-in within the configured minutes;
    /// otherwise the answer says where to sign in again (and come back to
    /// the page the request came from).
    pub fn recent_sign_in(&self) -> Result<(), AdminError> {
        if self
            .signed_in
            .as_ref()
            .is_some_and(|s| s.is_recent(self.now, self.st.config.reauth_secs))
        {
            return Ok(());
        }
        let back = crate::domain::session::safe_return_path(self.referer.as_deref());
        fail(AdminError::Reauth {
            url: format!("/auth/login?reauth=1&return_to={}", encode(&back)),
        })
    }

    /// The terms of a grant from the form (how long, why); granting the
    /// administrator role needs a recent sign-in.
    pub fn grant_terms(
        &self,
        role: &str,
        duration: &str,
        reason: &str,
    ) -> Result<crate::domain::access::GrantTerms, AdminError> {
        if crate::domain::access::is_sensitive_role(role.trim()) {
            self.recent_sign_in()?;
        }
        let minutes = match duration.trim() {
            "" => None,
            v => match v.parse::<i64>() {
                Ok(m) => Some(m),
                Err(_) => {
                    return self.answer(crate::service::sites::ManageError::Invalid(vec![
                        crate::domain::sites::FieldError {
                            field: "duration",
                            message: "choose how long the grant lasts".into(),
                        },
                    ]))
                }
            },
        };
        crate::domain::access::grant_terms(minutes, reason, self.now)
            .or_else(|e| self.answer(crate::service::sites::ManageError::Invalid(vec![e])))
    }

    /// Turn a service error into the answer, logging what the admin cannot act on.
    pub fn answer<T>(&self, e: impl Into<ManageFailure>) -> Result<T, AdminError> {
        fail(e.into().0)
    }
}

/// A service error, as the admin sees it.
#[cfg(feature = "ssr")]
pub struct ManageFailure(pub AdminError);

#[cfg(feature = "ssr")]
impl From<crate::service::sites::ManageError> for ManageFailure {
    fn from(e: crate::service::sites::ManageError) -> Self {
        use crate::service::sites::ManageError as M;
        ManageFailure(match e {
            M::Invalid(errors) => AdminError::Invalid(
                errors
                    .into_iter()
                    .map(|e| FieldProblem {
                        field: e.field.to_string(),
                        message: capitalise(&e.message),
                    })
                    .collect(),
            ),
            M::DuplicateUrl(url) => AdminError::Invalid(vec![FieldProblem {
                field: "url".into(),
                message: format!("A site with the URL {url} already exists."),
            }]),
            M::Db(e) => {
                tracing::error!(error = %e, "admin change failed in the database");
                AdminError::Unavailable
            }
            other => AdminError::Refused(capitalise(&other.to_string())),
        })
    }
}

#[cfg(feature = "ssr")]
impl From<crate::service::people::StandingError> for ManageFailure {
    fn from(e: crate::service::people::StandingError) -> Self {
        use crate::service::people::StandingError as S;
        ManageFailure(match e {
            S::Db(e) => {
                tracing::error!(error = %e, "admin change failed in the database");
                AdminError::Unavailable
            }
            other => AdminError::Refused(capitalise(&other.to_string())),
        })
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for ManageFailure {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "admin read failed in the database");
        ManageFailure(AdminError::Unavailable)
    }
}

/// First letter upper-case, and a full stop: service messages read as sentences.
pub fn capitalise(s: &str) -> String {
    // An address or a URL first is left as it is written.
    let first = s.split(' ').next().unwrap_or("");
    let mut out = if first.contains('@') || first.contains("://") {
        s.to_string()
    } else {
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect::<String>(),
            None => String::new(),
        }
    };
    if !out.ends_with(['.', '!', '?', ':']) {
        out.push('.');
    }
    out
}

pub use super::audit::encode;

/// The `:id` of the page's address.
pub fn id_param() -> Memo<String> {
    let params = leptos_router::hooks::use_params_map();
    Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()))
}

/// A time as the console shows it (UTC, to the minute).
pub fn when(t: Option<i64>) -> String {
    match t {
        None => "—".into(),
        Some(t) => {
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
                secs / 3600,
                secs % 3600 / 60
            )
        }
    }
}

/// Days since 1970-01-01 to a calendar date (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A list page's filter (Sites, People, Fleet): read from the page's URL,
/// so that a filtered page can be linked, reloaded and paged, and written
/// back into its links, its export and its pager.
pub trait ListFilter: Clone + PartialEq + Send + Sync + 'static {
    /// The filter's fields as the URL names them (the page's offset aside).
    fn fields(&self) -> Vec<(&'static str, &str)>;
    /// The filter from the URL's values (trimmed; `""` when absent) and
    /// the page's offset.
    fn read(get: &dyn Fn(&str) -> String, offset: i64) -> Self;
    /// Rows skipped: the page's first row.
    fn offset(&self) -> i64;

    /// The query string of the fields that are set.
    fn to_query(&self) -> String {
        self.fields()
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The page's filter, from its URL, kept current as the URL changes.
pub fn filter_from_url<F: ListFilter>() -> Memo<F> {
    let map = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        map.with(|m| {
            let get = |k: &str| m.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
            F::read(&get, get("offset").parse().unwrap_or(0))
        })
    })
}

/// The page frame every console page shares: who is signed in, the
/// console's sections, and the page itself once the viewer is known to be an admin.
#[component]
pub fn AdminFrame(
    title: &'static str,
    section: &'static str,
    children: ChildrenFn,
) -> impl IntoView {
    let me = Resource::new(|| (), |_| get_viewer());
    // Requests waiting for a decision, counted in the navigation.
    let waiting = Resource::new(|| (), |_| access::admin_access_waiting());
    let children = StoredValue::new(children);
    // Set once the page is hydrated (effects run only in the browser): the
    // forms answer in place from then on, and tests wait for it.
    let live = RwSignal::new(false);
    Effect::new(move |_| live.set(true));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let person: Option<PersonView> = me.await.ok().and_then(|v| v.person);
                match person {
                    None => view! {
                        <main class="notice">
                            <h1>"Please sign in"</h1>
                            <p><a href="/auth/login" rel="external">"Sign in"</a></p>
                        </main>
                    }.into_any(),
                    Some(p) if !p.is_admin => view! {
                        <TopBar person=p/>
                        <main class="notice">
                            <h1>"Admins only"</h1>
                            <p>"This part of the dashboard is for admins. Ask one if you need a change."</p>
                            <p><a href="/">"Back to your sites"</a></p>
                        </main>
                    }.into_any(),
                    Some(p) => view! {
                        <TopBar person=p/>
                        <div class="console" data-live=move || live.get().then_some("true")>
                            <AdminNav section waiting=waiting.await.unwrap_or(0)/>
                            <main class="dashboard wide" aria-labelledby="page-title">
                                <h1 id="page-title">{title}</h1>
                                {children.with_value(|c| c())}
                            </main>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AdminNav(section: &'static str, waiting: i64) -> impl IntoView {
    let links = [
        ("sites", "/admin/sites", "Sites"),
        ("fleet", "/admin/fleet", "Fleet"),
        ("people", "/admin/people", "People"),
        ("teams", "/admin/teams", "Teams"),
        ("access", "/admin/access", "Access requests"),
        ("keys", "/admin/keys", "Keys"),
        ("tokens", "/admin/tokens", "API tokens"),
        ("stream", "/admin/stream", "Audit stream"),
        ("sessions", "/admin/sessions", "Sessions"),
        ("audit", "/audit", "Audit log"),
    ];
    view! {
        <nav class="console-nav" aria-label="Admin">
            {links.into_iter().map(|(key, href, label)| {
                let current = (key == section).then_some("page");
                let count = (key == "access" && waiting > 0).then(|| view! {
                    " " <span class="count-badge" data-testid="waiting-count" aria-label=format!("{waiting} waiting")>{waiting}</span>
                });
                view! { <a href=href aria-current=current>{label}{count}</a> }
            }).collect_view()}
        </nav>
    }
}

/// A labelled input with its problem shown beside it (and announced).
#[component]
pub fn Field(
    id: &'static str,
    name: &'static str,
    label: &'static str,
    #[prop(optional, into)] value: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] hint: &'static str,
    #[prop(optional)] required: bool,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let err_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described = move || {
        let mut ids = Vec::new();
        if !hint.is_empty() {
            ids.push(hint_id.clone());
        }
        if error.get().is_some() {
            ids.push(format!("{id}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    view! {
        <div class="field" class:invalid=move || error.get().is_some()>
            <label for=id>{label}</label>
            <input id=id name=name type=kind value=value aria-required=required.then_some("true")
                aria-invalid=move || error.get().map(|_| "true")
                aria-describedby=described/>
            {(!hint.is_empty()).then(|| view! { <p class="hint" id=format!("{id}-hint")>{hint}</p> })}
            <p class="field-error" id=err_id role="alert" data-testid=format!("{id}-error")>
                {move || error.get()}
            </p>
        </div>
    }
}

/// The answer of the last submission of a form: what went wrong, or what
/// was done. A fresh sign-in asked for sends the browser there.
#[component]
pub fn Outcome<T: Clone + Send + Sync + 'static>(
    value: Signal<Option<Result<T, AdminError>>>,
    done: fn(&T) -> String,
) -> impl IntoView {
    Effect::new(move |_| {
        if let Some(Err(AdminError::Reauth { url })) = value.get() {
            #[cfg(feature = "hydrate")]
            {
                let _ = window().location().set_href(&url);
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = url;
        }
    });
    view! {
        <div class="form-outcome" aria-live="polite">
            {move || match value.get() {
                None => None,
                Some(Ok(v)) => Some(view! { <p class="done" data-testid="done">{done(&v)}</p> }.into_any()),
                Some(Err(AdminError::Invalid(_))) => Some(view! {
                    <p class="error" role="alert" data-testid="problem">"Some fields need attention: see the messages beside them."</p>
                }.into_any()),
                Some(Err(e @ AdminError::Reauth { .. })) => Some(view! {
                    <p class="notice-inline" data-testid="reauth">{e.to_string()}</p>
                }.into_any()),
                Some(Err(e)) => Some(view! { <p class="error" role="alert" data-testid="problem">{e.to_string()}</p> }.into_any()),
            }}
        </div>
    }
}

/// The field problem of an action's last answer, as a signal for [`Field`].
pub fn problem<I, T>(action: ServerAction<I>, field: &'static str) -> Signal<Option<String>>
where
    I: leptos::server_fn::ServerFn<Output = T, Error = AdminError> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .and_then(|e| e.field(field))
    })
}

/// What a list page's server function answers: one page of rows and how
/// many rows match the filter.
pub trait Listed {
    /// Rows on this page.
    fn shown(&self) -> usize;
    /// Rows matching the filter, on every page.
    fn total(&self) -> i64;
}

/// The list pages' one skeleton (Sites, People, Fleet): the page's data
/// while it loads, its error, or what goes above the table (`above`: the
/// filters), the pager, and the table with its `head` cells and `rows`.
/// The page keeps its own filter (from the URL) and resource, made in its
/// own body so that hydration finds them.
#[component]
pub fn ListPage<F, P, A, H, R, VA, VH, VR>(
    filter: Memo<F>,
    data: Resource<Result<P, AdminError>>,
    /// The page's path, for the pager's links.
    path: &'static str,
    /// Rows per page.
    page: i64,
    /// What the list holds ("sites"), for the loading line.
    noun: &'static str,
    /// The table's caption (for screen readers).
    caption: &'static str,
    /// The table's `data-testid`.
    testid: &'static str,
    above: A,
    head: H,
    rows: R,
) -> impl IntoView
where
    F: ListFilter,
    P: Listed + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    A: Fn(&F, &P) -> VA + Clone + Send + Sync + 'static,
    H: Fn(&P) -> VH + Clone + Send + Sync + 'static,
    R: Fn(P) -> VR + Clone + Send + Sync + 'static,
    VA: IntoView + 'static,
    VH: IntoView + 'static,
    VR: IntoView + 'static,
{
    let loading = format!("Loading {noun}…");
    view! {
        <Suspense fallback=move || view! { <p class="loading">{loading.clone()}</p> }>
            {move || {
                let (above, head, rows) = (above.clone(), head.clone(), rows.clone());
                Suspend::new(async move {
                    let f = filter.get_untracked();
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(p) => view! {
                            {above(&f, &p)}
                            <Pager path=path.into() query=f.to_query() offset=f.offset()
                                shown=p.shown() total=p.total() page/>
                            <div class="table-wrap">
                            <table class="list" data-testid=testid>
                                <caption class="sr-only">{caption}</caption>
                                <thead><tr>{head(&p)}</tr></thead>
                                <tbody>{rows(p)}</tbody>
                            </table>
                            </div>
                        }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// "Showing 1–50 of 5,000" and the previous/next links of a list page.
#[component]
pub fn Pager(
    path: String,
    query: String,
    offset: i64,
    shown: usize,
    total: i64,
    page: i64,
) -> impl IntoView {
    let sep = if query.is_empty() { "" } else { "&" };
    let link = move |o: i64| format!("{path}?{query}{sep}offset={o}");
    let prev = (offset > 0).then(|| link((offset - page).max(0)));
    let next = (offset + (shown as i64) < total).then(|| link(offset + page));
    let first = if shown == 0 { 0 } else { offset + 1 };
    view! {
        <nav class="pager" aria-label="Pages">
            <span class="count" data-testid="list-count">
                {if total == 0 {
                    "Nothing matches".to_string()
                } else {
                    format!("Showing {}–{} of {}", first, offset + shown as i64, thousands(total))
                }}
            </span>
            {prev.map(|h| view! { <a class="button" href=h rel="prev">"Previous"</a> })}
            {next.map(|h| view! { <a class="button" href=h rel="next" data-testid="next-page">"Next"</a> })}
        </nav>
    }
}

/// 5000 → "5,000".
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_counts_read_plainly() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(Some(1_795_000_000)), "2026-11-18 11:06 UTC");
        assert_eq!(when(None), "—");
        assert_eq!(thousands(5000), "5,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(12), "12");
        assert_eq!(capitalise("there is no site x"), "There is no site x.");
        assert_eq!(
            capitalise("olly@elsewhere.test is not allowed"),
            "olly@elsewhere.test is not allowed."
        );
    }

    #[test]
    fn errors_travel_as_json_and_name_their_fields() {
        let e = AdminError::Invalid(vec![FieldProblem {
            field: "url".into(),
            message: "Bad.".into(),
        }]);
        let back: AdminError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back.field("url").as_deref(), Some("Bad."));
        assert_eq!(back.field("name"), None);
        assert_eq!(AdminError::Forbidden.status(), 403);
    }
}

//! The audit log pages: `/audit` (admins: everyone's records) and
//! `/activity` (anyone: their own). Filters are a plain GET form, pages
//! go back in time by keyset (`before=<seq>`), each record opens to its
//! full detail, and any filtered view downloads as CSV or JSON Lines.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::{get_viewer, TopBar};

pub use crate::shared::query::{encode, AuditQuery};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub time: String,
    pub event: String,
    pub outcome: String,
    pub actor: String,
    pub person: String,
    pub site_url: String,
    pub client: String,
    pub role: String,
    pub reason: String,
    pub jti: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub detail: String,
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnteredRow {
    pub site_url: String,
    pub client: String,
    pub role: String,
    pub launches: i64,
    pub last: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub rows: Vec<AuditRow>,
    /// The cursor of the next (older) page, when there is one.
    pub older: Option<i64>,
    /// A filter that could not be applied, in words.
    pub problem: Option<String>,
    /// With a person filter, for admins: the sites that person entered.
    pub entered: Vec<EnteredRow>,
}

/// Records per page.
pub const PAGE: i64 = 50;

#[server(endpoint = "audit_records")]
pub async fn audit_records(q: AuditQuery, mine: bool) -> Result<AuditView, ServerFnError> {
    use super::sites::{signed_in, unavailable};
    use crate::domain::audit::utc;
    let (st, person) = signed_in().await?;
    use crate::service::audit::ViewError;
    let page = match crate::service::audit::records_for(&st.db, &q, &person, mine, PAGE).await {
        Ok(p) => p,
        Err(ViewError::Forbidden) => {
            if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                res.set_status(axum::http::StatusCode::FORBIDDEN);
            }
            return Err(ServerFnError::new(
                "Only admins can see the whole audit log.",
            ));
        }
        Err(ViewError::Filter(problem)) => {
            return Ok(AuditView {
                rows: Vec::new(),
                older: None,
                problem: Some(problem),
                entered: Vec::new(),
            })
        }
        Err(ViewError::Db(e)) => return Err(unavailable(&e)),
    };
    let entered = page
        .entered
        .into_iter()
        .map(|s| EnteredRow {
            site_url: s.site_url,
            client: s.client,
            role: s.role,
            launches: s.launches,
            last: utc(s.last_at),
        })
        .collect();
    let older = page.older;
    Ok(AuditView {
        rows: page
            .rows
            .into_iter()
            .map(|r| {
                let detail = serde_json::from_str::<serde_json::Value>(&r.event.detail)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or(r.event.detail.clone());
                AuditRow {
                    seq: r.seq,
                    time: utc(r.event.at),
                    event: r.event.kind,
                    outcome: r.event.outcome,
                    actor: r.event.actor,
                    person: r.event.subject,
                    site_url: r.event.site_url,
                    client: r.event.client,
                    role: r.event.role,
                    reason: r.event.reason,
                    jti: r.event.jti.unwrap_or_default(),
                    ip: r.event.ip,
                    user_agent: r.event.user_agent,
                    request_id: r.event.request_id,
                    detail,
                    hash: r.hash,
                }
            })
            .collect(),
        older,
        problem: None,
        entered,
    })
}

fn query_from_url() -> Memo<AuditQuery> {
    let map = use_query_map();
    Memo::new(move |_| {
        map.with(|m| {
            let get = |k: &str| m.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
            AuditQuery {
                person: get("person"),
                site: get("site"),
                client: get("client"),
                event: get("event"),
                outcome: get("outcome"),
                since: get("since"),
                until: get("until"),
                before: get("before").parse().ok(),
            }
        })
    })
}

/// `/audit`: everyone's records, for admins.
#[component]
pub fn AuditPage() -> impl IntoView {
    view! { <AuditLog mine=false/> }
}

/// `/activity`: the signed-in person's own records.
#[component]
pub fn ActivityPage() -> impl IntoView {
    view! { <AuditLog mine=true/> }
}

#[component]
fn AuditLog(mine: bool) -> impl IntoView {
    let q = query_from_url();
    let me = Resource::new(|| (), |_| get_viewer());
    let data = Resource::new(move || q.get(), move |q| audit_records(q, mine));
    let (path, title) = if mine {
        ("/activity", "Your activity")
    } else {
        ("/audit", "Audit log")
    };
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let viewer = me.await;
                let Some(person) = viewer.ok().and_then(|v| v.person) else {
                    return view! {
                        <main class="notice">
                            <h1>"Please sign in"</h1>
                            <p><a href="/auth/login" rel="external">"Sign in"</a></p>
                        </main>
                    }.into_any();
                };
                let query = q.get_untracked();
                let body = match data.await {
                    Ok(v) => view! { <Records data=v query=query.clone() mine path/> }.into_any(),
                    Err(e) => view! {
                        <p class="error" role="alert" data-testid="audit-error">
                            {e.to_string().trim_start_matches("error running server function: ").to_string()}
                        </p>
                    }.into_any(),
                };
                view! {
                    <TopBar person/>
                    <main class="dashboard wide">
                        <h1>{title}</h1>
                        <Filters query mine path/>
                        {body}
                    </main>
                }.into_any()
            })}
        </Suspense>
    }
}

#[component]
fn Filters(query: AuditQuery, mine: bool, path: &'static str) -> impl IntoView {
    let kinds = event_kinds();
    view! {
        <form method="get" action=path class="filters" aria-label="Filter the records">
            {(!mine).then(|| view! {
                <div class="field">
                    <label for="f-person">"Person"</label>
                    <input id="f-person" name="person" type="search" value=query.person.clone() placeholder="e-mail"/>
                </div>
                <div class="field">
                    <label for="f-site">"Site"</label>
                    <input id="f-site" name="site" type="search" value=query.site.clone() placeholder="URL or id"/>
                </div>
                <div class="field">
                    <label for="f-client">"Client"</label>
                    <input id="f-client" name="client" type="search" value=query.client.clone()/>
                </div>
            })}
            <div class="field">
                <label for="f-event">"Event"</label>
                <select id="f-event" name="event">
                    <option value="" selected=query.event.is_empty()>"Any"</option>
                    {kinds.into_iter().map(|k| {
                        let sel = query.event == k;
                        view! { <option value=k selected=sel>{k.replace('_', " ")}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="f-outcome">"Outcome"</label>
                <select id="f-outcome" name="outcome">
                    <option value="" selected=query.outcome.is_empty()>"Any"</option>
                    {["success", "failure", "refused"].into_iter().map(|o| {
                        let sel = query.outcome == o;
                        view! { <option value=o selected=sel>{o}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="f-since">"From"</label>
                <input id="f-since" name="since" type="date" value=query.since.clone()/>
            </div>
            <div class="field">
                <label for="f-until">"To"</label>
                <input id="f-until" name="until" type="date" value=query.until.clone()/>
            </div>
            <div class="actions">
                <button type="submit" class="button primary">"Filter"</button>
                <a class="button" href=path rel="external">"Clear"</a>
            </div>
        </form>
    }
}

/// The event kinds a filter can choose from (the same list as the server's).
pub fn event_kinds() -> Vec<&'static str> {
    vec![
        "sign_in",
        "sign_in_failed",
        "sign_out",
        "session_ended",
        "launch",
        "launch_refused",
        "site_created",
        "site_changed",
        "grant_set",
        "grant_revoked",
        "person_changed",
        "key_created",
        "key_activated",
        "key_retired",
        "key_removed",
        "key_revoked",
        "key_rewrapped",
        "service_started",
        "audit_pruned",
        "site_deleted",
        "sites_imported",
        "grants_imported",
        "person_invited",
        "invitation_withdrawn",
        "team_created",
        "team_deleted",
        "team_member_added",
        "team_member_removed",
        "team_grant_set",
        "team_grant_revoked",
        "admin_refused",
        "rate_limited",
        "database_backed_up",
        "grant_expired",
        "site_sessions_end_requested",
        "site_message_delivered",
        "site_message_failed",
        "site_message_cancelled",
        "key_rows_bound",
        "key_rejected",
        "identity_confirmed",
        "identity_refused",
        "connect_code_created",
        "site_connected",
        "site_connect_refused",
        "key_activation_held",
        "elevation_requested",
        "elevation_cancelled",
        "elevation_approved",
        "elevation_self_approved",
        "elevation_denied",
        "elevation_started",
        "elevation_expired",
        "elevation_ended_early",
        "elevation_ended",
        "api_token_created",
        "api_token_revoked",
        "api_call",
        "stream_destination_added",
        "stream_destination_removed",
    ]
}

#[component]
fn Records(data: AuditView, query: AuditQuery, mine: bool, path: &'static str) -> impl IntoView {
    let qs = query.to_query();
    let mine_q = if mine { "mine=1&" } else { "" };
    let csv = format!("/audit/export?{mine_q}format=csv&{qs}");
    let jsonl = format!("/audit/export?{mine_q}format=jsonl&{qs}");
    let older = data.older.map(|seq| {
        let sep = if qs.is_empty() { "" } else { "&" };
        format!("{path}?{qs}{sep}before={seq}")
    });
    let newest = (query.before.is_some()).then(|| {
        if qs.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{qs}")
        }
    });
    let count = data.rows.len();
    view! {
        {data.problem.map(|p| view! { <p class="error" role="alert" data-testid="audit-problem">{p}</p> })}
        {(!data.entered.is_empty()).then(|| view! {
            <section class="entered" aria-labelledby="entered-heading">
                <h2 id="entered-heading">"Sites this person entered"</h2>
                <p class="hint">"Each launch may have created a WordPress account on the site: review these when the person leaves."</p>
                <table data-testid="entered">
                    <thead><tr><th>"Site"</th><th>"Client"</th><th>"Role"</th><th>"Launches"</th><th>"Last launch (UTC)"</th></tr></thead>
                    <tbody>
                        {data.entered.into_iter().map(|e| view! {
                            <tr><td>{e.site_url}</td><td>{e.client}</td><td>{e.role}</td><td>{e.launches}</td><td>{e.last}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        })}
        <div class="toolbar">
            <span class="count" data-testid="audit-count">{format!("{count} record(s) on this page, newest first")}</span>
            <a class="button" href=csv rel="external" download data-testid="export-csv">"Export CSV"</a>
            <a class="button" href=jsonl rel="external" download data-testid="export-jsonl">"Export JSON Lines"</a>
        </div>
        <ol class="records" data-testid="audit-records">
            {data.rows.into_iter().map(|r| {
                let summary_site = if r.site_url.is_empty() { r.client.clone() } else { r.site_url.clone() };
                let outcome_class = format!("outcome {}", r.outcome);
                view! {
                    <li class="record" data-testid="audit-record" data-seq=r.seq data-event=r.event.clone() data-person=r.person.clone()>
                        <details>
                            <summary>
                                <span class="time">{r.time.clone()}</span>
                                <span class="event">{r.event.replace('_', " ")}</span>
                                {(r.event == "elevation_self_approved").then(|| view! {
                                    <span class="badge danger" data-testid="break-glass">"break-glass"</span>
                                })}
                                <span class=outcome_class>{r.outcome.clone()}</span>
                                <span class="who">{r.actor.clone()}</span>
                                {(!r.person.is_empty() && r.person != r.actor).then(|| view! { <span class="for">"for " {r.person.clone()}</span> })}
                                <span class="where">{summary_site}</span>
                                {(!r.reason.is_empty()).then(|| view! { <span class="reason">{r.reason.clone()}</span> })}
                            </summary>
                            <dl>
                                <dt>"Record"</dt><dd>{format!("#{}", r.seq)}</dd>
                                {[
                                    ("Person", r.person.clone()),
                                    ("Site", r.site_url),
                                    ("Client", r.client),
                                    ("Role", r.role),
                                    ("Token id (jti)", r.jti),
                                    ("IP", r.ip),
                                    ("User agent", r.user_agent),
                                    ("Request id", r.request_id),
                                ]
                                .into_iter()
                                .filter(|(_, v)| !v.is_empty())
                                .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
                                .collect_view()}
                                <dt>"Hash"</dt><dd class="mono">{r.hash}</dd>
                            </dl>
                            <pre class="detail">{r.detail}</pre>
                        </details>
                    </li>
                }
            }).collect_view()}
        </ol>
        {(count == 0).then(|| view! { <p class="empty">"No record matches these filters."</p> })}
        <nav class="pager" aria-label="Pages">
            {newest.map(|href| view! { <a class="button" href=href>"Newest"</a> })}
            {older.map(|href| view! { <a class="button" href=href data-testid="older">"Older records"</a> })}
        </nav>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_filter_offers_every_event_kind() {
        assert_eq!(
            super::event_kinds(),
            crate::domain::audit::kind::ALL.to_vec()
        );
    }
}

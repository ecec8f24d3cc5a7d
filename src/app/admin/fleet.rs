//! The fleet in the console: every connector site and how it stands (its
//! plugin, WordPress and PHP versions, the keys it holds, its refusals,
//! its last contact), worst first, filtered from the URL, in pages; "Check
//! now" asks every site at once.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{
    problem, thousands, AdminError, AdminFrame, Field, ListFilter, ListPage, Listed, Outcome,
};

/// Rows per page.
pub const PAGE: i64 = 50;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetFilter {
    pub q: String,
    /// A standing (`unreachable`, `outdated`, ...), or '' for all.
    pub state: String,
    pub offset: i64,
}

impl super::ListFilter for FleetFilter {
    fn fields(&self) -> Vec<(&'static str, &str)> {
        vec![("q", &self.q), ("state", &self.state)]
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn read(get: &dyn Fn(&str) -> String, offset: i64) -> Self {
        FleetFilter {
            q: get("q"),
            state: get("state"),
            offset,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRow {
    pub site_id: String,
    pub url: String,
    pub name: String,
    pub client: String,
    pub standing: String,
    pub attention: String,
    pub connected_by: String,
    pub plugin_version: String,
    pub outdated: bool,
    pub wp_version: String,
    pub php_version: String,
    pub keys: String,
    pub last_contact: String,
    pub refusals: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetPage {
    pub rows: Vec<FleetRow>,
    /// Rows matching the filter.
    pub total: i64,
    /// Sites per standing (all sites), in the standings' order.
    pub counts: Vec<(String, i64)>,
    pub all: i64,
    pub shipped: String,
}

#[server(endpoint = "admin_fleet")]
pub async fn admin_fleet(filter: FleetFilter) -> Result<FleetPage, AdminError> {
    use crate::domain::fleet::Standing;
    let a = super::admin("admin_fleet").await?;
    let entries = match crate::service::fleet::fleet(&a.st).await {
        Ok(e) => e,
        Err(e) => return a.answer(crate::service::sites::ManageError::Db(e)),
    };
    let counts = Standing::ALL
        .iter()
        .map(|s| {
            let n = entries.iter().filter(|e| e.standing == *s).count() as i64;
            (s.as_str().to_string(), n)
        })
        .collect();
    let all = entries.len() as i64;
    let matching = crate::service::fleet::matching(entries, &filter.q, &filter.state);
    let total = matching.len() as i64;
    let rows = matching
        .into_iter()
        .skip(filter.offset.max(0) as usize)
        .take(PAGE as usize)
        .map(|e| FleetRow {
            refusals: e
                .refusals
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            last_contact: if e.answered_at.is_some() {
                when(e.answered_at)
            } else {
                "never".into()
            },
            keys: e.keys.join(" "),
            standing: e.standing.as_str().to_string(),
            site_id: e.site_id,
            url: e.url,
            name: e.name,
            client: e.client,
            attention: e.attention,
            connected_by: e.connected_by.to_string(),
            plugin_version: e.plugin_version,
            outdated: e.outdated,
            wp_version: e.wp_version,
            php_version: e.php_version,
        })
        .collect();
    Ok(FleetPage {
        rows,
        total,
        counts,
        all,
        shipped: crate::domain::fleet::shipped_version().to_string(),
    })
}

/// "Check now": every connector site asked within seconds; with
/// `refresh`, asked to refetch the dashboard's key set first.
#[server(endpoint = "admin_check_fleet")]
pub async fn admin_check_fleet(refresh: bool) -> Result<String, AdminError> {
    let a = super::admin("admin_check_fleet").await?;
    match crate::service::fleet::check_soon(&a.st, None, refresh).await {
        Ok(n) => {
            Ok(format!(
            "{n} site(s) will be asked within seconds{}: reload this page to see their answers.",
            if refresh { " to refetch the key set" } else { "" }
        ))
        }
        Err(e) => a.answer(crate::service::sites::ManageError::Db(e)),
    }
}

/// A connection code just made, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeView {
    pub url: String,
    pub code: String,
    pub expires: String,
}

impl Listed for FleetPage {
    fn shown(&self) -> usize {
        self.rows.len()
    }
    fn total(&self) -> i64 {
        self.total
    }
}

/// Connection codes for these sites (one URL per line or comma): a fresh
/// sign-in, as for every action that lets a site in.
#[server(endpoint = "admin_connect_codes")]
pub async fn admin_connect_codes(
    urls: String,
    client: String,
    hours: String,
) -> Result<Vec<CodeView>, AdminError> {
    let a = super::admin("admin_connect_codes").await?;
    a.recent_sign_in()?;
    let hours: i64 = match hours.trim() {
        "" => 24,
        h => h.parse().unwrap_or(-1),
    };
    let urls: Vec<String> = urls
        .split(['\n', ','])
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    match crate::service::connect::make_codes(
        &a.st.db,
        &a.st.config.public_url,
        &urls,
        &client,
        hours.saturating_mul(3600),
        &a.by,
        a.now,
    )
    .await
    {
        Ok(made) => Ok(made
            .into_iter()
            .map(|m| CodeView {
                expires: when(Some(m.expires_at)),
                url: m.url,
                code: m.code,
            })
            .collect()),
        Err(e) => a.answer(e),
    }
}

/// The standings' names as people read them.
fn label(state: &str) -> &'static str {
    match state {
        "unreachable" => "Unreachable",
        "outdated" => "Outdated plugin",
        "missing-key" => "Missing a key",
        "refusing" => "Refusing launches",
        "unchecked" => "Not checked yet",
        "ok" => "OK",
        _ => "All",
    }
}

/// `/admin/fleet`
#[component]
pub fn FleetPage() -> impl IntoView {
    let filter = super::filter_from_url::<FleetFilter>();
    let check = ServerAction::<AdminCheckFleet>::new();
    // Made here, in the page's own body (not inside the frame's Suspend),
    // so that its hydration id is the same on the server and in the browser.
    let data = Resource::new(
        move || (filter.get(), check.version().get()),
        |(f, _)| admin_fleet(f),
    );
    view! {
        <AdminFrame title="Fleet" section="fleet">
            <p class="muted">"Every site on the connector plugin, asked how it stands every few hours: its plugin, WordPress and PHP versions, the dashboard's keys it holds, the launches it refused. What needs attention comes first."</p>
            <div class="toolbar">
                <ActionForm action=check attr:class="inline-form">
                    <input type="hidden" name="refresh" value="false"/>
                    <button type="submit" class="button primary">"Check now"</button>
                </ActionForm>
                <ActionForm action=check attr:class="inline-form">
                    <input type="hidden" name="refresh" value="true"/>
                    <button type="submit" class="button">"Ask every site to refetch the keys"</button>
                </ActionForm>
                <a class="button" rel="external" download data-testid="fleet-export"
                    href=move || format!("/admin/fleet.csv?{}", filter.get().to_query())>"Export CSV"</a>
            </div>
            <Outcome value=check.value().into() done=|m: &String| m.clone()/>
            <ConnectCodes/>
            <ListPage filter data path="/admin/fleet" page=PAGE noun="the fleet"
                caption="Connector sites" testid="fleet-table" above=fleet_filters
                head=|_: &FleetPage| view! {
                    <th scope="col">"Site"</th><th scope="col">"Standing"</th>
                    <th scope="col">"Plugin"</th><th scope="col">"WordPress / PHP"</th>
                    <th scope="col">"Keys held"</th><th scope="col">"Refusals"</th>
                    <th scope="col">"Last contact"</th><th scope="col">"Connected"</th>
                }
                rows=|page: FleetPage| page.rows.into_iter().map(|r| view! {
                    <tr data-testid="fleet-row" data-url=r.url.clone() data-standing=r.standing.clone()>
                        <td><a href=format!("/admin/sites/{}", r.site_id) class="strong">{r.url.clone()}</a>
                            <br/><span class="muted">{format!("{} · {}", r.name, r.client)}</span></td>
                        <td><span class=format!("state {}", r.standing)>{label(&r.standing)}</span>
                            <br/><span class="muted" data-testid="fleet-attention">{r.attention.clone()}</span></td>
                        <td>{if r.outdated { format!("{} (outdated)", r.plugin_version) } else { r.plugin_version.clone() }}</td>
                        <td>{format!("{} / {}", r.wp_version, r.php_version)}</td>
                        <td><code>{r.keys.clone()}</code></td>
                        <td>{r.refusals.clone()}</td>
                        <td>{r.last_contact.clone()}</td>
                        <td>{if r.connected_by == "code" { "Connected" } else { "By hand" }}</td>
                    </tr>
                }).collect_view()/>
        </AdminFrame>
    }
}

/// The fleet's filters: a link per standing with its count, and the search.
fn fleet_filters(f: &FleetFilter, page: &FleetPage) -> impl IntoView {
    view! {
        <nav class="filters" aria-label="Filter by standing" data-testid="fleet-filters">
            {std::iter::once(("".to_string(), page.all)).chain(page.counts.clone()).map(|(state, n)| {
                let q = FleetFilter { state: state.clone(), q: f.q.clone(), offset: 0 }.to_query();
                let href = if q.is_empty() { "/admin/fleet".to_string() } else { format!("/admin/fleet?{q}") };
                let current = (state == f.state).then_some("page");
                view! { <a href=href aria-current=current class="pill">{format!("{} ({})", label(&state), thousands(n))}</a> }
            }).collect_view()}
        </nav>
        <form method="get" action="/admin/fleet" class="form inline" role="search">
            <input type="hidden" name="state" value=f.state.clone()/>
            <label for="fleet-q">"Find a site"</label>
            <input id="fleet-q" name="q" type="search" value=f.q.clone()/>
            <button type="submit" class="button">"Find"</button>
        </form>
        <p class="muted">{format!("This dashboard ships connector {}.", page.shipped)}</p>
    }
}

/// What making codes did (the form's outcome).
#[allow(clippy::ptr_arg)] // Outcome takes the answer's own type.
fn codes_made(v: &Vec<CodeView>) -> String {
    format!(
        "{} code(s) made: copy them now, they are not shown again.",
        v.len()
    )
}

/// Connection codes for many sites at once: each is shown once, here, to
/// hand to the site (`wp agency-sso connect CODE`, or Settings → Agency SSO).
#[component]
fn ConnectCodes() -> impl IntoView {
    let make = ServerAction::<AdminConnectCodes>::new();
    let made = move || make.value().get().and_then(Result::ok).unwrap_or_default();
    view! {
        <section class="panel" aria-labelledby="codes-heading">
            <h2 id="codes-heading">"Connect sites with codes"</h2>
            <p class="muted">"A code connects one site, once, within its hours: on the site, run wp agency-sso connect CODE, or paste it in Settings → Agency SSO. Codes are shown only here, now."</p>
            <ActionForm action=make attr:class="form" attr:aria-label="Make connection codes">
                <div class="field">
                    <label for="codes-urls">"Site URLs (one per line)"</label>
                    <textarea id="codes-urls" name="urls" rows="4" class="mono" required></textarea>
                    {move || problem(make, "url").get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                </div>
                <Field id="codes-client" name="client" label="Client for new sites" hint="Empty: the site's host." error=problem(make, "client")/>
                <Field id="codes-hours" name="hours" label="Valid for (hours)" hint="24 by default, at most 720." error=problem(make, "ttl")/>
                <div class="actions"><button type="submit" class="button primary">"Make codes"</button></div>
            </ActionForm>
            <Outcome value=make.value().into() done=codes_made/>
            {move || {
                let rows = made();
                (!rows.is_empty()).then(|| view! {
                    <div class="table-wrap">
                    <table class="list" data-testid="connect-codes">
                        <caption class="sr-only">"The codes just made"</caption>
                        <thead><tr><th scope="col">"Site"</th><th scope="col">"Code"</th><th scope="col">"Expires"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|c| view! {
                                <tr data-url=c.url.clone()><td>{c.url.clone()}</td><td><code class="mono">{c.code.clone()}</code></td><td>{c.expires.clone()}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                })
            }}
        </section>
    }
}

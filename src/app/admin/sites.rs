//! Sites in the console: the list (server-side search, filters, pages),
//! a site's settings and who can enter it, adding, deleting, CSV import
//! and export.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{
    problem, thousands, AdminError, AdminFrame, Field, ListFilter, ListPage, Listed, Outcome,
};

/// Rows per page of the list.
pub const PAGE: i64 = 50;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFilter {
    pub q: String,
    pub client: String,
    pub profile: String,
    pub enabled: String,
    pub offset: i64,
}

impl super::ListFilter for SiteFilter {
    fn fields(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("q", &self.q),
            ("client", &self.client),
            ("profile", &self.profile),
            ("enabled", &self.enabled),
        ]
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn read(get: &dyn Fn(&str) -> String, offset: i64) -> Self {
        SiteFilter {
            q: get("q"),
            client: get("client"),
            profile: get("profile"),
            enabled: get("enabled"),
            offset,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRow {
    pub id: String,
    pub name: String,
    pub client: String,
    pub url: String,
    pub profile: String,
    pub roles: String,
    pub enabled: bool,
    pub grants: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitesPage {
    pub rows: Vec<SiteRow>,
    pub total: i64,
    pub clients: Vec<String>,
}

impl Listed for SitesPage {
    fn shown(&self) -> usize {
        self.rows.len()
    }
    fn total(&self) -> i64 {
        self.total
    }
}

#[server(endpoint = "admin_sites")]
pub async fn admin_sites(filter: SiteFilter) -> Result<SitesPage, AdminError> {
    let a = super::admin("admin_sites").await?;
    let q = crate::service::sites::SiteQuery {
        text: filter.q,
        client: filter.client,
        profile: filter.profile,
        enabled: filter.enabled,
    };
    let page = match crate::service::sites::sites_page(&a.st.db, &q, filter.offset, PAGE).await {
        Ok(p) => p,
        Err(e) => return a.answer(e),
    };
    Ok(SitesPage {
        rows: page
            .rows
            .into_iter()
            .map(|l| SiteRow {
                id: l.site.id,
                name: l.site.name,
                client: l.site.client,
                url: l.site.url,
                profile: l.site.profile.as_str().to_string(),
                roles: l.site.roles.join(", "),
                enabled: l.site.enabled,
                grants: l.grants,
            })
            .collect(),
        total: page.total,
        clients: page.clients,
    })
}

#[server(endpoint = "admin_set_site_enabled")]
pub async fn admin_set_site_enabled(id: String, enabled: bool) -> Result<String, AdminError> {
    let a = super::admin("admin_set_site_enabled").await?;
    match crate::service::sites::set_site_enabled(&a.st.db, &id, enabled, &a.by, a.now).await {
        Ok(s) => Ok(format!(
            "{} is now {}.",
            s.name,
            if s.enabled { "enabled" } else { "disabled" }
        )),
        Err(e) => a.answer(e),
    }
}

/// Split a list typed or carried in one field: commas, semicolons, spaces, lines.
#[cfg(feature = "ssr")]
fn list_of(s: &str) -> Vec<String> {
    s.split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

#[server(endpoint = "admin_bulk_grant")]
pub async fn admin_bulk_grant(
    sites: String,
    emails: String,
    role: String,
    duration: String,
    reason: String,
) -> Result<String, AdminError> {
    use crate::service::sites::ManageError;
    let a = super::admin("admin_bulk_grant").await?;
    let terms = a.grant_terms(&role, &duration, &reason)?;
    let (sites, emails) = (list_of(&sites), list_of(&emails));
    if emails.is_empty() {
        return a.answer(ManageError::Invalid(vec![
            crate::domain::sites::FieldError {
                field: "emails",
                message: "give at least one e-mail address".into(),
            },
        ]));
    }
    let domains = &a.st.config.sign_in.allowed_domains;
    match crate::service::access::bulk_grant(
        &a.st.db, domains, &emails, &sites, &role, &terms, &a.by, a.now,
    )
    .await
    {
        Ok(n) => Ok(format!(
            "Granted {role} on {} site(s) to {}: {n} grant(s) set.",
            sites.len(),
            emails.join(", ")
        )),
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_bulk_revoke")]
pub async fn admin_bulk_revoke(sites: String, emails: String) -> Result<String, AdminError> {
    let a = super::admin("admin_bulk_revoke").await?;
    let (sites, emails) = (list_of(&sites), list_of(&emails));
    match crate::service::access::bulk_revoke(&a.st.db, &emails, &sites, &a.by, a.now).await {
        Ok(n) => Ok(format!(
            "{n} direct grant(s) revoked on {} site(s).",
            sites.len()
        )),
        Err(e) => a.answer(e),
    }
}

/// `/admin/sites`
#[component]
pub fn SitesPage() -> impl IntoView {
    view! {
        <AdminFrame title="Sites" section="sites">
            <SitesList/>
        </AdminFrame>
    }
}

#[component]
fn SitesList() -> impl IntoView {
    let filter = super::filter_from_url::<SiteFilter>();
    let toggle = ServerAction::<AdminSetSiteEnabled>::new();
    let bulk = ServerAction::<AdminBulkGrant>::new();
    let unbulk = ServerAction::<AdminBulkRevoke>::new();
    // The sites ticked for a bulk change (kept while paging and filtering).
    let selected = RwSignal::new(std::collections::BTreeSet::<String>::new());
    let data = Resource::new(
        move || {
            (
                filter.get(),
                toggle.version().get(),
                bulk.version().get(),
                unbulk.version().get(),
            )
        },
        |(f, ..)| admin_sites(f),
    );
    view! {
        <div class="toolbar">
            <a class="button primary" href="/admin/sites/new">"Add a site"</a>
            <a class="button" href="/admin/sites/import">"Import CSV"</a>
            <a class="button" rel="external" download data-testid="sites-export"
                href=move || format!("/admin/sites/export?{}", filter.get().to_query())>"Export CSV"</a>
            <a class="button" href="/admin/grants/import">"Import grants"</a>
            <a class="button" rel="external" download data-testid="grants-export" href="/admin/grants.csv">"Export grants"</a>
        </div>
        <Outcome value=toggle.value().into() done=|m: &String| m.clone()/>
        <ListPage filter data path="/admin/sites" page=PAGE noun="sites" caption="Sites" testid="sites-table"
            above=|f: &SiteFilter, page: &SitesPage| view! { <SiteFilters filter=f.clone() clients=page.clients.clone()/> }
            head=move |page: &SitesPage| view! {
                <th scope="col"><SelectAll ids=page.rows.iter().map(|r| r.id.clone()).collect() selected/></th>
                <th scope="col">"Site"</th><th scope="col">"Client"</th>
                <th scope="col">"Profile"</th><th scope="col">"People"</th>
                <th scope="col">"Status"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
            }
            rows=move |page: SitesPage| page.rows.into_iter().map(|s| {
                let href = format!("/admin/sites/{}", s.id);
                let label = if s.enabled { "Disable" } else { "Enable" };
                let aria = format!("{label} {}", s.name);
                let (id, id2) = (s.id.clone(), s.id.clone());
                view! {
                    <tr data-testid="site-row" data-url=s.url.clone()>
                        <td><input type="checkbox" aria-label=format!("Select {}", s.name)
                            prop:checked=move || selected.with(|set| set.contains(&id))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                selected.update(|set| { if on { set.insert(id2.clone()); } else { set.remove(&id2); } });
                            }/></td>
                        <td><a href=href class="strong">{s.name.clone()}</a><br/><span class="muted">{s.url.clone()}</span></td>
                        <td>{s.client.clone()}</td>
                        <td>{s.profile.clone()}</td>
                        <td>{s.grants}</td>
                        <td>{if s.enabled {
                            view! { <span class="pill ok">"Enabled"</span> }.into_any()
                        } else {
                            view! { <span class="pill off">"Disabled"</span> }.into_any()
                        }}</td>
                        <td>
                            <ActionForm action=toggle>
                                <input type="hidden" name="id" value=s.id.clone()/>
                                <input type="hidden" name="enabled" value=(!s.enabled).to_string()/>
                                <button type="submit" class="button small" aria-label=aria>{label}</button>
                            </ActionForm>
                        </td>
                    </tr>
                }
            }).collect_view()/>
        <BulkAccess selected bulk unbulk/>
    }
}

/// Tick or untick every site on this page.
#[component]
fn SelectAll(
    ids: Vec<String>,
    selected: RwSignal<std::collections::BTreeSet<String>>,
) -> impl IntoView {
    let ids = StoredValue::new(ids);
    view! {
        <input type="checkbox" aria-label="Select every site on this page"
            prop:checked=move || ids.with_value(|ids| !ids.is_empty() && selected.with(|set| ids.iter().all(|i| set.contains(i))))
            on:change=move |ev| {
                let on = event_target_checked(&ev);
                ids.with_value(|ids| selected.update(|set| for i in ids {
                    if on { set.insert(i.clone()); } else { set.remove(i); }
                }));
            }/>
    }
}

/// Grant or revoke access on every ticked site at once.
#[component]
fn BulkAccess(
    selected: RwSignal<std::collections::BTreeSet<String>>,
    bulk: ServerAction<AdminBulkGrant>,
    unbulk: ServerAction<AdminBulkRevoke>,
) -> impl IntoView {
    let joined = move || selected.with(|set| set.iter().cloned().collect::<Vec<_>>().join(","));
    let count = move || selected.with(|set| set.len());
    let roles = [
        "administrator",
        "editor",
        "author",
        "contributor",
        "subscriber",
    ];
    view! {
        <section class="panel bulk" aria-labelledby="bulk-heading">
            <h2 id="bulk-heading">"Access on the selected sites"</h2>
            <p class="muted" data-testid="selected-count" aria-live="polite">
                {move || match count() {
                    0 => "Tick sites in the list to grant or revoke access on all of them at once.".to_string(),
                    1 => "1 site selected.".to_string(),
                    n => format!("{n} sites selected."),
                }}
                {move || (count() > 0).then(|| view! {
                    " " <button type="button" class="button small" on:click=move |_| selected.set(Default::default())>"Clear selection"</button>
                })}
            </p>
            <ActionForm action=bulk attr:class="form inline" attr:aria-label="Grant access on the selected sites">
                <input type="hidden" name="sites" prop:value=joined/>
                <Field id="bulk-emails" name="emails" label="People (e-mail addresses)" hint="Separate several with commas." error=problem(bulk, "emails")/>
                <div class="field">
                    <label for="bulk-role">"Role"</label>
                    <select id="bulk-role" name="role">
                        {roles.into_iter().map(|r| view! { <option value=r selected={r == "editor"}>{r}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field" class:invalid=move || problem(bulk, "duration").get().is_some()>
                    <label for="bulk-duration">"For"</label>
                    <select id="bulk-duration" name="duration">
                        {DURATIONS.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
                    </select>
                    <p class="field-error" role="alert">{move || problem(bulk, "duration").get()}</p>
                </div>
                <Field id="bulk-reason" name="reason" label="Reason" hint="Required for a time-limited grant." error=problem(bulk, "reason")/>
                <div class="actions"><button type="submit" class="button primary" disabled=move || count() == 0>"Grant on selected sites"</button></div>
            </ActionForm>
            <Outcome value=bulk.value().into() done=|m: &String| m.clone()/>
            <ActionForm action=unbulk attr:class="form inline" attr:aria-label="Revoke access on the selected sites">
                <input type="hidden" name="sites" prop:value=joined/>
                <Field id="unbulk-emails" name="emails" label="Revoke the direct grants of" hint="E-mail addresses, separated by commas." error=problem(unbulk, "emails")/>
                <div class="actions"><button type="submit" class="button danger" disabled=move || count() == 0>"Revoke on selected sites"</button></div>
            </ActionForm>
            <Outcome value=unbulk.value().into() done=|m: &String| m.clone()/>
        </section>
    }
}

#[component]
fn SiteFilters(filter: SiteFilter, clients: Vec<String>) -> impl IntoView {
    view! {
        <form method="get" action="/admin/sites" class="filters" role="search" aria-label="Find sites">
            <div class="field grow">
                <label for="s-q">"Search"</label>
                <input id="s-q" name="q" type="search" value=filter.q.clone() placeholder="Name, client or URL"/>
            </div>
            <div class="field">
                <label for="s-client">"Client"</label>
                <select id="s-client" name="client">
                    <option value="" selected=filter.client.is_empty()>"All clients"</option>
                    {clients.into_iter().map(|c| {
                        let sel = c == filter.client;
                        view! { <option value=c.clone() selected=sel>{c.clone()}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="s-profile">"Profile"</label>
                <select id="s-profile" name="profile">
                    {[("", "Any"), ("twl-sso", "twl-sso"), ("connector", "connector"), ("miniorange", "miniOrange")].into_iter().map(|(v, l)| {
                        view! { <option value=v selected={filter.profile == v}>{l}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="s-enabled">"Status"</label>
                <select id="s-enabled" name="enabled">
                    {[("", "Any"), ("on", "Enabled"), ("off", "Disabled")].into_iter().map(|(v, l)| {
                        view! { <option value=v selected={filter.enabled == v}>{l}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="actions">
                <button type="submit" class="button primary">"Find"</button>
                <a class="button" href="/admin/sites">"Clear"</a>
            </div>
        </form>
    }
}

/// A site's settings as the edit form shows them (never its secret).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSettings {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub client: String,
    pub url: String,
    pub profile: String,
    pub login_template: String,
    pub username_claim: String,
    pub signing: String,
    pub has_secret: bool,
    pub roles: Vec<String>,
    pub token_lifetime: i64,
    pub enabled: bool,
    pub notes: String,
    pub updated: String,
}

/// One grant that lets someone into the site, and whether it is the one
/// that decides their role there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRow {
    pub email: String,
    pub role: String,
    /// "Direct" or "Team <name>".
    pub from: String,
    pub direct: bool,
    pub expires: Option<String>,
    pub expired: bool,
    pub reason: String,
    /// The grant that gives this person their role here (the highest the site allows).
    pub effective: bool,
    /// Just-in-time: "may ask for administrator, up to 2 hours at a time".
    pub eligible: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDetail {
    pub site: SiteSettings,
    pub access: Vec<AccessRow>,
    /// The dashboard's issuer: the connector plugin's one line of wp-config.php names it.
    pub issuer: String,
    /// Just-in-time: the break-glass limit in minutes ("" when off), and
    /// the people besides admins who decide requests for this site.
    pub self_approval: String,
    pub approvers: Vec<String>,
}

#[cfg(feature = "ssr")]
fn settings(s: crate::domain::sites::Site) -> SiteSettings {
    SiteSettings {
        updated: when(Some(s.updated_at)),
        id: s.id,
        version: s.version,
        name: s.name,
        client: s.client,
        url: s.url,
        profile: s.profile.as_str().into(),
        login_template: s.login_template,
        username_claim: s.username_claim,
        signing: s.signing.as_str().into(),
        has_secret: s.has_secret,
        roles: s.roles,
        token_lifetime: s.token_lifetime,
        enabled: s.enabled,
        notes: s.notes,
    }
}

#[server(endpoint = "admin_site")]
pub async fn admin_site(id: String) -> Result<SiteDetail, AdminError> {
    let a = super::admin("admin_site").await?;
    let (site, entries) = match crate::service::access::site_with_access(&a.st.db, &id, a.now).await
    {
        Ok(Some(found)) => found,
        Ok(None) => return Err(AdminError::Refused("There is no such site.".into())),
        Err(e) => return a.answer(e),
    };
    let access = entries
        .into_iter()
        .map(|e| {
            let r = e.grant;
            AccessRow {
                from: if r.team.is_empty() {
                    "Direct".into()
                } else {
                    format!("Team {}", r.team)
                },
                direct: r.team.is_empty(),
                expires: r.expires_at.map(|t| when(Some(t))),
                expired: r.expires_at.is_some_and(|t| t <= a.now),
                effective: e.effective,
                eligible: match (&r.eligible_role, r.eligible_minutes) {
                    (Some(role), Some(m)) => Some(format!(
                        "may ask for {role}, up to {} at a time",
                        crate::domain::elevation::minutes_text(m)
                    )),
                    _ => None,
                },
                email: r.email,
                role: r.role,
                reason: r.reason,
            }
        })
        .collect();
    let (self_approval, approvers) =
        match crate::service::elevation::site_settings(&a.st.db, &id).await {
            Ok((m, approvers)) => (m.map(|m| m.to_string()).unwrap_or_default(), approvers),
            Err(e) => return a.answer(e),
        };
    Ok(SiteDetail {
        site: settings(site),
        access,
        issuer: a.st.config.public_url.clone(),
        self_approval,
        approvers,
    })
}

#[allow(clippy::too_many_arguments)]
#[server(endpoint = "admin_save_site")]
pub async fn admin_save_site(
    id: String,
    version: i64,
    name: String,
    client: String,
    url: String,
    profile: String,
    login_template: String,
    username_claim: String,
    signing: String,
    secret: String,
    roles: String,
    token_lifetime: String,
    enabled: Option<String>,
    notes: String,
) -> Result<SiteSettings, AdminError> {
    use crate::domain::sites::{FieldError, SiteInput};
    let a = super::admin("admin_save_site").await?;
    let lifetime = match token_lifetime.trim() {
        "" => None,
        v => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return a.answer(crate::service::sites::ManageError::Invalid(vec![
                    FieldError {
                        field: "token_lifetime",
                        message: "give the token lifetime in seconds, from 10 to 300".into(),
                    },
                ]))
            }
        },
    };
    let input = SiteInput {
        name,
        client,
        url,
        profile,
        login_template,
        username_claim,
        signing,
        secret: Some(crate::domain::secrets::Secret::new(secret)),
        roles: roles.split([' ', ',', ';']).map(str::to_string).collect(),
        token_lifetime: lifetime,
        notes,
    };
    // Where tokens go and how they are signed: changing a site's URL,
    // profile or secret is sensitive.
    if !id.is_empty() {
        if let Ok(current) = crate::service::sites::find_site(&a.st.db, &id).await {
            let moved =
                crate::domain::sites::normalise_url(&input.url).is_ok_and(|u| u != current.url);
            let profile = input.profile.trim();
            let reprofiled = !profile.is_empty() && profile != current.profile.as_str();
            let secret = input
                .secret
                .as_ref()
                .is_some_and(|s| !s.expose().trim().is_empty());
            if moved || reprofiled || secret {
                a.recent_sign_in()?;
            }
        }
    }
    let saved = if id.is_empty() {
        crate::service::sites::create_site(&a.st.db, &a.st.master_keys, input, &a.by, a.now).await
    } else {
        crate::service::sites::update_site(
            &a.st.db,
            &a.st.master_keys,
            &id,
            version,
            input,
            enabled.is_some(),
            &a.by,
            a.now,
        )
        .await
    };
    match saved {
        Ok(s) => Ok(settings(s)),
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_delete_site")]
pub async fn admin_delete_site(id: String, confirm: String) -> Result<String, AdminError> {
    let a = super::admin("admin_delete_site").await?;
    a.recent_sign_in()?;
    match crate::service::sites::delete_site(&a.st.db, &id, &confirm, &a.by, a.now).await {
        Ok(s) => Ok(format!("{} ({}) was deleted.", s.name, s.url)),
        Err(e) => a.answer(e),
    }
}

/// Durations offered for a time-limited grant, in minutes.
pub const DURATIONS: [(&str, &str); 7] = [
    ("", "Until revoked"),
    ("60", "1 hour"),
    ("240", "4 hours"),
    ("480", "8 hours"),
    ("1440", "1 day"),
    ("10080", "1 week"),
    ("43200", "30 days"),
];

/// How long an eligible role may be held at a time, as the grant form offers.
pub const ELIGIBLE_LIMITS: [(&str, &str); 6] = [
    ("30", "30 minutes"),
    ("60", "1 hour"),
    ("120", "2 hours"),
    ("240", "4 hours"),
    ("480", "8 hours"),
    ("1440", "1 day"),
];

#[allow(clippy::too_many_arguments)]
#[server(endpoint = "admin_grant")]
pub async fn admin_grant(
    site: String,
    email: String,
    role: String,
    duration: String,
    reason: String,
    /// Just-in-time: a higher role the person may ask for ("none" for none),
    /// and for how many minutes at a time; absent: the grant's
    /// eligibility is kept as it is.
    eligible: Option<String>,
    eligible_minutes: Option<String>,
) -> Result<String, AdminError> {
    use crate::service::sites::ManageError;
    let a = super::admin("admin_grant").await?;
    // The site's own highest role is as sensitive as administrator.
    if let Ok(s) = crate::service::sites::find_site(&a.st.db, &site).await {
        if crate::domain::access::is_sensitive_role_on(role.trim(), &s.roles) {
            a.recent_sign_in()?;
        }
    }
    let terms = a.grant_terms(&role, &duration, &reason)?;
    if let Some(eligible) = eligible {
        return grant_eligible(
            &a,
            &site,
            &email,
            &role,
            &terms,
            &eligible,
            eligible_minutes,
        )
        .await;
    }
    let domains = &a.st.config.sign_in.allowed_domains;
    match crate::service::access::grant_with(
        &a.st.db, domains, &email, &site, &role, &terms, &a.by, a.now,
    )
    .await
    {
        Ok((role, s)) => Ok(match terms.expires_at {
            None => format!("{} can now enter {} as {role}.", email.trim(), s.name),
            Some(t) => format!(
                "{} can enter {} as {role} until {}.",
                email.trim(),
                s.name,
                when(Some(t))
            ),
        }),
        Err(ManageError::Refused(m)) if m.contains("e-mail") || m.contains("domain") => {
            a.answer(ManageError::Invalid(vec![
                crate::domain::sites::FieldError {
                    field: "email",
                    message: m,
                },
            ]))
        }
        Err(ManageError::Refused(m)) if m.contains("role") => a.answer(ManageError::Invalid(vec![
            crate::domain::sites::FieldError {
                field: "role",
                message: m,
            },
        ])),
        Err(e) => a.answer(e),
    }
}

/// A grant with (or without) its eligibility for a higher role.
#[cfg(feature = "ssr")]
async fn grant_eligible(
    a: &super::Admin,
    site: &str,
    email: &str,
    role: &str,
    terms: &crate::domain::access::GrantTerms,
    eligible: &str,
    minutes: Option<String>,
) -> Result<String, AdminError> {
    use crate::service::elevation::ElevationError;
    // "none": eligible for nothing (an empty form value reads as absent).
    let eligible = match eligible.trim() {
        "none" => "",
        e => e,
    };
    let field = |field: &str, message: String| {
        super::fail(AdminError::Invalid(vec![super::FieldProblem {
            field: field.into(),
            message,
        }]))
    };
    let minutes = match minutes.as_deref().map(str::trim) {
        _ if eligible.is_empty() => 0,
        Some(m) => match m.parse::<i64>() {
            Ok(m) => m,
            Err(_) => return field("eligible_minutes", "Choose for how long at a time.".into()),
        },
        None => return field("eligible_minutes", "Choose for how long at a time.".into()),
    };
    let domains = &a.st.config.sign_in.allowed_domains;
    let wanted = (!eligible.is_empty()).then_some((eligible, minutes));
    match crate::service::access::grant_eligible(
        &a.st.db, domains, email, site, role, terms, wanted, &a.by, a.now,
    )
    .await
    {
        Ok((role, s)) => {
            let entry = match terms.expires_at {
                None => format!("{} can now enter {} as {role}", email.trim(), s.name),
                Some(t) => format!(
                    "{} can enter {} as {role} until {}",
                    email.trim(),
                    s.name,
                    when(Some(t))
                ),
            };
            Ok(match wanted {
                Some((r, m)) => format!(
                    "{entry}, and ask for {r} for up to {}.",
                    crate::domain::elevation::minutes_text(m)
                ),
                None => format!("{entry}."),
            })
        }
        Err(ElevationError::Invalid(m)) => {
            let (name, m) = m.split_once(": ").unwrap_or(("eligible", m.as_str()));
            let name = if name == "max_minutes" {
                "eligible_minutes"
            } else {
                "eligible"
            };
            field(name, super::capitalise(m))
        }
        Err(ElevationError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

#[server(endpoint = "admin_revoke_grant")]
pub async fn admin_revoke_grant(site: String, email: String) -> Result<String, AdminError> {
    let a = super::admin("admin_revoke_grant").await?;
    match crate::service::access::revoke(&a.st.db, &email, &site, &a.by, a.now).await {
        Ok(s) => Ok(format!(
            "{} can no longer enter {} directly.",
            email.trim(),
            s.name
        )),
        Err(e) => a.answer(e),
    }
}

/// `/admin/sites/new`
#[component]
pub fn NewSitePage() -> impl IntoView {
    view! {
        <AdminFrame title="Add a site" section="sites">
            <SiteForm site=SiteSettings { enabled: true, token_lifetime: 60, ..Default::default() }/>
        </AdminFrame>
    }
}

/// `/admin/sites/:id`
#[component]
pub fn SitePage() -> impl IntoView {
    let id = super::id_param();
    let grant = ServerAction::<AdminGrant>::new();
    let revoke = ServerAction::<AdminRevokeGrant>::new();
    let glass = ServerAction::<AdminSetBreakGlass>::new();
    let approver = ServerAction::<AdminSetApprover>::new();
    let data = Resource::new(
        move || {
            (
                id.get(),
                grant.version().get(),
                revoke.version().get(),
                glass.version().get(),
                approver.version().get(),
            )
        },
        |(id, ..)| admin_site(id),
    );
    view! {
        <AdminFrame title="Site" section="sites">
            <Suspense fallback=|| view! { <p class="loading">"Loading the site…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(d) => view! {
                            <p class="breadcrumb"><a href="/admin/sites">"Sites"</a>" › "{d.site.name.clone()}</p>
                            <div class="columns">
                                <section aria-labelledby="settings-heading" class="panel">
                                    <h2 id="settings-heading">"Settings"</h2>
                                    {(d.site.profile == "connector").then(|| view! {
                                        <ConnectorSetup issuer=d.issuer.clone() url=d.site.url.clone()/>
                                    })}
                                    <SiteForm site=d.site.clone()/>
                                </section>
                                <section aria-labelledby="access-heading" class="panel">
                                    <h2 id="access-heading">"Who can enter"</h2>
                                    <Access site=d.site.clone() rows=d.access.clone() grant revoke/>
                                </section>
                            </div>
                            <JitSettings site=d.site.clone() self_approval=d.self_approval.clone() approvers=d.approvers.clone() glass approver/>
                            <DeleteSite site=d.site.clone()/>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

#[component]
fn SiteForm(site: SiteSettings) -> impl IntoView {
    let save = ServerAction::<AdminSaveSite>::new();
    let is_new = site.id.is_empty();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(s)) = save.value().get() {
            if is_new {
                navigate(&format!("/admin/sites/{}", s.id), Default::default());
            }
        }
    });
    let p = move |f: &'static str| problem(save, f);
    let lifetime = site.token_lifetime.to_string();
    let roles = site.roles.join(" ");
    let profile = RwSignal::new(site.profile.clone());
    let secret_hint = if site.has_secret {
        "A secret is set. Leave this empty to keep it; it is never shown again."
    } else {
        "miniOrange (HS256) sites only: at least 32 characters. Never shown again."
    };
    view! {
        <ActionForm action=save attr:class="form" attr:aria-label="Site settings">
            <input type="hidden" name="id" value=site.id.clone()/>
            <input type="hidden" name="version" value=site.version.to_string()/>
            <Field id="site-name" name="name" label="Name" value=site.name.clone() required=true error=p("name")/>
            <Field id="site-client" name="client" label="Client" value=site.client.clone() required=true error=p("client")/>
            <Field id="site-url" name="url" label="URL" value=site.url.clone() kind="url" required=true
                hint="The site's address; tokens name it as their audience." error=p("url")/>
            <div class="field" class:invalid=move || p("profile").get().is_some()>
                <label for="site-profile">"Plugin profile"</label>
                <select id="site-profile" name="profile" on:change=move |ev| profile.set(event_target_value(&ev))>
                    <option value="twl-sso" selected={site.profile != "miniorange" && site.profile != "connector"}>"twl-sso (RS256, key set)"</option>
                    <option value="connector" selected={site.profile == "connector"}>"agency-sso connector (our plugin)"</option>
                    <option value="miniorange" selected={site.profile == "miniorange"}>"miniOrange JWT login"</option>
                </select>
                <p class="field-error" role="alert" data-testid="site-profile-error">{move || p("profile").get()}</p>
            </div>
            <Show when=move || profile.get() == "miniorange">
                <MiniOrangeLimits/>
            </Show>
            <div class="field" class:invalid=move || p("signing").get().is_some()>
                <label for="site-signing">"Signing"</label>
                <select id="site-signing" name="signing">
                    <option value="" selected=site.signing.is_empty()>"Profile default"</option>
                    <option value="RS256" selected={site.signing == "RS256"}>"RS256"</option>
                    <option value="HS256" selected={site.signing == "HS256"}>"HS256 (shared secret)"</option>
                </select>
                <p class="field-error" role="alert" data-testid="site-signing-error">{move || p("signing").get()}</p>
            </div>
            <Field id="site-secret" name="secret" label="Shared secret" kind="password" hint=secret_hint error=p("secret")/>
            <Field id="site-login" name="login_template" label="Login URL template" value=site.login_template.clone()
                hint="Empty: the profile's default." error=p("login_template")/>
            <Field id="site-username" name="username_claim" label="Username claim" value=site.username_claim.clone() error=p("username_claim")/>
            <Field id="site-roles" name="roles" label="Roles that may be granted" value=roles
                hint="Highest first, separated by spaces. Empty: the five WordPress core roles." error=p("roles")/>
            <Field id="site-lifetime" name="token_lifetime" label="Token lifetime (seconds)" value=lifetime kind="number" error=p("token_lifetime")/>
            {(!is_new).then(|| view! {
                <div class="field check">
                    <input id="site-enabled" name="enabled" type="checkbox" value="on" checked=site.enabled/>
                    <label for="site-enabled">"Enabled (staff can enter it)"</label>
                </div>
            })}
            <div class="field" class:invalid=move || p("notes").get().is_some()>
                <label for="site-notes">"Notes"</label>
                <textarea id="site-notes" name="notes" rows="3">{crate::app::textarea_text(site.notes.clone())}</textarea>
                <p class="field-error" role="alert" data-testid="site-notes-error">{move || p("notes").get()}</p>
            </div>
            <div class="actions">
                <button type="submit" class="button primary">{if is_new { "Add the site" } else { "Save changes" }}</button>
            </div>
            <Outcome value=save.value().into() done=|s: &SiteSettings| format!("Saved {}.", s.name)/>
        </ActionForm>
    }
}

/// How to set a `connector` site up: the plugin zip (built from
/// wordpress/agency-sso-connector with the dashboard) and the one line of
/// wp-config.php that names this dashboard.
#[component]
fn ConnectorSetup(issuer: String, url: String) -> impl IntoView {
    let line = format!("define( 'AGENCY_SSO_ISSUER', '{issuer}' );");
    view! {
        <aside class="callout" data-testid="connector-setup" aria-label="Setting the site up">
            <p><strong>"Setting the site up"</strong></p>
            <ol>
                <li>"Download "<a href="/agency-sso-connector.zip" download="agency-sso-connector.zip">"the agency-sso connector plugin"</a>
                    " and install it on the site: Plugins → Add New → Upload Plugin, then Activate."</li>
                <li>"Add this line to the site's wp-config.php, above \"That's all, stop editing\":"
                    <pre><code data-testid="connector-config-line">{line}</code></pre></li>
                <li>"Check that Settings → Agency SSO on the site shows "<code>{url}</code>" as the site's URL, and press “Test the connection”."</li>
            </ol>
        </aside>
    }
}

/// What miniOrange's free plugin (WP Login and Register using JWT 2.3.0)
/// does with a launch, as CONTRACT.md records it: the admin who picks the
/// profile reads it before relying on it.
#[component]
fn MiniOrangeLimits() -> impl IntoView {
    view! {
        <aside class="callout" data-testid="miniorange-limits" aria-label="What the miniOrange plugin does">
            <p><strong>"What miniOrange's free plugin will and will not do"</strong></p>
            <ul>
                <li>"It does not apply roles: the person enters the WordPress account that matches, \
                    or a new one with the site's default role (usually Subscriber). The role granted \
                    here is recorded, not applied."</li>
                <li>"It finds the WordPress user by login name only, from the claim mapped as its \
                    Username attribute: set the Username claim below to that name and make each \
                    person's WordPress login their e-mail address, or a second account is created."</li>
                <li>"Deep links are not followed: every launch lands on the site's home page."</li>
                <li>"It does not check which site a token is for, so each site needs a secret of its \
                    own: a secret another site already uses is refused."</li>
                <li>"It logs a person in only when nobody is logged in to the site in that browser."</li>
            </ul>
        </aside>
    }
}

#[component]
fn Access(
    site: SiteSettings,
    rows: Vec<AccessRow>,
    grant: ServerAction<AdminGrant>,
    revoke: ServerAction<AdminRevokeGrant>,
) -> impl IntoView {
    let p = move |f: &'static str| problem(grant, f);
    let people = rows.iter().filter(|r| r.effective).count();
    view! {
        <p class="muted" data-testid="access-count">{format!("{} can enter this site.", thousands(people as i64))}</p>
        <div class="table-wrap">
        <table class="list" data-testid="access-table">
            <caption class="sr-only">"Grants on this site"</caption>
            <thead><tr><th scope="col">"Person"</th><th scope="col">"Role"</th><th scope="col">"From"</th><th scope="col">"Until"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let site_id = site.id.clone();
                    let email = r.email.clone();
                    let label = format!("Revoke {}'s direct grant", r.email);
                    let row_class = if r.expired { "expired" } else if r.effective { "effective" } else { "" };
                    view! {
                        <tr data-testid="access-row" data-email=r.email.clone() class=row_class>
                            <td>{r.email.clone()}</td>
                            <td>{r.role.clone()}
                                {r.effective.then(|| view! { <span class="pill ok" title="The role this person enters with">"effective"</span> })}
                                {r.expired.then(|| view! { <span class="pill off">"expired"</span> })}
                                {r.eligible.clone().map(|e| view! { <br/><span class="muted" data-testid="eligible">{e}</span> })}
                            </td>
                            <td>{r.from.clone()}{(!r.reason.is_empty()).then(|| view! { <br/><span class="muted">{r.reason.clone()}</span> })}</td>
                            <td>{r.expires.clone().unwrap_or_else(|| "—".into())}</td>
                            <td>{r.direct.then(|| view! {
                                <ActionForm action=revoke>
                                    <input type="hidden" name="site" value=site_id.clone()/>
                                    <input type="hidden" name="email" value=email.clone()/>
                                    <button type="submit" class="button small danger" aria-label=label.clone()>"Revoke"</button>
                                </ActionForm>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
        <Outcome value=revoke.value().into() done=|m: &String| m.clone()/>
        <h3>"Grant access"</h3>
        <ActionForm action=grant attr:class="form inline" attr:aria-label="Grant access to this site">
            <input type="hidden" name="site" value=site.id.clone()/>
            <Field id="grant-email" name="email" label="E-mail" kind="email" required=true error=p("email")/>
            <div class="field" class:invalid=move || p("role").get().is_some()>
                <label for="grant-role">"Role"</label>
                <select id="grant-role" name="role">
                    {site.roles.iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}
                </select>
                <p class="field-error" role="alert" data-testid="grant-role-error">{move || p("role").get()}</p>
            </div>
            <div class="field" class:invalid=move || p("duration").get().is_some()>
                <label for="grant-duration">"For"</label>
                <select id="grant-duration" name="duration">
                    {DURATIONS.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
                </select>
                <p class="field-error" role="alert" data-testid="grant-duration-error">{move || p("duration").get()}</p>
            </div>
            <Field id="grant-reason" name="reason" label="Reason" hint="Required for a time-limited grant." error=p("reason")/>
            <div class="field" class:invalid=move || p("eligible").get().is_some()>
                <label for="grant-eligible">"May ask for"</label>
                <select id="grant-eligible" name="eligible">
                    <option value="none">"Nothing more"</option>
                    {site.roles.iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}
                </select>
                <p class="hint">"Just-in-time: a higher role they may ask for; an approver decides, and it ends by itself."</p>
                <p class="field-error" role="alert" data-testid="grant-eligible-error">{move || p("eligible").get()}</p>
            </div>
            <div class="field" class:invalid=move || p("eligible_minutes").get().is_some()>
                <label for="grant-eligible-minutes">"Up to, at a time"</label>
                <select id="grant-eligible-minutes" name="eligible_minutes">
                    {ELIGIBLE_LIMITS.into_iter().map(|(v, l)| view! { <option value=v selected={v == "120"}>{l}</option> }).collect_view()}
                </select>
                <p class="field-error" role="alert" data-testid="grant-eligible-minutes-error">{move || p("eligible_minutes").get()}</p>
            </div>
            <div class="actions"><button type="submit" class="button primary">"Grant"</button></div>
        </ActionForm>
        <Outcome value=grant.value().into() done=|m: &String| m.clone()/>
    }
}

/// Break-glass limits an admin may set, in minutes ("" is off).
pub const BREAK_GLASS: [(&str, &str); 5] = [
    ("", "Off"),
    ("15", "15 minutes"),
    ("30", "30 minutes"),
    ("60", "1 hour"),
    ("120", "2 hours"),
];

/// Set a site's break-glass limit ("" for off). A recent sign-in needed.
#[server(endpoint = "admin_set_break_glass")]
pub async fn admin_set_break_glass(site: String, minutes: String) -> Result<String, AdminError> {
    let a = super::admin("admin_set_break_glass").await?;
    a.recent_sign_in()?;
    let minutes = match minutes.trim() {
        "" => None,
        m => match m.parse::<i64>() {
            Ok(m) => Some(m),
            Err(_) => return super::fail(AdminError::Refused("Choose how long, or Off.".into())),
        },
    };
    match crate::service::elevation::set_self_approval(&a.st.db, &site, minutes, &a.by, a.now).await {
        Ok(s) => Ok(match minutes {
            Some(m) => format!(
                "People eligible on {} may now approve their own request for up to {}, loudly recorded.",
                s.name,
                crate::domain::elevation::minutes_text(m)
            ),
            None => format!("Nobody approves their own request on {}.", s.name),
        }),
        Err(crate::service::elevation::ElevationError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

/// Name (`on` = "true") or remove someone who decides requests for a site.
/// Name (`on` = "true") or remove someone who decides the requests for a
/// site (`site`), or for the grants of a team (`team`).
#[server(endpoint = "admin_set_approver")]
pub async fn admin_set_approver(
    site: Option<String>,
    team: Option<String>,
    email: String,
    on: String,
) -> Result<String, AdminError> {
    use crate::service::elevation as jit;
    let a = super::admin("admin_set_approver").await?;
    let on = on == "true";
    let domains = &a.st.config.sign_in.allowed_domains;
    let (db, by, now) = (&a.st.db, &a.by, a.now);
    let done = match (site, team) {
        (Some(site), None) => jit::set_site_approver(db, domains, &email, &site, on, by, now)
            .await
            .map(|s| s.name),
        (None, Some(team)) => jit::set_team_approver(db, domains, &email, &team, on, by, now)
            .await
            .map(|t| format!("the team {t}")),
        _ => return super::fail(AdminError::Refused("Choose a site or a team.".into())),
    };
    match done {
        Ok(what) if on => Ok(format!(
            "{} may now decide requests for {what}.",
            email.trim()
        )),
        Ok(what) => Ok(format!(
            "{} no longer decides requests for {what}.",
            email.trim()
        )),
        Err(jit::ElevationError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

/// The site's just-in-time settings: break-glass, and named approvers.
#[component]
fn JitSettings(
    site: SiteSettings,
    self_approval: String,
    approvers: Vec<String>,
    glass: ServerAction<AdminSetBreakGlass>,
    approver: ServerAction<AdminSetApprover>,
) -> impl IntoView {
    let (site1, site2) = (site.id.clone(), site.id.clone());
    view! {
        <section class="panel" aria-labelledby="jit-heading">
            <h2 id="jit-heading">"Just-in-time access"</h2>
            <p class="hint">"Who decides requests for a higher role here besides admins, and whether people may approve their own in an emergency."</p>
            <ActionForm action=glass attr:class="form inline" attr:aria-label="Break-glass">
                <input type="hidden" name="site" value=site1/>
                <div class="field">
                    <label for="break-glass">"Break-glass self-approval"</label>
                    <select id="break-glass" name="minutes">
                        {BREAK_GLASS.into_iter().map(|(v, l)| view! { <option value=v selected={v == self_approval}>{l}</option> }).collect_view()}
                    </select>
                </div>
                <div class="actions"><button type="submit" class="button">"Save"</button></div>
            </ActionForm>
            <Outcome value=glass.value().into() done=|m: &String| m.clone()/>
            <h3>"Approvers"</h3>
            <Approvers scope="site" id=site2 approvers approver/>
        </section>
    }
}

/// The people named to decide requests for a site or a team (`scope`),
/// each removable, and a form to name one more.
#[component]
pub fn Approvers(
    scope: &'static str,
    id: String,
    approvers: Vec<String>,
    approver: ServerAction<AdminSetApprover>,
) -> impl IntoView {
    let id2 = id.clone();
    view! {
        <ul data-testid="approvers">
            {approvers.into_iter().map(|email| {
                let label = format!("Remove {email} as an approver");
                let id = id.clone();
                view! {
                <li>{email.clone()}
                    <ActionForm action=approver attr:class="inline-form">
                        <input type="hidden" name=scope value=id/>
                        <input type="hidden" name="email" value=email.clone()/>
                        <input type="hidden" name="on" value="false"/>
                        <button type="submit" class="button small" aria-label=label>"Remove"</button>
                    </ActionForm>
                </li>
            }}).collect_view()}
        </ul>
        <ActionForm action=approver attr:class="form inline" attr:aria-label="Name an approver">
            <input type="hidden" name=scope value=id2/>
            <input type="hidden" name="on" value="true"/>
            <div class="field">
                <label for="approver-email">"Approver's e-mail"</label>
                <input id="approver-email" name="email" type="email" required/>
            </div>
            <div class="actions"><button type="submit" class="button">"Name approver"</button></div>
        </ActionForm>
        <Outcome value=approver.value().into() done=|m: &String| m.clone()/>
    }
}

#[component]
fn DeleteSite(site: SiteSettings) -> impl IntoView {
    let delete = ServerAction::<AdminDeleteSite>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = delete.value().get() {
            navigate("/admin/sites", Default::default());
        }
    });
    view! {
        <section class="panel danger-zone" aria-labelledby="delete-heading">
            <h2 id="delete-heading">"Delete this site"</h2>
            <p>"Everyone loses access at once and its grants are removed. The audit log keeps its history. This cannot be undone."</p>
            <ActionForm action=delete attr:class="form inline" attr:aria-label="Delete this site">
                <input type="hidden" name="id" value=site.id.clone()/>
                <Field id="delete-confirm" name="confirm" label="Type the site's URL to confirm"
                    hint="" error=problem(delete, "confirm")/>
                <div class="actions"><button type="submit" class="button danger">"Delete site"</button></div>
            </ActionForm>
            <Outcome value=delete.value().into() done=|m: &String| m.clone()/>
        </section>
    }
}

/// One row of an import preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub line: u64,
    pub url: String,
    pub name: String,
    /// "create", "update", "unchanged" or "invalid".
    pub action: String,
    /// The fields an update changes, or why the row is invalid.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub rows: Vec<PreviewRow>,
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub invalid: usize,
    pub digest: String,
}

/// What an import reads: `sites` (the default) or `grants`.
#[cfg(feature = "ssr")]
fn grants_import(kind: &Option<String>) -> bool {
    kind.as_deref() == Some("grants")
}

#[cfg(feature = "ssr")]
impl Preview {
    fn new(tally: crate::domain::import::Tally, digest: String, rows: Vec<PreviewRow>) -> Self {
        Preview {
            create: tally.create,
            update: tally.update,
            unchanged: tally.unchanged,
            invalid: tally.invalid,
            digest,
            rows,
        }
    }
}

#[server(endpoint = "admin_import_preview")]
pub async fn admin_import_preview(
    csv: String,
    kind: Option<String>,
) -> Result<Preview, AdminError> {
    use crate::domain::import::Change;
    use crate::service::sites::ManageError;
    let a = super::admin("admin_import_preview").await?;
    let as_field = |e: ManageError| match e {
        ManageError::Refused(m) => ManageError::Invalid(vec![crate::domain::sites::FieldError {
            field: "csv",
            message: m,
        }]),
        e => e,
    };
    if grants_import(&kind) {
        let domains = &a.st.config.sign_in.allowed_domains;
        return match crate::service::access::preview_grant_import(&a.st.db, domains, &csv, a.now)
            .await
        {
            Ok(plan) => Ok(grants_preview(plan)),
            Err(e) => a.answer(as_field(e)),
        };
    }
    let plan = match crate::service::sites::preview_import(&a.st.db, &a.st.master_keys, &csv).await
    {
        Ok(p) => p,
        Err(e) => return a.answer(as_field(e)),
    };
    let rows = plan
        .rows
        .into_iter()
        .map(|p| {
            let (action, notes) = match p.change {
                Change::Create(..) => ("create", Vec::new()),
                Change::Update { fields, .. } => (
                    "update",
                    fields.iter().map(|f| f.replace('_', " ")).collect(),
                ),
                Change::Unchanged => ("unchanged", Vec::new()),
                Change::Invalid(e) => ("invalid", e),
            };
            PreviewRow {
                line: p.line,
                url: p.url,
                name: p.name,
                action: action.into(),
                notes,
            }
        })
        .collect();
    Ok(Preview::new(plan.tally, plan.digest, rows))
}

/// A grants import's plan as the preview table shows it: the person in
/// the name column, the site's URL beside it.
#[cfg(feature = "ssr")]
fn grants_preview(plan: crate::service::access::GrantImportPlan) -> Preview {
    use crate::domain::grant_import::Change;
    let eligible = |e: &Option<(String, i64)>| match e {
        Some((r, m)) => format!(
            "may ask for {r} for up to {}",
            crate::domain::elevation::minutes_text(*m)
        ),
        None => "may ask for nothing more".to_string(),
    };
    let rows = plan
        .rows
        .into_iter()
        .map(|p| {
            let (action, notes) = match p.change {
                Change::Create(w) => ("create", vec![w.role.clone(), eligible(&w.eligible)]),
                Change::Update { before, after, .. } => {
                    let mut notes = Vec::new();
                    if before.role != after.role {
                        notes.push(format!("{} → {}", before.role, after.role));
                    }
                    if before.expires_at != after.expires_at || before.reason != after.reason {
                        notes.push("new end or reason".to_string());
                    }
                    if before.eligible != after.eligible {
                        notes.push(eligible(&after.eligible));
                    }
                    ("update", notes)
                }
                Change::Unchanged => ("unchanged", Vec::new()),
                Change::Invalid(e) => ("invalid", e),
            };
            PreviewRow {
                line: p.line,
                url: p.site_url,
                name: p.email,
                action: action.into(),
                notes,
            }
        })
        .collect();
    Preview::new(plan.tally, plan.digest, rows)
}

#[server(endpoint = "admin_import_apply")]
pub async fn admin_import_apply(
    csv: String,
    digest: String,
    kind: Option<String>,
) -> Result<String, AdminError> {
    let a = super::admin("admin_import_apply").await?;
    a.recent_sign_in()?;
    if grants_import(&kind) {
        let domains = &a.st.config.sign_in.allowed_domains;
        return match crate::service::access::apply_grant_import(
            &a.st.db, domains, &csv, &digest, &a.by, a.now,
        )
        .await
        {
            Ok(t) => Ok(format!(
                "Imported: {} grant(s) added, {} updated, {} unchanged, {} invalid row(s) skipped.",
                t.create, t.update, t.unchanged, t.invalid
            )),
            Err(e) => a.answer(e),
        };
    }
    match crate::service::sites::apply_import(
        &a.st.db,
        &a.st.master_keys,
        &csv,
        &digest,
        &a.by,
        a.now,
    )
    .await
    {
        Ok(t) => Ok(format!(
            "Imported: {} site(s) added, {} updated, {} unchanged, {} invalid row(s) skipped.",
            t.create, t.update, t.unchanged, t.invalid
        )),
        Err(e) => a.answer(e),
    }
}

/// `/admin/sites/import`
#[component]
pub fn ImportPage() -> impl IntoView {
    view! {
        <AdminFrame title="Import sites from CSV" section="sites">
            <Import kind="sites"/>
        </AdminFrame>
    }
}

/// `/admin/grants/import`
#[component]
pub fn GrantsImportPage() -> impl IntoView {
    view! {
        <AdminFrame title="Import grants from CSV" section="sites">
            <Import kind="grants"/>
        </AdminFrame>
    }
}

#[component]
fn Import(kind: &'static str) -> impl IntoView {
    let preview = ServerAction::<AdminImportPreview>::new();
    let apply = ServerAction::<AdminImportApply>::new();
    let csv = RwSignal::new(String::new());
    let grants = kind == "grants";
    let help = if grants {
        view! {
            <p>"The first line names the columns: " <code>{GRANT_IMPORT_COLUMNS}</code>
               ". " <code>"email"</code>", "<code>"site"</code>" (its URL) and "<code>"role"</code>
               " are required. Each row gives a person a role on a site, replacing the grant they have there; a row with "
               <code>"expires_utc"</code>" (such as 2027-01-31T18:00:00Z) and a reason is a time-limited grant. "
               <code>"eligible_role"</code>" and "<code>"eligible_max_minutes"</code>" make the grant eligible for a higher role (just-in-time access); empty cells keep what the grant has, "
               <code>"none"</code>" takes it away. Grants the file does not name stay. An export is a valid import."</p>
        }
        .into_any()
    } else {
        view! {
            <p>"The first line names the columns: " <code>{IMPORT_COLUMNS}</code>
               ". " <code>"name"</code>", "<code>"client"</code>" and "<code>"url"</code>
               " are required. A row whose URL matches an existing site updates it (empty cells keep its values); other rows add sites. An export is a valid import."</p>
        }
        .into_any()
    };
    let noun = if grants { "grant(s)" } else { "site(s)" };
    view! {
        <p class="breadcrumb"><a href="/admin/sites">"Sites"</a>{if grants { " › Import grants" } else { " › Import" }}</p>
        {help}
        <ActionForm action=preview attr:class="form" attr:aria-label="Preview an import">
            <input type="hidden" name="kind" value=kind/>
            <div class="field">
                <label for="import-file">"CSV file"</label>
                <input id="import-file" type="file" accept=".csv,text/csv" on:change=move |ev| read_file(ev, csv)/>
            </div>
            <div class="field" class:invalid=move || problem(preview, "csv").get().is_some()>
                <label for="import-csv">"Or paste the CSV"</label>
                <textarea id="import-csv" name="csv" rows="8" class="mono"
                    prop:value=move || csv.get() on:input=move |ev| csv.set(event_target_value(&ev))></textarea>
                <p class="field-error" role="alert" data-testid="import-csv-error">{move || problem(preview, "csv").get()}</p>
            </div>
            <div class="actions"><button type="submit" class="button primary">"Preview changes"</button></div>
        </ActionForm>
        <Outcome value=preview.value().into() done=|p: &Preview| format!(
            "Dry run: nothing was changed yet. {} to add, {} to update, {} unchanged, {} invalid.",
            p.create, p.update, p.unchanged, p.invalid)/>
        {move || preview.value().get().and_then(|r| r.ok()).map(|p| {
            let valid = p.create + p.update;
            let label = if p.invalid > 0 {
                format!("Import {valid} {noun}, skipping {} invalid row(s)", p.invalid)
            } else {
                format!("Import {valid} {noun}")
            };
            view! {
                <div class="table-wrap">
                <table class="list" data-testid="preview-table">
                    <caption class="sr-only">"What the import would do"</caption>
                    <thead><tr><th scope="col">"Line"</th><th scope="col">{if grants { "Person and site" } else { "Site" }}</th><th scope="col">"Change"</th><th scope="col">"Details"</th></tr></thead>
                    <tbody>
                        {p.rows.into_iter().map(|r| view! {
                            <tr data-testid="preview-row" data-action=r.action.clone() class=format!("preview {}", r.action)>
                                <td>{r.line}</td>
                                <td>{r.name.clone()}<br/><span class="muted">{r.url.clone()}</span></td>
                                <td><span class=format!("pill {}", r.action)>{r.action.clone()}</span></td>
                                <td><ul class="plain">{r.notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
                {(valid > 0).then(|| view! {
                    <ActionForm action=apply attr:class="form inline" attr:aria-label="Apply the import">
                        <input type="hidden" name="csv" prop:value=move || csv.get()/>
                        <input type="hidden" name="digest" value=p.digest.clone()/>
                        <input type="hidden" name="kind" value=kind/>
                        <button type="submit" class="button primary" data-testid="apply-import">{label}</button>
                    </ActionForm>
                })}
            }
        })}
        <Outcome value=apply.value().into() done=|m: &String| m.clone()/>
    }
}

/// The import columns, for the page's instructions.
pub const IMPORT_COLUMNS: &str =
    "name,client,url,profile,login_template,username_claim,signing,roles,token_lifetime,enabled,notes,secret";

/// The grants import's columns, for the page's instructions.
pub const GRANT_IMPORT_COLUMNS: &str =
    "email,site,role,expires_utc,reason,eligible_role,eligible_max_minutes";

/// Read a chosen file into the text area (in the browser).
#[allow(unused_variables)]
fn read_file(ev: leptos::ev::Event, into: RwSignal<String>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        leptos::task::spawn_local(async move {
            if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
                if let Some(s) = text.as_string() {
                    into.set(s);
                }
            }
        });
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_page_names_the_columns_the_import_reads() {
        use crate::domain::import::{COLUMNS, SECRET_COLUMN};
        assert_eq!(
            super::IMPORT_COLUMNS,
            format!("{},{SECRET_COLUMN}", COLUMNS.join(","))
        );
        assert_eq!(
            super::GRANT_IMPORT_COLUMNS,
            crate::domain::grant_import::COLUMNS.join(",")
        );
    }
}

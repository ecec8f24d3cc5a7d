//! Teams in the console: a named set of people granted roles on sites or on
//! every site of a client, so a new site or a new hire gets access in one step.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::sites::DURATIONS;
#[cfg(feature = "ssr")]
use super::when;
use super::{problem, AdminError, AdminFrame, Field, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub members: i64,
    pub grants: i64,
}

#[server(endpoint = "admin_teams")]
pub async fn admin_teams() -> Result<Vec<TeamRow>, AdminError> {
    let a = super::admin("admin_teams").await?;
    match crate::service::teams::list(&a.st.db).await {
        Ok(list) => Ok(list
            .into_iter()
            .map(|t| TeamRow {
                id: t.id,
                name: t.name,
                description: t.description,
                members: t.members,
                grants: t.grants,
            })
            .collect()),
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_create_team")]
pub async fn admin_create_team(name: String, description: String) -> Result<String, AdminError> {
    let a = super::admin("admin_create_team").await?;
    match crate::service::teams::create_team(&a.st.db, &name, &description, &a.by, a.now).await {
        Ok(id) => Ok(id),
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_delete_team")]
pub async fn admin_delete_team(id: String) -> Result<String, AdminError> {
    let a = super::admin("admin_delete_team").await?;
    match crate::service::teams::delete_team(&a.st.db, &id, &a.by, a.now).await {
        Ok(()) => Ok("The team was deleted; its members lost what it granted them.".into()),
        Err(e) => a.answer(e),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub email: String,
    pub name: String,
    pub added: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamGrantRow {
    pub id: String,
    /// "Every site of Acme" or the site's URL.
    pub target: String,
    pub role: String,
    pub until: Option<String>,
    pub expired: bool,
    pub reason: String,
    /// Just-in-time: "may ask for administrator, up to 2 hours at a time".
    pub eligible: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamDetail {
    pub team: TeamRow,
    pub members: Vec<MemberRow>,
    pub grants: Vec<TeamGrantRow>,
    pub clients: Vec<String>,
    pub roles: Vec<String>,
    /// People named to decide requests resting on the team's grants.
    pub approvers: Vec<String>,
}

#[server(endpoint = "admin_team")]
pub async fn admin_team(id: String) -> Result<TeamDetail, AdminError> {
    let a = super::admin("admin_team").await?;
    let d = match crate::service::teams::team_detail(&a.st.db, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return Err(AdminError::Refused("There is no such team.".into())),
        Err(e) => return a.answer(e),
    };
    let (team, members, grants, clients) = (d.team, d.members, d.grants, d.clients);
    let approvers = match crate::service::elevation::team_approvers(&a.st.db, &team.id).await {
        Ok(list) => list,
        Err(e) => return a.answer(e),
    };
    Ok(TeamDetail {
        approvers,
        team: TeamRow {
            id: team.id,
            name: team.name,
            description: team.description,
            members: team.members,
            grants: team.grants,
        },
        members: members
            .into_iter()
            .map(|m| MemberRow {
                name: m.name.unwrap_or_else(|| "not signed in yet".into()),
                email: m.email,
                added: when(Some(m.added_at)),
            })
            .collect(),
        grants: grants
            .into_iter()
            .map(|g| TeamGrantRow {
                target: match (&g.client, &g.site_url) {
                    (Some(c), _) => format!("Every site of {c}"),
                    (_, Some(u)) => u.clone(),
                    _ => "—".into(),
                },
                expired: g.expires_at.is_some_and(|t| t <= a.now),
                until: g.expires_at.map(|t| when(Some(t))),
                eligible: match (&g.eligible_role, g.eligible_minutes) {
                    (Some(r), Some(m)) => Some(format!(
                        "may ask for {r}, up to {} at a time",
                        crate::domain::elevation::minutes_text(m)
                    )),
                    _ => None,
                },
                id: g.id,
                role: g.role,
                reason: g.reason,
            })
            .collect(),
        clients,
        roles: crate::domain::sites::CORE_ROLES
            .iter()
            .map(|r| r.to_string())
            .collect(),
    })
}

#[server(endpoint = "admin_add_members")]
pub async fn admin_add_members(team: String, emails: String) -> Result<String, AdminError> {
    let a = super::admin("admin_add_members").await?;
    match crate::service::teams::grants_a_sensitive_role(&a.st.db, &team, a.now).await {
        Ok(true) => a.recent_sign_in()?,
        Ok(false) => {}
        Err(e) => return a.answer(crate::service::sites::ManageError::from(e)),
    }
    let domains = &a.st.config.sign_in.allowed_domains;
    match crate::service::teams::add_members(&a.st.db, domains, &team, &emails, &a.by, a.now).await
    {
        Ok(added) if added.is_empty() => Ok("They were already in the team.".into()),
        Ok(added) => Ok(format!("Added {}.", added.join(", "))),
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_remove_member")]
pub async fn admin_remove_member(team: String, email: String) -> Result<String, AdminError> {
    let a = super::admin("admin_remove_member").await?;
    match crate::service::teams::remove_member(&a.st.db, &team, &email, &a.by, a.now).await {
        Ok(()) => Ok(format!("{} left the team.", email.trim())),
        Err(e) => a.answer(e),
    }
}

/// `target`: "client:<name>" or "site:<id or URL>".
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "admin_grant_team")]
pub async fn admin_grant_team(
    team: String,
    target: String,
    site: String,
    role: String,
    duration: String,
    reason: String,
    /// Just-in-time: a higher role the members may ask for ("none" or
    /// absent: nothing more), and the minutes at a time.
    eligible: Option<String>,
    eligible_minutes: Option<String>,
) -> Result<String, AdminError> {
    use crate::service::sites::ManageError;
    let a = super::admin("admin_grant_team").await?;
    let terms = a.grant_terms(&role, &duration, &reason)?;
    let eligible = eligible
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "none");
    let eligible = match eligible {
        None => None,
        Some(r) => match eligible_minutes
            .as_deref()
            .map(str::trim)
            .map(str::parse::<i64>)
        {
            Some(Ok(m)) => Some((r, m)),
            _ => {
                return a.answer(ManageError::Invalid(vec![
                    crate::domain::sites::FieldError {
                        field: "eligible_minutes",
                        message: "choose for how long at a time".into(),
                    },
                ]))
            }
        },
    };
    let (site, client) = match target.split_once(':') {
        Some(("client", c)) => (None, Some(c.to_string())),
        _ => (Some(site), None),
    };
    match crate::service::teams::grant_team(
        &a.st.db,
        &team,
        site.as_deref(),
        client.as_deref(),
        &role,
        &terms,
        eligible,
        &a.by,
        a.now,
    )
    .await
    {
        Ok(()) => Ok(match (&client, terms.expires_at) {
            (Some(c), None) => format!("The team is now {} on every site of {c}.", role.trim()),
            (Some(c), Some(t)) => format!(
                "The team is {} on every site of {c} until {}.",
                role.trim(),
                when(Some(t))
            ),
            (None, _) => format!("The team is now {} on that site.", role.trim()),
        }),
        Err(ManageError::UnknownSite(s)) => a.answer(ManageError::Invalid(vec![
            crate::domain::sites::FieldError {
                field: "site",
                message: format!("there is no site {s}"),
            },
        ])),
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_revoke_team_grant")]
pub async fn admin_revoke_team_grant(id: String) -> Result<String, AdminError> {
    let a = super::admin("admin_revoke_team_grant").await?;
    match crate::service::teams::revoke_team_grant(&a.st.db, &id, &a.by, a.now).await {
        Ok(()) => Ok("The team grant was revoked.".into()),
        Err(e) => a.answer(e),
    }
}

/// `/admin/teams`
#[component]
pub fn TeamsPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateTeam>::new();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = create.value().get() {
            navigate(&format!("/admin/teams/{id}"), Default::default());
        }
    });
    let data = Resource::new(move || create.version().get(), |_| admin_teams());
    view! {
        <AdminFrame title="Teams" section="teams">
            <p class="lead">"A team is a set of people given a role on chosen sites, or on every site of a client — including sites added later. Add a new hire to a team and they can enter its sites at their first sign-in."</p>
            <section class="panel" aria-labelledby="new-team-heading">
                <h2 id="new-team-heading">"New team"</h2>
                <ActionForm action=create attr:class="form inline" attr:aria-label="Create a team">
                    <Field id="team-name" name="name" label="Name" required=true error=problem(create, "name")/>
                    <Field id="team-description" name="description" label="Description" error=problem(create, "description")/>
                    <div class="actions"><button type="submit" class="button primary">"Create team"</button></div>
                </ActionForm>
                <Outcome value=create.value().into() done=|_: &String| "Team created.".to_string()/>
            </section>
            <Suspense fallback=|| view! { <p class="loading">"Loading teams…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No teams yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                            <table class="list" data-testid="teams-table">
                                <caption class="sr-only">"Teams"</caption>
                                <thead><tr><th scope="col">"Team"</th><th scope="col">"Members"</th><th scope="col">"Grants"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|t| view! {
                                        <tr data-testid="team-row">
                                            <td><a class="strong" href=format!("/admin/teams/{}", t.id)>{t.name.clone()}</a><br/><span class="muted">{t.description.clone()}</span></td>
                                            <td>{t.members}</td>
                                            <td>{t.grants}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

/// `/admin/teams/:id`
#[component]
pub fn TeamPage() -> impl IntoView {
    let id = super::id_param();
    let add = ServerAction::<AdminAddMembers>::new();
    let remove = ServerAction::<AdminRemoveMember>::new();
    let grant = ServerAction::<AdminGrantTeam>::new();
    let revoke = ServerAction::<AdminRevokeTeamGrant>::new();
    let delete = ServerAction::<AdminDeleteTeam>::new();
    let approver = ServerAction::<super::sites::AdminSetApprover>::new();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = delete.value().get() {
            navigate("/admin/teams", Default::default());
        }
    });
    let data = Resource::new(
        move || {
            (
                id.get(),
                add.version().get(),
                remove.version().get(),
                grant.version().get(),
                revoke.version().get(),
                approver.version().get(),
            )
        },
        |(id, ..)| admin_team(id),
    );
    view! {
        <AdminFrame title="Team" section="teams">
            <Suspense fallback=|| view! { <p class="loading">"Loading the team…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(d) => {
                            let team_id = d.team.id.clone();
                            let (add_id, grant_id, delete_id) = (team_id.clone(), team_id.clone(), team_id.clone());
                            view! {
                                <p class="breadcrumb"><a href="/admin/teams">"Teams"</a>" › "{d.team.name.clone()}</p>
                                <h2 data-testid="team-name">{d.team.name.clone()}</h2>
                                <p class="muted">{d.team.description.clone()}</p>
                                <div class="columns">
                                    <section class="panel" aria-labelledby="members-heading">
                                        <h2 id="members-heading">"Members"</h2>
                                        <ul class="plain" data-testid="members">
                                            {d.members.into_iter().map(|m| {
                                                let tid = team_id.clone();
                                                let email = m.email.clone();
                                                view! {
                                                    <li data-testid="member" data-email=m.email.clone()>
                                                        <strong>{m.email.clone()}</strong>" "<span class="muted">{format!("{} · added {}", m.name, m.added)}</span>
                                                        <ActionForm action=remove attr:class="inline-form">
                                                            <input type="hidden" name="team" value=tid/>
                                                            <input type="hidden" name="email" value=email.clone()/>
                                                            <button type="submit" class="button small" aria-label=format!("Remove {email} from the team")>"Remove"</button>
                                                        </ActionForm>
                                                    </li>
                                                }
                                            }).collect_view()}
                                        </ul>
                                        <Outcome value=remove.value().into() done=|m: &String| m.clone()/>
                                        <ActionForm action=add attr:class="form" attr:aria-label="Add members">
                                            <input type="hidden" name="team" value=add_id/>
                                            <Field id="members-emails" name="emails" label="Add people (e-mail addresses)"
                                                hint="Separate several with commas. They need not have signed in yet." error=problem(add, "emails")/>
                                            <div class="actions"><button type="submit" class="button primary">"Add"</button></div>
                                        </ActionForm>
                                        <Outcome value=add.value().into() done=|m: &String| m.clone()/>
                                    </section>
                                    <section class="panel" aria-labelledby="team-grants-heading">
                                        <h2 id="team-grants-heading">"What the team can enter"</h2>
                                        <ul class="plain" data-testid="team-grants">
                                            {d.grants.into_iter().map(|g| view! {
                                                <li data-testid="team-grant" class:expired=g.expired>
                                                    <strong>{g.target.clone()}</strong>" as "<strong>{g.role.clone()}</strong>
                                                    {g.until.clone().map(|u| view! { <span class="muted">{format!(" until {u}")}</span> })}
                                                    {g.expired.then(|| view! { <span class="pill off">"expired"</span> })}
                                                    {(!g.reason.is_empty()).then(|| view! { <span class="muted">{format!(" — {}", g.reason)}</span> })}
                                                    {g.eligible.clone().map(|e| view! { <br/><span class="muted" data-testid="team-eligible">{e}</span> })}
                                                    <ActionForm action=revoke attr:class="inline-form">
                                                        <input type="hidden" name="id" value=g.id.clone()/>
                                                        <button type="submit" class="button small danger" aria-label=format!("Revoke the team's grant on {}", g.target)>"Revoke"</button>
                                                    </ActionForm>
                                                </li>
                                            }).collect_view()}
                                        </ul>
                                        <Outcome value=revoke.value().into() done=|m: &String| m.clone()/>
                                        <ActionForm action=grant attr:class="form" attr:aria-label="Grant the team a role">
                                            <input type="hidden" name="team" value=grant_id/>
                                            <div class="field" class:invalid=move || problem(grant, "target").get().is_some()>
                                                <label for="tg-target">"On"</label>
                                                <select id="tg-target" name="target">
                                                    <option value="site">"One site (give its URL below)"</option>
                                                    {d.clients.into_iter().map(|c| view! {
                                                        <option value=format!("client:{c}")>{format!("Every site of {c}")}</option>
                                                    }).collect_view()}
                                                </select>
                                                <p class="field-error" role="alert">{move || problem(grant, "target").get()}</p>
                                            </div>
                                            <Field id="tg-site" name="site" label="Site URL" hint="Only for one site." error=problem(grant, "site")/>
                                            <div class="field" class:invalid=move || problem(grant, "role").get().is_some()>
                                                <label for="tg-role">"Role"</label>
                                                <select id="tg-role" name="role">
                                                    {d.roles.iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}
                                                </select>
                                                <p class="field-error" role="alert">{move || problem(grant, "role").get()}</p>
                                            </div>
                                            <div class="field" class:invalid=move || problem(grant, "duration").get().is_some()>
                                                <label for="tg-duration">"For"</label>
                                                <select id="tg-duration" name="duration">
                                                    {DURATIONS.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
                                                </select>
                                                <p class="field-error" role="alert">{move || problem(grant, "duration").get()}</p>
                                            </div>
                                            <Field id="tg-reason" name="reason" label="Reason" hint="Required for a time-limited grant." error=problem(grant, "reason")/>
                                            <div class="field" class:invalid=move || problem(grant, "eligible_role").get().is_some()>
                                                <label for="tg-eligible">"Members may ask for"</label>
                                                <select id="tg-eligible" name="eligible">
                                                    <option value="none">"Nothing more"</option>
                                                    {d.roles.iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}
                                                </select>
                                                <p class="field-error" role="alert">{move || problem(grant, "eligible_role").get()}</p>
                                            </div>
                                            <div class="field" class:invalid=move || problem(grant, "max_minutes").get().is_some()>
                                                <label for="tg-eligible-minutes">"Up to, at a time"</label>
                                                <select id="tg-eligible-minutes" name="eligible_minutes">
                                                    {super::sites::ELIGIBLE_LIMITS.into_iter().map(|(v, l)| view! { <option value=v selected={v == "120"}>{l}</option> }).collect_view()}
                                                </select>
                                                <p class="field-error" role="alert">{move || problem(grant, "max_minutes").get()}</p>
                                            </div>
                                            <div class="actions"><button type="submit" class="button primary">"Grant"</button></div>
                                        </ActionForm>
                                        <Outcome value=grant.value().into() done=|m: &String| m.clone()/>
                                    </section>
                                </div>
                                <section class="panel" aria-labelledby="team-approvers-heading">
                                    <h2 id="team-approvers-heading">"Who decides requests"</h2>
                                    <p class="hint">"Besides admins, these people approve or deny the requests for a higher role that rest on this team's grants (never their own)."</p>
                                    <super::sites::Approvers scope="team" id=team_id.clone() approvers=d.approvers.clone() approver/>
                                </section>
                                <section class="panel danger-zone" aria-labelledby="delete-team-heading">
                                    <h2 id="delete-team-heading">"Delete this team"</h2>
                                    <p>"Its members lose what the team granted them at once."</p>
                                    <ActionForm action=delete attr:class="inline-form">
                                        <input type="hidden" name="id" value=delete_id/>
                                        <button type="submit" class="button danger">"Delete team"</button>
                                    </ActionForm>
                                    <Outcome value=delete.value().into() done=|m: &String| m.clone()/>
                                </section>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

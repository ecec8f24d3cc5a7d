//! People in the console: the list with search, invitations, one person's
//! standing (admin, disabled), their access and their last activity.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{encode, problem, AdminError, AdminFrame, Field, ListPage, Listed, Outcome};

pub const PAGE: i64 = 50;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleFilter {
    pub q: String,
    pub standing: String,
    pub offset: i64,
}

impl super::ListFilter for PeopleFilter {
    fn fields(&self) -> Vec<(&'static str, &str)> {
        vec![("q", &self.q), ("standing", &self.standing)]
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn read(get: &dyn Fn(&str) -> String, offset: i64) -> Self {
        PeopleFilter {
            q: get("q"),
            standing: get("standing"),
            offset,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub admin: bool,
    pub disabled: bool,
    pub last_sign_in: String,
    pub sessions: i64,
    pub grants: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRow {
    pub email: String,
    pub admin: bool,
    pub invited: String,
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRow {
    pub email: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub first_seen: String,
    pub last_seen: String,
    pub attempts: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeoplePage {
    pub rows: Vec<PersonRow>,
    pub total: i64,
    pub invitations: Vec<InvitationRow>,
    pub held: Vec<HeldRow>,
}

/// The form deciding one held sign-in (`decision`: "confirm" or "refuse").
fn held_decision(
    decide: ServerAction<AdminDecideHeld>,
    h: &HeldRow,
    decision: &'static str,
    text: &'static str,
) -> impl IntoView {
    let verb = if decision == "confirm" {
        "Confirm"
    } else {
        "Refuse"
    };
    let label = format!("{verb} the new account of {}", h.email);
    let (issuer, subject) = (h.issuer.clone(), h.subject.clone());
    view! {
        <ActionForm action=decide attr:class="inline-form">
            <input type="hidden" name="issuer" value=issuer/>
            <input type="hidden" name="subject" value=subject/>
            <input type="hidden" name="decision" value=decision/>
            <button type="submit" class="button small" aria-label=label>{text}</button>
        </ActionForm>
    }
}

/// `decision`: "confirm" (the new account at the provider is the person
/// who holds the address) or "refuse".
#[server(endpoint = "admin_decide_held")]
pub async fn admin_decide_held(
    issuer: String,
    subject: String,
    decision: String,
) -> Result<String, AdminError> {
    let a = super::admin("admin_decide_held").await?;
    let confirm = decision == "confirm";
    if confirm {
        // It hands someone's access to another account: sensitive.
        a.recent_sign_in()?;
    }
    match crate::service::people::decide_held(&a.st.db, &issuer, &subject, confirm, &a.by, a.now)
        .await
    {
        Ok(email) if confirm => Ok(format!(
            "Confirmed: {email} now signs in with the new account; the old one no longer can."
        )),
        Ok(email) => Ok(format!(
            "Refused: the new account for {email} cannot sign in."
        )),
        Err(e) => a.answer(e),
    }
}

impl Listed for PeoplePage {
    fn shown(&self) -> usize {
        self.rows.len()
    }
    fn total(&self) -> i64 {
        self.total
    }
}

#[server(endpoint = "admin_people")]
pub async fn admin_people(filter: PeopleFilter) -> Result<PeoplePage, AdminError> {
    let a = super::admin("admin_people").await?;
    let (q, standing) = (&filter.q, &filter.standing);
    let page =
        crate::service::people::people_page(&a.st.db, q, standing, a.now, filter.offset, PAGE);
    let page = match page.await {
        Ok(p) => p,
        Err(e) => return a.answer(e),
    };
    Ok(PeoplePage {
        rows: page
            .rows
            .into_iter()
            .map(|l| PersonRow {
                name: l.person.display_name().to_string(),
                id: l.person.id,
                email: l.person.email,
                admin: l.person.is_admin,
                disabled: l.person.disabled,
                last_sign_in: when(l.person.last_sign_in_at),
                sessions: l.sessions,
                grants: l.grants,
            })
            .collect(),
        total: page.total,
        invitations: page
            .invitations
            .into_iter()
            .map(|i| InvitationRow {
                email: i.email,
                admin: i.make_admin != 0,
                invited: when(Some(i.invited_at)),
                by: i.invited_by,
            })
            .collect(),
        held: page
            .held
            .into_iter()
            .map(|h| HeldRow {
                name: h.name.clone().unwrap_or_default(),
                email: h.email,
                issuer: h.issuer,
                subject: h.subject,
                first_seen: when(Some(h.first_seen_at)),
                last_seen: when(Some(h.last_seen_at)),
                attempts: h.attempts,
            })
            .collect(),
    })
}

#[server(endpoint = "admin_invite")]
pub async fn admin_invite(email: String, admin: Option<String>) -> Result<String, AdminError> {
    let a = super::admin("admin_invite").await?;
    let make_admin = admin.is_some();
    if make_admin {
        a.recent_sign_in()?;
    }
    let domains = &a.st.config.sign_in.allowed_domains;
    match crate::service::people::invite(&a.st.db, domains, &email, make_admin, &a.by, a.now).await
    {
        Ok(email) => Ok(format!(
            "{email} is invited{}. They get access when they first sign in.",
            if make_admin { " as an admin" } else { "" }
        )),
        Err(crate::service::sites::ManageError::Refused(m)) => {
            a.answer(crate::service::sites::ManageError::Invalid(vec![
                crate::domain::sites::FieldError {
                    field: "email",
                    message: m,
                },
            ]))
        }
        Err(e) => a.answer(e),
    }
}

#[server(endpoint = "admin_withdraw_invitation")]
pub async fn admin_withdraw_invitation(email: String) -> Result<String, AdminError> {
    let a = super::admin("admin_withdraw_invitation").await?;
    match crate::service::people::withdraw_invitation(&a.st.db, &email, &a.by, a.now).await {
        Ok(()) => Ok(format!(
            "The invitation for {} was withdrawn.",
            email.trim()
        )),
        Err(e) => a.answer(e),
    }
}

/// `change`: "promote", "demote", "disable" or "enable".
#[server(endpoint = "admin_set_standing")]
pub async fn admin_set_standing(id: String, change: String) -> Result<String, AdminError> {
    use crate::service::people::Standing;
    let a = super::admin("admin_set_standing").await?;
    let standing = match change.as_str() {
        "promote" => Standing::Admin(true),
        "demote" => Standing::Admin(false),
        "disable" => Standing::Disabled(true),
        "enable" => Standing::Disabled(false),
        _ => return Err(AdminError::Refused("Unknown change.".into())),
    };
    if standing == Standing::Admin(true) {
        a.recent_sign_in()?;
    }
    match crate::service::people::set_standing(&a.st.db, &id, standing, &a.by, a.now).await {
        Ok(p) => Ok(match standing {
            Standing::Admin(true) => format!("{} is now an admin.", p.email),
            Standing::Admin(false) => format!("{} is now staff.", p.email),
            Standing::Disabled(true) => format!(
                "{} is disabled: their sessions have ended and launches are refused.",
                p.email
            ),
            Standing::Disabled(false) => format!("{} can sign in again.", p.email),
        }),
        Err(e) => a.answer(e),
    }
}

/// A site a person can enter, with the role and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonAccess {
    pub site_id: String,
    pub site: String,
    pub url: String,
    pub client: String,
    /// The role they enter with, if any grant is live and allowed.
    pub role: Option<String>,
    /// Every grant: "editor (direct)", "administrator (team Ops, until …)".
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub time: String,
    pub event: String,
    pub site: String,
    pub outcome: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonDetail {
    /// How many sites their grants cover (the page lists the first [`ACCESS_SHOWN`]).
    pub sites_total: usize,
    pub person: PersonRow,
    pub teams: Vec<String>,
    pub access: Vec<PersonAccess>,
    pub activity: Vec<Activity>,
    /// Just-in-time access: their elevations in force, and their requests
    /// waiting for a decision.
    pub elevated: Vec<super::access::AccessRow>,
    pub asking: Vec<super::access::AccessRow>,
}

/// One site of a person's offboarding checklist, as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStep {
    pub site_url: String,
    pub client: String,
    /// What was asked: "Lock the account", "Set the role to author"...
    pub asked: String,
    /// done, pending, attention (the site's answer did not confirm it),
    /// failed, cancelled, or by-hand.
    pub state: String,
    /// What the site reported, or why it is waiting or failed.
    pub report: String,
    pub requested: String,
    pub finished: String,
    /// Each attempt to deliver the message, when and what came of it;
    /// empty when the first attempt got through.
    pub history: Vec<String>,
}

/// A person's offboarding checklist: how many sites are in each state,
/// and the first [`STEPS_SHOWN`] of them, the ones that need attention first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarding {
    pub steps: Vec<SiteStep>,
    pub total: usize,
    pub done: usize,
    pub pending: usize,
    /// Pending, and the site's last answer did not confirm it.
    pub attention: usize,
    pub failed: usize,
    /// Their site was deleted or left the connector profile first.
    pub cancelled: usize,
    pub by_hand: usize,
    /// Just-in-time elevations still in force ("administrator on Acme until
    /// …"): disabling the person ends them, with their `set-role` messages.
    pub elevated: Vec<String>,
}

/// Sites listed in the checklist on the page (the CSV has them all).
pub const STEPS_SHOWN: usize = 100;

#[server(endpoint = "admin_offboarding")]
pub async fn admin_offboarding(id: String) -> Result<Offboarding, AdminError> {
    let a = super::admin("admin_offboarding").await?;
    use crate::service::elevation::{self as jit, Which};
    let (leaver, rows) = match crate::service::messages::checklist_of(&a.st.db, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(AdminError::Refused("There is no such person.".into())),
        Err(e) => return a.answer(e),
    };
    let elevated = match jit::list(&a.st.db, Which::Active, Some(&leaver.email), 100).await {
        Ok(list) => list
            .into_iter()
            .map(|e| format!("{} on {} until {}", e.role, e.site_url, when(e.ends_at)))
            .collect(),
        Err(e) => return a.answer(e),
    };
    let mut steps: Vec<SiteStep> = rows.into_iter().map(site_step).collect();
    let count = |state: &str| steps.iter().filter(|s| s.state == state).count();
    let (total, done, pending, attention, failed, cancelled, by_hand) = (
        steps.len(),
        count("done"),
        count("pending"),
        count("attention"),
        count("failed"),
        count("cancelled"),
        count("by-hand"),
    );
    // What needs attention first: failed or unconfirmed, pending, then
    // done, cancelled, then by hand.
    let rank = |s: &SiteStep| match s.state.as_str() {
        "failed" | "attention" => 0,
        "pending" => 1,
        "done" => 2,
        "cancelled" => 3,
        _ => 4,
    };
    steps.sort_by_key(rank);
    steps.truncate(STEPS_SHOWN);
    Ok(Offboarding {
        steps,
        total,
        done,
        pending,
        attention,
        failed,
        cancelled,
        by_hand,
        elevated,
    })
}

#[cfg(feature = "ssr")]
fn site_step(r: crate::service::messages::ChecklistRow) -> SiteStep {
    let state = crate::service::messages::row_state(&r);
    let Some(m) = r.message else {
        return SiteStep {
            asked: "Nothing can be sent".into(),
            state: "by-hand".into(),
            report: format!(
                "The {} plugin takes no messages: end the sessions and lock the account on the site by hand.",
                r.profile
            ),
            site_url: r.site_url,
            client: r.client,
            requested: String::new(),
            finished: String::new(),
            history: Vec::new(),
        };
    };
    let answer = crate::service::messages::site_answer(&m);
    let asked = match (m.action.as_str(), m.role.as_str()) {
        ("lock", _) | ("set-role", "") => "Lock the account".to_string(),
        ("set-role", role) => format!("Set the role to {role}"),
        _ => "End all sessions".to_string(),
    };
    let report = match (state, answer) {
        ("done", Some(a)) if a.superseded => {
            "Superseded by a newer change: the site had already applied a newer message (or this one, at an earlier attempt), so it did nothing.".to_string()
        }
        ("done", Some(a)) if !a.user_found => {
            "No account for them there: nothing to do.".to_string()
        }
        ("done", Some(a)) => {
            let mut said = Vec::new();
            said.push(format!("{} session(s) ended", a.sessions_ended));
            if a.application_passwords_revoked > 0 {
                said.push(format!(
                    "{} application password(s) revoked",
                    a.application_passwords_revoked
                ));
            }
            if a.role_before != a.role_after {
                let named = |r: &Option<String>| {
                    r.as_deref()
                        .filter(|r| !r.is_empty())
                        .unwrap_or("none")
                        .to_string()
                };
                said.push(format!(
                    "role {} → {}",
                    named(&a.role_before),
                    named(&a.role_after)
                ));
            }
            if a.locked {
                said.push("account locked".into());
            }
            said.join(", ")
        }
        ("done", None) => "Delivered.".to_string(),
        ("attention", _) => format!(
            "Needs attention: the site's answer did not confirm it was done ({}). Tried {} time(s), next at {}.",
            m.last_error.clone().unwrap_or_default(),
            m.attempts,
            when(Some(m.next_attempt_at)),
        ),
        ("pending", _) if m.attempts == 0 => "Waiting to be sent.".to_string(),
        ("pending", _) => format!(
            "Tried {} time(s), next at {}: {}",
            m.attempts,
            when(Some(m.next_attempt_at)),
            m.last_error.clone().unwrap_or_default()
        ),
        ("cancelled", _) => format!("Cancelled: {}", m.last_error.clone().unwrap_or_default()),
        _ => m.last_error.clone().unwrap_or_default(),
    };
    SiteStep {
        site_url: r.site_url,
        client: r.client,
        asked,
        state: state.to_string(),
        report,
        requested: when(Some(m.created_at)),
        finished: when(m.done_at),
        history: if r.attempts.len() > 1 || r.attempts.iter().any(|a| a.outcome != "delivered") {
            r.attempts
                .iter()
                .map(|a| {
                    format!(
                        "Attempt {}, {}: {}",
                        a.attempt,
                        crate::domain::audit::utc(a.started_at),
                        crate::service::messages::attempt_words(a)
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// End the person's WordPress sessions on every connector site.
#[server(endpoint = "admin_end_wordpress_sessions")]
pub async fn admin_end_wordpress_sessions(person: String) -> Result<String, AdminError> {
    let a = super::admin("admin_end_wordpress_sessions").await?;
    match crate::service::messages::end_sessions_everywhere(&a.st.db, &person, &a.by, a.now).await {
        Ok((_, 0)) => Err(AdminError::Refused(
            "They have no connector site to end sessions on.".into(),
        )),
        Ok((p, n)) => Ok(format!(
            "{n} connector site(s) asked to end {}'s WordPress sessions: see each site below.",
            p.email
        )),
        Err(crate::service::messages::MessageError::Db(e)) => a.answer(e),
        Err(e) => Err(AdminError::Refused(e.to_string())),
    }
}

/// Each attempt at a site, folded away (`history` is empty, and nothing is
/// shown, when the first attempt got through).
fn attempt_history(history: Vec<String>) -> impl IntoView {
    (!history.is_empty()).then(|| {
        let n = history.len();
        view! {
            <details class="attempts" data-testid="attempt-history">
                <summary>{format!("{n} attempt(s)")}</summary>
                <ol>{history.into_iter().map(|h| view! { <li>{h}</li> }).collect_view()}</ol>
            </details>
        }
    })
}

/// The checklist's action, resource and refresh, made in the page's own
/// body: a resource made inside a `Suspend` gets another hydration id on the
/// server (which runs a suspended closure more than once while it streams)
/// than in the browser, whose page then hydrates against the wrong data and
/// dies (the intermittent "expected a marker node" panic).
#[derive(Clone, Copy)]
struct OffboardingData {
    end: ServerAction<AdminEndWordpressSessions>,
    pending: RwSignal<bool>,
    data: Resource<Result<Offboarding, AdminError>>,
}

impl OffboardingData {
    fn new(id: Memo<String>) -> OffboardingData {
        let end = ServerAction::<AdminEndWordpressSessions>::new();
        let tick = RwSignal::new(0u32);
        let pending = RwSignal::new(false);
        let data = Resource::new(
            move || (id.get(), tick.get(), end.version().get()),
            |(id, _, _)| admin_offboarding(id),
        );
        // Live while anything waits: the page asks again every few seconds.
        Effect::new(move |_| {
            let _ = set_interval_with_handle(
                move || {
                    if pending.get_untracked() {
                        tick.update(|t| *t += 1);
                    }
                },
                std::time::Duration::from_secs(2),
            );
        });
        OffboardingData { end, pending, data }
    }
}

/// The offboarding checklist of a person: every site, what was asked and
/// what it reported, kept current while anything is pending.
#[component]
fn OffboardingPanel(id: String, o: OffboardingData) -> impl IntoView {
    let OffboardingData { end, pending, data } = o;
    let csv = format!("/admin/people/offboarding.csv?id={}", encode(&id));
    view! {
        <section class="panel" aria-labelledby="offboarding-heading" data-testid="offboarding">
            <h2 id="offboarding-heading">"WordPress accounts on client sites"</h2>
            <p class="muted">"What each site was asked (locked when they were disabled, their role set when a grant changed) and what it reported. Sites on other plugins cannot be reached: end those sessions by hand."</p>
            <div class="toolbar">
                <ActionForm action=end attr:class="inline-form">
                    <input type="hidden" name="person" value=id.clone()/>
                    <button type="submit" class="button">"End all WordPress sessions"</button>
                </ActionForm>
                <a class="button" href=csv download>"Export as CSV"</a>
            </div>
            <Outcome value=end.value().into() done=|m: &String| m.clone()/>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(o) if o.steps.is_empty() => {
                            pending.set(false);
                            view! {
                                <p class="empty">"No site has been asked anything about them."</p>
                                <Elevated list=o.elevated/>
                            }.into_any()
                        }
                        Ok(o) => {
                            pending.set(o.pending + o.attention > 0);
                            view! {
                                <p data-testid="offboarding-counts">{format!(
                                    "{} site(s): {} done, {} pending, {} need attention, {} failed, {} cancelled, {} by hand.",
                                    super::thousands(o.total as i64), o.done, o.pending, o.attention, o.failed, o.cancelled, o.by_hand)}</p>
                                <Elevated list=o.elevated.clone()/>
                                {(o.total > o.steps.len()).then(|| view! {
                                    <p class="muted">{format!("The first {STEPS_SHOWN} are listed, those that need attention first; the CSV export has every site.")}</p>
                                })}
                                <div class="table-wrap">
                                <table class="list" data-testid="offboarding-steps">
                                    <caption class="sr-only">"Each site and what it reported"</caption>
                                    <thead><tr><th scope="col">"Site"</th><th scope="col">"Asked"</th><th scope="col">"State"</th><th scope="col">"What the site reported"</th><th scope="col">"Asked at"</th><th scope="col">"Finished"</th></tr></thead>
                                    <tbody>
                                        {o.steps.into_iter().map(|s| view! {
                                            <tr data-testid="offboarding-step" data-url=s.site_url.clone() data-state=s.state.clone()>
                                                <td>{s.site_url.clone()}<br/><span class="muted">{s.client.clone()}</span></td>
                                                <td>{s.asked.clone()}</td>
                                                <td><span class=format!("state {}", s.state)>{match s.state.as_str() {
                                                    "done" => "Done",
                                                    "pending" => "Pending",
                                                    "attention" => "Needs attention",
                                                    "failed" => "Failed",
                                                    "cancelled" => "Cancelled",
                                                    _ => "By hand",
                                                }}</span></td>
                                                <td><span>{s.report.clone()}</span>{attempt_history(s.history.clone())}</td>
                                                <td>{s.requested.clone()}</td>
                                                <td>{s.finished.clone()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// The offboarding checklist's line on just-in-time elevations.
#[component]
fn Elevated(list: Vec<String>) -> impl IntoView {
    if list.is_empty() {
        view! { <p data-testid="offboarding-elevations">"No elevation in force."</p> }.into_any()
    } else {
        view! {
            <p data-testid="offboarding-elevations">{format!(
                "{} elevation(s) still in force: {}. Disabling them ends each at once and lowers the role on the site.",
                list.len(), list.join("; "))}</p>
        }.into_any()
    }
}

/// Sites listed on a person's page, by client and name.
pub const ACCESS_SHOWN: usize = 100;

#[server(endpoint = "admin_person")]
pub async fn admin_person(id: String) -> Result<PersonDetail, AdminError> {
    use crate::domain::access::GrantSource;
    let a = super::admin("admin_person").await?;
    let d = match crate::service::people::person_detail(&a.st.db, &id, a.now, ACCESS_SHOWN).await {
        Ok(Some(d)) => d,
        Ok(None) => return Err(AdminError::Refused("There is no such person.".into())),
        Err(e) => return a.answer(e),
    };
    let grant_text = |gr: &crate::domain::access::Grant| {
        let from = match &gr.source {
            GrantSource::Direct => "direct".to_string(),
            GrantSource::Team(t) => format!("team {t}"),
            GrantSource::Elevation => "elevated".to_string(),
        };
        match gr.expires_at {
            Some(t) if t <= a.now => format!("{} ({from}, expired {})", gr.role, when(Some(t))),
            Some(t) => format!("{} ({from}, until {})", gr.role, when(Some(t))),
            None => format!("{} ({from})", gr.role),
        }
    };
    let access = d
        .sites
        .into_iter()
        .map(|s| PersonAccess {
            grants: s.site.grants.iter().map(grant_text).collect(),
            site_id: s.site.site_id,
            site: s.site.name,
            url: s.site.url,
            client: s.site.client,
            role: s.role,
        })
        .collect();
    let p = d.person;
    let elevations = |which| crate::service::elevation::list(&a.st.db, which, Some(&p.email), 100);
    use crate::service::elevation::Which;
    let (elevated, asking) = match (
        elevations(Which::Active).await,
        elevations(Which::Pending).await,
    ) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return a.answer(e),
    };
    let rows = |list: Vec<crate::service::elevation::Elevation>| {
        list.into_iter()
            .map(|e| super::access::row(e, String::new()))
            .collect()
    };
    Ok(PersonDetail {
        elevated: rows(elevated),
        asking: rows(asking),
        sites_total: d.sites_total,
        person: PersonRow {
            name: p.display_name().to_string(),
            id: p.id.clone(),
            email: p.email.clone(),
            admin: p.is_admin,
            disabled: p.disabled,
            last_sign_in: when(p.last_sign_in_at),
            sessions: d.sessions,
            grants: d.grants_total,
        },
        teams: d.teams,
        access,
        activity: d
            .recent
            .into_iter()
            .map(|r| Activity {
                time: when(Some(r.event.at)),
                event: r.event.kind.replace('_', " "),
                site: r.event.site_url,
                outcome: r.event.outcome,
            })
            .collect(),
    })
}

/// `/admin/people`
#[component]
pub fn PeoplePage() -> impl IntoView {
    view! {
        <AdminFrame title="People" section="people">
            <People/>
        </AdminFrame>
    }
}

#[component]
fn People() -> impl IntoView {
    let filter = super::filter_from_url::<PeopleFilter>();
    let invite = ServerAction::<AdminInvite>::new();
    let withdraw = ServerAction::<AdminWithdrawInvitation>::new();
    let decide = ServerAction::<AdminDecideHeld>::new();
    let data = Resource::new(
        move || {
            (
                filter.get(),
                invite.version().get(),
                withdraw.version().get(),
                decide.version().get(),
            )
        },
        |(f, _, _, _)| admin_people(f),
    );
    view! {
        <section class="panel" aria-labelledby="invite-heading">
            <h2 id="invite-heading">"Invite someone"</h2>
            <ActionForm action=invite attr:class="form inline" attr:aria-label="Invite by e-mail">
                <Field id="invite-email" name="email" label="E-mail" kind="email" required=true error=problem(invite, "email")/>
                <div class="field check">
                    <input id="invite-admin" name="admin" type="checkbox" value="on"/>
                    <label for="invite-admin">"Make them an admin"</label>
                </div>
                <div class="actions"><button type="submit" class="button primary">"Invite"</button></div>
            </ActionForm>
            <Outcome value=invite.value().into() done=|m: &String| m.clone()/>
        </section>
        <ListPage filter data path="/admin/people" page=PAGE noun="people" caption="People" testid="people-table"
            above=move |f: &PeopleFilter, page: &PeoplePage| {
                let page = page.clone();
                view! {
                        <form method="get" action="/admin/people" class="filters" role="search" aria-label="Find people">
                            <div class="field grow">
                                <label for="p-q">"Search"</label>
                                <input id="p-q" name="q" type="search" value=f.q.clone() placeholder="Name or e-mail"/>
                            </div>
                            <div class="field">
                                <label for="p-standing">"Standing"</label>
                                <select id="p-standing" name="standing">
                                    {[("", "Everyone"), ("admin", "Admins"), ("staff", "Staff"), ("disabled", "Disabled")].into_iter().map(|(v, l)| {
                                        view! { <option value=v selected={f.standing == v}>{l}</option> }
                                    }).collect_view()}
                                </select>
                            </div>
                            <div class="actions">
                                <button type="submit" class="button primary">"Find"</button>
                                <a class="button" href="/admin/people">"Clear"</a>
                            </div>
                        </form>
                        {(!page.held.is_empty()).then(|| view! {
                            <section class="panel warning" aria-labelledby="held-heading">
                            <h2 id="held-heading">"New accounts waiting for confirmation"</h2>
                            <p class="muted">"These addresses already belong to someone here, but arrived from another account at the identity provider: an account recreated, or an address given to someone new. Confirm only when it is the same person; they cannot sign in until you do."</p>
                            <ul class="plain held" data-testid="held-identities">
                                {page.held.into_iter().map(|h| {
                                    let confirm = held_decision(decide, &h, "confirm", "Confirm it is them");
                                    let refuse = held_decision(decide, &h, "refuse", "Refuse");
                                    view! {
                                    <li data-testid="held-identity" data-email=h.email.clone()>
                                        <strong>{h.email.clone()}</strong>
                                        {(!h.name.is_empty()).then(|| view! { <span>{format!(" ({})", h.name)}</span> })}
                                        <span class="muted">{format!(" account {} at {}: {} attempt(s), first {}, last {}", h.subject, h.issuer, h.attempts, h.first_seen, h.last_seen)}</span>
                                        {confirm}
                                        {refuse}
                                    </li>
                                }}).collect_view()}
                            </ul>
                            </section>
                        })}
                        <Outcome value=decide.value().into() done=|m: &String| m.clone()/>
                        {(!page.invitations.is_empty()).then(|| view! {
                            <h2>"Invited, not signed in yet"</h2>
                            <ul class="plain invitations" data-testid="invitations">
                                {page.invitations.into_iter().map(|i| {
                                    let email = i.email.clone();
                                    view! {
                                    <li data-testid="invitation" data-email=i.email.clone()>
                                        <strong>{i.email.clone()}</strong>
                                        {i.admin.then(|| view! { <span class="pill">"admin"</span> })}
                                        <span class="muted">{format!(" invited {} by {}", i.invited, i.by)}</span>
                                        <ActionForm action=withdraw attr:class="inline-form">
                                            <input type="hidden" name="email" value=email.clone()/>
                                            <button type="submit" class="button small" aria-label=format!("Withdraw the invitation for {email}")>"Withdraw"</button>
                                        </ActionForm>
                                    </li>
                                }}).collect_view()}
                            </ul>
                        })}
                        <Outcome value=withdraw.value().into() done=|m: &String| m.clone()/>
                }
            }
            head=|_: &PeoplePage| view! {
                <th scope="col">"Person"</th><th scope="col">"Standing"</th>
                <th scope="col">"Last sign-in"</th><th scope="col">"Sessions"</th><th scope="col">"Grants"</th>
            }
            rows=|page: PeoplePage| page.rows.into_iter().map(|p| view! {
                <tr data-testid="person-row" data-email=p.email.clone()>
                    <td><a class="strong" href=format!("/admin/people/{}", p.id)>{p.name.clone()}</a><br/><span class="muted">{p.email.clone()}</span></td>
                    <td><Standing admin=p.admin disabled=p.disabled/></td>
                    <td>{p.last_sign_in.clone()}</td>
                    <td>{p.sessions}</td>
                    <td>{p.grants}</td>
                </tr>
            }).collect_view()/>
    }
}

#[component]
fn Standing(admin: bool, disabled: bool) -> impl IntoView {
    if disabled {
        view! { <span class="pill off">"Disabled"</span> }.into_any()
    } else if admin {
        view! { <span class="pill admin">"Admin"</span> }.into_any()
    } else {
        view! { <span class="pill">"Staff"</span> }.into_any()
    }
}

/// `/admin/people/:id`
#[component]
pub fn PersonPage() -> impl IntoView {
    let id = super::id_param();
    let change = ServerAction::<AdminSetStanding>::new();
    let end = ServerAction::<super::sessions::AdminEndSessions>::new();
    let end_access = ServerAction::<super::access::AdminEndAccess>::new();
    let data = Resource::new(
        move || {
            (
                id.get(),
                change.version().get(),
                end.version().get(),
                end_access.version().get(),
            )
        },
        |(id, ..)| admin_person(id),
    );
    let offboarding = OffboardingData::new(id);
    view! {
        <AdminFrame title="Person" section="people">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(d) => {
                            let p = d.person.clone();
                            let person_id = p.id.clone();
                            let end_id = p.id.clone();
                            let buttons: Vec<(&str, &str, &str)> = [
                                (!p.admin && !p.disabled).then_some(("promote", "Make admin", "button")),
                                (p.admin && !p.disabled).then_some(("demote", "Make staff", "button")),
                                (!p.disabled).then_some(("disable", "Disable", "button danger")),
                                p.disabled.then_some(("enable", "Enable", "button")),
                            ].into_iter().flatten().collect();
                            view! {
                                <p class="breadcrumb"><a href="/admin/people">"People"</a>" › "{p.name.clone()}</p>
                                <section class="panel" aria-labelledby="standing-heading">
                                    <h2 id="standing-heading">{p.name.clone()}</h2>
                                    <p><span class="muted">{p.email.clone()}</span>" "<Standing admin=p.admin disabled=p.disabled/></p>
                                    <dl class="facts">
                                        <dt>"Last sign-in"</dt><dd>{p.last_sign_in.clone()}</dd>
                                        <dt>"Active sessions"</dt><dd data-testid="session-count">{p.sessions}</dd>
                                        <dt>"Teams"</dt><dd>{if d.teams.is_empty() { "None".to_string() } else { d.teams.join(", ") }}</dd>
                                    </dl>
                                    <div class="toolbar">
                                        {buttons.into_iter().map(|(c, label, class)| {
                                            let id = person_id.clone();
                                            view! {
                                            <ActionForm action=change attr:class="inline-form">
                                                <input type="hidden" name="id" value=id/>
                                                <input type="hidden" name="change" value=c/>
                                                <button type="submit" class=class>{label}</button>
                                            </ActionForm>
                                        }}).collect_view()}
                                        {(p.sessions > 0).then(|| view! {
                                            <ActionForm action=end attr:class="inline-form">
                                                <input type="hidden" name="person" value=end_id.clone()/>
                                                <input type="hidden" name="handle" value=""/>
                                                <button type="submit" class="button">"End all sessions"</button>
                                            </ActionForm>
                                        })}
                                    </div>
                                    <Outcome value=change.value().into() done=|m: &String| m.clone()/>
                                    <Outcome value=end.value().into() done=|m: &String| m.clone()/>
                                </section>
                                <section class="panel" aria-labelledby="person-access-heading">
                                    <h2 id="person-access-heading">"Sites they can enter"</h2>
                                    {(d.sites_total > ACCESS_SHOWN).then(|| view! {
                                        <p class="muted" data-testid="access-more">{format!(
                                            "Their grants cover {} sites; the first {ACCESS_SHOWN} by client are listed. Each site's page shows who can enter it.",
                                            super::thousands(d.sites_total as i64))}</p>
                                    })}
                                    {if d.access.is_empty() {
                                        view! { <p class="empty">"No grants, directly or through a team."</p> }.into_any()
                                    } else {
                                        view! {
                                            <div class="table-wrap">
                                            <table class="list" data-testid="person-access">
                                                <caption class="sr-only">"Their access"</caption>
                                                <thead><tr><th scope="col">"Site"</th><th scope="col">"Client"</th><th scope="col">"Enters as"</th><th scope="col">"Grants"</th></tr></thead>
                                                <tbody>
                                                    {d.access.into_iter().map(|s| view! {
                                                        <tr data-testid="person-access-row" data-url=s.url.clone()>
                                                            <td><a href=format!("/admin/sites/{}", s.site_id)>{s.site.clone()}</a><br/><span class="muted">{s.url.clone()}</span></td>
                                                            <td>{s.client.clone()}</td>
                                                            <td>{s.role.clone().unwrap_or_else(|| "no access now".into())}</td>
                                                            <td><ul class="plain">{s.grants.into_iter().map(|g| view! { <li>{g}</li> }).collect_view()}</ul></td>
                                                        </tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                            </div>
                                        }.into_any()
                                    }}
                                </section>
                                <section class="panel" aria-labelledby="person-jit-heading" data-testid="person-elevations">
                                    <h2 id="person-jit-heading">"Higher access"</h2>
                                    <Outcome value=end_access.value().into() done=|m: &String| m.clone()/>
                                    {(d.elevated.is_empty() && d.asking.is_empty()).then(|| view! {
                                        <p class="empty" data-testid="no-elevations">"No elevation in force and no request waiting."</p>
                                    })}
                                    {(!d.elevated.is_empty()).then(|| view! {
                                        <p>{format!("{} elevation(s) in force: they end by themselves, or now:", d.elevated.len())}</p>
                                    })}
                                    <super::access::ActiveList rows=d.elevated end=end_access/>
                                    {(!d.asking.is_empty()).then(|| view! {
                                        <ul class="plain" data-testid="person-requests">
                                            {d.asking.into_iter().map(|r| view! {
                                                <li>{format!("Asks for {} on {} for {} (asked {}): ", r.role, r.site_name, r.duration, r.asked)}<q>{r.reason}</q>" "<a href="/admin/access">"decide"</a></li>
                                            }).collect_view()}
                                        </ul>
                                    })}
                                </section>
                                <OffboardingPanel id=person_id.clone() o=offboarding/>
                                <section class="panel" aria-labelledby="activity-heading">
                                    <h2 id="activity-heading">"Last activity"</h2>
                                    <ul class="plain activity" data-testid="person-activity">
                                        {d.activity.into_iter().map(|r| view! {
                                            <li><span class="time">{r.time}</span>" "<span class="event">{r.event}</span>" "<span class=format!("outcome {}", r.outcome)>{r.outcome.clone()}</span>" "<span class="muted">{r.site}</span></li>
                                        }).collect_view()}
                                    </ul>
                                    <p><a href=format!("/audit?person={}", encode(&p.email))>"All their records in the audit log"</a></p>
                                </section>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

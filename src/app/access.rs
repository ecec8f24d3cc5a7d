//! Just-in-time access on a staff member's home page: the sites where they
//! may ask for a higher role, a form to ask (the role, how long, why), and
//! what they have open there (a request to withdraw, an elevation to end).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A site where the signed-in person may ask for a higher role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibleCard {
    pub site_id: String,
    pub site_name: String,
    pub site_url: String,
    pub role: String,
    pub eligible_role: String,
    pub limit: String,
    /// The durations offered: minutes and how they read.
    pub durations: Vec<(i64, String)>,
    /// What is open there: its id, state ("pending" or "active"), and a
    /// sentence saying it.
    pub open: Option<(String, String, String)>,
    /// Break-glass: the open request may be approved by its own requester.
    pub self_approvable: bool,
}

#[server(endpoint = "my_access")]
pub async fn my_access() -> Result<Vec<EligibleCard>, ServerFnError> {
    use super::admin::when;
    use crate::domain::elevation::minutes_text;
    let (st, person) = super::sites::signed_in().await?;
    let sites = crate::service::elevation::eligible_sites(&st.db, &person.email, st.clock.now())
        .await
        .map_err(|e| super::sites::unavailable(&e))?;
    Ok(sites
        .into_iter()
        .map(|s| EligibleCard {
            self_approvable: s.open.as_ref().is_some_and(|e| {
                e.state == "pending" && s.self_approval_minutes.is_some_and(|m| e.minutes <= m)
            }),
            open: s.open.map(|e| {
                let said = if e.state == "active" {
                    format!("You are {} here until {}.", e.role, when(e.ends_at))
                } else {
                    format!(
                        "You asked for {} for {}: waiting for an approver.",
                        e.role,
                        minutes_text(e.minutes)
                    )
                };
                (e.id, e.state, said)
            }),
            site_id: s.site_id,
            site_name: s.site_name,
            site_url: s.site_url,
            role: s.role,
            limit: minutes_text(s.eligible.max_minutes),
            durations: durations(s.eligible.max_minutes)
                .into_iter()
                .map(|m| (m, minutes_text(m)))
                .collect(),
            eligible_role: s.eligible.role,
        })
        .collect())
}

#[cfg(feature = "ssr")]
fn said(e: crate::service::elevation::ElevationError) -> ServerFnError {
    use crate::service::elevation::ElevationError as E;
    match e {
        E::Db(e) => super::sites::unavailable(&e),
        e => ServerFnError::new(format!("{e} ({})", e.code())),
    }
}

/// Ask for a higher role on a site for `minutes`, saying why.
#[server(endpoint = "request_access")]
pub async fn request_access(
    site: String,
    role: String,
    minutes: String,
    reason: String,
) -> Result<String, ServerFnError> {
    use crate::service::elevation::{self as jit, Requester};
    let (st, person) = super::sites::signed_in().await?;
    let minutes: i64 = minutes
        .trim()
        .parse()
        .map_err(|_| ServerFnError::new("Choose how long you need it."))?;
    let by = crate::domain::audit::Actor::person(&person.email, origin().await);
    let requester = Requester {
        actor: &by,
        on_behalf: false,
    };
    let e = jit::request(
        &st.db,
        &requester,
        &person.email,
        &site,
        &role,
        minutes,
        &reason,
        st.clock.now(),
    )
    .await
    .map_err(said)?;
    Ok(format!(
        "Asked: {} on {} for {}. An approver will decide.",
        e.role,
        e.site_name,
        crate::domain::elevation::minutes_text(e.minutes)
    ))
}

/// Withdraw one's pending request, or end one's elevation now.
#[server(endpoint = "close_access")]
pub async fn close_access(id: String, state: String) -> Result<String, ServerFnError> {
    use crate::service::elevation as jit;
    let (st, person) = super::sites::signed_in().await?;
    let by = crate::domain::audit::Actor::person(&person.email, origin().await);
    let now = st.clock.now();
    if state == "active" {
        let e = jit::end_early(&st.db, &by, false, &id, now)
            .await
            .map_err(said)?;
        Ok(format!(
            "Ended: you are {} on {} no more.",
            e.role, e.site_name
        ))
    } else {
        let e = jit::cancel(&st.db, &by, false, &id, now)
            .await
            .map_err(said)?;
        Ok(format!("Withdrawn: your request on {}.", e.site_name))
    }
}

/// Break-glass: approve one's own pending request where the site allows
/// it (a recent sign-in needed, as for any approval); loudly recorded.
#[server(endpoint = "self_approve_access")]
pub async fn self_approve_access(id: String) -> Result<String, ServerFnError> {
    use crate::service::elevation::{self as jit, Approver};
    let (st, person) = super::sites::signed_in().await?;
    let now = st.clock.now();
    recent_sign_in(&st, now).await?;
    let by = crate::domain::audit::Actor::person(&person.email, origin().await);
    let approver = Approver {
        actor: &by,
        email: Some(&person.email),
        is_admin: person.is_admin,
    };
    let d = jit::decide(&st.db, &approver, &id, true, "", now)
        .await
        .map_err(said)?;
    Ok(format!(
        "Break-glass: you are {} on {} until {}. This is recorded and the agency is told.",
        d.elevation.role,
        d.elevation.site_name,
        super::admin::when(d.elevation.ends_at)
    ))
}

/// A request the signed-in person is named to decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionCard {
    pub id: String,
    pub label: String,
    pub detail: String,
    pub reason: String,
    pub activity: String,
}

#[server(endpoint = "my_decisions")]
pub async fn my_decisions() -> Result<Vec<DecisionCard>, ServerFnError> {
    use super::admin::when;
    use crate::domain::elevation::minutes_text;
    let (st, person) = super::sites::signed_in().await?;
    let waiting = crate::service::elevation::waiting(&st.db, Some(&person.email), 100)
        .await
        .map_err(|e| super::sites::unavailable(&e))?;
    Ok(waiting
        .into_iter()
        .map(|w| {
            let e = w.elevation;
            let last = match w.last_launched_at {
                Some(t) => format!("last entered {}", when(Some(t))),
                None => "never entered".to_string(),
            };
            DecisionCard {
                label: format!("{} asks for {} on {}", e.email, e.role, e.site_name),
                detail: format!(
                    "For {} · {} · asked {}",
                    minutes_text(e.minutes),
                    e.site_url,
                    when(Some(e.requested_at))
                ),
                activity: format!("{last}; elevated there {} time(s) before", w.earlier),
                reason: e.reason,
                id: e.id,
            }
        })
        .collect())
}

/// A named approver's decision: approve (a recent sign-in needed) or deny
/// (saying why).
#[server(endpoint = "decide_access")]
pub async fn decide_access(
    id: String,
    decision: String,
    comment: String,
) -> Result<String, ServerFnError> {
    use crate::service::elevation::{self as jit, Approver};
    let (st, person) = super::sites::signed_in().await?;
    let approve = decision == "approve";
    let now = st.clock.now();
    if approve {
        recent_sign_in(&st, now).await?;
    }
    let by = crate::domain::audit::Actor::person(&person.email, origin().await);
    let approver = Approver {
        actor: &by,
        email: Some(&person.email),
        is_admin: person.is_admin,
    };
    let d = jit::decide(&st.db, &approver, &id, approve, &comment, now)
        .await
        .map_err(said)?;
    Ok(if approve {
        format!(
            "Approved: {} is {} on {} until {}.",
            d.elevation.email,
            d.elevation.role,
            d.elevation.site_name,
            super::admin::when(d.elevation.ends_at)
        )
    } else {
        format!(
            "Denied: {} on {}.",
            d.elevation.email, d.elevation.site_name
        )
    })
}

/// Approving needs a sign-in within the configured minutes.
#[cfg(feature = "ssr")]
async fn recent_sign_in(st: &crate::service::Context, now: i64) -> Result<(), ServerFnError> {
    let session: tower_sessions::Session = leptos_axum::extract().await?;
    let recent = crate::service::sessions::sign_in_of(&session)
        .await
        .is_some_and(|s| s.is_recent(now, st.config.reauth_secs));
    if recent {
        Ok(())
    } else {
        Err(ServerFnError::new(
            "Approving needs a recent sign-in: sign in again, then approve (reauth_required)",
        ))
    }
}

/// Requests the signed-in person is named to decide: nothing when none.
#[component]
pub fn DecisionsPanel() -> impl IntoView {
    let decide = ServerAction::<DecideAccess>::new();
    let data = Resource::new(move || decide.version().get(), |_| my_decisions());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let cards = data.await.unwrap_or_default();
                (!cards.is_empty() || decide.value().get().is_some()).then(|| view! {
                    <section class="access-panel" aria-labelledby="decide-heading">
                        <h2 id="decide-heading">"Requests you decide"</h2>
                        <div aria-live="polite">{move || match decide.value().get() {
                            Some(Ok(m)) => Some(view! { <p class="done" data-testid="decide-done">{m}</p> }.into_any()),
                            Some(Err(e)) => Some(view! { <p class="error" role="alert" data-testid="decide-problem">{e.to_string().trim_start_matches("error running server function: ").to_string()}</p> }.into_any()),
                            None => None,
                        }}</div>
                        <p><a href="/auth/login?reauth=1&return_to=/" rel="external">"Sign in again"</a>" before approving if it has been a while."</p>
                        <ul class="requests">
                            {cards.into_iter().map(|c| {
                                let (id1, id2) = (c.id.clone(), c.id.clone());
                                view! {
                                <li class="request" data-testid="decision">
                                    <p class="strong">{c.label}</p>
                                    <p>{c.detail}</p>
                                    <p>"Reason: " <q>{c.reason}</q></p>
                                    <p class="muted">{c.activity}</p>
                                    <div class="row-actions">
                                        <ActionForm action=decide attr:class="inline-form">
                                            <input type="hidden" name="id" value=id1/>
                                            <input type="hidden" name="decision" value="approve"/>
                                            <input type="hidden" name="comment" value=""/>
                                            <button type="submit" class="button small primary">"Approve"</button>
                                        </ActionForm>
                                        <ActionForm action=decide attr:class="inline-form">
                                            <input type="hidden" name="id" value=id2/>
                                            <input type="hidden" name="decision" value="deny"/>
                                            <label>"Why not " <input name="comment" type="text" maxlength="500"/></label>
                                            <button type="submit" class="button small danger">"Deny"</button>
                                        </ActionForm>
                                    </div>
                                </li>
                            }}).collect_view()}
                        </ul>
                    </section>
                })
            })}
        </Suspense>
    }
}

/// Where the request came from, as the web edge noted it.
#[cfg(feature = "ssr")]
async fn origin() -> crate::domain::audit::Origin {
    leptos_axum::extract::<axum::Extension<crate::domain::audit::Origin>>()
        .await
        .map(|axum::Extension(o)| o)
        .unwrap_or_default()
}

/// Durations offered up to `max` minutes.
#[cfg(feature = "ssr")]
fn durations(max: i64) -> Vec<i64> {
    let mut out: Vec<i64> = [15, 30, 60, 120, 240, 480, 1440]
        .into_iter()
        .filter(|m| *m < max)
        .collect();
    out.push(max);
    out
}

/// The panel: nothing when the person is eligible nowhere.
#[component]
pub fn AccessPanel() -> impl IntoView {
    let ask = ServerAction::<RequestAccess>::new();
    let close = ServerAction::<CloseAccess>::new();
    let glass = ServerAction::<SelfApproveAccess>::new();
    let data = Resource::new(
        move || {
            (
                ask.version().get(),
                close.version().get(),
                glass.version().get(),
            )
        },
        |_| my_access(),
    );
    let outcome = move || {
        match glass
            .value()
            .get()
            .or_else(|| close.value().get())
            .or_else(|| ask.value().get())
        {
            Some(Ok(m)) => Some(view! { <p class="done" data-testid="access-done">{m}</p> }.into_any()),
            Some(Err(e)) => Some(
                view! { <p class="error" role="alert" data-testid="access-problem">{e.to_string().trim_start_matches("error running server function: ").to_string()}</p> }
                    .into_any(),
            ),
            None => None,
        }
    };
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let cards = data.await.unwrap_or_default();
                (!cards.is_empty()).then(|| view! {
                    <section class="access-panel" aria-labelledby="access-heading">
                        <h2 id="access-heading">"Higher access"</h2>
                        <p class="hint">"Where you may ask for a higher role for a while. An approver decides; it ends by itself."</p>
                        <div aria-live="polite">{outcome}</div>
                        <ul class="requests">
                            {cards.into_iter().map(|c| {
                                let form_id = format!("ask-{}", c.site_id);
                                let li_id = format!("eligible-{}", c.site_id);
                                let (reason_for, reason_id) = (format!("{form_id}-reason"), format!("{form_id}-reason"));
                                let (minutes_for, minutes_id) = (format!("{form_id}-minutes"), format!("{form_id}-minutes"));
                                view! {
                                <li class="request" data-testid="eligible-site" data-site=c.site_url.clone() id=li_id>
                                    <p class="strong">{c.site_name.clone()} " " <span class="muted">{c.site_url.clone()}</span></p>
                                    <p>{format!("You are {} here; you may ask for {} for up to {}.", c.role, c.eligible_role, c.limit)}</p>
                                    {match c.open.clone() {
                                        Some((id, state, said)) => {
                                            let button = if state == "active" { "End it now" } else { "Withdraw the request" };
                                            let glass_id = id.clone();
                                            view! {
                                                <p data-testid="access-state">{said}</p>
                                                {c.self_approvable.then(|| view! {
                                                    <ActionForm action=glass attr:class="inline-form">
                                                        <input type="hidden" name="id" value=glass_id/>
                                                        <button type="submit" class="button small danger">"Approve it myself (break-glass)"</button>
                                                    </ActionForm>
                                                })}
                                                <ActionForm action=close attr:class="inline-form">
                                                    <input type="hidden" name="id" value=id/>
                                                    <input type="hidden" name="state" value=state/>
                                                    <button type="submit" class="button small">{button}</button>
                                                </ActionForm>
                                            }.into_any()
                                        }
                                        None => view! {
                                            <ActionForm action=ask attr:class="ask-form" attr:id=form_id>
                                                <input type="hidden" name="site" value=c.site_id.clone()/>
                                                <input type="hidden" name="role" value=c.eligible_role.clone()/>
                                                <div class="field grow">
                                                    <label for=reason_for>"Why (the ticket or incident)"</label>
                                                    <input id=reason_id name="reason" type="text" minlength="10" maxlength="500" required/>
                                                </div>
                                                <div class="field">
                                                    <label for=minutes_for>"For"</label>
                                                    <select id=minutes_id name="minutes">
                                                        {c.durations.iter().map(|(m, text)| view! {
                                                            <option value=m.to_string()>{text.clone()}</option>
                                                        }).collect_view()}
                                                    </select>
                                                </div>
                                                <button type="submit" class="button primary">{format!("Request {}", c.eligible_role)}</button>
                                            </ActionForm>
                                        }.into_any(),
                                    }}
                                </li>
                            }}).collect_view()}
                        </ul>
                    </section>
                })
            })}
        </Suspense>
    }
}

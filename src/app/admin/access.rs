//! Just-in-time access in the console: requests waiting for a decision
//! (approve with a fresh sign-in, or deny saying why), elevations in force
//! (end one now), and the latest decisions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{AdminError, AdminFrame, Outcome};

/// One request or elevation as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRow {
    pub id: String,
    pub email: String,
    pub site_name: String,
    pub site_url: String,
    pub role: String,
    pub duration: String,
    pub reason: String,
    pub state: String,
    pub asked: String,
    pub decided_by: String,
    pub comment: String,
    pub until: String,
    pub break_glass: bool,
    /// For a pending request: when the person last entered the site, and
    /// how many elevations they had there before.
    pub activity: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessView {
    pub pending: Vec<AccessRow>,
    pub active: Vec<AccessRow>,
    pub recent: Vec<AccessRow>,
}

#[cfg(feature = "ssr")]
pub(crate) fn row(e: crate::service::elevation::Elevation, activity: String) -> AccessRow {
    use crate::domain::elevation::minutes_text;
    AccessRow {
        duration: minutes_text(e.minutes),
        asked: when(Some(e.requested_at)),
        until: when(e.ends_at),
        decided_by: e.decided_by.unwrap_or_default(),
        break_glass: e.self_approved != 0,
        state: if e.state == "ended" && !e.end_reason.is_empty() {
            format!("ended ({})", e.end_reason.replace('_', " "))
        } else {
            e.state
        },
        id: e.id,
        email: e.email,
        site_name: e.site_name,
        site_url: e.site_url,
        role: e.role,
        reason: e.reason,
        comment: e.comment,
        activity,
    }
}

#[server(endpoint = "admin_access")]
pub async fn admin_access() -> Result<AccessView, AdminError> {
    use crate::service::elevation::{self as jit, Which};
    let a = super::admin("admin_access").await?;
    let load = async {
        let pending = jit::waiting(&a.st.db, None, 200)
            .await?
            .into_iter()
            .map(|w| {
                let last = match w.last_launched_at {
                    Some(t) => format!("last entered {}", when(Some(t))),
                    None => "never entered".to_string(),
                };
                row(
                    w.elevation,
                    format!("{last}; elevated there {} time(s) before", w.earlier),
                )
            })
            .collect();
        let active = jit::list(&a.st.db, Which::Active, None, 200)
            .await?
            .into_iter()
            .map(|e| row(e, String::new()))
            .collect();
        let recent = jit::list(&a.st.db, Which::All, None, 50)
            .await?
            .into_iter()
            .filter(|e| e.state != "pending" && e.state != "active")
            .map(|e| row(e, String::new()))
            .collect();
        Ok::<_, sqlx::Error>(AccessView {
            pending,
            active,
            recent,
        })
    };
    match load.await {
        Ok(v) => Ok(v),
        Err(e) => a.answer(e),
    }
}

/// The number of requests waiting, for the console's navigation.
#[server(endpoint = "admin_access_waiting")]
pub async fn admin_access_waiting() -> Result<i64, AdminError> {
    let a = super::admin("admin_access_waiting").await?;
    match crate::service::elevation::pending_count(&a.st.db).await {
        Ok(n) => Ok(n),
        Err(e) => a.answer(e),
    }
}

#[cfg(feature = "ssr")]
fn refused(e: crate::service::elevation::ElevationError) -> AdminError {
    use crate::service::elevation::ElevationError as E;
    match e {
        E::Db(e) => {
            tracing::error!(error = %e, "an access decision failed in the database");
            AdminError::Unavailable
        }
        e => AdminError::Refused(format!("{} ({})", e, e.code())),
    }
}

/// Approve (`decision` = "approve", with a recent sign-in) or deny
/// ("deny", with a comment) a pending request.
#[server(endpoint = "admin_decide_access")]
pub async fn admin_decide_access(
    id: String,
    decision: String,
    comment: String,
) -> Result<String, AdminError> {
    use crate::service::elevation::{self as jit, Approver};
    let a = super::admin("admin_decide_access").await?;
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return super::fail(AdminError::Refused("Choose approve or deny.".into())),
    };
    if approve {
        a.recent_sign_in()?;
    }
    let by = Approver {
        actor: &a.by,
        email: Some(&a.person.email),
        is_admin: true,
    };
    match jit::decide(&a.st.db, &by, &id, approve, &comment, a.now).await {
        Ok(d) if approve => Ok(format!(
            "Approved: {} is {} on {} until {}.",
            d.elevation.email,
            d.elevation.role,
            d.elevation.site_url,
            when(d.elevation.ends_at)
        )),
        Ok(d) => Ok(format!(
            "Denied: {} stays as they were on {}.",
            d.elevation.email, d.elevation.site_url
        )),
        Err(e) => super::fail(refused(e)),
    }
}

/// End an elevation in force now.
#[server(endpoint = "admin_end_access")]
pub async fn admin_end_access(id: String) -> Result<String, AdminError> {
    let a = super::admin("admin_end_access").await?;
    match crate::service::elevation::end_early(&a.st.db, &a.by, true, &id, a.now).await {
        Ok(e) => Ok(format!(
            "Ended: {} is no longer {} on {}.",
            e.email, e.role, e.site_url
        )),
        Err(e) => super::fail(refused(e)),
    }
}

/// `/admin/access`
#[component]
pub fn AccessPage() -> impl IntoView {
    let decide = ServerAction::<AdminDecideAccess>::new();
    let end = ServerAction::<AdminEndAccess>::new();
    let data = Resource::new(
        move || (decide.version().get(), end.version().get()),
        |_| admin_access(),
    );
    view! {
        <AdminFrame title="Access requests" section="access">
            <Outcome value=decide.value().into() done=|m: &String| m.clone()/>
            <Outcome value=end.value().into() done=|m: &String| m.clone()/>
            <Suspense fallback=|| view! { <p class="loading">"Loading requests…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(v) => view! {
                            <section aria-labelledby="pending-heading">
                                <h2 id="pending-heading">"Waiting for a decision"</h2>
                                {v.pending.is_empty().then(|| view! { <p class="empty" data-testid="no-pending">"No requests are waiting."</p> })}
                                <ul class="requests" data-testid="pending">
                                    {v.pending.into_iter().map(|r| {
                                        let (id1, id2) = (r.id.clone(), r.id.clone());
                                        let label = format!("{} asks for {} on {}", r.email, r.role, r.site_name);
                                        view! {
                                        <li class="request" data-testid="request" data-email=r.email.clone()>
                                            <p class="strong">{label}</p>
                                            <p>{format!("For {} · {} · asked {}", r.duration, r.site_url, r.asked)}</p>
                                            <p>"Reason: " <q data-testid="request-reason">{r.reason.clone()}</q></p>
                                            <p class="muted" data-testid="request-activity">{r.activity.clone()}</p>
                                            <div class="row-actions">
                                                <ActionForm action=decide attr:class="inline-form">
                                                    <input type="hidden" name="id" value=id1/>
                                                    <input type="hidden" name="decision" value="approve"/>
                                                    <label>"Comment (optional) " <input name="comment" type="text" maxlength="500"/></label>
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
                            <section aria-labelledby="active-heading">
                                <h2 id="active-heading">"In force"</h2>
                                {v.active.is_empty().then(|| view! { <p class="empty">"No elevations are in force."</p> })}
                                <ActiveList rows=v.active end/>
                            </section>
                            <section aria-labelledby="recent-heading">
                                <h2 id="recent-heading">"Lately"</h2>
                                <div class="table-wrap">
                                <table class="list" data-testid="recent-access">
                                    <caption class="sr-only">"Requests lately"</caption>
                                    <thead><tr><th scope="col">"Person"</th><th scope="col">"Site"</th><th scope="col">"Role"</th><th scope="col">"State"</th><th scope="col">"Decided by"</th><th scope="col">"Comment"</th></tr></thead>
                                    <tbody>
                                        {v.recent.into_iter().map(|r| view! {
                                            <tr>
                                                <td>{r.email}</td>
                                                <td>{r.site_name}</td>
                                                <td>{r.role}</td>
                                                <td>{r.state}{r.break_glass.then_some(" (break-glass)")}</td>
                                                <td>{r.decided_by}</td>
                                                <td>{r.comment}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            </section>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

/// Elevations in force, each with an End now button (the access page, a
/// person's page).
#[component]
pub fn ActiveList(rows: Vec<AccessRow>, end: ServerAction<AdminEndAccess>) -> impl IntoView {
    view! {
        <ul class="requests" data-testid="active">
            {rows.into_iter().map(|r| {
                let label = format!("{} is {} on {} until {}", r.email, r.role, r.site_name, r.until);
                let end_label = format!("End {}'s elevation on {} now", r.email, r.site_name);
                view! {
                <li class="request" data-testid="elevation" data-email=r.email.clone()>
                    <p class="strong">{label}
                        {r.break_glass.then(|| view! { " " <span class="badge danger" data-testid="break-glass">"break-glass"</span> })}
                    </p>
                    <p>{format!("Approved by {} · reason: {}", r.decided_by, r.reason)}</p>
                    <ActionForm action=end attr:class="inline-form">
                        <input type="hidden" name="id" value=r.id.clone()/>
                        <button type="submit" class="button small" aria-label=end_label>"End now"</button>
                    </ActionForm>
                </li>
            }}).collect_view()}
        </ul>
    }
}

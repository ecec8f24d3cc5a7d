//! Active sessions in the console, with the power to end one or all of a person's.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{AdminError, AdminFrame, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub handle: String,
    pub person_id: String,
    pub email: String,
    pub name: String,
    pub signed_in: String,
    pub expires: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsView {
    pub rows: Vec<SessionRow>,
    pub total: i64,
}

#[server(endpoint = "admin_sessions")]
pub async fn admin_sessions(q: String) -> Result<SessionsView, AdminError> {
    let a = super::admin("admin_sessions").await?;
    match crate::service::sessions::active(&a.st.db, &q, a.now, 200).await {
        Ok((rows, total)) => Ok(SessionsView {
            rows: rows
                .into_iter()
                .map(|s| SessionRow {
                    name: s.name.unwrap_or_else(|| s.email.clone()),
                    handle: s.handle,
                    person_id: s.person_id,
                    email: s.email,
                    signed_in: when(s.signed_in_at),
                    expires: when(Some(s.expires_at)),
                })
                .collect(),
            total,
        }),
        Err(e) => a.answer(e),
    }
}

/// End one session (`handle` given) or all of a person's (`handle` empty).
#[server(endpoint = "admin_end_sessions")]
pub async fn admin_end_sessions(person: String, handle: String) -> Result<String, AdminError> {
    let a = super::admin("admin_end_sessions").await?;
    let one = (!handle.is_empty()).then_some(handle.as_str());
    match crate::service::people::end_sessions(&a.st.db, &person, one, &a.by, a.now).await {
        Ok(0) => Err(AdminError::Refused(
            "That session has already ended.".into(),
        )),
        Ok(1) => Ok("1 session ended: that browser is signed out.".into()),
        Ok(n) => Ok(format!("{n} sessions ended.")),
        Err(e) => a.answer(e),
    }
}

/// `/admin/sessions`
#[component]
pub fn SessionsPage() -> impl IntoView {
    let map = use_query_map();
    let q = Memo::new(move |_| map.with(|m| m.get("q").unwrap_or_default()));
    let end = ServerAction::<AdminEndSessions>::new();
    let data = Resource::new(
        move || (q.get(), end.version().get()),
        |(q, _)| admin_sessions(q),
    );
    view! {
        <AdminFrame title="Sessions" section="sessions">
            <form method="get" action="/admin/sessions" class="filters" role="search" aria-label="Find sessions">
                <div class="field grow">
                    <label for="sess-q">"Person"</label>
                    <input id="sess-q" name="q" type="search" value=move || q.get() placeholder="Name or e-mail"/>
                </div>
                <div class="actions"><button type="submit" class="button primary">"Find"</button></div>
            </form>
            <Outcome value=end.value().into() done=|m: &String| m.clone()/>
            <Suspense fallback=|| view! { <p class="loading">"Loading sessions…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(v) => view! {
                            <p class="count" data-testid="list-count">{format!("{} active session(s)", v.total)}</p>
                            <div class="table-wrap">
                            <table class="list" data-testid="sessions-table">
                                <caption class="sr-only">"Active sessions"</caption>
                                <thead><tr><th scope="col">"Person"</th><th scope="col">"Signed in"</th><th scope="col">"Ends if idle by"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {v.rows.into_iter().map(|s| {
                                        let (pid1, pid2) = (s.person_id.clone(), s.person_id.clone());
                                        let (one, all) = (format!("End this session of {}", s.email), format!("End every session of {}", s.email));
                                        view! {
                                        <tr data-testid="session-row" data-email=s.email.clone()>
                                            <td><a class="strong" href=format!("/admin/people/{}", s.person_id)>{s.name.clone()}</a><br/><span class="muted">{s.email.clone()}</span></td>
                                            <td>{s.signed_in.clone()}</td>
                                            <td>{s.expires.clone()}</td>
                                            <td class="row-actions">
                                                <ActionForm action=end attr:class="inline-form">
                                                    <input type="hidden" name="person" value=pid1/>
                                                    <input type="hidden" name="handle" value=s.handle.clone()/>
                                                    <button type="submit" class="button small" aria-label=one>"End"</button>
                                                </ActionForm>
                                                <ActionForm action=end attr:class="inline-form">
                                                    <input type="hidden" name="person" value=pid2/>
                                                    <input type="hidden" name="handle" value=""/>
                                                    <button type="submit" class="button small danger" aria-label=all>"End all of theirs"</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }}).collect_view()}
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

//! The signing key ring in the console: each key's state and dates, rotate
//! now, and revoke with a reason and a confirmation.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{problem, AdminError, AdminFrame, Field, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub kid: String,
    pub state: String,
    pub bits: u32,
    pub created: String,
    /// The date that matters for its state: activates, activated, retired, removed, revoked.
    pub dates: Vec<(String, String)>,
    pub published: bool,
    pub revoked_reason: Option<String>,
}

#[server(endpoint = "admin_keys")]
pub async fn admin_keys() -> Result<Vec<KeyRow>, AdminError> {
    let a = super::admin("admin_keys").await?;
    let checked = match crate::service::keys::load(&a.st.db, &a.st.master_keys).await {
        Ok(c) => c,
        Err(e) => return a.answer(e),
    };
    let ring = checked.ring;
    let mut keys: Vec<KeyRow> = ring
        .keys
        .into_iter()
        .map(|k| {
            let dates = [
                (
                    "Starts signing",
                    k.activates_at.filter(|_| k.activated_at.is_none()),
                ),
                ("Signing since", k.activated_at),
                ("Retired", k.retired_at),
                (
                    "Leaves the key set",
                    k.remove_at.filter(|_| k.removed_at.is_none()),
                ),
                ("Removed", k.removed_at),
                ("Revoked", k.revoked_at),
            ]
            .into_iter()
            .filter_map(|(l, t)| t.map(|t| (l.to_string(), when(Some(t)))))
            .collect();
            KeyRow {
                kid: k.kid,
                state: k.state.as_str().into(),
                bits: k.bits,
                created: when(Some(k.created_at)),
                dates,
                published: k.state.is_published(),
                revoked_reason: k.revoked_reason,
            }
        })
        .collect();
    // Rows stored but not trusted: shown, never published.
    keys.extend(checked.untrusted.into_iter().map(|u| KeyRow {
        kid: u.kid,
        state: if u.forged { "rejected" } else { "unchecked" }.into(),
        bits: 0,
        created: "-".into(),
        dates: Vec::new(),
        published: false,
        revoked_reason: Some(if u.forged {
            format!(
                "Failed its integrity check ({}; stored as {}): not published.",
                u.why, u.state
            )
        } else {
            format!(
                "Cannot be checked by this instance ({}): not published here.",
                u.why
            )
        }),
    }));
    let order = |s: &str| {
        ["active", "next", "retired", "revoked", "removed"]
            .iter()
            .position(|x| *x == s)
    };
    keys.sort_by_key(|k| order(&k.state));
    Ok(keys)
}

#[server(endpoint = "admin_rotate_key")]
pub async fn admin_rotate_key(now_or_soon: String) -> Result<String, AdminError> {
    let a = super::admin("admin_rotate_key").await?;
    let keys = a.st.keys.clone();
    // Every key action is sensitive.
    a.recent_sign_in()?;
    let done = if now_or_soon == "now" {
        keys.rotate_now(&a.by, a.now)
            .await
            .map(|_| "A new key signs from now on; the previous one stays published until its tokens expire.".to_string())
    } else {
        keys.rotate_soon(&a.by, a.now).await.map(|(at, _)| {
            format!(
                "A new key is published now and starts signing at {}.",
                when(Some(at))
            )
        })
    };
    let _ = keys.refresh(a.now).await;
    done.map_err(|e| {
        tracing::error!(error = %e, "key rotation failed");
        AdminError::Refused(super::capitalise(&e.to_string()))
    })
}

#[server(endpoint = "admin_revoke_key")]
pub async fn admin_revoke_key(
    kid: String,
    reason: String,
    confirm: String,
) -> Result<String, AdminError> {
    use crate::domain::sites::FieldError;
    let a = super::admin("admin_revoke_key").await?;
    a.recent_sign_in()?;
    let mut problems = Vec::new();
    if reason.trim().chars().count() < 3 {
        problems.push(FieldError {
            field: "reason",
            message: "say why the key is revoked".into(),
        });
    }
    if confirm.trim() != kid {
        problems.push(FieldError {
            field: "confirm",
            message: "type the key id to confirm".into(),
        });
    }
    if !problems.is_empty() {
        return a.answer(crate::service::sites::ManageError::Invalid(problems));
    }
    let keys = a.st.keys.clone();
    let done = keys.revoke(&kid, reason.trim(), &a.by, a.now).await;
    let _ = keys.refresh(a.now).await;
    match done {
        Ok(_) => Ok(format!(
            "Key {kid} is revoked and out of the key set; tokens it signed are refused."
        )),
        Err(e) => Err(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

/// Who holds the next key, before it starts to sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReadiness {
    pub kid: String,
    pub activates: String,
    pub holding: usize,
    pub answered: usize,
    /// URLs of the sites that lack it (the first 50), and how many in all.
    pub lacking: Vec<String>,
    pub lacking_total: usize,
    pub silent: usize,
}

#[server(endpoint = "admin_key_readiness")]
pub async fn admin_key_readiness() -> Result<Option<KeyReadiness>, AdminError> {
    let a = super::admin("admin_key_readiness").await?;
    match crate::service::fleet::readiness(&a.st).await {
        Ok(r) => Ok(r.map(|r| KeyReadiness {
            activates: super::when(r.activates_at),
            lacking_total: r.lacking.len(),
            lacking: r.lacking.into_iter().take(50).map(|(_, url)| url).collect(),
            kid: r.kid,
            holding: r.holding,
            answered: r.answered,
            silent: r.silent,
        })),
        Err(e) => a.answer(crate::service::sites::ManageError::Db(e)),
    }
}

/// Ask the sites that lack the next key to fetch the key set now.
#[server(endpoint = "admin_refetch_next_key")]
pub async fn admin_refetch_next_key() -> Result<String, AdminError> {
    let a = super::admin("admin_refetch_next_key").await?;
    let lacking = match crate::service::fleet::readiness(&a.st).await {
        Ok(Some(r)) => r.lacking,
        Ok(None) => return Ok("No next key is published: nothing to fetch.".into()),
        Err(e) => return a.answer(crate::service::sites::ManageError::Db(e)),
    };
    let ids: Vec<String> = lacking.into_iter().map(|(id, _)| id).collect();
    match crate::service::fleet::check_soon(&a.st, Some(&ids), true).await {
        Ok(n) => Ok(format!(
            "{n} site(s) will be asked within seconds to fetch the key set: reload to see who holds the key."
        )),
        Err(e) => a.answer(crate::service::sites::ManageError::Db(e)),
    }
}

/// `/admin/keys`
#[component]
pub fn KeysPage() -> impl IntoView {
    let rotate = ServerAction::<AdminRotateKey>::new();
    let revoke = ServerAction::<AdminRevokeKey>::new();
    let data = Resource::new(
        move || (rotate.version().get(), revoke.version().get()),
        |_| admin_keys(),
    );
    let refetch = ServerAction::<AdminRefetchNextKey>::new();
    let ready = Resource::new(
        move || {
            (
                rotate.version().get(),
                revoke.version().get(),
                refetch.version().get(),
            )
        },
        |_| admin_key_readiness(),
    );
    view! {
        <AdminFrame title="Signing keys" section="keys">
            <p class="lead">"Tokens are signed by the active key. The key set every client site fetches holds the active key, the next one (published ahead) and retired ones (until their last tokens expire). Rotation runs on its own; rotate or revoke here when a key may be exposed."</p>
            <div class="toolbar">
                <ActionForm action=rotate attr:class="inline-form">
                    <input type="hidden" name="now_or_soon" value="soon"/>
                    <button type="submit" class="button">"Rotate safely"</button>
                </ActionForm>
                <ActionForm action=rotate attr:class="inline-form">
                    <input type="hidden" name="now_or_soon" value="now"/>
                    <button type="submit" class="button danger">"Rotate now (emergency)"</button>
                </ActionForm>
            </div>
            <Outcome value=rotate.value().into() done=|m: &String| m.clone()/>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match ready.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(None) => view! { <p class="muted" data-testid="key-readiness">"No next key is published yet."</p> }.into_any(),
                        Ok(Some(r)) => view! {
                            <section class="panel" aria-labelledby="readiness-heading">
                                <h2 id="readiness-heading">"Who holds the next key"</h2>
                                <p data-testid="key-readiness">{format!(
                                    "{} of {} sites have the next key {} (it signs from {}).",
                                    r.holding, r.answered, r.kid, r.activates)}</p>
                                <p class="muted">{format!(
                                    "Counted: connector sites that answered in the last 12 hours ({} others did not). The rotation waits, up to 3 days, while any of them lacks the key.",
                                    r.silent)}</p>
                                <ul data-testid="key-lacking">
                                    {r.lacking.iter().map(|u| view! { <li>{u.clone()}</li> }).collect_view()}
                                </ul>
                                <ActionForm action=refetch attr:class="inline-form">
                                    <button type="submit" class="button" disabled=r.lacking_total == 0>"Ask them to fetch the key set"</button>
                                </ActionForm>
                                <Outcome value=refetch.value().into() done=|m: &String| m.clone()/>
                            </section>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| view! { <p class="loading">"Loading keys…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(keys) => view! {
                            <div class="table-wrap">
                            <table class="list" data-testid="keys-table">
                                <caption class="sr-only">"The key ring"</caption>
                                <thead><tr><th scope="col">"Key id"</th><th scope="col">"State"</th><th scope="col">"Dates"</th><th scope="col">"In key set"</th></tr></thead>
                                <tbody>
                                    {keys.iter().map(|k| view! {
                                        <tr data-testid="key-row" data-state=k.state.clone()>
                                            <td class="mono">{k.kid.clone()}<br/><span class="muted">{format!("RSA {} · created {}", k.bits, k.created)}</span></td>
                                            <td><span class=format!("pill key-{}", k.state)>{k.state.clone()}</span>
                                                {k.revoked_reason.clone().map(|r| view! { <br/><span class="muted">{r}</span> })}</td>
                                            <td><dl class="facts">{k.dates.iter().map(|(l, d)| view! { <dt>{l.clone()}</dt><dd>{d.clone()}</dd> }).collect_view()}</dl></td>
                                            <td>{if k.published { "Yes" } else { "No" }}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                            <section class="panel danger-zone" aria-labelledby="revoke-heading">
                                <h2 id="revoke-heading">"Revoke a key"</h2>
                                <p>"A revoked key leaves the key set at once: every token it signed stops working on every site. Use it when a private key may be exposed."</p>
                                <ActionForm action=revoke attr:class="form" attr:aria-label="Revoke a key">
                                    <div class="field">
                                        <label for="revoke-kid">"Key"</label>
                                        <select id="revoke-kid" name="kid">
                                            {keys.iter().filter(|k| k.published).map(|k| view! {
                                                <option value=k.kid.clone()>{format!("{} ({})", k.kid, k.state)}</option>
                                            }).collect_view()}
                                        </select>
                                    </div>
                                    <Field id="revoke-reason" name="reason" label="Reason" required=true error=problem(revoke, "reason")/>
                                    <Field id="revoke-confirm" name="confirm" label="Type the key id to confirm" error=problem(revoke, "confirm")/>
                                    <div class="actions"><button type="submit" class="button danger">"Revoke key"</button></div>
                                </ActionForm>
                                <Outcome value=revoke.value().into() done=|m: &String| m.clone()/>
                            </section>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

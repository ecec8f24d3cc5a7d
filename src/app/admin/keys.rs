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

/// `/admin/keys`
#[component]
pub fn KeysPage() -> impl IntoView {
    let rotate = ServerAction::<AdminRotateKey>::new();
    let revoke = ServerAction::<AdminRevokeKey>::new();
    let data = Resource::new(
        move || (rotate.version().get(), revoke.version().get()),
        |_| admin_keys(),
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

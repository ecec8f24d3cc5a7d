//! API tokens in the console: make one (a name, scopes, how long; shown
//! once), see each with its last use, revoke one.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{problem, AdminError, AdminFrame, Outcome};

/// A token as the console lists it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub made_by: String,
    pub made: String,
    pub expires: String,
    pub last_used: String,
    /// live, expired or revoked.
    pub state: String,
}

/// A token just made: its name and its secret, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Made {
    pub name: String,
    pub secret: String,
}

#[server(endpoint = "admin_api_tokens")]
pub async fn admin_api_tokens() -> Result<Vec<TokenRow>, AdminError> {
    let a = super::admin("admin_api_tokens").await?;
    let list = match crate::service::api_tokens::list(&a.st.db).await {
        Ok(l) => l,
        Err(e) => return a.answer(e),
    };
    Ok(list
        .into_iter()
        .map(|t| TokenRow {
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= a.now {
                "expired"
            } else {
                "live"
            }
            .into(),
            scopes: crate::domain::api::join_scopes(&t.scopes),
            made: when(Some(t.created_at)),
            expires: when(Some(t.expires_at)),
            last_used: t
                .last_used_at
                .map(|t| when(Some(t)))
                .unwrap_or_else(|| "never".into()),
            name: t.name,
            prefix: t.prefix,
            made_by: t.created_by,
        })
        .collect())
}

/// Make a token (a recent sign-in needed): `scopes` comma-separated.
#[server(endpoint = "admin_create_api_token")]
pub async fn admin_create_api_token(
    name: String,
    scopes: String,
    days: String,
) -> Result<Made, AdminError> {
    use crate::service::api_tokens::{self, TokenError};
    let a = super::admin("admin_create_api_token").await?;
    a.recent_sign_in()?;
    let days: i64 = days.trim().parse().unwrap_or(0);
    let mut random = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
    match api_tokens::create(
        &a.st.db,
        &name,
        &[scopes],
        days,
        &a.person.email,
        &a.by,
        &random,
        a.now,
    )
    .await
    {
        Ok((t, secret)) => Ok(Made {
            name: t.name,
            secret,
        }),
        Err(TokenError::Invalid(e)) => super::fail(AdminError::Invalid(vec![
            crate::shared::errors::FieldProblem {
                field: e.field().into(),
                message: super::capitalise(&e.to_string()),
            },
        ])),
        Err(TokenError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

#[server(endpoint = "admin_revoke_api_token")]
pub async fn admin_revoke_api_token(name: String) -> Result<String, AdminError> {
    use crate::service::api_tokens::{self, TokenError};
    let a = super::admin("admin_revoke_api_token").await?;
    match api_tokens::revoke(&a.st.db, &name, &a.by, a.now).await {
        Ok(t) => Ok(format!("Token {} is revoked: it acts no more.", t.name)),
        Err(TokenError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

/// `/admin/tokens`
#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateApiToken>::new();
    let revoke = ServerAction::<AdminRevokeApiToken>::new();
    let data = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| admin_api_tokens(),
    );
    let chosen = RwSignal::new(std::collections::BTreeSet::<&'static str>::new());
    let joined = move || chosen.with(|c| c.iter().copied().collect::<Vec<_>>().join(","));
    view! {
        <AdminFrame title="API tokens" section="tokens">
            <p class="lead">"Tokens let scripts and other systems use the admin API ("<a href="/api/v1/docs" rel="external">"its routes"</a>"). Each call is recorded as the token and you, its maker; a token acts only while you are an enabled admin. Give each system its own token with the scopes it needs."</p>
            <section class="panel" aria-labelledby="new-token-heading">
                <h2 id="new-token-heading">"New token"</h2>
                <ActionForm action=create attr:class="form" attr:aria-label="Make a token">
                    <div class="field" class:invalid=move || problem(create, "name").get().is_some()>
                        <label for="token-name">"Name"</label>
                        <input id="token-name" name="name" type="text" maxlength="64" required placeholder="HR sync"/>
                        <p class="field-error" role="alert">{move || problem(create, "name").get()}</p>
                    </div>
                    <fieldset class="field" class:invalid=move || problem(create, "scopes").get().is_some()>
                        <legend>"Scopes"</legend>
                        <input type="hidden" name="scopes" prop:value=joined/>
                        {SCOPES.iter().map(|&(name, what)| {
                            let id = format!("scope-{}", name.replace(':', "-"));
                            let for_id = id.clone();
                            view! {
                                <label class="check" for=for_id>
                                    <input id=id type="checkbox"
                                        prop:checked=move || chosen.with(|c| c.contains(name))
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            chosen.update(|c| { if on { c.insert(name); } else { c.remove(name); } });
                                        }/>
                                    " " <code>{name}</code> ": " {what}
                                </label>
                            }
                        }).collect_view()}
                        <p class="field-error" role="alert">{move || problem(create, "scopes").get()}</p>
                    </fieldset>
                    <div class="field" class:invalid=move || problem(create, "days").get().is_some()>
                        <label for="token-days">"Lasts (days, at most 365)"</label>
                        <input id="token-days" name="days" type="number" min="1" max="365" value="90" required/>
                        <p class="field-error" role="alert">{move || problem(create, "days").get()}</p>
                    </div>
                    <p class="hint">"Making a token needs a recent sign-in."</p>
                    <div class="actions"><button type="submit" class="button primary">"Make token"</button></div>
                </ActionForm>
                {move || match create.value().get() {
                    Some(Ok(m)) => Some(view! {
                        <div class="callout" role="status" data-testid="new-token">
                            <p>{format!("Token {} is made. Copy it now: it is shown this once only.", m.name)}</p>
                            <p><code class="secret" data-testid="token-secret">{m.secret}</code></p>
                        </div>
                    }.into_any()),
                    Some(Err(AdminError::Invalid(_))) | None => None,
                    Some(Err(e)) => Some(view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any()),
                }}
            </section>
            <Outcome value=revoke.value().into() done=|m: &String| m.clone()/>
            <Suspense fallback=|| view! { <p class="loading">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"No tokens yet."</p> }.into_any(),
                        Ok(rows) => view! {
                            <div class="table-wrap">
                            <table class="list" data-testid="tokens">
                                <caption class="sr-only">"API tokens"</caption>
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"Scopes"</th><th scope="col">"Made"</th><th scope="col">"Expires"</th><th scope="col">"Last used"</th><th scope="col">"State"</th><th scope="col"></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|t| {
                                        let label = format!("Revoke the token {}", t.name);
                                        let live = t.state == "live";
                                        let revoke_name = t.name.clone();
                                        view! {
                                        <tr data-testid="token" data-name=t.name.clone() data-state=t.state.clone()>
                                            <td>{t.name.clone()}<br/><span class="muted mono">{format!("{}…", t.prefix)}</span></td>
                                            <td>{t.scopes.clone()}</td>
                                            <td>{t.made.clone()}<br/><span class="muted">{t.made_by.clone()}</span></td>
                                            <td>{t.expires.clone()}</td>
                                            <td>{t.last_used.clone()}</td>
                                            <td>{t.state.clone()}</td>
                                            <td>{live.then(|| view! {
                                                <ActionForm action=revoke attr:class="inline-form">
                                                    <input type="hidden" name="name" value=revoke_name.clone()/>
                                                    <button type="submit" class="button small danger" aria-label=label>"Revoke"</button>
                                                </ActionForm>
                                            })}</td>
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

/// The scopes and what each allows, for the form (the server's own list:
/// see the test).
pub const SCOPES: &[(&str, &str)] = &[
    ("sites:read", "list and read sites"),
    ("sites:write", "add, change, disable and delete sites"),
    ("access:read", "read who may enter which site"),
    ("access:write", "grant and revoke roles on sites"),
    (
        "people:read",
        "list people and their offboarding checklists",
    ),
    (
        "people:write",
        "disable and enable people, end their sessions",
    ),
    ("teams:read", "list teams, their members and grants"),
    ("teams:write", "change teams, their members and grants"),
    ("keys:read", "list signing keys"),
    ("keys:write", "rotate the signing key"),
    ("audit:read", "read the audit log"),
];

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_form_offers_every_scope_the_server_knows() {
        let server: Vec<(&str, &str)> = crate::domain::api::Scope::ALL
            .iter()
            .map(|s| (s.as_str(), s.describe()))
            .collect();
        assert_eq!(super::SCOPES, server.as_slice());
    }
}

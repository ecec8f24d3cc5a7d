//! The audit stream in the console: where the audit log is delivered
//! (syslog receivers, webhooks), how far each is, its last error; add one
//! (a webhook's signing secret shown once), remove one.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::when;
use super::{problem, AdminError, AdminFrame, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationRow {
    pub name: String,
    pub target: String,
    pub delivered: i64,
    pub lag: i64,
    pub last_success: String,
    pub last_error: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamView {
    pub head: i64,
    pub destinations: Vec<DestinationRow>,
}

#[server(endpoint = "admin_stream")]
pub async fn admin_stream() -> Result<StreamView, AdminError> {
    let a = super::admin("admin_stream").await?;
    let (head, list) = match crate::service::stream::status(&a.st.db).await {
        Ok(s) => s,
        Err(e) => return a.answer(e),
    };
    Ok(StreamView {
        head,
        destinations: list
            .into_iter()
            .map(|d| DestinationRow {
                lag: head - d.last_seq,
                delivered: d.last_seq,
                last_success: d
                    .last_success_at
                    .map(|t| when(Some(t)))
                    .unwrap_or_else(|| "not yet".into()),
                name: d.name,
                target: d.target,
                last_error: d.last_error,
            })
            .collect(),
    })
}

/// Add a destination (a recent sign-in needed). Returns what to tell the
/// admin, with a webhook's signing secret this once.
#[server(endpoint = "admin_add_stream")]
pub async fn admin_add_stream(
    name: String,
    target: String,
    ca: String,
    start: String,
) -> Result<String, AdminError> {
    use crate::service::stream::{self, Start, StreamError};
    let a = super::admin("admin_add_stream").await?;
    a.recent_sign_in()?;
    let start = if start == "now" {
        Start::Now
    } else {
        Start::Beginning
    };
    match stream::add(&a.st.db, &a.st.master_keys, &name, &target, &ca, start, &a.by, a.now).await {
        Ok((d, Some(secret))) => Ok(format!(
            "The audit log streams to {} from record #{}. Its signing secret, shown this once: {secret}",
            d.name,
            d.last_seq + 1
        )),
        Ok((d, None)) => Ok(format!(
            "The audit log streams to {} from record #{}.",
            d.name,
            d.last_seq + 1
        )),
        Err(StreamError::Invalid(m)) => {
            let field = if m.starts_with("name") {
                "name"
            } else if m.starts_with("ca") {
                "ca"
            } else {
                "target"
            };
            super::fail(AdminError::Invalid(vec![
                crate::shared::errors::FieldProblem {
                    field: field.into(),
                    message: super::capitalise(&m),
                },
            ]))
        }
        Err(StreamError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

#[server(endpoint = "admin_remove_stream")]
pub async fn admin_remove_stream(name: String) -> Result<String, AdminError> {
    use crate::service::stream::{self, StreamError};
    let a = super::admin("admin_remove_stream").await?;
    match stream::remove(&a.st.db, &name, &a.by, a.now).await {
        Ok(d) => Ok(format!("The audit log no longer streams to {}.", d.name)),
        Err(StreamError::Db(e)) => a.answer(e),
        Err(e) => super::fail(AdminError::Refused(super::capitalise(&e.to_string()))),
    }
}

/// `/admin/stream`
#[component]
pub fn StreamPage() -> impl IntoView {
    let add = ServerAction::<AdminAddStream>::new();
    let remove = ServerAction::<AdminRemoveStream>::new();
    let data = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| admin_stream(),
    );
    view! {
        <AdminFrame title="Audit stream" section="stream">
            <p class="lead">"Every record of the audit log is delivered to each destination, in chain order and at least once (the chain index in each lets a receiver drop repeats). A receiver that was down gets everything when it is back."</p>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(v) if v.destinations.is_empty() => view! { <p class="empty">"The audit log is not streamed anywhere yet."</p> }.into_any(),
                        Ok(v) => view! {
                            <p class="muted">{format!("The chain's last record is #{}.", v.head)}</p>
                            <div class="table-wrap">
                            <table class="list" data-testid="destinations">
                                <caption class="sr-only">"Destinations"</caption>
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"Address"</th><th scope="col">"Delivered up to"</th><th scope="col">"Behind"</th><th scope="col">"Last delivery"</th><th scope="col">"Last error"</th><th scope="col"></th></tr></thead>
                                <tbody>
                                    {v.destinations.into_iter().map(|d| {
                                        let label = format!("Stop streaming to {}", d.name);
                                        let remove_name = d.name.clone();
                                        view! {
                                        <tr data-testid="destination" data-name=d.name.clone()>
                                            <td>{d.name.clone()}</td>
                                            <td class="mono">{d.target.clone()}</td>
                                            <td>{format!("#{}", d.delivered)}</td>
                                            <td data-testid="lag">{d.lag}</td>
                                            <td>{d.last_success.clone()}</td>
                                            <td class="error-text">{d.last_error.clone()}</td>
                                            <td>
                                                <ActionForm action=remove attr:class="inline-form">
                                                    <input type="hidden" name="name" value=remove_name.clone()/>
                                                    <button type="submit" class="button small danger" aria-label=label>"Remove"</button>
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
            <Outcome value=remove.value().into() done=|m: &String| m.clone()/>
            <section class="panel" aria-labelledby="new-destination-heading">
                <h2 id="new-destination-heading">"New destination"</h2>
                <ActionForm action=add attr:class="form" attr:aria-label="Add a destination">
                    <div class="field" class:invalid=move || problem(add, "name").get().is_some()>
                        <label for="stream-name">"Name"</label>
                        <input id="stream-name" name="name" type="text" maxlength="64" required placeholder="SIEM"/>
                        <p class="field-error" role="alert">{move || problem(add, "name").get()}</p>
                    </div>
                    <div class="field" class:invalid=move || problem(add, "target").get().is_some()>
                        <label for="stream-target">"Address"</label>
                        <input id="stream-target" name="target" type="text" required placeholder="syslog+tls://logs.agency.example:6514"/>
                        <p class="hint">"https://… (a webhook: signed JSON batches), syslog+tls://host:port (RFC 5424 over TLS), or syslog+tcp:// / syslog+udp:// to a relay on this machine."</p>
                        <p class="field-error" role="alert">{move || problem(add, "target").get()}</p>
                    </div>
                    <div class="field" class:invalid=move || problem(add, "ca").get().is_some()>
                        <label for="stream-ca">"The receiver's CA (PEM, syslog+tls only; empty: the public web's)"</label>
                        <textarea id="stream-ca" name="ca" rows="3" class="mono"></textarea>
                        <p class="field-error" role="alert">{move || problem(add, "ca").get()}</p>
                    </div>
                    <div class="field">
                        <label for="stream-start">"Send"</label>
                        <select id="stream-start" name="start">
                            <option value="beginning">"the whole log, then each new record"</option>
                            <option value="now">"only records from now on"</option>
                        </select>
                    </div>
                    <p class="hint">"Adding a destination needs a recent sign-in."</p>
                    <div class="actions"><button type="submit" class="button primary">"Add"</button></div>
                </ActionForm>
                <Outcome value=add.value().into() done=|m: &String| m.clone()/>
            </section>
        </AdminFrame>
    }
}

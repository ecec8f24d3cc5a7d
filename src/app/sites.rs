//! The staff's site picker: every site the signed-in person may enter,
//! filtered as they type, favourites pinned first, recently used next;
//! `/` focuses the search, arrows move, Enter launches the highlighted site.
//! The list is rendered a page at a time so that thousands of sites stay
//! instant; the filter runs over all of them in the browser.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One site on the page. Short field names: with thousands of sites this
/// travels in every page for hydration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCard {
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "c")]
    pub client: String,
    #[serde(rename = "u")]
    pub url: String,
    #[serde(rename = "r")]
    pub role: String,
    #[serde(rename = "f")]
    pub favourite: bool,
    #[serde(rename = "l")]
    pub recent: bool,
    /// Just-in-time access: what the row offers ("Request administrator",
    /// or that a request waits), when the person may ask for more here.
    #[serde(rename = "e", default, skip_serializing_if = "String::is_empty")]
    pub ask: String,
}

/// Shared, not copied: the page's suspense hands the list out more than once
/// while it renders, and thousands of sites are costly to clone.
pub type Sites = std::sync::Arc<Vec<SiteCard>>;

#[server(endpoint = "my_sites")]
pub async fn my_sites() -> Result<Sites, ServerFnError> {
    let (st, person) = signed_in().await?;
    let now = st.clock.now();
    let sites = crate::service::access::home_sites(&st.db, &person.email, now)
        .await
        .map_err(|e| unavailable(&e))?;
    // Few people are eligible anywhere: a small query, only their rows.
    let asks: std::collections::HashMap<String, String> =
        crate::service::elevation::eligible_sites(&st.db, &person.email, now)
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .filter_map(|e| match e.open.as_ref().map(|o| o.state.as_str()) {
                None => Some((e.site_id, format!("Request {}", e.eligible.role))),
                Some("pending") => Some((e.site_id, format!("{} requested", e.eligible.role))),
                Some(_) => None,
            })
            .collect();
    Ok(Sites::new(
        sites
            .into_iter()
            .map(|s| SiteCard {
                ask: asks.get(&s.id).cloned().unwrap_or_default(),
                recent: s.recent,
                id: s.id,
                name: s.name,
                client: s.client,
                url: s.url,
                role: s.role,
                favourite: s.favourite,
            })
            .collect(),
    ))
}

#[server(endpoint = "set_favourite")]
pub async fn set_favourite(site: String, on: bool) -> Result<bool, ServerFnError> {
    let (st, person) = signed_in().await?;
    crate::service::access::set_favourite(&st.db, &person.email, &site, on, st.clock.now())
        .await
        .map_err(|e| unavailable(&e))
}

/// The service and the signed-in person, or the error the page shows.
#[cfg(feature = "ssr")]
pub(crate) async fn signed_in(
) -> Result<(crate::service::Context, crate::domain::people::Person), ServerFnError> {
    let st = expect_context::<crate::service::Context>();
    let session: tower_sessions::Session = leptos_axum::extract().await?;
    let person = crate::service::sessions::current_person(&st, &session)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| ServerFnError::new("Please sign in again."))?;
    Ok((st, person))
}

#[cfg(feature = "ssr")]
pub(crate) fn unavailable(e: &dyn std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %e, "cannot read the database");
    ServerFnError::new("The dashboard cannot reach its database right now.")
}

/// Rows rendered at first and added by "Show more".
const PAGE: usize = 60;

/// The person's sites, to be made once per page (see `HomePage`).
pub type SitesResource = Resource<Result<Sites, ServerFnError>>;

/// The list, from a resource the page made once: made here, inside the
/// page's suspense, it would be made (and its thousands of sites fetched
/// and sent) again each time that suspense renders.
#[component]
pub fn SiteList(sites: SitesResource) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your sites…"</p> }>
            {move || Suspend::new(async move {
                match sites.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">
                            "No client sites are open to you yet. They appear here once an admin grants you access."
                        </p>
                    }.into_any(),
                    Ok(list) => view! { <SitePicker list/> }.into_any(),
                    Err(_) => view! {
                        <p class="error" role="alert">
                            "Your sites cannot be listed right now. Please reload the page in a moment."
                        </p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Lower-cased words of a site that a search matches against.
fn haystack(s: &SiteCard) -> String {
    format!("{} {} {}", s.name, s.client, s.url).to_lowercase()
}

/// Positions of the sites matching every word of the query, in list order.
fn filter(hay: &[String], query: &str) -> Vec<usize> {
    let q = query.to_lowercase();
    let words: Vec<&str> = q.split_whitespace().collect();
    hay.iter()
        .enumerate()
        .filter(|(_, h)| words.iter().all(|w| h.contains(w)))
        .map(|(i, _)| i)
        .collect()
}

#[component]
fn SitePicker(list: Sites) -> impl IntoView {
    let total = list.len();
    // What the filter searches: built in the browser once the page is live
    // (the server renders the unfiltered list and never needs it).
    let hay = StoredValue::new(None::<Vec<String>>);
    let favourites = RwSignal::new(
        list.iter()
            .filter(|s| s.favourite)
            .map(|s| s.id.clone())
            .collect::<std::collections::HashSet<_>>(),
    );
    let list = StoredValue::new(list);
    let query = RwSignal::new(String::new());
    let path = RwSignal::new(String::new());
    let limit = RwSignal::new(PAGE);
    let cursor = RwSignal::new(0usize);
    let search: NodeRef<leptos::html::Input> = NodeRef::new();
    // Effects run only in the browser, once the page is hydrated: tests and
    // styles can tell a live picker from server-rendered HTML.
    let live = RwSignal::new(false);
    let build_hay = move || {
        if hay.with_value(Option::is_none) {
            hay.set_value(Some(list.with_value(|l| l.iter().map(haystack).collect())));
        }
    };
    Effect::new(move |_| {
        build_hay();
        live.set(true);
    });

    let matches = Memo::new(move |_| {
        query.with(|q| {
            if q.trim().is_empty() {
                return (0..total).collect::<Vec<_>>();
            }
            build_hay();
            hay.with_value(|h| filter(h.as_deref().unwrap_or_default(), q))
        })
    });
    let launch_highlighted = move || {
        let Some(i) = matches.with_untracked(|m| m.get(cursor.get_untracked()).copied()) else {
            return;
        };
        let id = list.with_value(|l| l[i].id.clone());
        click_launch(&id);
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "ArrowDown" => {
            ev.prevent_default();
            let n = matches.with_untracked(|m| m.len());
            let next = (cursor.get_untracked() + 1).min(n.saturating_sub(1));
            if next >= limit.get_untracked() {
                limit.set(next + 1);
            }
            cursor.set(next);
        }
        "ArrowUp" => {
            ev.prevent_default();
            cursor.set(cursor.get_untracked().saturating_sub(1));
        }
        "Enter" => {
            ev.prevent_default();
            launch_highlighted();
        }
        "Escape" => {
            query.set(String::new());
            cursor.set(0);
            limit.set(PAGE);
        }
        _ => {}
    };

    // `/` anywhere on the page (outside a text field) focuses the search.
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() != "/" || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let typing = document()
                .active_element()
                .map(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
                .unwrap_or(false);
            if !typing {
                if let Some(input) = search.get_untracked() {
                    ev.prevent_default();
                    let _ = input.focus();
                }
            }
        });
        on_cleanup(move || handle.remove());
    });

    let toggle = Action::new(move |(id, on): &(String, bool)| {
        let (id, on) = (id.clone(), *on);
        async move {
            if let Ok(true) = set_favourite(id.clone(), on).await {
                favourites.update(|f| {
                    if on {
                        f.insert(id);
                    } else {
                        f.remove(&id);
                    }
                });
            }
        }
    });

    // The list is a pool of row elements, one per place on the page (the
    // first `limit` matches): a keystroke changes which site each place
    // shows, and places beyond the matches are hidden, so typing never
    // builds or drops rows; only their text changes.
    let row = move |place: usize| {
        let at = Memo::new(move |_| matches.with(|m| m.get(place).copied()));
        let id = shown(at, list, |s| s.id.clone());
        let name = shown(at, list, |s| s.name.clone());
        let recent = shown(at, list, |s| s.recent);
        let ask = shown(at, list, |s| s.ask.clone());
        let is_fav = move || {
            let id = id();
            favourites.with(|f| f.contains(&id))
        };
        view! {
            <li
                class="site"
                class:active=move || cursor.get() == place && at.get().is_some()
                hidden=move || at.get().is_none()
                data-testid=move || at.get().map(|_| "site-row")
            >
                <button
                    type="button"
                    class="star"
                    aria-label=move || format!("Pin {}", name())
                    aria-pressed=move || if is_fav() { "true" } else { "false" }
                    on:click=move |_| {
                        let Some(i) = at.get_untracked() else { return };
                        let id = list.with_value(|l| l[i].id.clone());
                        let on = !favourites.with_untracked(|f| f.contains(&id));
                        toggle.dispatch((id, on));
                    }
                >
                    {move || if is_fav() { "★" } else { "☆" }}
                </button>
                <div class="what">
                    <span class="name">{name}</span>
                    <span class="client">{shown(at, list, |s| s.client.clone())}</span>
                    <span class="url">{shown(at, list, |s| s.url.clone())}</span>
                </div>
                <span class="tag" hidden=move || !recent()>{move || if recent() { "recent" } else { "" }}</span>
                <span class="badge role" title="Your WordPress role on this site">{shown(at, list, |s| s.role.clone())}</span>
                // Just-in-time access: to the site's request form in the
                // "Higher access" panel below, its reason field focused.
                <a class="button small ask" hidden=move || ask().is_empty() data-testid="row-ask"
                    href=move || format!("#eligible-{}", id())
                    on:click=move |_| focus_request(&id())>{ask}</a>
                <button type="submit" name="site" value=id class="button primary" id=move || at.get().map(|_| format!("launch-{}", id())) aria-label=move || format!("Open {}", name())>
                    "Open"
                </button>
            </li>
        }
    };

    view! {
        // One form for the whole list: each Open button submits its site
        // (`name="site"`) with the deep-link field (`name="path"`), so a row
        // holds no form or inputs of its own and is cheap to draw while typing.
        <form class="picker" method="post" action="/launch" data-live=move || if live.get() { "true" } else { "false" }>
            <div class="search">
                <label for="site-search">"Find a site"</label>
                <input
                    id="site-search"
                    type="search"
                    node_ref=search
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="Name, client or address   (press / to search)"
                    aria-controls="site-list"
                    prop:value=move || query.get()
                    on:input=move |ev| {
                        query.set(event_target_value(&ev));
                        cursor.set(0);
                        limit.set(PAGE);
                    }
                    on:keydown=on_key
                />
                <label for="deep-link">"Open at (optional)"</label>
                <input
                    id="deep-link"
                    name="path"
                    type="text"
                    autocomplete="off"
                    placeholder="/wp-admin/"
                    prop:value=move || path.get()
                    on:input=move |ev| path.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" {
                            ev.prevent_default();
                            launch_highlighted();
                        }
                    }
                />
            </div>
            <p class="count" aria-live="polite" data-testid="site-count">
                {move || {
                    let n = matches.with(|m| m.len());
                    let showing = n.min(limit.get());
                    match (n, query.with(|q| q.trim().is_empty())) {
                        (0, _) => format!("No site matches “{}”.", query.get().trim()),
                        (n, true) if showing == n => format!("{n} sites"),
                        (n, false) if showing == n => format!("{n} of {total} sites match"),
                        (n, _) => format!("Showing {showing} of {n} sites: type to narrow"),
                    }
                }}
            </p>
            <ul id="site-list" class="sites">
                <For each=move || 0..limit.get().min(total) key=|place| *place let:place>
                    {row(place)}
                </For>
            </ul>
            <Show when=move || { matches.with(|m| m.len()) > limit.get() }>
                <button type="button" class="button more" on:click=move |_| limit.update(|l| *l += PAGE * 4)>
                    "Show more"
                </button>
            </Show>
        </form>
    }
}

/// One field of the site a row of the picker shows (`at`: its place in the
/// list), or the default while the row shows none.
fn shown<T: Default>(
    at: Memo<Option<usize>>,
    list: StoredValue<Sites>,
    field: fn(&SiteCard) -> T,
) -> impl Fn() -> T + Copy {
    move || {
        at.get()
            .map(|i| list.with_value(|l| field(&l[i])))
            .unwrap_or_default()
    }
}

/// Focus the reason field of a site's request form, if one is open.
fn focus_request(id: &str) {
    use leptos::wasm_bindgen::JsCast;
    if let Some(input) = document()
        .get_element_by_id(&format!("ask-{id}-reason"))
        .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
    {
        let _ = input.focus();
    }
}

/// Submit the launch form of a site, as a click on its Open button would.
fn click_launch(id: &str) {
    use leptos::wasm_bindgen::JsCast;
    if let Some(button) = document()
        .get_element_by_id(&format!("launch-{id}"))
        .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
    {
        button.click();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_must_match_name_client_or_url() {
        let card = |n: &str, c: &str, u: &str| SiteCard {
            id: n.into(),
            name: n.into(),
            client: c.into(),
            url: u.into(),
            role: "editor".into(),
            favourite: false,
            recent: false,
            ask: String::new(),
        };
        let hay: Vec<String> = [
            card("Acme Shop", "Acme", "https://shop.acme.example"),
            card("Acme Blog", "Acme", "https://blog.acme.example"),
            card("Bakery", "Crumbs Ltd", "https://crumbs.example/bakery"),
        ]
        .iter()
        .map(haystack)
        .collect();
        assert_eq!(filter(&hay, ""), [0, 1, 2]);
        assert_eq!(filter(&hay, "acme"), [0, 1]);
        assert_eq!(filter(&hay, "ACME blog"), [1]);
        assert_eq!(filter(&hay, "crumbs"), [2]);
        assert_eq!(filter(&hay, "/bakery"), [2]);
        assert!(filter(&hay, "zzz").is_empty());
    }
}

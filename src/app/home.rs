//! The home page: the sign-in button, or the signed-in person's dashboard.

use leptos::prelude::*;

use super::sites::{my_sites, SiteList, SitesResource};
use super::{get_viewer, PersonView, TopBar};

#[component]
pub fn HomePage() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_viewer());
    // Made here, once, beside `me` (for someone signed out it answers with an error, unused).
    let sites: SitesResource = Resource::new(|| (), |_| my_sites());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(v) => match v.person {
                        Some(person) => view! { <Dashboard person sites/> }.into_any(),
                        None => view! { <SignIn provider=v.provider_name/> }.into_any(),
                    },
                    Err(_) => view! {
                        <main class="notice">
                            <h1>"Dashboard unavailable"</h1>
                            <p>"The dashboard cannot reach its database right now. Please try again in a moment."</p>
                        </main>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignIn(provider: String) -> impl IntoView {
    view! {
        <main class="signin">
            <h1>"Agency SSO"</h1>
            <p>"Sign in once, then open any client site you look after, already logged in."</p>
            // rel=external: a full navigation to the server route, not a client-side route.
            <a class="button primary" href="/auth/login" rel="external">
                "Sign in with " {provider}
            </a>
        </main>
    }
}

#[component]
fn Dashboard(person: PersonView, sites: SitesResource) -> impl IntoView {
    let name = person.name.clone();
    view! {
        <TopBar person/>
        <main class="dashboard">
            <h1>"Welcome, " {name}</h1>
            <section aria-labelledby="sites-heading">
                <h2 id="sites-heading">"Your sites"</h2>
                <SiteList sites/>
            </section>
            <super::access::AccessPanel/>
            <super::access::DecisionsPanel/>
        </main>
    }
}

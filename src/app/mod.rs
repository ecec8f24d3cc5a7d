//! The Leptos app: the HTML shell, routes and pages. Server functions stay
//! thin and call the plain modules under `web` and `store`.

pub mod access;
pub mod admin;
pub mod audit;
mod home;
pub mod sites;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{ParamSegment, SsrMode, StaticSegment};
use serde::{Deserialize, Serialize};

/// Text for a `<textarea>`'s content. Leptos writes a textarea's children
/// unescaped on the server (as it does a script's), so stored text there
/// could close the element and add markup; it is escaped here. In the
/// browser the content is a text node and is kept as is.
pub fn textarea_text(text: String) -> String {
    #[cfg(feature = "ssr")]
    {
        crate::shared::html::escape(&text)
    }
    #[cfg(not(feature = "ssr"))]
    {
        text
    }
}

/// The HTML around every page. `bundle_ready`: the hydrate bundle can be
/// sent (the server's composition root looks); while it cannot, the page
/// waits for it ([`AwaitBundle`]).
pub fn shell(options: LeptosOptions, bundle_ready: bool) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_page_policy();
    let scripts = if bundle_ready {
        view! { <HydrationScripts options=options.clone()/> }.into_any()
    } else {
        view! { <AwaitBundle options=options.clone()/> }.into_any()
    };
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                {scripts}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The hydration script of a page served before its bundle was built (a
/// first `scripts/dev` answers as soon as the server is built): the page
/// works as plain links and forms meanwhile, asks every two seconds whether
/// the bundle has landed, and hydrates itself when it has, as
/// `HydrationScripts` would have. wasm-bindgen writes the JavaScript before
/// the `.wasm` is moved into place, so the `.wasm` answering means both are
/// there.
#[component]
fn AwaitBundle(options: LeptosOptions) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce();
    let pkg = format!("/{}/{}", options.site_pkg_dir, options.output_name);
    let script = format!(
        "(function (js, wasm) {{\n\
         const hydrate = () => import(js).then(m => m.default({{module_or_path: wasm}}).then(() => m.hydrate()));\n\
         const poll = () => fetch(wasm, {{method: 'HEAD', cache: 'no-store'}})\n\
           .then(r => r.ok ? hydrate() : setTimeout(poll, 2000), () => setTimeout(poll, 2000));\n\
         poll();\n\
         }})({js:?}, {wasm:?});",
        js = format!("{pkg}.js"),
        wasm = format!("{pkg}.wasm"),
    );
    view! { <script type="module" nonce=nonce>{script}</script> }
}

/// Page CSP: only this origin's scripts and those carrying this response's
/// nonce (Leptos' hydration and streaming scripts); wasm may compile.
#[cfg(feature = "ssr")]
fn set_page_policy() {
    use axum::http::{header, HeaderValue};
    use leptos::nonce::use_nonce;
    let (Some(nonce), Some(res)) = (use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    // form-action: a launch posts here and is answered with a 303 to the
    // client site, which browsers check against form-action too. Sites are
    // https (plain http only on loopback, for local testing).
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; \
         form-action 'self' https: http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/agency-sso.css"/>
        <Title text="Agency SSO"/>
        <Router>
            <Routes fallback=NotFound>
                // Async: the page is complete in the first response, so it reads
                // right without JavaScript and its headers are all set.
                <Route path=StaticSegment("") view=home::HomePage ssr=SsrMode::Async/>
                <Route path=StaticSegment("audit") view=audit::AuditPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("activity") view=audit::ActivityPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("admin") view=admin::sites::SitesPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("sites")) view=admin::sites::SitesPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("fleet")) view=admin::fleet::FleetPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("sites"), StaticSegment("new")) view=admin::sites::NewSitePage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("sites"), StaticSegment("import")) view=admin::sites::ImportPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("grants"), StaticSegment("import")) view=admin::sites::GrantsImportPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("sites"), ParamSegment("id")) view=admin::sites::SitePage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("people")) view=admin::people::PeoplePage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("people"), ParamSegment("id")) view=admin::people::PersonPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("teams")) view=admin::teams::TeamsPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("teams"), ParamSegment("id")) view=admin::teams::TeamPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("keys")) view=admin::keys::KeysPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("tokens")) view=admin::tokens::TokensPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("stream")) view=admin::stream::StreamPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("sessions")) view=admin::sessions::SessionsPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), StaticSegment("access")) view=admin::access::AccessPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// The bar at the top of every signed-in page: where to go, who is signed in.
#[component]
pub fn TopBar(person: PersonView) -> impl IntoView {
    let role = if person.is_admin { "Admin" } else { "Staff" };
    view! {
        <header class="topbar">
            <span class="brand">"Agency SSO"</span>
            <nav class="nav" aria-label="Main">
                <a href="/">"Sites"</a>
                <a href="/activity">"My activity"</a>
                {person.is_admin.then(|| view! { <a href="/admin/sites">"Admin"</a> <a href="/audit">"Audit log"</a> })}
            </nav>
            <div class="who">
                <span class="name" data-testid="person-name">{person.name.clone()}</span>
                <span class="email">{person.email.clone()}</span>
                <span class="badge" data-testid="person-role">{role}</span>
                <form method="post" action="/auth/logout">
                    <button type="submit" class="button">"Sign out"</button>
                </form>
            </div>
        </header>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="notice">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address."</p>
            <p><a href="/">"Back to the dashboard"</a></p>
        </main>
    }
}

/// Who is looking at the page, as the pages need it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub person: Option<PersonView>,
    /// "Google", or the configured provider's name, for the sign-in button.
    pub provider_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonView {
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

#[server(endpoint = "viewer")]
pub async fn get_viewer() -> Result<Viewer, ServerFnError> {
    let st = expect_context::<crate::service::Context>();
    let session: tower_sessions::Session = leptos_axum::extract().await?;
    let person = crate::service::sessions::current_person(&st, &session)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read who is signed in");
            ServerFnError::new("The dashboard cannot reach its database right now.")
        })?;
    Ok(Viewer {
        person: person.map(|p| PersonView {
            name: p.display_name().to_string(),
            email: p.email.clone(),
            is_admin: p.is_admin,
        }),
        provider_name: st.config.oidc.provider_name.clone(),
    })
}

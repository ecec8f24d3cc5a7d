//! The web side's shared state: the services' context and what only the
//! web edge needs (the OpenID Connect client, metrics, rate limits, Leptos).

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use super::oidc::OidcProvider;
use crate::service::Context;

/// The service's shared state. One `Arc`: every request clones it several
/// times (each middleware layer and extractor takes its own), so a clone is
/// one counter increment rather than one per part.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }

    /// The same services with other Leptos settings (tests serve another
    /// site folder this way).
    pub fn with_leptos(&self, leptos: LeptosOptions) -> AppState {
        AppState::new(Services {
            leptos,
            ..(*self.0).clone()
        })
    }
}

/// What the service is made of: see [`AppState`].
#[derive(Clone)]
pub struct Services {
    /// What the services need (reached through `Deref`: `st.db`, `st.clock`).
    pub core: Context,
    pub oidc: Arc<OidcProvider>,
    /// Request, launch and refusal counts for `/metrics`.
    pub metrics: Arc<super::metrics::Metrics>,
    /// Rate limits on sign-in and launch, per process.
    pub limits: Arc<super::limits::Limiter>,
    pub leptos: LeptosOptions,
}

impl std::ops::Deref for Services {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.core
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(st: &AppState) -> Self {
        st.leptos.clone()
    }
}

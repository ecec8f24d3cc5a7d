//! agency-sso: staff sign in once and launch into client WordPress sites.
//!
//! The crate builds twice: with `ssr` as the server (axum, sqlx, OIDC) and
//! with `hydrate` as the WebAssembly bundle that hydrates the pages.

// The console's views are deeply nested types; the optimised WebAssembly
// build needs more than the default 128 levels to lay them out.
#![recursion_limit = "256"]

pub mod app;
#[cfg(feature = "ssr")]
pub mod domain;

#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod error;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod service;
pub mod shared;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod web;

/// The version and the commit it was built from (`agency-sso --version`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AGENCY_SSO_COMMIT"),
    ")"
);

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

//! The domain: who may sign in, people and their standing, session
//! lifetimes, sites and who may enter them, signing keys and tokens,
//! secrets at rest.
//! No axum, leptos or sqlx in here; time is always passed in.

pub mod access;
pub mod api;
pub mod audit;
pub mod connect;
pub mod elevation;
pub mod fleet;
pub mod grant_import;
pub mod identity;
pub mod import;
pub mod keys;
pub mod limits;
pub mod messages;
pub mod notify;
pub mod people;
pub mod secrets;
pub mod session;
pub mod sites;
pub mod stream;
pub mod tokens;

//! The domain: who may sign in, people and their standing, session
//! lifetimes, signing keys and tokens, secrets at rest.
//! No axum, leptos or sqlx in here; time is always passed in.

pub mod identity;
pub mod keys;
pub mod people;
pub mod secrets;
pub mod session;
pub mod tokens;

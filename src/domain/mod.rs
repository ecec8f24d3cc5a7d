//! The domain: who may sign in, people and their standing, session lifetimes.
//! No axum, leptos or sqlx in here; time is always passed in.

pub mod identity;
pub mod people;
pub mod session;

//! The services: one module per capability, each action whole (who may,
//! the rule, the write and its audit record, in one transaction). The
//! console's server functions (`app/`), the axum handlers (`web/`) and the
//! command line (`cli.rs`) all come through here, so one action has one
//! rule and leaves one kind of record whoever asks for it. Services call
//! `store/` and `domain/`, never `web/`, `app/` or `server.rs`; see
//! ARCHITECTURE.md.

pub mod access;
pub mod api_tokens;
pub mod audit;
pub mod backup;
pub mod connect;
pub mod context;
pub mod elevation;
pub mod fleet;
pub mod keys;
pub mod launch;
pub mod messages;
pub mod notify;
pub mod people;
pub mod sessions;
pub mod sites;
pub mod stream;
pub mod teams;

pub use crate::store::Db;
pub use context::{clock_for, Clock, Context, OffsetClock, SystemClock};

//! What the browser bundle and the server both use, below both `app/` and
//! `web/`: the wire types of the console's server functions and the audit
//! log's query, and HTML escaping. Nothing here reaches up.

pub mod errors;
pub mod html;
pub mod query;

//! The audit log's filters as a query string carries them.

use serde::{Deserialize, Serialize};

/// The filters, as the page's query string carries them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub person: String,
    pub site: String,
    pub client: String,
    pub event: String,
    pub outcome: String,
    /// YYYY-MM-DD (UTC), inclusive.
    pub since: String,
    /// YYYY-MM-DD (UTC), inclusive.
    pub until: String,
    pub before: Option<i64>,
}

impl AuditQuery {
    /// The query string of these filters (without `before`).
    pub fn to_query(&self) -> String {
        let pairs = [
            ("person", &self.person),
            ("site", &self.site),
            ("client", &self.client),
            ("event", &self.event),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encoding for a query value.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

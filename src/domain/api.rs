//! The admin API's rules: tokens (their secret, name, scopes and life),
//! and the problem details (RFC 9457) its errors are told in. Pure: the
//! secret's randomness and the time are passed in.

use sha2::{Digest, Sha256};

/// What a token may do. Reading and writing are separate; revoking a
/// signing key is never a token's (the console, with a fresh sign-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    SitesRead,
    SitesWrite,
    AccessRead,
    AccessWrite,
    PeopleRead,
    PeopleWrite,
    TeamsRead,
    TeamsWrite,
    KeysRead,
    KeysWrite,
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 11] = [
        Scope::SitesRead,
        Scope::SitesWrite,
        Scope::AccessRead,
        Scope::AccessWrite,
        Scope::PeopleRead,
        Scope::PeopleWrite,
        Scope::TeamsRead,
        Scope::TeamsWrite,
        Scope::KeysRead,
        Scope::KeysWrite,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SitesRead => "sites:read",
            Scope::SitesWrite => "sites:write",
            Scope::AccessRead => "access:read",
            Scope::AccessWrite => "access:write",
            Scope::PeopleRead => "people:read",
            Scope::PeopleWrite => "people:write",
            Scope::TeamsRead => "teams:read",
            Scope::TeamsWrite => "teams:write",
            Scope::KeysRead => "keys:read",
            Scope::KeysWrite => "keys:write",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }

    /// What it lets a token do, for the console's choices.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::SitesRead => "list and read sites",
            Scope::SitesWrite => "add, change, disable and delete sites",
            Scope::AccessRead => "read who may enter which site",
            Scope::AccessWrite => "grant and revoke roles on sites",
            Scope::PeopleRead => "list people and their offboarding checklists",
            Scope::PeopleWrite => "disable and enable people, end their sessions",
            Scope::TeamsRead => "list teams, their members and grants",
            Scope::TeamsWrite => "change teams, their members and grants",
            Scope::KeysRead => "list signing keys",
            Scope::KeysWrite => "rotate the signing key",
            Scope::AuditRead => "read the audit log",
        }
    }
}

/// Scopes as stored: sorted, space-separated.
pub fn join_scopes(scopes: &[Scope]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")
}

/// Scopes as stored, read back (unknown words are dropped: a scope taken
/// out of a later version grants nothing).
pub fn split_scopes(stored: &str) -> Vec<Scope> {
    stored.split_whitespace().filter_map(Scope::parse).collect()
}

/// The longest a token may live, and the shortest.
pub const MAX_DAYS: i64 = 365;
pub const MIN_DAYS: i64 = 1;

/// A token's terms as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: i64,
}

/// Why a token cannot be made so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("name: 1 to 64 letters, digits, spaces, dots, dashes or underscores")]
    Name,
    #[error("scopes: choose at least one")]
    NoScope,
    #[error("scopes: {0:?} is not a scope (they are {all})", all = Scope::ALL.map(|s| s.as_str()).join(", "))]
    UnknownScope(String),
    #[error("days: from {MIN_DAYS} to {MAX_DAYS}")]
    Days,
}

impl TermsError {
    pub fn field(&self) -> &'static str {
        match self {
            TermsError::Name => "name",
            TermsError::NoScope | TermsError::UnknownScope(_) => "scopes",
            TermsError::Days => "days",
        }
    }
}

/// Check a new token's name, scopes (as typed) and life in days.
pub fn check_terms(
    name: &str,
    scopes: &[String],
    days: i64,
    now: i64,
) -> Result<Terms, TermsError> {
    let name = name.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(plain) {
        return Err(TermsError::Name);
    }
    let mut parsed = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split([',', ' '])) {
        if s.trim().is_empty() {
            continue;
        }
        parsed.push(Scope::parse(s).ok_or_else(|| TermsError::UnknownScope(s.trim().into()))?);
    }
    if parsed.is_empty() {
        return Err(TermsError::NoScope);
    }
    if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
        return Err(TermsError::Days);
    }
    parsed.sort();
    parsed.dedup();
    Ok(Terms {
        name: name.to_string(),
        scopes: parsed,
        expires_at: now + days * 86_400,
    })
}

/// Every token starts so: a scanner that finds one in a repository or a
/// log can tell what it is.
pub const PREFIX: &str = "asso_";

/// A new token: the secret (shown once), its hash (stored), and the first
/// characters to tell it apart in a list.
pub struct NewToken {
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

/// Make a token from 32 random bytes.
pub fn new_token(random: &[u8; 32]) -> NewToken {
    use base64::Engine;
    let secret = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    NewToken {
        hash: hash(&secret),
        prefix: secret.chars().take(PREFIX.len() + 6).collect(),
        secret,
    }
}

/// The stored form of a secret: its SHA-256 (the secret has 256 bits of
/// randomness, so no slow hash is needed), hex.
pub fn hash(secret: &str) -> String {
    super::audit::to_hex(&Sha256::digest(secret.trim().as_bytes()).into())
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Why a presented token does not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, not one of ours, or malformed.
    Unknown,
    Revoked,
    Expired,
    /// Its maker is no longer an enabled admin.
    MakerNotAdmin,
    /// It lacks the scope the call needs.
    Scope(Scope),
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Unknown => "token_invalid",
            Refusal::Revoked => "token_revoked",
            Refusal::Expired => "token_expired",
            Refusal::MakerNotAdmin => "token_maker_not_admin",
            Refusal::Scope(_) => "scope_missing",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Refusal::Scope(_) => 403,
            _ => 401,
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::Unknown => "send a valid API token: Authorization: Bearer asso_…".into(),
            Refusal::Revoked => "this token was revoked".into(),
            Refusal::Expired => "this token has expired: make a new one in the console".into(),
            Refusal::MakerNotAdmin => {
                "the admin who made this token is no longer an enabled admin, so it acts no more"
                    .into()
            }
            Refusal::Scope(s) => format!("this call needs the scope {}", s.as_str()),
        }
    }
}

/// May this stored token act now, with `needed`? `maker_is_admin`: its
/// maker is still an enabled admin (always true for the operator's).
pub fn judge(
    token: &Token,
    maker_is_admin: bool,
    needed: Option<Scope>,
    now: i64,
) -> Result<(), Refusal> {
    if token.revoked_at.is_some() {
        return Err(Refusal::Revoked);
    }
    if token.expires_at <= now {
        return Err(Refusal::Expired);
    }
    if !maker_is_admin {
        return Err(Refusal::MakerNotAdmin);
    }
    match needed {
        Some(s) if !token.scopes.contains(&s) => Err(Refusal::Scope(s)),
        _ => Ok(()),
    }
}

/// The actor a token's calls are recorded as: its name and its maker.
pub fn actor_name(token_name: &str, maker: &str) -> String {
    format!("token {token_name} (made by {maker})")
}

/// Whether an actor is `email` in person or through a token they made
/// (a token's name holds no parenthesis, so its maker reads back exactly).
pub fn acts_as(actor: &str, email: &str) -> bool {
    actor == email
        || actor
            .strip_prefix("token ")
            .and_then(|rest| rest.rsplit_once(" (made by "))
            .and_then(|(_, maker)| maker.strip_suffix(')'))
            == Some(email)
}

/// The fingerprint of a write, to tell a retry (the same request under the
/// same Idempotency-Key) from a different request reusing the key.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    super::audit::to_hex(&h.finalize().into())
}

/// An Idempotency-Key as accepted: 1 to 255 visible ASCII characters.
pub fn check_idempotency_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn token(scopes: &[Scope]) -> Token {
        Token {
            id: "t".into(),
            name: "hr".into(),
            prefix: "asso_abc".into(),
            scopes: scopes.to_vec(),
            created_by: "ada@agency.test".into(),
            created_at: NOW - 10,
            expires_at: NOW + 86_400,
            last_used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn terms_are_checked() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let t = check_terms(" HR sync ", &s(&["people:write", "sites:read"]), 30, NOW).unwrap();
        assert_eq!(t.name, "HR sync");
        assert_eq!(t.scopes, [Scope::SitesRead, Scope::PeopleWrite]);
        assert_eq!(t.expires_at, NOW + 30 * 86_400);
        assert_eq!(
            check_terms("x", &s(&["sites:read,audit:read"]), 1, NOW)
                .unwrap()
                .scopes
                .len(),
            2
        );
        assert_eq!(
            check_terms("", &s(&["sites:read"]), 1, NOW),
            Err(TermsError::Name)
        );
        assert_eq!(
            check_terms("a/b", &s(&["sites:read"]), 1, NOW),
            Err(TermsError::Name)
        );
        assert_eq!(check_terms("a", &s(&[]), 1, NOW), Err(TermsError::NoScope));
        assert_eq!(
            check_terms("a", &s(&["sites:admin"]), 1, NOW),
            Err(TermsError::UnknownScope("sites:admin".into()))
        );
        assert_eq!(
            check_terms("a", &s(&["sites:read"]), 366, NOW),
            Err(TermsError::Days)
        );
        assert_eq!(
            check_terms("a", &s(&["sites:read"]), 0, NOW),
            Err(TermsError::Days)
        );
    }

    #[test]
    fn a_token_is_stored_only_as_its_hash_and_read_back_by_it() {
        let t = new_token(&[7; 32]);
        assert!(t.secret.starts_with("asso_"));
        assert_eq!(t.secret.len(), 5 + 43);
        assert_eq!(t.hash, hash(&t.secret));
        assert_ne!(t.hash, hash(&new_token(&[8; 32]).secret));
        assert!(!t.hash.contains(&t.secret[5..]));
        assert!(t.secret.starts_with(&t.prefix));
        assert_eq!(
            split_scopes(&join_scopes(&[
                Scope::AuditRead,
                Scope::SitesRead,
                Scope::AuditRead
            ])),
            [Scope::SitesRead, Scope::AuditRead]
        );
    }

    #[test]
    fn a_token_acts_only_live_with_its_scopes_and_its_maker_an_admin() {
        let t = token(&[Scope::SitesRead]);
        assert_eq!(judge(&t, true, Some(Scope::SitesRead), NOW), Ok(()));
        assert_eq!(
            judge(&t, true, Some(Scope::SitesWrite), NOW),
            Err(Refusal::Scope(Scope::SitesWrite))
        );
        assert_eq!(
            judge(&t, false, Some(Scope::SitesRead), NOW),
            Err(Refusal::MakerNotAdmin)
        );
        assert_eq!(judge(&t, true, None, NOW + 86_400), Err(Refusal::Expired));
        let revoked = Token {
            revoked_at: Some(NOW),
            ..t
        };
        assert_eq!(judge(&revoked, true, None, NOW), Err(Refusal::Revoked));
    }

    #[test]
    fn a_tokens_actor_acts_as_its_maker() {
        let a = actor_name("hr sync", "ada@agency.test");
        assert!(acts_as(&a, "ada@agency.test"));
        assert!(acts_as("ada@agency.test", "ada@agency.test"));
        assert!(!acts_as(&a, "da@agency.test"));
        assert!(!acts_as(&a, "bob@agency.test"));
        assert!(!acts_as("command line", "ada@agency.test"));
    }

    #[test]
    fn idempotency_keys_and_request_fingerprints() {
        assert!(check_idempotency_key("2f1c-…".trim_end_matches('…')));
        assert!(!check_idempotency_key(""));
        assert!(!check_idempotency_key("has space"));
        assert!(!check_idempotency_key(&"x".repeat(256)));
        assert_ne!(
            request_hash("POST", "/api/v1/sites", b"{}"),
            request_hash("POST", "/api/v1/sites", b"{\"a\":1}")
        );
    }
}

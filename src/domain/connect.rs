//! Connecting a site in one step: connection codes (single use, bound to
//! one site URL, expiring, stored hashed), the site messages that prove a
//! URL serves the WordPress asking to connect, and how a redemption is
//! refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::messages::shown;

/// How a code starts: the format's version.
pub const PREFIX: &str = "asso1";
/// How long a code made by the console or the command line lasts.
pub const DEFAULT_TTL: i64 = 24 * 3600;
/// The longest a code may be made to last.
pub const MAX_TTL: i64 = 30 * 86_400;
/// How long a code made by an approval in the browser lasts: the browser
/// brings it straight back to the site.
pub const APPROVAL_TTL: i64 = 600;
/// The JOSE `typ` of a site message: never a launch token (`JWT`) nor a
/// logout token (`logout+jwt`), and neither of those is ever one.
pub const SITE_TYP: &str = "agency-sso-site+jwt";
/// How long a site message's token is valid, seconds.
pub const SITE_LIFETIME: i64 = 120;
/// The most of a site's answer to a site message that is read.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// The longest `attempt` a site may send.
const MAX_ATTEMPT_LEN: usize = 128;

/// A new code: what is shown once, and the hash that is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub code: String,
    pub hash: String,
}

/// A code for `issuer` with the 32 random bytes `secret`.
pub fn new_code(issuer: &str, secret: &[u8; 32]) -> NewCode {
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewCode {
        code: format!(
            "{PREFIX}.{}.{secret}",
            URL_SAFE_NO_PAD.encode(issuer.as_bytes())
        ),
        hash: hash_secret(&secret),
    }
}

fn hash_secret(secret: &str) -> String {
    super::audit::to_hex(&Sha256::digest(secret.as_bytes()).into())
}

/// A code as read back: the dashboard it names and the hash to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCode {
    pub issuer: String,
    pub hash: String,
}

/// Read a code (spaces around it ignored). `None`: not a code.
pub fn parse_code(raw: &str) -> Option<ParsedCode> {
    let mut parts = raw.trim().split('.');
    let (prefix, issuer, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if prefix != PREFIX || parts.next().is_some() || secret.len() != 43 {
        return None;
    }
    let issuer = String::from_utf8(URL_SAFE_NO_PAD.decode(issuer).ok()?).ok()?;
    let secret_ok = URL_SAFE_NO_PAD
        .decode(secret)
        .is_ok_and(|bytes| bytes.len() == 32);
    secret_ok.then(|| ParsedCode {
        issuer,
        hash: hash_secret(secret),
    })
}

/// A code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub id: String,
    pub site_url: String,
    pub client: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// How it was made: `code` (console, command line) or `approval`.
    pub via: String,
}

/// Why a connection was refused: a stable code, its HTTP status, and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(String),
    Malformed,
    Unknown,
    Used,
    Expired,
    /// The code is for another URL than the one the site reports.
    WrongSite {
        code_for: String,
        site: String,
    },
    /// The site could not be reached, or did not answer in time.
    SiteUnreachable(String),
    /// The site answered, but not with its confirmation.
    SiteRefused(String),
    /// The site's URL cannot be a site's URL here (a stored code's URL
    /// that no longer validates, say).
    Invalid(String),
    RateLimited,
    Unavailable,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BadRequest(_) => "bad_request",
            Refusal::Malformed => "code_malformed",
            Refusal::Unknown => "code_unknown",
            Refusal::Used => "code_used",
            Refusal::Expired => "code_expired",
            Refusal::WrongSite { .. } => "wrong_site",
            Refusal::SiteUnreachable(_) => "site_unreachable",
            Refusal::SiteRefused(_) => "site_refused",
            Refusal::Invalid(_) => "invalid_site",
            Refusal::RateLimited => "rate_limited",
            Refusal::Unavailable => "unavailable",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) | Refusal::Malformed => 400,
            Refusal::Unknown => 404,
            Refusal::Used => 409,
            Refusal::Expired => 410,
            Refusal::WrongSite { .. } | Refusal::Invalid(_) => 422,
            Refusal::SiteUnreachable(_) | Refusal::SiteRefused(_) => 502,
            Refusal::RateLimited => 429,
            Refusal::Unavailable => 503,
        }
    }

    /// What the site admin reads.
    pub fn message(&self) -> String {
        match self {
            Refusal::BadRequest(why) => format!("The request is not a connection request: {why}."),
            Refusal::Malformed => "This is not a connection code of this dashboard: copy the whole code, which starts with asso1.".into(),
            Refusal::Unknown => "The dashboard knows no such connection code. Ask the agency for a new one.".into(),
            Refusal::Used => "This connection code was already used. Each code connects one site once: ask the agency for a new one.".into(),
            Refusal::Expired => "This connection code has expired. Ask the agency for a new one.".into(),
            Refusal::WrongSite { code_for, site } => format!(
                "This connection code is for {code_for}, not for {site}. Use it on that site, or ask the agency for a code for this one."
            ),
            Refusal::SiteUnreachable(why) => format!(
                "The dashboard could not reach this site at its address to confirm it ({why}). Check that the site is reachable from the internet at that address, then try again."
            ),
            Refusal::SiteRefused(why) => format!(
                "The site at this address did not confirm the connection ({why}). The code was not used: try again from the site's Agency SSO settings."
            ),
            Refusal::Invalid(why) => format!("This site cannot be connected: {why}."),
            Refusal::RateLimited => "Too many connection attempts: wait a minute, then try again.".into(),
            Refusal::Unavailable => "The dashboard cannot reach its database right now: nothing was done. Try again in a moment.".into(),
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": self.code(), "message": self.message() })
    }
}

/// Whether a stored code may still be redeemed now (its URL aside).
pub fn check_stored(code: &StoredCode, now: i64) -> Result<(), Refusal> {
    if code.used_at.is_some() {
        return Err(Refusal::Used);
    }
    if now >= code.expires_at {
        return Err(Refusal::Expired);
    }
    Ok(())
}

/// What a site sends to redeem a code.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Redeem {
    pub code: String,
    pub site_url: String,
    pub attempt: String,
    #[serde(default)]
    pub site_name: String,
    #[serde(default)]
    pub plugin_version: String,
    #[serde(default)]
    pub wp_version: String,
    #[serde(default)]
    pub php_version: String,
    #[serde(default)]
    pub multisite: bool,
}

impl Redeem {
    /// The request's own checks (the code's come after).
    pub fn check(&self) -> Result<(), Refusal> {
        let bad = |why: &str| Err(Refusal::BadRequest(why.into()));
        if self.attempt.is_empty()
            || self.attempt.len() > MAX_ATTEMPT_LEN
            || !self
                .attempt
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("the attempt is missing or not plain characters");
        }
        if self.site_url.trim().is_empty() {
            return bad("the site's URL is missing");
        }
        Ok(())
    }

    /// The site's facts as the audit record keeps them (bounded).
    pub fn facts(&self) -> serde_json::Value {
        json!({
            "plugin_version": shown(&self.plugin_version, 40),
            "wp_version": shown(&self.wp_version, 40),
            "php_version": shown(&self.php_version, 40),
            "multisite": self.multisite,
        })
    }

    /// The name for a new site: the site's own (bounded), else its host.
    pub fn name_or(&self, url: &str) -> String {
        let name = shown(self.site_name.trim(), 200);
        if name.trim().is_empty() {
            host_of(url)
        } else {
            name.trim_end_matches('…').to_string()
        }
    }
}

/// The host (and port) of a URL, for a name or a client when none is given.
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string())
}

/// What the dashboard asks a site, by a site message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteRequest<'a> {
    /// Prove that this URL serves the WordPress whose attempt this is.
    Connect { attempt: &'a str },
    /// Say how it stands (versions, keys, refusals).
    Status,
    /// Fetch the key set now, then say how it stands.
    RefreshKeys,
}

impl SiteRequest<'_> {
    pub fn action(&self) -> &'static str {
        match self {
            SiteRequest::Connect { .. } => "connect",
            SiteRequest::Status => "status",
            SiteRequest::RefreshKeys => "refresh-keys",
        }
    }
}

/// The claims of a site message's token.
pub fn site_claims(
    issuer: &str,
    audience: &str,
    request: &SiteRequest<'_>,
    now: i64,
    jti: &str,
) -> serde_json::Value {
    let mut claims = json!({
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + SITE_LIFETIME,
        "jti": jti,
        "action": request.action(),
    });
    if let SiteRequest::Connect { attempt } = request {
        claims["attempt"] = json!(attempt);
    }
    claims
}

/// A site's confirmation that it is the WordPress asking to connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jti: String,
    pub action: String,
    pub site_url: String,
    pub plugin_version: String,
    pub wp_version: String,
    pub php_version: String,
    pub multisite: bool,
}

/// Judge a site's answer to the `connect` message `jti` sent to `url`:
/// the plugin's confirmation of this very message, for this URL, or why
/// not (in words for the site admin).
pub fn judge_confirmation(
    jti: &str,
    url: &str,
    status: u16,
    body: &[u8],
    cut: bool,
) -> Result<Confirmation, Refusal> {
    if cut {
        return Err(Refusal::SiteRefused(format!(
            "HTTP {status}, an answer longer than {} KiB",
            MAX_ANSWER_BYTES / 1024
        )));
    }
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    if !(200..300).contains(&status) {
        let code = json
            .as_ref()
            .and_then(|j| j["error"].as_str())
            .map(|c| shown(c, 60));
        return Err(match (status, code) {
            (300..=399, _) => Refusal::SiteRefused(format!(
                "HTTP {status}, a redirect: the site's address in the dashboard must be the one WordPress reports"
            )),
            (_, Some(code)) => Refusal::SiteRefused(format!("HTTP {status}: {code}")),
            (404, None) => Refusal::SiteRefused(
                "HTTP 404: is the Agency SSO Connector plugin, version 0.3 or later, active on this site?".into(),
            ),
            (_, None) => Refusal::SiteRefused(format!("HTTP {status}")),
        });
    }
    let answer: Confirmation = serde_json::from_slice(body).map_err(|_| {
        Refusal::SiteRefused(format!(
            "HTTP {status}, but not the connector's confirmation (is the plugin, version 0.3 or later, active?)"
        ))
    })?;
    if answer.jti != jti || answer.action != "connect" {
        return Err(Refusal::SiteRefused(
            "an answer to another message than the dashboard's".into(),
        ));
    }
    if answer.site_url.trim_end_matches('/') != url {
        return Err(Refusal::SiteRefused(format!(
            "the site says its address is {}, not {url}",
            shown(&answer.site_url, 200)
        )));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_names_its_dashboard_and_is_stored_only_as_a_hash() {
        let made = new_code("https://sso.agency.test", &[7u8; 32]);
        assert!(made.code.starts_with("asso1."));
        assert!(!made.code.contains(&made.hash));
        let parsed = parse_code(&format!("  {}\n", made.code)).expect("parses");
        assert_eq!(parsed.issuer, "https://sso.agency.test");
        assert_eq!(parsed.hash, made.hash);
        // Another secret, another hash.
        assert_ne!(
            new_code("https://sso.agency.test", &[8u8; 32]).hash,
            made.hash
        );
    }

    #[test]
    fn anything_else_is_not_a_code() {
        let made = new_code("https://sso.agency.test", &[7u8; 32]).code;
        let cut = &made[..made.len() - 1];
        for bad in [
            "",
            "asso1",
            cut,
            &made.replacen("asso1", "asso2", 1),
            &format!("{made}.x"),
            &made.replace('.', ":"),
            "asso1.!!!.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
    }

    fn stored(used: Option<i64>, expires_at: i64) -> StoredCode {
        StoredCode {
            id: "c".into(),
            site_url: "https://a.test".into(),
            client: String::new(),
            created_by: "admin@agency.test".into(),
            created_at: 0,
            expires_at,
            used_at: used,
            via: "code".into(),
        }
    }

    #[test]
    fn a_code_is_used_once_and_not_after_it_expires() {
        assert_eq!(check_stored(&stored(None, 100), 99), Ok(()));
        assert_eq!(check_stored(&stored(None, 100), 100), Err(Refusal::Expired));
        assert_eq!(check_stored(&stored(Some(5), 100), 50), Err(Refusal::Used));
    }

    #[test]
    fn a_redemption_needs_a_plain_attempt_and_a_url() {
        let ok = Redeem {
            code: "x".into(),
            site_url: "https://a.test".into(),
            attempt: "abc_DEF-123".into(),
            ..Redeem::default()
        };
        assert_eq!(ok.check(), Ok(()));
        for attempt in ["", "a b", "a\u{0}", &"a".repeat(129)] {
            let r = Redeem {
                attempt: attempt.into(),
                ..ok.clone()
            };
            assert_eq!(r.check().unwrap_err().code(), "bad_request");
        }
        assert_eq!(
            Redeem {
                site_url: " ".into(),
                ..ok.clone()
            }
            .check()
            .unwrap_err()
            .code(),
            "bad_request"
        );
        assert_eq!(ok.name_or("https://a.test:8443/x"), "a.test:8443");
    }

    #[test]
    fn a_site_message_is_typed_and_carries_the_attempt_only_to_connect() {
        let c = site_claims(
            "https://sso.test",
            "https://a.test",
            &SiteRequest::Connect { attempt: "att" },
            1000,
            "j1",
        );
        assert_eq!(c["action"], "connect");
        assert_eq!(c["attempt"], "att");
        assert_eq!(c["exp"], 1000 + SITE_LIFETIME);
        assert!(c.get("sub").is_none() && c.get("events").is_none());
        let s = site_claims(
            "https://sso.test",
            "https://a.test",
            &SiteRequest::Status,
            1000,
            "j2",
        );
        assert_eq!(s["action"], "status");
        assert!(s.get("attempt").is_none());
    }

    fn confirmation(jti: &str, url: &str) -> Vec<u8> {
        json!({
            "jti": jti, "action": "connect", "site_url": url, "plugin_version": "0.3.0",
            "wp_version": "6.1.1", "php_version": "8.2.7", "multisite": false
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn only_the_confirmation_of_this_message_for_this_url_confirms() {
        let url = "https://a.test";
        assert!(judge_confirmation("j", url, 200, &confirmation("j", url), false).is_ok());
        let refused = |status, body: &[u8], cut| {
            judge_confirmation("j", url, status, body, cut)
                .unwrap_err()
                .message()
        };
        assert!(refused(200, &confirmation("other", url), false).contains("another message"));
        assert!(
            refused(200, &confirmation("j", "https://b.test"), false).contains("https://b.test")
        );
        assert!(refused(200, b"<html>hello</html>", false).contains("not the connector"));
        assert!(refused(200, b"", true).contains("longer than 16 KiB"));
        assert!(refused(302, b"", false).contains("redirect"));
        assert!(refused(409, br#"{"error":"no_pending_connection"}"#, false)
            .contains("no_pending_connection"));
        assert!(refused(404, b"not found", false).contains("0.3 or later"));
        // A site's words are quoted bounded and without control characters.
        let long = format!(r#"{{"error":"{}\u001b"}}"#, "x".repeat(500));
        let m = refused(401, long.as_bytes(), false);
        assert!(m.len() < 400 && !m.contains('\u{1b}'));
    }
}

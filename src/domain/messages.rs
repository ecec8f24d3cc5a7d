//! Messages to `connector` sites over the back-channel: what they say (a
//! logout token, OpenID Connect Back-Channel Logout 1.0, with the action
//! the dashboard asks for), how an answer is judged, and when a message
//! that did not get through is tried again.

use serde_json::json;

/// The event every logout token carries (Back-Channel Logout 1.0, 2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The JOSE `typ` of a logout token: never accepted as a launch token, and
/// a launch token (`JWT`) never accepted as one.
pub const TYP: &str = "logout+jwt";
/// How long a message's token is valid, seconds (each attempt signs anew).
pub const LIFETIME: i64 = 120;
/// How long a message is retried before it is given up, seconds.
pub const GIVE_UP_AFTER: i64 = 3 * 86_400;
/// The first retry's delay; each next one doubles, up to [`MAX_DELAY`].
pub const FIRST_DELAY: i64 = 15;
pub const MAX_DELAY: i64 = 3_600;
/// The plugin's REST route, from the site's URL (`rest_route` works with
/// and without pretty permalinks).
pub const ROUTE: &str = "/?rest_route=/agency-sso/v1/back-channel";

/// What the dashboard asks a site to do about one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteAction {
    /// End every WordPress session and application password of theirs.
    EndSessions,
    /// End them and make the account unusable, content kept.
    Lock,
    /// The role they now hold there; `""`: none, so the account is locked.
    SetRole(String),
}

impl SiteAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            SiteAction::EndSessions => "end-sessions",
            SiteAction::Lock => "lock",
            SiteAction::SetRole(_) => "set-role",
        }
    }

    /// The role a set-role carries (`""` otherwise).
    pub fn role(&self) -> &str {
        match self {
            SiteAction::SetRole(r) => r,
            _ => "",
        }
    }

    /// From the stored action and role.
    pub fn parse(action: &str, role: &str) -> Option<SiteAction> {
        match action {
            "end-sessions" => Some(SiteAction::EndSessions),
            "lock" => Some(SiteAction::Lock),
            "set-role" => Some(SiteAction::SetRole(role.to_string())),
            _ => None,
        }
    }
}

/// The claims of a message's token. `sub` and `email` are the person's
/// e-mail address, as in a launch token (CONTRACT.md).
pub fn logout_claims(
    issuer: &str,
    audience: &str,
    email: &str,
    action: &SiteAction,
    now: i64,
    jti: &str,
) -> serde_json::Value {
    let mut claims = json!({
        "iss": issuer,
        "aud": audience,
        "sub": email,
        "email": email,
        "iat": now,
        "exp": now + LIFETIME,
        "jti": jti,
        "events": { EVENT: {} },
        "action": action.as_str(),
    });
    if let SiteAction::SetRole(role) = action {
        claims["wp_role"] = json!(role);
    }
    claims
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The site did it; its answer.
    Done(serde_json::Value),
    /// Not this time (the site is down, slow, or not ready): try again.
    Retry(String),
    /// The site refused the message itself; sending it again would not help.
    Refused(String),
}

/// Judge a site's answer: 2xx with the plugin's JSON is done; a refusal of
/// the message as such (400, 422) is final; anything else (the site down,
/// a 5xx, a 404 while the plugin is being installed, a key the site does
/// not know yet) is tried again.
pub fn judge(status: u16, body: &str) -> Delivery {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let code = json
        .as_ref()
        .and_then(|j| j["error"].as_str())
        .unwrap_or("")
        .to_string();
    match status {
        200..=299 => match json {
            Some(j) if j.get("action").is_some() => Delivery::Done(j),
            _ => Delivery::Retry(format!(
                "HTTP {status}, but not the connector's answer (is the plugin active?)"
            )),
        },
        400 | 422 => Delivery::Refused(if code.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("refused by the site: {code}")
        }),
        _ if !code.is_empty() => Delivery::Retry(format!("HTTP {status}: {code}")),
        _ => Delivery::Retry(format!("HTTP {status}")),
    }
}

/// When to try a message again after `attempts` attempts, or `None` when
/// it has been tried long enough.
pub fn next_attempt(attempts: i64, created_at: i64, now: i64) -> Option<i64> {
    if now - created_at >= GIVE_UP_AFTER {
        return None;
    }
    let doublings = attempts.clamp(1, 20) - 1;
    let delay = (FIRST_DELAY << doublings).min(MAX_DELAY);
    Some(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_token_names_the_event_and_the_action_never_a_nonce() {
        let c = logout_claims(
            "https://sso.test",
            "https://site.test",
            "sam@agency.test",
            &SiteAction::SetRole("author".into()),
            1000,
            "j",
        );
        assert_eq!(c["events"], json!({ EVENT: {} }));
        assert_eq!(c["action"], "set-role");
        assert_eq!(c["wp_role"], "author");
        assert_eq!(c["exp"], 1000 + LIFETIME);
        assert_eq!(c["sub"], "sam@agency.test");
        assert!(c.get("nonce").is_none());
        let lock = logout_claims("i", "a", "e", &SiteAction::Lock, 1, "j");
        assert!(lock.get("wp_role").is_none());
    }

    #[test]
    fn answers_are_done_refused_or_tried_again() {
        let done = r#"{"action":"lock","user_found":true,"sessions_ended":2}"#;
        assert!(matches!(judge(200, done), Delivery::Done(j) if j["sessions_ended"] == 2));
        assert!(matches!(judge(200, "<html>"), Delivery::Retry(_)));
        assert_eq!(
            judge(422, r#"{"error":"role_not_allowed"}"#),
            Delivery::Refused("refused by the site: role_not_allowed".into())
        );
        assert!(
            matches!(judge(503, r#"{"error":"not_configured"}"#), Delivery::Retry(m) if m.contains("not_configured"))
        );
        assert!(matches!(
            judge(401, r#"{"error":"unknown_key"}"#),
            Delivery::Retry(_)
        ));
        assert!(matches!(judge(404, ""), Delivery::Retry(_)));
    }

    #[test]
    fn retries_back_off_then_stop_after_days() {
        assert_eq!(next_attempt(1, 0, 100), Some(100 + FIRST_DELAY));
        assert_eq!(next_attempt(2, 0, 100), Some(100 + 2 * FIRST_DELAY));
        assert_eq!(next_attempt(30, 0, 100), Some(100 + MAX_DELAY));
        assert_eq!(next_attempt(5, 0, GIVE_UP_AFTER), None);
    }

    #[test]
    fn actions_round_trip_through_storage() {
        for a in [
            SiteAction::EndSessions,
            SiteAction::Lock,
            SiteAction::SetRole("editor".into()),
            SiteAction::SetRole(String::new()),
        ] {
            assert_eq!(SiteAction::parse(a.as_str(), a.role()), Some(a.clone()));
        }
        assert_eq!(SiteAction::parse("delete", ""), None);
    }
}

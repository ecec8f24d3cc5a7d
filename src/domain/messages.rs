//! Messages to `connector` sites over the back-channel: what they say (a
//! logout token, OpenID Connect Back-Channel Logout 1.0, with the action
//! the dashboard asks for), how an answer is judged, and when a message
//! that did not get through is tried again.

use serde::{Deserialize, Serialize};
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

/// Whom a message is about and where it goes.
#[derive(Debug, Clone, Copy)]
pub struct Addressed<'a> {
    /// The dashboard's public URL.
    pub issuer: &'a str,
    /// The site's URL when the message is sent.
    pub audience: &'a str,
    /// The person's stable, opaque id: the `sub` of their connector launch
    /// tokens (never the e-mail address).
    pub subject: &'a str,
    /// Their e-mail address now.
    pub email: &'a str,
    /// The message's place among the messages about this person and site:
    /// a newer one always has a greater `seq` (a retry keeps its own).
    pub seq: i64,
}

/// The claims of a message's token: `sub` is the person's stable subject,
/// as in a connector launch token, and `email` their address (CONTRACT.md);
/// `seq` orders messages about one person and site, so that the site
/// answers an older lock or set-role than the last it applied as superseded.
pub fn logout_claims(
    to: &Addressed<'_>,
    action: &SiteAction,
    now: i64,
    jti: &str,
) -> serde_json::Value {
    let mut claims = json!({
        "iss": to.issuer,
        "aud": to.audience,
        "sub": to.subject,
        "email": to.email.to_ascii_lowercase(),
        "iat": now,
        "exp": now + LIFETIME,
        "jti": jti,
        "events": { EVENT: {} },
        "action": action.as_str(),
        "seq": to.seq,
    });
    if let SiteAction::SetRole(role) = action {
        claims["wp_role"] = json!(role);
    }
    claims
}

/// The most of a site's answer the dashboard reads; a longer one is not a
/// delivery (a compromised site must not make 32 attempts hold megabytes).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// The longest role name an answer may report.
const MAX_ROLE_LEN: usize = 200;

/// A site's answer to a message: the plugin's fixed shape, every field
/// present and of its type. Only these fields are ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteAnswer {
    /// The `jti` of the message it answers.
    pub jti: String,
    pub action: String,
    /// The site had applied a newer message about the person (a greater
    /// `seq`): it did nothing, and the fields say how things stand.
    pub superseded: bool,
    pub user_found: bool,
    pub sessions_ended: u32,
    pub application_passwords_revoked: u32,
    /// `null` when no user was found; `""` for no role on the site.
    #[serde(deserialize_with = "present")]
    pub role_before: Option<String>,
    #[serde(deserialize_with = "present")]
    pub role_after: Option<String>,
    pub locked: bool,
}

/// A nullable field that must still be there (serde lets a missing
/// `Option` pass as `None` otherwise).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The site did it (or had already applied a newer message); its answer.
    Done(SiteAnswer),
    /// Not this time (the site is down, slow, or not ready): try again.
    Retry(String),
    /// The site answered, but not with an answer to this message that says
    /// it was carried out: not a delivery; tried again, and shown as
    /// needing attention.
    Unexpected(String),
    /// The site refused the message itself; sending it again would not help.
    Refused(String),
}

/// What the dashboard sent, to hold an answer against.
#[derive(Debug, Clone, Copy)]
pub struct Sent<'a> {
    pub jti: &'a str,
    pub action: &'a SiteAction,
}

/// Judge a site's answer to the message `sent`: 2xx with the plugin's
/// answer to this very message, saying it was done, is done; a refusal of
/// the message as such (400, 422) is final; any other 2xx is unexpected;
/// anything else (the site down, a 5xx, a 404 while the plugin is being
/// installed, a key the site does not know yet) is tried again. `body` is
/// at most [`MAX_ANSWER_BYTES`]; `cut` says there was more.
pub fn judge(sent: &Sent<'_>, status: u16, body: &[u8], cut: bool) -> Delivery {
    let code = if cut {
        String::new()
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|j| j["error"].as_str().map(|c| shown(c, 60)))
            .unwrap_or_default()
    };
    match status {
        200..=299 if cut => Delivery::Unexpected(format!(
            "HTTP {status}, an answer longer than {} KiB (not read)",
            MAX_ANSWER_BYTES / 1024
        )),
        200..=299 => match serde_json::from_slice::<SiteAnswer>(body) {
            Ok(answer) => match check_answer(sent, &answer) {
                Ok(()) => Delivery::Done(answer),
                Err(why) => Delivery::Unexpected(why),
            },
            Err(e) => Delivery::Unexpected(not_the_shape(status, body, &e)),
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

/// Why a 2xx body is not the plugin's answer, in words.
fn not_the_shape(status: u16, body: &[u8], e: &serde_json::Error) -> String {
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    match json {
        Some(j) if j.get("action").is_some() && j.get("jti").is_none() => format!(
            "HTTP {status}, an answer without the message's jti: the site's connector \
             plugin is older than this dashboard (update it)"
        ),
        Some(j) if j.is_object() => format!(
            "HTTP {status}, an answer not in the connector's shape ({})",
            shown(&e.to_string(), 120)
        ),
        _ => format!("HTTP {status}, but not the connector's answer (is the plugin active?)"),
    }
}

/// An answer that answers `sent` and says it was done, or why not.
fn check_answer(sent: &Sent<'_>, a: &SiteAnswer) -> Result<(), String> {
    if a.jti != sent.jti {
        return Err("an answer to another message (its jti is not this message's)".into());
    }
    let action = sent.action.as_str();
    if a.action != action {
        return Err(format!(
            "an answer for the action {:?}, not {action}",
            shown(&a.action, 40)
        ));
    }
    let long = |r: &Option<String>| r.as_ref().is_some_and(|r| r.len() > MAX_ROLE_LEN);
    if long(&a.role_before) || long(&a.role_after) {
        return Err("an answer with a role name too long to be one".into());
    }
    if !a.user_found {
        if a.superseded || a.role_before.is_some() || a.role_after.is_some() || a.locked {
            return Err("an answer that found no user but reports one's roles or state".into());
        }
        return Ok(());
    }
    if a.role_before.is_none() || a.role_after.is_none() {
        return Err("an answer that found the user but reports no role (null)".into());
    }
    if a.superseded {
        // Nothing was done; the fields describe how things stand.
        return match sent.action {
            SiteAction::EndSessions => Err(
                "an answer that calls an end-sessions superseded (it is always carried out)".into(),
            ),
            _ => Ok(()),
        };
    }
    match sent.action {
        SiteAction::Lock if !a.locked => Err("the site says the account is not locked".into()),
        SiteAction::SetRole(role) if a.role_after.as_deref() != Some(role.as_str()) => {
            Err(format!(
                "the site says the role is now {:?}, not {role:?}",
                shown(a.role_after.as_deref().unwrap_or(""), 40)
            ))
        }
        SiteAction::SetRole(role) if role.is_empty() && !a.locked => {
            Err("the site took the role away but says the account is not locked".into())
        }
        _ => Ok(()),
    }
}

/// A site's text as words of the dashboard's may quote it: at most `max`
/// characters, control characters dropped.
pub fn shown(text: &str, max: usize) -> String {
    let mut s: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().count() > max {
        s.push('…');
    }
    s
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

    fn to(seq: i64) -> Addressed<'static> {
        Addressed {
            issuer: "https://sso.test",
            audience: "https://site.test",
            subject: "6f1c2a9e-0b7d-4c55-9a51-3f3e2d1c0b4a",
            email: "Sam@Agency.Test",
            seq,
        }
    }

    #[test]
    fn a_logout_token_names_the_stable_subject_the_order_and_the_action_never_a_nonce() {
        let c = logout_claims(&to(7), &SiteAction::SetRole("author".into()), 1000, "j");
        assert_eq!(c["events"], json!({ EVENT: {} }));
        assert_eq!(c["action"], "set-role");
        assert_eq!(c["wp_role"], "author");
        assert_eq!(c["exp"], 1000 + LIFETIME);
        assert_eq!(c["sub"], "6f1c2a9e-0b7d-4c55-9a51-3f3e2d1c0b4a");
        assert_eq!(c["email"], "sam@agency.test");
        assert_eq!(c["seq"], 7);
        assert!(c.get("nonce").is_none());
        let lock = logout_claims(&to(8), &SiteAction::Lock, 1, "j");
        assert!(lock.get("wp_role").is_none());
    }

    fn answer(jti: &str, action: &str) -> serde_json::Value {
        json!({
            "jti": jti, "action": action, "superseded": false, "user_found": true,
            "sessions_ended": 2, "application_passwords_revoked": 1,
            "role_before": "editor", "role_after": "editor", "locked": true,
        })
    }

    fn judged(action: &SiteAction, status: u16, body: &serde_json::Value) -> Delivery {
        let sent = Sent { jti: "j1", action };
        judge(&sent, status, body.to_string().as_bytes(), false)
    }

    #[test]
    fn answers_are_done_refused_or_tried_again() {
        let lock = SiteAction::Lock;
        let done = judged(&lock, 200, &answer("j1", "lock"));
        assert!(matches!(&done, Delivery::Done(a) if a.sessions_ended == 2 && a.locked));
        let sent = Sent {
            jti: "j1",
            action: &lock,
        };
        assert!(
            matches!(judge(&sent, 200, b"<html>", false), Delivery::Unexpected(m) if m.contains("is the plugin active"))
        );
        assert_eq!(
            judge(&sent, 422, br#"{"error":"role_not_allowed"}"#, false),
            Delivery::Refused("refused by the site: role_not_allowed".into())
        );
        assert!(
            matches!(judge(&sent, 503, br#"{"error":"not_configured"}"#, false), Delivery::Retry(m) if m.contains("not_configured"))
        );
        assert!(matches!(
            judge(&sent, 401, br#"{"error":"unknown_key"}"#, false),
            Delivery::Retry(_)
        ));
        assert!(matches!(judge(&sent, 404, b"", false), Delivery::Retry(_)));
    }

    /// What a compromised or outdated site may answer, each not a delivery.
    #[test]
    fn only_an_answer_to_this_message_saying_it_was_done_is_a_delivery() {
        let lock = SiteAction::Lock;
        let author = SiteAction::SetRole("author".into());
        let revoke = SiteAction::SetRole(String::new());
        let ends = SiteAction::EndSessions;
        let with = |mut a: serde_json::Value, k: &str, v: serde_json::Value| {
            a[k] = v;
            a
        };
        let unexpected = |action: &SiteAction, body: serde_json::Value| {
            let d = judged(action, 200, &body);
            assert!(matches!(d, Delivery::Unexpected(_)), "{body}: {d:?}");
        };
        // Any 2xx with an action, as the worker once took.
        unexpected(&lock, json!({ "action": "x" }));
        unexpected(&lock, json!({ "action": "lock" }));
        // Another message's answer, another action.
        unexpected(&lock, answer("j2", "lock"));
        unexpected(&lock, answer("j1", "end-sessions"));
        // A lock the site says it did not make.
        unexpected(&lock, with(answer("j1", "lock"), "locked", json!(false)));
        // A role other than the one sent; a revoke that left the account open.
        unexpected(
            &author,
            with(answer("j1", "set-role"), "role_after", json!("editor")),
        );
        let revoked = with(answer("j1", "set-role"), "role_after", json!(""));
        unexpected(&revoke, with(revoked.clone(), "locked", json!(false)));
        assert!(matches!(judged(&revoke, 200, &revoked), Delivery::Done(_)));
        let raised = with(
            with(answer("j1", "set-role"), "role_after", json!("author")),
            "locked",
            json!(false),
        );
        assert!(matches!(judged(&author, 200, &raised), Delivery::Done(_)));
        // Fields missing, null where a value is due, or of another type.
        let mut missing = answer("j1", "lock");
        missing.as_object_mut().unwrap().remove("role_before");
        unexpected(&lock, missing);
        unexpected(
            &lock,
            with(answer("j1", "lock"), "sessions_ended", json!(-1)),
        );
        unexpected(
            &lock,
            with(answer("j1", "lock"), "sessions_ended", json!("2")),
        );
        unexpected(&lock, with(answer("j1", "lock"), "locked", json!(1)));
        unexpected(
            &lock,
            with(answer("j1", "lock"), "role_before", json!(null)),
        );
        unexpected(
            &lock,
            with(answer("j1", "lock"), "role_after", json!("x".repeat(500))),
        );
        // No user there: nothing else may be claimed.
        let nobody = json!({
            "jti": "j1", "action": "lock", "superseded": false, "user_found": false,
            "sessions_ended": 0, "application_passwords_revoked": 0,
            "role_before": null, "role_after": null, "locked": false,
        });
        assert!(matches!(judged(&lock, 200, &nobody), Delivery::Done(a) if !a.user_found));
        unexpected(&lock, with(nobody.clone(), "role_after", json!("editor")));
        // Superseded: delivered, whatever the state; never for end-sessions.
        let newer = with(
            with(answer("j1", "set-role"), "superseded", json!(true)),
            "role_after",
            json!("subscriber"),
        );
        assert!(matches!(judged(&author, 200, &newer), Delivery::Done(a) if a.superseded));
        unexpected(
            &ends,
            with(
                with(answer("j1", "end-sessions"), "superseded", json!(true)),
                "locked",
                json!(false),
            ),
        );
        // An answer from a plugin older than the jti echo says so.
        let old = json!({ "action": "lock", "user_found": true, "sessions_ended": 1,
            "application_passwords_revoked": 0, "role_before": "editor", "role_after": "editor", "locked": true });
        assert!(
            matches!(judged(&lock, 200, &old), Delivery::Unexpected(m) if m.contains("older than this dashboard"))
        );
        // A body cut at the limit is not read, whatever it holds.
        let sent = Sent {
            jti: "j1",
            action: &lock,
        };
        let body = answer("j1", "lock").to_string();
        assert!(
            matches!(judge(&sent, 200, body.as_bytes(), true), Delivery::Unexpected(m) if m.contains("16 KiB"))
        );
    }

    #[test]
    fn a_stored_answer_keeps_only_the_fields() {
        let mut extra = answer("j1", "lock");
        extra["note"] = json!("x".repeat(1000));
        let Delivery::Done(a) = judged(&SiteAction::Lock, 200, &extra) else {
            panic!("not done");
        };
        let stored = serde_json::to_value(&a).unwrap();
        assert!(stored.get("note").is_none());
        assert_eq!(stored, answer("j1", "lock"));
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

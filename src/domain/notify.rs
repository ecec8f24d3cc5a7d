//! Notifications of just-in-time access requests and decisions to the
//! agency's chat (a signed webhook): what they say, the body in the shape
//! Slack's and Teams' incoming webhooks accept, the signature a receiver
//! checks, and how long to wait before trying again.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The header carrying the signature: `t=<unix seconds>,v1=<hex>` where
/// the hex is HMAC-SHA256 under the shared secret of `"<t>.<body>"`.
pub const SIGNATURE_HEADER: &str = "x-agency-sso-signature";
/// The notification's id, the same on every attempt: a receiver that saw
/// it already drops the repeat (delivery is at least once).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Attempts stop after this long; the notification is then failed.
pub const GIVE_UP_SECS: i64 = 3 * 86_400;

/// What a notification is about, in the words a chat shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About<'a> {
    pub event: &'a str,
    pub email: &'a str,
    pub site_name: &'a str,
    pub site_url: &'a str,
    pub role: &'a str,
    pub minutes_text: &'a str,
    pub reason: &'a str,
    /// Who decided, and their comment (decisions only).
    pub decided_by: &'a str,
    pub comment: &'a str,
    /// The console page where approvers decide.
    pub console_url: &'a str,
}

/// One line a chat shows.
pub fn text(a: &About<'_>) -> String {
    let comment = if a.comment.is_empty() {
        String::new()
    } else {
        format!(" ({:?})", a.comment)
    };
    match a.event {
        "elevation_requested" => format!(
            "{} asks for {} on {} ({}) for {}: {:?}. Decide at {}",
            a.email, a.role, a.site_name, a.site_url, a.minutes_text, a.reason, a.console_url
        ),
        "elevation_approved" => format!(
            "{} approved {} as {} on {} for {}{comment}.",
            a.decided_by, a.email, a.role, a.site_name, a.minutes_text
        ),
        "elevation_self_approved" => format!(
            "BREAK-GLASS: {} approved their own request for {} on {} ({}) for {}: {:?}.",
            a.email, a.role, a.site_name, a.site_url, a.minutes_text, a.reason
        ),
        "elevation_denied" => format!(
            "{} denied {} as {} on {}{comment}.",
            a.decided_by, a.email, a.role, a.site_name
        ),
        other => format!("{other}: {} as {} on {}.", a.email, a.role, a.site_name),
    }
}

/// The body sent: the template (a JSON document whose strings may hold
/// `{text}`, replaced by the text; `None`: `{"text": ...}`), with the
/// event's facts added under `agency_sso` when the body is an object.
pub fn body(template: Option<&Value>, text: &str, id: &str, at: i64, facts: Value) -> String {
    let mut out = match template {
        Some(t) => fill(t, text),
        None => json!({ "text": text }),
    };
    if let Value::Object(map) = &mut out {
        map.insert(
            "agency_sso".into(),
            json!({ "id": id, "at": at, "facts": facts }),
        );
    }
    out.to_string()
}

fn fill(v: &Value, text: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{text}", text)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, text)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), fill(x, text))).collect())
        }
        other => other.clone(),
    }
}

/// The signature header's value for `body` sent at `t`.
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={t},v1={}",
        super::audit::to_hex(&mac.finalize().into_bytes().into())
    )
}

/// Whether a signature header is right for `body` (what a receiver does):
/// the MAC matches and `t` is within `tolerance` seconds of `now`.
pub fn verify(secret: &[u8], header: &str, body: &str, now: i64, tolerance: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).abs() > tolerance {
        return false;
    }
    let want = signature(secret, t, body);
    subtle::ConstantTimeEq::ct_eq(want.as_bytes(), format!("t={t},v1={v1}").as_bytes()).into()
}

/// Seconds before the next attempt after `attempts` failed ones: 10 s,
/// doubling, at most an hour.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (10_i64 << exp).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(event: &'static str) -> About<'static> {
        About {
            event,
            email: "sam@agency.test",
            site_name: "Acme Shop",
            site_url: "https://shop.acme.example",
            role: "administrator",
            minutes_text: "1 hour",
            reason: "INC-4711 \"checkout\"",
            decided_by: "ada@agency.test",
            comment: "",
            console_url: "https://sso.agency.example/admin/access",
        }
    }

    #[test]
    fn each_event_reads_as_a_line_and_break_glass_says_so() {
        assert_eq!(
            text(&about("elevation_requested")),
            "sam@agency.test asks for administrator on Acme Shop (https://shop.acme.example) for 1 hour: \"INC-4711 \\\"checkout\\\"\". Decide at https://sso.agency.example/admin/access"
        );
        assert!(text(&about("elevation_self_approved")).starts_with("BREAK-GLASS: sam@agency.test"));
        let mut denied = about("elevation_denied");
        denied.comment = "not now";
        assert_eq!(
            text(&denied),
            "ada@agency.test denied sam@agency.test as administrator on Acme Shop (\"not now\")."
        );
    }

    #[test]
    fn the_body_is_slack_shaped_or_the_template_with_the_text_in_place() {
        let plain: Value =
            serde_json::from_str(&body(None, "hi \"there\"", "n1", 5, json!({"a": 1}))).unwrap();
        assert_eq!(plain["text"], "hi \"there\"");
        assert_eq!(plain["agency_sso"]["id"], "n1");
        assert_eq!(plain["agency_sso"]["facts"]["a"], 1);
        let teams = json!({"type": "message", "attachments": [{"content": {"body": [{"type": "TextBlock", "text": "{text}"}]}}]});
        let filled: Value =
            serde_json::from_str(&body(Some(&teams), "hello", "n2", 5, json!({}))).unwrap();
        assert_eq!(
            filled["attachments"][0]["content"]["body"][0]["text"],
            "hello"
        );
        assert_eq!(filled["type"], "message");
    }

    #[test]
    fn a_receiver_checks_the_signature_and_its_age() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let h = signature(secret, 1000, "{\"text\":\"x\"}");
        assert!(h.starts_with("t=1000,v1="));
        assert!(verify(secret, &h, "{\"text\":\"x\"}", 1010, 300));
        assert!(
            !verify(secret, &h, "{\"text\":\"y\"}", 1010, 300),
            "another body"
        );
        assert!(!verify(
            b"another secret of the same length",
            &h,
            "{\"text\":\"x\"}",
            1010,
            300
        ));
        assert!(
            !verify(secret, &h, "{\"text\":\"x\"}", 2000, 300),
            "too old"
        );
        assert!(!verify(secret, "v1=abc", "{}", 0, 300));
        assert_eq!(
            (backoff(1), backoff(2), backoff(3), backoff(30)),
            (10, 20, 40, 3600)
        );
    }
}

//! Session lifetimes and the state of a sign-in attempt in flight.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// How long an attempt may take between leaving for the provider and coming back.
pub const SIGN_IN_ATTEMPT_TTL_SECS: i64 = 10 * 60;

/// Idle and absolute session limits, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

/// What the session holds once someone is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    pub person_id: String,
    pub signed_in_at: i64,
    /// When the person last proved a fresh authentication: on a sign-in the
    /// dashboard asked to be fresh, with an ID token whose `auth_time` says
    /// the provider authenticated them just then (see [`proven_fresh`]).
    #[serde(default)]
    pub reauthenticated_at: Option<i64>,
}

impl SignedIn {
    /// Authenticated afresh within the last `max_age` seconds: sensitive
    /// actions ask for this, and send the person through the provider again
    /// otherwise. A sign-in the provider completed from its own session
    /// (nothing typed, nothing proved) does not count.
    pub fn is_recent(&self, now: i64, max_age: i64) -> bool {
        self.reauthenticated_at
            .is_some_and(|at| now >= at && now - at <= max_age)
    }
}

/// How old an ID token's `auth_time` may be for a fresh sign-in to count.
pub const FRESH_AUTH_SECS: i64 = 5 * 60;

/// Did the provider prove a fresh authentication? Only when the dashboard
/// asked for one (`prompt=login`, `max_age=0`) and the ID token says the
/// person authenticated within [`FRESH_AUTH_SECS`] (allowing the provider's
/// clock to run up to `skew` seconds ahead). Returns when it counts from.
pub fn proven_fresh(asked: bool, auth_time: Option<i64>, now: i64, skew: i64) -> Option<i64> {
    let at = auth_time.filter(|_| asked)?;
    (at >= now - FRESH_AUTH_SECS && at <= now + skew).then_some(now)
}

impl SessionPolicy {
    /// The absolute limit holds however active the session was; the idle
    /// limit is the session layer's expiry, pushed back on every response.
    pub fn still_valid(&self, s: &SignedIn, now: i64) -> bool {
        now >= s.signed_in_at && now - s.signed_in_at < self.absolute_secs
    }
}

/// The secrets of one sign-in attempt, kept server-side in the session and
/// compared when the provider sends the browser back.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub started_at: i64,
    pub return_to: String,
    /// A fresh sign-in asked for by a sensitive action.
    #[serde(default)]
    pub reauth: bool,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("state", &"<redacted>")
            .field("nonce", &"<redacted>")
            .field("pkce_verifier", &"<redacted>")
            .field("started_at", &self.started_at)
            .field("return_to", &self.return_to)
            .field("reauth", &self.reauth)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("This sign-in attempt was not started from this browser, or was already used.")]
    NoAttempt,
    #[error("The sign-in response does not belong to this attempt.")]
    StateMismatch,
    #[error("This sign-in attempt took too long and has expired.")]
    Expired,
}

impl AttemptError {
    pub fn code(self) -> &'static str {
        match self {
            AttemptError::NoAttempt => "no_attempt",
            AttemptError::StateMismatch => "state_mismatch",
            AttemptError::Expired => "attempt_expired",
        }
    }
}

impl PendingSignIn {
    /// Check the `state` the provider returned, in constant time, and the
    /// attempt's age.
    pub fn check(&self, returned_state: &str, now: i64) -> Result<(), AttemptError> {
        let same: bool = self
            .state
            .as_bytes()
            .ct_eq(returned_state.as_bytes())
            .into();
        if !same {
            return Err(AttemptError::StateMismatch);
        }
        if now < self.started_at || now - self.started_at > SIGN_IN_ATTEMPT_TTL_SECS {
            return Err(AttemptError::Expired);
        }
        Ok(())
    }
}

/// A path on this dashboard to return to after sign-in. Anything that could
/// leave the dashboard (absolute URLs, `//host`, backslashes, control
/// characters) falls back to the home page: no open redirects.
pub fn safe_return_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.bytes().all(|b| b.is_ascii_graphic())
                && p.len() <= 2048 =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(at: i64) -> PendingSignIn {
        PendingSignIn {
            state: "abc".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            started_at: at,
            return_to: "/".into(),
            reauth: false,
        }
    }

    #[test]
    fn state_must_match_exactly() {
        assert_eq!(pending(0).check("abc", 5), Ok(()));
        assert_eq!(pending(0).check("abd", 5), Err(AttemptError::StateMismatch));
        assert_eq!(pending(0).check("", 5), Err(AttemptError::StateMismatch));
        assert_eq!(
            pending(0).check("abcd", 5),
            Err(AttemptError::StateMismatch)
        );
    }

    #[test]
    fn attempt_expires() {
        assert_eq!(pending(0).check("abc", SIGN_IN_ATTEMPT_TTL_SECS), Ok(()));
        assert_eq!(
            pending(0).check("abc", SIGN_IN_ATTEMPT_TTL_SECS + 1),
            Err(AttemptError::Expired)
        );
        assert_eq!(pending(100).check("abc", 99), Err(AttemptError::Expired));
    }

    #[test]
    fn only_a_fresh_authentication_the_dashboard_asked_for_counts() {
        let now = 10_000;
        assert_eq!(proven_fresh(true, Some(now - 10), now, 300), Some(now));
        assert_eq!(proven_fresh(true, Some(now + 200), now, 300), Some(now));
        // Not asked for, no auth_time, an old one, or one from the future.
        assert_eq!(proven_fresh(false, Some(now), now, 300), None);
        assert_eq!(proven_fresh(true, None, now, 300), None);
        assert_eq!(
            proven_fresh(true, Some(now - FRESH_AUTH_SECS - 1), now, 300),
            None
        );
        assert_eq!(proven_fresh(true, Some(now + 301), now, 300), None);
        // A plain sign-in, however recent, is not a fresh authentication.
        let plain = SignedIn {
            person_id: "p".into(),
            signed_in_at: now,
            reauthenticated_at: None,
        };
        assert!(!plain.is_recent(now, 900));
    }

    #[test]
    fn recent_sign_in() {
        let s = SignedIn {
            person_id: "p".into(),
            signed_in_at: 1000,
            reauthenticated_at: Some(1000),
        };
        assert!(s.is_recent(1000 + 900, 900));
        assert!(!s.is_recent(1000 + 901, 900));
        assert!(!s.is_recent(999, 900));
    }

    #[test]
    fn absolute_limit() {
        let p = SessionPolicy {
            idle_secs: 60,
            absolute_secs: 3600,
        };
        let s = SignedIn {
            person_id: "p".into(),
            signed_in_at: 1000,
            reauthenticated_at: Some(1000),
        };
        assert!(p.still_valid(&s, 1000));
        assert!(p.still_valid(&s, 4599));
        assert!(!p.still_valid(&s, 4600));
        assert!(!p.still_valid(&s, 999));
    }

    #[test]
    fn return_paths_never_leave_the_dashboard() {
        assert_eq!(safe_return_path(Some("/admin?x=1")), "/admin?x=1");
        for bad in [
            "https://evil.test/",
            "//evil.test",
            "/\\evil.test",
            "javascript:alert(1)",
            "evil",
            "/a b",
            "/\nx",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path(None), "/");
    }

    #[test]
    fn pending_debug_redacts_secrets() {
        let s = format!("{:?}", pending(0));
        assert!(!s.contains("abc") && s.contains("<redacted>"));
    }
}

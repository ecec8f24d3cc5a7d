//! Just-in-time access: a grant may make its holder *eligible* for a higher
//! role on its site for a limited time. They ask (an elevation request,
//! with a reason and a duration), an approver says yes or no, and an
//! approved elevation ends by itself at its due time, or earlier when the
//! holder ends it or loses the eligibility it rests on.
//!
//! The rules here are pure: what may be asked, who may decide, and when an
//! elevation ends. The services keep them in one transaction with the
//! records they write.

use super::sites::FieldError;

/// The longest an eligible grant may allow at a time, in minutes (a day).
pub const MAX_ELEVATION_MINUTES: i64 = 24 * 60;
/// The shortest elevation, in minutes.
pub const MIN_ELEVATION_MINUTES: i64 = 5;
/// The shortest reason a request must give, in characters.
pub const MIN_REASON_CHARS: usize = 10;
/// The longest break-glass self-approval a site may allow, in minutes.
pub const MAX_SELF_APPROVAL_MINUTES: i64 = 4 * 60;

/// What an eligible grant allows: a role above the grant's own, for up to
/// `max_minutes` at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    pub role: String,
    pub max_minutes: i64,
}

/// Where an elevation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Active,
    Denied,
    Cancelled,
    Ended,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Denied => "denied",
            State::Cancelled => "cancelled",
            State::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "active" => State::Active,
            "denied" => State::Denied,
            "cancelled" => State::Cancelled,
            "ended" => State::Ended,
            _ => return None,
        })
    }
}

/// Why an active elevation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its time was up.
    Expired,
    /// Its holder (or an admin) ended it early.
    EndedEarly,
    /// The eligible grant it rests on was revoked, changed or expired, or
    /// the person was disabled.
    EligibilityLost,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::EndedEarly => "ended_early",
            EndReason::EligibilityLost => "eligibility_lost",
        }
    }
}

/// Why a request or a decision is refused; each has a stable code and a
/// plain sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No grant on the site makes the person eligible for anything.
    NotEligible,
    /// The site has no such role.
    RoleNotOnSite(String),
    /// The role is not one the eligible grant allows.
    RoleNotEligible {
        asked: String,
        eligible: String,
    },
    TooLong {
        max_minutes: i64,
    },
    TooShort,
    ReasonTooShort,
    ReasonInvalid(&'static str),
    /// A request or elevation on this site is already open.
    AlreadyOpen,
    /// Nobody approves their own request (outside break-glass).
    OwnRequest,
    NotAnApprover,
    /// Someone decided first, or it was cancelled or ended.
    NotPending(State),
    NotActive(State),
    /// Break-glass: the site does not allow self-approval, or not that long.
    SelfApprovalNotAllowed,
    SelfApprovalTooLong {
        max_minutes: i64,
    },
    CommentRequired,
    SiteDisabled,
    PersonDisabled,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotEligible => "not_eligible",
            Refusal::RoleNotOnSite(_) => "role_not_on_site",
            Refusal::RoleNotEligible { .. } => "role_not_eligible",
            Refusal::TooLong { .. } => "duration_too_long",
            Refusal::TooShort => "duration_too_short",
            Refusal::ReasonTooShort => "reason_too_short",
            Refusal::ReasonInvalid(_) => "reason_invalid",
            Refusal::AlreadyOpen => "request_open",
            Refusal::OwnRequest => "own_request",
            Refusal::NotAnApprover => "not_an_approver",
            Refusal::NotPending(_) => "not_pending",
            Refusal::NotActive(_) => "not_active",
            Refusal::SelfApprovalNotAllowed => "self_approval_not_allowed",
            Refusal::SelfApprovalTooLong { .. } => "self_approval_too_long",
            Refusal::CommentRequired => "comment_required",
            Refusal::SiteDisabled => "site_disabled",
            Refusal::PersonDisabled => "person_disabled",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::NotEligible => {
                "You are not eligible for a higher role on this site. Ask an administrator.".into()
            }
            Refusal::RoleNotOnSite(r) => format!("This site has no role {r:?}."),
            Refusal::RoleNotEligible { asked, eligible } => format!(
                "You may ask for {eligible:?} on this site, not {asked:?}."
            ),
            Refusal::TooLong { max_minutes } => format!(
                "You may ask for up to {} at a time on this site.",
                minutes_text(*max_minutes)
            ),
            Refusal::TooShort => format!(
                "An elevation lasts at least {MIN_ELEVATION_MINUTES} minutes."
            ),
            Refusal::ReasonTooShort => format!(
                "Say why you need it, in {MIN_REASON_CHARS} characters or more (the ticket or incident)."
            ),
            Refusal::ReasonInvalid(why) => format!("The reason {why}."),
            Refusal::AlreadyOpen => {
                "You already have a request or an elevation open on this site.".into()
            }
            Refusal::OwnRequest => "Nobody approves their own request.".into(),
            Refusal::NotAnApprover => "You may not decide requests for this site.".into(),
            Refusal::NotPending(s) => format!(
                "This request is no longer waiting for a decision: it is {}.",
                s.as_str()
            ),
            Refusal::NotActive(s) => format!("This elevation is not in force: it is {}.", s.as_str()),
            Refusal::SelfApprovalNotAllowed => {
                "This site does not allow break-glass self-approval.".into()
            }
            Refusal::SelfApprovalTooLong { max_minutes } => format!(
                "Break-glass self-approval on this site lasts up to {}.",
                minutes_text(*max_minutes)
            ),
            Refusal::CommentRequired => "Say why you deny it (a comment is required).".into(),
            Refusal::SiteDisabled => "This site is disabled in the dashboard.".into(),
            Refusal::PersonDisabled => "This person's account is disabled.".into(),
        }
    }
}

/// "2 hours", "90 minutes", "1 hour".
pub fn minutes_text(m: i64) -> String {
    match m {
        60 => "1 hour".into(),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        1 => "1 minute".into(),
        m => format!("{m} minutes"),
    }
}

/// Check what an admin typed to make a grant eligible: a role the site has,
/// above the grant's own role (`site_roles` highest first), for a limit in
/// bounds.
pub fn check_eligibility(
    base_role: &str,
    role: &str,
    max_minutes: i64,
    site_roles: &[String],
) -> Result<Eligibility, FieldError> {
    let fail = |field: &'static str, message: String| FieldError { field, message };
    let rank = |r: &str| site_roles.iter().position(|x| x == r);
    let Some(high) = rank(role) else {
        return Err(fail(
            "eligible_role",
            format!("the site has no role {role:?}"),
        ));
    };
    if rank(base_role).is_some_and(|base| base <= high) {
        return Err(fail(
            "eligible_role",
            format!("{role:?} is not above the grant's own role {base_role:?}"),
        ));
    }
    if !(MIN_ELEVATION_MINUTES..=MAX_ELEVATION_MINUTES).contains(&max_minutes) {
        return Err(fail(
            "max_minutes",
            format!(
                "an eligible role is held from {MIN_ELEVATION_MINUTES} minutes to {} at a time",
                minutes_text(MAX_ELEVATION_MINUTES)
            ),
        ));
    }
    Ok(Eligibility {
        role: role.to_string(),
        max_minutes,
    })
}

/// The reason given for a request or a decision, trimmed, or why not.
fn check_text(text: &str, min: usize) -> Result<String, Refusal> {
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err(Refusal::ReasonInvalid("contains control characters"));
    }
    if text.chars().count() > 500 {
        return Err(Refusal::ReasonInvalid("is longer than 500 characters"));
    }
    if text.chars().count() < min {
        return Err(Refusal::ReasonTooShort);
    }
    Ok(text.to_string())
}

/// A request as checked: the role, how long, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub role: String,
    pub minutes: i64,
    pub reason: String,
}

/// The eligibility a request rests on, among those of the person's grants
/// on the site still live at `now` (`(grant id, eligibility, expiry)`): one
/// for the role asked, the longest allowed; or, when none is for that role,
/// the highest role the person may ask for (to say so).
pub fn choose<'a>(
    eligible: &'a [(String, Eligibility, Option<i64>)],
    role: &str,
    site_roles: &[String],
    now: i64,
) -> Option<&'a (String, Eligibility, Option<i64>)> {
    let live = || {
        eligible
            .iter()
            .filter(|(_, _, exp)| exp.is_none_or(|t| t > now))
    };
    live()
        .filter(|(_, e, _)| e.role == role)
        .max_by_key(|(_, e, _)| e.max_minutes)
        .or_else(|| {
            live().min_by_key(|(_, e, _)| {
                site_roles
                    .iter()
                    .position(|r| *r == e.role)
                    .unwrap_or(usize::MAX)
            })
        })
}

/// Check a request against the eligibility it rests on (`None`: the person
/// is eligible for nothing on the site) and the site's roles.
pub fn check_request(
    eligibility: Option<&Eligibility>,
    role: &str,
    minutes: i64,
    reason: &str,
    site_roles: &[String],
) -> Result<Ask, Refusal> {
    if !site_roles.iter().any(|r| r == role) {
        return Err(Refusal::RoleNotOnSite(role.to_string()));
    }
    let Some(e) = eligibility else {
        return Err(Refusal::NotEligible);
    };
    if e.role != role {
        return Err(Refusal::RoleNotEligible {
            asked: role.to_string(),
            eligible: e.role.clone(),
        });
    }
    if minutes < MIN_ELEVATION_MINUTES {
        return Err(Refusal::TooShort);
    }
    if minutes > e.max_minutes {
        return Err(Refusal::TooLong {
            max_minutes: e.max_minutes,
        });
    }
    let reason = check_text(reason, MIN_REASON_CHARS)?;
    Ok(Ask {
        role: role.to_string(),
        minutes,
        reason,
    })
}

/// Who decides, as the rule sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decider<'a> {
    /// Their e-mail; `None` for the server's operator (the command line).
    pub email: Option<&'a str>,
    pub is_admin: bool,
    /// Named as an approver for this site, or for a team whose grant the
    /// request rests on.
    pub named: bool,
}

/// Whether `decider` may approve (or deny) a request by `requester` for
/// `minutes`. `self_approval`: the site's break-glass limit in minutes,
/// when it allows self-approval. Returns whether it is a self-approval.
pub fn may_decide(
    decider: Decider<'_>,
    requester: &str,
    minutes: i64,
    approving: bool,
    self_approval: Option<i64>,
) -> Result<bool, Refusal> {
    let own = decider
        .email
        .is_some_and(|e| e.eq_ignore_ascii_case(requester));
    if own {
        if !approving {
            // Withdrawing one's own request is a cancellation, not a denial.
            return Err(Refusal::OwnRequest);
        }
        let Some(limit) = self_approval else {
            return Err(Refusal::OwnRequest);
        };
        if minutes > limit {
            return Err(Refusal::SelfApprovalTooLong { max_minutes: limit });
        }
        return Ok(true);
    }
    if decider.email.is_none() || decider.is_admin || decider.named {
        Ok(false)
    } else {
        Err(Refusal::NotAnApprover)
    }
}

/// A comment on a decision: optional on an approval, required on a denial.
pub fn check_comment(comment: &str, approving: bool) -> Result<String, Refusal> {
    let min = if approving { 0 } else { 3 };
    check_text(comment, min).map_err(|e| match e {
        Refusal::ReasonTooShort => Refusal::CommentRequired,
        e => e,
    })
}

/// When an elevation approved at `now` ends: after its minutes, and never
/// after the eligible grant it rests on ends.
pub fn ends_at(now: i64, minutes: i64, grant_expires_at: Option<i64>) -> i64 {
    let end = now + minutes * 60;
    grant_expires_at.map_or(end, |g| end.min(g))
}

/// Check a site's break-glass limit as an admin typed it (`None`: off).
pub fn check_self_approval(minutes: Option<i64>) -> Result<Option<i64>, FieldError> {
    match minutes {
        None => Ok(None),
        Some(m) if (MIN_ELEVATION_MINUTES..=MAX_SELF_APPROVAL_MINUTES).contains(&m) => Ok(Some(m)),
        Some(_) => Err(FieldError {
            field: "self_approval_minutes",
            message: format!(
                "break-glass self-approval lasts from {MIN_ELEVATION_MINUTES} minutes to {}",
                minutes_text(MAX_SELF_APPROVAL_MINUTES)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<String> {
        crate::domain::sites::CORE_ROLES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn admin_for_two_hours() -> Eligibility {
        Eligibility {
            role: "administrator".into(),
            max_minutes: 120,
        }
    }

    #[test]
    fn an_eligible_role_is_above_the_grant_and_on_the_site_with_a_limit_in_bounds() {
        let r = roles();
        let e = check_eligibility("editor", "administrator", 120, &r).unwrap();
        assert_eq!(e, admin_for_two_hours());
        let field = |res: Result<Eligibility, FieldError>| res.unwrap_err().field;
        assert_eq!(
            field(check_eligibility("editor", "author", 60, &r)),
            "eligible_role"
        );
        assert_eq!(
            field(check_eligibility("editor", "editor", 60, &r)),
            "eligible_role"
        );
        assert_eq!(
            field(check_eligibility("editor", "shop_manager", 60, &r)),
            "eligible_role"
        );
        assert_eq!(
            field(check_eligibility("editor", "administrator", 4, &r)),
            "max_minutes"
        );
        assert_eq!(
            field(check_eligibility(
                "editor",
                "administrator",
                MAX_ELEVATION_MINUTES + 1,
                &r
            )),
            "max_minutes"
        );
    }

    #[test]
    fn a_request_names_the_eligible_role_a_duration_within_the_limit_and_a_reason() {
        let r = roles();
        let e = admin_for_two_hours();
        let ask = check_request(
            Some(&e),
            "administrator",
            60,
            "  INC-4711 checkout broken ",
            &r,
        )
        .unwrap();
        assert_eq!(ask.reason, "INC-4711 checkout broken");
        assert_eq!(ask.minutes, 60);
        let code = |res: Result<Ask, Refusal>| res.unwrap_err().code();
        assert_eq!(
            code(check_request(
                None,
                "administrator",
                60,
                "INC-4711 checkout",
                &r
            )),
            "not_eligible"
        );
        assert_eq!(
            code(check_request(
                Some(&e),
                "shop_manager",
                60,
                "INC-4711 checkout",
                &r
            )),
            "role_not_on_site"
        );
        assert_eq!(
            code(check_request(
                Some(&e),
                "author",
                60,
                "INC-4711 checkout",
                &r
            )),
            "role_not_eligible"
        );
        assert_eq!(
            code(check_request(
                Some(&e),
                "administrator",
                121,
                "INC-4711 checkout",
                &r
            )),
            "duration_too_long"
        );
        assert_eq!(
            code(check_request(
                Some(&e),
                "administrator",
                1,
                "INC-4711 checkout",
                &r
            )),
            "duration_too_short"
        );
        assert_eq!(
            code(check_request(
                Some(&e),
                "administrator",
                60,
                "  short   ",
                &r
            )),
            "reason_too_short"
        );
        assert_eq!(
            code(check_request(
                Some(&e),
                "administrator",
                60,
                "a reason\u{7} here",
                &r
            )),
            "reason_invalid"
        );
        // Every refusal reads as a sentence.
        let msg = check_request(Some(&e), "administrator", 121, "INC-4711 checkout", &r)
            .unwrap_err()
            .message();
        assert_eq!(msg, "You may ask for up to 2 hours at a time on this site.");
    }

    #[test]
    fn nobody_approves_their_own_request_unless_the_site_allows_break_glass() {
        let sam = Decider {
            email: Some("Sam@agency.test"),
            is_admin: true,
            named: true,
        };
        // Even an admin may not approve their own request.
        assert_eq!(
            may_decide(sam, "sam@agency.test", 60, true, None),
            Err(Refusal::OwnRequest)
        );
        assert_eq!(
            may_decide(sam, "sam@agency.test", 60, false, Some(60)),
            Err(Refusal::OwnRequest)
        );
        // Break-glass: self-approval, within the site's limit.
        assert_eq!(
            may_decide(sam, "sam@agency.test", 30, true, Some(30)),
            Ok(true)
        );
        assert_eq!(
            may_decide(sam, "sam@agency.test", 31, true, Some(30)),
            Err(Refusal::SelfApprovalTooLong { max_minutes: 30 })
        );
        let ada = Decider {
            email: Some("ada@agency.test"),
            is_admin: true,
            named: false,
        };
        assert_eq!(
            may_decide(ada, "sam@agency.test", 60, true, None),
            Ok(false)
        );
        let lead = Decider {
            email: Some("lead@agency.test"),
            is_admin: false,
            named: true,
        };
        assert_eq!(
            may_decide(lead, "sam@agency.test", 60, false, None),
            Ok(false)
        );
        let peer = Decider {
            email: Some("sasha@agency.test"),
            is_admin: false,
            named: false,
        };
        assert_eq!(
            may_decide(peer, "sam@agency.test", 60, true, None),
            Err(Refusal::NotAnApprover)
        );
        // The operator at the server's command line.
        let operator = Decider {
            email: None,
            is_admin: false,
            named: false,
        };
        assert_eq!(
            may_decide(operator, "sam@agency.test", 60, true, None),
            Ok(false)
        );
    }

    #[test]
    fn a_denial_says_why_and_an_elevation_never_outlives_its_grant() {
        assert_eq!(check_comment("", true), Ok(String::new()));
        assert_eq!(check_comment(" no ", false), Err(Refusal::CommentRequired));
        assert_eq!(
            check_comment("not during the freeze", false).unwrap(),
            "not during the freeze"
        );
        assert_eq!(ends_at(1000, 60, None), 1000 + 3600);
        assert_eq!(ends_at(1000, 60, Some(2000)), 2000);
        assert_eq!(check_self_approval(Some(30)), Ok(Some(30)));
        assert!(check_self_approval(Some(MAX_SELF_APPROVAL_MINUTES + 1)).is_err());
        assert_eq!(minutes_text(90), "90 minutes");
        assert_eq!(minutes_text(120), "2 hours");
        assert_eq!(State::parse("active"), Some(State::Active));
        assert_eq!(
            State::parse(State::Cancelled.as_str()),
            Some(State::Cancelled)
        );
    }
}

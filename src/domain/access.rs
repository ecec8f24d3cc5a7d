//! Who may enter which site, with which WordPress role. The rule takes every
//! grant that applies to a person on a site (direct today; teams and
//! time-limited grants later feed the same list) and decides.

/// Where a grant comes from, so pages can say why someone has a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSource {
    Direct,
    Team(String),
    /// An approved elevation (just-in-time access) in force.
    Elevation,
}

/// One grant that applies to a person on a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub role: String,
    /// Time-limited grants end by themselves.
    pub expires_at: Option<i64>,
    pub source: GrantSource,
}

/// What the rule needs to know about the site.
#[derive(Debug, Clone, Copy)]
pub struct SiteStanding<'a> {
    pub enabled: bool,
    /// Roles that may be granted there, highest first.
    pub allowed_roles: &'a [String],
}

/// Why a launch is refused; each has a stable code and a plain sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownSite,
    BadDeepLink,
    PersonDisabled,
    SiteDisabled,
    NoGrant,
    RoleNotAllowed(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownSite => "unknown_site",
            Refusal::BadDeepLink => "bad_deep_link",
            Refusal::PersonDisabled => "person_disabled",
            Refusal::SiteDisabled => "site_disabled",
            Refusal::NoGrant => "no_grant",
            Refusal::RoleNotAllowed(_) => "role_not_allowed",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::UnknownSite => "There is no such site in the dashboard.".into(),
            Refusal::BadDeepLink => "The page to open must be a path on the site, like /wp-admin/edit.php; other hosts and addresses are refused.".into(),
            Refusal::PersonDisabled => "Your account is disabled. Ask an administrator.".into(),
            Refusal::SiteDisabled => "This site is disabled in the dashboard.".into(),
            Refusal::NoGrant => "You have no access to this site. Ask an administrator for a grant.".into(),
            Refusal::RoleNotAllowed(r) => format!(
                "Your role {r:?} may no longer be granted on this site. Ask an administrator."
            ),
        }
    }
}

/// The role a person enters with, and the grant it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The grant it comes from, so the launch can check it still holds when it commits.
    pub grant_id: String,
    pub role: String,
    pub source: GrantSource,
}

/// Decide a launch: the person active, the site enabled, a live grant, and
/// a role the site allows. With several grants, the highest role the site
/// allows wins.
pub fn decide(
    person_active: bool,
    site: SiteStanding<'_>,
    grants: &[Grant],
    now: i64,
) -> Result<Entry, Refusal> {
    if !person_active {
        return Err(Refusal::PersonDisabled);
    }
    if !site.enabled {
        return Err(Refusal::SiteDisabled);
    }
    let live: Vec<&Grant> = grants
        .iter()
        .filter(|g| g.expires_at.is_none_or(|t| t > now))
        .collect();
    if live.is_empty() {
        return Err(Refusal::NoGrant);
    }
    let rank = |role: &str| site.allowed_roles.iter().position(|r| r == role);
    live.iter()
        .filter_map(|g| rank(&g.role).map(|i| (i, *g)))
        .min_by_key(|(i, _)| *i)
        .map(|(_, g)| Entry {
            grant_id: g.id.clone(),
            role: g.role.clone(),
            source: g.source.clone(),
        })
        .ok_or_else(|| Refusal::RoleNotAllowed(live[0].role.clone()))
}

/// The shortest and longest a time-limited grant may run, in minutes.
pub const MIN_GRANT_MINUTES: i64 = 5;
pub const MAX_GRANT_MINUTES: i64 = 90 * 24 * 60;

/// How long a grant holds and why: a time-limited grant must say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTerms {
    pub expires_at: Option<i64>,
    pub reason: String,
}

/// Check the terms typed for a grant: `minutes` empty for a lasting grant.
pub fn grant_terms(
    minutes: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<GrantTerms, super::sites::FieldError> {
    use super::sites::FieldError;
    let reason = reason.trim();
    let fail = |field: &'static str, message: String| FieldError { field, message };
    if reason.chars().count() > 500 {
        return Err(fail(
            "reason",
            "the reason is longer than 500 characters".into(),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(fail(
            "reason",
            "the reason contains control characters".into(),
        ));
    }
    let Some(minutes) = minutes else {
        return Ok(GrantTerms {
            expires_at: None,
            reason: reason.to_string(),
        });
    };
    if !(MIN_GRANT_MINUTES..=MAX_GRANT_MINUTES).contains(&minutes) {
        return Err(fail(
            "duration",
            format!(
                "a time-limited grant runs from {MIN_GRANT_MINUTES} minutes to {} days",
                MAX_GRANT_MINUTES / 24 / 60
            ),
        ));
    }
    if reason.chars().count() < 3 {
        return Err(fail(
            "reason",
            "say why this time-limited grant is needed (for example the incident it is for)".into(),
        ));
    }
    Ok(GrantTerms {
        expires_at: Some(now + minutes * 60),
        reason: reason.to_string(),
    })
}

/// Roles whose grant counts as a sensitive action (a recent sign-in is asked for).
pub fn is_sensitive_role(role: &str) -> bool {
    role == "administrator"
}

/// A role that is administrator, or the highest role of a site with roles
/// of its own (its admin-equivalent, such as a shop's `shop_manager` above
/// everything else): granting it is sensitive. `site_roles`: highest first.
pub fn is_sensitive_role_on(role: &str, site_roles: &[String]) -> bool {
    is_sensitive_role(role) || site_roles.first().is_some_and(|top| top == role)
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

    fn g(role: &str, expires_at: Option<i64>, source: GrantSource) -> Grant {
        Grant {
            id: format!("g-{role}"),
            role: role.into(),
            expires_at,
            source,
        }
    }

    #[test]
    fn the_highest_role_of_a_site_is_as_sensitive_as_administrator() {
        let shop: Vec<String> = ["shop_manager", "editor", "customer"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_sensitive_role_on("shop_manager", &shop));
        assert!(is_sensitive_role_on("administrator", &shop));
        assert!(!is_sensitive_role_on("editor", &shop));
        assert!(!is_sensitive_role_on("editor", &roles()));
        assert!(is_sensitive_role_on("administrator", &roles()));
    }

    #[test]
    fn no_grant_no_access_and_each_refusal_is_named() {
        let r = roles();
        let site = SiteStanding {
            enabled: true,
            allowed_roles: &r,
        };
        assert_eq!(decide(true, site, &[], 0), Err(Refusal::NoGrant));
        let one = [g("editor", None, GrantSource::Direct)];
        assert_eq!(decide(false, site, &one, 0), Err(Refusal::PersonDisabled));
        let off = SiteStanding {
            enabled: false,
            allowed_roles: &r,
        };
        assert_eq!(decide(true, off, &one, 0), Err(Refusal::SiteDisabled));
        let narrow = vec!["subscriber".to_string()];
        let site2 = SiteStanding {
            enabled: true,
            allowed_roles: &narrow,
        };
        assert_eq!(
            decide(true, site2, &one, 0),
            Err(Refusal::RoleNotAllowed("editor".into()))
        );
        assert_eq!(decide(true, site, &one, 0).unwrap().role, "editor");
    }

    #[test]
    fn the_highest_allowed_live_grant_wins() {
        let r = roles();
        let site = SiteStanding {
            enabled: true,
            allowed_roles: &r,
        };
        let grants = [
            g("author", None, GrantSource::Direct),
            g(
                "administrator",
                Some(100),
                GrantSource::Team("incident".into()),
            ),
            g("editor", None, GrantSource::Team("writers".into())),
        ];
        let e = decide(true, site, &grants, 50).unwrap();
        assert_eq!(
            (e.role.as_str(), &e.source),
            ("administrator", &GrantSource::Team("incident".into()))
        );
        // The time-limited grant ends by itself.
        let e = decide(true, site, &grants, 100).unwrap();
        assert_eq!(e.role, "editor");
    }

    #[test]
    fn time_limited_grants_need_a_duration_in_bounds_and_a_reason() {
        let lasting = grant_terms(None, "", 1000).unwrap();
        assert_eq!(lasting.expires_at, None);
        let four_hours = grant_terms(Some(240), " INC-42 outage ", 1000).unwrap();
        assert_eq!(four_hours.expires_at, Some(1000 + 4 * 3600));
        assert_eq!(four_hours.reason, "INC-42 outage");
        assert_eq!(grant_terms(Some(240), "", 0).unwrap_err().field, "reason");
        assert_eq!(
            grant_terms(Some(1), "why", 0).unwrap_err().field,
            "duration"
        );
        assert_eq!(
            grant_terms(Some(MAX_GRANT_MINUTES + 1), "why", 0)
                .unwrap_err()
                .field,
            "duration"
        );
        assert_eq!(grant_terms(None, "a\u{7}b", 0).unwrap_err().field, "reason");
    }
}

//! Admission of a person who proved their identity at the provider.
//!
//! The ID token's signature, issuer, audience, expiry and nonce are checked
//! by the OIDC layer before anything here runs; this module decides whether
//! the verified claims belong to someone of the agency.

/// Who may sign in, validated once from configuration.
#[derive(Debug, Clone)]
pub struct SignInPolicy {
    /// Lower-case e-mail domains whose verified users may sign in.
    pub allowed_domains: Vec<String>,
    /// Lower-case e-mail addresses that are admins from their first sign-in.
    pub admin_emails: Vec<String>,
    /// Google Workspace: the ID token must carry an allowed `hd` claim.
    pub require_hosted_domain: bool,
    /// Admit an address whose ID token says nothing of its verification
    /// (no `email_verified`, no `xms_edov`): `SSO_TRUST_UNVERIFIED_EMAIL`.
    pub trust_unverified_email: bool,
}

/// The verified claims of an ID token that admission looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// The `email_verified` claim, if the provider sent one.
    pub email_verified: Option<bool>,
    /// Microsoft Entra ID's `xms_edov` (the address' domain is verified by
    /// the tenant that owns it), if sent.
    pub domain_owner_verified: Option<bool>,
    /// Google's hosted domain claim, when the provider sends one.
    pub hosted_domain: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// A person the agency accepts, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub issuer: String,
    pub subject: String,
    /// Lower-cased.
    pub email: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Listed in the bootstrap admin list.
    pub bootstrap_admin: bool,
}

/// Why a verified identity is not let in. Each has a stable code for logs
/// and the audit trail, and a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Your identity provider did not share an e-mail address.")]
    EmailMissing,
    #[error("The e-mail address {email} has not been verified by your identity provider.")]
    EmailUnverified { email: String },
    #[error("Your identity provider did not say whether {email} is verified (its ID token has no email_verified claim). An admin can trust this provider's addresses with SSO_TRUST_UNVERIFIED_EMAIL, or, for Microsoft Entra ID, add the xms_edov optional claim.")]
    EmailVerificationUnknown { email: String },
    #[error("{email} is not in a domain allowed to sign in here.")]
    DomainNotAllowed { email: String },
    #[error("Your account does not belong to an allowed Google Workspace domain.")]
    HostedDomainMissing,
    #[error("Your account's workspace domain ({hosted_domain}) does not match an allowed domain for {email}.")]
    HostedDomainMismatch {
        email: String,
        hosted_domain: String,
    },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::EmailMissing => "email_missing",
            Refusal::EmailUnverified { .. } => "email_unverified",
            Refusal::EmailVerificationUnknown { .. } => "email_verification_unknown",
            Refusal::DomainNotAllowed { .. } => "domain_not_allowed",
            Refusal::HostedDomainMissing => "hosted_domain_missing",
            Refusal::HostedDomainMismatch { .. } => "hosted_domain_mismatch",
        }
    }

    /// The address the refusal concerns, where there is one.
    pub fn email(&self) -> Option<&str> {
        match self {
            Refusal::EmailUnverified { email }
            | Refusal::EmailVerificationUnknown { email }
            | Refusal::DomainNotAllowed { email }
            | Refusal::HostedDomainMismatch { email, .. } => Some(email),
            Refusal::EmailMissing | Refusal::HostedDomainMissing => None,
        }
    }
}

/// A name claim as stored and shown: plain text, or none if nothing is left.
fn display_name(claim: &Option<String>) -> Option<String> {
    claim
        .as_deref()
        .map(|n| super::people::plain_text(n, 200))
        .filter(|n| !n.is_empty())
}

impl SignInPolicy {
    /// Decide on a verified identity. The e-mail domain and the `hd` claim
    /// are both taken from the ID token itself: the `hd` request parameter
    /// is only a hint to the provider's account chooser and proves nothing.
    pub fn admit(&self, id: &VerifiedIdentity) -> Result<Admitted, Refusal> {
        let email = id
            .email
            .as_deref()
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .ok_or(Refusal::EmailMissing)?;
        // An address with control or bidi characters is no address of an
        // allowed domain; shown (and recorded) without them.
        if email.chars().any(super::people::is_control_or_bidi) {
            return Err(Refusal::DomainNotAllowed {
                email: super::people::plain_text(&email, 320),
            });
        }
        // The provider's word on the address: `email_verified`; failing
        // that, Entra's `xms_edov`; failing both, only a provider the
        // configuration trusts. An explicit "not verified" is always refused.
        match (id.email_verified, id.domain_owner_verified) {
            (Some(true), _) | (None, Some(true)) => {}
            (Some(false), _) | (None, Some(false)) => {
                return Err(Refusal::EmailUnverified { email })
            }
            (None, None) if self.trust_unverified_email => {}
            (None, None) => return Err(Refusal::EmailVerificationUnknown { email }),
        }
        let domain = email_domain(&email).ok_or(Refusal::DomainNotAllowed {
            email: email.clone(),
        })?;
        if !self.allowed_domains.iter().any(|d| d == domain) {
            return Err(Refusal::DomainNotAllowed { email });
        }
        match id.hosted_domain.as_deref().map(str::to_ascii_lowercase) {
            Some(hd) if hd != domain => {
                return Err(Refusal::HostedDomainMismatch {
                    email,
                    hosted_domain: hd,
                })
            }
            Some(_) => {}
            None if self.require_hosted_domain => return Err(Refusal::HostedDomainMissing),
            None => {}
        }
        Ok(Admitted {
            issuer: id.issuer.clone(),
            subject: id.subject.clone(),
            bootstrap_admin: self.admin_emails.contains(&email),
            email,
            name: display_name(&id.name),
            given_name: display_name(&id.given_name),
            family_name: display_name(&id.family_name),
        })
    }

    /// The `hd` hint Google accepts: one domain, or none when several are allowed.
    pub fn hosted_domain_hint(&self) -> Option<&str> {
        match self.allowed_domains.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

/// The domain part of an address with exactly one `@` and a non-empty local part.
pub fn email_domain(email: &str) -> Option<&str> {
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    Some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(require_hd: bool) -> SignInPolicy {
        SignInPolicy {
            allowed_domains: vec!["agency.test".into()],
            admin_emails: vec!["boss@agency.test".into()],
            require_hosted_domain: require_hd,
            trust_unverified_email: false,
        }
    }

    fn id(email: &str, verified: bool, hd: Option<&str>) -> VerifiedIdentity {
        VerifiedIdentity {
            issuer: "https://idp.test".into(),
            subject: "123".into(),
            email: Some(email.into()),
            email_verified: Some(verified),
            domain_owner_verified: None,
            hosted_domain: hd.map(Into::into),
            name: Some("Ann Example".into()),
            given_name: None,
            family_name: None,
        }
    }

    #[test]
    fn an_address_without_a_verification_claim_needs_xms_edov_or_a_trusted_provider() {
        let entra = |verified: Option<bool>, edov: Option<bool>| VerifiedIdentity {
            email_verified: verified,
            domain_owner_verified: edov,
            ..id("ann@agency.test", false, None)
        };
        let strict = policy(false);
        let trusting = SignInPolicy {
            trust_unverified_email: true,
            ..policy(false)
        };
        assert_eq!(
            strict.admit(&entra(None, None)).unwrap_err().code(),
            "email_verification_unknown"
        );
        assert!(trusting.admit(&entra(None, None)).is_ok());
        assert!(strict.admit(&entra(None, Some(true))).is_ok());
        for p in [&strict, &trusting] {
            assert_eq!(
                p.admit(&entra(None, Some(false))).unwrap_err().code(),
                "email_unverified"
            );
            assert_eq!(
                p.admit(&entra(Some(false), None)).unwrap_err().code(),
                "email_unverified"
            );
            assert_eq!(
                p.admit(&entra(Some(false), Some(true))).unwrap_err().code(),
                "email_unverified"
            );
        }
    }

    #[test]
    fn admits_verified_member_and_lowercases_email() {
        let a = policy(true)
            .admit(&id("Ann@Agency.TEST", true, Some("agency.test")))
            .unwrap();
        assert_eq!(a.email, "ann@agency.test");
        assert!(!a.bootstrap_admin);
    }

    #[test]
    fn bootstrap_admin_is_recognised() {
        let a = policy(false)
            .admit(&id("BOSS@agency.test", true, None))
            .unwrap();
        assert!(a.bootstrap_admin);
    }

    #[test]
    fn refuses_unverified_email() {
        let r = policy(false).admit(&id("ann@agency.test", false, None));
        assert_eq!(r.unwrap_err().code(), "email_unverified");
    }

    #[test]
    fn refuses_other_domain_even_with_lookalike() {
        for email in [
            "ann@elsewhere.test",
            "ann@agency.test.evil.test",
            "ann@sub.agency.test",
            "agency.test@evil.test",
            "@agency.test",
            "ann@agency.test@evil.test",
        ] {
            let r = policy(false).admit(&id(email, true, None));
            assert_eq!(r.unwrap_err().code(), "domain_not_allowed", "{email}");
        }
    }

    #[test]
    fn hosted_domain_must_match_email_domain() {
        let r = policy(false).admit(&id("ann@agency.test", true, Some("elsewhere.test")));
        assert_eq!(r.unwrap_err().code(), "hosted_domain_mismatch");
    }

    #[test]
    fn google_requires_hosted_domain() {
        let r = policy(true).admit(&id("ann@agency.test", true, None));
        assert_eq!(r.unwrap_err(), Refusal::HostedDomainMissing);
        assert!(policy(false)
            .admit(&id("ann@agency.test", true, None))
            .is_ok());
    }

    #[test]
    fn missing_email_is_refused() {
        let mut i = id("x@agency.test", true, None);
        i.email = None;
        assert_eq!(policy(false).admit(&i).unwrap_err(), Refusal::EmailMissing);
    }

    #[test]
    fn hint_only_for_a_single_domain() {
        assert_eq!(policy(true).hosted_domain_hint(), Some("agency.test"));
        let mut p = policy(true);
        p.allowed_domains.push("other.test".into());
        assert_eq!(p.hosted_domain_hint(), None);
    }
}

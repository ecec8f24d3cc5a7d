//! The people who sign in: staff, and admins among them.

/// Whether `c` is a control character or one of Unicode's bidirectional
/// embedding, override and isolate characters, which reorder how the text
/// after them is shown ("Trojan Source" spoofing).
pub fn is_control_or_bidi(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text from outside (a provider's name claims) made safe to store and
/// show: those characters dropped, whitespace folded to single spaces, at
/// most `max` characters.
pub fn plain_text(raw: &str, max: usize) -> String {
    let kept: String = raw
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !is_control_or_bidi(*c))
        .collect();
    kept.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

/// A person known to the dashboard, identified by (issuer, subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Staff,
    Admin,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Staff => "Staff",
            Role::Admin => "Admin",
        }
    }
}

impl Person {
    pub fn role(&self) -> Role {
        if self.is_admin {
            Role::Admin
        } else {
            Role::Staff
        }
    }

    /// The name to greet someone with: their provider profile name, else the e-mail.
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.email)
    }
}

/// What a sign-in the provider vouched for does, given the person known
/// under its (issuer, subject) and everyone known under its e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The person signs in again: their profile is refreshed; their
    /// standing (admin or not) is the console's, whatever the bootstrap list says.
    Known(String),
    /// A first sign-in: a new person, admin only when bootstrapped.
    New { admin: bool },
    /// The address is disabled (under whatever subject it was disabled).
    Disabled,
    /// The address belongs to an enabled person under another subject
    /// (an account recreated at the provider, or an address handed to
    /// someone else): held until an admin confirms it is the same person.
    Held { holder: String },
}

/// Decide an arrival. Disablement follows the address, not the subject:
/// a leaver who comes back through a new account at the provider stays out.
/// An address someone else holds is held, also when a known account now
/// says it is theirs (its address changed at the provider).
pub fn arrival(by_subject: Option<&Person>, by_email: &[Person], bootstrap_admin: bool) -> Arrival {
    if by_subject.is_some_and(|p| p.disabled) || by_email.iter().any(|p| p.disabled) {
        return Arrival::Disabled;
    }
    let holder = by_email
        .iter()
        .find(|p| !p.disabled && by_subject.is_none_or(|me| me.id != p.id));
    if let Some(holder) = holder {
        return Arrival::Held {
            holder: holder.id.clone(),
        };
    }
    if let Some(p) = by_subject {
        return Arrival::Known(p.id.clone());
    }
    match by_email.iter().find(|p| !p.disabled) {
        Some(holder) => Arrival::Held {
            holder: holder.id.clone(),
        },
        None => Arrival::New {
            admin: bootstrap_admin,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_keeps_its_standing_whatever_the_subject() {
        let mut sam = person(Some("Sam"));
        sam.id = "p-sam".into();
        // Known, new, and a bootstrap admin only on the first sign-in.
        assert_eq!(
            arrival(Some(&sam), std::slice::from_ref(&sam), true),
            Arrival::Known("p-sam".into())
        );
        assert_eq!(arrival(None, &[], true), Arrival::New { admin: true });
        assert_eq!(arrival(None, &[], false), Arrival::New { admin: false });
        // Another subject for an address someone enabled holds: held.
        assert_eq!(
            arrival(None, std::slice::from_ref(&sam), false),
            Arrival::Held {
                holder: "p-sam".into()
            }
        );
        // A known account whose address changed, at the provider, to one
        // someone else holds: held, not handed that person's access.
        let mut ann = person(Some("Ann"));
        ann.id = "p-ann".into();
        ann.subject = "ann".into();
        assert_eq!(
            arrival(Some(&ann), std::slice::from_ref(&sam), false),
            Arrival::Held {
                holder: "p-sam".into()
            }
        );
        // Disabled, then back with a new subject: still disabled.
        sam.disabled = true;
        assert_eq!(
            arrival(None, std::slice::from_ref(&sam), false),
            Arrival::Disabled
        );
        assert_eq!(
            arrival(Some(&sam), std::slice::from_ref(&sam), true),
            Arrival::Disabled
        );
    }

    fn person(name: Option<&str>) -> Person {
        Person {
            id: "p1".into(),
            issuer: "https://idp.test".into(),
            subject: "s".into(),
            email: "ann@agency.test".into(),
            name: name.map(Into::into),
            given_name: None,
            family_name: None,
            is_admin: false,
            disabled: false,
            created_at: 0,
            last_sign_in_at: None,
        }
    }

    #[test]
    fn display_name_falls_back_to_email() {
        assert_eq!(person(Some("Ann")).display_name(), "Ann");
        assert_eq!(person(Some("  ")).display_name(), "ann@agency.test");
        assert_eq!(person(None).display_name(), "ann@agency.test");
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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

//! The grants CSV: one person's grant on one site per row, with the higher
//! role it makes them eligible for (just-in-time access). What an export
//! writes an import reads back unchanged. Planning is pure; the service
//! applies a plan in one transaction.

use std::collections::HashMap;

use super::access::{MAX_GRANT_MINUTES, MIN_GRANT_MINUTES};
use super::elevation::check_eligibility;
use super::import::{parse_columns, FileError, Row};
use super::sites::{normalise_url, Site};

/// Columns, in the order an export writes them. `email`, `site` and `role`
/// are required in an import; the others may be left out.
pub const COLUMNS: [&str; 7] = [
    "email",
    "site",
    "role",
    "expires_utc",
    "reason",
    "eligible_role",
    "eligible_max_minutes",
];

/// The word that takes an eligibility away (an empty cell keeps it).
pub const NONE: &str = "none";

/// Read the grants CSV.
pub fn parse(text: &str) -> Result<Vec<Row>, FileError> {
    parse_columns(text, &COLUMNS, &["email", "site", "role"])
}

/// A grant as it stands, keyed by (e-mail, site id, time-limited or not):
/// a person may hold one lasting and one time-limited grant on a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub id: String,
    pub role: String,
    pub expires_at: Option<i64>,
    pub reason: String,
    pub eligible: Option<(String, i64)>,
}

pub type Key = (String, String, bool);

/// A grant as a row asks for it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub email: String,
    pub site_id: String,
    pub role: String,
    pub expires_at: Option<i64>,
    pub reason: String,
    /// The eligibility after the import (kept when the cells were empty).
    pub eligible: Option<(String, i64)>,
}

/// What importing one row would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create(Wanted),
    /// The grant before, the grant after, and what changes: `grant` (its
    /// role, end or reason) and/or `eligibility`.
    Update {
        before: Current,
        after: Wanted,
        fields: Vec<&'static str>,
    },
    Unchanged,
    Invalid(Vec<String>),
}

/// One row's plan, for the preview and for applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub line: u64,
    pub email: String,
    pub site_url: String,
    pub change: Change,
}

/// Decide what each row does against the sites (by normalised URL) and the
/// grants that exist now. `check_email` is the sign-in domain rule.
pub fn plan(
    rows: &[Row],
    sites: &HashMap<String, Site>,
    current: &HashMap<Key, Current>,
    check_email: impl Fn(&str) -> Result<String, String>,
    now: i64,
) -> Vec<Planned> {
    let mut seen: HashMap<Key, u64> = HashMap::new();
    rows.iter()
        .map(|row| {
            let url = normalise_url(row.cell("site")).unwrap_or_else(|_| row.cell("site").into());
            let mut planned = Planned {
                line: row.line,
                email: row.cell("email").to_ascii_lowercase(),
                site_url: url.clone(),
                change: Change::Unchanged,
            };
            let wanted = match want(row, &url, sites, current, &check_email, now) {
                Ok(w) => w,
                Err(errors) => {
                    planned.change = Change::Invalid(errors);
                    return planned;
                }
            };
            let key = (
                wanted.email.clone(),
                wanted.site_id.clone(),
                wanted.expires_at.is_some(),
            );
            if let Some(first) = seen.get(&key) {
                planned.change = Change::Invalid(vec![format!(
                    "the same grant as line {first}: a person has one lasting and one time-limited grant on a site"
                )]);
                return planned;
            }
            seen.insert(key.clone(), row.line);
            planned.email = wanted.email.clone();
            planned.change = match current.get(&key) {
                None => Change::Create(wanted),
                Some(before) => {
                    let mut fields = Vec::new();
                    if before.role != wanted.role
                        || before.expires_at != wanted.expires_at
                        || before.reason != wanted.reason
                    {
                        fields.push("grant");
                    }
                    if before.eligible != wanted.eligible {
                        fields.push("eligibility");
                    }
                    if fields.is_empty() {
                        Change::Unchanged
                    } else {
                        Change::Update {
                            before: before.clone(),
                            after: wanted,
                            fields,
                        }
                    }
                }
            };
            planned
        })
        .collect()
}

fn want(
    row: &Row,
    url: &str,
    sites: &HashMap<String, Site>,
    current: &HashMap<Key, Current>,
    check_email: &impl Fn(&str) -> Result<String, String>,
    now: i64,
) -> Result<Wanted, Vec<String>> {
    let mut errors = Vec::new();
    let email = check_email(row.cell("email")).map_err(|e| errors.push(format!("email: {e}")));
    let site = sites.get(url);
    if site.is_none() {
        errors.push(format!("site: no site has the URL {:?}", row.cell("site")));
    }
    let role = row.cell("role").to_ascii_lowercase();
    if let Some(site) = site {
        if !site.roles.contains(&role) {
            errors.push(format!(
                "role: {role:?} may not be granted on {} (its roles: {})",
                site.name,
                site.roles.join(", ")
            ));
        }
    }
    let expires_at = match row.cell("expires_utc") {
        "" => None,
        v => match time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
            Ok(t) => {
                let at = t.unix_timestamp();
                let minutes = (at - now) / 60;
                if !(MIN_GRANT_MINUTES..=MAX_GRANT_MINUTES).contains(&minutes) {
                    errors.push(format!(
                        "expires_utc: a time-limited grant ends between {MIN_GRANT_MINUTES} minutes and {} days from now",
                        MAX_GRANT_MINUTES / 24 / 60
                    ));
                }
                Some(at)
            }
            Err(_) => {
                errors.push(format!(
                    "expires_utc: {v:?} is not a time such as 2027-01-31T18:00:00Z"
                ));
                None
            }
        },
    };
    let reason = row.cell("reason").to_string();
    if reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        errors.push("reason: at most 500 characters, no control characters".into());
    }
    if expires_at.is_some() && reason.chars().count() < 3 {
        errors.push("reason: say why this time-limited grant is needed".into());
    }
    let (Ok(email), Some(site), true) = (email, site, errors.is_empty()) else {
        return Err(errors);
    };
    let key = (email.clone(), site.id.clone(), expires_at.is_some());
    let kept = current.get(&key).and_then(|c| c.eligible.clone());
    let eligible = match (row.cell("eligible_role"), row.cell("eligible_max_minutes")) {
        ("", "") => kept,
        (r, _) if r.eq_ignore_ascii_case(NONE) => None,
        ("", _) => {
            return Err(vec![
                "eligible_role: name the higher role these minutes are for".into(),
            ])
        }
        (r, m) => {
            let minutes = match (m, &kept) {
                ("", Some((_, kept_minutes))) => *kept_minutes,
                ("", None) => {
                    return Err(vec![
                        "eligible_max_minutes: say for how many minutes at a time".into(),
                    ])
                }
                (m, _) => m.parse::<i64>().map_err(|_| {
                    vec![format!(
                        "eligible_max_minutes: {m:?} is not a number of minutes"
                    )]
                })?,
            };
            let e = check_eligibility(&role, &r.to_ascii_lowercase(), minutes, &site.roles)
                .map_err(|e| vec![format!("{}: {}", e.field, e.message)])?;
            Some((e.role, e.max_minutes))
        }
    };
    // A kept eligibility must still be above the grant's new role.
    if let Some((r, m)) = &eligible {
        check_eligibility(&role, r, *m, &site.roles).map_err(|e| {
            vec![format!(
                "{}: {} (write none to take it away)",
                e.field, e.message
            )]
        })?;
    }
    Ok(Wanted {
        email,
        site_id: site.id.clone(),
        role,
        expires_at,
        reason,
        eligible,
    })
}

/// Counts for the preview's summary line.
pub fn tally(plan: &[Planned]) -> super::import::Tally {
    use super::import::Action;
    super::import::Tally::of(plan.iter().map(|p| match p.change {
        Change::Create(_) => Action::Create,
        Change::Update { .. } => Action::Update,
        Change::Unchanged => Action::Unchanged,
        Change::Invalid(_) => Action::Invalid,
    }))
}

/// A fingerprint of what a plan would write, over the grants as they stood
/// when it was made: applying checks that it has not changed since the preview.
pub fn digest(plan: &[Planned]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in plan {
        h.update(format!("{}|{}|{}|{:?}\n", p.line, p.email, p.site_url, p.change).as_bytes());
    }
    super::audit::to_hex(&h.finalize().into())
}

/// One grant's values in [`COLUMNS`] order, as exported (before quoting).
pub fn export_cells(
    email: &str,
    site_url: &str,
    role: &str,
    expires_at: Option<i64>,
    reason: &str,
    eligible: Option<(&str, i64)>,
) -> [String; 7] {
    [
        email.to_string(),
        site_url.to_string(),
        role.to_string(),
        expires_at.map(super::audit::utc).unwrap_or_default(),
        reason.to_string(),
        eligible.map(|(r, _)| r.to_string()).unwrap_or_default(),
        eligible.map(|(_, m)| m.to_string()).unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sites::{Profile, Signing};

    const NOW: i64 = 1_800_000_000;

    fn site() -> Site {
        Site {
            id: "s1".into(),
            name: "Acme".into(),
            client: "Acme".into(),
            url: "https://acme.example".into(),
            profile: Profile::Connector,
            login_template: String::new(),
            username_claim: String::new(),
            signing: Signing::Rs256,
            has_secret: false,
            roles: [
                "administrator",
                "editor",
                "author",
                "contributor",
                "subscriber",
            ]
            .map(String::from)
            .to_vec(),
            token_lifetime: 60,
            enabled: true,
            notes: String::new(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn run(csv: &str, current: &HashMap<Key, Current>) -> Vec<Planned> {
        let sites = HashMap::from([("https://acme.example".to_string(), site())]);
        let rows = parse(csv).unwrap();
        plan(
            &rows,
            &sites,
            current,
            |e| {
                e.ends_with("@agency.example")
                    .then(|| e.to_ascii_lowercase())
                    .ok_or_else(|| "not in agency.example".to_string())
            },
            NOW,
        )
    }

    fn sam_editor(eligible: Option<(&str, i64)>) -> HashMap<Key, Current> {
        HashMap::from([(
            ("sam@agency.example".into(), "s1".into(), false),
            Current {
                id: "g1".into(),
                role: "editor".into(),
                expires_at: None,
                reason: String::new(),
                eligible: eligible.map(|(r, m)| (r.into(), m)),
            },
        )])
    }

    #[test]
    fn a_row_makes_a_grant_eligible_and_an_export_reads_back_unchanged() {
        let p = run(
            "email,site,role,eligible_role,eligible_max_minutes\nsam@agency.example,https://acme.example/,editor,administrator,120\n",
            &HashMap::new(),
        );
        let Change::Create(w) = &p[0].change else {
            panic!("{p:?}")
        };
        assert_eq!(w.eligible, Some(("administrator".into(), 120)));
        let line = export_cells(
            "sam@agency.example",
            "https://acme.example",
            "editor",
            None,
            "",
            Some(("administrator", 120)),
        )
        .join(",");
        let again = run(
            &format!("{}\n{line}\n", COLUMNS.join(",")),
            &sam_editor(Some(("administrator", 120))),
        );
        assert_eq!(again[0].change, Change::Unchanged);
    }

    #[test]
    fn empty_cells_keep_an_eligibility_and_none_takes_it_away() {
        let current = sam_editor(Some(("administrator", 60)));
        let kept = run(
            "email,site,role\nsam@agency.example,https://acme.example,editor\n",
            &current,
        );
        assert_eq!(kept[0].change, Change::Unchanged);
        let gone = run(
            "email,site,role,eligible_role\nsam@agency.example,https://acme.example,editor,none\n",
            &current,
        );
        let Change::Update { after, fields, .. } = &gone[0].change else {
            panic!("{gone:?}")
        };
        assert_eq!(after.eligible, None);
        assert_eq!(fields, &vec!["eligibility"]);
        // Raising the grant to the eligible role leaves nothing to ask for.
        let raised = run(
            "email,site,role\nsam@agency.example,https://acme.example,administrator\n",
            &current,
        );
        assert!(
            matches!(&raised[0].change, Change::Invalid(e) if e[0].contains("write none")),
            "{raised:?}"
        );
    }

    #[test]
    fn bad_rows_say_what_is_wrong_and_the_rest_still_plan() {
        let p = run(
            "email,site,role,expires_utc,reason,eligible_role,eligible_max_minutes\n\
             eve@elsewhere.example,https://acme.example,editor,,,,\n\
             sam@agency.example,https://nowhere.example,editor,,,,\n\
             sam@agency.example,https://acme.example,editor,,,shop_manager,60\n\
             sam@agency.example,https://acme.example,editor,,,administrator,2000\n\
             sam@agency.example,https://acme.example,editor,2020-01-01T00:00:00Z,old,,\n\
             sam@agency.example,https://acme.example,editor,2027-01-16T08:00:00Z,,,\n\
             sam@agency.example,https://acme.example,author,,,,\n\
             sam@agency.example,https://acme.example,editor,,,,\n",
            &HashMap::new(),
        );
        let errors: Vec<String> = p
            .iter()
            .map(|p| match &p.change {
                Change::Invalid(e) => e.join("; "),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(
            errors[0].starts_with("email: not in agency.example"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("site: no site"), "{errors:?}");
        assert!(errors[2].contains("no role \"shop_manager\""), "{errors:?}");
        assert!(errors[3].starts_with("max_minutes"), "{errors:?}");
        assert!(
            errors[4].starts_with("expires_utc: a time-limited grant"),
            "{errors:?}"
        );
        assert!(errors[5].starts_with("reason: say why"), "{errors:?}");
        assert!(errors[6].starts_with("Create"), "{errors:?}");
        assert!(errors[7].contains("the same grant as line 8"), "{errors:?}");
    }
}

//! The sites CSV: what an import reads and an export writes. Parsing and
//! planning are pure; the store applies a plan in one transaction.

use std::collections::HashMap;

use super::secrets::{MasterKeys, Secret};
use super::sites::{join_roles, normalise_url, Site, SiteInput, ValidSite};

/// Columns, in the order an export writes them. `name`, `client` and `url`
/// are required in an import; the others may be left out.
pub const COLUMNS: [&str; 11] = [
    "name",
    "client",
    "url",
    "profile",
    "login_template",
    "username_claim",
    "signing",
    "roles",
    "token_lifetime",
    "enabled",
    "notes",
];

/// The one column an import may carry and an export never writes.
pub const SECRET_COLUMN: &str = "secret";

/// Bounds: one import is one transaction, which must stay short.
pub const MAX_BYTES: usize = 1024 * 1024;
pub const MAX_ROWS: usize = 5_000;

/// One row as read: its line in the file and its cells by column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub cells: HashMap<String, String>,
}

impl Row {
    pub fn cell(&self, column: &str) -> &str {
        self.cells.get(column).map(|s| s.trim()).unwrap_or("")
    }

    /// The row's site URL, as written.
    pub fn url(&self) -> &str {
        self.cell("url")
    }
}

/// A problem with the whole file: nothing in it is imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than {} MB", MAX_BYTES / 1024 / 1024)]
    TooLarge,
    #[error("the file is empty: its first line must name the columns ({0})")]
    Empty(String),
    #[error("the file has more than {MAX_ROWS} rows: split it")]
    TooManyRows,
    #[error("the first line must name the columns; it lacks {0}")]
    MissingColumns(String),
    #[error("unknown column(s) {0}: the columns are {1}")]
    UnknownColumns(String, String),
    #[error("column {0} appears twice")]
    DuplicateColumn(String),
    #[error("line {line}: {message}")]
    Unreadable { line: u64, message: String },
}

/// Read the sites CSV: a header naming the columns, then one site per row.
pub fn parse(text: &str) -> Result<Vec<Row>, FileError> {
    let mut known = COLUMNS.to_vec();
    known.push(SECRET_COLUMN);
    parse_columns(text, &known, &["name", "client", "url"])
}

/// Read a CSV whose header names some of `known` (all of `required`) in any
/// order, then one record per row; blank rows are skipped.
pub fn parse_columns(text: &str, known: &[&str], required: &[&str]) -> Result<Vec<Row>, FileError> {
    if text.len() > MAX_BYTES {
        return Err(FileError::TooLarge);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| unreadable(&e))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(FileError::Empty(known.join(",")));
    }
    let unknown: Vec<&str> = headers
        .iter()
        .filter(|h| !known.contains(&h.as_str()))
        .map(|h| h.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(FileError::UnknownColumns(
            unknown.join(", "),
            known.join(", "),
        ));
    }
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err(FileError::DuplicateColumn(h.clone()));
        }
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns(missing.join(", ")));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(&e))?;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let cells = headers
            .iter()
            .cloned()
            .zip(record.iter().map(without_formula_guard))
            .collect();
        rows.push(Row { line, cells });
    }
    Ok(rows)
}

/// An export puts `'` before a cell a spreadsheet would run as a formula;
/// reading such a cell back takes it off, so an export imports unchanged.
fn without_formula_guard(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if super::audit::needs_formula_guard(rest) => rest.to_string(),
        _ => cell.to_string(),
    }
}

fn unreadable(e: &csv::Error) -> FileError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} cells where the first line names {expected_len} columns"),
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text".to_string(),
        _ => "cannot be read as CSV".to_string(),
    };
    FileError::Unreadable { line, message }
}

/// What importing one row would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create(ValidSite, bool),
    /// The site's id, its version as planned, the site after, whether
    /// enabled after, and the fields that change.
    Update {
        id: String,
        version: i64,
        site: ValidSite,
        enabled: bool,
        fields: Vec<&'static str>,
    },
    Unchanged,
    Invalid(Vec<String>),
}

/// One row's plan, for the preview and for applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub line: u64,
    pub url: String,
    pub name: String,
    pub change: Change,
}

/// Decide what each row does against the sites that exist now (looked up
/// by normalised URL). A cell left empty keeps an existing site's value (a
/// new site gets the default).
pub fn plan(rows: &[Row], existing: &HashMap<String, Site>) -> Vec<Planned> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    rows.iter()
        .map(|row| {
            let url = normalise_url(row.cell("url")).unwrap_or_else(|_| row.cell("url").into());
            let mut planned = Planned {
                line: row.line,
                url: url.clone(),
                name: row.cell("name").to_string(),
                change: Change::Unchanged,
            };
            if let Some(first) = seen.get(&url) {
                planned.change = Change::Invalid(vec![format!(
                    "url: the same site as line {first}; each site may appear once"
                )]);
                return planned;
            }
            seen.insert(url.clone(), row.line);
            planned.change = plan_row(row, existing.get(&url));
            planned
        })
        .collect()
}

fn plan_row(row: &Row, current: Option<&Site>) -> Change {
    let enabled = match row.cell("enabled").to_ascii_lowercase().as_str() {
        "" => current.is_none_or(|s| s.enabled),
        "true" | "yes" | "1" => true,
        "false" | "no" | "0" => false,
        other => return Change::Invalid(vec![format!("enabled: {other:?} is not true or false")]),
    };
    let lifetime = match row.cell("token_lifetime") {
        "" => current.map(|s| s.token_lifetime),
        v => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Change::Invalid(vec![format!(
                    "token_lifetime: {v:?} is not a number of seconds"
                )])
            }
        },
    };
    let keep = |column: &str, current: Option<String>| -> String {
        match (row.cell(column), current) {
            ("", Some(c)) => c,
            (v, _) => v.to_string(),
        }
    };
    let input = SiteInput {
        name: row.cell("name").to_string(),
        client: row.cell("client").to_string(),
        url: row.cell("url").to_string(),
        profile: keep("profile", current.map(|s| s.profile.as_str().to_string())),
        login_template: keep("login_template", current.map(|s| s.login_template.clone())),
        username_claim: keep("username_claim", current.map(|s| s.username_claim.clone())),
        signing: keep("signing", current.map(|s| s.signing.as_str().to_string())),
        secret: Some(Secret::new(row.cell(SECRET_COLUMN))),
        roles: keep("roles", current.map(|s| join_roles(&s.roles)))
            .split([' ', ',', ';'])
            .map(str::to_string)
            .collect(),
        token_lifetime: lifetime,
        notes: keep("notes", current.map(|s| s.notes.clone())),
    };
    let valid = match input.validate_keeping(current.is_some_and(|s| s.has_secret)) {
        Ok(v) => v,
        Err(errors) => {
            return Change::Invalid(
                errors
                    .into_iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect(),
            )
        }
    };
    let Some(site) = current else {
        return Change::Create(valid, enabled);
    };
    let mut fields = Vec::new();
    let mut differs = |field: &'static str, changed: bool| {
        if changed {
            fields.push(field);
        }
    };
    differs("name", valid.name != site.name);
    differs("client", valid.client != site.client);
    differs("profile", valid.profile != site.profile);
    differs(
        "login_template",
        valid.login_template != site.login_template,
    );
    differs(
        "username_claim",
        valid.username_claim != site.username_claim,
    );
    differs("signing", valid.signing != site.signing);
    differs("secret", valid.secret.is_some());
    differs("roles", valid.roles != site.roles);
    differs(
        "token_lifetime",
        valid.token_lifetime != site.token_lifetime,
    );
    differs("enabled", enabled != site.enabled);
    differs("notes", valid.notes != site.notes);
    if fields.is_empty() {
        return Change::Unchanged;
    }
    Change::Update {
        id: site.id.clone(),
        version: site.version,
        site: valid,
        enabled,
        fields,
    }
}

/// Counts for the preview's summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub invalid: usize,
}

pub fn tally(plan: &[Planned]) -> Tally {
    Tally::of(plan.iter().map(|p| match p.change {
        Change::Create(..) => Action::Create,
        Change::Update { .. } => Action::Update,
        Change::Unchanged => Action::Unchanged,
        Change::Invalid(_) => Action::Invalid,
    }))
}

/// What a row of an import does, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Invalid,
}

impl Tally {
    /// Count the rows' actions.
    pub fn of(actions: impl Iterator<Item = Action>) -> Tally {
        let mut t = Tally::default();
        for a in actions {
            match a {
                Action::Create => t.create += 1,
                Action::Update => t.update += 1,
                Action::Unchanged => t.unchanged += 1,
                Action::Invalid => t.invalid += 1,
            }
        }
        t
    }
}

/// A fingerprint of what a plan would write: applying checks that the plan
/// made again in its transaction is the one the admin previewed. It goes to
/// the browser and the audit log, so a secret enters it only as a digest
/// keyed under the master key (sites print theirs as `<redacted>`).
pub fn digest(plan: &[Planned], masters: &MasterKeys) -> String {
    use sha2::{Digest, Sha256};
    let secret = |s: &ValidSite| {
        s.secret
            .as_ref()
            .map(|v| masters.keyed_digest("import-digest-secret", v.expose().as_bytes()))
            .unwrap_or_default()
    };
    let mut h = Sha256::new();
    for p in plan {
        let line = match &p.change {
            Change::Create(s, on) => format!("{}|create|{s:?}|{}|{on}", p.line, secret(s)),
            Change::Update {
                id,
                version,
                site,
                enabled,
                ..
            } => format!(
                "{}|update|{id}|{version}|{site:?}|{}|{enabled}",
                p.line,
                secret(site)
            ),
            Change::Unchanged => format!("{}|unchanged|{}", p.line, p.url),
            Change::Invalid(e) => format!("{}|invalid|{}", p.line, e.join(";")),
        };
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    super::audit::to_hex(&h.finalize().into())
}

/// One site as an export line (the secret is never written): every cell
/// quoted and neutralised against spreadsheet formulas.
pub fn export_row(s: &Site) -> String {
    use super::audit::csv_cell;
    export_cells(s)
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

/// One site's values in [`COLUMNS`] order, as exported (before quoting).
pub fn export_cells(s: &Site) -> [String; 11] {
    [
        s.name.clone(),
        s.client.clone(),
        s.url.clone(),
        s.profile.as_str().to_string(),
        s.login_template.clone(),
        s.username_claim.clone(),
        s.signing.as_str().to_string(),
        join_roles(&s.roles),
        s.token_lifetime.to_string(),
        s.enabled.to_string(),
        s.notes.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sites::{Profile, Signing};

    fn site(url: &str) -> Site {
        Site {
            id: "s1".into(),
            name: "Acme shop".into(),
            client: "Acme".into(),
            url: url.into(),
            profile: Profile::TwlSso,
            login_template: Profile::TwlSso.default_login_template().into(),
            username_claim: "username".into(),
            signing: Signing::Rs256,
            has_secret: false,
            roles: crate::domain::sites::CORE_ROLES
                .iter()
                .map(|r| r.to_string())
                .collect(),
            token_lifetime: 60,
            enabled: true,
            notes: String::new(),
            version: 3,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn header_problems_stop_the_whole_file() {
        assert!(matches!(parse(""), Err(FileError::Empty(c)) if c.starts_with("name,client,url")));
        assert_eq!(
            parse("name,url\nA,https://a.example\n"),
            Err(FileError::MissingColumns("client".into()))
        );
        assert!(matches!(
            parse("name,client,url,colour\n"),
            Err(FileError::UnknownColumns(c, _)) if c == "colour"
        ));
        assert_eq!(
            parse("name,client,url,url\n"),
            Err(FileError::DuplicateColumn("url".into()))
        );
        assert_eq!(
            parse("name,client,url\nA,B\n"),
            Err(FileError::Unreadable {
                line: 2,
                message: "has 2 cells where the first line names 3 columns".into()
            })
        );
    }

    #[test]
    fn each_row_is_planned_against_what_exists() {
        let text = "\u{feff}Name,Client,URL,roles,enabled\n\
                    Acme shop,Acme,https://ACME.example/,,\n\
                    Acme blog,Acme,https://blog.acme.example,editor author,no\n\
                    Renamed,Acme,https://acme.example,,\n\
                    ,Acme,not a url,,\n\
                    Bad roles,Acme,https://x.example,\"Editor!\",maybe\n\
                    \n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 5);
        let existing = HashMap::from([(
            "https://acme.example".to_string(),
            site("https://acme.example"),
        )]);
        let plan = plan(&rows, &existing);
        assert_eq!(plan[0].change, Change::Unchanged);
        assert!(
            matches!(&plan[1].change, Change::Create(s, false) if s.roles == ["editor", "author"])
        );
        assert_eq!(plan[1].line, 3);
        match &plan[2].change {
            Change::Invalid(e) => assert!(e[0].contains("same site as line 2"), "{e:?}"),
            other => panic!("{other:?}"),
        }
        match &plan[3].change {
            Change::Invalid(e) => {
                assert!(e.iter().any(|m| m.starts_with("name:")), "{e:?}");
                assert!(e.iter().any(|m| m.starts_with("url:")), "{e:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&plan[4].change, Change::Invalid(e) if e[0].starts_with("enabled:")));
        assert_eq!(
            tally(&plan),
            Tally {
                create: 1,
                update: 0,
                unchanged: 1,
                invalid: 3
            }
        );
    }

    #[test]
    fn an_update_names_its_fields_and_empty_cells_keep_values() {
        let rows = parse(
            "name,client,url,token_lifetime,notes\nAcme shop,Acme Ltd,https://acme.example,120,\n",
        )
        .unwrap();
        let mut current = site("https://acme.example");
        current.notes = "kept".into();
        let existing = HashMap::from([(current.url.clone(), current)]);
        let plan = plan(&rows, &existing);
        match &plan[0].change {
            Change::Update {
                fields,
                site,
                version,
                ..
            } => {
                assert_eq!(fields, &["client", "token_lifetime"]);
                assert_eq!(site.notes, "kept");
                assert_eq!(*version, 3);
            }
            other => panic!("{other:?}"),
        }
        let masters = masters();
        let d1 = digest(&plan, &masters);
        assert_eq!(d1, digest(&plan, &masters));
        let mut moved = existing.clone();
        moved.get_mut("https://acme.example").unwrap().version = 4;
        assert_ne!(d1, digest(&super::plan(&rows, &moved), &masters));
    }

    fn masters() -> MasterKeys {
        use crate::domain::secrets::MasterKey;
        MasterKeys::new(MasterKey::new([9; 32]), vec![])
    }

    #[test]
    fn the_digest_tells_secrets_apart_without_hashing_them_plainly() {
        let csv = |secret: &str| {
            format!(
                "name,client,url,profile,secret\nShop,Acme,https://shop.example,miniorange,{secret}\n"
            )
        };
        let plan_of = |secret: &str| plan(&parse(&csv(secret)).unwrap(), &HashMap::new());
        let secret = "correct horse battery staple 32+ chars";
        let planned = plan_of(secret);
        let Change::Create(site, _) = &planned[0].change else {
            panic!("{:?}", planned[0].change)
        };
        // The site prints its secret redacted, so nothing the digest formats holds it.
        assert!(!format!("{site:?}").contains("horse"), "{site:?}");
        let masters = masters();
        let d = digest(&planned, &masters);
        // Another secret, another digest (the apply must match the preview) ...
        assert_ne!(
            d,
            digest(
                &plan_of("another secret also 32+ characters long"),
                &masters
            )
        );
        // ... but not one anybody can recompute from a guessed secret alone.
        let unkeyed = {
            use sha2::{Digest, Sha256};
            let line = format!("2|create|{site:?}|{secret}|true\n");
            format!("{:x}", Sha256::digest(line.as_bytes()))
        };
        assert_ne!(d, unkeyed);
        let other = MasterKeys::new(crate::domain::secrets::MasterKey::new([8; 32]), vec![]);
        assert_ne!(d, digest(&planned, &other));
    }

    #[test]
    fn exports_never_carry_secrets_or_live_formulas() {
        let mut s = site("https://acme.example");
        s.name = "=HYPERLINK(\"http://evil\")".into();
        s.has_secret = true;
        let line = export_row(&s);
        assert!(line.starts_with("\"'=HYPERLINK"), "{line}");
        let rows = parse(&format!("{}\n{line}\n", COLUMNS.join(","))).unwrap();
        assert_eq!(rows[0].cells.len(), COLUMNS.len());
        assert_eq!(rows[0].cell("url"), "https://acme.example");
        // Read back as it was: an export imports unchanged.
        assert_eq!(rows[0].cell("name"), "=HYPERLINK(\"http://evil\")");
        // A cell that merely starts with a quote keeps it.
        let rows = parse("name,client,url\n'quoted',C,https://q.example\n").unwrap();
        assert_eq!(rows[0].cell("name"), "'quoted'");
    }

    // Found with fuzz/fuzz_targets/csv_import.rs: a value that itself
    // starts with a quote mark before `= + - @` was exported unguarded and
    // lost that quote mark on import (`'=x` came back as `=x`).
    #[test]
    fn values_starting_with_a_quote_mark_import_unchanged() {
        for value in ["'=x", "'-5 kg", "''@a", "'quoted'", "it's"] {
            let mut s = site("https://acme.example");
            s.name = value.into();
            s.notes = value.into();
            let rows = parse(&format!("{}\n{}\n", COLUMNS.join(","), export_row(&s))).unwrap();
            assert_eq!(rows[0].cell("name"), value);
            assert_eq!(rows[0].cell("notes"), value);
            let existing = HashMap::from([(s.url.clone(), s)]);
            assert_eq!(
                plan(&rows, &existing)[0].change,
                Change::Unchanged,
                "{value}"
            );
        }
    }
}

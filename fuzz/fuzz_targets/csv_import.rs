//! The sites CSV. The first byte picks what the rest is:
//!
//! - even: a file to import. `parse` never panics and keeps its bounds;
//!   `plan` against existing sites never panics, plans each row once, only
//!   creates or updates sites under their normalised URL, and planning the
//!   same file again gives the same digest (applying relies on that).
//! - odd: a site form, fields separated by NUL bytes (name, client, url,
//!   profile, login template, username claim, signing, secret, roles,
//!   token lifetime, notes, enabled). If it validates, the export line of
//!   the stored site imports unchanged (README: "an export is a valid
//!   import"): it parses to one row whose cells are the site's values, and
//!   planned against that site it changes nothing.
#![no_main]

use std::collections::HashMap;

use agency_sso::domain::import::{self, Change, COLUMNS, MAX_ROWS, SECRET_COLUMN};
use agency_sso::domain::sites::{normalise_url, Profile, Signing, Site, SiteInput, CORE_ROLES};
use libfuzzer_sys::fuzz_target;

fn existing() -> HashMap<String, Site> {
    let twl = Site {
        id: "s1".into(),
        name: "Acme shop".into(),
        client: "Acme".into(),
        url: "https://acme.example".into(),
        profile: Profile::TwlSso,
        login_template: Profile::TwlSso.default_login_template().into(),
        username_claim: "username".into(),
        signing: Signing::Rs256,
        has_secret: false,
        roles: CORE_ROLES.iter().map(|r| r.to_string()).collect(),
        token_lifetime: 60,
        enabled: true,
        notes: String::new(),
        version: 3,
        created_at: 0,
        updated_at: 0,
    };
    let mo = Site {
        id: "s2".into(),
        name: "Mo shop".into(),
        url: "https://mo.example/shop".into(),
        profile: Profile::MiniOrange,
        login_template: Profile::MiniOrange.default_login_template().into(),
        signing: Signing::Hs256,
        has_secret: true,
        enabled: false,
        version: 7,
        ..twl.clone()
    };
    [twl, mo].into_iter().map(|s| (s.url.clone(), s)).collect()
}

fn import_file(text: &str) {
    let Ok(rows) = import::parse(text) else {
        return;
    };
    assert!(rows.len() <= MAX_ROWS);
    for row in &rows {
        for column in row.cells.keys() {
            assert!(
                COLUMNS.contains(&column.as_str()) || column == SECRET_COLUMN,
                "unknown column {column:?} kept"
            );
        }
    }
    let existing = existing();
    let plan = import::plan(&rows, &existing);
    assert_eq!(plan.len(), rows.len());
    let t = import::tally(&plan);
    assert_eq!(t.create + t.update + t.unchanged + t.invalid, rows.len());
    for p in &plan {
        match &p.change {
            Change::Create(site, _) => {
                assert_eq!(site.url, p.url);
                assert_eq!(normalise_url(&site.url).as_deref(), Ok(site.url.as_str()));
                assert!(
                    !existing.contains_key(&site.url),
                    "creates {:?} again",
                    site.url
                );
            }
            Change::Update {
                id, site, fields, ..
            } => {
                assert_eq!(site.url, p.url);
                assert_eq!(existing.get(&site.url).map(|s| &s.id), Some(id));
                assert!(!fields.is_empty());
            }
            Change::Unchanged => assert!(existing.contains_key(&p.url)),
            Change::Invalid(errors) => assert!(!errors.is_empty()),
        }
    }
    // The apply step parses and plans again and compares digests.
    let again = import::plan(&import::parse(text).expect("parsed once"), &existing);
    assert_eq!(import::digest(&plan), import::digest(&again));
}

fn export_round_trip(text: &str) {
    let mut f = text.split('\0');
    let mut next = || f.next().unwrap_or("").to_string();
    let input = SiteInput {
        name: next(),
        client: next(),
        url: next(),
        profile: next(),
        login_template: next(),
        username_claim: next(),
        signing: next(),
        secret: Some(next()),
        roles: next().split(' ').map(str::to_string).collect(),
        token_lifetime: next().trim().parse().ok(),
        notes: next(),
    };
    let enabled = next().is_empty();
    let Ok(v) = input.validate() else {
        return;
    };
    let site = Site {
        id: "s1".into(),
        name: v.name,
        client: v.client,
        url: v.url,
        profile: v.profile,
        login_template: v.login_template,
        username_claim: v.username_claim,
        signing: v.signing,
        has_secret: v.secret.is_some(),
        roles: v.roles,
        token_lifetime: v.token_lifetime,
        enabled,
        notes: v.notes,
        version: 1,
        created_at: 0,
        updated_at: 0,
    };
    let line = import::export_row(&site);
    let file = format!("{}\n{line}\n", COLUMNS.join(","));
    let rows = import::parse(&file)
        .unwrap_or_else(|e| panic!("the export of {site:?} is not an import file: {e}\n{file}"));
    assert_eq!(rows.len(), 1, "{file}");
    let exported = import::export_cells(&site);
    assert_eq!(rows[0].cells.len(), COLUMNS.len(), "{file}");
    for (column, value) in COLUMNS.iter().zip(&exported) {
        assert_eq!(
            &rows[0].cells[*column], value,
            "{column} read back from\n{file}"
        );
    }
    let existing = HashMap::from([(site.url.clone(), site.clone())]);
    let plan = import::plan(&rows, &existing);
    assert_eq!(
        plan[0].change,
        Change::Unchanged,
        "the export of {site:?} does not import unchanged\n{file}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if mode % 2 == 0 {
        import_file(&text);
    } else {
        export_round_trip(&text);
    }
});

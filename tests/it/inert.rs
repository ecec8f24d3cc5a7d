//! Hostile text stays text. Script and HTML typed into any field (site
//! name, client, notes, login template, team name and description, grant
//! reasons, CSV import cells, search boxes) or sent by the identity
//! provider as a person's name is shown literally on every page, never as
//! an element, event handler or `javascript:` link; control characters are
//! refused by field with words, or kept off the terminal; and every CSV
//! export (sites, audit log from the web and the command line) neutralises
//! cells a spreadsheet would run as a formula, while JSON keeps the values
//! exactly.

use std::collections::HashMap;

use agency_sso::domain::audit::CSV_HEADER;
use agency_sso::domain::import::COLUMNS;
use agency_sso::store;
use serde_json::{json, Value};

use crate::idp::Signing;
use crate::on_both_databases;
use crate::support::{
    create_team, import_apply, import_preview, page_text, run_ok, server_fn as call, Backend,
    Browser, TestApp,
};

const ADMIN: &str = "boss@agency.test";
const STAFF: &str = "sam@agency.test";

const SCRIPT: &str = "<script>alert(1)</script>";
const BREAKOUT: &str = "\"><img src=x onerror=alert(1)>";

// A site typed into the console's form.
const NAME: &str = "<script>alert(1)</script> Shop";
const CLIENT: &str = "\"><img src=x onerror=alert(1)> Ltd";
const TEMPLATE: &str = "/wp-login.php?action=twl_sso&token={token}&x=\"><svg/onload=alert(1)>";
const NOTES: &str = "javascript:alert(1)\n</textarea><script>alert(2)</script>";
/// The part of the notes every page must show (whitespace folded).
const NOTES_SHOWN: &str = "javascript:alert(1) </textarea><script>alert(2)</script>";
const REASON: &str = "<script>alert(3)</script>";
const TEAM: &str = "<script>alert(4)</script> crew";
const TEAM_ABOUT: &str = "\"><img src=x onerror=alert(5)> on call";
const TEAM_REASON: &str = "javascript:alert(6)";

// Cells a spreadsheet would run.
const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"open\")";
const CMD: &str = "+cmd|' /C calc'!A0";
const FORMULA_REASON: &str = "=2+5+cmd|' /C calc'!A0";
const AGENT: &str = "-2+3+cmd|' /C calc'!A0";
const ONE: &str = "https://one.formula.example";
const TWO: &str = "https://two.formula.example";
const THREE: &str = "https://three.formula.example";

// A name as the identity provider sends it: markup, terminal escapes, a bell
// and a right-to-left override.
const PERSON: &str =
    "Ann <script>alert(1)</script> \"><img src=x onerror=alert(1)> \u{1b}[31mRed\u{7} \u{202e}nnA";
/// The part of it every page must show.
const PERSON_SHOWN: &str = "Ann <script>alert(1)</script> \"><img src=x onerror=alert(1)>";

/// The site form as the console posts it for a new site.
fn site_form<'a>(
    name: &'a str,
    client: &'a str,
    url: &'a str,
    template: &'a str,
    notes: &'a str,
) -> Vec<(&'a str, &'a str)> {
    crate::support::site_form(&[
        ("name", name),
        ("client", client),
        ("url", url),
        ("login_template", template),
        ("notes", notes),
    ])
}

/// The (field, message) pairs of a 422 answer.
fn problems(body: &Value) -> Vec<(String, String)> {
    body["Invalid"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    (
                        p["field"].as_str().unwrap_or_default().to_string(),
                        p["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect::<Vec<(String, String)>>()
        })
        .unwrap_or_default()
}

/// Make Sam an editor of `site`, with `reason` for the record.
async fn grant_editor(app: &TestApp, boss: &Browser, site: &str, reason: &str) {
    let (status, body) = call(
        app,
        boss,
        "admin_grant",
        &[
            ("site", site),
            ("email", STAFF),
            ("role", "editor"),
            ("duration", ""),
            ("reason", reason),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Come back from the provider with an ID token whose `name` is `name`.
async fn sign_in_named(app: &TestApp, b: &Browser, email: &str, name: &str) -> reqwest::Response {
    let attempt = app.begin(b).await;
    let mut claims = app.idp.claims(email, &attempt.nonce);
    claims["name"] = json!(name);
    app.finish(b, &attempt, claims, Signing::Rs256).await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Fetch a page and check that nothing in it came from data as markup: no
/// element a page never has (img, svg, ...), no event-handler attribute, no
/// `javascript:` address, and every script carries this response's CSP
/// nonce (stored text cannot know it). Each of `shown` must be visible as
/// plain text. Returns the HTML.
async fn inert_page(app: &TestApp, b: &Browser, path: &str, shown: &[&str]) -> String {
    let res = b.get(app.at(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("{path}: no script nonce in {csp}"))
        .to_string();
    let html = res.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let every = scraper::Selector::parse("*").unwrap();
    for el in doc.select(&every) {
        let e = el.value();
        assert!(
            !matches!(e.name(), "img" | "svg" | "iframe" | "object" | "embed"),
            "{path}: text became an <{}> element: {}",
            e.name(),
            el.html()
        );
        if e.name() == "script" && (e.attr("src").is_some() || !el.inner_html().trim().is_empty()) {
            assert_eq!(
                e.attr("nonce"),
                Some(nonce.as_str()),
                "{path}: a script the page's policy would not let run came from data: {}",
                el.html()
            );
        }
        for (name, value) in e.attrs() {
            assert!(
                !name.starts_with("on"),
                "{path}: text became an event handler {name}={value:?}: {}",
                el.html()
            );
            if matches!(name, "href" | "src" | "action" | "formaction") {
                // Browsers ignore whitespace and control characters inside a scheme.
                let squeezed = value
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_ascii_lowercase();
                assert!(
                    !squeezed.starts_with("javascript:"),
                    "{path}: text became a javascript: address: {}",
                    el.html()
                );
            }
        }
    }
    let text = page_text(&html);
    for s in shown {
        assert!(
            text.contains(s),
            "{path}: {s:?} is not shown as text: {text}"
        );
    }
    html
}

/// The `attr` of every element matching `css`.
fn attrs_of(html: &str, css: &str, attr: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(css).unwrap();
    let mut found = Vec::new();
    for e in doc.select(&sel) {
        if let Some(v) = e.value().attr(attr) {
            found.push(v.to_string());
        }
    }
    found
}

/// An export as the browser receives it: a download, never a page to render.
async fn download(app: &TestApp, b: &Browser, path: &str, content_type: &str) -> String {
    let res = b.get(app.at(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let h = res.headers();
    assert_eq!(h["content-type"], content_type, "{path}");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"),
        "{path}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    res.text().await.unwrap()
}

/// Parse a CSV export (header first) and check the spreadsheet rule on
/// every cell: none starts with `= + - @`, a tab or a carriage return (the
/// export puts a `'` before such a cell, so it reads as text).
fn inert_csv(text: &str, what: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{what} is not valid CSV: {e}"))
                .iter()
                .map(str::to_string)
                .collect::<Vec<String>>()
        })
        .collect();
    assert!(rows.len() > 1, "{what}: {text}");
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{what}: a spreadsheet would run the cell {cell:?}"
            );
        }
    }
    rows
}

/// The rows after the header, each as column → cell.
fn by_column(rows: &[Vec<String>]) -> Vec<HashMap<String, String>> {
    rows[1..]
        .iter()
        .map(|r| -> HashMap<String, String> {
            rows[0].iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

fn site_row<'a>(rows: &'a [HashMap<String, String>], url: &str) -> &'a HashMap<String, String> {
    rows.iter()
        .find(|r| r["url"] == url)
        .unwrap_or_else(|| panic!("no row for {url}"))
}

fn record<'a>(
    rows: &'a [HashMap<String, String>],
    event: &str,
    site_url: &str,
) -> &'a HashMap<String, String> {
    rows.iter()
        .find(|r| r["event"] == event && r["site_url"] == site_url)
        .unwrap_or_else(|| panic!("no {event} record of {site_url}"))
}

/// The audit log as CSV (from the web or the command line), after the
/// activity of the export test.
fn check_audit_csv(text: &str, what: &str) {
    let rows = inert_csv(text, what);
    assert_eq!(rows[0].join(","), CSV_HEADER, "{what}");
    let records = by_column(&rows);
    let created = record(&records, "site_created", ONE);
    assert_eq!(created["client"], format!("'{CMD}"), "{what}");
    let detail: Value = serde_json::from_str(&created["detail"]).unwrap();
    assert_eq!(
        detail["after"]["name"], FORMULA,
        "{what}: inside the JSON detail"
    );
    assert_eq!(
        record(&records, "grant_set", ONE)["reason"],
        format!("'{FORMULA_REASON}"),
        "{what}"
    );
    let launched = record(&records, "launch", ONE);
    assert_eq!(launched["user_agent"], format!("'{AGENT}"), "{what}");
    assert_eq!(launched["client"], format!("'{CMD}"), "{what}");
    // Markup needs nothing in a CSV: kept exactly.
    assert_eq!(
        record(&records, "site_created", THREE)["client"],
        BREAKOUT,
        "{what}"
    );
}

/// Terminal output carries no control character but line ends: an ESC or
/// a BEL from stored text would drive the admin's terminal.
fn assert_terminal_safe(out: &str, what: &str) {
    let raw: Vec<char> = out
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        raw.is_empty(),
        "{what} writes raw control characters {raw:?} to the terminal: {out:?}"
    );
}

async fn site_and_team_text_is_shown_inert_on_every_page(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let sam = app.signed_in(STAFF).await;

    // Control characters are refused, each field named with words, and nothing is written.
    let before = store::audit::count(&app.state.db).await.unwrap();
    let (status, body) = call(
        &app,
        &boss,
        "admin_save_site",
        &site_form(
            "Red \u{1b}[31malert\u{7}",
            "Acme\u{0}",
            "https://refused.example",
            "",
            "one\r\ntwo",
        ),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let got = problems(&body);
    let got: Vec<(&str, &str)> = got.iter().map(|(f, m)| (f.as_str(), m.as_str())).collect();
    assert_eq!(
        got,
        [
            ("name", "The site name contains control characters."),
            ("client", "The client contains control characters."),
            ("notes", "The notes contains control characters."),
        ]
    );
    // A right-to-left override (it would show "exe.txt" as "txt.exe") too.
    let (status, body) = call(
        &app,
        &boss,
        "admin_save_site",
        &site_form(
            "Invoice \u{202e}exe.txt",
            "Acme",
            "https://refused.example",
            "",
            "",
        ),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(problems(&body)[0].0, "name", "{body}");
    for (name, about, field) in [
        ("Crew \u{1b}[2J", "", "name"),
        ("Crew \u{2066}", "", "name"),
        ("Crew", "one\r\ntwo", "description"),
    ] {
        let (status, body) = call(
            &app,
            &boss,
            "admin_create_team",
            &[("name", name), ("description", about)],
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let got = problems(&body);
        assert_eq!(got.len(), 1, "{body}");
        assert_eq!(got[0].0, field, "{body}");
        assert!(!got[0].1.is_empty(), "a message for {field}: {body}");
    }
    assert!(store::sites::list(&app.state.db).await.unwrap().is_empty());
    assert!(store::teams::list(&app.state.db).await.unwrap().is_empty());
    assert_eq!(store::audit::count(&app.state.db).await.unwrap(), before);

    // Markup in every free-text field is accepted as text.
    let (status, site) = call(
        &app,
        &boss,
        "admin_save_site",
        &site_form(
            NAME,
            CLIENT,
            "https://shop.hostile.example",
            TEMPLATE,
            NOTES,
        ),
    )
    .await;
    assert_eq!(status, 200, "{site}");
    assert_eq!(site["name"], NAME);
    let site_id = site["id"].as_str().unwrap().to_string();
    grant_editor(&app, &boss, &site_id, REASON).await;
    let team_id = create_team(&app, &boss, TEAM, TEAM_ABOUT).await;
    let (status, body) = call(
        &app,
        &boss,
        "admin_add_members",
        &[("team", team_id.as_str()), ("emails", STAFF)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let target = format!("client:{CLIENT}");
    let (status, body) = call(
        &app,
        &boss,
        "admin_grant_team",
        &[
            ("team", team_id.as_str()),
            ("target", target.as_str()),
            ("site", ""),
            ("role", "author"),
            ("duration", ""),
            ("reason", TEAM_REASON),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sam_id = store::people::find_by_email(&app.state.db, STAFF)
        .await
        .unwrap()[0]
        .id
        .clone();

    // Every page that shows these values shows them as text.
    let team_from = format!("Team {TEAM}");
    let every_site = format!("Every site of {CLIENT}");
    let html = inert_page(&app, &sam, "/", &[NAME, CLIENT]).await;
    let labels = attrs_of(&html, "[aria-label]", "aria-label");
    assert!(labels.contains(&format!("Open {NAME}")), "{labels:?}");
    inert_page(&app, &sam, "/activity", &[CLIENT, REASON]).await;

    let html = inert_page(&app, &boss, "/admin/sites", &[NAME, CLIENT]).await;
    let labels = attrs_of(&html, "[aria-label]", "aria-label");
    assert!(labels.contains(&format!("Select {NAME}")), "{labels:?}");
    assert!(attrs_of(&html, "select#s-client option", "value").contains(&CLIENT.to_string()));

    let html = inert_page(
        &app,
        &boss,
        &format!("/admin/sites/{site_id}"),
        &[NAME, NOTES_SHOWN, &team_from, REASON],
    )
    .await;
    // The edit form gives back exactly what was typed, attributes included.
    assert_eq!(attrs_of(&html, "input#site-name", "value"), [NAME]);
    assert_eq!(attrs_of(&html, "input#site-client", "value"), [CLIENT]);
    assert_eq!(attrs_of(&html, "input#site-login", "value"), [TEMPLATE]);

    inert_page(&app, &boss, "/admin/teams", &[TEAM, TEAM_ABOUT]).await;
    let html = inert_page(
        &app,
        &boss,
        &format!("/admin/teams/{team_id}"),
        &[TEAM, TEAM_ABOUT, &every_site, TEAM_REASON],
    )
    .await;
    let labels = attrs_of(&html, "[aria-label]", "aria-label");
    assert!(
        labels.contains(&format!("Revoke the team's grant on {every_site}")),
        "{labels:?}"
    );
    inert_page(
        &app,
        &boss,
        &format!("/admin/people/{sam_id}"),
        &[NAME, CLIENT, TEAM],
    )
    .await;
    // The audit log, the JSON detail of each record included.
    inert_page(
        &app,
        &boss,
        "/audit",
        &[NAME, CLIENT, TEAM, REASON, TEAM_REASON],
    )
    .await;

    // Search boxes give back what was typed, as text; the audit log names a
    // site it cannot find in words.
    let reflected = [
        (
            format!("/admin/sites?q={}", urlencode(BREAKOUT)),
            "input#s-q",
            BREAKOUT,
        ),
        (
            format!("/admin/people?q={}", urlencode(SCRIPT)),
            "input#p-q",
            SCRIPT,
        ),
        (
            format!("/admin/sessions?q={}", urlencode(BREAKOUT)),
            "input#sess-q",
            BREAKOUT,
        ),
        (
            format!(
                "/audit?client={}&site={}",
                urlencode(BREAKOUT),
                urlencode(SCRIPT)
            ),
            "input#f-site",
            SCRIPT,
        ),
    ];
    for (path, input, typed) in &reflected {
        let shown: &[&str] = if path.starts_with("/audit") {
            &[SCRIPT]
        } else {
            &[]
        };
        let html = inert_page(&app, &boss, path, shown).await;
        assert_eq!(attrs_of(&html, input, "value"), [*typed], "{path}");
    }
}

async fn csv_cells_are_checked_on_import_and_neutralised_in_every_export(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;

    // An import written by a CSV library, as a spreadsheet would save it.
    let mut written: Vec<u8> = Vec::new();
    let mut w = csv::Writer::from_writer(&mut written);
    let lines: [[&str; 4]; 8] = [
        ["name", "client", "url", "notes"],
        [FORMULA, CMD, ONE, "@SUM(A1)"],
        ["-1+1", "@SUM(A1)", TWO, "\t=1+1"],
        [SCRIPT, BREAKOUT, THREE, "line one\nline two"],
        ["\u{1b}[31mRed", "Acme", "https://four.formula.example", ""],
        ["Bell", "Acme\u{7}", "https://five.formula.example", ""],
        ["Crlf", "Acme", "https://six.formula.example", "one\r\ntwo"],
        ["Nul", "Acme", "https://seven.formula.example", "a\u{0}b"],
    ];
    for line in lines {
        w.write_record(line).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let text = String::from_utf8(written).unwrap();

    // The preview names each control character's field; those rows are skipped.
    let (preview, actions) = import_preview(&app, &boss, &text).await;
    assert_eq!(
        actions,
        ["create", "create", "create", "invalid", "invalid", "invalid", "invalid"],
        "{preview}"
    );
    for (row, why) in [
        (3usize, "name: the site name contains control characters"),
        (4usize, "client: the client contains control characters"),
        (5usize, "notes: the notes contains control characters"),
        (6usize, "notes: the notes contains control characters"),
    ] {
        let notes = preview["rows"][row]["notes"].to_string();
        assert!(notes.contains(why), "row {row}: {notes}");
    }
    let (status, body) = import_apply(&app, &boss, &text, &preview).await;
    assert_eq!(
        (status, body),
        (
            200,
            Value::from(
                "Imported: 3 site(s) added, 0 updated, 0 unchanged, 4 invalid row(s) skipped."
            )
        )
    );
    assert_eq!(store::sites::list(&app.state.db).await.unwrap().len(), 3);
    let two = store::sites::find_by_url(&app.state.db, TWO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two.notes, "=1+1", "the tab is trimmed; the formula is left");

    // A grant reason and a user agent that a spreadsheet would run, too.
    let one = store::sites::find_by_url(&app.state.db, ONE)
        .await
        .unwrap()
        .unwrap()
        .id;
    grant_editor(&app, &boss, &one, FORMULA_REASON).await;
    let sam = app.signed_in(STAFF).await;
    let res = sam
        .post(app.at("/launch"))
        .header("origin", &app.url)
        .header("user-agent", AGENT)
        .form(&[("site", one.as_str()), ("path", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // Pages show the values exactly as typed: the quote mark is for spreadsheets only.
    inert_page(&app, &boss, "/admin/sites", &[FORMULA, CMD, SCRIPT]).await;
    inert_page(&app, &boss, "/audit", &[CMD, FORMULA_REASON, AGENT]).await;

    // The sites export.
    let csv = download(
        &app,
        &boss,
        "/admin/sites/export",
        "text/csv; charset=utf-8",
    )
    .await;
    let rows = inert_csv(&csv, "the sites export");
    assert_eq!(rows[0], COLUMNS);
    let sites = by_column(&rows);
    let row = site_row(&sites, ONE);
    assert_eq!(row["name"], format!("'{FORMULA}"));
    assert_eq!(row["client"], format!("'{CMD}"));
    assert_eq!(row["notes"], "'@SUM(A1)");
    let row = site_row(&sites, TWO);
    assert_eq!(row["name"], "'-1+1");
    assert_eq!(row["client"], "'@SUM(A1)");
    assert_eq!(row["notes"], "'=1+1");
    let row = site_row(&sites, THREE);
    assert_eq!(row["name"], SCRIPT);
    assert_eq!(row["client"], BREAKOUT);
    assert_eq!(row["notes"], "line one\nline two");

    // The audit log, from the web and from the command line.
    let csv = download(
        &app,
        &boss,
        "/audit/export?format=csv",
        "text/csv; charset=utf-8",
    )
    .await;
    check_audit_csv(&csv, "the audit export");
    let cli = run_ok(app.command().args(["audit", "export", "--format", "csv"]));
    check_audit_csv(&cli, "`audit export`");

    // JSON Lines is not for spreadsheets: every value exactly as it came.
    let jsonl = download(
        &app,
        &boss,
        "/audit/export?format=jsonl",
        "application/x-ndjson",
    )
    .await;
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |event: &str, site: &str| {
        records
            .iter()
            .find(|v| v["event"] == event && v["site_url"] == site)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} record of {site} in {jsonl}"))
    };
    let created = find("site_created", ONE);
    assert_eq!(created["client"], CMD);
    assert_eq!(created["detail"]["after"]["name"], FORMULA);
    assert_eq!(
        find("site_created", THREE)["detail"]["after"]["notes"],
        "line one\nline two"
    );
    assert_eq!(find("launch", ONE)["user_agent"], AGENT);

    // The command line's list shows the names as they are, and nothing else.
    let listed = run_ok(app.command().args(["sites", "list"]));
    assert!(
        listed.contains(FORMULA) && listed.contains(SCRIPT),
        "{listed}"
    );
    assert_terminal_safe(&listed, "`sites list`");
}

async fn a_name_from_the_identity_provider_is_shown_inert(backend: Backend) {
    let app = TestApp::start(backend).await;
    let boss = app.signed_in_fresh(ADMIN).await;
    let ann = app.browser();
    let res = sign_in_named(&app, &ann, "ann@agency.test", PERSON).await;
    let status = res.status();
    let said = page_text(&res.text().await.unwrap());
    assert_eq!(status, 303, "{said}");
    let ann_id = store::people::find_by_email(&app.state.db, "ann@agency.test")
        .await
        .unwrap()[0]
        .id
        .clone();
    let team_id = create_team(&app, &boss, "Support", "").await;
    let (status, body) = call(
        &app,
        &boss,
        "admin_add_members",
        &[("team", team_id.as_str()), ("emails", "ann@agency.test")],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Her own page, and every console page that names people.
    let welcome = format!("Welcome, {PERSON_SHOWN}");
    inert_page(&app, &ann, "/", &[&welcome]).await;
    for path in [
        "/admin/people".to_string(),
        format!("/admin/people/{ann_id}"),
        format!("/admin/teams/{team_id}"),
        "/admin/sessions".to_string(),
    ] {
        inert_page(&app, &boss, &path, &[PERSON_SHOWN]).await;
    }

    // A NUL in the name (PostgreSQL text cannot hold one) must not stop the sign-in.
    let nina = app.browser();
    let res = sign_in_named(&app, &nina, "nina@agency.test", "Nina\u{0} Null").await;
    let status = res.status();
    let said = page_text(&res.text().await.unwrap());
    assert_eq!(
        status, 303,
        "a NUL in the provider's name claim stopped the sign-in: {said}"
    );
    inert_page(&app, &nina, "/", &["Nina"]).await;

    // The command line's list of people reaches a terminal.
    let listed = run_ok(app.command().args(["users", "list"]));
    assert!(listed.contains("ann@agency.test"), "{listed}");
    assert_terminal_safe(&listed, "`users list`");
}

on_both_databases!(
    site_and_team_text_is_shown_inert_on_every_page,
    csv_cells_are_checked_on_import_and_neutralised_in_every_export,
    a_name_from_the_identity_provider_is_shown_inert,
);

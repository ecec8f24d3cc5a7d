//! The layers call one way (ARCHITECTURE.md): `app/`, `web/` and `cli.rs`
//! go through `service/`; only `service/` uses `store/`; nothing below
//! reaches up; `app/` and `web/` do not use each other. Read from the
//! source tree, so a change that breaks a rule fails here.

use std::path::{Path, PathBuf};

/// Where a file sits, by the folder it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    App,
    Web,
    Cli,
    Service,
    Store,
    Domain,
    Shared,
    /// The composition root and the settings: `server.rs`, `config.rs`,
    /// `main.rs`, `lib.rs`, `error.rs`.
    Root,
}

fn layer_of(relative: &str) -> Layer {
    let first = relative.split('/').next().unwrap_or("");
    match first {
        "app" => Layer::App,
        "web" => Layer::Web,
        "service" => Layer::Service,
        "store" => Layer::Store,
        "domain" => Layer::Domain,
        "shared" => Layer::Shared,
        "cli.rs" => Layer::Cli,
        _ => Layer::Root,
    }
}

/// The modules a layer may not name (as `crate::name`), and other words
/// that betray a reach past its place.
fn forbidden(layer: Layer) -> (&'static [&'static str], &'static [&'static str]) {
    match layer {
        Layer::App => (&["store", "web", "server"], &["store::", "sqlx::query"]),
        Layer::Web => (&["store", "app", "server"], &["store::", "sqlx::query"]),
        Layer::Cli => (&["store"], &["store::", "sqlx::query"]),
        Layer::Service => (
            &["web", "app", "server", "cli"],
            &["super::super", "sqlx::query"],
        ),
        Layer::Store => (
            &["web", "app", "server", "cli", "service"],
            &["super::super"],
        ),
        Layer::Domain => (
            &["web", "app", "server", "cli", "service", "store"],
            &["super::super", "sqlx::", "axum::", "leptos::"],
        ),
        Layer::Shared => (
            &["web", "app", "server", "cli", "service", "store", "domain"],
            &["super::super"],
        ),
        Layer::Root => (&[], &[]),
    }
}

/// Code without its comments (a `//` inside a string cuts the line short,
/// which only hides code from the check, never invents a finding).
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` names `crate::module`, directly or in a `crate::{..}` group.
fn names_module(code: &str, module: &str) -> bool {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let mut rest = compact.as_str();
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|n| n.split("::").next().unwrap_or(""))
                .collect()
        } else {
            vec![after
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")]
        };
        if names.contains(&module) {
            return true;
        }
        rest = after;
    }
    false
}

/// Every rule `source` (a file at `relative`, under `src/`) breaks.
fn violations(relative: &str, source: &str) -> Vec<String> {
    let layer = layer_of(relative);
    let (modules, words) = forbidden(layer);
    let code = code_of(source);
    let mut found = Vec::new();
    for m in modules {
        if names_module(&code, m) {
            found.push(format!("{relative} ({layer:?}) names crate::{m}"));
        }
    }
    for w in words {
        // `store::` inside a longer name (`service::store::`) still counts;
        // a word that merely ends in it (`restore::`) does not.
        let hit = code.match_indices(w).any(|(i, _)| {
            !code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if hit {
            found.push(format!("{relative} ({layer:?}) uses {w}"));
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_layer_calls_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in &files {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        seen.insert(layer_of(&relative));
        found.extend(violations(
            &relative,
            &std::fs::read_to_string(path).unwrap(),
        ));
    }
    assert!(
        found.is_empty(),
        "layer rules broken:\n{}",
        found.join("\n")
    );
    // The check read the whole tree, every layer of it.
    for layer in [
        Layer::App,
        Layer::Web,
        Layer::Cli,
        Layer::Service,
        Layer::Store,
        Layer::Domain,
        Layer::Shared,
        Layer::Root,
    ] {
        assert!(seen.contains(&layer), "no file found in {layer:?}");
    }
}

#[test]
fn the_layer_check_finds_each_kind_of_reach() {
    // Each line below breaks one rule; the check must name it.
    let cases = [
        (
            "app/admin/sites.rs",
            "let s = crate::store::sites::find(db, id);",
        ),
        ("app/sites.rs", "use crate::{domain, store};"),
        (
            "web/launch.rs",
            "use crate::store::sessions::DbSessionStore;",
        ),
        ("web/admin.rs", "use crate::app::admin::AdminError;"),
        ("app/mod.rs", "crate::web::auth::current_person(&st, &s)"),
        (
            "app/mod.rs",
            "let st = expect_context::<crate::server::AppState>();",
        ),
        ("cli.rs", "for p in store::people::list(&db).await? {}"),
        ("web/auth.rs", "sqlx::query(\"DELETE FROM people\")"),
        ("service/launch.rs", "use crate::server::AppState;"),
        (
            "service/keys.rs",
            "fn f(c: Arc<dyn crate::server::Clock>) {}",
        ),
        ("store/sites.rs", "use crate::service::sites::ManageError;"),
        (
            "service/teams.rs",
            "sqlx::query_scalar(\"SELECT COUNT(*) FROM sites\")",
        ),
        ("domain/access.rs", "use crate::store::Db;"),
        ("domain/tokens.rs", "fn f(r: axum::response::Response) {}"),
        ("shared/errors.rs", "use crate::app::admin::AdminError;"),
    ];
    for (file, line) in cases {
        assert!(
            !violations(file, line).is_empty(),
            "{file}: {line:?} was not caught"
        );
    }
    // What the layers may do passes: services and a comment naming the store.
    let fine = [
        (
            "app/sites.rs",
            "crate::service::access::home_sites(&st.db, &e, now)",
        ),
        (
            "web/launch.rs",
            "use crate::service::sessions::DbSessionStore;",
        ),
        ("cli.rs", "// the store:: layer is reached through services"),
        ("service/sites.rs", "use crate::store::{self, audit, Db};"),
        ("server.rs", "use crate::web::{self, AppState};"),
        ("store/mod.rs", "sqlx::query(\"SELECT 1\")"),
        ("cli.rs", "restore::run();"),
    ];
    for (file, line) in fine {
        assert_eq!(
            violations(file, line),
            Vec::<String>::new(),
            "{file}: {line:?}"
        );
    }
}

//! Build facts the binary reports and carries:
//!
//! - `AGENCY_SSO_COMMIT`: the commit it was built from (`git rev-parse`),
//!   or "unknown" outside a git checkout; `agency-sso --version` names it.
//! - The site embedded in a release binary: when `AGENCY_SSO_EMBED_SITE`
//!   names a built site folder (the hydrate bundle and styles under `pkg/`,
//!   `public/`'s files, the connector's zip, each with its precompressed
//!   copies), every file in it is included in the binary
//!   (`$OUT_DIR/embedded.rs`), so that `agency-sso serve` needs no site
//!   folder. Without it the list is empty and the site is read from
//!   `LEPTOS_SITE_ROOT` as in development.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=AGENCY_SSO_EMBED_SITE");
    println!("cargo:rerun-if-env-changed=AGENCY_SSO_COMMIT");
    println!("cargo:rustc-env=AGENCY_SSO_COMMIT={}", commit());

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut files = Vec::new();
    if let Some(site) = std::env::var_os("AGENCY_SSO_EMBED_SITE") {
        let site = PathBuf::from(site);
        let site = site
            .canonicalize()
            .unwrap_or_else(|e| panic!("AGENCY_SSO_EMBED_SITE={}: {e}", site.display()));
        walk(&site, &site, &mut files);
        assert!(
            files.iter().any(|(name, _)| name.starts_with("pkg/")),
            "AGENCY_SSO_EMBED_SITE={} holds no pkg/ folder: build the site first",
            site.display()
        );
        println!("cargo:rerun-if-changed={}", site.display());
    }
    files.sort();
    let mut code = String::from(
        "/// The site's files, by their path under the site root.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("embedded.rs"), code).expect("write embedded.rs");
}

/// Every file under `dir`, by its `/`-separated path under `root`
/// (dot-files, such as the build's own markers, left out).
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("read the site folder");
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
}

/// The commit checked out, from git; `AGENCY_SSO_COMMIT` wins (a source
/// tarball's build names it so).
fn commit() -> String {
    if let Ok(c) = std::env::var("AGENCY_SSO_COMMIT") {
        return c;
    }
    // Rebuilt when HEAD moves: a checkout (HEAD) or a commit (its branch's ref).
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            for f in [format!(".git/{r}"), ".git/packed-refs".to_string()] {
                if Path::new(&f).exists() {
                    println!("cargo:rerun-if-changed={f}");
                }
            }
        }
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

//! The site's files (the hydrate bundle and styles under `/pkg`,
//! `public/`'s files, the connector's zip): embedded in a release binary
//! (see `build.rs`), or read from the site folder (`LEPTOS_SITE_ROOT`,
//! `target/site` by default) in development and whenever that variable is
//! set. Embedded files are sent as the folder's would be: the brotli or
//! gzip copy when the browser accepts it (`Vary: accept-encoding`),
//! `Cache-Control: no-cache` on the bundle, and a strong `ETag` per
//! encoding, answered `304` when it still matches.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

mod files {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Whether this process serves the embedded files: it has them, and no
/// `LEPTOS_SITE_ROOT` asks for a folder instead.
pub fn embedded() -> bool {
    !files::FILES.is_empty() && std::env::var_os("LEPTOS_SITE_ROOT").is_none()
}

/// How many files are embedded (0 in a development build).
pub fn embedded_count() -> usize {
    files::FILES.len()
}

/// One embedded file as sent: its bytes and strong validator.
struct Variant {
    bytes: &'static [u8],
    etag: HeaderValue,
}

/// The embedded files by path, each with its precompressed copies.
struct Entry {
    plain: Variant,
    br: Option<Variant>,
    gzip: Option<Variant>,
}

fn table() -> &'static HashMap<&'static str, Entry> {
    static TABLE: OnceLock<HashMap<&'static str, Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let all: HashMap<&str, &[u8]> = files::FILES.iter().copied().collect();
        let variant = |bytes: &'static [u8], tag: &str| {
            let digest = Sha256::digest(bytes);
            let hex = crate::domain::audit::to_hex(&digest.into());
            Variant {
                bytes,
                etag: HeaderValue::from_str(&format!("\"{}{tag}\"", &hex[..32]))
                    .expect("hex is a valid header"),
            }
        };
        all.iter()
            .filter(|(name, _)| !name.ends_with(".br") && !name.ends_with(".gz"))
            .map(|(name, bytes)| {
                let copy = |ext: &str, tag: &str| {
                    all.get(format!("{name}.{ext}").as_str())
                        .map(|b| variant(b, tag))
                };
                (
                    *name,
                    Entry {
                        plain: variant(bytes, ""),
                        br: copy("br", "-br"),
                        gzip: copy("gz", "-gz"),
                    },
                )
            })
            .collect()
    })
}

/// The bytes of one embedded file (`agency-sso-connector.zip`), if embedded.
pub fn embedded_file(name: &str) -> Option<&'static [u8]> {
    table().get(name).map(|e| e.plain.bytes)
}

/// A file of the site by its path under the site root: embedded, or read
/// from the site folder `root`.
pub async fn read(root: &str, name: &str) -> std::io::Result<Vec<u8>> {
    if embedded() {
        return embedded_file(name)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not embedded"));
    }
    tokio::fs::read(std::path::Path::new(root).join(name)).await
}

/// Whether the hydrate bundle (`pkg/NAME.wasm`) can be sent: embedded, or
/// in the site folder `root`. A development server answers while the bundle
/// is still building (`scripts/dev`); its pages then wait for the bundle
/// instead of asking for it. Once there it is taken to stay: the folder is
/// looked at only until then.
pub fn bundle_ready(root: &str, pkg_dir: &str, output_name: &str) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static READY: AtomicBool = AtomicBool::new(false);
    if READY.load(Ordering::Relaxed) {
        return true;
    }
    let name = format!("{pkg_dir}/{output_name}.wasm");
    let ready = if embedded() {
        table().contains_key(name.as_str())
    } else {
        std::path::Path::new(root).join(&name).is_file()
    };
    if ready {
        READY.store(true, Ordering::Relaxed);
    }
    ready
}

/// Whether the request accepts this content coding (and not with `q=0`).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case(coding) && !q_zero
        })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "wasm" => "application/wasm",
        "js" => "text/javascript",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The answer for `path` (the request's path, `/pkg/agency-sso.wasm`) from
/// the embedded files, or None when it names none (GET and HEAD only).
pub fn answer(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let name = path.strip_prefix('/')?;
    let entry = table().get(name)?;
    let (variant, coding) = match (&entry.br, &entry.gzip) {
        (Some(v), _) if accepts(headers, "br") => (v, Some("br")),
        (_, Some(v)) if accepts(headers, "gzip") => (v, Some("gzip")),
        _ => (&entry.plain, None),
    };
    let mut out = HeaderMap::new();
    out.insert(ETAG, variant.etag.clone());
    out.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if name.starts_with("pkg/") {
        out.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    let fresh = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.strip_prefix("W/").unwrap_or(t) == variant.etag.to_str().unwrap_or("")
        });
    if fresh {
        return Some((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    if let Some(c) = coding {
        out.insert(CONTENT_ENCODING, HeaderValue::from_static(c));
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(variant.bytes)
    };
    Some((StatusCode::OK, out, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn codings_are_read_as_browsers_send_them() {
        assert!(accepts(&headers("gzip, deflate, br, zstd"), "br"));
        assert!(accepts(&headers("gzip;q=1.0, br;q=0.5"), "br"));
        assert!(!accepts(&headers("gzip, br;q=0"), "br"));
        assert!(accepts(&headers("gzip, br;q=0"), "gzip"));
        assert!(!accepts(&headers("identity"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "br"));
    }

    #[test]
    fn files_are_typed_by_their_extension() {
        assert_eq!(content_type("pkg/agency-sso.wasm"), "application/wasm");
        assert_eq!(content_type("pkg/agency-sso.js"), "text/javascript");
        assert_eq!(content_type("agency-sso-connector.zip"), "application/zip");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
    }
}

//! The deep-link check (`check_deep_link`). Input: the link, then optionally
//! a site URL after a NUL byte. An accepted link is a path that starts with
//! one `/` (never `//` or `/\`), with no control characters, spaces, `#` or
//! backslashes, and joined onto a site URL it stays on that site's origin
//! and under its path.
#![no_main]

use agency_sso::domain::sites::{check_deep_link, normalise_url};
use libfuzzer_sys::fuzz_target;
use url::Url;

const SITES: [&str; 4] = [
    "https://client.example",
    "https://client.example/blog",
    "https://client.example:8443/a/b",
    "http://127.0.0.1:8080/wp",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (raw, site_raw) = text.split_once('\0').unwrap_or((&text, ""));
    let out = match check_deep_link(raw) {
        Err(_) => return,
        Ok(None) => {
            assert!(raw.trim().is_empty(), "{raw:?} accepted as no link");
            return;
        }
        Ok(Some(out)) => out,
    };
    assert!(
        out.starts_with('/') && !out.starts_with("//") && !out.starts_with("/\\"),
        "{raw:?} gave {out:?}"
    );
    assert!(
        !out.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '#' || c == '\\'),
        "{raw:?} gave {out:?}"
    );
    let fuzzed = normalise_url(site_raw).ok();
    for site in SITES.iter().copied().chain(fuzzed.as_deref()) {
        let base = Url::parse(site).expect("a site URL");
        let joined = format!("{site}{out}");
        let u = Url::parse(&joined).unwrap_or_else(|e| panic!("{joined:?}: {e}"));
        assert_eq!(
            u.origin(),
            base.origin(),
            "{raw:?} left {site} as {joined:?}"
        );
        let prefix = base.path().trim_end_matches('/');
        assert!(
            u.path().starts_with(prefix),
            "{raw:?} left the path of {site} as {joined:?} ({})",
            u.path()
        );
    }
});

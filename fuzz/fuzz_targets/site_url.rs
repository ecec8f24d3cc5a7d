//! The site URL normaliser (`normalise_url`): never panics, and what it
//! accepts is a URL as the token's `aud` must be: https (http only on
//! loopback), no credentials, query, fragment or trailing slash, the same
//! host as given (less trailing dots), and normalising it again gives the
//! same string. A site form with that URL validates to the same URL.
#![no_main]

use agency_sso::domain::sites::{is_loopback, normalise_url, SiteInput};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(out) = normalise_url(&raw) else {
        return;
    };
    let url = Url::parse(&out).unwrap_or_else(|e| panic!("{raw:?} gave {out:?}, not a URL: {e}"));
    match url.scheme() {
        "https" => {}
        "http" => assert!(
            is_loopback(&url),
            "{raw:?} gave plain http off loopback: {out:?}"
        ),
        other => panic!("{raw:?} gave scheme {other:?}: {out:?}"),
    }
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?} kept credentials: {out:?}"
    );
    assert!(
        url.query().is_none() && url.fragment().is_none(),
        "{raw:?} kept a query or fragment: {out:?}"
    );
    assert!(
        !out.ends_with('/'),
        "{raw:?} kept a trailing slash: {out:?}"
    );
    assert!(
        url.host_str().is_some_and(|h| !h.is_empty()),
        "{raw:?} gave no host: {out:?}"
    );
    let given = Url::parse(raw.trim()).expect("accepted, so it parses");
    assert_eq!(
        given.host_str().map(|h| h.trim_end_matches('.')),
        url.host_str(),
        "{raw:?} gave another host: {out:?}"
    );
    assert_eq!(
        normalise_url(&out).as_deref(),
        Ok(out.as_str()),
        "not idempotent for {raw:?}"
    );
    let site = SiteInput {
        name: "Site".into(),
        client: "Client".into(),
        url: raw.to_string(),
        ..SiteInput::default()
    }
    .validate()
    .unwrap_or_else(|e| panic!("{raw:?} normalises but the site is refused: {e:?}"));
    assert_eq!(site.url, out);
});

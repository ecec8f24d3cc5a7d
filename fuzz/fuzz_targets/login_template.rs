//! The login-template check and renderer (`check_login_template`,
//! `login_url`). Input: site URL, template, token and deep link, separated
//! by NUL bytes. For an accepted template the login URL is a URL on the
//! site's origin with no fragment, its query carries the encoded token, and
//! the deep link, if any, is the last query pair `redirect_to`: a full URL
//! on the same origin.
#![no_main]

use agency_sso::domain::sites::{check_deep_link, check_login_template, login_url, normalise_url};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let site_raw = parts.next().unwrap_or("");
    let template_raw = parts.next().unwrap_or("");
    let token = parts.next().unwrap_or("aaa.bbb.ccc");
    let deep_raw = parts.next().unwrap_or("");

    let Ok(template) = check_login_template(template_raw) else {
        return;
    };
    assert!(
        template.starts_with('/')
            && !template.starts_with("//")
            && !template.contains('#')
            && !template.contains('\\')
            && template.matches("{token}").count() == 1,
        "accepted {template_raw:?} as {template:?}"
    );
    let site = normalise_url(site_raw).unwrap_or_else(|_| "https://client.example/blog".into());
    let site_url = Url::parse(&site).expect("a normalised URL parses");
    let deep = check_deep_link(deep_raw).ok().flatten();

    let out = login_url(&site, &template, token, deep.as_deref());
    let u = Url::parse(&out).unwrap_or_else(|e| panic!("{out:?} is not a URL: {e}"));
    assert_eq!(u.origin(), site_url.origin(), "{out:?} left {site:?}");
    assert!(u.fragment().is_none(), "{out:?} has a fragment");
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    assert!(
        u.query().is_some_and(|q| q.contains(&encoded)),
        "{out:?} lost the token {token:?}"
    );
    if let Some(path) = deep {
        let (key, value) = u.query_pairs().last().expect("a query");
        assert_eq!(key, "redirect_to", "{out:?}");
        assert_eq!(value, format!("{site}{path}"), "{out:?}");
        let back = Url::parse(&value).unwrap_or_else(|e| panic!("redirect_to {value:?}: {e}"));
        assert_eq!(
            back.origin(),
            site_url.origin(),
            "redirect_to {value:?} left {site:?}"
        );
    }
});

//! Configuration parsing: argv as the command line gives it, parsed by clap
//! into `ConfigArgs` and validated into a `Config`. Never panics; a valid
//! configuration keeps the promises the rest of the program relies on, and
//! its `Debug` shows no secret.
//!
//! Input: pieces separated by NUL bytes. A piece's first character picks
//! one of the real flags, `@` the first, `A` the second and so on, and the
//! rest is its value (`--flag=rest`); the two values past the last flag
//! pass the rest as a bare argument. `validate` is pure (it reads no file and creates nothing: the
//! data directory and the test clock file are only kept as paths), so all
//! of it is fuzzed. The `SSO_*` variables clap would read are removed first.
#![no_main]

use agency_sso::config::{decode_master_key, ConfigArgs};
use agency_sso::domain::limits::{Cidr, Rate};
use base64::Engine;
use clap::Parser;
use libfuzzer_sys::fuzz_target;
use url::Url;

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

const FLAGS: [&str; 33] = [
    "public-url",
    "bind",
    "database-url",
    "data-dir",
    "oidc-issuer",
    "oidc-client-id",
    "oidc-client-secret",
    "oidc-timeout-seconds",
    "client-timeout-seconds",
    "oidc-provider-name",
    "require-hd",
    "allowed-domains",
    "admin-emails",
    "master-key",
    "master-keys-old",
    "key-bits",
    "key-rotation-days",
    "key-publish-ahead-hours",
    "key-keep-after-hours",
    "jwks-max-age",
    "key-refresh-seconds",
    "session-idle-minutes",
    "session-max-hours",
    "reauth-minutes",
    "test-clock-file",
    "log-format",
    "audit-checkpoint-minutes",
    "audit-retention-days",
    "sign-in-rate",
    "launch-rate",
    "launch-client-rate",
    "trusted-proxies",
    "metrics-token",
];

fn clear_environment() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SSO_") {
                std::env::remove_var(key);
            }
        }
    });
}

fn check_pieces(text: &str) {
    // The pieces parsed on their own, as validation calls them.
    let _ = Rate::parse(text).map(|r| {
        if let Some(r) = r {
            assert_eq!(Rate::parse(&r.to_string()), Ok(Some(r)), "{text:?}");
        }
    });
    if let Ok(c) = Cidr::parse(text) {
        let addr = text.trim().split('/').next().unwrap_or("");
        let ip: std::net::IpAddr = addr.parse().expect("parsed once");
        assert!(c.contains(ip), "{text:?} does not contain its own address");
    }
    if let Ok(key) = decode_master_key(text) {
        let again = base64::engine::general_purpose::STANDARD.encode(key);
        assert_eq!(decode_master_key(&again), Ok(key));
    }
}

fuzz_target!(|data: &[u8]| {
    clear_environment();
    let text = String::from_utf8_lossy(data);
    check_pieces(&text);

    let mut argv = vec!["agency-sso".to_string()];
    for piece in text.split('\0') {
        let mut chars = piece.chars();
        let Some(pick) = chars.next() else { continue };
        let value = chars.as_str();
        let index = (pick as u32).wrapping_sub('@' as u32) as usize % (FLAGS.len() + 2);
        match FLAGS.get(index) {
            Some(flag) => argv.push(format!("--{flag}={value}")),
            None => argv.push(value.to_string()),
        }
    }
    let Ok(args) = Args::try_parse_from(&argv) else {
        return;
    };
    let given = args.config.clone();
    let Ok(c) = args.config.validate() else {
        return;
    };

    let public =
        Url::parse(&c.public_url).unwrap_or_else(|e| panic!("public URL {:?}: {e}", c.public_url));
    assert_eq!(c.public_url, c.public_origin);
    assert_eq!(public.origin().ascii_serialization(), c.public_url);
    assert!(c.is_https() || public.scheme() == "http");
    let redirect = Url::parse(&c.redirect_url()).expect("the redirect URL parses");
    assert_eq!(redirect.origin(), public.origin());
    if c.is_https() {
        let key = c.master_key.as_ref().expect("https needs a master key");
        decode_master_key(key.expose()).expect("a checked master key");
        assert!(c.test_clock_file.is_none());
    }
    assert!(!c.sign_in.allowed_domains.is_empty());
    assert!(c.session.idle_secs > 0 && c.session.absolute_secs > 0);
    assert!(c.reauth_secs > 0 && c.audit.checkpoint_secs > 0);
    assert!((1..=60).contains(&c.oidc.timeout_secs));
    assert!(c.keys.refresh_secs >= 1 && c.keys.refresh_secs <= 300);
    c.keys
        .policy
        .check(c.keys.jwks_max_age, c.keys.refresh_secs as i64)
        .expect("a checked key policy");
    assert!([2048, 3072, 4096].contains(&c.keys.bits));

    // "Secrets never reach a Debug or a log."
    let shown = format!("{c:?}");
    let mut secrets: Vec<String> = [
        Some(c.database_url.expose().to_string()),
        c.oidc
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_string()),
        c.master_key.as_ref().map(|s| s.expose().trim().to_string()),
        c.metrics_token.as_ref().map(|s| s.expose().to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(old) = &given.master_keys_old {
        secrets.extend(old.expose().split(',').map(|k| k.trim().to_string()));
    }
    secrets.extend(c.master_keys_old.iter().map(|k| format!("{k:?}")));
    for s in secrets {
        // Short values can appear by chance (in a URL, a number); look for
        // the ones that cannot.
        if s.len() >= 24 && !other_fields(&c).contains(&s) {
            assert!(!shown.contains(&s), "Debug shows the secret {s:?}: {shown}");
        }
    }
});

/// The non-secret settings that may legitimately repeat a secret's text.
fn other_fields(c: &agency_sso::config::Config) -> String {
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        c.public_url,
        c.bind,
        c.data_dir,
        c.oidc.issuer,
        c.oidc.client_id,
        c.oidc.provider_name,
        c.sign_in,
        c.test_clock_file,
    )
}

//! The fleet of connector sites: what a site says of itself when asked
//! (a signed `status` site message), how its answer is judged, which
//! plugin version the dashboard ships, and what about a site needs
//! attention first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::messages::shown;

/// The connector plugin's main file, as this dashboard ships it.
const PLUGIN_MAIN: &str =
    include_str!("../../wordpress/agency-sso-connector/agency-sso-connector.php");

/// A header of the plugin's main file (`Version`, `Requires PHP`, ...).
pub fn plugin_header(name: &str) -> Option<&'static str> {
    PLUGIN_MAIN.lines().find_map(|l| {
        let l = l.trim_start_matches([' ', '*', '/']).trim();
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// The connector version this dashboard ships.
pub fn shipped_version() -> &'static str {
    plugin_header("Version").unwrap_or("0")
}

/// `a` is an older version than `b` (dotted numbers; anything else in a
/// part counts as 0).
pub fn older(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (mut a, mut b) = (parts(a), parts(b));
    let n = a.len().max(b.len());
    a.resize(n, 0);
    b.resize(n, 0);
    a < b
}

/// The most key ids, and refusal codes, an answer may list.
const MAX_KEYS: usize = 20;
const MAX_CODES: usize = 60;

/// A site's answer to `status` or `refresh-keys`: the plugin's fixed
/// shape; only these facts are kept (no tokens, no people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub jti: String,
    pub action: String,
    pub site_url: String,
    pub plugin_version: String,
    pub wp_version: String,
    pub php_version: String,
    pub multisite: bool,
    /// The site's connection record names this dashboard.
    pub connected: bool,
    /// The key ids of the set it holds now.
    pub keys: Vec<String>,
    pub keys_fetched_at: Option<i64>,
    /// Launch and message refusals by code, since `refusals_since`.
    pub refusals: BTreeMap<String, u64>,
    pub refusals_since: Option<i64>,
}

/// Judge a site's answer to the status message `jti` (`action`): the
/// plugin's report, bounded, or why not in words.
pub fn judge_status(
    jti: &str,
    action: &str,
    status: u16,
    body: &[u8],
    cut: bool,
) -> Result<StatusReport, String> {
    if cut {
        return Err(format!("HTTP {status}, an answer longer than 16 KiB"));
    }
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|j| j["error"].as_str().map(|c| shown(c, 60)));
        return Err(match (status, code) {
            (300..=399, _) => format!("HTTP {status}, a redirect (is the site's address right?)"),
            (_, Some(code)) => format!("HTTP {status}: {code}"),
            (404, None) => "HTTP 404: no connector plugin 0.3 or later answers there".into(),
            (_, None) => format!("HTTP {status}"),
        });
    }
    let mut r: StatusReport = serde_json::from_slice(body).map_err(|_| {
        format!(
            "HTTP {status}, but not the connector's report (is the plugin, 0.3 or later, active?)"
        )
    })?;
    if r.jti != jti || r.action != action {
        return Err("an answer to another message than the dashboard's".into());
    }
    if r.keys.len() > MAX_KEYS || r.refusals.len() > MAX_CODES {
        return Err("a report listing more keys or refusal codes than a site has".into());
    }
    for v in [
        &mut r.site_url,
        &mut r.plugin_version,
        &mut r.wp_version,
        &mut r.php_version,
    ] {
        *v = shown(v, 200);
    }
    r.keys = r.keys.iter().map(|k| shown(k, 100)).collect();
    r.refusals = r.refusals.iter().map(|(k, v)| (shown(k, 60), *v)).collect();
    Ok(r)
}

/// What the dashboard knows of a site's keys: the kid signing now and the
/// one published ahead of its turn (if any).
#[derive(Debug, Clone, Copy, Default)]
pub struct RingKids<'a> {
    pub active: Option<&'a str>,
    pub next: Option<&'a str>,
}

/// A site as the fleet sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteFacts {
    /// Never asked, or never answered.
    pub answered_at: Option<i64>,
    pub checked_at: Option<i64>,
    /// Why the last check did not get an answer ('' when it did).
    pub problem: String,
    pub plugin_version: String,
    pub connected: bool,
    pub keys: Vec<String>,
    pub refusals: BTreeMap<String, u64>,
}

/// How a site stands, worst first: the fleet's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    Unreachable,
    Outdated,
    MissingKey,
    Refusing,
    Unchecked,
    Ok,
}

impl Standing {
    pub const ALL: [Standing; 6] = [
        Standing::Unreachable,
        Standing::Outdated,
        Standing::MissingKey,
        Standing::Refusing,
        Standing::Unchecked,
        Standing::Ok,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Unreachable => "unreachable",
            Standing::Outdated => "outdated",
            Standing::MissingKey => "missing-key",
            Standing::Refusing => "refusing",
            Standing::Unchecked => "unchecked",
            Standing::Ok => "ok",
        }
    }

    pub fn parse(s: &str) -> Option<Standing> {
        Standing::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How a site stands and what needs attention first, in words.
pub fn standing(f: &SiteFacts, shipped: &str, ring: RingKids<'_>) -> (Standing, String) {
    if !f.problem.is_empty() {
        let when = if f.answered_at.is_some() {
            "it answered before"
        } else {
            "it never answered"
        };
        return (
            Standing::Unreachable,
            format!("The last check got no report: {} ({when}).", f.problem),
        );
    }
    if f.answered_at.is_none() {
        return (Standing::Unchecked, "Not checked yet.".into());
    }
    if older(&f.plugin_version, shipped) {
        return (
            Standing::Outdated,
            format!(
                "Connector {} is older than {shipped}: update it (Plugins, on the site).",
                f.plugin_version
            ),
        );
    }
    fn lacks<'k>(held: &[String], kid: Option<&'k str>) -> Option<&'k str> {
        kid.filter(|k| !held.iter().any(|h| h == k))
    }
    if let Some(kid) = lacks(&f.keys, ring.active) {
        return (
            Standing::MissingKey,
            format!("It does not hold the signing key {kid}: launches fail until it fetches the key set."),
        );
    }
    if let Some(kid) = lacks(&f.keys, ring.next) {
        return (
            Standing::MissingKey,
            format!(
                "It does not hold the next key {kid} yet: ask it to refetch before the rotation."
            ),
        );
    }
    let refused: u64 = f.refusals.values().sum();
    if refused > 0 {
        let codes: Vec<String> = f
            .refusals
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect();
        return (
            Standing::Refusing,
            format!("It refused {refused}: {}.", codes.join(", ")),
        );
    }
    (Standing::Ok, String::new())
}

/// What the dashboard publishes as the connector's update (the plugin asks
/// `/connector/update.json`): the version it ships, what it needs, the
/// package and its SHA-256 (checked by the plugin before it installs).
pub fn update_metadata(package_url: &str, sha256: &str, changelog: &str) -> serde_json::Value {
    serde_json::json!({
        "name": plugin_header("Plugin Name").unwrap_or("agency-sso connector"),
        "slug": "agency-sso-connector",
        "version": shipped_version(),
        "requires": plugin_header("Requires at least").unwrap_or(""),
        "tested": plugin_header("Tested up to").unwrap_or_else(|| plugin_header("Requires at least").unwrap_or("")),
        "requires_php": plugin_header("Requires PHP").unwrap_or(""),
        "package": package_url,
        "sha256": sha256,
        "changelog": changelog,
    })
}

/// The changelog of a WordPress `readme.txt` (its `== Changelog ==`
/// section, as text).
pub fn changelog_of(readme: &str) -> String {
    let mut lines = readme.lines().skip_while(|l| l.trim() != "== Changelog ==");
    lines.next();
    lines
        .take_while(|l| !l.trim_start().starts_with("== "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The longest a due key rotation waits for sites to fetch the next key.
pub const ROTATION_WAIT_MAX: i64 = 3 * 86_400;
/// Sites that answered within this long are expected to hold the next key
/// (one that has not answered for longer is shown as unreachable instead).
pub const RECENT: i64 = 2 * 6 * 3600;

/// Whether a due rotation (the next key's time was `activates_at`) waits
/// at `now` while `lacking` sites that answered recently lack the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Every recent site holds it (or it is not due): go on.
    Go,
    /// Wait, up to [`ROTATION_WAIT_MAX`] past its time.
    Wait,
    /// Waited long enough: go on, and say so.
    ProceedDespite,
}

pub fn rotation(now: i64, activates_at: i64, lacking: usize) -> Rotation {
    if lacking == 0 || now < activates_at {
        Rotation::Go
    } else if now - activates_at < ROTATION_WAIT_MAX {
        Rotation::Wait
    } else {
        Rotation::ProceedDespite
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_shipped_version_is_the_plugin_header() {
        let v = shipped_version();
        assert!(v.split('.').count() >= 2, "{v}");
        assert!(plugin_header("Requires PHP").is_some());
        assert!(older("0.2.0", v));
        assert!(!older(v, v));
        assert!(older("0.9", "0.10.0"));
        assert!(!older("1.0", "0.10.0"));
        assert!(older("", "0.1"));
    }

    fn report(jti: &str) -> serde_json::Value {
        json!({
            "jti": jti, "action": "status", "site_url": "https://a.test", "plugin_version": "0.3.0",
            "wp_version": "6.1.1", "php_version": "8.2.7", "multisite": false, "connected": true,
            "keys": ["k1", "k2"], "keys_fetched_at": 100, "refusals": {"token_expired": 2},
            "refusals_since": 50
        })
    }

    #[test]
    fn only_the_plugin_report_to_this_message_counts() {
        let body = report("j").to_string();
        let r = judge_status("j", "status", 200, body.as_bytes(), false).unwrap();
        assert_eq!(r.keys, ["k1", "k2"]);
        assert_eq!(r.refusals["token_expired"], 2);
        let e = |status, body: &str, cut| {
            judge_status("j", "status", status, body.as_bytes(), cut).unwrap_err()
        };
        assert!(e(200, &report("other").to_string(), false).contains("another message"));
        assert!(e(200, "<html>", false).contains("not the connector's report"));
        assert!(e(200, "", true).contains("16 KiB"));
        assert!(e(301, "", false).contains("redirect"));
        assert!(e(401, r#"{"error":"wrong_audience"}"#, false).contains("wrong_audience"));
        let mut many = report("j");
        many["keys"] = json!((0..21).map(|i| i.to_string()).collect::<Vec<_>>());
        assert!(e(200, &many.to_string(), false).contains("more keys"));
        // Missing fields are not a report.
        let mut missing = report("j");
        missing.as_object_mut().unwrap().remove("keys");
        assert!(e(200, &missing.to_string(), false).contains("not the connector's report"));
    }

    fn facts() -> SiteFacts {
        SiteFacts {
            answered_at: Some(10),
            checked_at: Some(10),
            plugin_version: shipped_version().into(),
            connected: true,
            keys: vec!["a".into(), "n".into()],
            ..SiteFacts::default()
        }
    }

    #[test]
    fn the_worst_thing_about_a_site_comes_first() {
        let ring = RingKids {
            active: Some("a"),
            next: Some("n"),
        };
        let shipped = shipped_version();
        assert_eq!(standing(&facts(), shipped, ring).0, Standing::Ok);
        let mut f = facts();
        f.refusals.insert("token_expired".into(), 3);
        let (s, why) = standing(&f, shipped, ring);
        assert_eq!(
            (s, why.as_str()),
            (Standing::Refusing, "It refused 3: token_expired ×3.")
        );
        f.keys = vec!["a".into()];
        let (s, why) = standing(&f, shipped, ring);
        assert_eq!(s, Standing::MissingKey);
        assert!(why.contains("next key n"));
        f.keys = vec![];
        assert!(standing(&f, shipped, ring).1.contains("signing key a"));
        f.plugin_version = "0.1.0".into();
        assert_eq!(standing(&f, shipped, ring).0, Standing::Outdated);
        f.problem = "HTTP 503".into();
        assert_eq!(standing(&f, shipped, ring).0, Standing::Unreachable);
        assert_eq!(
            standing(&SiteFacts::default(), shipped, ring).0,
            Standing::Unchecked
        );
        assert!(Standing::Unreachable < Standing::Ok);
    }

    #[test]
    fn the_update_names_the_shipped_version_and_its_package() {
        let m = update_metadata(
            "https://sso.test/agency-sso-connector.zip",
            "ab",
            "= 0.3.0 =\n* x",
        );
        assert_eq!(m["version"], shipped_version());
        assert_eq!(m["slug"], "agency-sso-connector");
        assert_eq!(m["requires_php"], plugin_header("Requires PHP").unwrap());
        assert_eq!(m["sha256"], "ab");
        let readme = "=== x ===\n== Changelog ==\n= 0.3.0 =\n* one\n\n= 0.2.0 =\n* two\n== Upgrade Notice ==\nno";
        assert_eq!(changelog_of(readme), "= 0.3.0 =\n* one\n\n= 0.2.0 =\n* two");
    }

    #[test]
    fn a_rotation_waits_for_sites_that_lack_the_next_key_but_not_for_ever() {
        assert_eq!(rotation(100, 100, 0), Rotation::Go);
        assert_eq!(rotation(99, 100, 3), Rotation::Go);
        assert_eq!(rotation(100, 100, 3), Rotation::Wait);
        assert_eq!(
            rotation(100 + ROTATION_WAIT_MAX - 1, 100, 3),
            Rotation::Wait
        );
        assert_eq!(
            rotation(100 + ROTATION_WAIT_MAX, 100, 3),
            Rotation::ProceedDespite
        );
        assert_eq!(Standing::parse("missing-key"), Some(Standing::MissingKey));
    }
}

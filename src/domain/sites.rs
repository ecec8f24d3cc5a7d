//! Client sites: their URL exactly as a token's `aud`, their profile (how a
//! token is delivered and signed), the login URL built from the profile's
//! template, the roles that may be granted there, and deep links.

use url::Url;

use super::secrets::Secret;

/// The five core WordPress roles, highest first: the default for a new site.
pub const CORE_ROLES: [&str; 5] = [
    "administrator",
    "editor",
    "author",
    "contributor",
    "subscriber",
];

/// Tokens live 60 s unless a site says otherwise, never more than 300 s.
pub const DEFAULT_TOKEN_LIFETIME: i64 = 60;
pub const MAX_TOKEN_LIFETIME: i64 = crate::domain::keys::MAX_TOKEN_LIFETIME;

/// How a site's plugin expects its token (CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// The twl-sso plugin: RS256 through the JWKS.
    TwlSso,
    /// This project's own plugin (wordpress/agency-sso-connector): the
    /// twl-sso token, delivered to its own `wp-login.php` action.
    Connector,
    /// miniOrange "WP Login and Register using JWT": HS256 with the site's
    /// own secret (free edition) or RS256 (premium).
    MiniOrange,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::TwlSso, Profile::Connector, Profile::MiniOrange];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::TwlSso => "twl-sso",
            Profile::Connector => "connector",
            Profile::MiniOrange => "miniorange",
        }
    }

    pub fn parse(s: &str) -> Option<Profile> {
        match s.trim() {
            "twl-sso" => Some(Profile::TwlSso),
            "connector" => Some(Profile::Connector),
            "miniorange" => Some(Profile::MiniOrange),
            _ => None,
        }
    }

    /// The default login path and query, relative to the site URL.
    pub fn default_login_template(self) -> &'static str {
        match self {
            Profile::TwlSso => "/wp-login.php?action=twl_sso&token={token}",
            Profile::Connector => "/wp-login.php?action=agency_sso&token={token}",
            Profile::MiniOrange => "/?mo_jwt_token={token}",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error("the site URL is not a URL ({0})")]
    NotAUrl(String),
    #[error("the site URL must use https (plain http only for a site on this machine)")]
    NotHttps,
    #[error("the site URL must not contain a user name or password")]
    Credentials,
    #[error("the site URL must not have a query or a fragment (give the WordPress address only)")]
    QueryOrFragment,
    #[error(
        "the login template must start with / and contain {{token}} exactly once, in its query"
    )]
    BadTemplate,
    #[error("{0:?} is not a role slug (lower-case letters, digits, _ and -)")]
    BadRole(String),
    #[error("the role {0:?} may not be granted on this site")]
    RoleNotAllowed(String),
    #[error("give at least one role that may be granted")]
    NoRoles,
    #[error("the token lifetime must be from 10 to {MAX_TOKEN_LIFETIME} seconds")]
    BadLifetime,
    #[error("the deep link must be a path on the site, like /wp-admin/edit.php")]
    BadDeepLink,
    #[error(
        "a miniOrange site signed with HS256 needs its client secret (at least 32 characters)"
    )]
    WeakSecret,
}

/// Normalise a site URL into exactly what WordPress reports as its site URL
/// and what the token's `aud` must be: lower-case scheme and host, the port
/// only when not the default, the sub-directory path if any, no trailing
/// slash. https, except for loopback addresses (local testing).
pub fn normalise_url(raw: &str) -> Result<String, SiteError> {
    let raw = raw.trim();
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(SiteError::NotAUrl("spaces or control characters".into()));
    }
    let url = Url::parse(raw).map_err(|e| SiteError::NotAUrl(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(SiteError::NotHttps),
        _ => return Err(SiteError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SiteError::Credentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SiteError::QueryOrFragment);
    }
    // Trailing dots are dropped; a host of dots only is no host (left
    // empty, the path's `//b` would read as the host `b`).
    let host = url
        .host_str()
        .map(|h| h.trim_end_matches('.'))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| SiteError::NotAUrl("no host".into()))?;
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    let path = url.path().trim_end_matches('/');
    out.push_str(path);
    // Without its trailing dots the host must read as the same host: `2..`
    // would become the address 0.0.0.2, and `m.0..` no host at all.
    match Url::parse(&out) {
        Ok(again) if again.host_str() == Some(host) => Ok(out),
        _ => Err(SiteError::NotAUrl("the host is not a host name".into())),
    }
}

/// A loopback host (plain http is allowed there, for local testing).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A login template: a path and query relative to the site URL with one
/// `{token}` placeholder in the query.
pub fn check_login_template(t: &str) -> Result<String, SiteError> {
    let t = t.trim();
    let ok = t.starts_with('/')
        && !t.starts_with("//")
        && t.matches("{token}").count() == 1
        && t.split_once('?')
            .is_some_and(|(_, q)| q.contains("{token}"))
        && !t.contains('#')
        && !t.contains('\\')
        && t.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(t.to_string())
    } else {
        Err(SiteError::BadTemplate)
    }
}

/// The URL the browser is sent to with the token (and the deep link as
/// WordPress' `redirect_to`, a full URL on the same site).
pub fn login_url(site_url: &str, template: &str, token: &str, deep_link: Option<&str>) -> String {
    let mut url = format!(
        "{site_url}{}",
        template.replace("{token}", &urlencode(token))
    );
    if let Some(path) = deep_link {
        url.push_str("&redirect_to=");
        url.push_str(&urlencode(&format!("{site_url}{path}")));
    }
    url
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A deep link: a path (with an optional query) on the site. Absolute URLs,
/// `//host`, backslashes and other schemes are refused.
pub fn check_deep_link(raw: &str) -> Result<Option<String>, SiteError> {
    let p = raw.trim();
    if p.is_empty() {
        return Ok(None);
    }
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.contains('#')
        && p.len() <= 2000
        && p.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(SiteError::BadDeepLink);
    }
    // Resolved against a stand-in origin it must stay on that origin, and
    // what is kept is the resolved path: `/a/..//evil.example` or
    // `/.//evil.example` would otherwise become `//evil.example` on the site.
    let base = Url::parse("https://site.invalid/").map_err(|_| SiteError::BadDeepLink)?;
    match base.join(p) {
        Ok(u) if u.origin() == base.origin() && !u.path().starts_with("//") => {
            let mut out = u.path().to_string();
            if let Some(q) = u.query() {
                out.push('?');
                out.push_str(q);
            }
            Ok(Some(out))
        }
        _ => Err(SiteError::BadDeepLink),
    }
}

/// A role slug as WordPress names roles.
pub fn check_role(r: &str) -> Result<String, SiteError> {
    let r = r.trim();
    if !r.is_empty()
        && r.len() <= 64
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        Ok(r.to_string())
    } else {
        Err(SiteError::BadRole(r.to_string()))
    }
}

/// The roles a site allows, in order of rank (highest first), de-duplicated.
pub fn check_roles(roles: &[String]) -> Result<Vec<String>, SiteError> {
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        let r = check_role(r)?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(SiteError::NoRoles);
    }
    Ok(out)
}

pub fn check_lifetime(secs: i64) -> Result<i64, SiteError> {
    if (10..=MAX_TOKEN_LIFETIME).contains(&secs) {
        Ok(secs)
    } else {
        Err(SiteError::BadLifetime)
    }
}

/// How a site's tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signing {
    /// With the dashboard's active key, verified through the JWKS.
    Rs256,
    /// With the site's own shared secret (miniOrange free edition).
    Hs256,
}

impl Signing {
    pub fn as_str(self) -> &'static str {
        match self {
            Signing::Rs256 => "RS256",
            Signing::Hs256 => "HS256",
        }
    }

    pub fn parse(s: &str) -> Option<Signing> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RS256" => Some(Signing::Rs256),
            "HS256" => Some(Signing::Hs256),
            _ => None,
        }
    }
}

/// A client site as the dashboard keeps it (its secret stays sealed in the
/// store; only whether it has one is known here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub client: String,
    /// Normalised: exactly the token's `aud`.
    pub url: String,
    pub profile: Profile,
    pub login_template: String,
    /// miniOrange's attribute mapping: the claim that carries the username.
    pub username_claim: String,
    pub signing: Signing,
    pub has_secret: bool,
    /// Roles that may be granted here, highest first.
    pub roles: Vec<String>,
    pub token_lifetime: i64,
    pub enabled: bool,
    pub notes: String,
    /// Bumped by every change, so a launch can tell the site did not change under it.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a person typed for a site (a form, a CLI call or a CSV row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteInput {
    pub name: String,
    pub client: String,
    pub url: String,
    /// Empty: `twl-sso`.
    pub profile: String,
    /// Empty: the profile's default.
    pub login_template: String,
    /// Empty: `username`.
    pub username_claim: String,
    /// Empty: RS256 (HS256 when a miniOrange site is given a secret).
    pub signing: String,
    /// Only for HS256; never shown again (nor printed).
    pub secret: Option<Secret>,
    /// Empty: the five core roles.
    pub roles: Vec<String>,
    /// None: 60 s.
    pub token_lifetime: Option<i64>,
    pub notes: String,
}

/// A validated site, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSite {
    pub name: String,
    pub client: String,
    pub url: String,
    pub profile: Profile,
    pub login_template: String,
    pub username_claim: String,
    pub signing: Signing,
    pub secret: Option<Secret>,
    pub roles: Vec<String>,
    pub token_lifetime: i64,
    pub notes: String,
}

/// One field's problem, to be shown beside that field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Claims a site's username mapping may not take over.
const RESERVED_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "wp_role",
    "email",
    "name",
    "given_name",
    "family_name",
];

const MIN_SECRET_LEN: usize = 32;

fn check_text(
    field: &'static str,
    label: &str,
    v: &str,
    max: usize,
    required: bool,
) -> Result<String, FieldError> {
    let v = v.trim();
    let fail = |message: String| FieldError { field, message };
    if required && v.is_empty() {
        return Err(fail(format!("give the {label}")));
    }
    if v.chars().count() > max {
        return Err(fail(format!("the {label} is longer than {max} characters")));
    }
    if v.chars()
        .any(|c| super::people::is_control_or_bidi(c) && c != '\n' && c != '\t')
    {
        return Err(fail(format!("the {label} contains control characters")));
    }
    Ok(v.to_string())
}

impl SiteInput {
    /// Check every field; all problems at once, each named by its field.
    pub fn validate(self) -> Result<ValidSite, Vec<FieldError>> {
        self.validate_keeping(false)
    }

    /// Check an edit of a site. With `has_secret`, an HS256 site may leave
    /// the secret empty to keep the one it has (`secret` is then `None`).
    pub fn validate_keeping(self, has_secret: bool) -> Result<ValidSite, Vec<FieldError>> {
        let mut errors = Vec::new();
        let keep = |r: Result<String, FieldError>, errors: &mut Vec<FieldError>| {
            r.map_err(|e| errors.push(e)).unwrap_or_default()
        };
        let name = keep(
            check_text("name", "site name", &self.name, 200, true),
            &mut errors,
        );
        let client = keep(
            check_text("client", "client", &self.client, 200, true),
            &mut errors,
        );
        let notes = keep(
            check_text("notes", "notes", &self.notes, 5000, false),
            &mut errors,
        );
        let url = keep(
            normalise_url(&self.url).map_err(|e| FieldError {
                field: "url",
                message: e.to_string(),
            }),
            &mut errors,
        );
        let profile = if self.profile.trim().is_empty() {
            Profile::TwlSso
        } else {
            Profile::parse(&self.profile).unwrap_or_else(|| {
                errors.push(FieldError {
                    field: "profile",
                    message: format!(
                        "unknown profile {:?}: use twl-sso, connector or miniorange",
                        self.profile.trim()
                    ),
                });
                Profile::TwlSso
            })
        };
        // Another profile's default template follows a change of profile
        // (a site moving from twl-sso to the connector keeps no stale action).
        let login_template = if self.login_template.trim().is_empty()
            || Profile::ALL
                .iter()
                .any(|p| *p != profile && p.default_login_template() == self.login_template.trim())
        {
            profile.default_login_template().to_string()
        } else {
            keep(
                check_login_template(&self.login_template).map_err(|e| FieldError {
                    field: "login_template",
                    message: e.to_string(),
                }),
                &mut errors,
            )
        };
        let username_claim = match self.username_claim.trim() {
            "" => "username".to_string(),
            c if c.len() <= 64
                && c.chars().all(|ch| {
                    ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.'
                })
                && !RESERVED_CLAIMS.contains(&c) =>
            {
                c.to_string()
            }
            c => {
                errors.push(FieldError {
                    field: "username_claim",
                    message: format!(
                        "{c:?} cannot carry the username: use a plain claim name such as username"
                    ),
                });
                String::new()
            }
        };
        let secret = self
            .secret
            .map(|s| s.expose().trim().to_string())
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let signing = match (self.signing.trim(), profile) {
            ("", Profile::MiniOrange) if secret.is_some() => Signing::Hs256,
            ("", _) => Signing::Rs256,
            (s, p) => match (Signing::parse(s), p) {
                (Some(Signing::Hs256), p @ (Profile::TwlSso | Profile::Connector)) => {
                    errors.push(FieldError {
                        field: "signing",
                        message: format!("{} sites verify RS256 tokens through the key set; HS256 is for miniOrange sites", p.as_str()),
                    });
                    Signing::Rs256
                }
                (Some(sig), _) => sig,
                (None, _) => {
                    errors.push(FieldError {
                        field: "signing",
                        message: format!("unknown signing {s:?}: use RS256 or HS256"),
                    });
                    Signing::Rs256
                }
            },
        };
        match (signing, &secret) {
            (Signing::Hs256, Some(s)) if s.expose().chars().count() >= MIN_SECRET_LEN => {}
            (Signing::Hs256, None) if has_secret => {}
            (Signing::Hs256, _) => errors.push(FieldError {
                field: "secret",
                message: SiteError::WeakSecret.to_string(),
            }),
            (Signing::Rs256, Some(_)) => errors.push(FieldError {
                field: "secret",
                message: "a secret is only used by HS256 sites: leave it out for RS256".into(),
            }),
            (Signing::Rs256, None) => {}
        }
        let roles = if self.roles.iter().all(|r| r.trim().is_empty()) {
            CORE_ROLES.iter().map(|r| r.to_string()).collect()
        } else {
            let given: Vec<String> = self
                .roles
                .iter()
                .filter(|r| !r.trim().is_empty())
                .cloned()
                .collect();
            check_roles(&given)
                .map_err(|e| {
                    errors.push(FieldError {
                        field: "roles",
                        message: e.to_string(),
                    })
                })
                .unwrap_or_default()
        };
        let token_lifetime = check_lifetime(self.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME))
            .map_err(|e| {
                errors.push(FieldError {
                    field: "token_lifetime",
                    message: e.to_string(),
                })
            })
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidSite {
            name,
            client,
            url,
            profile,
            login_template,
            username_claim,
            signing,
            secret,
            roles,
            token_lifetime,
            notes,
        })
    }
}

/// Roles are stored space-separated, highest first.
pub fn join_roles(roles: &[String]) -> String {
    roles.join(" ")
}

pub fn split_roles(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_to_what_wordpress_reports() {
        let ok = [
            ("https://Client.Example/", "https://client.example"),
            ("https://client.example:443", "https://client.example"),
            (
                "https://client.example:8443/",
                "https://client.example:8443",
            ),
            (
                "https://client.example/blog/",
                "https://client.example/blog",
            ),
            ("https://client.example/blog", "https://client.example/blog"),
            (
                "  https://client.example./shop//",
                "https://client.example/shop",
            ),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("http://localhost:3002/wp", "http://localhost:3002/wp"),
            (
                "https://xn--bcher-kva.example",
                "https://xn--bcher-kva.example",
            ),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalise_url(raw).as_deref(), Ok(want), "{raw}");
        }
        let bad = [
            ("http://client.example", SiteError::NotHttps),
            ("ftp://client.example", SiteError::NotHttps),
            ("javascript:alert(1)", SiteError::NotHttps),
            ("https://u:p@client.example", SiteError::Credentials),
            ("https://client.example/?p=1", SiteError::QueryOrFragment),
            ("https://client.example/#x", SiteError::QueryOrFragment),
        ];
        for (raw, want) in bad {
            assert_eq!(normalise_url(raw), Err(want), "{raw}");
        }
        assert!(matches!(
            normalise_url("client.example"),
            Err(SiteError::NotAUrl(_))
        ));
        assert!(matches!(
            normalise_url("https://cl ient.example"),
            Err(SiteError::NotAUrl(_))
        ));
    }

    // Found by fuzzing (fuzz/fuzz_targets/site_url.rs): a host of dots only
    // was trimmed to nothing, so `https:/.//b//x` came out as
    // `https:////b//x`, a URL whose host is `b`; and a host whose trailing
    // dots were trimmed could read as another host or none.
    #[test]
    fn a_host_is_still_the_same_host_without_its_trailing_dots() {
        for raw in [
            "https:/.//b//%2ep:wss12[]%2b[]\u{FFFD}:",
            "https://.//evil.example/wp",
            "https:./Xcme.example",
            "https://.../",
            // Trailing dots dropped, what is left reads as an IPv4 address
            // (`2` is 0.0.0.2) or as no valid host (`m.0`).
            "     https:2..//csiapt/",
            "https://m.0...:3002",
            "https:+linc%2E2...//exampnc.//og",
        ] {
            assert!(
                matches!(normalise_url(raw), Err(SiteError::NotAUrl(_))),
                "{raw}: {:?}",
                normalise_url(raw)
            );
        }
    }

    #[test]
    fn login_urls_follow_the_profile_template() {
        let t = check_login_template(Profile::TwlSso.default_login_template()).unwrap();
        assert_eq!(
            login_url("https://c.example/blog", &t, "aaa.bbb.ccc", None),
            "https://c.example/blog/wp-login.php?action=twl_sso&token=aaa.bbb.ccc"
        );
        assert_eq!(
            login_url("https://c.example", &t, "a.b.c", Some("/wp-admin/post.php?post=7&action=edit")),
            "https://c.example/wp-login.php?action=twl_sso&token=a.b.c&redirect_to=https%3A%2F%2Fc.example%2Fwp-admin%2Fpost.php%3Fpost%3D7%26action%3Dedit"
        );
        let m = check_login_template(Profile::MiniOrange.default_login_template()).unwrap();
        assert_eq!(
            login_url("https://m.example", &m, "x.y.z", None),
            "https://m.example/?mo_jwt_token=x.y.z"
        );
        for bad in [
            "wp-login.php?token={token}",
            "//evil.example/?t={token}",
            "/login/{token}",
            "/?a={token}&b={token}",
            "/?t={token}#x",
            "https://x/?t={token}",
        ] {
            assert_eq!(
                check_login_template(bad),
                Err(SiteError::BadTemplate),
                "{bad}"
            );
        }
    }

    #[test]
    fn deep_links_stay_on_the_site() {
        assert_eq!(check_deep_link(""), Ok(None));
        assert_eq!(
            check_deep_link("/wp-admin/edit.php").unwrap().as_deref(),
            Some("/wp-admin/edit.php")
        );
        assert_eq!(
            check_deep_link("/wp-admin/../wp-admin/post.php?post=7")
                .unwrap()
                .as_deref(),
            Some("/wp-admin/post.php?post=7")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "wp-admin",
            "/a b",
            "/x#y",
            "\\\\evil",
            "/.//evil.example/x",
            "/a/..//evil.example",
            "/%2e//evil.example",
        ] {
            assert_eq!(check_deep_link(bad), Err(SiteError::BadDeepLink), "{bad}");
        }
    }

    fn input(url: &str) -> SiteInput {
        SiteInput {
            name: "Acme Shop".into(),
            client: "Acme".into(),
            url: url.into(),
            ..SiteInput::default()
        }
    }

    #[test]
    fn a_site_gets_its_profile_defaults() {
        let s = input("https://Shop.Acme.example/").validate().unwrap();
        assert_eq!(s.url, "https://shop.acme.example");
        assert_eq!((s.profile, s.signing), (Profile::TwlSso, Signing::Rs256));
        assert_eq!(
            s.login_template,
            "/wp-login.php?action=twl_sso&token={token}"
        );
        assert_eq!(s.roles, CORE_ROLES);
        assert_eq!(s.token_lifetime, 60);

        let mut m = input("https://m.example");
        m.profile = "miniorange".into();
        m.secret = Some(Secret::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"));
        let m = m.validate().unwrap();
        assert_eq!(
            (m.profile, m.signing),
            (Profile::MiniOrange, Signing::Hs256)
        );
        assert_eq!(m.login_template, "/?mo_jwt_token={token}");
        assert_eq!(m.username_claim, "username");
    }

    #[test]
    fn a_connector_site_signs_rs256_at_its_own_action() {
        let mut c = input("https://c.example/blog");
        c.profile = "connector".into();
        let c = c.validate().unwrap();
        assert_eq!((c.profile, c.signing), (Profile::Connector, Signing::Rs256));
        assert_eq!(
            c.login_template,
            "/wp-login.php?action=agency_sso&token={token}"
        );
        assert_eq!(Profile::parse(c.profile.as_str()), Some(Profile::Connector));

        // A twl-sso site moving to the connector leaves TWL's action behind;
        // a template of the site's own is kept.
        let mut moved = input("https://c.example");
        moved.profile = "connector".into();
        moved.login_template = Profile::TwlSso.default_login_template().into();
        assert_eq!(
            moved.validate().unwrap().login_template,
            Profile::Connector.default_login_template()
        );
        let mut own = input("https://c.example");
        own.profile = "connector".into();
        own.login_template = "/sso-login.php?action=agency_sso&token={token}".into();
        assert_eq!(
            own.validate().unwrap().login_template,
            "/sso-login.php?action=agency_sso&token={token}"
        );

        let mut hs = input("https://c.example");
        hs.profile = "connector".into();
        hs.signing = "HS256".into();
        hs.secret = Some(Secret::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"));
        let errors = hs.validate().unwrap_err();
        assert!(errors.iter().any(|e| e.field == "signing"), "{errors:?}");
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = SiteInput {
            name: " ".into(),
            client: "Acme".into(),
            url: "http://acme.example".into(),
            profile: "wordpress".into(),
            roles: vec!["Editor".into()],
            token_lifetime: Some(3600),
            username_claim: "exp".into(),
            ..SiteInput::default()
        };
        let errors = bad.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "url",
                "profile",
                "username_claim",
                "roles",
                "token_lifetime"
            ]
        );
        assert!(errors[1].message.contains("https"), "{:?}", errors[1]);

        let mut weak = input("https://m.example");
        weak.profile = "miniorange".into();
        weak.signing = "HS256".into();
        weak.secret = Some(Secret::new("short"));
        assert_eq!(weak.validate().unwrap_err()[0].field, "secret");

        let mut hs_twl = input("https://t.example");
        hs_twl.signing = "HS256".into();
        hs_twl.secret = Some(Secret::new("x".repeat(40)));
        assert_eq!(hs_twl.validate().unwrap_err()[0].field, "signing");
    }

    #[test]
    fn roles_are_slugs() {
        assert_eq!(
            check_roles(&["editor".into(), "shop_manager".into(), "editor".into()]).unwrap(),
            ["editor", "shop_manager"]
        );
        assert!(matches!(check_role("Editor"), Err(SiteError::BadRole(_))));
        assert!(matches!(check_role("<script>"), Err(SiteError::BadRole(_))));
        assert_eq!(check_roles(&[]), Err(SiteError::NoRoles));
        assert!(
            check_lifetime(60).is_ok()
                && check_lifetime(301).is_err()
                && check_lifetime(0).is_err()
        );
    }
}

//! Configuration: read once from flags or `SSO_*` environment variables,
//! validated into [`Config`] at start-up. A bad value stops the program with
//! one line naming the key. Secrets never reach a `Debug` or a log.

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use url::Url;

use crate::domain::identity::SignInPolicy;
use crate::domain::keys::KeySettings;
use crate::domain::keys::RotationPolicy;
use crate::domain::session::SessionPolicy;
use crate::domain::sites::is_loopback;

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

pub use crate::domain::secrets::Secret;

/// The raw settings as given. Every field is a string so that validation,
/// not the flag parser, words the error (with the environment key's name).
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The dashboard's public URL; also the token issuer (`iss`).
    #[arg(long, env = "SSO_PUBLIC_URL", default_value = "http://127.0.0.1:3000")]
    pub public_url: String,
    /// Address to listen on (defaults to LEPTOS_SITE_ADDR, then 127.0.0.1:3000).
    #[arg(long, env = "SSO_BIND")]
    pub bind: Option<String>,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(
        long,
        env = "SSO_DATABASE_URL",
        default_value = "sqlite://data/agency-sso.db"
    )]
    pub database_url: Secret,
    /// Where generated local files (a development master key) are kept.
    #[arg(long, env = "SSO_DATA_DIR", default_value = "data")]
    pub data_dir: String,
    /// The OpenID Connect issuer staff sign in with.
    #[arg(long, env = "SSO_OIDC_ISSUER", default_value = GOOGLE_ISSUER)]
    pub oidc_issuer: String,
    #[arg(long, env = "SSO_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    #[arg(long, env = "SSO_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<Secret>,
    /// Seconds any one call to the identity provider may take (discovery,
    /// code exchange, its keys) before sign-in fails with a clear page.
    #[arg(long, env = "SSO_OIDC_TIMEOUT_SECONDS", default_value = "10")]
    pub oidc_timeout_seconds: String,
    /// Seconds a client has to send each request's head, and each part of
    /// its body; also how long an idle keep-alive connection is kept.
    #[arg(long, env = "SSO_CLIENT_TIMEOUT_SECONDS", default_value = "10")]
    pub client_timeout_seconds: String,
    /// Shown on the sign-in button ("Sign in with ...").
    #[arg(long, env = "SSO_OIDC_PROVIDER_NAME")]
    pub oidc_provider_name: Option<String>,
    /// Require Google's `hd` claim in the ID token (default: on for Google).
    #[arg(long, env = "SSO_REQUIRE_HD")]
    pub require_hd: Option<String>,
    /// Admit an address whose ID token has no `email_verified` claim at all
    /// (Microsoft Entra ID never sends it). Off by default: only a provider
    /// that owns every address it issues may be trusted this way. An
    /// explicit `email_verified: false` is refused whatever this says.
    #[arg(long, env = "SSO_TRUST_UNVERIFIED_EMAIL")]
    pub trust_unverified_email: Option<String>,
    /// Comma-separated e-mail domains whose verified users may sign in.
    #[arg(long, env = "SSO_ALLOWED_DOMAINS", default_value = "")]
    pub allowed_domains: String,
    /// Comma-separated e-mail addresses that are admins from their first sign-in.
    #[arg(long, env = "SSO_ADMIN_EMAILS", default_value = "")]
    pub admin_emails: String,
    /// 32 bytes, base64: encrypts private keys and site secrets at rest.
    #[arg(long, env = "SSO_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<Secret>,
    /// A file holding the master key (instead of SSO_MASTER_KEY): the
    /// Debian package's, or a systemd credential (`$CREDENTIALS_DIRECTORY/...`).
    #[arg(long, env = "SSO_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Earlier master keys, comma-separated: they only open values sealed
    /// before the current key was introduced (see `agency-sso keys rewrap`).
    #[arg(long, env = "SSO_MASTER_KEYS_OLD", hide_env_values = true)]
    pub master_keys_old: Option<Secret>,
    /// RSA key size for new signing keys: 2048, 3072 or 4096.
    #[arg(long, env = "SSO_KEY_BITS", default_value = "2048")]
    pub key_bits: String,
    /// Days a signing key signs before the next one takes over.
    #[arg(long, env = "SSO_KEY_ROTATION_DAYS", default_value = "30")]
    pub key_rotation_days: String,
    /// Hours a new key is published in the JWKS before it signs.
    #[arg(long, env = "SSO_KEY_PUBLISH_AHEAD_HOURS", default_value = "168")]
    pub key_publish_ahead_hours: String,
    /// Hours a retired key stays in the JWKS after its last token.
    #[arg(long, env = "SSO_KEY_KEEP_AFTER_HOURS", default_value = "168")]
    pub key_keep_after_hours: String,
    /// Seconds sites may cache the JWKS (`Cache-Control: max-age`).
    #[arg(long, env = "SSO_JWKS_MAX_AGE", default_value = "300")]
    pub jwks_max_age: String,
    /// Seconds between each instance's checks for key ring changes.
    #[arg(long, env = "SSO_KEY_REFRESH_SECONDS", default_value = "5")]
    pub key_refresh_seconds: String,
    /// Minutes without a request after which a session ends.
    #[arg(long, env = "SSO_SESSION_IDLE_MINUTES", default_value = "120")]
    pub session_idle_minutes: String,
    /// Hours after sign-in after which a session ends, however active.
    #[arg(long, env = "SSO_SESSION_MAX_HOURS", default_value = "12")]
    pub session_max_hours: String,
    /// Minutes after signing in within which an admin may take sensitive
    /// actions (grant administrator, revoke a key, delete a site, import);
    /// after that they sign in again first.
    #[arg(long, env = "SSO_REAUTH_MINUTES", default_value = "15")]
    pub reauth_minutes: String,
    /// Tests only: a file holding seconds to add to the clock, so that
    /// browser tests can move time forward. Refused with an https public URL.
    #[arg(long, env = "SSO_TEST_CLOCK_FILE", hide = true)]
    pub test_clock_file: Option<String>,
    /// `text` or `json`.
    #[arg(long, env = "SSO_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Minutes between signed checkpoints of the audit chain.
    #[arg(long, env = "SSO_AUDIT_CHECKPOINT_MINUTES", default_value = "60")]
    pub audit_checkpoint_minutes: String,
    /// Days audit records are kept (pruned through a signed checkpoint);
    /// empty keeps them for good.
    #[arg(long, env = "SSO_AUDIT_RETENTION_DAYS", default_value = "")]
    pub audit_retention_days: String,
    /// Sign-in requests (start and return) per client address, e.g.
    /// `60/min`; `off` for none. Over it: 429, recorded.
    #[arg(long, env = "SSO_SIGN_IN_RATE", default_value = "60/min")]
    pub sign_in_rate: String,
    /// Launches per person, e.g. `60/min`; `off` for none.
    #[arg(long, env = "SSO_LAUNCH_RATE", default_value = "60/min")]
    pub launch_rate: String,
    /// Launches per client address (an office behind one address shares
    /// it), e.g. `600/min`; `off` for none.
    #[arg(long, env = "SSO_LAUNCH_CLIENT_RATE", default_value = "600/min")]
    pub launch_client_rate: String,
    /// Comma-separated addresses or blocks (`10.0.0.0/8`) of the load
    /// balancers in front: their `X-Forwarded-For` names the client.
    #[arg(long, env = "SSO_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// The header the trusted proxies name the client in:
    /// `x-forwarded-for` or `forwarded` (RFC 7239).
    #[arg(long, env = "SSO_PROXY_HEADER", default_value = "x-forwarded-for")]
    pub proxy_header: String,
    /// Bearer token for `/metrics` (Prometheus); without it, `/metrics` is off.
    #[arg(long, env = "SSO_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Where just-in-time access requests and decisions are posted (a
    /// Slack or Teams incoming webhook, or your own receiver); unset: none.
    #[arg(long, env = "SSO_NOTIFY_URL")]
    pub notify_url: Option<String>,
    /// The HMAC-SHA256 key of the notifications' signature header (32
    /// characters or more); required with SSO_NOTIFY_URL.
    #[arg(long, env = "SSO_NOTIFY_SECRET", hide_env_values = true)]
    pub notify_secret: Option<Secret>,
    /// The body as a JSON document whose strings may hold `{text}` (for
    /// Teams, say); unset: `{"text": ...}` as Slack takes it.
    #[arg(long, env = "SSO_NOTIFY_TEMPLATE")]
    pub notify_template: Option<String>,
}

/// Where notifications go, and how they are signed and shaped.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub url: String,
    pub secret: Secret,
    pub template: Option<serde_json::Value>,
}

/// Rate limits, each per process (`None`: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitSettings {
    pub sign_in: Option<crate::domain::limits::Rate>,
    pub launch_person: Option<crate::domain::limits::Rate>,
    pub launch_client: Option<crate::domain::limits::Rate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub provider_name: String,
    /// Bound on each call to the provider.
    pub timeout_secs: u64,
}

/// Decoded older master keys: their `Debug` shows how many, never the bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OldMasterKeys(pub Vec<[u8; 32]>);

impl std::ops::Deref for OldMasterKeys {
    type Target = [[u8; 32]];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for OldMasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[<redacted>; {}]", self.0.len())
    }
}

/// Validated configuration, passed in state; never read from globals.
#[derive(Debug, Clone)]
pub struct Config {
    /// Without a trailing slash: exactly the token issuer.
    pub public_url: String,
    /// `scheme://host[:port]`, what browsers send as `Origin`.
    pub public_origin: String,
    pub bind: Option<SocketAddr>,
    pub database_url: Secret,
    pub db_kind: DbKind,
    pub data_dir: PathBuf,
    pub oidc: OidcSettings,
    /// Bound on a client's pauses while sending a request (slow clients).
    pub client_timeout: std::time::Duration,
    pub sign_in: SignInPolicy,
    pub master_key: Option<Secret>,
    /// Decoded older master keys (open only).
    pub master_keys_old: OldMasterKeys,
    pub keys: KeySettings,
    pub session: SessionPolicy,
    pub log_format: LogFormat,
    pub audit: crate::domain::audit::AuditSettings,
    /// Seconds a sign-in counts as recent for sensitive actions.
    pub reauth_secs: i64,
    /// Tests only (loopback public URL): the clock offset file.
    pub test_clock_file: Option<PathBuf>,
    pub limits: LimitSettings,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::domain::limits::Cidr>,
    pub proxy_header: crate::domain::limits::ProxyHeader,
    pub metrics_token: Option<Secret>,
    /// Just-in-time access notifications (`None`: off).
    pub notify: Option<NotifySettings>,
}

/// One configuration problem: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
    }
}

impl Config {
    /// Served over https: cookies are `Secure` with the `__Host-` prefix, HSTS is sent.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn redirect_url(&self) -> String {
        format!("{}/auth/callback", self.public_url)
    }

    /// The client id and secret, needed only to serve sign-in.
    pub fn oidc_client(&self) -> Result<(&str, &Secret), ConfigError> {
        let id = self.oidc.client_id.as_deref().ok_or_else(|| {
            err(
                "SSO_OIDC_CLIENT_ID",
                "missing; register the dashboard with your identity provider (see README)",
            )
        })?;
        let secret = self.oidc.client_secret.as_ref().ok_or_else(|| {
            err(
                "SSO_OIDC_CLIENT_SECRET",
                "missing; it is issued with the client id",
            )
        })?;
        Ok((id, secret))
    }
}

impl ConfigArgs {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let (public_url, public_origin) = parse_public_url(&self.public_url)?;
        let keys = parse_key_settings(&self)?;
        let https = public_url.starts_with("https://");

        let bind = self
            .bind
            .as_deref()
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.parse::<SocketAddr>().map_err(|_| {
                    err(
                        "SSO_BIND",
                        format!("{b:?} is not an address like 127.0.0.1:3000"),
                    )
                })
            })
            .transpose()?;

        let db = self.database_url.expose().trim();
        let db_kind = if db.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            DbKind::Postgres
        } else {
            return Err(err(
                "SSO_DATABASE_URL",
                "must start with sqlite:// or postgres://",
            ));
        };

        let issuer = Url::parse(self.oidc_issuer.trim())
            .map_err(|e| err("SSO_OIDC_ISSUER", format!("not a URL ({e})")))?;
        let loopback = is_loopback(&issuer);
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
            return Err(err(
                "SSO_OIDC_ISSUER",
                "must be https (plain http only on loopback, for local testing)",
            ));
        }
        // Kept exactly as given: ID tokens' `iss` must equal it, and some
        // providers' issuers end in a slash.
        let issuer = self.oidc_issuer.trim().to_string();
        let is_google = issuer.trim_end_matches('/') == GOOGLE_ISSUER;

        let client_id = self
            .oidc_client_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let client_secret = self
            .oidc_client_secret
            .filter(|s| !s.expose().trim().is_empty());

        let trust_unverified_email = match self.trust_unverified_email.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) => parse_bool(v)
                .ok_or_else(|| err("SSO_TRUST_UNVERIFIED_EMAIL", "must be true or false"))?,
        };
        let require_hd = match self.require_hd.as_deref().map(str::trim) {
            None | Some("") => is_google,
            Some(v) => {
                parse_bool(v).ok_or_else(|| err("SSO_REQUIRE_HD", "must be true or false"))?
            }
        };

        let allowed_domains = split_list(&self.allowed_domains);
        if allowed_domains.is_empty() {
            return Err(err(
                "SSO_ALLOWED_DOMAINS",
                "missing; list the e-mail domains whose staff may sign in, e.g. agency.example",
            ));
        }
        for d in &allowed_domains {
            let ok = d.contains('.')
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && !d.starts_with('.')
                && !d.ends_with('.');
            if !ok {
                return Err(err(
                    "SSO_ALLOWED_DOMAINS",
                    format!("{d:?} is not a domain name"),
                ));
            }
        }
        let admin_emails = split_list(&self.admin_emails);
        for a in &admin_emails {
            if crate::domain::identity::email_domain(a).is_none() {
                return Err(err(
                    "SSO_ADMIN_EMAILS",
                    format!("{a:?} is not an e-mail address"),
                ));
            }
        }

        let mut master_key = self.master_key.filter(|k| !k.expose().trim().is_empty());
        let file = self.master_key_file.filter(|f| !f.as_os_str().is_empty());
        match (&master_key, file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "SSO_MASTER_KEY_FILE",
                    "set either SSO_MASTER_KEY or SSO_MASTER_KEY_FILE, not both",
                ))
            }
            (None, Some(f)) => {
                let raw = std::fs::read_to_string(&f).map_err(|e| {
                    err(
                        "SSO_MASTER_KEY_FILE",
                        format!("cannot read {}: {e}", f.display()),
                    )
                })?;
                decode_master_key(&raw)
                    .map_err(|m| err("SSO_MASTER_KEY_FILE", format!("{}: {m}", f.display())))?;
                master_key = Some(Secret::new(raw.trim()));
            }
            _ => {}
        }
        match &master_key {
            Some(k) => {
                decode_master_key(k.expose()).map_err(|m| err("SSO_MASTER_KEY", m))?;
            }
            None if https => return Err(err(
                "SSO_MASTER_KEY",
                "required when SSO_PUBLIC_URL is https (or SSO_MASTER_KEY_FILE); create one with `openssl rand -base64 32`",
            )),
            None => {}
        }

        let mut master_keys_old = Vec::new();
        if let Some(list) = &self.master_keys_old {
            for (i, k) in list
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .enumerate()
            {
                master_keys_old.push(
                    decode_master_key(k)
                        .map_err(|m| err("SSO_MASTER_KEYS_OLD", format!("key {} {m}", i + 1)))?,
                );
            }
        }
        let idle = parse_positive(&self.session_idle_minutes, "SSO_SESSION_IDLE_MINUTES")?;
        let max = parse_positive(&self.session_max_hours, "SSO_SESSION_MAX_HOURS")?;
        let checkpoint_minutes = parse_positive(
            &self.audit_checkpoint_minutes,
            "SSO_AUDIT_CHECKPOINT_MINUTES",
        )?;
        let retention_days = match self.audit_retention_days.trim() {
            "" => None,
            v => Some(parse_positive(v, "SSO_AUDIT_RETENTION_DAYS")?),
        };

        let reauth_minutes = parse_positive(&self.reauth_minutes, "SSO_REAUTH_MINUTES")?;
        let oidc_timeout = parse_positive(&self.oidc_timeout_seconds, "SSO_OIDC_TIMEOUT_SECONDS")?;
        if oidc_timeout > 60 {
            return Err(err(
                "SSO_OIDC_TIMEOUT_SECONDS",
                "at most 60: staff wait on the sign-in page that long".to_string(),
            ));
        }
        let client_timeout =
            parse_positive(&self.client_timeout_seconds, "SSO_CLIENT_TIMEOUT_SECONDS")?;
        if client_timeout > 300 {
            return Err(err("SSO_CLIENT_TIMEOUT_SECONDS", "at most 300".to_string()));
        }
        let test_clock_file = match self.test_clock_file.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(_) if public_url.starts_with("https://") => {
                return Err(err(
                    "SSO_TEST_CLOCK_FILE",
                    "a test clock is only for local tests (a loopback http public URL)".to_string(),
                ))
            }
            Some(path) => Some(PathBuf::from(path)),
        };

        use crate::domain::limits::{Cidr, Rate};
        let rate = |v: &str, key: &'static str| Rate::parse(v).map_err(|m| err(key, m));
        let limits = LimitSettings {
            sign_in: rate(&self.sign_in_rate, "SSO_SIGN_IN_RATE")?,
            launch_person: rate(&self.launch_rate, "SSO_LAUNCH_RATE")?,
            launch_client: rate(&self.launch_client_rate, "SSO_LAUNCH_CLIENT_RATE")?,
        };
        let trusted_proxies = split_list(&self.trusted_proxies)
            .iter()
            .map(|c| Cidr::parse(c).map_err(|m| err("SSO_TRUSTED_PROXIES", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let proxy_header = crate::domain::limits::ProxyHeader::parse(&self.proxy_header)
            .ok_or_else(|| err("SSO_PROXY_HEADER", "must be x-forwarded-for or forwarded"))?;

        let metrics_token = self.metrics_token.filter(|t| !t.expose().trim().is_empty());
        if let Some(t) = &metrics_token {
            if t.expose().len() < 16 {
                return Err(err(
                    "SSO_METRICS_TOKEN",
                    "too short: use at least 16 characters, e.g. `openssl rand -hex 16`",
                ));
            }
        }

        let notify = match self
            .notify_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(raw) => {
                const KEY: &str = "SSO_NOTIFY_URL";
                let url = Url::parse(raw).map_err(|e| err(KEY, format!("not a URL ({e})")))?;
                match url.scheme() {
                    "https" => {}
                    "http" if is_loopback(&url) => {}
                    _ => return Err(err(KEY, "must be https (plain http only on loopback)")),
                }
                let secret = self
                    .notify_secret
                    .filter(|s| !s.expose().trim().is_empty())
                    .ok_or_else(|| err("SSO_NOTIFY_SECRET", "required with SSO_NOTIFY_URL"))?;
                if secret.expose().len() < 32 {
                    return Err(err(
                        "SSO_NOTIFY_SECRET",
                        "too short: use at least 32 characters, e.g. `openssl rand -hex 32`",
                    ));
                }
                let template = match self.notify_template.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(t) => Some(
                        serde_json::from_str::<serde_json::Value>(t)
                            .map_err(|e| err("SSO_NOTIFY_TEMPLATE", format!("not JSON ({e})")))?,
                    ),
                };
                Some(NotifySettings {
                    url: url.to_string(),
                    secret,
                    template,
                })
            }
        };

        let log_format = match self.log_format.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(err(
                    "SSO_LOG_FORMAT",
                    format!("{other:?}: use text or json"),
                ))
            }
        };

        let provider_name = self
            .oidc_provider_name
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if is_google {
                    "Google".into()
                } else {
                    "your identity provider".into()
                }
            });

        Ok(Config {
            public_url,
            public_origin,
            bind,
            database_url: Secret::new(db.to_string()),
            db_kind,
            data_dir: PathBuf::from(self.data_dir),
            oidc: OidcSettings {
                issuer,
                client_id,
                client_secret,
                provider_name,
                timeout_secs: oidc_timeout as u64,
            },
            client_timeout: std::time::Duration::from_secs(client_timeout as u64),
            sign_in: SignInPolicy {
                allowed_domains,
                admin_emails,
                require_hosted_domain: require_hd,
                trust_unverified_email,
            },
            master_key,
            master_keys_old: OldMasterKeys(master_keys_old),
            keys,
            session: SessionPolicy {
                idle_secs: idle * 60,
                absolute_secs: max * 3600,
            },
            log_format,
            audit: crate::domain::audit::AuditSettings {
                checkpoint_secs: checkpoint_minutes as u64 * 60,
                retention_days,
            },
            reauth_secs: reauth_minutes * 60,
            test_clock_file,
            limits,
            trusted_proxies,
            proxy_header,
            metrics_token,
            notify,
        })
    }
}

fn parse_public_url(raw: &str) -> Result<(String, String), ConfigError> {
    const KEY: &str = "SSO_PUBLIC_URL";
    let url = Url::parse(raw.trim()).map_err(|e| err(KEY, format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(err(KEY, "must be https (plain http only on loopback)")),
        _ => return Err(err(KEY, "must be an http(s) URL")),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(err(
            KEY,
            "must be scheme://host[:port] only, without a path, query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(KEY, "must not contain credentials"));
    }
    let origin = url.origin().ascii_serialization();
    Ok((origin.clone(), origin))
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', ' ', '\n'])
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_key_settings(a: &ConfigArgs) -> Result<KeySettings, ConfigError> {
    let bits = match a.key_bits.trim() {
        "2048" => 2048,
        "3072" => 3072,
        "4096" => 4096,
        other => {
            return Err(err(
                "SSO_KEY_BITS",
                format!("{other:?}: use 2048, 3072 or 4096"),
            ))
        }
    };
    let days = parse_positive(&a.key_rotation_days, "SSO_KEY_ROTATION_DAYS")?;
    let ahead = parse_positive(&a.key_publish_ahead_hours, "SSO_KEY_PUBLISH_AHEAD_HOURS")?;
    let keep = parse_positive(&a.key_keep_after_hours, "SSO_KEY_KEEP_AFTER_HOURS")?;
    let max_age = parse_positive(&a.jwks_max_age, "SSO_JWKS_MAX_AGE")?;
    let refresh = parse_positive(&a.key_refresh_seconds, "SSO_KEY_REFRESH_SECONDS")?;
    if refresh > 300 {
        return Err(err(
            "SSO_KEY_REFRESH_SECONDS",
            "at most 300: instances must notice a revoked key quickly",
        ));
    }
    let policy = RotationPolicy {
        rotate_every: days * 86_400,
        publish_ahead: ahead * 3_600,
        keep_after: keep * 3_600,
    };
    if let Err(why) = policy.check(max_age, refresh) {
        let key = if why.contains("rotation period") {
            "SSO_KEY_ROTATION_DAYS"
        } else if why.contains("before they sign") {
            "SSO_KEY_PUBLISH_AHEAD_HOURS"
        } else {
            "SSO_KEY_KEEP_AFTER_HOURS"
        };
        return Err(err(key, why));
    }
    Ok(KeySettings {
        bits,
        policy,
        jwks_max_age: max_age,
        refresh_secs: refresh as u64,
    })
}

fn parse_positive(v: &str, key: &'static str) -> Result<i64, ConfigError> {
    match v.trim().parse::<i64>() {
        Ok(n) if n > 0 && n <= 10_000 => Ok(n),
        _ => Err(err(
            key,
            format!("{v:?} is not a whole number from 1 to 10000"),
        )),
    }
}

/// Decode a master key: 32 bytes in standard or URL-safe base64.
pub fn decode_master_key(raw: &str) -> Result<[u8; 32], String> {
    let raw = raw.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
        .map_err(|_| "must be base64 (create one with `openssl rand -base64 32`)".to_string())?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must decode to 32 bytes, got {}", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ConfigArgs,
    }

    fn args(extra: &[&str]) -> ConfigArgs {
        let mut v = vec!["t"];
        if !extra.contains(&"--allowed-domains") {
            v.extend_from_slice(&["--allowed-domains", "agency.test"]);
        }
        v.extend_from_slice(extra);
        T::try_parse_from(v).unwrap().a
    }

    #[test]
    fn notifications_need_an_https_url_a_long_secret_and_json_for_a_template() {
        let secret = "0123456789abcdef0123456789abcdef";
        let c = args(&[
            "--notify-url",
            "https://hooks.slack.com/services/T/B/X",
            "--notify-secret",
            secret,
        ])
        .validate()
        .unwrap();
        let n = c.notify.unwrap();
        assert_eq!(n.url, "https://hooks.slack.com/services/T/B/X");
        assert!(n.template.is_none());
        assert!(args(&[]).validate().unwrap().notify.is_none());
        let key = |a: &[&str]| args(a).validate().unwrap_err().key;
        assert_eq!(
            key(&["--notify-url", "https://hooks.example"]),
            "SSO_NOTIFY_SECRET"
        );
        assert_eq!(
            key(&[
                "--notify-url",
                "https://hooks.example",
                "--notify-secret",
                "short"
            ]),
            "SSO_NOTIFY_SECRET"
        );
        assert_eq!(
            key(&[
                "--notify-url",
                "http://hooks.example",
                "--notify-secret",
                secret
            ]),
            "SSO_NOTIFY_URL"
        );
        assert_eq!(
            key(&[
                "--notify-url",
                "https://hooks.example",
                "--notify-secret",
                secret,
                "--notify-template",
                "{text}"
            ]),
            "SSO_NOTIFY_TEMPLATE"
        );
        let teams = r#"{"type":"message","text":"{text}"}"#;
        let c = args(&[
            "--notify-url",
            "http://127.0.0.1:9/hook",
            "--notify-secret",
            secret,
            "--notify-template",
            teams,
        ])
        .validate()
        .unwrap();
        assert_eq!(c.notify.unwrap().template.unwrap()["type"], "message");
    }

    #[test]
    fn defaults_are_valid_for_local_use() {
        let c = args(&[]).validate().unwrap();
        assert_eq!(c.public_url, "http://127.0.0.1:3000");
        assert_eq!(c.db_kind, DbKind::Sqlite);
        assert!(
            c.sign_in.require_hosted_domain,
            "Google requires hd by default"
        );
        assert_eq!(c.oidc.provider_name, "Google");
        assert_eq!(c.redirect_url(), "http://127.0.0.1:3000/auth/callback");
    }

    #[test]
    fn the_master_key_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        std::fs::write(&file, format!("{key}\n")).unwrap();
        let https = ["--public-url", "https://sso.agency.example"];
        let path = file.to_str().unwrap();
        let c = args(&[https[0], https[1], "--master-key-file", path])
            .validate()
            .unwrap();
        assert_eq!(c.master_key.unwrap().expose(), key);
        // Unreadable, not a key, or both ways at once: named, never shown.
        let e = args(&["--master-key-file", "/nonexistent/master.key"])
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "SSO_MASTER_KEY_FILE");
        assert!(
            e.message.contains("cannot read /nonexistent/master.key"),
            "{}",
            e.message
        );
        std::fs::write(&file, "c2hvcnQ=").unwrap();
        let e = args(&["--master-key-file", path]).validate().unwrap_err();
        assert!(
            e.message.contains("must decode to 32 bytes"),
            "{}",
            e.message
        );
        let e = args(&["--master-key-file", path, "--master-key", &key])
            .validate()
            .unwrap_err();
        assert!(e.message.contains("not both"), "{}", e.message);
    }

    #[test]
    fn public_url_is_normalised_and_checked() {
        let c = args(&["--public-url", "https://SSO.Agency.example/"]);
        let c = ConfigArgs {
            master_key: Some(Secret::new(
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            )),
            ..c
        }
        .validate()
        .unwrap();
        assert_eq!(c.public_url, "https://sso.agency.example");
        assert!(c.is_https());
        for (bad, frag) in [
            ("http://sso.agency.example", "https"),
            ("https://sso.agency.example/app", "without a path"),
            ("ftp://x.example", "http(s)"),
            ("not a url", "not a URL"),
        ] {
            let e = args(&["--public-url", bad]).validate().unwrap_err();
            assert_eq!(e.key, "SSO_PUBLIC_URL");
            assert!(e.to_string().contains(frag), "{e}");
        }
    }

    #[test]
    fn the_test_clock_and_the_reauth_window() {
        let c = args(&[]).validate().unwrap();
        assert_eq!((c.reauth_secs, c.test_clock_file), (15 * 60, None));
        let c = args(&["--reauth-minutes", "5", "--test-clock-file", "/tmp/offset"])
            .validate()
            .unwrap();
        assert_eq!(c.reauth_secs, 300);
        assert_eq!(c.test_clock_file, Some(PathBuf::from("/tmp/offset")));
        let mut https = args(&[
            "--public-url",
            "https://sso.example",
            "--test-clock-file",
            "/tmp/offset",
        ]);
        https.master_key = Some(Secret::new(
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        ));
        assert_eq!(https.validate().unwrap_err().key, "SSO_TEST_CLOCK_FILE");
        assert_eq!(
            args(&["--reauth-minutes", "0"]).validate().unwrap_err().key,
            "SSO_REAUTH_MINUTES"
        );
    }

    #[test]
    fn https_requires_a_master_key() {
        let e = args(&["--public-url", "https://sso.example"])
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "SSO_MASTER_KEY");
        let e = args(&["--master-key", "c2hvcnQ="]).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "SSO_MASTER_KEY: must decode to 32 bytes, got 5"
        );
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let cases: &[(&[&str], &str)] = &[
            (&["--database-url", "mysql://x"], "SSO_DATABASE_URL"),
            (&["--oidc-issuer", "http://idp.example"], "SSO_OIDC_ISSUER"),
            (&["--allowed-domains", ""], "SSO_ALLOWED_DOMAINS"),
            (
                &["--allowed-domains", "not a domain"],
                "SSO_ALLOWED_DOMAINS",
            ),
            (&["--admin-emails", "nobody"], "SSO_ADMIN_EMAILS"),
            (&["--session-idle-minutes", "0"], "SSO_SESSION_IDLE_MINUTES"),
            (&["--session-max-hours", "x"], "SSO_SESSION_MAX_HOURS"),
            (&["--log-format", "xml"], "SSO_LOG_FORMAT"),
            (&["--bind", "nowhere"], "SSO_BIND"),
            (&["--require-hd", "maybe"], "SSO_REQUIRE_HD"),
            (&["--key-bits", "1024"], "SSO_KEY_BITS"),
            (&["--key-rotation-days", "0"], "SSO_KEY_ROTATION_DAYS"),
            // Published for less time than sites cache the JWKS.
            (
                &["--jwks-max-age", "7200", "--key-publish-ahead-hours", "1"],
                "SSO_KEY_PUBLISH_AHEAD_HOURS",
            ),
            (&["--key-keep-after-hours", "0"], "SSO_KEY_KEEP_AFTER_HOURS"),
            (
                &[
                    "--key-rotation-days",
                    "7",
                    "--key-publish-ahead-hours",
                    "168",
                ],
                "SSO_KEY_ROTATION_DAYS",
            ),
            (&["--key-refresh-seconds", "301"], "SSO_KEY_REFRESH_SECONDS"),
            (&["--master-keys-old", "c2hvcnQ="], "SSO_MASTER_KEYS_OLD"),
        ];
        for (flags, key) in cases {
            let e = args(flags).validate().unwrap_err();
            assert_eq!(e.key, *key, "{flags:?}");
        }
    }

    #[test]
    fn lists_are_lowercased_and_split() {
        let c = args(&[
            "--allowed-domains",
            "Agency.test, other.test",
            "--admin-emails",
            "Boss@Agency.test",
            "--oidc-issuer",
            "http://127.0.0.1:3001/",
        ])
        .validate()
        .unwrap();
        assert_eq!(c.sign_in.allowed_domains, ["agency.test", "other.test"]);
        assert_eq!(c.sign_in.admin_emails, ["boss@agency.test"]);
        assert_eq!(c.oidc.issuer, "http://127.0.0.1:3001/", "kept as given");
        assert!(!c.sign_in.require_hosted_domain);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = args(&[
            "--oidc-client-secret",
            "hunter2-client",
            "--database-url",
            "postgres://u:pgpass@h/db",
            "--master-key",
            &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        ]);
        let shown = format!("{c:?} {:?}", c.clone().validate().unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("pgpass"), "{shown}");
        assert!(!shown.contains("CQkJ"), "{shown}");
    }

    // Found by fuzzing (fuzz/fuzz_targets/config.rs): Config's derived
    // Debug printed the decoded older master keys as byte arrays.
    #[test]
    fn debug_never_shows_old_master_keys() {
        let old = [
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([9u8; 32]),
        ]
        .join(",");
        let c = args(&["--master-keys-old", &old]).validate().unwrap();
        assert_eq!(c.master_keys_old.len(), 2);
        assert_eq!(c.master_keys_old[1], [9u8; 32]);
        let shown = format!("{c:?}");
        assert!(
            shown.contains("master_keys_old: [<redacted>; 2]"),
            "{shown}"
        );
        assert!(
            !shown.contains("7, 7") && !shown.contains("9, 9"),
            "{shown}"
        );
    }
}

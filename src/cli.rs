//! The one binary's command line: `serve` (the default) and admin commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigArgs, LogFormat};
use crate::domain::audit::Actor;
use crate::service::Db;

#[derive(Parser, Debug)]
#[command(
    name = "agency-sso",
    version = crate::VERSION,
    about = "Single sign-on dashboard for an agency's WordPress sites"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the dashboard (the default).
    Serve,
    /// People who have signed in.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The signing key ring.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Client sites.
    Sites {
        #[command(subcommand)]
        command: SitesCommand,
    },
    /// Who may enter which site with which WordPress role.
    Grants {
        #[command(subcommand)]
        command: GrantsCommand,
    },
    /// Just-in-time access: requests for a higher role, their decisions,
    /// elevations in force (approvals here are the operator's).
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Tokens for the admin API (/api/v1): made here by the server's
    /// operator, or in the console by an admin.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The launch record.
    Launches {
        #[command(subcommand)]
        command: LaunchesCommand,
    },
    /// The audit log: verify, export, checkpoint, prune.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the SQLite database to FILE while the dashboard runs: a
    /// consistent snapshot without sessions, checked. (PostgreSQL: pg_dump.)
    Backup { file: std::path::PathBuf },
    /// Bring the database's schema up to date (what `serve` does when it
    /// starts); with --check, only say which migrations would be applied
    /// (exit 0: up to date, 1: some would be, 2: the database is newer).
    Migrate {
        #[arg(long)]
        check: bool,
    },
    /// Read the configuration and the database and say what is wrong
    /// before a start: settings, the master key, the schema, stored signing
    /// keys this instance cannot trust, the identity provider's discovery.
    /// Changes nothing; exit 1 when something would stop the dashboard.
    Check,
    /// For a container's health check: exit 0 when this dashboard's
    /// `/healthz` answers (on SSO_BIND, or --url).
    Healthcheck {
        #[arg(long)]
        url: Option<String>,
    },
    /// Demo data for trying the dashboard locally.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SitesCommand {
    /// Add a site.
    Add {
        #[arg(long)]
        name: String,
        /// The customer the site belongs to.
        #[arg(long)]
        client: String,
        /// The WordPress site URL (https; plain http only on loopback).
        #[arg(long)]
        url: String,
        /// twl-sso (default), connector (this project's plugin) or miniorange.
        #[arg(long, default_value = "")]
        profile: String,
        /// Login path and query with a {token} placeholder (default: the profile's).
        #[arg(long, default_value = "")]
        login_template: String,
        /// miniOrange: the claim that carries the username (default: username).
        #[arg(long, default_value = "")]
        username_claim: String,
        /// RS256 (default) or HS256 (miniOrange free edition, with --secret-stdin).
        #[arg(long, default_value = "")]
        signing: String,
        /// Read the site's HS256 secret from standard input (never from the command line).
        #[arg(long)]
        secret_stdin: bool,
        /// Roles that may be granted, highest first, comma-separated (default: the five core roles).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Token lifetime in seconds (default 60, at most 300).
        #[arg(long)]
        token_lifetime: Option<i64>,
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Every site.
    List,
    /// Disable a site (by id or URL): launches are refused.
    Disable { site: String },
    /// Enable a disabled site again.
    Enable { site: String },
    /// Replace the roles that may be granted on a site (highest first, comma-separated).
    SetRoles {
        site: String,
        #[arg(value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// Every connector site and how it stands (plugin, WordPress and PHP
    /// versions, keys held, refusals, last contact), worst first.
    Status {
        /// Ask every connector site now and wait for the answers first.
        #[arg(long)]
        check: bool,
        /// Print CSV instead of a table.
        #[arg(long)]
        csv: bool,
        /// Only sites that stand so: unreachable, outdated, missing-key,
        /// refusing, unchecked or ok.
        #[arg(long)]
        state: Option<String>,
    },
    /// Make connection codes, one per site URL: single use, bound to that
    /// URL, expiring. Prints CSV (url,code,expires_utc) for a script that
    /// runs `wp agency-sso connect CODE` on each site. The codes are shown
    /// this once only.
    ConnectCode {
        /// The sites' URLs.
        urls: Vec<String>,
        /// Also every site URL of this CSV (the sites import's format).
        #[arg(long)]
        from_csv: Option<std::path::PathBuf>,
        /// The client a new site is filed under (default: the site's host).
        #[arg(long, default_value = "")]
        client: String,
        /// How long the codes last, in hours (default 24, at most 720).
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantsCommand {
    /// Give a person (by e-mail) a role on a site (by URL or id); with
    /// --eligible, they may also ask for that higher role for up to
    /// --max-hours at a time (just-in-time access).
    Add {
        email: String,
        site: String,
        #[arg(long)]
        role: String,
        #[arg(long, requires = "max_hours")]
        eligible: Option<String>,
        /// Hours (fractions allowed: 0.5 is 30 minutes).
        #[arg(long, requires = "eligible")]
        max_hours: Option<f64>,
    },
    /// Every grant, or one person's (--email) or one site's (--site).
    List {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        site: Option<String>,
    },
    /// Take a person's grant on a site away.
    Revoke { email: String, site: String },
    /// Every person's grant (or one site's) as CSV on standard output:
    /// email,site,role,expires_utc,reason,eligible_role,eligible_max_minutes.
    Export {
        #[arg(long)]
        site: Option<String>,
    },
    /// Read grants from a CSV (the export's columns; email, site and role
    /// required) and say what would change; --apply makes the changes, all
    /// of them or none. An empty eligible_role keeps the grant's
    /// eligibility, `none` takes it away. Grants the file does not name stay.
    Import {
        file: std::path::PathBuf,
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Make a token; prints it last, this once only (it is stored hashed).
    Create {
        #[arg(long)]
        name: String,
        /// What it may do (repeat, or comma-separated): sites:read,
        /// sites:write, access:read, access:write, people:read,
        /// people:write, teams:read, teams:write, keys:read, keys:write,
        /// audit:read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// How long it lasts (1 to 365).
        #[arg(long)]
        days: i64,
    },
    /// Every token: its scopes, maker, expiry and last use (never the secret).
    List,
    /// Revoke a token by name: it acts no more.
    Revoke { name: String },
}

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// File a request on a person's behalf (recorded as the operator's);
    /// prints its id last.
    Request {
        email: String,
        site: String,
        #[arg(long)]
        role: String,
        /// Hours (fractions allowed).
        #[arg(long)]
        hours: f64,
        #[arg(long)]
        reason: String,
    },
    /// Pending requests (the default), elevations in force (--active), or
    /// everything lately (--all).
    List {
        #[arg(long, conflicts_with = "all")]
        active: bool,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        email: Option<String>,
    },
    /// Approve a pending request (as the server's operator).
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Deny a pending request, saying why.
    Deny {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Withdraw a pending request.
    Cancel { id: String },
    /// End an elevation in force now.
    End { id: String },
    /// Break-glass: let people eligible on a site approve their own request
    /// for up to --minutes (--off: never).
    BreakGlass {
        site: String,
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        minutes: Option<i64>,
        #[arg(long)]
        off: bool,
    },
    /// Name someone who may decide requests for a site, or (--team) for
    /// the requests resting on a team's grants (--remove: no longer).
    Approver {
        email: String,
        #[arg(required_unless_present = "team")]
        site: Option<String>,
        #[arg(long, conflicts_with = "site")]
        team: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LaunchesCommand {
    /// The latest launches, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain and its signed checkpoints; name the first
    /// record that was altered, deleted, inserted or reordered. Exit 1 if any.
    Verify {
        /// Also check against checkpoints kept elsewhere (files holding a checkpoint JWS).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<std::path::PathBuf>,
        /// Verify a receiver's copy instead (a syslog file, or JSON
        /// records one per line): each record's hash, each link, no gap,
        /// and its last record against this database's.
        #[arg(long, conflicts_with = "checkpoints")]
        from_file: Option<std::path::PathBuf>,
    },
    /// Where the audit log is streamed (syslog, webhooks).
    Stream {
        #[command(subcommand)]
        command: StreamCommand,
    },
    /// Write records as CSV or JSON Lines, newest first, streamed.
    Export {
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Sign the chain head now and print the checkpoint (a JWS to keep elsewhere).
    Checkpoint,
    /// Delete records older than N days, through a signed checkpoint.
    Prune {
        #[arg(long)]
        older_than_days: i64,
    },
    /// Every site a person launched into, with role and last launch
    /// (the WordPress accounts to remove when they leave).
    SitesEntered { email: String },
}

#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Stream the audit log to a receiver: https://… (a webhook; its
    /// signing secret is printed last, this once), syslog+tls://host:6514,
    /// or syslog+tcp:// / syslog+udp:// to a relay on loopback.
    Add {
        name: String,
        target: String,
        /// The CA (PEM file) a syslog+tls receiver's certificate chains to.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
        /// Only records from now on (default: the whole chain).
        #[arg(long)]
        from_now: bool,
    },
    /// Each destination: the last record it acknowledged, how far behind
    /// it is, its last error.
    List,
    /// Stop streaming to a destination.
    Remove { name: String },
}

#[derive(clap::Args, Debug, Default)]
pub struct AuditFilterArgs {
    /// Records by or about this e-mail address.
    #[arg(long, default_value = "")]
    pub person: String,
    /// A site's URL or id.
    #[arg(long, default_value = "")]
    pub site: String,
    #[arg(long, default_value = "")]
    pub client: String,
    /// The event type (sign_in, launch, launch_refused, grant_set, ...).
    #[arg(long, default_value = "")]
    pub event: String,
    /// success, failure or refused.
    #[arg(long, default_value = "")]
    pub outcome: String,
    /// From this date or time (RFC 3339 or YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this date or time, exclusive.
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Add the demo sites and grants (idempotent).
    Seed {
        /// The demo WordPress stand-in (end2end/demo-site); its /shop is a miniOrange site.
        #[arg(long, default_value = "http://127.0.0.1:3002")]
        site_url: String,
        /// The miniOrange shop's HS256 secret.
        #[arg(long, env = "SSO_DEMO_SHOP_SECRET", hide_env_values = true)]
        shop_secret: String,
        /// Also add this many filler sites, all open to Sam Staff.
        #[arg(long, default_value_t = 0)]
        extra_sites: usize,
        /// A real WordPress running the connector plugin (scripts/dev starts one).
        #[arg(long)]
        wordpress_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Every key with its state and timeline.
    List,
    /// Rotate ahead of schedule. By default the new key is published now and
    /// signs once sites have had time to see it; --now switches at once.
    Rotate {
        /// Emergency: the new key signs at once (sites holding an old copy
        /// of the key set must fetch it again).
        #[arg(long)]
        now: bool,
    },
    /// Take a key out of the key set at once (e.g. it leaked).
    Revoke {
        /// The key's id as `keys list` shows it (a thumbprint, which may
        /// begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
    /// Reseal every private key under the current master key (after
    /// introducing a new SSO_MASTER_KEY with the old one in SSO_MASTER_KEYS_OLD).
    Rewrap,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List everyone who has signed in.
    List,
    /// Disable a person: their sessions end at once and they cannot sign in.
    Disable { email: String },
    /// Let a disabled person sign in again.
    Enable { email: String },
    /// End a person's WordPress sessions on every connector site they
    /// entered or hold a grant on (the sites are sent signed messages).
    EndSessions { email: String },
    /// A person's offboarding checklist, per site, as CSV: what each
    /// connector site reported, what is pending, what must be done by hand.
    Offboarding { email: String },
    /// Sign-ins held for an admin: an address someone here holds, arriving
    /// from another account at the identity provider.
    Held,
    /// Confirm that the held account is the person who holds the address
    /// (they move to it; the old account can no longer sign in), or refuse it.
    DecideHeld {
        email: String,
        #[arg(long, value_parser = ["confirm", "refuse"])]
        decision: String,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agency-sso: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::server::serve(config).await,
        Command::Users { command } => users(config, command).await,
        Command::Keys { command } => keys(config, command).await,
        Command::Sites { command } => sites(config, command).await,
        Command::Grants { command } => grants(config, command).await,
        Command::Access { command } => access(config, command).await,
        Command::Tokens { command } => tokens(config, command).await,
        Command::Launches { command } => launches(config, command).await,
        Command::Audit { command } => return audit(config, command).await,
        Command::Demo { command } => demo(config, command).await,
        Command::Backup { file } => backup(config, &file).await,
        Command::Migrate { check } => return migrate(config, check).await,
        Command::Check => return check(config).await,
        Command::Healthcheck { url } => return healthcheck(&config, url).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agency-sso: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    // Colours only for a person at a terminal: not into the journal or a file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}

async fn users(config: Config, command: UsersCommand) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    match command {
        UsersCommand::List => {
            println!(
                "{:<36}  {:<6}  {:<8}  {:<32}  NAME",
                "ID", "ROLE", "STATE", "EMAIL"
            );
            for p in crate::service::people::list(&db).await? {
                println!(
                    "{:<36}  {:<6}  {:<8}  {:<32}  {}",
                    p.id,
                    p.role().label(),
                    if p.disabled { "disabled" } else { "active" },
                    p.email,
                    p.name.as_deref().unwrap_or("")
                );
            }
        }
        UsersCommand::Disable { email } | UsersCommand::Enable { email }
            if email.trim().is_empty() =>
        {
            anyhow::bail!("give the person's e-mail address");
        }
        UsersCommand::Disable { email } => set_disabled(&db, &email, true).await?,
        UsersCommand::Enable { email } => set_disabled(&db, &email, false).await?,
        UsersCommand::EndSessions { email } => {
            let (p, n) = crate::service::messages::end_sessions_by_email(
                &db,
                &email,
                &Actor::command_line(),
                now(),
            )
            .await?;
            println!(
                "{n} connector site(s) asked to end {}'s WordPress sessions; \
                 `agency-sso users offboarding {}` shows each site's answer",
                p.email, p.email
            );
        }
        UsersCommand::Offboarding { email } => {
            let email = email.trim().to_ascii_lowercase();
            let Some(p) = crate::service::people::find_by_email(&db, &email)
                .await?
                .into_iter()
                .next()
            else {
                anyhow::bail!("nobody with the e-mail address {email} has signed in");
            };
            let rows = crate::service::messages::checklist(&db, &p).await?;
            print!("{}", crate::service::messages::checklist_csv(&rows));
        }
        UsersCommand::Held => {
            for h in crate::service::people::held(&db, "").await? {
                println!(
                    "{}  account {} at {}  {} attempt(s), last {}",
                    h.email,
                    h.subject,
                    h.issuer,
                    h.attempts,
                    when(Some(h.last_seen_at))
                );
            }
        }
        UsersCommand::DecideHeld { email, decision } => {
            let held = crate::service::people::held(&db, &email).await?;
            let [h] = held.as_slice() else {
                anyhow::bail!(
                    "{} sign-in(s) held for {}: decide in the console (People) when there are several",
                    held.len(),
                    email.trim()
                );
            };
            let confirm = decision == "confirm";
            let email = crate::service::people::decide_held(
                &db,
                &h.issuer,
                &h.subject,
                confirm,
                &Actor::command_line(),
                now(),
            )
            .await?;
            if confirm {
                println!("{email} now signs in with account {}", h.subject);
            } else {
                println!("the new account for {email} is refused");
            }
        }
    }
    Ok(())
}

async fn set_disabled(db: &Db, email: &str, disabled: bool) -> anyhow::Result<()> {
    let done =
        crate::service::people::set_disabled(db, email, disabled, &Actor::command_line(), now())
            .await?;
    let verb = if disabled { "disabled" } else { "enabled" };
    for (email, ended) in done {
        tracing::info!(%email, verb, "person {verb} from the command line");
        if disabled {
            println!("{email} disabled; {ended} session(s) ended");
        } else {
            println!("{email} {verb}");
        }
    }
    Ok(())
}

fn when(t: Option<i64>) -> String {
    use time::format_description::well_known::Rfc3339;
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    if let KeysCommand::List = command {
        let masters = crate::service::context::master_keys(&config)?;
        let checked = crate::service::keys::load(&db, &masters).await?;
        let ring = checked.ring;
        println!(
            "{:<8}  {:<43}  {:<5}  {:<20}  {:<20}  {:<20}  REMOVED/REVOKED",
            "STATE", "KID", "BITS", "CREATED", "ACTIVATES", "RETIRES"
        );
        for k in ring.keys.iter().rev() {
            let activates = k.activated_at.or(k.activates_at);
            let retires = k.retired_at.or_else(|| {
                (k.state == crate::domain::keys::KeyState::Active)
                    .then(|| {
                        ring.next()
                            .and_then(|n| n.activates_at)
                            .or(k.activated_at.map(|a| a + config.keys.policy.rotate_every))
                    })
                    .flatten()
            });
            let gone = match (k.revoked_at, &k.revoked_reason) {
                (Some(t), reason) => format!(
                    "revoked {} ({})",
                    when(Some(t)),
                    reason.as_deref().unwrap_or("")
                ),
                (None, _) => when(k.removed_at.or(k.remove_at)),
            };
            println!(
                "{:<8}  {:<43}  {:<5}  {:<20}  {:<20}  {:<20}  {gone}",
                k.state.as_str(),
                k.kid,
                k.bits,
                when(Some(k.created_at)),
                when(activates),
                when(retires),
            );
        }
        for u in &checked.untrusted {
            let verdict = if u.forged {
                "REJECTED: failed its integrity check"
            } else {
                "UNCHECKED: this master key set cannot check it"
            };
            println!(
                "{:<8}  {:<43}  {verdict} (stored as {}): {}; not published",
                if u.forged { "rejected" } else { "unchecked" },
                u.kid,
                u.state,
                u.why
            );
        }
        return Ok(());
    }
    let master_keys = crate::service::context::master_keys(&config)?;
    // The key ring's timeline follows the server's clock (a test moves both).
    let now = crate::service::clock_for(&config).now();
    let ring = crate::service::context::open_key_ring(&config, &db, &master_keys, now).await?;
    match command {
        KeysCommand::List => {}
        KeysCommand::Rotate { now: false } => {
            let (at, _) = ring.rotate_soon(&Actor::command_line(), now).await?;
            let kid = ring
                .snapshot()
                .ring
                .next()
                .map(|k| k.kid.clone())
                .unwrap_or_default();
            println!(
                "key {kid} is published now and starts signing at {}",
                when(Some(at))
            );
        }
        KeysCommand::Rotate { now: true } => {
            ring.rotate_now(&Actor::command_line(), now).await?;
            let kid = ring
                .signer()
                .map(|s| s.kid().to_string())
                .unwrap_or_default();
            println!("key {kid} signs from now on");
        }
        KeysCommand::Revoke { kid, reason } => {
            ring.revoke(&kid, &reason, &Actor::command_line(), now)
                .await?;
            let signer = ring
                .signer()
                .map(|s| s.kid().to_string())
                .unwrap_or_default();
            println!("key {kid} revoked and removed from the key set; key {signer} signs");
        }
        KeysCommand::Rewrap => {
            let n = ring.rewrap(&Actor::command_line(), now).await?;
            println!(
                "{n} private key(s) resealed under master key {}",
                master_keys.current().id()
            );
        }
    }
    Ok(())
}

fn now() -> i64 {
    use crate::service::{Clock, SystemClock};
    SystemClock.now()
}

async fn sites(config: Config, command: SitesCommand) -> anyhow::Result<()> {
    use crate::domain::sites::SiteInput;
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    match command {
        SitesCommand::Add {
            name,
            client,
            url,
            profile,
            login_template,
            username_claim,
            signing,
            secret_stdin,
            roles,
            token_lifetime,
            notes,
        } => {
            let secret = if secret_stdin {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                Some(s)
            } else {
                None
            };
            let input = SiteInput {
                name,
                client,
                url,
                profile,
                login_template,
                username_claim,
                signing,
                secret: secret.map(crate::domain::secrets::Secret::new),
                roles,
                token_lifetime,
                notes,
            };
            let masters = crate::service::context::master_keys(&config)?;
            let site = crate::service::sites::create_site(
                &db,
                &masters,
                input,
                &Actor::command_line(),
                now(),
            )
            .await?;
            tracing::info!(site = %site.id, url = %site.url, "site added from the command line");
            println!(
                "added site {} ({}) {}",
                site.url,
                site.profile.as_str(),
                site.id
            );
            if site.profile == crate::domain::sites::Profile::MiniOrange {
                eprintln!(
                    "note: miniOrange's free plugin applies no roles, finds users by login name \
                     only (the username claim must match the WordPress login), sends every \
                     launch to the home page, and checks no audience (one secret per site); \
                     see the README's \"miniOrange sites\""
                );
            }
        }
        SitesCommand::List => {
            println!(
                "{:<36}  {:<8}  {:<10}  {:<5}  {:<40}  {:<24}  NAME",
                "ID", "STATE", "PROFILE", "ALG", "URL", "CLIENT"
            );
            for s in crate::service::sites::list(&db).await? {
                println!(
                    "{:<36}  {:<8}  {:<10}  {:<5}  {:<40}  {:<24}  {}",
                    s.id,
                    if s.enabled { "enabled" } else { "disabled" },
                    s.profile.as_str(),
                    s.signing.as_str(),
                    s.url,
                    s.client,
                    s.name
                );
            }
        }
        SitesCommand::Disable { site } | SitesCommand::Enable { site }
            if site.trim().is_empty() =>
        {
            anyhow::bail!("give the site's URL or id");
        }
        SitesCommand::Disable { site } => set_site_enabled(&db, &site, false).await?,
        SitesCommand::Enable { site } => set_site_enabled(&db, &site, true).await?,
        SitesCommand::SetRoles { site, roles } => {
            let s = crate::service::sites::set_site_roles(
                &db,
                &site,
                &roles,
                &Actor::command_line(),
                now(),
            )
            .await?;
            println!("{} now allows {}", s.url, s.roles.join(", "));
        }
        SitesCommand::Status { check, csv, state } => {
            let wanted = match state.as_deref() {
                None => None,
                Some(s) => Some(crate::domain::fleet::Standing::parse(s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown state {s:?}: use unreachable, outdated, missing-key, refusing, unchecked or ok"
                    )
                })?),
            };
            let clock = crate::service::clock_for(&config);
            let ctx = crate::service::Context::open(config, clock).await?;
            if check {
                crate::service::fleet::check_all_now(&ctx).await?;
            }
            let mut entries = crate::service::fleet::fleet(&ctx).await?;
            entries.retain(|e| wanted.is_none_or(|w| e.standing == w));
            if csv {
                print!("{}", crate::service::fleet::fleet_csv(&entries));
            } else {
                println!(
                    "{:<40}  {:<11}  {:<7}  {:<7}  {:<6}  {:<16}  {:<20}  ATTENTION",
                    "URL", "STANDING", "PLUGIN", "WP", "PHP", "LAST CONTACT", "KEYS"
                );
                for e in &entries {
                    println!(
                        "{:<40}  {:<11}  {:<7}  {:<7}  {:<6}  {:<16}  {:<20}  {}",
                        e.url,
                        e.standing.as_str(),
                        e.plugin_version,
                        e.wp_version,
                        e.php_version,
                        e.answered_at
                            .map(|t| crate::domain::audit::utc(t).chars().take(16).collect())
                            .unwrap_or_else(|| "never".to_string()),
                        e.keys.join(" "),
                        e.attention
                    );
                }
            }
        }
        SitesCommand::ConnectCode {
            mut urls,
            from_csv,
            client,
            hours,
        } => {
            if let Some(file) = from_csv {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                let rows = crate::domain::import::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                urls.extend(rows.iter().map(|r| r.url().to_string()));
            }
            let made = crate::service::connect::make_codes(
                &db,
                &config.public_url,
                &urls,
                &client,
                hours.saturating_mul(3600),
                &Actor::command_line(),
                now(),
            )
            .await?;
            println!("url,code,expires_utc");
            for m in &made {
                // A URL is quoted only when it must be (a comma in its path).
                let url = if m.url.contains([',', '"']) {
                    crate::domain::audit::csv_cell(&m.url)
                } else {
                    m.url.clone()
                };
                println!(
                    "{},{},{}",
                    url,
                    m.code,
                    crate::domain::audit::utc(m.expires_at)
                );
            }
            eprintln!(
                "{} connection code(s), each for one site, used once, shown only now. On each site: \
                 wp agency-sso connect CODE, or paste the code in Settings → Agency SSO.",
                made.len()
            );
        }
    }
    Ok(())
}

async fn set_site_enabled(db: &Db, site: &str, enabled: bool) -> anyhow::Result<()> {
    let s =
        crate::service::sites::set_site_enabled(db, site, enabled, &Actor::command_line(), now())
            .await?;
    let verb = if enabled { "enabled" } else { "disabled" };
    tracing::info!(site = %s.id, url = %s.url, "site {verb} from the command line");
    println!("{} {verb}", s.url);
    Ok(())
}

async fn grants(config: Config, command: GrantsCommand) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    match command {
        GrantsCommand::Add {
            email,
            site,
            role,
            eligible,
            max_hours,
        } => {
            // The grant is exactly what is given: without --eligible it
            // makes its holder eligible for nothing.
            let eligible = match &eligible {
                Some(r) => Some((r.as_str(), hours_to_minutes(max_hours.unwrap_or_default())?)),
                None => None,
            };
            let lasting = crate::domain::access::GrantTerms {
                expires_at: None,
                reason: String::new(),
            };
            let (role, s) = crate::service::access::grant_eligible(
                &db,
                &config.sign_in.allowed_domains,
                &email,
                &site,
                &role,
                &lasting,
                eligible,
                &Actor::command_line(),
                now(),
            )
            .await?;
            let email = email.trim().to_ascii_lowercase();
            match eligible {
                Some((r, minutes)) => println!(
                    "{email} may enter {} as {role}, and ask for {r} for up to {}",
                    s.url,
                    crate::domain::elevation::minutes_text(minutes)
                ),
                None => println!("{email} may enter {} as {role}", s.url),
            }
        }
        GrantsCommand::List { email, site } => {
            let site_id = match site {
                Some(s) => Some(crate::service::sites::find_site(&db, &s).await?.id),
                None => None,
            };
            let email = email.map(|e| e.trim().to_ascii_lowercase());
            println!(
                "{:<32}  {:<14}  {:<28}  {:<40}  SITE",
                "EMAIL", "ROLE", "ELIGIBLE", "URL"
            );
            for g in crate::service::access::list(&db, email.as_deref(), site_id.as_deref()).await?
            {
                let eligible = match (&g.eligible_role, g.eligible_minutes) {
                    (Some(r), Some(m)) => {
                        format!("{r} ({})", crate::domain::elevation::minutes_text(m))
                    }
                    _ => "-".to_string(),
                };
                println!(
                    "{:<32}  {:<14}  {:<28}  {:<40}  {}",
                    g.email, g.role, eligible, g.site_url, g.site_name
                );
            }
        }
        GrantsCommand::Export { site } => {
            print!(
                "{}",
                crate::service::access::export_grants(&db, site.as_deref()).await?
            );
        }
        GrantsCommand::Import { file, apply } => {
            use crate::domain::grant_import::Change;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let domains = &config.sign_in.allowed_domains;
            let plan =
                crate::service::access::preview_grant_import(&db, domains, &text, now()).await?;
            for p in &plan.rows {
                let what = match &p.change {
                    Change::Create(_) => "create".to_string(),
                    Change::Update { fields, .. } => format!("update ({})", fields.join(", ")),
                    Change::Unchanged => "unchanged".to_string(),
                    Change::Invalid(e) => format!("invalid: {}", e.join("; ")),
                };
                println!("line {}: {} on {}: {what}", p.line, p.email, p.site_url);
            }
            let t = plan.tally;
            if !apply {
                println!(
                    "Dry run: {} to add, {} to update, {} unchanged, {} invalid. Run again with --apply to make the changes.",
                    t.create, t.update, t.unchanged, t.invalid
                );
                return Ok(());
            }
            let t = crate::service::access::apply_grant_import(
                &db,
                domains,
                &text,
                &plan.digest,
                &Actor::command_line(),
                now(),
            )
            .await?;
            println!(
                "Imported: {} grant(s) added, {} updated, {} unchanged, {} invalid row(s) skipped.",
                t.create, t.update, t.unchanged, t.invalid
            );
        }
        GrantsCommand::Revoke { email, site } => {
            let s =
                crate::service::access::revoke(&db, &email, &site, &Actor::command_line(), now())
                    .await?;
            println!(
                "{} may no longer enter {}",
                email.trim().to_ascii_lowercase(),
                s.url
            );
        }
    }
    Ok(())
}

async fn stream(config: &Config, db: &Db, command: StreamCommand) -> anyhow::Result<()> {
    use crate::service::stream::{self, Start};
    match command {
        StreamCommand::Add {
            name,
            target,
            ca,
            from_now,
        } => {
            let ca_pem = match ca {
                Some(p) => std::fs::read_to_string(&p)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
                None => String::new(),
            };
            let masters = crate::service::context::master_keys(config)?;
            let start = if from_now {
                Start::Now
            } else {
                Start::Beginning
            };
            let (d, secret) = stream::add(
                db,
                &masters,
                &name,
                &target,
                &ca_pem,
                start,
                &Actor::command_line(),
                now(),
            )
            .await?;
            eprintln!(
                "The audit log streams to {:?} ({}) from record #{}; a running dashboard starts within seconds.",
                d.name,
                d.target,
                d.last_seq + 1
            );
            if let Some(secret) = secret {
                eprintln!(
                    "Its signing secret (X-Agency-SSO-Signature, HMAC-SHA256), shown this once:"
                );
                println!("{secret}");
            }
        }
        StreamCommand::List => {
            let (head, list) = stream::status(db).await?;
            println!(
                "{:<20}  {:<40}  {:>10}  {:>8}  ERROR",
                "NAME", "TARGET", "DELIVERED", "LAG"
            );
            for d in list {
                println!(
                    "{:<20}  {:<40}  {:>10}  {:>8}  {}",
                    d.name,
                    d.target,
                    d.last_seq,
                    head - d.last_seq,
                    d.last_error
                );
            }
        }
        StreamCommand::Remove { name } => {
            let d = stream::remove(db, &name, &Actor::command_line(), now()).await?;
            println!("The audit log no longer streams to {:?}.", d.name);
        }
    }
    Ok(())
}

async fn tokens(config: Config, command: TokensCommand) -> anyhow::Result<()> {
    use crate::service::api_tokens::{self, OPERATOR};
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    match command {
        TokensCommand::Create { name, scopes, days } => {
            let mut random = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
            let (t, secret) = api_tokens::create(
                &db,
                &name,
                &scopes,
                days,
                OPERATOR,
                &Actor::command_line(),
                &random,
                now(),
            )
            .await?;
            eprintln!(
                "Token {:?} ({}) until {}. It is shown this once only:",
                t.name,
                crate::domain::api::join_scopes(&t.scopes),
                crate::domain::audit::utc(t.expires_at)
            );
            println!("{secret}");
        }
        TokensCommand::List => {
            let n = now();
            println!(
                "{:<24}  {:<12}  {:<10}  {:<20}  {:<20}  {:<24}  SCOPES",
                "NAME", "STARTS", "STATE", "EXPIRES", "LAST USED", "MADE BY"
            );
            for t in api_tokens::list(&db).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at <= n {
                    "expired"
                } else {
                    "live"
                };
                println!(
                    "{:<24}  {:<12}  {:<10}  {:<20}  {:<20}  {:<24}  {}",
                    t.name,
                    t.prefix,
                    state,
                    crate::domain::audit::utc(t.expires_at),
                    t.last_used_at
                        .map(crate::domain::audit::utc)
                        .unwrap_or_else(|| "never".into()),
                    t.created_by,
                    crate::domain::api::join_scopes(&t.scopes)
                );
            }
        }
        TokensCommand::Revoke { name } => {
            let t = api_tokens::revoke(&db, &name, &Actor::command_line(), now()).await?;
            println!("Token {:?} is revoked: it acts no more.", t.name);
        }
    }
    Ok(())
}

/// Hours as typed (fractions allowed) in whole minutes.
fn hours_to_minutes(hours: f64) -> anyhow::Result<i64> {
    if !hours.is_finite() || hours <= 0.0 || hours > 24.0 * 365.0 {
        anyhow::bail!("give the hours as a positive number, such as 2 or 0.5");
    }
    Ok((hours * 60.0).round() as i64)
}

async fn access(config: Config, command: AccessCommand) -> anyhow::Result<()> {
    use crate::service::elevation::{self as jit, Approver, Requester, Which};
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    let by = Actor::command_line();
    // The operator decides as the operator: never as the requester.
    let operator = Approver {
        actor: &by,
        email: None,
        is_admin: true,
    };
    match command {
        AccessCommand::Request {
            email,
            site,
            role,
            hours,
            reason,
        } => {
            let minutes = hours_to_minutes(hours)?;
            let requester = Requester {
                actor: &by,
                on_behalf: true,
            };
            let e = jit::request(
                &db,
                &requester,
                &email,
                &site,
                &role,
                minutes,
                &reason,
                now(),
            )
            .await?;
            println!(
                "{} asks for {} on {} for {}: waiting for a decision",
                e.email,
                e.role,
                e.site_url,
                crate::domain::elevation::minutes_text(e.minutes)
            );
            println!("{}", e.id);
        }
        AccessCommand::List { active, all, email } => {
            let which = match (active, all) {
                (true, _) => Which::Active,
                (_, true) => Which::All,
                _ => Which::Pending,
            };
            let email = email.map(|e| e.trim().to_ascii_lowercase());
            println!(
                "{:<36}  {:<9}  {:<28}  {:<14}  {:<8}  {:<20}  REASON",
                "ID", "STATE", "EMAIL", "ROLE", "FOR", "SITE"
            );
            for e in jit::list(&db, which, email.as_deref(), 500).await? {
                let state = if e.self_approved != 0 && e.state == "active" {
                    "active!".to_string()
                } else {
                    e.state.clone()
                };
                println!(
                    "{:<36}  {:<9}  {:<28}  {:<14}  {:<8}  {:<20}  {}",
                    e.id,
                    state,
                    e.email,
                    e.role,
                    crate::domain::elevation::minutes_text(e.minutes),
                    e.site_url,
                    e.reason
                );
            }
        }
        AccessCommand::Approve { id, comment } => {
            let d = jit::decide(&db, &operator, &id, true, &comment, now()).await?;
            let e = &d.elevation;
            println!(
                "approved: {} is {} on {} until {}",
                e.email,
                e.role,
                e.site_url,
                when(e.ends_at)
            );
        }
        AccessCommand::Deny { id, comment } => {
            let d = jit::decide(&db, &operator, &id, false, &comment, now()).await?;
            println!("denied: {} on {}", d.elevation.email, d.elevation.site_url);
        }
        AccessCommand::Cancel { id } => {
            let e = jit::cancel(&db, &by, true, &id, now()).await?;
            println!("withdrawn: {} on {}", e.email, e.site_url);
        }
        AccessCommand::End { id } => {
            let e = jit::end_early(&db, &by, true, &id, now()).await?;
            println!(
                "ended: {} is no longer {} on {}",
                e.email, e.role, e.site_url
            );
        }
        AccessCommand::BreakGlass { site, minutes, off } => {
            let minutes = if off { None } else { minutes };
            let s = jit::set_self_approval(&db, &site, minutes, &by, now()).await?;
            match minutes {
                Some(m) => println!(
                    "{}: people eligible there may approve their own request for up to {}",
                    s.url,
                    crate::domain::elevation::minutes_text(m)
                ),
                None => println!("{}: no self-approval", s.url),
            }
        }
        AccessCommand::Approver {
            email,
            site,
            team,
            remove,
        } => {
            let domains = &config.sign_in.allowed_domains;
            let what = match (site, team) {
                (_, Some(team)) => {
                    let name =
                        jit::set_team_approver(&db, domains, &email, &team, !remove, &by, now())
                            .await?;
                    format!("the team {name}'s members")
                }
                (Some(site), None) => {
                    jit::set_site_approver(&db, domains, &email, &site, !remove, &by, now())
                        .await?
                        .url
                }
                (None, None) => anyhow::bail!("name a site, or a team with --team"),
            };
            let verb = if remove {
                "no longer decides"
            } else {
                "may decide"
            };
            println!(
                "{} {verb} requests for {what}",
                email.trim().to_ascii_lowercase()
            );
        }
    }
    Ok(())
}

async fn launches(config: Config, command: LaunchesCommand) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    let LaunchesCommand::List { limit, email } = command;
    let email = email.map(|e| e.trim().to_ascii_lowercase());
    println!(
        "{:<20}  {:<8}  {:<16}  {:<28}  {:<36}  {:<14}  {:<22}  IP",
        "AT", "OUTCOME", "REASON", "EMAIL", "SITE", "ROLE", "JTI"
    );
    for l in crate::service::launch::latest(&db, email.as_deref(), limit).await? {
        let site = if l.site_url.is_empty() {
            &l.site_id
        } else {
            &l.site_url
        };
        println!(
            "{:<20}  {:<8}  {:<16}  {:<28}  {:<36}  {:<14}  {:<22}  {}",
            when(Some(l.at)),
            l.outcome,
            l.reason.as_deref().unwrap_or("-"),
            l.email,
            site,
            l.role.as_deref().unwrap_or("-"),
            l.jti.as_deref().unwrap_or("-"),
            l.ip
        );
    }
    Ok(())
}

/// Copy the SQLite database (see [`crate::service::backup::sqlite`]) and record it.
async fn backup(config: Config, file: &std::path::Path) -> anyhow::Result<()> {
    if config.db_kind == crate::config::DbKind::Postgres {
        anyhow::bail!(
            "for PostgreSQL use its own tools: pg_dump --format=custom --file=FILE \"$SSO_DATABASE_URL\" (see the README)"
        );
    }
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    let bytes = crate::service::backup::sqlite(&db, file, &Actor::command_line(), now()).await?;
    println!(
        "copied to {} ({bytes} bytes, sessions left out). Its signing keys and site secrets are \
         sealed with the master key: keep SSO_MASTER_KEY (or {}) with it, apart.",
        file.display(),
        config.data_dir.join("master.key").display()
    );
    Ok(())
}

/// `migrate [--check]`.
async fn migrate(config: Config, check: bool) -> ExitCode {
    match migrate_inner(config, check).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agency-sso: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn migrate_inner(config: Config, check: bool) -> anyhow::Result<ExitCode> {
    let (url, kind) = (config.database_url.expose(), config.db_kind);
    if check {
        let Some(db) = Db::inspect(url, kind).await? else {
            println!("no database yet: the first start creates it and applies every migration");
            return Ok(ExitCode::from(1));
        };
        let schema = db.schema().await?;
        if let Some(problem) = schema.newer() {
            anyhow::bail!(problem);
        }
        for (v, name) in &schema.pending {
            println!("would apply {v:04} {name}");
        }
        return Ok(if schema.pending.is_empty() {
            println!("up to date (migration {})", schema.known_max);
            ExitCode::SUCCESS
        } else {
            println!(
                "{} migration(s) would be applied: run `agency-sso migrate`, or start the new version",
                schema.pending.len()
            );
            ExitCode::from(1)
        });
    }
    let db = Db::connect_unmigrated(url, kind).await?;
    let pending = db.schema().await?.pending;
    db.migrate().await?;
    for (v, name) in &pending {
        println!("applied {v:04} {name}");
    }
    println!("up to date ({} migration(s) applied now)", pending.len());
    Ok(ExitCode::SUCCESS)
}

/// `check`: each finding on a line, `ok`, `note` or `problem`.
async fn check(config: Config) -> ExitCode {
    let mut problems = 0;
    let mut say = |level: &str, what: String| {
        if level == "problem" {
            problems += 1;
        }
        println!("{level:<8} {what}");
    };
    say(
        "ok",
        format!(
            "settings read ({}, public URL {}, provider {})",
            crate::VERSION,
            config.public_url,
            config.oidc.issuer
        ),
    );

    // The master key, without making one.
    let masters = if config.master_key.is_some() {
        say("ok", "master key set".into());
        crate::service::context::master_keys(&config).ok()
    } else {
        let path = config.data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(raw) => match crate::config::decode_master_key(&raw) {
                Ok(_) => {
                    say("note", format!("master key from {} (development only: set SSO_MASTER_KEY or SSO_MASTER_KEY_FILE in production)", path.display()));
                    crate::service::context::master_keys(&config).ok()
                }
                Err(m) => {
                    say("problem", format!("{}: {m}", path.display()));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                say(
                    "note",
                    format!(
                        "no master key: the first start generates one in {} (development only)",
                        path.display()
                    ),
                );
                None
            }
            Err(e) => {
                say(
                    "problem",
                    format!("cannot read the master key {}: {e}", path.display()),
                );
                None
            }
        }
    };

    // The database and its schema, read only.
    match Db::inspect(config.database_url.expose(), config.db_kind).await {
        Ok(None) => say("note", "no database yet: the first start creates it".into()),
        Err(e) => say("problem", format!("{e:#}")),
        Ok(Some(db)) => match db.schema().await {
            Err(e) => say("problem", format!("{e:#}")),
            Ok(schema) => {
                if let Some(p) = schema.newer() {
                    say("problem", p);
                } else if schema.pending.is_empty() {
                    say(
                        "ok",
                        format!(
                            "database schema up to date (migration {})",
                            schema.known_max
                        ),
                    );
                } else {
                    say("note", format!("{} migration(s) will be applied at the next start (agency-sso migrate --check lists them)", schema.pending.len()));
                }
                // Stored signing keys this instance could not trust.
                // (Read as this version stores them: once its migrations are applied.)
                if let (Some(masters), true) = (&masters, schema.pending.is_empty()) {
                    match crate::service::keys::load(&db, masters).await {
                        Err(e) => say("problem", format!("cannot read the signing keys: {e}")),
                        Ok(checked) => {
                            for u in &checked.untrusted {
                                say(
                                    "problem",
                                    format!(
                                        "signing key {} ({}) is not trusted here: {}",
                                        u.kid, u.state, u.why
                                    ),
                                );
                            }
                            match checked.ring.active() {
                                Some(k) => say("ok", format!("signing key {} active", k.kid)),
                                None => say(
                                    "note",
                                    "no active signing key: the next start makes one".into(),
                                ),
                            }
                        }
                    }
                }
            }
        },
    }

    // The identity provider answers discovery.
    match crate::server::discover_provider(&config).await {
        Ok(()) => say(
            "ok",
            format!("identity provider {} answers discovery", config.oidc.issuer),
        ),
        Err(e) => say(
            "problem",
            format!("identity provider {}: {e}", config.oidc.issuer),
        ),
    }

    if problems > 0 {
        println!("{problems} problem(s): the dashboard would not start or not work as configured");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `healthcheck`: GET /healthz on this dashboard, over loopback.
async fn healthcheck(config: &Config, url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let mut addr = crate::server::bind_addr(config);
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/healthz")
    });
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agency-sso: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("agency-sso: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("agency-sso: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The demo: the stand-in WordPress site (twl-sso) and its shop
/// (miniOrange, HS256), a site only the admin may enter, optionally a real
/// WordPress with the connector plugin, and optional filler sites to feel a
/// large agency's list.
async fn demo(config: Config, command: DemoCommand) -> anyhow::Result<()> {
    use crate::domain::sites::SiteInput;
    use crate::service::sites::ManageError;
    let DemoCommand::Seed {
        site_url,
        shop_secret,
        extra_sites,
        wordpress_url,
    } = command;
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    let masters = crate::service::context::master_keys(&config)?;
    let base = site_url.trim_end_matches('/').to_string();
    let site = |name: &str, client: &str, url: String| SiteInput {
        name: name.into(),
        client: client.into(),
        url,
        ..SiteInput::default()
    };
    let mut shop = site("Demo Shop", "Demo Client", format!("{base}/shop"));
    shop.profile = "miniorange".into();
    shop.secret = Some(crate::domain::secrets::Secret::new(shop_secret));
    let mut wanted = vec![
        (
            site("Demo Site", "Demo Client", base.clone()),
            vec![
                ("sam@agency.test", "editor"),
                ("sasha@agency.test", "author"),
                ("admin@agency.test", "administrator"),
            ],
        ),
        (
            shop,
            vec![
                ("sam@agency.test", "shop_manager"),
                ("admin@agency.test", "administrator"),
            ],
        ),
        (
            site(
                "Locked Site",
                "Other Client",
                "https://locked.example".into(),
            ),
            vec![("admin@agency.test", "administrator")],
        ),
    ];
    wanted[1].0.roles = ["administrator", "shop_manager", "editor", "customer"]
        .map(String::from)
        .to_vec();
    if let Some(url) = wordpress_url {
        let mut wp = site("Demo WordPress", "Demo Client", url);
        wp.profile = "connector".into();
        wanted.push((
            wp,
            vec![
                ("sam@agency.test", "editor"),
                ("sasha@agency.test", "author"),
                ("admin@agency.test", "administrator"),
            ],
        ));
    }
    let roles = [
        "editor",
        "author",
        "administrator",
        "contributor",
        "subscriber",
    ];
    for i in 1..=extra_sites {
        let client = format!("Client {:03}", (i - 1) / 5 + 1);
        let name = format!("{client} site {}", (i - 1) % 5 + 1);
        let url = format!("https://site-{i:04}.client-{:03}.example", (i - 1) / 5 + 1);
        wanted.push((
            site(&name, &client, url),
            vec![("sam@agency.test", roles[i % roles.len()])],
        ));
    }
    let (mut added, mut kept) = (0, 0);
    for (input, grants) in wanted {
        let url = input.url.clone();
        let by = Actor::command_line();
        let s = match crate::service::sites::create_site(&db, &masters, input, &by, now()).await {
            Ok(s) => {
                added += 1;
                s
            }
            Err(ManageError::DuplicateUrl(_)) => {
                kept += 1;
                crate::service::sites::find_site(&db, &url).await?
            }
            Err(e) => return Err(e.into()),
        };
        for (email, role) in grants {
            crate::service::access::grant(&db, &[], email, &s.id, role, &by, now()).await?;
        }
    }
    println!("demo sites: {added} added, {kept} already there");
    Ok(())
}

/// A date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time, as unix seconds.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    if let Ok(t) = time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    anyhow::bail!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time")
}

impl AuditFilterArgs {
    async fn resolve(self, db: &Db) -> anyhow::Result<crate::service::audit::Filter> {
        let site_id = if self.site.trim().is_empty() {
            String::new()
        } else {
            crate::service::sites::find_site(db, &self.site).await?.id
        };
        Ok(crate::service::audit::Filter {
            person: self.person,
            site_id,
            client: self.client,
            kind: self.event,
            outcome: self.outcome,
            since: self.since.as_deref().map(parse_time).transpose()?,
            until: self.until.as_deref().map(parse_time).transpose()?,
        })
    }
}

async fn audit(config: Config, command: AuditCommand) -> ExitCode {
    match audit_inner(config, command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agency-sso: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn audit_inner(config: Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    match command {
        AuditCommand::Verify {
            from_file: Some(file),
            ..
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let r = crate::service::audit::verify_copy(&db, &text).await?;
            let range = match (r.first, r.last) {
                (Some(f), Some(l)) => format!(" #{f}..#{l}"),
                _ => String::new(),
            };
            let skipped = match r.skipped {
                0 => String::new(),
                n => format!(", {n} line(s) without a record"),
            };
            match (&r.outcome, r.matches_here) {
                (Err(p), _) => {
                    println!("RECEIVER'S COPY BROKEN: {p}");
                    Ok(ExitCode::from(1))
                }
                (Ok(()), Some(false)) => {
                    println!(
                        "RECEIVER'S COPY DIFFERS: its record #{} is not this dashboard's",
                        r.last.unwrap_or(0)
                    );
                    Ok(ExitCode::from(1))
                }
                (Ok(()), here) => {
                    println!(
                        "receiver's copy verified: {} record(s){range}, every link, no gap{skipped}{}",
                        r.records,
                        match here {
                            Some(true) => "; its last record is this dashboard's",
                            _ => "",
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        AuditCommand::Stream { command } => {
            stream(&config, &db, command).await?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { checkpoints, .. } => {
            let held = checkpoints
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let started = std::time::Instant::now();
            let masters = crate::service::context::master_keys(&config)?;
            let report = crate::service::audit::verify(&db, &masters, &held).await?;
            let secs = started.elapsed().as_secs_f64();
            match report.outcome {
                Ok(s) => {
                    println!(
                        "audit log verified: {} record(s){}, head #{}, {} signed checkpoint(s) checked ({secs:.1} s)",
                        s.records,
                        match (s.first, s.last) {
                            (Some(f), Some(l)) => format!(" #{f}..#{l}"),
                            _ => String::new(),
                        },
                        report.head.0,
                        report.checkpoints_signed,
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(p) => {
                    println!("AUDIT LOG TAMPERED: {p}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Export { format, filter } => {
            let format = crate::service::audit::Format::parse(&format)
                .ok_or_else(|| anyhow::anyhow!("--format: csv or jsonl"))?;
            let filter = filter.resolve(&db).await?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            out.write_all(format.header().as_bytes())?;
            let mut before = None;
            while let Some((chunk, last)) =
                crate::service::audit::export_page(&db, &filter, format, before, None).await?
            {
                out.write_all(chunk.as_bytes())?;
                before = Some(last);
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            let masters = crate::service::context::master_keys(&config)?;
            let ring =
                crate::service::context::open_key_ring(&config, &db, &masters, now()).await?;
            match crate::service::audit::checkpoint(&db, &ring, &config.public_url, now()).await? {
                Some(seq) => eprintln!("checkpoint signed at record #{seq}"),
                None => eprintln!("nothing new since the latest checkpoint"),
            }
            match crate::service::audit::latest_checkpoint(&db).await? {
                Some(c) => println!("{}", c.jws),
                None => anyhow::bail!("the audit log is empty: nothing to checkpoint"),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune { older_than_days } => {
            if older_than_days < 1 {
                anyhow::bail!("--older-than-days: at least 1");
            }
            let masters = crate::service::context::master_keys(&config)?;
            let ring =
                crate::service::context::open_key_ring(&config, &db, &masters, now()).await?;
            let before = now() - older_than_days * 86_400;
            match crate::service::audit::prune(
                &db,
                &ring,
                &config.public_url,
                before,
                &Actor::command_line(),
                now(),
            )
            .await?
            {
                Some((n, seq)) => println!(
                    "{n} record(s) older than {} deleted, through #{seq} (checkpoint signed)",
                    when(Some(before))
                ),
                None => println!("no record is older than {}", when(Some(before))),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::SitesEntered { email } => {
            println!(
                "{:<40}  {:<24}  {:<14}  {:>8}  LAST LAUNCH",
                "SITE", "CLIENT", "ROLE", "LAUNCHES"
            );
            for s in crate::service::audit::sites_entered(&db, &email).await? {
                println!(
                    "{:<40}  {:<24}  {:<14}  {:>8}  {}",
                    s.site_url,
                    s.client,
                    s.role,
                    s.launches,
                    when(Some(s.last_at))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_that_begins_with_a_dash_is_taken_as_the_id() {
        let cli = Cli::try_parse_from([
            "agency-sso",
            "keys",
            "revoke",
            "-sJ0f3Q",
            "--reason",
            "leaked",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Keys {
                command: KeysCommand::Revoke { kid, reason },
            }) => assert_eq!((kid.as_str(), reason.as_str()), ("-sJ0f3Q", "leaked")),
            other => panic!("{other:?}"),
        }
    }
}

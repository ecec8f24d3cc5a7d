//! The one binary's command line: `serve` (the default) and admin commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigArgs, LogFormat};
use crate::store::{self, Db};

#[derive(Parser, Debug)]
#[command(
    name = "agency-sso",
    version,
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
            for p in store::people::list(&db).await? {
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
    }
    Ok(())
}

async fn set_disabled(db: &Db, email: &str, disabled: bool) -> anyhow::Result<()> {
    let people = store::people::find_by_email(db, email).await?;
    if people.is_empty() {
        anyhow::bail!("nobody with the e-mail address {email} has signed in");
    }
    for p in people {
        let ended = store::people::set_disabled(db, &p.id, disabled).await?;
        let verb = if disabled { "disabled" } else { "enabled" };
        tracing::info!(person = %p.id, email = %p.email, verb, "person {verb} from the command line");
        match ended {
            Some(n) if disabled => println!("{} disabled; {n} session(s) ended", p.email),
            _ => println!("{} {verb}", p.email),
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
    use crate::server::{Clock, SystemClock};
    let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
    if let KeysCommand::List = command {
        let (_, ring) = store::keys::load(&db).await?;
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
        return Ok(());
    }
    let master_keys = crate::server::master_keys(&config)?;
    let now = SystemClock.now();
    let ring = crate::server::open_key_ring(&config, &db, &master_keys, now).await?;
    match command {
        KeysCommand::List => {}
        KeysCommand::Rotate { now: false } => {
            let (at, _) = ring.rotate_soon(now).await?;
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
            ring.rotate_now(now).await?;
            let kid = ring
                .signer()
                .map(|s| s.kid().to_string())
                .unwrap_or_default();
            println!("key {kid} signs from now on");
        }
        KeysCommand::Revoke { kid, reason } => {
            ring.revoke(&kid, &reason, now).await?;
            let signer = ring
                .signer()
                .map(|s| s.kid().to_string())
                .unwrap_or_default();
            println!("key {kid} revoked and removed from the key set; key {signer} signs");
        }
        KeysCommand::Rewrap => {
            let n = ring.rewrap().await?;
            println!(
                "{n} private key(s) resealed under master key {}",
                master_keys.current().id()
            );
        }
    }
    Ok(())
}

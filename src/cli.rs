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

//! What every service needs: the configuration, the database, the clock,
//! the master keys and the signing key ring; and how they are opened.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;

use crate::config::{decode_master_key, Config};
use crate::domain::secrets::{MasterKey, MasterKeys};
use crate::service::keys::KeyRing;
use crate::store::launches::Recorder;
use crate::store::sessions::DbSessionStore;
use crate::store::Db;

/// Where "now" comes from: the system clock in service, a hand-set one in tests.
pub trait Clock: Send + Sync + 'static {
    /// Unix seconds.
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// The system clock moved by the number of seconds written in a file: only
/// for browser tests (the configuration allows it on loopback http only),
/// which move time forward to see time-limited grants end.
pub struct OffsetClock(pub std::path::PathBuf);

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        SystemClock.now() + offset
    }
}

/// The system clock, or the test clock file's (loopback test setups only,
/// as the configuration checks), for the server and the key commands alike.
pub fn clock_for(config: &Config) -> Arc<dyn Clock> {
    match &config.test_clock_file {
        Some(path) => {
            tracing::warn!(file = %path.display(), "the clock is moved by a test clock file");
            Arc::new(OffsetClock(path.clone()))
        }
        None => Arc::new(SystemClock),
    }
}

/// The services' shared state. One `Arc`: every request clones it, so a
/// clone is one counter increment rather than one per part.
#[derive(Clone)]
pub struct Context(Arc<Parts>);

impl std::ops::Deref for Context {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What the services are made of: see [`Context`].
pub struct Parts {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub master_keys: MasterKeys,
    pub keys: Arc<KeyRing>,
    /// The session store the session layer uses (a launch hands it the
    /// session it read with its facts).
    pub sessions: DbSessionStore,
    /// Writes launch records, several launches to a transaction.
    pub launches: Recorder,
    /// What launches were last decided on, by session and site.
    pub launch_facts: crate::service::launch::FactsCache,
}

impl Context {
    /// Open the database (migrating it) and the key ring (the first start
    /// creates the first key), with the master keys of `config`.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Context> {
        let master_keys = master_keys(&config)?;
        let db = Db::connect(config.database_url.expose(), config.db_kind).await?;
        let keys = open_key_ring(&config, &db, &master_keys, clock.now()).await?;
        Ok(Context(Arc::new(Parts {
            config: Arc::new(config),
            launches: Recorder::spawn(&db)?,
            launch_facts: Default::default(),
            sessions: DbSessionStore::new(db.clone()),
            db,
            clock,
            master_keys,
            keys,
        })))
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.db.ping().await
    }

    /// Unix seconds, from the context's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// The master keys: the current one from configuration, or outside
/// production one generated once into the data folder (with a warning),
/// and the older ones that still open what they sealed.
pub fn master_keys(config: &Config) -> anyhow::Result<MasterKeys> {
    let older = config
        .master_keys_old
        .iter()
        .map(|k| MasterKey::new(*k))
        .collect();
    Ok(MasterKeys::new(current_master_key(config)?, older))
}

fn current_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(k) = &config.master_key {
        return decode_master_key(k.expose())
            .map(MasterKey::new)
            .map_err(|m| anyhow::anyhow!("SSO_MASTER_KEY: {m}"));
    }
    let path = config.data_dir.join("master.key");
    if let Ok(raw) = std::fs::read_to_string(&path) {
        return decode_master_key(&raw)
            .map(MasterKey::new)
            .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()));
    }
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    write_private_file(
        &path,
        &base64::engine::general_purpose::STANDARD.encode(key),
    )?;
    tracing::warn!(
        path = %path.display(),
        "SSO_MASTER_KEY is not set: generated a development master key; set SSO_MASTER_KEY in production"
    );
    Ok(MasterKey::new(key))
}

fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The key ring, brought up to date (the first start creates the first key).
pub async fn open_key_ring(
    config: &Config,
    db: &Db,
    master_keys: &MasterKeys,
    now: i64,
) -> anyhow::Result<Arc<KeyRing>> {
    KeyRing::open(db.clone(), master_keys.clone(), config.keys, now)
        .await
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("cannot open the signing key ring: {e}"))
}

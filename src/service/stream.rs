//! The audit stream: every record of the chain delivered, in chain order
//! and at least once, to each destination an admin set up: a syslog
//! receiver (RFC 5424 over TLS, or over TCP or UDP to a relay on loopback)
//! or an HTTPS webhook (signed batches; its 2xx moves the cursor). Each
//! destination has its own cursor and its own task, so one that is down or
//! slow holds up only itself and gets everything when it is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Context;
use crate::domain::audit::{kind, Actor, Stored};
use crate::domain::secrets::MasterKeys;
use crate::domain::stream::{self, Target};
use crate::store::{self, audit, Db};

pub use crate::store::stream::Destination;

/// Records sent to a destination at once.
const BATCH: i64 = 200;
/// How long a destination's lease lasts: longer than one delivery.
const LEASE_SECS: i64 = 60;
/// How long one delivery may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Invalid(String),
    #[error("a destination named {0:?} exists already")]
    NameTaken(String),
    #[error("there is no destination named {0:?}")]
    Unknown(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

fn secret_aad(id: &str) -> String {
    format!("audit-stream-secret:{id}")
}

/// Where a new destination starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The whole chain (as far as it has not been pruned).
    Beginning,
    /// Records appended from now on.
    Now,
}

/// Add a destination, recorded. A webhook gets a signing secret, returned
/// here once (hex) and kept sealed under the master key.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    db: &Db,
    masters: &MasterKeys,
    name: &str,
    target: &str,
    ca_pem: &str,
    start: Start,
    by: &Actor,
    now: i64,
) -> Result<(Destination, Option<String>), StreamError> {
    let name = stream::check_name(name).map_err(StreamError::Invalid)?;
    let parsed = stream::parse_target(target).map_err(StreamError::Invalid)?;
    let ca_pem = ca_pem.trim();
    if !ca_pem.is_empty() && !ca_pem.starts_with("-----BEGIN CERTIFICATE-----") {
        return Err(StreamError::Invalid(
            "ca: a PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let secret = matches!(parsed, Target::Webhook(_)).then(|| {
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        crate::domain::audit::to_hex(&raw)
    });
    let sealed = secret
        .as_ref()
        .map(|s| masters.seal(s.as_bytes(), &secret_aad(&id), &mut rand::rngs::OsRng))
        .unwrap_or_default();
    let mut tx = audit::begin(db).await?;
    let last_seq = match start {
        Start::Beginning => 0,
        Start::Now => store::audit::head_in(&mut *tx).await?.0,
    };
    let target_text = target.trim().to_string();
    if !store::stream::insert(
        &mut *tx,
        &id,
        &name,
        &target_text,
        &sealed,
        ca_pem,
        last_seq,
        &by.who,
        now,
    )
    .await?
    {
        return Err(StreamError::NameTaken(name));
    }
    let event = by.did(now, kind::STREAM_DESTINATION_ADDED).detail(json!({
        "destination": name,
        "target": target_text,
        "kind": parsed.kind(),
        "from_seq": last_seq,
    }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    let d = store::stream::list(db)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| StreamError::Unknown(name.clone()))?;
    Ok((d, secret))
}

/// Remove a destination, recorded: nothing more is sent to it.
pub async fn remove(db: &Db, name: &str, by: &Actor, now: i64) -> Result<Destination, StreamError> {
    let mut tx = audit::begin(db).await?;
    let d = store::stream::remove(&mut *tx, name.trim())
        .await?
        .ok_or_else(|| StreamError::Unknown(name.trim().to_string()))?;
    let event = by.did(now, kind::STREAM_DESTINATION_REMOVED).detail(json!({
        "destination": d.name,
        "target": d.target,
        "last_seq": d.last_seq,
    }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(d)
}

/// Each destination and how far behind the chain's head it is.
pub async fn status(db: &Db) -> Result<(i64, Vec<Destination>), sqlx::Error> {
    let head = store::audit::head(db).await?.0;
    Ok((head, store::stream::list(db).await?))
}

/// What sends: the HTTP client and this host's name for syslog.
#[derive(Clone)]
pub struct Sender {
    pub http: reqwest::Client,
    pub hostname: String,
}

impl Sender {
    pub fn new() -> Sender {
        Sender {
            http: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("agency-sso/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "-".into()),
        }
    }
}

impl Default for Sender {
    fn default() -> Self {
        Sender::new()
    }
}

/// Send what a destination has not acknowledged yet, one batch, if it is
/// due and nobody else holds it. Returns how many records it acknowledged.
pub async fn deliver_once(
    ctx: &Context,
    sender: &Sender,
    id: &str,
    owner: &str,
) -> Result<usize, sqlx::Error> {
    let now = ctx.now();
    // Idle most of the time: read before taking the lease (a write, which
    // on SQLite would wait for the launches' writer twice a second).
    let head = store::audit::head(&ctx.db).await?.0;
    if store::stream::cursor(&ctx.db, id)
        .await?
        .is_none_or(|seq| seq >= head)
    {
        return Ok(0);
    }
    let Some(d) = store::stream::claim(&ctx.db, id, owner, now, now + LEASE_SECS).await? else {
        return Ok(0);
    };
    let records = store::audit::chunk(&ctx.db, d.last_seq, BATCH).await?;
    let Some(last) = records.last().map(|r| r.seq) else {
        store::stream::release(&ctx.db, id, owner).await?;
        return Ok(0);
    };
    let sent = tokio::time::timeout(SEND_TIMEOUT, send(ctx, sender, &d, &records)).await;
    let now = ctx.now();
    let failure = match sent {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(_) => Some(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
    };
    match failure {
        None => {
            store::stream::advance(&ctx.db, id, owner, last, now).await?;
            store::stream::release(&ctx.db, id, owner).await?;
            Ok(records.len())
        }
        Some(why) => {
            tracing::warn!(destination = %d.name, error = %why, "cannot stream the audit log");
            let next = now + stream::backoff(d.failures);
            store::stream::failed(&ctx.db, id, owner, &why, next, now).await?;
            Ok(0)
        }
    }
}

async fn send(
    ctx: &Context,
    sender: &Sender,
    d: &Destination,
    records: &[Stored],
) -> Result<(), String> {
    let target = stream::parse_target(&d.target)?;
    match target {
        Target::Webhook(url) => {
            let secret = ctx
                .master_keys
                .open(&d.secret_sealed, &secret_aad(&d.id))
                .map_err(|e| format!("cannot open the webhook's secret: {e}"))?;
            let body = stream::batch_body(records);
            let t = ctx.now();
            let res = sender
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header(
                    "x-agency-sso-signature",
                    crate::domain::notify::signature(&secret, t, &body),
                )
                .header(
                    "idempotency-key",
                    format!(
                        "{}:{}-{}",
                        d.id,
                        records[0].seq,
                        records[records.len() - 1].seq
                    ),
                )
                .body(body)
                .send()
                .await
                .map_err(|e| format!("cannot reach {url}: {}", without_url(&e)))?;
            if res.status().is_success() {
                Ok(())
            } else {
                Err(format!("the receiver answered {}", res.status()))
            }
        }
        Target::SyslogUdp { host, port } => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            socket
                .connect((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot reach {host}:{port}: {e}"))?;
            for r in records {
                socket
                    .send(stream::syslog_message(r, &sender.hostname).as_bytes())
                    .await
                    .map_err(|e| format!("cannot send to {host}:{port}: {e}"))?;
            }
            Ok(())
        }
        Target::SyslogTcp { host, port } => {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot reach {host}:{port}: {e}"))?;
            write_framed(tcp, records, &sender.hostname).await
        }
        Target::SyslogTls { host, port } => {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot reach {host}:{port}: {e}"))?;
            let config = tls_config(&d.ca_pem)?;
            let name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|_| format!("{host} is not a name a certificate can carry"))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
            write_framed(tls, records, &sender.hostname).await
        }
    }
}

/// Write the records framed (octet counting), flush, and close cleanly:
/// the receiver has read them once the close is acknowledged.
async fn write_framed<S: tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    records: &[Stored],
    hostname: &str,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut out = String::new();
    for r in records {
        out.push_str(&stream::frame(&stream::syslog_message(r, hostname)));
    }
    stream
        .write_all(out.as_bytes())
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    stream
        .shutdown()
        .await
        .map_err(|e| format!("cannot close: {e}"))
}

/// TLS settings for a syslog receiver: its CA when given, else the public
/// web's roots.
fn tls_config(ca_pem: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_pem.trim().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        use rustls_pki_types::pem::PemObject;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("the CA is not PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA cannot be used: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

/// The stream's worker: a task per destination, started as destinations
/// appear and ended as they go. Runs until the process stops.
pub fn spawn_worker(ctx: Context) {
    tokio::spawn(async move {
        let owner = uuid::Uuid::new_v4().to_string();
        let sender = Sender::new();
        let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            match store::stream::list(&ctx.db).await {
                Ok(list) => {
                    let ids: Vec<String> = list.into_iter().map(|d| d.id).collect();
                    tasks.retain(|id, task| {
                        let keep = ids.contains(id) && !task.is_finished();
                        if !keep {
                            task.abort();
                        }
                        keep
                    });
                    for id in ids {
                        tasks.entry(id.clone()).or_insert_with(|| {
                            let (ctx, sender, owner) = (ctx.clone(), sender.clone(), owner.clone());
                            tokio::spawn(async move { serve(ctx, sender, id, owner).await })
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the audit stream's destinations"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

async fn serve(ctx: Context, sender: Sender, id: String, owner: String) {
    loop {
        match deliver_once(&ctx, &sender, &id, &owner).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot stream the audit log");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

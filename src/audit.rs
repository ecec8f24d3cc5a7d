//! The audit trail as a service: verifying the stored chain and its
//! checkpoints, signing checkpoints, pruning through a checkpoint, and
//! exporting filtered views. Called by the CLI, the pages and the
//! maintenance task alike; no web code here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::domain::audit::{
    self, checkpoint_kid, from_hex, kind, verify_checkpoint, Actor, CheckpointClaims, Problem,
    Stored, Summary, Walker, GENESIS,
};
use crate::domain::tokens::Signer;
use crate::keyring::KeyRing;
use crate::store::audit::{self as store, CheckpointError, Filter, Signed};
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no signing key is active to sign a checkpoint")]
    NoSigner,
    #[error("cannot sign the checkpoint: {0}")]
    Sign(String),
    #[error("the checkpoint given is not usable: {0}")]
    BadCheckpoint(String),
}

impl From<CheckpointError<AuditError>> for AuditError {
    fn from(e: CheckpointError<AuditError>) -> Self {
        match e {
            CheckpointError::Db(e) => AuditError::Db(e),
            CheckpointError::Sign(e) => e,
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Result<Summary, Problem>,
    pub head: (i64, String),
    /// Checkpoints whose signatures were checked (stored and given).
    pub checkpoints_signed: usize,
}

/// How many records are read per query while walking.
const CHUNK: i64 = 5_000;

/// Walk the whole stored chain and every checkpoint (those stored, and
/// `held`: checkpoints kept elsewhere, as JWS), and name the first problem.
pub async fn verify(db: &Db, held: &[String]) -> Result<Report, AuditError> {
    let (_, ring) = crate::store::keys::load(db).await?;
    let keys: HashMap<String, (String, String)> = ring
        .keys
        .iter()
        .map(|k| (k.kid.clone(), (k.n.clone(), k.e.clone())))
        .collect();
    let check = |jws: &str| -> Result<CheckpointClaims, String> {
        let kid = checkpoint_kid(jws).ok_or("it names no key")?;
        let (n, e) = keys
            .get(&kid)
            .ok_or_else(|| format!("its key {kid} is not in the key ring"))?;
        verify_checkpoint(jws, n, e)
    };
    // One snapshot: records appended while the walk runs are not seen.
    let mut tx = store::snapshot(db).await?;
    // SQLite's snapshot starts at the first read: the head is read first.
    let head = store::head_in(&mut *tx).await?;
    let report = |outcome, signed| Report {
        outcome,
        head: head.clone(),
        checkpoints_signed: signed,
    };

    let mut points: Vec<(i64, [u8; 32])> = Vec::new();
    let mut prunes: Vec<(i64, [u8; 32])> = Vec::new();
    let stored = store::checkpoints_in(&mut *tx).await?;
    for c in &stored {
        let claims = match check(&c.jws) {
            Ok(cl) if cl.seq == c.seq && cl.hash == c.hash => cl,
            Ok(_) => {
                return Ok(report(
                    Err(Problem::CheckpointForged {
                        seq: c.seq,
                        why: "its row does not match what was signed".into(),
                    }),
                    0,
                ))
            }
            Err(why) => {
                return Ok(report(
                    Err(Problem::CheckpointForged { seq: c.seq, why }),
                    0,
                ))
            }
        };
        let h = from_hex(&claims.hash).unwrap_or(GENESIS);
        points.push((claims.seq, h));
        if c.kind == "prune" {
            prunes.push((claims.seq, h));
        }
    }
    for jws in held {
        let claims = check(jws.trim()).map_err(AuditError::BadCheckpoint)?;
        points.push((claims.seq, from_hex(&claims.hash).unwrap_or(GENESIS)));
    }
    let signed = points.len();

    // Start after the latest pruning checkpoint before the first record.
    let first = store::chunk_in(&mut *tx, 0, 1)
        .await?
        .first()
        .map(|r| r.seq);
    let anchor = prunes
        .iter()
        .filter(|p| first.is_none_or(|f| p.0 < f))
        .max_by_key(|p| p.0)
        .copied()
        .unwrap_or((0, GENESIS));
    let mut walker = Walker::new(anchor, points);
    let mut after = anchor.0;
    loop {
        let rows = store::chunk_in(&mut *tx, after, CHUNK).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in &rows {
            if let Err(p) = walker.push(r) {
                return Ok(report(Err(p), signed));
            }
        }
    }
    Ok(report(walker.finish((head.0, &head.1)), signed))
}

fn sign_with(
    signer: &Signer,
    issuer: &str,
    seq: i64,
    hash: &str,
    now: i64,
) -> Result<Signed, AuditError> {
    let claims = CheckpointClaims::new(issuer, seq, hash, now);
    let jws = signer
        .sign_typed(audit::CHECKPOINT_JOSE_TYP, &claims)
        .map_err(|e| AuditError::Sign(e.to_string()))?;
    Ok(Signed {
        kid: signer.kid().to_string(),
        jws,
    })
}

/// Sign the chain head now (unless nothing was appended since the last
/// checkpoint). Returns the new checkpoint's seq.
pub async fn checkpoint(
    db: &Db,
    keys: &KeyRing,
    issuer: &str,
    now: i64,
) -> Result<Option<i64>, AuditError> {
    let signer = keys.signer().ok_or(AuditError::NoSigner)?;
    Ok(store::checkpoint(db, now, |seq, hash| {
        sign_with(&signer, issuer, seq, hash, now)
    })
    .await?)
}

/// The latest checkpoint as a JWS, for keeping outside the database.
pub async fn latest_checkpoint(db: &Db) -> Result<Option<store::Checkpoint>, AuditError> {
    Ok(store::checkpoints(db).await?.pop())
}

/// Delete the records older than `before` (unix seconds), through a signed
/// checkpoint, and record that it was done. Returns (deleted, through seq).
pub async fn prune(
    db: &Db,
    keys: &KeyRing,
    issuer: &str,
    before: i64,
    by: &Actor,
    now: i64,
) -> Result<Option<(i64, i64)>, AuditError> {
    let signer = keys.signer().ok_or(AuditError::NoSigner)?;
    let event = |deleted: i64, through: i64| {
        by.did(now, kind::AUDIT_PRUNED).detail(json!({
            "deleted": deleted,
            "through_seq": through,
            "older_than": audit::utc(before),
        }))
    };
    Ok(store::prune(db, before, now, event, |seq, hash| {
        sign_with(&signer, issuer, seq, hash, now)
    })
    .await?)
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Format::Csv => "seq,time_utc,event,outcome,actor,person,site_url,site_id,client,role,jti,reason,ip,user_agent,request_id,detail,hash\r\n",
            Format::JsonLines => "",
        }
    }

    pub fn line(self, r: &Stored) -> String {
        match self {
            Format::Csv => r.csv_line(),
            Format::JsonLines => r.json_line(),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::JsonLines => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

/// Records per page while exporting: memory stays bounded by one page.
pub const EXPORT_PAGE: i64 = 1_000;

/// The next page of an export after `before` (newest first), formatted;
/// None when there is no more.
pub async fn export_page(
    db: &Db,
    filter: &Filter,
    format: Format,
    before: Option<i64>,
) -> Result<Option<(String, i64)>, AuditError> {
    let rows = store::page(db, filter, before, EXPORT_PAGE).await?;
    let Some(last) = rows.last().map(|r| r.seq) else {
        return Ok(None);
    };
    let mut out = String::with_capacity(rows.len() * 400);
    for r in &rows {
        out.push_str(&format.line(r));
    }
    Ok(Some((out, last)))
}

/// Checkpoint the chain now and then, and prune what is past retention,
/// forever. Several instances may run this: the head lock makes one of
/// them do each checkpoint.
pub fn spawn_maintenance(
    db: Db,
    keys: Arc<KeyRing>,
    clock: Arc<dyn crate::server::Clock>,
    issuer: String,
    settings: AuditSettings,
) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(settings.checkpoint_secs.max(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            let now = clock.now();
            if let Some(days) = settings.retention_days {
                let before = now - days * 86_400;
                match prune(&db, &keys, &issuer, before, &Actor::system(), now).await {
                    Ok(Some((n, seq))) => {
                        tracing::info!(
                            deleted = n,
                            through = seq,
                            "audit records past retention pruned"
                        )
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot prune the audit log"),
                }
            }
            match checkpoint(&db, &keys, &issuer, now).await {
                Ok(Some(seq)) => tracing::info!(seq, "audit checkpoint signed"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot sign an audit checkpoint"),
            }
        }
    });
}

/// Audit settings, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// How often the chain head is signed, seconds.
    pub checkpoint_secs: u64,
    /// Records older than this many days are pruned (None: kept for good).
    pub retention_days: Option<i64>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            checkpoint_secs: 3600,
            retention_days: None,
        }
    }
}

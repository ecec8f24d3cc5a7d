//! The audit trail as a service: verifying the stored chain and its
//! checkpoints, signing checkpoints, pruning through a checkpoint, and
//! exporting filtered views. Called by the CLI, the pages and the
//! maintenance task alike; no web code here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::domain::audit::{
    self, checkpoint_kid, from_hex, kind, outcome, verify_checkpoint, Actor, CheckpointClaims,
    Event, Origin, Problem, Stored, Summary, Walker, GENESIS,
};
use crate::domain::people::Person;
use crate::domain::tokens::Signer;
use crate::service::keys::KeyRing;
use crate::shared::query::AuditQuery;
use crate::store::audit::{self as store, CheckpointError, Signed};

pub use crate::domain::audit::AuditSettings;
pub use crate::store::audit::{Filter, SiteEntered};
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

/// Append records that stand alone (a sign-in that failed, a sign-out, a
/// flood refused), in one transaction.
pub async fn record(db: &Db, events: &[Event]) -> Result<(), sqlx::Error> {
    store::record(db, events).await
}

/// Record that a signed-in person who is not an admin called an admin
/// function (best effort: the refusal stands either way).
pub async fn record_admin_refusal(db: &Db, email: &str, from: Origin, function: &str, now: i64) {
    tracing::warn!(email, function, "admin function refused to a non-admin");
    let event = Event::new(now, kind::ADMIN_REFUSED, outcome::REFUSED, email, &from)
        .subject(email)
        .reason("not_admin")
        .detail(serde_json::json!({ "function": function }));
    if let Err(e) = store::record(db, &[event]).await {
        tracing::error!(error = %e, "cannot record a refused admin call");
    }
}

/// Records matching `filter`, newest first, older than `before` if given.
pub async fn page(
    db: &Db,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    store::page(db, filter, before, limit).await
}

/// The sites a person entered, with how often and when.
pub async fn sites_entered(db: &Db, email: &str) -> Result<Vec<SiteEntered>, sqlx::Error> {
    store::sites_entered(db, email).await
}

/// The chain's last record: its sequence number and hash.
pub async fn head(db: &Db) -> Result<(i64, String), sqlx::Error> {
    store::head(db).await
}

/// The filter for a page's query, as `viewer` may see it: their
/// own records only unless they are an admin looking at everyone's.
/// Err: what is wrong with the filter, in words.
pub async fn filter_for(
    db: &Db,
    q: &AuditQuery,
    viewer: &Person,
    mine: bool,
) -> Result<Filter, String> {
    let day = |s: &str, what: &str| -> Result<Option<i64>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(s, &fmt)
            .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
            .map_err(|_| format!("{what}: {s:?} is not a date (YYYY-MM-DD)"))
    };
    let site_id = if mine || q.site.is_empty() {
        String::new()
    } else {
        match super::sites::find_site(db, &q.site).await {
            Ok(s) => s.id,
            Err(super::sites::ManageError::UnknownSite(_)) => {
                return Err(format!("Site: there is no site {:?}", q.site))
            }
            Err(e) => return Err(format!("Site: {e}")),
        }
    };
    let known = |v: &str, all: &[&str], what: &str| {
        if v.is_empty() || all.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(format!("{what}: {v:?} is not one of {}", all.join(", ")))
        }
    };
    Ok(Filter {
        person: if mine {
            viewer.email.clone()
        } else {
            q.person.clone()
        },
        site_id,
        client: if mine {
            String::new()
        } else {
            q.client.clone()
        },
        kind: known(&q.event, &crate::domain::audit::kind::ALL, "Event")?,
        outcome: known(&q.outcome, &crate::domain::audit::outcome::ALL, "Outcome")?,
        since: day(&q.since, "From")?,
        // The "to" day is included: up to the next midnight.
        until: day(&q.until, "To")?.map(|t| t + 86_400),
    })
}

/// A page of the audit log as a viewer asked for it.
pub struct RecordsPage {
    /// Newest first.
    pub rows: Vec<Stored>,
    /// Where the next older page starts (`before`), if there is one.
    pub older: Option<i64>,
    /// An admin looking at one person's records: the sites they entered.
    pub entered: Vec<SiteEntered>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("only admins can see the whole audit log")]
    Forbidden,
    /// What is wrong with the filter, in words.
    #[error("{0}")]
    Filter(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Up to `limit` records matching `q` that `viewer` may see: their own
/// (`mine`), or, for an admin, everyone's.
pub async fn records_for(
    db: &Db,
    q: &AuditQuery,
    viewer: &Person,
    mine: bool,
    limit: i64,
) -> Result<RecordsPage, ViewError> {
    if !mine && !viewer.is_admin {
        return Err(ViewError::Forbidden);
    }
    let filter = filter_for(db, q, viewer, mine)
        .await
        .map_err(ViewError::Filter)?;
    let mut rows = page(db, &filter, q.before, limit + 1).await?;
    if mine {
        rows = rows
            .into_iter()
            .map(|r| r.for_subject(&viewer.email))
            .collect();
    }
    let older = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    let entered = if !mine && !filter.person.is_empty() {
        sites_entered(db, &filter.person).await?
    } else {
        Vec::new()
    };
    Ok(RecordsPage {
        rows,
        older,
        entered,
    })
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
/// Checkpoints are checked only against keys `masters` vouches for: a key
/// row the database alone holds signs nothing.
pub async fn verify(
    db: &Db,
    masters: &crate::domain::secrets::MasterKeys,
    held: &[String],
) -> Result<Report, AuditError> {
    let ring = crate::service::keys::load(db, masters).await?.ring;
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
/// None when there is no more. `for_subject`: a person's own export, which
/// shows where from only what they did themselves.
pub async fn export_page(
    db: &Db,
    filter: &Filter,
    format: Format,
    before: Option<i64>,
    for_subject: Option<&str>,
) -> Result<Option<(String, i64)>, AuditError> {
    let rows = store::page(db, filter, before, EXPORT_PAGE).await?;
    let Some(last) = rows.last().map(|r| r.seq) else {
        return Ok(None);
    };
    let mut out = String::with_capacity(rows.len() * 400);
    for r in rows {
        let r = match for_subject {
            Some(viewer) => r.for_subject(viewer),
            None => r,
        };
        out.push_str(&format.line(&r));
    }
    Ok(Some((out, last)))
}

/// Checkpoint the chain now and then, and prune what is past retention,
/// forever. Several instances may run this: the head lock makes one of
/// them do each checkpoint.
pub fn spawn_maintenance(
    db: Db,
    keys: Arc<KeyRing>,
    clock: Arc<dyn crate::service::Clock>,
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

/// What `audit verify --from-file` found in a receiver's copy of the chain.
#[derive(Debug)]
pub struct CopyReport {
    pub records: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Lines that held no record.
    pub skipped: usize,
    /// The copy links up record to record with no gap, or what breaks it.
    pub outcome: Result<(), Problem>,
    /// Its last record is the one this dashboard holds at that place
    /// (`None`: this database no longer holds it, pruned).
    pub matches_here: Option<bool>,
}

/// Verify a receiver's copy of the chain (syslog lines or JSON records,
/// repeats dropped): every record's hash, every link, no gap; and compare
/// its last record with this database's.
pub async fn verify_copy(db: &Db, text: &str) -> Result<CopyReport, sqlx::Error> {
    use crate::domain::audit::{from_hex, Walker, GENESIS};
    let (records, skipped) = crate::domain::stream::records_in(text);
    let mut report = CopyReport {
        records: records.len(),
        first: records.first().map(|r| r.seq),
        last: records.last().map(|r| r.seq),
        skipped,
        outcome: Ok(()),
        matches_here: None,
    };
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(report);
    };
    let anchor = (first.seq - 1, from_hex(&first.prev_hash).unwrap_or(GENESIS));
    let mut walker = Walker::new(anchor, Vec::new());
    for r in &records {
        if let Err(p) = walker.push(r) {
            report.outcome = Err(p);
            return Ok(report);
        }
    }
    if let Err(p) = walker.finish((last.seq, &last.hash)) {
        report.outcome = Err(p);
        return Ok(report);
    }
    report.matches_here = store::get(db, last.seq).await?.map(|r| r.hash == last.hash);
    Ok(report)
}

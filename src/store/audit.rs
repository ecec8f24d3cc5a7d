//! The audit trail's SQL: appending inside the action's own transaction,
//! reading filtered pages newest first (keyset on seq), walking the chain
//! for verification, checkpoints and pruning.

use sqlx::{Any, AnyConnection, FromRow, Transaction};

use super::Db;
use crate::config::DbKind;
use crate::domain::audit::{self, chain_hash, from_hex, to_hex, Event, Stored};

pub type Tx = Transaction<'static, Any>;

/// Begin a transaction that will append to the trail. On SQLite the write
/// lock is taken by the first statement, so the transaction never has to
/// upgrade a read lock (which SQLite refuses under contention instead of
/// waiting). On PostgreSQL the head's row lock is taken by `append`, after
/// the action's own statements, so every writer locks in the same order.
pub async fn begin(db: &Db) -> Result<Tx, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if db.kind == DbKind::Sqlite {
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Append one record at the end of the chain; returns its seq.
pub async fn append(conn: &mut AnyConnection, e: &Event) -> Result<i64, sqlx::Error> {
    append_all(conn, std::slice::from_ref(e)).await
}

/// Append records in order at the end of the chain: the head is moved once
/// (under its row lock) and the records are written in one statement.
/// Returns the last seq.
pub async fn append_all(conn: &mut AnyConnection, events: &[Event]) -> Result<i64, sqlx::Error> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let (last, prev): (i64, String) =
        sqlx::query_as("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
            .bind(n)
            .fetch_one(&mut *conn)
            .await?;
    if events.is_empty() {
        return Ok(last);
    }
    let (stored, head) = chained(last - n, &prev, events)?;
    insert_all(&mut *conn, &stored).await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&head)
        .execute(&mut *conn)
        .await?;
    Ok(last)
}

/// The records `events` make, in order, after a head at (`seq`, `hash`),
/// and the new head's hash.
pub fn chained(
    seq: i64,
    hash: &str,
    events: &[Event],
) -> Result<(Vec<Stored>, String), sqlx::Error> {
    let mut prev = hash.to_string();
    let mut prev_bytes = from_hex(&prev)
        .ok_or_else(|| sqlx::Error::Protocol("the audit chain head is malformed".into()))?;
    let mut stored = Vec::with_capacity(events.len());
    for (seq, e) in (seq + 1..).zip(events) {
        prev_bytes = chain_hash(&prev_bytes, e);
        let hash = to_hex(&prev_bytes);
        stored.push(Stored {
            seq,
            event: e.clone(),
            hash: hash.clone(),
            prev_hash: std::mem::replace(&mut prev, hash),
        });
    }
    Ok((stored, prev))
}

/// Write a record as given (its place and hashes included). Only `append`
/// writes records in service; tests and benchmarks use it to build chains.
pub async fn insert_stored<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
    r: &Stored,
) -> Result<(), sqlx::Error> {
    insert_all(ex, std::slice::from_ref(r)).await
}

/// Write records as given, in one statement.
async fn insert_all<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
    records: &[Stored],
) -> Result<(), sqlx::Error> {
    let sql = insert_sql(records.len(), 1);
    bind_records(sqlx::query(&sql), records)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Statements that write `n` records made by [`chained`] and move the head
/// to the last of them, their parameters numbered from `$first` on; bind
/// them with [`bind_append`].
pub fn append_sql(n: usize, first: usize) -> String {
    let after = first + n * FIELDS;
    format!(
        "{}; UPDATE audit_head SET seq = ${after}, hash = ${} WHERE id = 1",
        insert_sql(n, first),
        after + 1
    )
}

/// [`append_sql`] as one statement (PostgreSQL): `with`, the caller's own
/// statements (`name AS (statement)`, comma-separated, parameters before
/// `$first`), and the records as data-modifying `WITH` queries, then the
/// head moved. Bind it the same way.
pub fn append_sql_with(n: usize, first: usize, with: &str) -> String {
    let after = first + n * FIELDS;
    format!(
        "WITH {with}, records AS ({}) UPDATE audit_head SET seq = ${after}, hash = ${} WHERE id = 1",
        insert_sql(n, first),
        after + 1
    )
}

/// Bind [`append_sql`]'s parameters: the records and the new head's hash.
pub fn bind_append<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    records: &'q [Stored],
    head: String,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    let last = records.last().map_or(0, |r| r.seq);
    bind_records(q, records).bind(last).bind(head)
}

/// Fields of a record, as [`insert_sql`] numbers them.
const FIELDS: usize = 18;

/// The statement that writes `n` records, its parameters numbered from
/// `$first` on (the records' fields in [`bind_records`]'s order).
fn insert_sql(n: usize, first: usize) -> String {
    let mut sql = format!("INSERT INTO audit_log ({COLUMNS}) VALUES ");
    for i in 0..n {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for f in 0..FIELDS {
            let sep = if f == 0 { "" } else { ", " };
            sql.push_str(&format!("{sep}${}", first + i * FIELDS + f));
        }
        sql.push(')');
    }
    sql
}

/// Bind the records' fields, in order, for [`insert_sql`].
fn bind_records<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    records: &'q [Stored],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for r in records {
        let e = &r.event;
        q = q
            .bind(r.seq)
            .bind(e.at)
            .bind(&e.kind)
            .bind(&e.outcome)
            .bind(&e.actor)
            .bind(&e.subject)
            .bind(&e.site_id)
            .bind(&e.site_url)
            .bind(&e.client)
            .bind(&e.role)
            .bind(&e.jti)
            .bind(&e.reason)
            .bind(&e.ip)
            .bind(&e.user_agent)
            .bind(&e.request_id)
            .bind(&e.detail)
            .bind(&r.prev_hash)
            .bind(&r.hash);
    }
    q
}

/// Record events that go with no other change, in one transaction.
pub async fn record(db: &Db, events: &[Event]) -> Result<(), sqlx::Error> {
    let mut tx = begin(db).await?;
    append_all(&mut tx, events).await?;
    tx.commit().await
}

#[derive(FromRow)]
struct Row {
    seq: i64,
    at: i64,
    kind: String,
    outcome: String,
    actor: String,
    subject: String,
    site_id: String,
    site_url: String,
    client: String,
    role: String,
    jti: Option<String>,
    reason: String,
    ip: String,
    user_agent: String,
    request_id: String,
    detail: String,
    prev_hash: String,
    hash: String,
}

impl From<Row> for Stored {
    fn from(r: Row) -> Stored {
        Stored {
            seq: r.seq,
            event: Event {
                at: r.at,
                kind: r.kind,
                outcome: r.outcome,
                actor: r.actor,
                subject: r.subject,
                site_id: r.site_id,
                site_url: r.site_url,
                client: r.client,
                role: r.role,
                jti: r.jti,
                reason: r.reason,
                ip: r.ip,
                user_agent: r.user_agent,
                request_id: r.request_id,
                detail: r.detail,
            },
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

const COLUMNS: &str = "seq, at, kind, outcome, actor, subject, site_id, site_url, client, role, \
                       jti, reason, ip, user_agent, request_id, detail, prev_hash, hash";

/// What to look at. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// An e-mail: records by or about that person.
    pub person: String,
    pub site_id: String,
    pub client: String,
    pub kind: String,
    pub outcome: String,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The WHERE clause of a filter (and a keyset bound), with its bind values.
fn where_clause(f: &Filter, before: Option<i64>, after: Option<i64>) -> (String, Vec<Bind>) {
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    let mut add = |cond: &str, b: Bind| {
        binds.push(b);
        conds.push(cond.replace('?', &format!("${}", binds.len())));
    };
    if !f.person.is_empty() {
        let p = f.person.trim().to_ascii_lowercase();
        // Both columns are indexed; each side of the OR uses its own.
        add("(subject = ? OR actor = ?)", Bind::Text(p));
    }
    for (col, v) in [
        ("site_id", &f.site_id),
        ("client", &f.client),
        ("kind", &f.kind),
        ("outcome", &f.outcome),
    ] {
        if !v.is_empty() {
            add(&format!("{col} = ?"), Bind::Text(v.clone()));
        }
    }
    for (cond, v) in [
        ("at >= ?", f.since),
        ("at < ?", f.until),
        ("seq < ?", before),
        ("seq > ?", after),
    ] {
        if let Some(v) = v {
            add(cond, Bind::Int(v));
        }
    }
    let sql = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (sql, binds)
}

async fn fetch(db: &Db, sql: &str, binds: Vec<Bind>) -> Result<Vec<Stored>, sqlx::Error> {
    let mut q = sqlx::query_as::<_, Row>(sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    Ok(q.fetch_all(&db.pool)
        .await?
        .into_iter()
        .map(Stored::from)
        .collect())
}

/// Up to `limit` records matching `f`, newest first, older than `before`.
pub async fn page(
    db: &Db,
    f: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    let (cond, binds) = where_clause(f, before, None);
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log{cond} ORDER BY seq DESC LIMIT {}",
        limit.clamp(1, 10_000)
    );
    fetch(db, &sql, binds).await
}

/// The latest records of two kinds, optionally about one person.
pub async fn latest_of(
    db: &Db,
    kinds: &[&str; 2],
    person: &str,
    limit: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE kind IN ($1, $2) AND ($3 = '' OR subject = $3) \
         ORDER BY seq DESC LIMIT $4"
    );
    Ok(sqlx::query_as::<_, Row>(&sql)
        .bind(kinds[0])
        .bind(kinds[1])
        .bind(person.trim().to_ascii_lowercase())
        .bind(limit)
        .fetch_all(&db.pool)
        .await?
        .into_iter()
        .map(Stored::from)
        .collect())
}

/// One record.
pub async fn get(db: &Db, seq: i64) -> Result<Option<Stored>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1");
    Ok(sqlx::query_as::<_, Row>(&sql)
        .bind(seq)
        .fetch_optional(&db.pool)
        .await?
        .map(Stored::from))
}

/// The next `limit` records after `after`, oldest first (for walking the chain).
pub async fn chunk(db: &Db, after: i64, limit: i64) -> Result<Vec<Stored>, sqlx::Error> {
    chunk_in(&db.pool, after, limit).await
}

pub async fn chunk_in<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
    after: i64,
    limit: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    Ok(sqlx::query_as::<_, Row>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(ex)
        .await?
        .into_iter()
        .map(Stored::from)
        .collect())
}

/// The chain head as stored: (seq, hash).
pub async fn head(db: &Db) -> Result<(i64, String), sqlx::Error> {
    head_in(&db.pool).await
}

pub async fn head_in<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
) -> Result<(i64, String), sqlx::Error> {
    sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(ex)
        .await
}

/// A read-only transaction that sees one snapshot throughout, so that a
/// walk over the chain is not confused by records appended meanwhile.
pub async fn snapshot(db: &Db) -> Result<Tx, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if db.kind == DbKind::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// How many records there are.
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&db.pool)
        .await
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub kid: String,
    pub kind: String,
    pub jws: String,
}

pub async fn checkpoints(db: &Db) -> Result<Vec<Checkpoint>, sqlx::Error> {
    checkpoints_in(&db.pool).await
}

pub async fn checkpoints_in<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
) -> Result<Vec<Checkpoint>, sqlx::Error> {
    sqlx::query_as("SELECT seq, hash, at, kid, kind, jws FROM audit_checkpoints ORDER BY seq")
        .fetch_all(ex)
        .await
}

/// What a checkpoint is signed over, and the signature made of it.
pub struct Signed {
    pub kid: String,
    pub jws: String,
}

/// Sign the chain head as it is now, unless it is already checkpointed.
/// Returns the checkpoint's seq, or None when there was nothing new.
pub async fn checkpoint<E>(
    db: &Db,
    now: i64,
    sign: impl FnOnce(i64, &str) -> Result<Signed, E>,
) -> Result<Option<i64>, CheckpointError<E>> {
    let mut tx = begin(db).await?;
    // Lock the head so the checkpoint names what is committed.
    let (seq, hash): (i64, String) =
        sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *tx)
            .await?;
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints")
        .fetch_one(&mut *tx)
        .await?;
    if seq == 0 || last.is_some_and(|l| l >= seq) {
        tx.rollback().await?;
        return Ok(None);
    }
    let signed = sign(seq, &hash).map_err(CheckpointError::Sign)?;
    insert_checkpoint(&mut tx, seq, &hash, now, "periodic", &signed).await?;
    tx.commit().await?;
    Ok(Some(seq))
}

async fn insert_checkpoint(
    tx: &mut Tx,
    seq: i64,
    hash: &str,
    now: i64,
    kind: &str,
    signed: &Signed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, kid, kind, jws) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (seq) DO UPDATE SET kind = excluded.kind",
    )
    .bind(seq)
    .bind(hash)
    .bind(now)
    .bind(&signed.kid)
    .bind(kind)
    .bind(&signed.jws)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError<E> {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot sign the checkpoint: {0}")]
    Sign(E),
}

/// Delete the records older than `before` through a signed checkpoint of
/// the last one deleted, so that what remains still verifies; the pruning
/// is itself recorded. Returns (records deleted, the checkpoint's seq).
pub async fn prune<E>(
    db: &Db,
    before: i64,
    now: i64,
    event: impl FnOnce(i64, i64) -> Event,
    sign: impl FnOnce(i64, &str) -> Result<Signed, E>,
) -> Result<Option<(i64, i64)>, CheckpointError<E>> {
    let mut tx = begin(db).await?;
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let through: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log WHERE at < $1")
        .bind(before)
        .fetch_one(&mut *tx)
        .await?;
    let Some(through) = through else {
        tx.rollback().await?;
        return Ok(None);
    };
    let hash: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(through)
        .fetch_one(&mut *tx)
        .await?;
    let signed = sign(through, &hash).map_err(CheckpointError::Sign)?;
    insert_checkpoint(&mut tx, through, &hash, now, "prune", &signed).await?;
    let deleted = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
        .bind(through)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    append(&mut tx, &event(deleted, through)).await?;
    tx.commit().await?;
    Ok(Some((deleted, through)))
}

/// The launches a person made, per site and role: the WordPress accounts
/// the sites' plugins made for them.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SiteEntered {
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    pub role: String,
    pub launches: i64,
    pub first_at: i64,
    pub last_at: i64,
}

pub async fn sites_entered(db: &Db, email: &str) -> Result<Vec<SiteEntered>, sqlx::Error> {
    sqlx::query_as(
        "SELECT site_id, site_url, client, role, COUNT(*) AS launches, MIN(at) AS first_at, \
         MAX(at) AS last_at FROM audit_log WHERE subject = $1 AND kind = $2 \
         GROUP BY site_id, site_url, client, role ORDER BY MAX(at) DESC",
    )
    .bind(email.trim().to_ascii_lowercase())
    .bind(audit::kind::LAUNCH)
    .fetch_all(&db.pool)
    .await
}

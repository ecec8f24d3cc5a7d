//! Launches, as audit records (kinds `launch` and `launch_refused`): the
//! record of an issued launch is appended in the same transaction that
//! checks the decision still holds, before any token leaves.

use serde_json::json;

use super::audit;
use super::Db;
use crate::config::DbKind;
use crate::domain::audit::{kind, outcome, Event, Origin, Stored};

/// One launch, issued or refused. Never holds the token, only its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRecord {
    pub at: i64,
    /// `launched` or `refused`.
    pub outcome: String,
    /// The refusal's code.
    pub reason: Option<String>,
    pub person_id: String,
    pub email: String,
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    pub role: Option<String>,
    pub profile: Option<String>,
    pub alg: Option<String>,
    pub jti: Option<String>,
    pub kid: Option<String>,
    pub deep_link: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

impl LaunchRecord {
    /// The audit event that records this launch.
    pub fn event(&self) -> Event {
        let issued = self.outcome == "launched";
        let origin = Origin {
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        };
        let mut e = Event::new(
            self.at,
            if issued {
                kind::LAUNCH
            } else {
                kind::LAUNCH_REFUSED
            },
            if issued {
                outcome::SUCCESS
            } else {
                outcome::REFUSED
            },
            &self.email,
            &origin,
        )
        .subject(&self.email)
        .site(&self.site_id, &self.site_url, &self.client)
        .role(self.role.as_deref().unwrap_or(""))
        .reason(self.reason.as_deref().unwrap_or(""))
        .detail(json!({
            "person_id": self.person_id,
            "profile": self.profile,
            "alg": self.alg,
            "kid": self.kid,
            "deep_link": self.deep_link,
        }));
        e.jti = self.jti.clone();
        e
    }

    fn from_stored(s: Stored) -> LaunchRecord {
        let e = s.event;
        let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let text = |k: &str| d[k].as_str().map(String::from);
        let some = |v: String| Some(v).filter(|v| !v.is_empty());
        LaunchRecord {
            at: e.at,
            outcome: if e.kind == kind::LAUNCH {
                "launched".into()
            } else {
                "refused".into()
            },
            reason: some(e.reason),
            person_id: text("person_id").unwrap_or_default(),
            email: e.subject,
            site_id: e.site_id,
            site_url: e.site_url,
            client: e.client,
            role: some(e.role),
            profile: text("profile"),
            alg: text("alg"),
            jti: e.jti,
            kid: text("kid"),
            deep_link: text("deep_link"),
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
        }
    }
}

/// What a launch was decided on, checked again in the transaction that
/// records it.
#[derive(Debug, Clone)]
pub struct StillTrue<'a> {
    /// The site as read: its version must not have moved.
    pub site_version: i64,
    /// The grant the role comes from: still there, same role, not expired.
    pub grant_id: &'a str,
    /// The RS256 key that signed: still the active key.
    pub kid: Option<&'a str>,
}

/// An issued launch waiting for its record: what to record and what the
/// decision rested on.
#[derive(Debug, Clone)]
pub struct Pending {
    pub record: LaunchRecord,
    pub site_version: i64,
    pub grant_id: String,
    pub kid: Option<String>,
    /// The version of the launch facts they were read at (see
    /// [`SessionFacts::version`]): recorded only if no change to the
    /// people, sites, grants, teams or elevations came since. `None`: not
    /// checked (the other checks still are).
    pub facts_version: Option<i64>,
    /// The session the launch came from: recorded only while it is live
    /// and its person's.
    pub session: Option<LiveSession>,
}

/// A session a launch must still be in when it is recorded.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The session row's key (`sessions::stored_id`).
    pub key: String,
    /// The session store's clock (see `sessions::DbSessionStore::now`).
    pub now: i64,
}

impl LiveSession {
    /// The session with this id, as of `now` (the session store's clock).
    pub fn of(id: &tower_sessions::session::Id, now: i64) -> LiveSession {
        LiveSession {
            key: super::sessions::stored_id(id),
            now,
        }
    }
}

/// Record an issued launch, if and only if what it was decided on still
/// holds: the person active, the site enabled and unchanged, the grant
/// live with that role, the signing key still active. Check, the person's
/// "last launched" mark and the audit record are one transaction.
/// Returns false (and writes nothing) when something changed meanwhile.
pub async fn record_launch(
    db: &Db,
    r: &LaunchRecord,
    still: &StillTrue<'_>,
) -> Result<bool, sqlx::Error> {
    let pending = Pending {
        record: r.clone(),
        site_version: still.site_version,
        grant_id: still.grant_id.to_string(),
        kid: still.kid.map(String::from),
        facts_version: None,
        session: None,
    };
    Ok(record_launches(db, std::slice::from_ref(&pending)).await?[0])
}

/// Record several issued launches in one transaction (one commit, one
/// move of the audit chain's head), each only if its facts still hold as
/// in [`record_launch`]. Returns, in order, whether each was recorded; on
/// an error nothing is.
pub async fn record_launches(db: &Db, batch: &[Pending]) -> Result<Vec<bool>, sqlx::Error> {
    Ok(record_batch(db, batch).await?.held)
}

/// What became of a batch: whether each launch was recorded, and the
/// launch facts' version as the transaction saw it (when it was read).
struct Recorded {
    held: Vec<bool>,
    facts_version: Option<i64>,
}

async fn record_batch(db: &Db, batch: &[Pending]) -> Result<Recorded, sqlx::Error> {
    match db.kind {
        DbKind::Sqlite => {
            let _turn = db.write_turn().await;
            let mut conn = db.pool.acquire().await?;
            let recorded = record_on_sqlite(&mut conn, batch).await;
            if recorded.is_err() {
                // Never hand back a connection inside a transaction (it would
                // hold the write lock): roll back, and close it if that fails.
                if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                    conn.close_on_drop();
                }
            }
            recorded
        }
        DbKind::Postgres => record_on_postgres(db, batch).await,
    }
}

/// How the check holds what it reads until the commit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// SQLite: the write lock, taken first, holds everything.
    WriteLock,
    /// PostgreSQL, every launch of the batch with its facts' version: the
    /// version row is share-locked when the transaction begins (see
    /// [`BEGIN_PG`]), so a change to the people, sites, grants, teams or
    /// elevations either committed before (and the version differs) or
    /// waits for this commit; only the signing key and the session rows are
    /// share-locked as they are read.
    Version,
    /// PostgreSQL, some launch without a version: every row read is
    /// share-locked, so a revoke, disable or edit in flight is waited for
    /// and then seen (otherwise it could commit between this statement's
    /// snapshot and the commit).
    Rows,
}

/// The statement that checks a batch's facts, bound as the JSON array
/// `$1` (see [`batch_facts`]): the indexes of the launches whose facts
/// hold, as `i` (`select` names the columns; `b` is the launch).
fn check_sql(kind: DbKind, hold: Hold, select: &str) -> String {
    let rows = json_rows(
        kind,
        "b",
        &[
            ("i", "bigint"),
            ("person_id", "text"),
            ("site_id", "text"),
            ("version", "bigint"),
            ("grant_id", "text"),
            ("email", "text"),
            ("role", "text"),
            ("at", "bigint"),
            ("kid", "text"),
            ("facts_version", "bigint"),
            ("session", "text"),
            ("session_now", "bigint"),
        ],
    );
    let (lock, held) = match hold {
        Hold::WriteLock => ("", ""),
        Hold::Version => ("", " FOR SHARE"),
        Hold::Rows => (" FOR SHARE", " FOR SHARE"),
    };
    format!(
        "SELECT {select} FROM {rows} \
         WHERE EXISTS (SELECT 1 FROM people WHERE id = b.person_id AND disabled = 0{lock}) \
           AND EXISTS (SELECT 1 FROM sites WHERE id = b.site_id AND enabled = 1 AND version = b.version{lock}) \
           AND (EXISTS (SELECT 1 FROM grants WHERE id = b.grant_id AND site_id = b.site_id AND email = b.email \
                        AND role = b.role AND (expires_at IS NULL OR expires_at > b.at){lock}) \
                OR EXISTS (SELECT 1 FROM team_grants tg \
                           JOIN team_members m ON m.team_id = tg.team_id AND m.email = b.email \
                           JOIN sites ts ON ts.id = b.site_id AND (tg.site_id = ts.id OR tg.client = ts.client) \
                           WHERE tg.id = b.grant_id AND tg.role = b.role \
                             AND (tg.expires_at IS NULL OR tg.expires_at > b.at){lock}) \
                OR EXISTS (SELECT 1 FROM elevations e \
                           WHERE e.id = b.grant_id AND e.email = b.email AND e.site_id = b.site_id \
                             AND e.role = b.role AND e.state = 'active' AND e.ends_at > b.at \
                             AND (EXISTS (SELECT 1 FROM grants eg WHERE eg.id = e.grant_id \
                                          AND eg.eligible_role = e.role{lock}) \
                                  OR EXISTS (SELECT 1 FROM team_grants etg \
                                             JOIN team_members em ON em.team_id = etg.team_id AND em.email = e.email \
                                             WHERE etg.id = e.grant_id AND etg.eligible_role = e.role{lock})){lock})) \
           AND (b.kid = '' OR EXISTS (SELECT 1 FROM signing_keys WHERE kid = b.kid AND state = 'active'{held})) \
           AND (b.facts_version < 0 OR b.facts_version = ({FACTS_VERSION})) \
           AND (b.session = '' OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = b.session \
                AND s.person_id = b.person_id AND s.expires_at > b.session_now{held}))"
    )
}

/// The launch facts' version now (see `migrations/*/0018_launch_facts_version.sql`).
const FACTS_VERSION: &str = "SELECT n FROM launch_facts_version WHERE id = 1";

/// The batch as the JSON array [`check_sql`] reads.
fn batch_facts(batch: &[Pending]) -> String {
    let facts: Vec<serde_json::Value> = batch
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let r = &p.record;
            json!({
                "i": i,
                "person_id": r.person_id,
                "site_id": r.site_id,
                "version": p.site_version,
                "grant_id": p.grant_id,
                "email": r.email,
                "role": r.role.as_deref().unwrap_or(""),
                "at": r.at,
                "kid": p.kid.as_deref().unwrap_or(""),
                "facts_version": p.facts_version.unwrap_or(-1),
                "session": p.session.as_ref().map_or("", |s| s.key.as_str()),
                "session_now": p.session.as_ref().map_or(0, |s| s.now),
            })
        })
        .collect();
    serde_json::Value::Array(facts).to_string()
}

/// Which launches of the batch the check's indexes say hold.
fn holding(batch: &[Pending], indexes: impl IntoIterator<Item = i64>) -> Vec<bool> {
    let mut held = vec![false; batch.len()];
    for i in indexes {
        if let Some(h) = usize::try_from(i).ok().and_then(|i| held.get_mut(i)) {
            *h = true;
        }
    }
    held
}

/// Each person's "last launched" mark, once per (person, site): the
/// latest of the launches that hold, as a JSON array, and the statement
/// that writes it, bound as `$1`. Rows are marked in one order, by
/// (person, site), in every process: two instances' transactions marking
/// the same rows then queue on them instead of deadlocking.
fn marks(kind: DbKind, batch: &[Pending], held: &[bool]) -> (String, String) {
    let mut marks = std::collections::BTreeMap::new();
    for (p, _) in batch.iter().zip(held).filter(|(_, &ok)| ok) {
        let r = &p.record;
        let at = marks
            .entry((r.email.as_str(), r.site_id.as_str()))
            .or_insert(r.at);
        *at = (*at).max(r.at);
    }
    let marks: Vec<serde_json::Value> = marks
        .into_iter()
        .map(|((email, site_id), at)| json!({ "email": email, "site_id": site_id, "at": at }))
        .collect();
    let mark_rows = json_rows(
        kind,
        "m",
        &[("email", "text"), ("site_id", "text"), ("at", "bigint")],
    );
    // `WHERE true`: SQLite needs a WHERE to tell an upsert's ON CONFLICT from a join's ON.
    let sql = format!(
        "INSERT INTO site_prefs (email, site_id, favourite, last_launched_at) \
         SELECT m.email, m.site_id, 0, m.at FROM {mark_rows} WHERE true \
         ON CONFLICT (email, site_id) DO UPDATE SET last_launched_at = excluded.last_launched_at"
    );
    (sql, serde_json::Value::Array(marks).to_string())
}

/// The audit events of the launches that hold, in the order they arrived.
fn held_events(batch: &[Pending], held: &[bool]) -> Vec<Event> {
    batch
        .iter()
        .zip(held)
        .filter(|(_, &ok)| ok)
        .map(|(p, _)| p.record.event())
        .collect()
}

/// On SQLite every statement is a hop to the connection's thread and back,
/// so the batch takes two: the write lock, the chain's head and the check
/// in one; the marks, the records, the head and the commit in the other
/// (or a rollback when nothing holds). Statements sent together run in
/// order and stop at the first error, which leaves the transaction open
/// for the caller to roll back.
async fn record_on_sqlite(
    conn: &mut sqlx::AnyConnection,
    batch: &[Pending],
) -> Result<Recorded, sqlx::Error> {
    use sqlx::Row;
    // The head (with the facts' version beside it), then the check.
    let read = format!(
        "BEGIN IMMEDIATE; SELECT seq, hash, ({FACTS_VERSION}) FROM audit_head WHERE id = 1; {}",
        check_sql(DbKind::Sqlite, Hold::WriteLock, "b.i")
    );
    let rows = sqlx::query(&read)
        .bind(batch_facts(batch))
        .fetch_all(&mut *conn)
        .await?;
    let malformed = || sqlx::Error::Protocol("the audit chain has no head".into());
    let (head, checked) = rows.split_first().ok_or_else(malformed)?;
    if head.len() != 3 {
        return Err(malformed());
    }
    let (seq, hash): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
    let facts_version = Some(head.try_get::<i64, _>(2)?);
    let indexes = checked
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let held = holding(batch, indexes);
    if !held.contains(&true) {
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        return Ok(Recorded {
            held,
            facts_version,
        });
    }
    let (marks_sql, marks) = marks(DbKind::Sqlite, batch, &held);
    let events = held_events(batch, &held);
    let (records, head) = audit::chained(seq, &hash, &events)?;
    let write = format!(
        "{marks_sql}; {}; COMMIT",
        audit::append_sql(records.len(), 2)
    );
    audit::bind_append(sqlx::query(&write).bind(marks), &records, head)
        .execute(&mut *conn)
        .await?;
    Ok(Recorded {
        held,
        facts_version,
    })
}

/// How a launch transaction begins on PostgreSQL (one round trip): the
/// chain's head locked, then the launch facts' version share-locked, in
/// that order. A change to the facts moves the version at its commit, the
/// last lock it takes (after the head, if it writes to the audit log), so
/// the order makes no cycle; launches of two instances queue on the head.
const BEGIN_PG: &str = "BEGIN; SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE; \
    SELECT n FROM launch_facts_version WHERE id = 1 FOR SHARE";

/// On PostgreSQL, four round trips per batch: the transaction begins with
/// the head and the facts' version locked ([`BEGIN_PG`]); one statement
/// reads the head and the version and checks the launches (the head as
/// the row of index -1); one writes the marks, the records and the head
/// (data-modifying `WITH`); the commit.
async fn record_on_postgres(db: &Db, batch: &[Pending]) -> Result<Recorded, sqlx::Error> {
    use sqlx::Row;
    let hold = if batch.iter().all(|p| p.facts_version.is_some()) {
        Hold::Version
    } else {
        Hold::Rows
    };
    let mut tx = db.pool.begin_with(BEGIN_PG).await?;
    let read = format!(
        "SELECT CAST(-1 AS BIGINT) AS i, seq, hash, ({FACTS_VERSION}) AS v FROM audit_head WHERE id = 1 \
         UNION ALL {}",
        check_sql(
            db.kind,
            hold,
            "b.i, CAST(0 AS BIGINT), CAST('' AS TEXT), CAST(0 AS BIGINT)"
        )
    );
    let rows = sqlx::query(&read)
        .bind(batch_facts(batch))
        .fetch_all(&mut *tx)
        .await?;
    let mut head = None;
    let mut indexes = Vec::with_capacity(rows.len());
    for r in &rows {
        match r.try_get::<i64, _>(0)? {
            -1 => {
                head = Some((
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<String, _>(2)?,
                    r.try_get::<i64, _>(3)?,
                ))
            }
            i => indexes.push(i),
        }
    }
    let (seq, hash, version) =
        head.ok_or_else(|| sqlx::Error::Protocol("the audit chain has no head".into()))?;
    let held = holding(batch, indexes);
    let facts_version = Some(version);
    if !held.contains(&true) {
        tx.rollback().await?;
        return Ok(Recorded {
            held,
            facts_version,
        });
    }
    let (marks_sql, marks) = marks(db.kind, batch, &held);
    let (records, head) = audit::chained(seq, &hash, &held_events(batch, &held))?;
    let write = audit::append_sql_with(records.len(), 2, &format!("marks AS ({marks_sql})"));
    audit::bind_append(sqlx::query(&write).bind(marks), &records, head)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Recorded {
        held,
        facts_version,
    })
}

/// The rows of a JSON array of objects bound as `$1`, as a table `alias`
/// with the given columns (name, PostgreSQL type) for a FROM clause.
fn json_rows(kind: DbKind, alias: &str, columns: &[(&str, &str)]) -> String {
    match kind {
        DbKind::Postgres => {
            let cols: Vec<String> = columns.iter().map(|(c, t)| format!("{c} {t}")).collect();
            format!(
                "json_to_recordset(CAST($1 AS json)) AS {alias}({})",
                cols.join(", ")
            )
        }
        DbKind::Sqlite => {
            let cols: Vec<String> = columns
                .iter()
                .map(|(c, _)| format!("json_extract(value, '$.{c}') AS {c}"))
                .collect();
            format!("(SELECT {} FROM json_each($1)) AS {alias}", cols.join(", "))
        }
    }
}

/// Launches queued for their record. One thread per process writes them:
/// whatever arrived while the previous transaction was committing goes
/// into the next one (group commit), so launches share commits and the
/// audit head is moved once per transaction instead of once per launch.
/// A launch waits for its own transaction's commit; if that fails, every
/// launch in it is told so and none of their tokens is sent.
///
/// The writer has its own thread, runtime and connection: every launch
/// waits for it, so its turns must not queue behind the requests being
/// served (signatures take a fifth of a millisecond each on the service's
/// runtime, and a task woken by the database is taken from that runtime's
/// shared queue only now and then while the workers have others).
#[derive(Clone, Debug)]
pub struct Recorder {
    queue: tokio::sync::mpsc::Sender<(Pending, Reply)>,
    /// The launch facts' version as the last transaction saw it
    /// ([`UNKNOWN`] before the first).
    facts_version: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// No version seen yet.
const UNKNOWN: i64 = i64::MIN;

type Reply = tokio::sync::oneshot::Sender<Result<bool, String>>;

/// The most launches recorded in one transaction.
const MAX_BATCH: usize = 64;

impl Recorder {
    /// Start the writing thread, with a connection of its own to `db`'s
    /// database. It ends when the last `Recorder` is dropped.
    pub fn spawn(db: &Db) -> std::io::Result<Recorder> {
        let (queue, rx) = tokio::sync::mpsc::channel::<(Pending, Reply)>(4 * MAX_BATCH);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let db = db.clone();
        let facts_version = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(UNKNOWN));
        let seen = facts_version.clone();
        std::thread::Builder::new()
            .name("launch-records".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Opened here, so that its connection is this runtime's.
                    let own = db.single();
                    drop(db);
                    write_batches(own, rx, &seen).await;
                })
            })?;
        Ok(Recorder {
            queue,
            facts_version,
        })
    }

    /// The launch facts' version as the last batch's transaction saw it: facts
    /// read at another version will not be recorded (unless it has moved
    /// back to theirs since, which it never does). `None` before the first batch.
    pub fn facts_version(&self) -> Option<i64> {
        Some(
            self.facts_version
                .load(std::sync::atomic::Ordering::Acquire),
        )
        .filter(|&v| v != UNKNOWN)
    }

    /// Queue a launch and wait until its transaction has committed: true if
    /// it was recorded, false if its facts no longer hold.
    pub async fn record(&self, pending: Pending) -> Result<bool, sqlx::Error> {
        let gone = || sqlx::Error::Protocol("the launch recorder has stopped".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send((pending, reply))
            .await
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(sqlx::Error::Protocol)
    }
}

/// The writer's loop: one transaction per batch of what is queued.
async fn write_batches(
    db: Db,
    mut rx: tokio::sync::mpsc::Receiver<(Pending, Reply)>,
    facts_version: &std::sync::atomic::AtomicI64,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (pending, replies): (Vec<Pending>, Vec<Reply>) = batch.drain(..).unzip();
        match record_batch(&db, &pending).await {
            Ok(Recorded {
                held,
                facts_version: seen,
            }) => {
                if let Some(v) = seen {
                    facts_version.store(v, std::sync::atomic::Ordering::Release);
                }
                for (reply, ok) in replies.into_iter().zip(held) {
                    let _ = reply.send(Ok(ok));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, launches = pending.len(), "cannot record launches");
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
    db.pool.close().await;
}

/// Record a refused launch.
pub async fn record_refusal(db: &Db, r: &LaunchRecord) -> Result<(), sqlx::Error> {
    audit::record(db, &[r.event()]).await
}

/// The latest launches, issued or refused, newest first; optionally one person's.
pub async fn latest(
    db: &Db,
    email: Option<&str>,
    limit: i64,
) -> Result<Vec<LaunchRecord>, sqlx::Error> {
    audit::latest_of(
        db,
        &[kind::LAUNCH, kind::LAUNCH_REFUSED],
        email.unwrap_or(""),
        limit,
    )
    .await
    .map(|v| v.into_iter().map(LaunchRecord::from_stored).collect())
}

/// How many launches were issued, and how many distinct `jti` they carry.
pub async fn count(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT jti) FROM audit_log WHERE kind = $1")
        .bind(kind::LAUNCH)
        .fetch_one(&db.pool)
        .await
}

/// What a launch is decided on, read in one statement: the person, the
/// site (if there is one with that id) and every grant that applies to the
/// person there, direct or through a team.
#[derive(Debug, Clone)]
pub struct Facts {
    pub person: Option<crate::domain::people::Person>,
    pub site: Option<crate::domain::sites::Site>,
    pub grants: Vec<crate::domain::access::Grant>,
}

/// A live session's stored record and the [`Facts`] of a launch by its
/// person, read in one statement, with what keeping them for later
/// launches needs.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    /// The session's record as the session store keeps it (JSON).
    pub record: String,
    /// When the session's row says it expires (session store clock).
    pub expires_at: i64,
    /// The launch facts' version they were read at: every change to the
    /// people, sites, grants, teams or elevations moves it.
    pub version: i64,
    pub facts: Facts,
}

/// A live session's stored record (as the session store keeps it, JSON)
/// and the [`Facts`] of a launch by its person, read in the same statement:
/// a launch then makes one round trip before its record, not two. `None`
/// when there is no such session or it has expired by `now` (the session
/// store's own clock, see `sessions::DbSessionStore::now`).
pub async fn facts_in_session(
    db: &Db,
    session_id: &str,
    site_id: &str,
    now: i64,
) -> Result<Option<SessionFacts>, sqlx::Error> {
    use sqlx::Row;
    // The person is the one the session row names (written with its
    // record, see `sessions::DbSessionStore::save`); a session whose person
    // was deleted still gives its record, with no person.
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        facts_sql(&format!(
            "SELECT s.record AS s_record, s.expires_at AS s_expires_at, \
                    ({FACTS_VERSION}) AS f_version, {} \
             FROM sessions s LEFT JOIN people ON people.id = s.person_id \
             WHERE s.id = $1 AND s.expires_at > $3",
            super::people::prefixed_columns("people", "p_")
        ))
    });
    let rows = sqlx::query(sql)
        .bind(session_id)
        .bind(site_id)
        .bind(now)
        .fetch_all(&db.pool)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(SessionFacts {
        record: first.try_get("s_record")?,
        expires_at: first.try_get("s_expires_at")?,
        version: first.try_get("f_version")?,
        facts: facts_of(&rows)?,
    }))
}

/// The statement that reads [`Facts`]: `me` is the person's row (columns
/// prefixed `p_`), `$2` the site's id.
fn facts_sql(me: &str) -> String {
    use super::{grants, sites};
    let grants_sql = grants::grants_of_person().replace("$1", "(SELECT p_email FROM me)");
    format!(
        "WITH me AS ({me}), \
              g AS (SELECT x.* FROM ({grants_sql}) x WHERE x.site_id = $2) \
         SELECT me.*, {site}, g.grant_id AS g_id, g.role AS g_role, \
                g.expires_at AS g_expires_at, g.team AS g_team \
         FROM me LEFT JOIN sites ON sites.id = $2 \
         LEFT JOIN g ON g.site_id = sites.id",
        site = sites::COLUMNS,
    )
}

/// [`Facts`] from the rows of [`facts_sql`]: one per grant, or one with
/// no grant.
fn facts_of(rows: &[sqlx::any::AnyRow]) -> Result<Facts, sqlx::Error> {
    use super::{grants, people, sites};
    let Some(first) = rows.first() else {
        return Ok(Facts {
            person: None,
            site: None,
            grants: Vec::new(),
        });
    };
    let person = people::from_prefixed_row(first, "p_")?;
    let site = sites::from_joined_row(first)?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        use sqlx::Row;
        if let Some(id) = row.try_get::<Option<String>, _>("g_id")? {
            found.push(crate::domain::access::Grant {
                id,
                role: row.try_get("g_role")?,
                expires_at: row.try_get("g_expires_at")?,
                source: grants::source(row.try_get("g_team")?),
            });
        }
    }
    Ok(Facts {
        person,
        site,
        grants: found,
    })
}

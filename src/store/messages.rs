//! The outbox of messages to connector sites (`site_messages`): written in
//! the transaction of the change that calls for them, claimed by one
//! instance at a time under a lease, finished with the site's answer.

use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::config::DbKind;

/// A message to write.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub id: String,
    pub person_id: &'a str,
    pub email: &'a str,
    pub site_id: &'a str,
    pub site_url: &'a str,
    pub client: &'a str,
    pub action: &'a str,
    pub role: &'a str,
    pub cause: &'a str,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Message {
    pub id: String,
    pub person_id: String,
    pub email: String,
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    pub action: String,
    pub role: String,
    pub cause: String,
    pub created_at: i64,
    pub created_by: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub done_at: Option<i64>,
    /// Its place among the messages about this person and site (newer:
    /// greater), sent with it.
    pub seq: i64,
    /// The person's address now (`email` is the one it was written with).
    pub current_email: String,
}

const COLUMNS: &str = "id, person_id, email, site_id, site_url, client, action, role, cause, \
                       created_at, created_by, state, attempts, next_attempt_at, \
                       last_attempt_at, last_error, result, done_at, seq, \
                       COALESCE((SELECT p.email FROM people p WHERE p.id = site_messages.person_id), \
                                site_messages.email) AS current_email";

/// Write messages (inside the caller's transaction), due at once. A message
/// still waiting for the same person and site that this one makes moot
/// (an older set-role; anything but a lock when this is a lock) is
/// superseded: the site gets the newest word only. Each takes the next
/// `seq`: on PostgreSQL from a sequence (a message written after another
/// committed gets a greater one), on SQLite one more than the greatest
/// (its one writer at a time holds the database meanwhile).
pub async fn enqueue(
    conn: &mut AnyConnection,
    messages: &[NewMessage<'_>],
    by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let next_seq = match super::kind_of(conn) {
        DbKind::Postgres => "nextval('site_messages_seq')",
        DbKind::Sqlite => "(SELECT COALESCE(MAX(seq), 0) + 1 FROM site_messages)",
    };
    let insert = format!(
        "INSERT INTO site_messages (id, person_id, email, site_id, site_url, client, action, \
         role, cause, created_at, created_by, state, attempts, next_attempt_at, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', 0, $10, {next_seq})"
    );
    for m in messages {
        let moot = match m.action {
            "lock" => "'lock', 'set-role', 'end-sessions'",
            "set-role" => "'set-role'",
            _ => "'end-sessions'",
        };
        sqlx::query(&format!(
            "UPDATE site_messages SET state = 'superseded', done_at = $1, lease_owner = NULL \
             WHERE person_id = $2 AND site_id = $3 AND state = 'pending' AND action IN ({moot})"
        ))
        .bind(now)
        .bind(m.person_id)
        .bind(m.site_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(&insert)
            .bind(&m.id)
            .bind(m.person_id)
            .bind(m.email)
            .bind(m.site_id)
            .bind(m.site_url)
            .bind(m.client)
            .bind(m.action)
            .bind(m.role)
            .bind(m.cause)
            .bind(now)
            .bind(by)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Point a site's messages that have not got through at its URL and client
/// now (inside the caller's transaction): the next attempt goes there, and
/// each message keeps its `seq`. Returns how many.
pub async fn retarget(
    conn: &mut AnyConnection,
    site_id: &str,
    url: &str,
    client: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE site_messages SET site_url = $2, client = $3 \
         WHERE site_id = $1 AND state = 'pending' AND (site_url <> $2 OR client <> $3)",
    )
    .bind(site_id)
    .bind(url)
    .bind(client)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Cancel a site's messages that have not got through, saying `why`
/// (inside the caller's transaction); an attempt of theirs still marked
/// sending is marked interrupted (one in flight still records its outcome
/// on its attempt). Returns the messages cancelled.
pub async fn cancel_for_site(
    conn: &mut AnyConnection,
    site_id: &str,
    why: &str,
    now: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    let cancelled: Vec<Message> = sqlx::query_as(&format!(
        "UPDATE site_messages SET state = 'cancelled', last_error = $2, done_at = $3, \
         lease_owner = NULL, lease_until = NULL \
         WHERE site_id = $1 AND state = 'pending' RETURNING {COLUMNS}"
    ))
    .bind(site_id)
    .bind(why)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    if !cancelled.is_empty() {
        sqlx::query(
            "UPDATE site_message_attempts SET outcome = 'interrupted', finished_at = $2 \
             WHERE outcome = 'sending' AND message_id IN \
               (SELECT id FROM site_messages WHERE site_id = $1 AND state = 'cancelled')",
        )
        .bind(site_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(cancelled)
}

/// Claim up to `limit` due messages for `owner` until `lease_until`: no
/// other instance claims them meanwhile (PostgreSQL skips rows another
/// transaction holds; SQLite has one writer at a time). Counts the attempt
/// and starts its record; an earlier attempt still `sending` (its instance
/// stopped before writing the outcome) is marked `interrupted`.
pub async fn claim_due(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    let skip_locked = match db.kind {
        DbKind::Postgres => " FOR UPDATE SKIP LOCKED",
        DbKind::Sqlite => "",
    };
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    let claimed: Vec<Message> = sqlx::query_as(&format!(
        "UPDATE site_messages SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
         last_attempt_at = $3 \
         WHERE id IN (SELECT id FROM site_messages WHERE state = 'pending' \
           AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
           ORDER BY next_attempt_at, created_at LIMIT $4{skip_locked}) \
         RETURNING {COLUMNS}"
    ))
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    for chunk in claimed.chunks(ATTEMPTS_PER_STATEMENT) {
        let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", 2 + i)).collect();
        let ids = ids.join(", ");
        let sql = format!(
            "UPDATE site_message_attempts SET outcome = 'interrupted', finished_at = $1 \
             WHERE outcome = 'sending' AND message_id IN ({ids})"
        );
        let mut interrupted = sqlx::query(&sql).bind(now);
        for m in chunk {
            interrupted = interrupted.bind(&m.id);
        }
        interrupted.execute(&mut *tx).await?;
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, $1, 'sending')", 2 + 2 * i, 3 + 2 * i))
            .collect();
        let sql = format!(
            "INSERT INTO site_message_attempts (message_id, attempt, started_at, outcome) \
             VALUES {} ON CONFLICT (message_id, attempt) DO NOTHING",
            rows.join(", ")
        );
        let mut started = sqlx::query(&sql).bind(now);
        for m in chunk {
            started = started.bind(&m.id).bind(m.attempts);
        }
        started.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(claimed)
}

/// Attempt records written per statement when a batch is claimed.
const ATTEMPTS_PER_STATEMENT: usize = 100;

/// When the next message falls due (for the worker's sleep), if any waits.
pub async fn next_due(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at \
         THEN lease_until ELSE next_attempt_at END) FROM site_messages WHERE state = 'pending'",
    )
    .fetch_one(&db.pool)
    .await
}

/// What became of a claimed attempt.
pub enum Outcome<'a> {
    Done {
        result: &'a str,
    },
    Retry {
        error: &'a str,
        at: i64,
    },
    /// An answer that was not the plugin's answer to this message saying
    /// it was done: tried again at `at` like a failure.
    Unexpected {
        error: &'a str,
        at: i64,
    },
    /// Refused by the site, or `given_up` after days of retries.
    Failed {
        error: &'a str,
        given_up: bool,
    },
}

impl Outcome<'_> {
    /// The attempt's outcome and detail, as its record keeps them.
    fn attempt_record(&self) -> (&'static str, &str) {
        match self {
            Outcome::Done { result } => ("delivered", *result),
            Outcome::Retry { error, .. } => ("retry", *error),
            Outcome::Unexpected { error, .. } => ("unexpected", *error),
            Outcome::Failed {
                error,
                given_up: true,
            } => ("given-up", *error),
            Outcome::Failed { error, .. } => ("refused", *error),
        }
    }
}

/// Record attempt number `attempt`'s outcome, inside the caller's
/// transaction: always on the attempt's own record (the site may have
/// acted on it), and on the message if `owner` still holds it (a lease
/// that ran out may have passed it on). True when the message took it.
pub async fn finish(
    conn: &mut AnyConnection,
    id: &str,
    attempt: i64,
    owner: &str,
    outcome: &Outcome<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (what, detail) = outcome.attempt_record();
    sqlx::query(
        "UPDATE site_message_attempts SET outcome = $3, detail = $4, finished_at = $5 \
         WHERE message_id = $1 AND attempt = $2 AND outcome IN ('sending', 'interrupted')",
    )
    .bind(id)
    .bind(attempt)
    .bind(what)
    .bind(detail)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let q = match outcome {
        Outcome::Done { result } => sqlx::query(
            "UPDATE site_messages SET state = 'done', result = $3, last_error = NULL, \
             done_at = $4, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(*result)
        .bind(now),
        Outcome::Retry { error, at } | Outcome::Unexpected { error, at } => sqlx::query(
            "UPDATE site_messages SET last_error = $3, next_attempt_at = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(*error)
        .bind(*at),
        Outcome::Failed { error, .. } => sqlx::query(
            "UPDATE site_messages SET state = 'failed', last_error = $3, done_at = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(*error)
        .bind(now),
    };
    Ok(q.execute(&mut *conn).await?.rows_affected() == 1)
}

/// One attempt to deliver a message.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Attempt {
    pub message_id: String,
    pub attempt: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// sending, delivered, retry, unexpected, refused, given-up,
    /// interrupted or cancelled.
    pub outcome: String,
    pub detail: String,
}

/// Every attempt at the messages about a person, by message and number.
pub async fn attempts_for_person(db: &Db, person_id: &str) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.message_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.detail \
         FROM site_message_attempts a JOIN site_messages m ON m.id = a.message_id \
         WHERE m.person_id = $1 ORDER BY a.message_id, a.attempt",
    )
    .bind(person_id)
    .fetch_all(&db.pool)
    .await
}

/// Every message about a person, oldest first.
pub async fn for_person(db: &Db, person_id: &str) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM site_messages WHERE person_id = $1 ORDER BY created_at, id"
    ))
    .bind(person_id)
    .fetch_all(&db.pool)
    .await
}

/// How many messages are in each state.
pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, COUNT(*) FROM site_messages GROUP BY state ORDER BY state")
        .fetch_all(&db.pool)
        .await
}

/// A connector site a message may go to.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Target {
    pub id: String,
    pub url: String,
    pub client: String,
}

/// The sites a person ever launched or holds a grant on (directly or
/// through a team) whose profile passes `profile` (a condition on
/// `s.profile`), as `{columns}` of `sites s`, by client and URL.
fn sites_of_person(columns: &str, profile: &str) -> String {
    format!(
        "SELECT {columns} FROM sites s WHERE {profile} AND ( \
           s.id IN (SELECT site_id FROM site_prefs WHERE email = $1 AND last_launched_at IS NOT NULL) \
           OR s.id IN (SELECT x.site_id FROM ({}) x)) ORDER BY s.client, s.url",
        super::grants::grants_of_person()
    )
}

/// The connector sites a person ever launched or holds a grant on, read
/// inside the caller's transaction.
pub async fn connector_sites_of(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Vec<Target>, sqlx::Error> {
    sqlx::query_as(&sites_of_person(
        "s.id, s.url, s.client",
        "s.profile = 'connector'",
    ))
    .bind(email)
    .fetch_all(&mut *conn)
    .await
}

/// The sites on other profiles a person ever launched or holds a grant on:
/// no message reaches them.
pub async fn other_sites_of(
    db: &Db,
    email: &str,
) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    sqlx::query_as(&sites_of_person(
        "s.id, s.url, s.client, s.profile",
        "s.profile <> 'connector'",
    ))
    .bind(email)
    .fetch_all(&db.pool)
    .await
}

/// A connector site the person has entered, with the roles it allows: the
/// only kind of site a role change is sent to. `None` otherwise.
pub async fn entered_connector_site(
    conn: &mut AnyConnection,
    email: &str,
    site_id: &str,
) -> Result<Option<(Target, String)>, sqlx::Error> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT s.id, s.url, s.client, s.roles FROM sites s WHERE s.id = $1 \
         AND s.profile = 'connector' AND EXISTS (SELECT 1 FROM site_prefs p \
           WHERE p.email = $2 AND p.site_id = s.id AND p.last_launched_at IS NOT NULL)",
    )
    .bind(site_id)
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id, url, client, roles)| (Target { id, url, client }, roles)))
}

/// Grants that ended between `after` (exclusive) and `until` (inclusive),
/// as (e-mail, site id) pairs, direct and through teams.
pub async fn expired_between(
    conn: &mut AnyConnection,
    after: i64,
    until: i64,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.email, g.site_id, g.role FROM grants g \
           WHERE g.expires_at > $1 AND g.expires_at <= $2 \
         UNION SELECT m.email, tg.site_id, tg.role FROM team_grants tg \
           JOIN team_members m ON m.team_id = tg.team_id \
           WHERE tg.site_id IS NOT NULL AND tg.expires_at > $1 AND tg.expires_at <= $2 \
         UNION SELECT m.email, s.id, tg.role FROM team_grants tg \
           JOIN team_members m ON m.team_id = tg.team_id JOIN sites s ON s.client = tg.client \
           WHERE tg.client IS NOT NULL AND tg.expires_at > $1 AND tg.expires_at <= $2",
    )
    .bind(after)
    .bind(until)
    .fetch_all(&mut *conn)
    .await
}

/// Move a job's mark from `from` to `to` (compare and set): false when
/// another instance moved it first. A job without a mark starts at `from`.
pub async fn move_mark(
    conn: &mut AnyConnection,
    job: &str,
    from: i64,
    to: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_marks (job, done_through) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING",
    )
    .bind(job)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    let moved =
        sqlx::query("UPDATE job_marks SET done_through = $3 WHERE job = $1 AND done_through = $2")
            .bind(job)
            .bind(from)
            .bind(to)
            .execute(&mut *conn)
            .await?;
    Ok(moved.rows_affected() == 1)
}

/// Where a job's mark stands, if it has one.
pub async fn mark(db: &Db, job: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT done_through FROM job_marks WHERE job = $1")
        .bind(job)
        .fetch_optional(&db.pool)
        .await
}

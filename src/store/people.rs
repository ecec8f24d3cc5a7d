//! People: created or refreshed at sign-in, disabled by admins.

use sqlx::FromRow;

use super::{flag, Db};
use crate::domain::identity::Admitted;
use crate::domain::people::Person;

#[derive(FromRow)]
struct PersonRow {
    id: String,
    issuer: String,
    subject: String,
    email: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    is_admin: i64,
    disabled: i64,
    created_at: i64,
    last_sign_in_at: Option<i64>,
}

impl From<PersonRow> for Person {
    fn from(r: PersonRow) -> Self {
        Person {
            id: r.id,
            issuer: r.issuer,
            subject: r.subject,
            email: r.email,
            name: r.name,
            given_name: r.given_name,
            family_name: r.family_name,
            is_admin: r.is_admin != 0,
            disabled: r.disabled != 0,
            created_at: r.created_at,
            last_sign_in_at: r.last_sign_in_at,
        }
    }
}

const COLUMNS: &str = "id, issuer, subject, email, name, given_name, family_name, \
                       is_admin, disabled, created_at, last_sign_in_at";

/// Record a sign-in: create the person on first sign-in (as staff, or admin
/// when bootstrapped), else refresh their profile from the provider. The
/// bootstrap list counts only at creation: later sign-ins neither promote
/// nor demote (the console decides). A disabled person is left untouched
/// and `None` returned.
pub async fn record_sign_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    who: &Admitted,
    new_id: &str,
    now: i64,
) -> Result<Option<Person>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO people (id, issuer, subject, email, name, given_name, family_name, \
                             is_admin, disabled, created_at, last_sign_in_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9) \
         ON CONFLICT (issuer, subject) DO UPDATE SET \
             email = excluded.email, name = excluded.name, given_name = excluded.given_name, \
             family_name = excluded.family_name, last_sign_in_at = excluded.last_sign_in_at, \
             is_admin = people.is_admin \
         WHERE people.disabled = 0 \
         RETURNING {COLUMNS}"
    );
    let row: Option<PersonRow> = sqlx::query_as(&sql)
        .bind(new_id)
        .bind(&who.issuer)
        .bind(&who.subject)
        .bind(&who.email)
        .bind(&who.name)
        .bind(&who.given_name)
        .bind(&who.family_name)
        .bind(flag(who.bootstrap_admin))
        .bind(now)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(Into::into))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Person>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM people WHERE id = $1");
    let row: Option<PersonRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(Into::into))
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Vec<Person>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    all_by_email_in(&mut conn, email).await
}

/// The person with this e-mail address, read inside a transaction: the
/// enabled one when several sign in with it (through different providers),
/// else the earliest.
pub async fn find_by_email_in(
    conn: &mut sqlx::AnyConnection,
    email: &str,
) -> Result<Option<Person>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM people WHERE email = $1 ORDER BY disabled, created_at LIMIT 1"
    );
    let row: Option<PersonRow> = sqlx::query_as(&sql)
        .bind(email.trim().to_ascii_lowercase())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(Into::into))
}

pub async fn list(db: &Db) -> Result<Vec<Person>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM people ORDER BY email, created_at");
    let rows: Vec<PersonRow> = sqlx::query_as(&sql).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Disable or re-enable a person. Disabling ends every session they have, in
/// the same transaction, so no request of theirs is served afterwards.
/// Returns how many sessions were ended, or `None` when there is no such person.
/// Runs inside the caller's transaction (which records the change).
pub async fn set_disabled(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    disabled: bool,
) -> Result<Option<u64>, sqlx::Error> {
    let changed = sqlx::query("UPDATE people SET disabled = $1 WHERE id = $2")
        .bind(flag(disabled))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    let ended = if disabled {
        sqlx::query("DELETE FROM sessions WHERE person_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        0
    };
    Ok(Some(ended))
}

/// One person in the admin list: who, standing, and activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPerson {
    pub person: Person,
    pub sessions: i64,
    pub grants: i64,
}

#[derive(FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    person: PersonRow,
    session_count: i64,
    grant_count: i64,
}

/// A page of people whose e-mail or name holds every typed word, by e-mail;
/// `standing` is "admin", "staff", "disabled" or "" for all.
pub async fn search(
    db: &Db,
    text: &str,
    standing: &str,
    now: i64,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ListedPerson>, i64), sqlx::Error> {
    let mut conditions = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    for word in text.to_lowercase().split_whitespace().take(8) {
        binds.push(format!("%{}%", super::sites::escape_like(word)));
        let n = binds.len() + 1;
        conditions.push(format!(
            "(people.email LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE(people.name, '')) LIKE ${n} ESCAPE '\\')"
        ));
    }
    match standing {
        "admin" => conditions.push("people.is_admin = 1 AND people.disabled = 0".into()),
        "staff" => conditions.push("people.is_admin = 0 AND people.disabled = 0".into()),
        "disabled" => conditions.push("people.disabled = 1".into()),
        _ => {}
    }
    let filter = if conditions.is_empty() {
        "WHERE $1 = $1".to_string()
    } else {
        format!("WHERE $1 = $1 AND {}", conditions.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) FROM people {filter}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql).bind(now);
    for b in &binds {
        count = count.bind(b);
    }
    let total = count.fetch_one(&db.pool).await?;
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("people.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns}, \
           (SELECT COUNT(*) FROM sessions s WHERE s.person_id = people.id AND s.expires_at > $1) AS session_count, \
           (SELECT COUNT(*) FROM grants g WHERE g.email = people.email) AS grant_count \
         FROM people {filter} ORDER BY people.email, people.created_at LIMIT {limit} OFFSET {offset}",
        limit = limit.clamp(1, 500),
        offset = offset.max(0),
    );
    let mut page = sqlx::query_as::<_, ListedRow>(&sql).bind(now);
    for b in &binds {
        page = page.bind(b);
    }
    let rows = page.fetch_all(&db.pool).await?;
    Ok((
        rows.into_iter()
            .map(|r| ListedPerson {
                person: r.person.into(),
                sessions: r.session_count,
                grants: r.grant_count,
            })
            .collect(),
        total,
    ))
}

/// Make a person an admin or staff again.
pub async fn set_admin(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    admin: bool,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE people SET is_admin = $1 WHERE id = $2")
        .bind(flag(admin))
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The ids of the admins who can act (not disabled), locked until the
/// transaction ends on PostgreSQL (SQLite's write lock is already held), so
/// that two admins demoting each other at once cannot leave none.
pub async fn active_admins_locked(
    conn: &mut sqlx::AnyConnection,
    kind: crate::config::DbKind,
) -> Result<Vec<String>, sqlx::Error> {
    let lock = match kind {
        crate::config::DbKind::Postgres => " FOR UPDATE",
        crate::config::DbKind::Sqlite => "",
    };
    sqlx::query_scalar(&format!(
        "SELECT id FROM people WHERE is_admin = 1 AND disabled = 0 ORDER BY id{lock}"
    ))
    .fetch_all(&mut *conn)
    .await
}

/// A person read inside a transaction.
pub async fn find_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<Person>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM people WHERE id = $1");
    let row: Option<PersonRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(Into::into))
}

/// An invitation: someone who may not have signed in yet.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Invitation {
    pub email: String,
    pub make_admin: i64,
    pub invited_at: i64,
    pub invited_by: String,
}

/// Invite (or invite again) by e-mail. Returns the invitation it replaced.
pub async fn invite(
    conn: &mut sqlx::AnyConnection,
    email: &str,
    make_admin: bool,
    by: &str,
    now: i64,
) -> Result<Option<Invitation>, sqlx::Error> {
    let before: Option<Invitation> = sqlx::query_as(
        "SELECT email, make_admin, invited_at, invited_by FROM invitations WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO invitations (email, make_admin, invited_at, invited_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO UPDATE SET make_admin = excluded.make_admin, \
             invited_at = excluded.invited_at, invited_by = excluded.invited_by",
    )
    .bind(email)
    .bind(flag(make_admin))
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(before)
}

/// Take an invitation away (withdrawn, or used at first sign-in).
pub async fn take_invitation(
    conn: &mut sqlx::AnyConnection,
    email: &str,
) -> Result<Option<Invitation>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM invitations WHERE email = $1 \
         RETURNING email, make_admin, invited_at, invited_by",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await
}

/// Open invitations, newest first.
pub async fn invitations(db: &Db) -> Result<Vec<Invitation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT email, make_admin, invited_at, invited_by FROM invitations \
         ORDER BY invited_at DESC, email LIMIT 500",
    )
    .fetch_all(&db.pool)
    .await
}

/// The person's columns under other names (`p_id`, `p_email`, ...), for a
/// statement that reads them beside another table's.
pub(crate) fn prefixed_columns(table: &str, prefix: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A person read with [`prefixed_columns`]; `None` when the row has none.
pub(crate) fn from_prefixed_row(
    row: &sqlx::any::AnyRow,
    prefix: &str,
) -> Result<Option<Person>, sqlx::Error> {
    use sqlx::Row;
    let col = |c: &str| format!("{prefix}{c}");
    let Some(id) = row.try_get::<Option<String>, _>(col("id").as_str())? else {
        return Ok(None);
    };
    Ok(Some(
        PersonRow {
            id,
            issuer: row.try_get(col("issuer").as_str())?,
            subject: row.try_get(col("subject").as_str())?,
            email: row.try_get(col("email").as_str())?,
            name: row.try_get(col("name").as_str())?,
            given_name: row.try_get(col("given_name").as_str())?,
            family_name: row.try_get(col("family_name").as_str())?,
            is_admin: row.try_get(col("is_admin").as_str())?,
            disabled: row.try_get(col("disabled").as_str())?,
            created_at: row.try_get(col("created_at").as_str())?,
            last_sign_in_at: row.try_get(col("last_sign_in_at").as_str())?,
        }
        .into(),
    ))
}

/// The person known under (issuer, subject), read inside a transaction.
pub async fn find_by_subject_in(
    conn: &mut sqlx::AnyConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<Person>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM people WHERE issuer = $1 AND subject = $2");
    let row: Option<PersonRow> = sqlx::query_as(&sql)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Everyone known under an e-mail address, read inside a transaction.
pub async fn all_by_email_in(
    conn: &mut sqlx::AnyConnection,
    email: &str,
) -> Result<Vec<Person>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM people WHERE email = $1 ORDER BY created_at");
    let rows: Vec<PersonRow> = sqlx::query_as(&sql)
        .bind(email.trim().to_ascii_lowercase())
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Move a person to another (issuer, subject): an admin confirmed that a
/// new account at the provider is theirs.
pub async fn set_identity(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    issuer: &str,
    subject: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE people SET issuer = $2, subject = $3 WHERE id = $1")
        .bind(id)
        .bind(issuer)
        .bind(subject)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// A sign-in held for an admin: an address someone enabled already holds,
/// arriving under another subject.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Held {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub attempts: i64,
}

const HELD_COLUMNS: &str = "issuer, subject, email, name, first_seen_at, last_seen_at, attempts";

/// Note a held sign-in (again).
pub async fn hold(
    conn: &mut sqlx::AnyConnection,
    who: &Admitted,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO held_identities (issuer, subject, email, name, first_seen_at, last_seen_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, $5, 1) \
         ON CONFLICT (issuer, subject) DO UPDATE SET email = excluded.email, name = excluded.name, \
             last_seen_at = excluded.last_seen_at, attempts = held_identities.attempts + 1",
    )
    .bind(&who.issuer)
    .bind(&who.subject)
    .bind(&who.email)
    .bind(&who.name)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Held sign-ins, newest first (one address's, when `email` is not empty).
pub async fn held(db: &Db, email: &str) -> Result<Vec<Held>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HELD_COLUMNS} FROM held_identities WHERE ($1 = '' OR email = $1) \
         ORDER BY last_seen_at DESC LIMIT 500"
    ))
    .bind(email.trim().to_ascii_lowercase())
    .fetch_all(&db.pool)
    .await
}

/// Take a held sign-in away (confirmed or refused).
pub async fn take_held(
    conn: &mut sqlx::AnyConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<Held>, sqlx::Error> {
    sqlx::query_as(&format!(
        "DELETE FROM held_identities WHERE issuer = $1 AND subject = $2 RETURNING {HELD_COLUMNS}"
    ))
    .bind(issuer)
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await
}

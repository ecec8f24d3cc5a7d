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
/// when bootstrapped), else refresh their profile from the provider.
/// A bootstrap admin is promoted; nobody is demoted here. A disabled person
/// is left untouched and `None` returned.
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
             is_admin = CASE WHEN excluded.is_admin = 1 THEN 1 ELSE people.is_admin END \
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
    let sql = format!("SELECT {COLUMNS} FROM people WHERE email = $1 ORDER BY created_at");
    let rows: Vec<PersonRow> = sqlx::query_as(&sql)
        .bind(email.trim().to_ascii_lowercase())
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
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

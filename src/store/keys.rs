//! The signing key ring in the database. Every change runs in one
//! transaction that first locks the `key_ring` row: concurrent changes from
//! several instances queue behind it, re-read the ring, and decide again,
//! so two instances rotating at once make exactly one new key. A process
//! killed mid-change leaves the transaction uncommitted: the ring is as it
//! was.

use sqlx::{Any, FromRow, Transaction};

use super::{audit, Db};
use crate::domain::audit::Event;
use crate::domain::keys::{KeyRecord, KeyState, Ring};

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    state: String,
    bits: i64,
    n: String,
    e: String,
    created_at: i64,
    activates_at: Option<i64>,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
    remove_at: Option<i64>,
    removed_at: Option<i64>,
    revoked_at: Option<i64>,
    revoked_reason: Option<String>,
}

const COLUMNS: &str = "kid, state, bits, n, e, created_at, activates_at, activated_at, \
                       retired_at, remove_at, removed_at, revoked_at, revoked_reason";

impl TryFrom<KeyRow> for KeyRecord {
    type Error = sqlx::Error;
    fn try_from(r: KeyRow) -> Result<Self, sqlx::Error> {
        let state = KeyState::parse(&r.state).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown key state {:?} for {}", r.state, r.kid).into())
        })?;
        Ok(KeyRecord {
            kid: r.kid,
            state,
            bits: u32::try_from(r.bits).unwrap_or(0),
            n: r.n,
            e: r.e,
            created_at: r.created_at,
            activates_at: r.activates_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
            remove_at: r.remove_at,
            removed_at: r.removed_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
        })
    }
}

/// The ring's version: it changes whenever the ring does.
pub async fn version(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM key_ring WHERE id = 1")
        .fetch_one(&db.pool)
        .await
}

/// The ring (public halves and timelines) and its version, read together.
pub async fn load(db: &Db) -> Result<(i64, Ring), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM key_ring WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let ring = load_in(&mut tx).await?;
    tx.commit().await?;
    Ok((version, ring))
}

async fn load_in(tx: &mut Transaction<'_, Any>) -> Result<Ring, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, kid");
    let rows: Vec<KeyRow> = sqlx::query_as(&sql).fetch_all(&mut **tx).await?;
    let keys = rows
        .into_iter()
        .map(KeyRecord::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Ring::new(keys))
}

/// The sealed private half of a key, while it is kept.
pub async fn sealed_private_key(db: &Db, kid: &str) -> Result<Option<String>, sqlx::Error> {
    let v: Option<Option<String>> =
        sqlx::query_scalar("SELECT private_key FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&db.pool)
            .await?;
    Ok(v.flatten())
}

/// A freshly generated key's id and its sealed private half, for `change`.
pub struct SealedKey {
    pub kid: String,
    pub sealed: String,
}

/// Change the ring under the ring lock: `decide` sees the ring as it is
/// now and changes it; the differences are written and committed together.
/// `fresh` is the sealed private half of a key `decide` may add.
/// Returns what `decide` returned.
/// `record` turns what `decide` returned into the audit records written
/// in the same transaction.
pub async fn change<T, E>(
    db: &Db,
    fresh: Option<&SealedKey>,
    decide: impl FnOnce(&mut Ring) -> Result<T, E>,
    record: impl FnOnce(&T) -> Vec<Event>,
) -> Result<T, E>
where
    E: From<sqlx::Error>,
{
    let mut tx = audit::begin(db).await?;
    lock_ring(&mut tx).await?;
    let before = load_in(&mut tx).await?;
    let mut after = before.clone();
    let out = decide(&mut after)?;
    if after == before {
        tx.rollback().await?;
        return Ok(out);
    }
    // Write keys leaving a state before keys entering it, so that the
    // one-active and one-next indexes hold after every statement.
    let rank = |s: KeyState| match s {
        KeyState::Active => 1,
        KeyState::Next => 2,
        _ => 0,
    };
    let mut changed: Vec<&KeyRecord> = after
        .keys
        .iter()
        .filter(|k| before.get(&k.kid) != Some(*k))
        .collect();
    changed.sort_by_key(|k| rank(k.state));
    for k in changed {
        if before.get(&k.kid).is_some() {
            update(&mut tx, k).await?;
        } else {
            let sealed = fresh
                .filter(|f| f.kid == k.kid)
                .map(|f| f.sealed.as_str())
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!("no private key given for new key {}", k.kid))
                })?;
            insert(&mut tx, k, sealed).await?;
        }
    }
    for e in record(&out) {
        audit::append(&mut tx, &e).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Take the ring lock for this transaction (a row lock on PostgreSQL, the
/// write lock on SQLite) and mark the ring as changed.
async fn lock_ring(tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE key_ring SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert(
    tx: &mut Transaction<'_, Any>,
    k: &KeyRecord,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO signing_keys ({COLUMNS}, private_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    sqlx::query(&sql)
        .bind(&k.kid)
        .bind(k.state.as_str())
        .bind(i64::from(k.bits))
        .bind(&k.n)
        .bind(&k.e)
        .bind(k.created_at)
        .bind(k.activates_at)
        .bind(k.activated_at)
        .bind(k.retired_at)
        .bind(k.remove_at)
        .bind(k.removed_at)
        .bind(k.revoked_at)
        .bind(&k.revoked_reason)
        .bind(sealed)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn update(tx: &mut Transaction<'_, Any>, k: &KeyRecord) -> Result<(), sqlx::Error> {
    // The private half goes as soon as the key can no longer sign.
    let private = if k.state.keeps_private_key() {
        "private_key"
    } else {
        "NULL"
    };
    let sql = format!(
        "UPDATE signing_keys SET state = $2, activates_at = $3, activated_at = $4, \
         retired_at = $5, remove_at = $6, removed_at = $7, revoked_at = $8, \
         revoked_reason = $9, private_key = {private} WHERE kid = $1"
    );
    sqlx::query(&sql)
        .bind(&k.kid)
        .bind(k.state.as_str())
        .bind(k.activates_at)
        .bind(k.activated_at)
        .bind(k.retired_at)
        .bind(k.remove_at)
        .bind(k.removed_at)
        .bind(k.revoked_at)
        .bind(&k.revoked_reason)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reseal every kept private key with `reseal` (old sealed value → new, or
/// `None` to leave it), under the ring lock. Returns how many changed.
/// `record` makes the audit record of how many were resealed.
pub async fn reseal_private_keys<E>(
    db: &Db,
    mut reseal: impl FnMut(&str, &str) -> Result<Option<String>, E>,
    record: impl FnOnce(u64) -> Event,
) -> Result<u64, E>
where
    E: From<sqlx::Error>,
{
    let mut tx = audit::begin(db).await?;
    lock_ring(&mut tx).await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kid, private_key FROM signing_keys WHERE private_key IS NOT NULL ORDER BY kid",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut n = 0;
    for (kid, sealed) in rows {
        if let Some(new) = reseal(&kid, &sealed)? {
            sqlx::query("UPDATE signing_keys SET private_key = $2 WHERE kid = $1")
                .bind(&kid)
                .bind(new)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
    }
    audit::append(&mut tx, &record(n)).await?;
    tx.commit().await?;
    Ok(n)
}

//! The signing key ring in the database. Every change runs in one
//! transaction that first locks the `key_ring` row: concurrent changes from
//! several instances queue behind it, re-read the ring, and decide again,
//! so two instances rotating at once make exactly one new key. A process
//! killed mid-change leaves the transaction uncommitted: the ring is as it
//! was.

use sqlx::{Any, FromRow, Transaction};

use super::{audit, Db};
use crate::domain::audit::Event;
use crate::domain::keys::{Integrity, KeyRecord, KeyState, Ring};

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
    mac: Option<String>,
    private_key: Option<String>,
}

/// A key row as stored: its record, its MAC and its sealed private half.
/// Nothing here is trusted until the service has checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub record: KeyRecord,
    pub mac: Option<String>,
    pub sealed: Option<String>,
}

const COLUMNS: &str = "kid, state, bits, n, e, created_at, activates_at, activated_at, \
                       retired_at, remove_at, removed_at, revoked_at, revoked_reason";

impl TryFrom<KeyRow> for StoredKey {
    type Error = sqlx::Error;
    fn try_from(r: KeyRow) -> Result<Self, sqlx::Error> {
        let state = KeyState::parse(&r.state).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown key state {:?} for {}", r.state, r.kid).into())
        })?;
        let record = KeyRecord {
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
        };
        Ok(StoredKey {
            record,
            mac: r.mac,
            sealed: r.private_key,
        })
    }
}

/// The ring's version: it changes whenever the ring does.
pub async fn version(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM key_ring WHERE id = 1")
        .fetch_one(&db.pool)
        .await
}

/// Every key row as stored, the ring's version, and whether the rows from
/// before MACs were bound yet, read together.
pub async fn load(db: &Db) -> Result<(i64, Vec<StoredKey>, bool), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let (version, bound_at): (i64, Option<i64>) =
        sqlx::query_as("SELECT version, rows_bound_at FROM key_ring WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let rows = load_in(&mut tx).await?;
    tx.commit().await?;
    Ok((version, rows, bound_at.is_some()))
}

async fn load_in(tx: &mut Transaction<'_, Any>) -> Result<Vec<StoredKey>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS}, mac, private_key FROM signing_keys ORDER BY created_at, kid");
    let rows: Vec<KeyRow> = sqlx::query_as(&sql).fetch_all(&mut **tx).await?;
    rows.into_iter().map(StoredKey::try_from).collect()
}

/// A freshly generated key's id and its sealed private half, for `change`.
pub struct SealedKey {
    pub kid: String,
    pub sealed: String,
}

/// How a change sees and seals rows: the verdict on each stored row (only
/// sound rows reach `decide`), and the MAC of a row as written.
pub struct Sealing<'a> {
    pub verdict: &'a (dyn Fn(&StoredKey) -> Integrity + Sync),
    pub mac: &'a (dyn Fn(&KeyRecord) -> String + Sync),
    /// A forged row in a state that only one key may hold (next, active) is
    /// revoked, so that it cannot block the real one; these make its record.
    pub now: i64,
    pub record_forged: &'a (dyn Fn(&KeyRecord, &str) -> Event + Sync),
}

/// Change the ring under the ring lock: `decide` sees the ring of trusted
/// rows as it is now and changes it; the differences are written, each with
/// its MAC, and committed together.
/// `fresh` is the sealed private half of a key `decide` may add.
/// Returns what `decide` returned.
/// `record` turns what `decide` returned into the audit records written
/// in the same transaction.
pub async fn change<T, E>(
    db: &Db,
    sealing: &Sealing<'_>,
    fresh: Option<&SealedKey>,
    decide: impl FnOnce(&mut Ring) -> Result<T, E>,
    record: impl FnOnce(&T) -> Vec<Event>,
) -> Result<T, E>
where
    E: From<sqlx::Error>,
{
    let mut tx = audit::begin(db).await?;
    lock_ring(&mut tx).await?;
    let stored = load_in(&mut tx).await?;
    let kids: Vec<String> = stored.iter().map(|s| s.record.kid.clone()).collect();
    let mut sound = Vec::new();
    let mut demoted = false;
    for s in stored {
        match (sealing.verdict)(&s) {
            Integrity::Sound => sound.push(s.record),
            Integrity::Forged(why)
                if matches!(s.record.state, KeyState::Next | KeyState::Active) =>
            {
                let mut revoked = s.record;
                revoked.state = KeyState::Revoked;
                revoked.revoked_at = Some(sealing.now);
                revoked.revoked_reason = Some(format!("failed its integrity check: {why}"));
                update(&mut tx, &revoked, &(sealing.mac)(&revoked)).await?;
                audit::append(&mut tx, &(sealing.record_forged)(&revoked, &why)).await?;
                demoted = true;
            }
            _ => {}
        }
    }
    let before = Ring::new(sound);
    let mut after = before.clone();
    let out = decide(&mut after)?;
    if after == before {
        if demoted {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
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
        let mac = (sealing.mac)(k);
        if before.get(&k.kid).is_some() {
            update(&mut tx, k, &mac).await?;
        } else if kids.contains(&k.kid) {
            // A new key whose id an untrusted row already holds.
            return Err(sqlx::Error::Protocol(format!(
                "key {} is already stored by an untrusted row",
                k.kid
            ))
            .into());
        } else {
            let sealed = fresh
                .filter(|f| f.kid == k.kid)
                .map(|f| f.sealed.as_str())
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!("no private key given for new key {}", k.kid))
                })?;
            insert(&mut tx, k, sealed, &mac).await?;
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
    mac: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO signing_keys ({COLUMNS}, private_key, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
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
        .bind(mac)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn update(
    tx: &mut Transaction<'_, Any>,
    k: &KeyRecord,
    mac: &str,
) -> Result<(), sqlx::Error> {
    // The private half goes as soon as the key can no longer sign.
    let private = if k.state.keeps_private_key() {
        "private_key"
    } else {
        "NULL"
    };
    let sql = format!(
        "UPDATE signing_keys SET state = $2, activates_at = $3, activated_at = $4, \
         retired_at = $5, remove_at = $6, removed_at = $7, revoked_at = $8, \
         revoked_reason = $9, private_key = {private}, mac = $10 WHERE kid = $1"
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
        .bind(mac)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reseal every trusted row under the current master key, under the ring
/// lock: `reseal` gives a row's new sealed private half and MAC, or `None`
/// to leave it. Returns how many private halves were resealed (rows whose
/// MAC alone changed are not counted); `record` makes the audit record of
/// that number.
pub async fn reseal<E>(
    db: &Db,
    mut reseal: impl FnMut(&StoredKey) -> Result<Option<(Option<String>, String)>, E>,
    record: impl FnOnce(u64) -> Event,
) -> Result<u64, E>
where
    E: From<sqlx::Error>,
{
    let mut tx = audit::begin(db).await?;
    lock_ring(&mut tx).await?;
    let rows = load_in(&mut tx).await?;
    let mut n = 0;
    for row in rows {
        if let Some((sealed, mac)) = reseal(&row)? {
            if sealed != row.sealed {
                n += 1;
            }
            sqlx::query("UPDATE signing_keys SET private_key = $2, mac = $3 WHERE kid = $1")
                .bind(&row.record.kid)
                .bind(sealed)
                .bind(mac)
                .execute(&mut *tx)
                .await?;
        }
    }
    audit::append(&mut tx, &record(n)).await?;
    tx.commit().await?;
    Ok(n)
}

/// Bind the rows stored before key rows carried MACs, once: while the ring
/// says it has not been done, every row without a MAC gets the one `bind`
/// gives (`None`: left unbound, and so never trusted), and the ring notes
/// that it is done, so that a row inserted without a MAC later is never
/// bound. Returns the kids bound, or `None` when it was done before.
pub async fn bind_legacy_rows(
    db: &Db,
    now: i64,
    bind: impl Fn(&StoredKey) -> Option<String>,
    record: impl FnOnce(&[String], &[String]) -> Event,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let bound_at = "SELECT rows_bound_at FROM key_ring WHERE id = 1";
    // Once done, nothing to lock for (the usual case at every start).
    let done: Option<i64> = sqlx::query_scalar(bound_at).fetch_one(&db.pool).await?;
    if done.is_some() {
        return Ok(None);
    }
    let mut tx = audit::begin(db).await?;
    lock_ring(&mut tx).await?;
    let done: Option<i64> = sqlx::query_scalar(bound_at).fetch_one(&mut *tx).await?;
    if done.is_some() {
        tx.rollback().await?;
        return Ok(None);
    }
    let (mut bound, mut refused) = (Vec::new(), Vec::new());
    for row in load_in(&mut tx).await?.iter().filter(|r| r.mac.is_none()) {
        match bind(row) {
            Some(mac) => {
                sqlx::query("UPDATE signing_keys SET mac = $2 WHERE kid = $1")
                    .bind(&row.record.kid)
                    .bind(mac)
                    .execute(&mut *tx)
                    .await?;
                bound.push(row.record.kid.clone());
            }
            None => refused.push(row.record.kid.clone()),
        }
    }
    sqlx::query("UPDATE key_ring SET rows_bound_at = $1 WHERE id = 1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if !bound.is_empty() || !refused.is_empty() {
        audit::append(&mut tx, &record(&bound, &refused)).await?;
    }
    tx.commit().await?;
    Ok(Some(bound))
}

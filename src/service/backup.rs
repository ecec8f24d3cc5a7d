//! A copy of the embedded database, recorded.

use std::path::Path;

use crate::domain::audit::{kind, Actor};
use crate::store::{self, Db};

/// Copy the SQLite database to `file` (see [`store::backup_sqlite`]: the
/// sessions are left out) and record the copy. Answers the bytes written.
pub async fn sqlite(db: &Db, file: &Path, by: &Actor, now: i64) -> anyhow::Result<u64> {
    let bytes = store::backup_sqlite(db, file).await?;
    let event = by
        .did(now, kind::DATABASE_BACKED_UP)
        .detail(serde_json::json!({ "file": file.display().to_string(), "bytes": bytes }));
    store::audit::record(db, &[event]).await?;
    Ok(bytes)
}

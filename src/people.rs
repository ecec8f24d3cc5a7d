//! Managing people: disabling and enabling, recorded. No web code here.

use serde_json::json;

use crate::domain::audit::{kind, Actor};
use crate::store::{self, audit, Db};

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("nobody with the e-mail address {0} has signed in")]
    Unknown(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Disable (every session ends at once, launches are refused) or enable
/// again everyone who signed in with `email`. Returns, per person, how
/// many sessions ended.
pub async fn set_disabled(
    db: &Db,
    email: &str,
    disabled: bool,
    by: &Actor,
    now: i64,
) -> Result<Vec<(String, u64)>, PeopleError> {
    let email = email.trim().to_ascii_lowercase();
    let people = store::people::find_by_email(db, &email).await?;
    if people.is_empty() {
        return Err(PeopleError::Unknown(email));
    }
    let mut out = Vec::new();
    for p in people {
        let mut tx = audit::begin(db).await?;
        let Some(ended) = store::people::set_disabled(&mut tx, &p.id, disabled).await? else {
            continue;
        };
        let event = by
            .did(now, kind::PERSON_CHANGED)
            .subject(&p.email)
            .detail(json!({
                "person_id": p.id,
                "before": { "disabled": p.disabled },
                "after": { "disabled": disabled },
                "sessions_ended": ended,
            }));
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        out.push((p.email.clone(), ended));
    }
    Ok(out)
}

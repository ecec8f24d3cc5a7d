//! API tokens: made by an admin in the console or by the server's operator
//! on the command line (never by a token), shown once, revoked by name,
//! and checked on every call: live, its maker still an enabled admin, the
//! scope the call needs.

use serde_json::json;

use crate::domain::api::{self, Refusal, Scope, TermsError, Token};
use crate::domain::audit::{kind, Actor};
use crate::store::{self, audit, Db};

// The keys' bookkeeping has no rule of its own: the store's queries,
// named here so the web edge never reaches the store.
pub use crate::store::api_tokens::{claim, keep, kept, list, release, Kept};

/// The maker recorded for the operator's tokens.
pub const OPERATOR: &str = "command line";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(#[from] TermsError),
    #[error("a token named {0:?} exists already: choose another name")]
    NameTaken(String),
    #[error("there is no live token named {0:?}")]
    Unknown(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Invalid(_) => "invalid",
            TokenError::NameTaken(_) => "name_taken",
            TokenError::Unknown(_) => "unknown_token",
            TokenError::Db(_) => "database",
        }
    }
}

/// Make a token for `maker` (an admin's e-mail, or [`OPERATOR`]),
/// recorded. Returns it and its secret, which is never available again.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    db: &Db,
    name: &str,
    scopes: &[String],
    days: i64,
    maker: &str,
    by: &Actor,
    random: &[u8; 32],
    now: i64,
) -> Result<(Token, String), TokenError> {
    let terms = api::check_terms(name, scopes, days, now)?;
    let new = api::new_token(random);
    let id = uuid::Uuid::new_v4().to_string();
    let scopes_text = api::join_scopes(&terms.scopes);
    let mut tx = audit::begin(db).await?;
    let fresh = store::api_tokens::insert(
        &mut *tx,
        &id,
        &terms.name,
        &new.hash,
        &new.prefix,
        &scopes_text,
        maker,
        now,
        terms.expires_at,
    )
    .await?;
    if !fresh {
        return Err(TokenError::NameTaken(terms.name));
    }
    let event = by.did(now, kind::API_TOKEN_CREATED).detail(json!({
        "token": terms.name,
        "prefix": new.prefix,
        "scopes": scopes_text,
        "expires_at": terms.expires_at,
        "made_by": maker,
    }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    let token = Token {
        id,
        name: terms.name,
        prefix: new.prefix,
        scopes: terms.scopes,
        created_by: maker.to_string(),
        created_at: now,
        expires_at: terms.expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    Ok((token, new.secret))
}

/// Revoke a token by name, recorded: it acts no more from now on.
pub async fn revoke(db: &Db, name: &str, by: &Actor, now: i64) -> Result<Token, TokenError> {
    let mut tx = audit::begin(db).await?;
    let token = store::api_tokens::revoke(&mut *tx, name.trim(), now)
        .await?
        .ok_or_else(|| TokenError::Unknown(name.trim().to_string()))?;
    let event = by.did(now, kind::API_TOKEN_REVOKED).detail(json!({
        "token": token.name,
        "prefix": token.prefix,
        "made_by": token.created_by,
    }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(token)
}

/// Is `maker` still someone whose tokens may act: the operator, or an
/// enabled admin?
async fn maker_may_act(db: &Db, maker: &str) -> Result<bool, sqlx::Error> {
    if maker == OPERATOR {
        return Ok(true);
    }
    Ok(store::people::find_by_email(db, maker)
        .await?
        .iter()
        .any(|p| p.is_admin && !p.disabled))
}

/// The token a call presents, if it may make a call needing `needed` now.
/// Its use is noted (at most once a minute).
pub async fn authenticate(
    db: &Db,
    presented: &str,
    needed: Option<Scope>,
    now: i64,
) -> Result<Result<Token, (Option<Token>, Refusal)>, sqlx::Error> {
    let presented = presented.trim();
    if !presented.starts_with(api::PREFIX) || presented.len() > 200 {
        return Ok(Err((None, Refusal::Unknown)));
    }
    let Some(token) = store::api_tokens::by_hash(db, &api::hash(presented)).await? else {
        return Ok(Err((None, Refusal::Unknown)));
    };
    let maker_ok = maker_may_act(db, &token.created_by).await?;
    if let Err(refusal) = api::judge(&token, maker_ok, needed, now) {
        return Ok(Err((Some(token), refusal)));
    }
    store::api_tokens::touch(db, &token.id, now).await?;
    Ok(Ok(token))
}

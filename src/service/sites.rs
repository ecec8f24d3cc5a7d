//! Managing sites: adding, changing, importing, exporting and removing them.
//! Called by the CLI and the pages alike; no web code here.

use serde_json::json;

use crate::domain::audit::{kind, Actor};
use crate::domain::import;
use crate::domain::secrets::MasterKeys;
use crate::domain::sites::{check_role, normalise_url, FieldError, Site, SiteInput, ValidSite};
use crate::service::launch::secret_aad;
use crate::service::messages;
use crate::store::{self, audit, Db};

// Reads with no rule of their own are the store's queries, named here so
// that the pages, handlers and command line never reach the store.
pub use crate::store::sites::{clients, find, find_by_url, list, search, ListedSite, SiteQuery};

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    #[error("a site with the URL {0} already exists")]
    DuplicateUrl(String),
    #[error("there is no site {0}")]
    UnknownSite(String),
    #[error("{0}")]
    Refused(String),
    #[error("someone else changed this meanwhile: reload to see their change, then try again")]
    Conflict,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<store::sites::SiteStoreError> for ManageError {
    fn from(e: store::sites::SiteStoreError) -> Self {
        match e {
            store::sites::SiteStoreError::DuplicateUrl(u) => ManageError::DuplicateUrl(u),
            store::sites::SiteStoreError::Db(e) => ManageError::Db(e),
        }
    }
}

/// What the audit record shows of a site: everything but the secret,
/// which is only said to be set.
pub fn site_summary(s: &Site) -> serde_json::Value {
    json!({
        "name": s.name,
        "client": s.client,
        "url": s.url,
        "profile": s.profile.as_str(),
        "login_template": s.login_template,
        "username_claim": s.username_claim,
        "signing": s.signing.as_str(),
        "secret": if s.has_secret { "set" } else { "none" },
        "roles": s.roles,
        "token_lifetime": s.token_lifetime,
        "enabled": s.enabled,
        "notes": s.notes,
    })
}

/// Add a site: validate, seal its secret (if any) for it alone, store,
/// record.
pub async fn create_site(
    db: &Db,
    masters: &MasterKeys,
    input: SiteInput,
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    let valid = input.validate().map_err(ManageError::Invalid)?;
    let id = uuid::Uuid::new_v4().to_string();
    let sealed = seal_secret(masters, &valid, &id);
    let mut tx = audit::begin(db).await?;
    let site = store::sites::insert(&mut *tx, &id, &valid, sealed.as_deref(), now).await?;
    let event = by
        .did(now, kind::SITE_CREATED)
        .site(&site.id, &site.url, &site.client)
        .detail(json!({ "after": site_summary(&site) }));
    audit::append(&mut tx, &event).await?;
    refuse_shared_secret(&mut tx, masters, &valid, &id).await?;
    tx.commit().await?;
    Ok(site)
}

/// Every site's secret, opened, with the site's id and URL. miniOrange's
/// free plugin checks no audience: a token made for one site would open
/// every site that shares its secret, so a secret belongs to one site.
/// Secrets are sealed with a fresh nonce each, so they are compared opened
/// (a few hundred AES-GCM opens at most, once per check).
async fn opened_secrets(
    conn: &mut sqlx::AnyConnection,
    masters: &MasterKeys,
) -> Result<Vec<(String, String, zeroize::Zeroizing<Vec<u8>>)>, sqlx::Error> {
    let mut opened = Vec::new();
    for (id, url, sealed) in store::sites::sealed_secrets(conn).await? {
        match masters.open(&sealed, &secret_aad(&id)) {
            Ok(plain) => opened.push((id, url, plain)),
            Err(e) => {
                tracing::warn!(site = %url, error = %e, "cannot open a site's secret to compare it")
            }
        }
    }
    Ok(opened)
}

/// The URL of a site other than `id` among `opened` whose secret is `secret`.
fn secret_used_elsewhere<'a>(
    opened: &'a [(String, String, zeroize::Zeroizing<Vec<u8>>)],
    secret: &str,
    id: &str,
) -> Option<&'a str> {
    use subtle::ConstantTimeEq;
    opened
        .iter()
        .find(|(other, _, plain)| {
            other != id && bool::from(plain.as_slice().ct_eq(secret.as_bytes()))
        })
        .map(|(_, url, _)| url.as_str())
}

fn shared_secret(url: &str) -> FieldError {
    FieldError {
        field: "secret",
        message: format!(
            "{url} already signs with this secret: miniOrange's plugin does not check which \
             site a token is for, so each site needs a secret of its own"
        ),
    }
}

/// Refuse a new secret that another site already has. Called after the
/// change's audit record is appended: the chain's head is then locked, so
/// two admins saving the same secret at once cannot both pass.
async fn refuse_shared_secret(
    conn: &mut sqlx::AnyConnection,
    masters: &MasterKeys,
    site: &ValidSite,
    id: &str,
) -> Result<(), ManageError> {
    let Some(secret) = &site.secret else {
        return Ok(());
    };
    let opened = opened_secrets(conn, masters).await?;
    match secret_used_elsewhere(&opened, secret.expose(), id) {
        Some(url) => Err(ManageError::Invalid(vec![shared_secret(url)])),
        None => Ok(()),
    }
}

/// Mark the import rows whose new secret another site (or an earlier row)
/// already has as invalid, with the reason, before they are counted.
async fn refuse_shared_secrets_in_plan(
    conn: &mut sqlx::AnyConnection,
    masters: &MasterKeys,
    planned: &mut [import::Planned],
) -> Result<(), sqlx::Error> {
    if !planned.iter().any(|p| new_secret(p).is_some()) {
        return Ok(());
    }
    let opened = opened_secrets(conn, masters).await?;
    let mut earlier: Vec<(String, String)> = Vec::new();
    for p in planned.iter_mut() {
        let Some((secret, id)) = new_secret(p) else {
            continue;
        };
        let twin = match earlier.iter().find(|(s, _)| *s == secret) {
            Some((_, url)) => Some(url.clone()),
            None => secret_used_elsewhere(&opened, &secret, &id).map(str::to_string),
        };
        match twin {
            Some(url) => {
                let e = shared_secret(&url);
                p.change = import::Change::Invalid(vec![format!("{}: {}", e.field, e.message)]);
            }
            None => earlier.push((secret, p.url.clone())),
        }
    }
    Ok(())
}

/// The secret an import row would set, with the id of the site it changes
/// (empty for a new site).
fn new_secret(p: &import::Planned) -> Option<(String, String)> {
    let (site, id) = match &p.change {
        import::Change::Create(site, _) => (site, ""),
        import::Change::Update { site, id, .. } => (site, id.as_str()),
        _ => return None,
    };
    site.secret
        .as_ref()
        .map(|s| (s.expose().to_string(), id.to_string()))
}

/// A change to one site's settings.
enum SiteChange {
    Enabled(bool),
    Roles(Vec<String>),
}

/// Apply a change to one site, recorded with the site before and after.
async fn change_site(
    db: &Db,
    site: &str,
    change: SiteChange,
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    let id = find_site(db, site).await?.id;
    let gone = || ManageError::UnknownSite(site.to_string());
    let mut tx = audit::begin(db).await?;
    let before = store::sites::find_in(&mut *tx, &id)
        .await?
        .ok_or_else(gone)?;
    match &change {
        SiteChange::Enabled(on) => store::sites::set_enabled(&mut *tx, &id, *on, now).await?,
        SiteChange::Roles(roles) => store::sites::set_roles(&mut *tx, &id, roles, now).await?,
    };
    let after = store::sites::find_in(&mut *tx, &id)
        .await?
        .ok_or_else(gone)?;
    let event = by
        .did(now, kind::SITE_CHANGED)
        .site(&after.id, &after.url, &after.client)
        .detail(json!({ "before": site_summary(&before), "after": site_summary(&after) }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(after)
}

/// Enable or disable a site (disabled: every launch is refused).
pub async fn set_site_enabled(
    db: &Db,
    site: &str,
    enabled: bool,
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    change_site(db, site, SiteChange::Enabled(enabled), by, now).await
}

/// Replace the roles that may be granted on a site.
pub async fn set_site_roles(
    db: &Db,
    site: &str,
    roles: &[String],
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    let roles = crate::domain::sites::check_roles(roles)
        .map_err(|e| ManageError::Refused(e.to_string()))?;
    change_site(db, site, SiteChange::Roles(roles), by, now).await
}

/// A site named by its id or its URL (as typed: it is normalised first).
pub async fn find_site(db: &Db, id_or_url: &str) -> Result<Site, ManageError> {
    let key = id_or_url.trim();
    if let Some(s) = store::sites::find(db, key).await? {
        return Ok(s);
    }
    let url = normalise_url(key).map_err(|_| ManageError::UnknownSite(key.to_string()))?;
    store::sites::find_by_url(db, &url)
        .await?
        .ok_or(ManageError::UnknownSite(url))
}

/// An e-mail address as grants key it: trimmed, lower-cased, in an allowed domain.
pub fn check_email(raw: &str, allowed_domains: &[String]) -> Result<String, ManageError> {
    let email = raw.trim().to_ascii_lowercase();
    let domain = match email.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !email.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            domain
        }
        _ => {
            return Err(ManageError::Refused(format!(
                "{:?} is not an e-mail address",
                raw.trim()
            )))
        }
    };
    if !allowed_domains.is_empty() && !allowed_domains.iter().any(|d| d == domain) {
        return Err(ManageError::Refused(format!(
            "{email} is not in a domain allowed to sign in here ({})",
            allowed_domains.join(", ")
        )));
    }
    Ok(email)
}

/// A site's HS256 secret sealed for that site alone (its id is in the seal).
fn seal_secret(masters: &MasterKeys, site: &ValidSite, id: &str) -> Option<String> {
    site.secret.as_ref().map(|s| {
        masters.seal(
            s.expose().as_bytes(),
            &secret_aad(id),
            &mut rand::rngs::OsRng,
        )
    })
}

/// A role as typed, if the site allows it.
pub fn allowed_role(site: &Site, role: &str) -> Result<String, ManageError> {
    let role = check_role(role).map_err(|e| ManageError::Refused(e.to_string()))?;
    if !site.roles.contains(&role) {
        return Err(ManageError::Refused(format!(
            "the role {role} may not be granted on {}: it allows {}",
            site.url,
            site.roles.join(", ")
        )));
    }
    Ok(role)
}

/// Change every setting of a site from the edit form. `version` is the one
/// the form was filled from: a change made meanwhile by someone else is not
/// overwritten. An HS256 site's secret is kept unless a new one is given.
#[allow(clippy::too_many_arguments)]
pub async fn update_site(
    db: &Db,
    masters: &MasterKeys,
    id: &str,
    version: i64,
    input: SiteInput,
    enabled: bool,
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    let gone = || ManageError::UnknownSite(id.to_string());
    let mut tx = audit::begin(db).await?;
    let before = store::sites::find_in(&mut *tx, id)
        .await?
        .ok_or_else(gone)?;
    let site = input
        .validate_keeping(before.has_secret)
        .map_err(ManageError::Invalid)?;
    if before.version != version {
        return Err(ManageError::Conflict);
    }
    let sealed = seal_secret(masters, &site, id);
    if !store::sites::update(
        &mut *tx,
        id,
        version,
        &site,
        sealed.as_deref(),
        enabled,
        now,
    )
    .await?
    {
        return Err(ManageError::Conflict);
    }
    let after = store::sites::find_in(&mut *tx, id)
        .await?
        .ok_or_else(gone)?;
    let followed = messages::follow_site(&mut tx, &before, Some(&after), by, now).await?;
    let mut detail = json!({ "before": site_summary(&before), "after": site_summary(&after) });
    if site.secret.is_some() {
        detail["secret_replaced"] = json!(true);
    }
    note_messages(&mut detail, followed);
    let event = by
        .did(now, kind::SITE_CHANGED)
        .site(&after.id, &after.url, &after.client)
        .detail(detail);
    audit::append(&mut tx, &event).await?;
    refuse_shared_secret(&mut tx, masters, &site, id).await?;
    tx.commit().await?;
    Ok(after)
}

/// What a site's change did to its waiting messages, in its record.
fn note_messages(detail: &mut serde_json::Value, followed: messages::Followed) {
    if followed.retargeted > 0 {
        detail["messages_retargeted"] = json!(followed.retargeted);
    }
    if followed.cancelled > 0 {
        detail["messages_cancelled"] = json!(followed.cancelled);
    }
}

/// Delete a site: only when the admin typed its URL to confirm. Its grants
/// go with it; the audit log keeps its history.
pub async fn delete_site(
    db: &Db,
    id: &str,
    typed_confirmation: &str,
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    let mut tx = audit::begin(db).await?;
    let site = store::sites::find_in(&mut *tx, id)
        .await?
        .ok_or_else(|| ManageError::UnknownSite(id.to_string()))?;
    if typed_confirmation.trim() != site.url {
        return Err(ManageError::Invalid(vec![FieldError {
            field: "confirm",
            message: format!("type the site's URL, {}, to confirm", site.url),
        }]));
    }
    let grants = store::grants::count_on_site(&mut tx, id).await?;
    store::sites::delete(&mut *tx, id).await?;
    let followed = messages::follow_site(&mut tx, &site, None, by, now).await?;
    let mut detail = json!({ "before": site_summary(&site), "grants_removed": grants });
    note_messages(&mut detail, followed);
    let event = by
        .did(now, kind::SITE_DELETED)
        .site(&site.id, &site.url, &site.client)
        .detail(detail);
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(site)
}

/// A CSV import, planned against the sites as they are now.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub rows: Vec<import::Planned>,
    pub tally: import::Tally,
    pub digest: String,
}

/// Read and plan an import without writing anything (the dry run).
pub async fn preview_import(
    db: &Db,
    masters: &MasterKeys,
    csv_text: &str,
) -> Result<ImportPlan, ManageError> {
    let rows = import::parse(csv_text).map_err(|e| ManageError::Refused(e.to_string()))?;
    let mut conn = db.pool.acquire().await?;
    let existing = store::sites::all_by_url(&mut conn).await?;
    let mut planned = import::plan(&rows, &existing);
    refuse_shared_secrets_in_plan(&mut conn, masters, &mut planned).await?;
    Ok(ImportPlan {
        tally: import::tally(&planned),
        digest: import::digest(&planned, masters),
        rows: planned,
    })
}

/// Apply an import in one transaction: every valid row, recorded, or
/// nothing. The plan is made again inside the transaction and must be the
/// one previewed (`digest`); invalid rows are skipped and listed in the record.
pub async fn apply_import(
    db: &Db,
    masters: &MasterKeys,
    csv_text: &str,
    digest: &str,
    by: &Actor,
    now: i64,
) -> Result<import::Tally, ManageError> {
    let rows = import::parse(csv_text).map_err(|e| ManageError::Refused(e.to_string()))?;
    let mut tx = audit::begin(db).await?;
    // Inside the transaction (the tests that kill an import wait for it).
    tracing::debug!(rows = rows.len(), "applying an import");
    let existing = store::sites::all_by_url(&mut tx).await?;
    let mut planned = import::plan(&rows, &existing);
    refuse_shared_secrets_in_plan(&mut tx, masters, &mut planned).await?;
    if import::digest(&planned, masters) != digest {
        return Err(ManageError::Refused(
            "the sites changed since this preview: preview the file again".into(),
        ));
    }
    let tally = import::tally(&planned);
    let mut skipped = Vec::new();
    for p in &planned {
        match &p.change {
            import::Change::Create(site, enabled) => {
                let id = uuid::Uuid::new_v4().to_string();
                let sealed = seal_secret(masters, site, &id);
                let mut created =
                    store::sites::insert(&mut *tx, &id, site, sealed.as_deref(), now).await?;
                if !enabled {
                    store::sites::set_enabled(&mut *tx, &id, false, now).await?;
                    created.enabled = false;
                }
                let event = by
                    .did(now, kind::SITE_CREATED)
                    .site(&created.id, &created.url, &created.client)
                    .detail(json!({ "after": site_summary(&created), "import_line": p.line }));
                audit::append(&mut tx, &event).await?;
            }
            import::Change::Update {
                id,
                version,
                site,
                enabled,
                fields,
            } => {
                let before = &existing[&p.url];
                let sealed = seal_secret(masters, site, id);
                if !store::sites::update(
                    &mut *tx,
                    id,
                    *version,
                    site,
                    sealed.as_deref(),
                    *enabled,
                    now,
                )
                .await?
                {
                    return Err(ManageError::Conflict);
                }
                let after = store::sites::find_in(&mut *tx, id)
                    .await?
                    .ok_or_else(|| ManageError::UnknownSite(id.clone()))?;
                let followed =
                    messages::follow_site(&mut tx, before, Some(&after), by, now).await?;
                let mut detail = json!({
                    "before": site_summary(before),
                    "after": site_summary(&after),
                    "fields": fields,
                    "import_line": p.line,
                });
                note_messages(&mut detail, followed);
                let event = by
                    .did(now, kind::SITE_CHANGED)
                    .site(&after.id, &after.url, &after.client)
                    .detail(detail);
                audit::append(&mut tx, &event).await?;
            }
            import::Change::Unchanged => {}
            import::Change::Invalid(errors) => {
                skipped.push(json!({ "line": p.line, "url": p.url, "errors": errors }))
            }
        }
    }
    let event = by.did(now, kind::SITES_IMPORTED).detail(json!({
        "created": tally.create,
        "updated": tally.update,
        "unchanged": tally.unchanged,
        "skipped": skipped,
        "digest": digest,
    }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(tally)
}

/// Every site matching the filters as CSV (header first), secrets left out.
pub async fn export_sites(db: &Db, q: &store::sites::SiteQuery) -> Result<String, sqlx::Error> {
    let mut out = import::COLUMNS.join(",");
    out.push('\n');
    let mut offset = 0;
    loop {
        let (page, total) = store::sites::search(db, q, offset, 500).await?;
        for s in &page {
            out.push_str(&import::export_row(&s.site));
            out.push('\n');
        }
        offset += page.len() as i64;
        if page.is_empty() || offset >= total {
            return Ok(out);
        }
    }
}

/// One page of the sites list: the sites matching `q` from `offset`, how
/// many match in all, and every client (for the filter).
pub struct SitesPage {
    pub rows: Vec<ListedSite>,
    pub total: i64,
    pub clients: Vec<String>,
}

pub async fn sites_page(
    db: &Db,
    q: &SiteQuery,
    offset: i64,
    limit: i64,
) -> Result<SitesPage, sqlx::Error> {
    let (rows, total) = search(db, q, offset, limit).await?;
    Ok(SitesPage {
        rows,
        total,
        clients: clients(db).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_keyed_by_lower_case_email_in_allowed_domains() {
        let allowed = vec!["agency.test".to_string()];
        assert_eq!(
            check_email(" Sam@Agency.Test ", &allowed).unwrap(),
            "sam@agency.test"
        );
        assert!(check_email("sam@elsewhere.test", &allowed).is_err());
        assert!(check_email("not-an-email", &allowed).is_err());
        assert!(check_email("a b@agency.test", &allowed).is_err());
    }
}

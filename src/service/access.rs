//! Who may enter which site with which role: grants given and taken away
//! (one at a time or in bulk), and the sites a person may enter now.

use serde_json::json;

use super::messages::RoleWatch;
use super::sites::{allowed_role, check_email, find_site, ManageError};
use crate::domain::access::{self, GrantTerms, SiteStanding};
use crate::domain::audit::{kind, Actor};
use crate::domain::grant_import;
use crate::domain::sites::{check_role, Site};
use crate::store::{self, audit, Db};

// Reads with no rule of their own are the store's queries, named here so
// that the pages, handlers and command line never reach the store.
pub use crate::store::grants::{
    granted_sites, list, site_access, GrantListing, GrantedSite, SiteAccess,
};

/// Give a person a lasting role on a site (replacing the role they had there).
pub async fn grant(
    db: &Db,
    allowed_domains: &[String],
    email: &str,
    site: &str,
    role: &str,
    by: &Actor,
    now: i64,
) -> Result<(String, Site), ManageError> {
    let lasting = GrantTerms {
        expires_at: None,
        reason: String::new(),
    };
    grant_with(db, allowed_domains, email, site, role, &lasting, by, now).await
}

/// Give a person a role on a site on these terms (a time-limited grant
/// ends by itself), replacing the grant they had there.
#[allow(clippy::too_many_arguments)]
pub async fn grant_with(
    db: &Db,
    allowed_domains: &[String],
    email: &str,
    site: &str,
    role: &str,
    terms: &GrantTerms,
    by: &Actor,
    now: i64,
) -> Result<(String, Site), ManageError> {
    let email = check_email(email, allowed_domains)?;
    let site = find_site(db, site).await?;
    let role = allowed_role(&site, role)?;
    let mut tx = audit::begin(db).await?;
    let watch = RoleWatch::start(&mut tx, &[(email.clone(), site.id.clone())], now).await?;
    set_grant(&mut tx, &email, &site, &role, terms, by, now, false).await?;
    watch.send_changes(&mut tx, "grant_set", by, now).await?;
    tx.commit().await?;
    Ok((role, site))
}

/// Give a person a role on a site on these terms that makes them eligible
/// for a higher one (`eligible`: the role and the most minutes at a time;
/// `None` takes the eligibility away), in one transaction, one record for
/// the grant and one for a change of eligibility.
#[allow(clippy::too_many_arguments)]
pub async fn grant_eligible(
    db: &Db,
    allowed_domains: &[String],
    email: &str,
    site: &str,
    role: &str,
    terms: &GrantTerms,
    eligible: Option<(&str, i64)>,
    by: &Actor,
    now: i64,
) -> Result<(String, Site), super::elevation::ElevationError> {
    let email = check_email(email, allowed_domains)?;
    let site = find_site(db, site).await?;
    let role = allowed_role(&site, role)?;
    let mut tx = audit::begin(db).await?;
    let watch = RoleWatch::start(&mut tx, &[(email.clone(), site.id.clone())], now).await?;
    let id = set_grant(&mut tx, &email, &site, &role, terms, by, now, false).await?;
    super::elevation::set_grant_eligibility_in(
        &mut tx, &email, &site, &id, &role, eligible, by, now,
    )
    .await?;
    watch.send_changes(&mut tx, "grant_set", by, now).await?;
    tx.commit().await?;
    Ok((role, site))
}

/// Set one direct grant and record it, inside the caller's transaction.
/// An eligibility it had for a role no longer above the new one is taken
/// away, and what rested on it ends. Returns the grant's id.
#[allow(clippy::too_many_arguments)]
async fn set_grant(
    tx: &mut audit::Tx,
    email: &str,
    site: &Site,
    role: &str,
    terms: &GrantTerms,
    by: &Actor,
    now: i64,
    bulk: bool,
) -> Result<String, sqlx::Error> {
    let limited = terms.expires_at.is_some();
    let before = store::grants::get(&mut **tx, email, &site.id, limited).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let id = store::grants::put(
        &mut **tx,
        &id,
        email,
        &site.id,
        role,
        terms.expires_at,
        &terms.reason,
        &by.who,
        now,
    )
    .await?;
    let mut detail = json!({
        "before": before.map(|(role, expires_at)| json!({ "role": role, "expires_at": expires_at })),
        "after": { "role": role, "expires_at": terms.expires_at },
    });
    if bulk {
        detail["bulk"] = json!(true);
    }
    let mut event = by
        .did(now, kind::GRANT_SET)
        .subject(email)
        .site(&site.id, &site.url, &site.client)
        .role(role)
        .detail(detail);
    if !terms.reason.is_empty() {
        event = event.reason(&terms.reason);
    }
    audit::append(tx, &event).await?;
    let rank = |r: &str| site.roles.iter().position(|x| x == r);
    if let Some(eligible) = store::elevations::eligible_role_of(tx, &id).await? {
        if rank(&eligible) >= rank(role) {
            store::elevations::set_grant_eligibility(tx, &id, None).await?;
        }
    }
    super::elevation::sweep(tx, Some(email), by, now).await?;
    Ok(id)
}

/// Take a person's grant on a site away.
pub async fn revoke(
    db: &Db,
    email: &str,
    site: &str,
    by: &Actor,
    now: i64,
) -> Result<Site, ManageError> {
    let email = email.trim().to_ascii_lowercase();
    let site = find_site(db, site).await?;
    let mut tx = audit::begin(db).await?;
    let watch = RoleWatch::start(&mut tx, &[(email.clone(), site.id.clone())], now).await?;
    let before = store::grants::direct(&mut *tx, &email, &site.id).await?;
    if before.is_empty() {
        return Err(ManageError::Refused(format!(
            "{email} has no grant on {}",
            site.url
        )));
    }
    store::grants::revoke(&mut *tx, &email, &site.id).await?;
    super::elevation::sweep(&mut tx, Some(&email), by, now).await?;
    for (role, expires_at) in before {
        let event = by
            .did(now, kind::GRANT_REVOKED)
            .subject(&email)
            .site(&site.id, &site.url, &site.client)
            .role(&role)
            .detail(json!({ "before": { "role": role, "expires_at": expires_at }, "after": null }));
        audit::append(&mut tx, &event).await?;
    }
    watch
        .send_changes(&mut tx, "grant_revoked", by, now)
        .await?;
    tx.commit().await?;
    Ok(site)
}

/// A site on a person's home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeSite {
    pub id: String,
    pub name: String,
    pub client: String,
    pub url: String,
    pub role: String,
    pub favourite: bool,
    pub last_launched_at: Option<i64>,
    /// Among the most recently used (lifted to just after the favourites).
    pub recent: bool,
}

/// How many recently used sites are lifted to the top.
pub const RECENT: usize = 8;

/// Exactly the sites a person may enter now, with their role on each:
/// favourites first, then the most recently used, then by client and name.
pub async fn home_sites(db: &Db, email: &str, now: i64) -> Result<Vec<HomeSite>, sqlx::Error> {
    let granted = store::grants::granted_sites(db, email).await?;
    let sites = granted
        .into_iter()
        .filter_map(|g| {
            let standing = SiteStanding {
                enabled: g.enabled,
                allowed_roles: &g.roles,
            };
            let entry = access::decide(true, standing, &g.grants, now).ok()?;
            Some(HomeSite {
                id: g.site_id,
                name: g.name,
                client: g.client,
                url: g.url,
                role: entry.role,
                favourite: g.favourite,
                last_launched_at: g.last_launched_at,
                recent: false,
            })
        })
        .collect();
    Ok(home_order(sites))
}

fn home_order(mut sites: Vec<HomeSite>) -> Vec<HomeSite> {
    let mut recent: Vec<(i64, &str)> = sites
        .iter()
        .filter(|s| !s.favourite)
        .filter_map(|s| s.last_launched_at.map(|t| (t, s.id.as_str())))
        .collect();
    recent.sort_by(|a, b| b.cmp(a));
    let recent: Vec<String> = recent
        .iter()
        .take(RECENT)
        .map(|(_, id)| id.to_string())
        .collect();
    for s in &mut sites {
        s.recent = recent.contains(&s.id);
    }
    let rank = |s: &HomeSite| -> (u8, i64) {
        if s.favourite {
            (0, 0)
        } else if s.recent {
            (1, -s.last_launched_at.unwrap_or(0))
        } else {
            (2, 0)
        }
    };
    sites.sort_by_cached_key(|s| {
        let (group, when) = rank(s);
        (
            group,
            when,
            s.client.to_lowercase(),
            s.name.to_lowercase(),
            s.url.clone(),
        )
    });
    sites
}

/// Pin or unpin a site for a person; only a site they may enter.
pub async fn set_favourite(
    db: &Db,
    email: &str,
    site_id: &str,
    on: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let Some(site) = store::sites::find(db, site_id).await? else {
        return Ok(false);
    };
    let grants = store::grants::applying(&db.pool, email, site_id).await?;
    let standing = SiteStanding {
        enabled: site.enabled,
        allowed_roles: &site.roles,
    };
    if access::decide(true, standing, &grants, now).is_err() {
        return Ok(false);
    }
    store::grants::set_favourite(db, email, site_id, on).await?;
    Ok(true)
}

/// Grant several people a role on several sites at once, on the same terms:
/// all of it in one transaction, or nothing (every site must allow the
/// role). Returns how many grants were set.
#[allow(clippy::too_many_arguments)]
pub async fn bulk_grant(
    db: &Db,
    allowed_domains: &[String],
    emails: &[String],
    site_ids: &[String],
    role: &str,
    terms: &GrantTerms,
    by: &Actor,
    now: i64,
) -> Result<usize, ManageError> {
    let emails = emails
        .iter()
        .map(|e| check_email(e, allowed_domains))
        .collect::<Result<Vec<_>, _>>()?;
    let role = check_role(role).map_err(|e| ManageError::Refused(e.to_string()))?;
    if emails.is_empty() || site_ids.is_empty() {
        return Err(ManageError::Refused(
            "choose at least one site and one person".into(),
        ));
    }
    let mut tx = audit::begin(db).await?;
    let mut sites = Vec::with_capacity(site_ids.len());
    for id in site_ids {
        let site = store::sites::find_in(&mut *tx, id)
            .await?
            .ok_or_else(|| ManageError::UnknownSite(id.clone()))?;
        sites.push(site);
    }
    let refusing: Vec<&str> = sites
        .iter()
        .filter(|s| !s.roles.contains(&role))
        .map(|s| s.name.as_str())
        .collect();
    if !refusing.is_empty() {
        return Err(ManageError::Refused(format!(
            "the role {role} may not be granted on {}: nothing was granted",
            refusing.join(", ")
        )));
    }
    let pairs: Vec<(String, String)> = sites
        .iter()
        .flat_map(|s| emails.iter().map(|e| (e.clone(), s.id.clone())))
        .collect();
    let watch = RoleWatch::start(&mut tx, &pairs, now).await?;
    let mut n = 0;
    for site in &sites {
        for email in &emails {
            set_grant(&mut tx, email, site, &role, terms, by, now, true).await?;
            n += 1;
        }
    }
    watch.send_changes(&mut tx, "grant_set", by, now).await?;
    tx.commit().await?;
    Ok(n)
}

/// Take several people's direct grants on several sites away at once, in
/// one transaction. Returns how many grants were removed.
pub async fn bulk_revoke(
    db: &Db,
    emails: &[String],
    site_ids: &[String],
    by: &Actor,
    now: i64,
) -> Result<usize, ManageError> {
    let mut tx = audit::begin(db).await?;
    let emails: Vec<String> = emails
        .iter()
        .map(|e| e.trim().to_ascii_lowercase())
        .collect();
    let pairs: Vec<(String, String)> = site_ids
        .iter()
        .flat_map(|s| emails.iter().map(|e| (e.clone(), s.clone())))
        .collect();
    let watch = RoleWatch::start(&mut tx, &pairs, now).await?;
    let mut n = 0;
    for id in site_ids {
        let site = store::sites::find_in(&mut *tx, id)
            .await?
            .ok_or_else(|| ManageError::UnknownSite(id.clone()))?;
        for email in &emails {
            let before = store::grants::direct(&mut *tx, email, &site.id).await?;
            store::grants::revoke(&mut *tx, email, &site.id).await?;
            for (role, expires_at) in before {
                let event = by
                    .did(now, kind::GRANT_REVOKED)
                    .subject(email)
                    .site(&site.id, &site.url, &site.client)
                    .role(&role)
                    .detail(json!({
                        "before": { "role": role, "expires_at": expires_at },
                        "after": null,
                        "bulk": true,
                    }));
                audit::append(&mut tx, &event).await?;
                n += 1;
            }
        }
    }
    for email in &emails {
        super::elevation::sweep(&mut tx, Some(email), by, now).await?;
    }
    watch
        .send_changes(&mut tx, "grant_revoked", by, now)
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// One grant on a site, and whether it is the one that decides its
/// person's role there now.
pub struct SiteAccessEntry {
    pub grant: SiteAccess,
    pub effective: bool,
}

/// A site and everyone with a grant on it (direct and through teams, by
/// e-mail), each grant marked when it is the one that counts at `now`.
/// `None` when there is no such site.
pub async fn site_with_access(
    db: &Db,
    site_id: &str,
    now: i64,
) -> Result<Option<(Site, Vec<SiteAccessEntry>)>, sqlx::Error> {
    use crate::domain::access::{Grant, GrantSource};
    let Some(site) = super::sites::find(db, site_id).await? else {
        return Ok(None);
    };
    let rows = site_access(db, &site.id).await?;
    let standing = SiteStanding {
        enabled: true,
        allowed_roles: &site.roles,
    };
    let mut entries = Vec::with_capacity(rows.len());
    for group in rows.chunk_by(|x, y| x.email == y.email) {
        let grants: Vec<Grant> = group
            .iter()
            .map(|r| Grant {
                id: r.grant_id.clone(),
                role: r.role.clone(),
                expires_at: r.expires_at,
                source: if r.team.is_empty() {
                    GrantSource::Direct
                } else {
                    GrantSource::Team(r.team.clone())
                },
            })
            .collect();
        let winner = access::decide(true, standing, &grants, now)
            .ok()
            .map(|e| e.grant_id);
        for r in group {
            entries.push(SiteAccessEntry {
                effective: winner.as_deref() == Some(r.grant_id.as_str()),
                grant: r.clone(),
            });
        }
    }
    Ok(Some((site, entries)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, client: &str, fav: bool, last: Option<i64>) -> HomeSite {
        HomeSite {
            id: id.into(),
            name: format!("Site {id}"),
            client: client.into(),
            url: format!("https://{id}.example"),
            role: "editor".into(),
            favourite: fav,
            last_launched_at: last,
            recent: false,
        }
    }

    #[test]
    fn favourites_then_recent_then_by_client() {
        let ordered = home_order(vec![
            s("a", "Zeta", false, None),
            s("b", "Alpha", false, None),
            s("c", "Mid", false, Some(10)),
            s("d", "Mid", true, None),
            s("e", "Mid", false, Some(20)),
        ]);
        let ids: Vec<&str> = ordered.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["d", "e", "c", "b", "a"]);
        let recent: Vec<&str> = ordered
            .iter()
            .filter(|s| s.recent)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(recent, ["e", "c"]);
    }
}

/// A grants CSV import, planned against the sites and grants as they are.
#[derive(Debug, Clone)]
pub struct GrantImportPlan {
    pub rows: Vec<grant_import::Planned>,
    pub tally: crate::domain::import::Tally,
    pub digest: String,
}

async fn plan_grant_import(
    conn: &mut sqlx::AnyConnection,
    allowed_domains: &[String],
    csv_text: &str,
    now: i64,
) -> Result<GrantImportPlan, ManageError> {
    let rows = grant_import::parse(csv_text).map_err(|e| ManageError::Refused(e.to_string()))?;
    let sites = store::sites::all_by_url(&mut *conn).await?;
    let current = store::grants::list_in(&mut *conn, None, None)
        .await?
        .into_iter()
        .map(|g| {
            let key = (g.email, g.site_id, g.expires_at.is_some());
            let eligible = g.eligible_role.zip(g.eligible_minutes);
            let current = grant_import::Current {
                id: g.id,
                role: g.role,
                expires_at: g.expires_at,
                reason: g.reason,
                eligible,
            };
            (key, current)
        })
        .collect();
    let planned = grant_import::plan(
        &rows,
        &sites,
        &current,
        |e| check_email(e, allowed_domains).map_err(|e| e.to_string()),
        now,
    );
    Ok(GrantImportPlan {
        tally: grant_import::tally(&planned),
        digest: grant_import::digest(&planned),
        rows: planned,
    })
}

/// Read and plan a grants import without writing anything (the dry run).
pub async fn preview_grant_import(
    db: &Db,
    allowed_domains: &[String],
    csv_text: &str,
    now: i64,
) -> Result<GrantImportPlan, ManageError> {
    let mut conn = db.pool.acquire().await?;
    plan_grant_import(&mut conn, allowed_domains, csv_text, now).await
}

/// Apply a grants import in one transaction: every valid row, recorded
/// (one record per grant and per change of eligibility, and one for the
/// import), or nothing. The plan is made again inside the transaction and
/// must be the one previewed (`digest`); invalid rows are skipped and listed
/// in the import's record. Grants the file does not name are left alone.
pub async fn apply_grant_import(
    db: &Db,
    allowed_domains: &[String],
    csv_text: &str,
    digest: &str,
    by: &Actor,
    now: i64,
) -> Result<crate::domain::import::Tally, ManageError> {
    let mut tx = audit::begin(db).await?;
    let plan = plan_grant_import(&mut tx, allowed_domains, csv_text, now).await?;
    if plan.digest != digest {
        return Err(ManageError::Refused(
            "the grants or sites changed since this preview: preview the file again".into(),
        ));
    }
    let sites: std::collections::HashMap<String, Site> = store::sites::all_by_url(&mut tx)
        .await?
        .into_values()
        .map(|s| (s.id.clone(), s))
        .collect();
    let pairs: Vec<(String, String)> = plan
        .rows
        .iter()
        .filter_map(|p| match &p.change {
            grant_import::Change::Create(w) | grant_import::Change::Update { after: w, .. } => {
                Some((w.email.clone(), w.site_id.clone()))
            }
            _ => None,
        })
        .collect();
    let watch = RoleWatch::start(&mut tx, &pairs, now).await?;
    let mut skipped = Vec::new();
    for p in &plan.rows {
        let (wanted, grant_id) = match &p.change {
            grant_import::Change::Create(w) => (w, None),
            grant_import::Change::Update {
                before,
                after,
                fields,
            } => (
                after,
                (!fields.contains(&"grant")).then(|| before.id.clone()),
            ),
            grant_import::Change::Unchanged => continue,
            grant_import::Change::Invalid(errors) => {
                skipped.push(json!({ "line": p.line, "email": p.email, "site": p.site_url, "errors": errors }));
                continue;
            }
        };
        let site = &sites[&wanted.site_id];
        let id = match grant_id {
            Some(id) => id,
            None => {
                let terms = GrantTerms {
                    expires_at: wanted.expires_at,
                    reason: wanted.reason.clone(),
                };
                set_grant(
                    &mut tx,
                    &wanted.email,
                    site,
                    &wanted.role,
                    &terms,
                    by,
                    now,
                    true,
                )
                .await?
            }
        };
        super::elevation::set_grant_eligibility_in(
            &mut tx,
            &wanted.email,
            site,
            &id,
            &wanted.role,
            wanted.eligible.as_ref().map(|(r, m)| (r.as_str(), *m)),
            by,
            now,
        )
        .await
        .map_err(|e| match e {
            super::elevation::ElevationError::Db(e) => ManageError::Db(e),
            e => ManageError::Refused(format!("line {}: {e}", p.line)),
        })?;
    }
    watch.send_changes(&mut tx, "grant_set", by, now).await?;
    let t = plan.tally;
    let event = by.did(now, kind::GRANTS_IMPORTED).detail(json!({
        "created": t.create,
        "updated": t.update,
        "unchanged": t.unchanged,
        "skipped": skipped,
        "digest": digest,
    }));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(t)
}

/// Every direct grant (a person's own, not a team's), or one site's, as
/// the grants CSV (header first): an export imports back unchanged.
pub async fn export_grants(db: &Db, site: Option<&str>) -> Result<String, ManageError> {
    let site_id = match site {
        Some(s) => Some(find_site(db, s).await?.id),
        None => None,
    };
    let mut out = grant_import::COLUMNS.join(",");
    out.push('\n');
    for g in list(db, None, site_id.as_deref()).await? {
        let cells = grant_import::export_cells(
            &g.email,
            &g.site_url,
            &g.role,
            g.expires_at,
            &g.reason,
            g.eligible_role.as_deref().zip(g.eligible_minutes),
        );
        let line: Vec<String> = cells
            .iter()
            .map(|c| crate::domain::audit::csv_cell(c))
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok(out)
}

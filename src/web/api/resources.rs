//! The API's resources: what each route takes and gives (the types its
//! OpenAPI schemas are made from) and the thin handlers that call the
//! services. The table [`endpoints`] is the API.

use std::future::Future;
use std::pin::Pin;

use axum::http::{Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Answer, Call, Endpoint, Problem};
use crate::domain::access::GrantTerms;
use crate::domain::api::Scope;
use crate::service::sites::ManageError;

/// Most rows one page of a list holds.
const MAX_PAGE: i64 = 500;
const DEFAULT_PAGE: i64 = 100;

fn schema<T: JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let mut v = serde_json::to_value(settings.into_generator().into_root_schema_for::<T>())
        .unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
    }
    v
}

fn boxed<F: Future<Output = Answer> + Send + 'static>(
    f: F,
) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    Box::pin(f)
}

fn ok<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    Ok((status, serde_json::to_value(value).unwrap_or(Value::Null)))
}

/// A service's refusal as a problem, with the console's codes.
fn manage(e: ManageError) -> Problem {
    match e {
        ManageError::Invalid(errors) => Problem {
            status: 422,
            code: "invalid".into(),
            detail: "some fields need attention".into(),
            errors: errors
                .into_iter()
                .map(|e| (e.field.to_string(), e.message))
                .collect(),
        },
        ManageError::DuplicateUrl(url) => Problem::new(
            409,
            "duplicate_url",
            format!("a site with the URL {url} already exists"),
        ),
        ManageError::UnknownSite(s) => {
            Problem::new(404, "unknown_site", format!("there is no site {s}"))
        }
        ManageError::Refused(m) => Problem::new(409, "refused", m),
        ManageError::Conflict => Problem::new(
            409,
            "conflict",
            "the site changed meanwhile (its version is not the one given): read it again",
        ),
        ManageError::Db(e) => Problem::unavailable(&e),
    }
}

/// Paging by an opaque cursor (the next page's offset).
fn page_of(call: &Call) -> Result<(i64, i64), Problem> {
    let limit = match call.query("limit") {
        "" => DEFAULT_PAGE,
        v => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Problem::new(422, "invalid", format!("limit: from 1 to {MAX_PAGE}")))?,
    };
    let offset = match call.query("cursor") {
        "" => 0,
        v => decode_cursor(v).ok_or_else(|| {
            Problem::new(422, "invalid", "cursor: pass back next_cursor as it came")
        })?,
    };
    Ok((offset, limit))
}

fn encode_cursor(offset: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode_cursor(c: &str) -> Option<i64> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
        .filter(|n: &i64| *n >= 0)
}

fn next_cursor(offset: i64, shown: usize, total: i64) -> Option<String> {
    let next = offset + shown as i64;
    (shown > 0 && next < total).then(|| encode_cursor(next))
}

// ----- sites -----

/// A client site.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiSite {
    pub id: String,
    pub name: String,
    pub client: String,
    /// The site's address: exactly the `aud` of its tokens.
    pub url: String,
    /// `twl-sso`, `connector` or `miniorange`.
    pub profile: String,
    pub login_template: String,
    pub username_claim: String,
    /// `RS256` or `HS256`.
    pub signing: String,
    /// An HS256 site's secret is set (it is never shown).
    pub has_secret: bool,
    /// Roles that may be granted, highest first.
    pub roles: Vec<String>,
    pub token_lifetime: i64,
    pub enabled: bool,
    pub notes: String,
    /// Bumped by every change; give it back in a PATCH to refuse a lost update.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<crate::domain::sites::Site> for ApiSite {
    fn from(s: crate::domain::sites::Site) -> ApiSite {
        ApiSite {
            profile: s.profile.as_str().into(),
            signing: s.signing.as_str().into(),
            id: s.id,
            name: s.name,
            client: s.client,
            url: s.url,
            login_template: s.login_template,
            username_claim: s.username_claim,
            has_secret: s.has_secret,
            roles: s.roles,
            token_lifetime: s.token_lifetime,
            enabled: s.enabled,
            notes: s.notes,
            version: s.version,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A page of sites.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SitePage {
    pub items: Vec<ApiSite>,
    pub total: i64,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A site's settings to add it (`name`, `client` and `url` required) or
/// to change it (what is left out stays as it is).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteWrite {
    pub name: Option<String>,
    pub client: Option<String>,
    pub url: Option<String>,
    pub profile: Option<String>,
    pub login_template: Option<String>,
    pub username_claim: Option<String>,
    pub signing: Option<String>,
    /// HS256 only; write-only.
    pub secret: Option<String>,
    pub roles: Option<Vec<String>>,
    pub token_lifetime: Option<i64>,
    pub notes: Option<String>,
    pub enabled: Option<bool>,
    /// PATCH: the version read; refused with `conflict` if it changed.
    pub version: Option<i64>,
}

impl SiteWrite {
    fn input(self, base: Option<&crate::domain::sites::Site>) -> crate::domain::sites::SiteInput {
        let keep = |v: Option<String>, f: fn(&crate::domain::sites::Site) -> String| {
            v.or_else(|| base.map(f)).unwrap_or_default()
        };
        crate::domain::sites::SiteInput {
            name: keep(self.name, |s| s.name.clone()),
            client: keep(self.client, |s| s.client.clone()),
            url: keep(self.url, |s| s.url.clone()),
            profile: keep(self.profile, |s| s.profile.as_str().into()),
            login_template: keep(self.login_template, |s| s.login_template.clone()),
            username_claim: keep(self.username_claim, |s| s.username_claim.clone()),
            signing: keep(self.signing, |s| s.signing.as_str().into()),
            secret: self.secret.map(crate::domain::secrets::Secret::new),
            roles: self
                .roles
                .or_else(|| base.map(|s| s.roles.clone()))
                .unwrap_or_default(),
            token_lifetime: self.token_lifetime.or(base.map(|s| s.token_lifetime)),
            notes: keep(self.notes, |s| s.notes.clone()),
        }
    }
}

async fn site_of(call: &Call) -> Result<crate::domain::sites::Site, Problem> {
    crate::service::sites::find_site(&call.st.db, call.param("id"))
        .await
        .map_err(manage)
}

fn list_sites(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let (offset, limit) = page_of(&call)?;
        let q = crate::service::sites::SiteQuery {
            text: call.query("q").into(),
            client: call.query("client").into(),
            profile: call.query("profile").into(),
            enabled: call.query("enabled").into(),
        };
        let (rows, total) = crate::service::sites::search(&call.st.db, &q, offset, limit).await?;
        let shown = rows.len();
        ok(
            StatusCode::OK,
            &SitePage {
                items: rows.into_iter().map(|r| ApiSite::from(r.site)).collect(),
                total,
                next_cursor: next_cursor(offset, shown, total),
            },
        )
    })
}

fn get_site(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move { ok(StatusCode::OK, &ApiSite::from(site_of(&call).await?)) })
}

fn create_site(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let w: SiteWrite = call.body_as()?;
        let enabled = w.enabled;
        let st = &call.st;
        let mut site = crate::service::sites::create_site(
            &st.db,
            &st.master_keys,
            w.input(None),
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        if enabled == Some(false) {
            site = crate::service::sites::set_site_enabled(
                &st.db, &site.id, false, &call.by, call.now,
            )
            .await
            .map_err(manage)?;
        }
        ok(StatusCode::CREATED, &ApiSite::from(site))
    })
}

fn update_site(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let w: SiteWrite = call.body_as()?;
        let current = site_of(&call).await?;
        if w.version.is_some_and(|v| v != current.version) {
            return Err(manage(ManageError::Conflict));
        }
        let enabled = w.enabled.unwrap_or(current.enabled);
        let version = current.version;
        let id = current.id.clone();
        let input = w.input(Some(&current));
        let st = &call.st;
        let site = crate::service::sites::update_site(
            &st.db,
            &st.master_keys,
            &id,
            version,
            input,
            enabled,
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        ok(StatusCode::OK, &ApiSite::from(site))
    })
}

fn delete_site(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let site = site_of(&call).await?;
        let gone = crate::service::sites::delete_site(
            &call.st.db,
            &site.id,
            &site.url,
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        ok(StatusCode::OK, &ApiSite::from(gone))
    })
}

// ----- grants -----

/// A person's grant on a site.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiGrant {
    pub email: String,
    pub site_id: String,
    pub site_url: String,
    pub role: String,
    /// A time-limited grant's end (Unix seconds); absent: lasting.
    pub expires_at: Option<i64>,
    pub reason: String,
    /// Just-in-time access: the higher role its holder may ask for, and for
    /// how many minutes at a time.
    pub eligible_role: Option<String>,
    pub eligible_max_minutes: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

/// A person's grant on a site, replacing theirs of the same kind (lasting,
/// or time-limited when `minutes` is given).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantWrite {
    pub role: String,
    /// A time-limited grant: how many minutes from now (with a reason).
    pub minutes: Option<i64>,
    pub reason: Option<String>,
    /// Eligible for a higher role (just-in-time access); absent: none.
    pub eligible_role: Option<String>,
    pub eligible_max_minutes: Option<i64>,
}

/// The higher role a grant makes its holder eligible for, and the most
/// minutes at a time.
type Eligible<'a> = Option<(&'a str, i64)>;

/// A grant's terms (lasting, or `minutes` from now with a reason) and the
/// higher role it makes its holder eligible for, as a write gives them.
fn grant_terms<'a>(
    minutes: Option<i64>,
    reason: Option<&str>,
    eligible_role: Option<&'a str>,
    eligible_max_minutes: Option<i64>,
    now: i64,
) -> Result<(GrantTerms, Eligible<'a>), Problem> {
    let terms =
        crate::domain::access::grant_terms(minutes, reason.unwrap_or(""), now).map_err(|e| {
            Problem {
                errors: vec![(e.field.to_string(), e.message.clone())],
                ..Problem::new(422, "invalid", e.message)
            }
        })?;
    let eligible = match (eligible_role, eligible_max_minutes) {
        (Some(r), Some(m)) => Some((r, m)),
        (None, None) => None,
        _ => {
            return Err(Problem::new(
                422,
                "invalid",
                "eligible_role and eligible_max_minutes go together",
            ))
        }
    };
    Ok((terms, eligible))
}

fn grant_view(g: crate::service::access::GrantListing) -> ApiGrant {
    ApiGrant {
        email: g.email,
        site_id: g.site_id,
        site_url: g.site_url,
        role: g.role,
        expires_at: g.expires_at,
        reason: g.reason,
        eligible_role: g.eligible_role,
        eligible_max_minutes: g.eligible_minutes,
        created_at: g.created_at,
        created_by: g.created_by,
    }
}

fn elevation_problem(e: crate::service::elevation::ElevationError) -> Problem {
    use crate::service::elevation::ElevationError as E;
    match e {
        E::Db(e) => Problem::unavailable(&e),
        E::UnknownSite(s) => Problem::new(404, "unknown_site", format!("there is no site {s}")),
        E::Invalid(m) => Problem::new(422, "invalid", m),
        e => Problem::new(409, e.code(), e.to_string()),
    }
}

fn list_grants(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let site = site_of(&call).await?;
        let grants = crate::service::access::list(&call.st.db, None, Some(&site.id)).await?;
        ok(
            StatusCode::OK,
            &grants.into_iter().map(grant_view).collect::<Vec<_>>(),
        )
    })
}

fn put_grant(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let w: GrantWrite = call.body_as()?;
        let site = site_of(&call).await?;
        let (terms, eligible) = grant_terms(
            w.minutes,
            w.reason.as_deref(),
            w.eligible_role.as_deref(),
            w.eligible_max_minutes,
            call.now,
        )?;
        let email = call.param("email").to_string();
        crate::service::access::grant_eligible(
            &call.st.db,
            &call.st.config.sign_in.allowed_domains,
            &email,
            &site.id,
            &w.role,
            &terms,
            eligible,
            &call.by,
            call.now,
        )
        .await
        .map_err(elevation_problem)?;
        let email = email.trim().to_ascii_lowercase();
        let limited = terms.expires_at.is_some();
        let grant = crate::service::access::list(&call.st.db, Some(&email), Some(&site.id))
            .await?
            .into_iter()
            .find(|g| g.expires_at.is_some() == limited)
            .ok_or_else(|| Problem::not_found("such grant"))?;
        ok(StatusCode::OK, &grant_view(grant))
    })
}

fn delete_grant(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let site = site_of(&call).await?;
        crate::service::access::revoke(
            &call.st.db,
            call.param("email"),
            &site.id,
            &call.by,
            call.now,
        )
        .await
        .map_err(|e| match e {
            ManageError::Refused(m) => Problem::new(404, "unknown_grant", m),
            e => manage(e),
        })?;
        ok(StatusCode::OK, &json!({ "revoked": true }))
    })
}

// ----- people -----

/// Someone who signed in.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiPerson {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

impl From<crate::domain::people::Person> for ApiPerson {
    fn from(p: crate::domain::people::Person) -> ApiPerson {
        ApiPerson {
            name: p.name.clone(),
            id: p.id,
            email: p.email,
            admin: p.is_admin,
            disabled: p.disabled,
            created_at: p.created_at,
            last_sign_in_at: p.last_sign_in_at,
        }
    }
}

/// A page of people.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PersonPage {
    pub items: Vec<ApiPerson>,
    pub total: i64,
    pub next_cursor: Option<String>,
}

/// A site a person may enter now, and with which role.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PersonAccess {
    pub site_id: String,
    pub site_url: String,
    /// Absent: their grants there are not live (expired, disabled site).
    pub role: Option<String>,
}

/// One person, their teams, sessions and sites.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PersonDetail {
    pub person: ApiPerson,
    pub teams: Vec<String>,
    pub sessions: i64,
    /// The first 500 sites their grants cover, by client and name.
    pub sites: Vec<PersonAccess>,
    pub sites_total: usize,
}

/// One site of a person's offboarding checklist.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChecklistStep {
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    pub profile: String,
    /// done, pending, attention, failed, cancelled or by-hand.
    pub state: String,
}

fn standing_problem(e: crate::service::people::StandingError) -> Problem {
    use crate::service::people::StandingError as E;
    match e {
        E::Unknown => Problem::new(404, "unknown_person", "there is no such person"),
        E::LastAdmin(_) => Problem::new(409, "last_admin", e.to_string()),
        E::OwnAccount => Problem::new(409, "own_account", e.to_string()),
        E::Db(e) => Problem::unavailable(&e),
    }
}

fn list_people(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let (offset, limit) = page_of(&call)?;
        let page = crate::service::people::people_page(
            &call.st.db,
            call.query("q"),
            call.query("standing"),
            call.now,
            offset,
            limit,
        )
        .await?;
        let shown = page.rows.len();
        ok(
            StatusCode::OK,
            &PersonPage {
                items: page
                    .rows
                    .into_iter()
                    .map(|r| ApiPerson::from(r.person))
                    .collect(),
                total: page.total,
                next_cursor: next_cursor(offset, shown, page.total),
            },
        )
    })
}

fn get_person(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let d = crate::service::people::person_detail(&call.st.db, call.param("id"), call.now, 500)
            .await?
            .ok_or_else(|| Problem::new(404, "unknown_person", "there is no such person"))?;
        ok(
            StatusCode::OK,
            &PersonDetail {
                sites: d
                    .sites
                    .into_iter()
                    .map(|s| PersonAccess {
                        site_id: s.site.site_id,
                        site_url: s.site.url,
                        role: s.role,
                    })
                    .collect(),
                sites_total: d.sites_total,
                teams: d.teams,
                sessions: d.sessions,
                person: d.person.into(),
            },
        )
    })
}

fn set_disabled(call: Call, disabled: bool) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        use crate::service::people::{set_standing, Standing};
        let p = set_standing(
            &call.st.db,
            call.param("id"),
            Standing::Disabled(disabled),
            &call.by,
            call.now,
        )
        .await
        .map_err(standing_problem)?;
        ok(StatusCode::OK, &ApiPerson::from(p))
    })
}

fn disable_person(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    set_disabled(call, true)
}

fn enable_person(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    set_disabled(call, false)
}

fn end_sessions(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let n = crate::service::people::end_sessions(
            &call.st.db,
            call.param("id"),
            None,
            &call.by,
            call.now,
        )
        .await
        .map_err(standing_problem)?;
        ok(StatusCode::OK, &json!({ "sessions_ended": n }))
    })
}

fn offboarding(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let (_, rows) = crate::service::messages::checklist_of(&call.st.db, call.param("id"))
            .await?
            .ok_or_else(|| Problem::new(404, "unknown_person", "there is no such person"))?;
        let steps: Vec<ChecklistStep> = rows
            .iter()
            .map(|r| ChecklistStep {
                state: crate::service::messages::row_state(r).into(),
                site_id: r.site_id.clone(),
                site_url: r.site_url.clone(),
                client: r.client.clone(),
                profile: r.profile.clone(),
            })
            .collect();
        ok(StatusCode::OK, &steps)
    })
}

// ----- audit -----

/// One record of the audit chain.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiRecord {
    /// Its place in the chain.
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    pub actor: String,
    pub subject: String,
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    pub role: String,
    pub jti: Option<String>,
    pub reason: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Audit records, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordPage {
    pub items: Vec<ApiRecord>,
    /// Pass as `before` for older records; absent on the oldest page.
    pub next_before: Option<i64>,
}

fn list_audit(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let int = |name: &str| -> Result<Option<i64>, Problem> {
            match call.query(name) {
                "" => Ok(None),
                v => v
                    .parse()
                    .map(Some)
                    .map_err(|_| Problem::new(422, "invalid", format!("{name}: a whole number"))),
            }
        };
        let limit = int("limit")?.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Problem::new(
                422,
                "invalid",
                format!("limit: from 1 to {MAX_PAGE}"),
            ));
        }
        let filter = crate::service::audit::Filter {
            person: call.query("person").trim().to_ascii_lowercase(),
            site_id: call.query("site_id").into(),
            client: call.query("client").into(),
            kind: call.query("kind").into(),
            outcome: call.query("outcome").into(),
            since: int("since")?,
            until: int("until")?,
        };
        let rows =
            crate::service::audit::page(&call.st.db, &filter, int("before")?, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let items: Vec<ApiRecord> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| ApiRecord {
                seq: r.seq,
                detail: serde_json::from_str(&r.event.detail).unwrap_or(Value::Null),
                at: r.event.at,
                kind: r.event.kind,
                outcome: r.event.outcome,
                actor: r.event.actor,
                subject: r.event.subject,
                site_id: r.event.site_id,
                site_url: r.event.site_url,
                client: r.event.client,
                role: r.event.role,
                jti: r.event.jti,
                reason: r.event.reason,
                ip: r.event.ip,
                user_agent: r.event.user_agent,
                request_id: r.event.request_id,
                prev_hash: r.prev_hash,
                hash: r.hash,
            })
            .collect();
        let next_before = more.then(|| items.last().map(|r| r.seq)).flatten();
        ok(StatusCode::OK, &RecordPage { items, next_before })
    })
}

// ----- keys -----

/// A signing key (its public half is in the JWKS while published).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiKey {
    pub kid: String,
    /// next, active, retired, removed or revoked.
    pub state: String,
    pub bits: u32,
    pub created_at: i64,
    pub activates_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub remove_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// When a rotation takes effect: `now` (a new key signs at once) or
/// `soon` (published now, signing once sites have fetched it).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    pub when: String,
}

fn list_keys(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let checked = crate::service::keys::load(&call.st.db, &call.st.master_keys).await?;
        let keys: Vec<ApiKey> = checked
            .ring
            .keys
            .into_iter()
            .map(|k| ApiKey {
                state: k.state.as_str().into(),
                kid: k.kid,
                bits: k.bits,
                created_at: k.created_at,
                activates_at: k.activates_at,
                activated_at: k.activated_at,
                retired_at: k.retired_at,
                remove_at: k.remove_at,
                removed_at: k.removed_at,
                revoked_at: k.revoked_at,
            })
            .collect();
        ok(StatusCode::OK, &keys)
    })
}

fn rotate_key(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let r: Rotate = call.body_as()?;
        let keys = call.st.keys.clone();
        let done = match r.when.as_str() {
            "now" => keys.rotate_now(&call.by, call.now).await.map(|_| None),
            "soon" => keys
                .rotate_soon(&call.by, call.now)
                .await
                .map(|(at, _)| Some(at)),
            _ => return Err(Problem::new(422, "invalid", "when: now or soon")),
        };
        let _ = keys.refresh(call.now).await;
        match done {
            Ok(at) => ok(
                StatusCode::OK,
                &json!({ "rotated": r.when, "signs_from": at }),
            ),
            Err(e) => Err(Problem::new(409, "refused", e.to_string())),
        }
    })
}

// ----- teams -----

/// A team: people granted roles together.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiTeam {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub members: i64,
    pub grants: i64,
}

impl From<crate::service::teams::Team> for ApiTeam {
    fn from(t: crate::service::teams::Team) -> ApiTeam {
        ApiTeam {
            id: t.id,
            name: t.name,
            description: t.description,
            created_at: t.created_at,
            members: t.members,
            grants: t.grants,
        }
    }
}

/// A team's grant: a role on one site, or on every site of a client.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiTeamGrant {
    pub id: String,
    pub site_id: Option<String>,
    pub site_url: Option<String>,
    pub client: Option<String>,
    pub role: String,
    pub expires_at: Option<i64>,
    pub reason: String,
    pub eligible_role: Option<String>,
    pub eligible_max_minutes: Option<i64>,
}

/// A team with its members and grants.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TeamDetail {
    pub team: ApiTeam,
    pub members: Vec<String>,
    pub grants: Vec<ApiTeamGrant>,
}

/// A new team.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamWrite {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A team's grant: `site` (an id or URL) or `client`, not both.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamGrantWrite {
    pub site: Option<String>,
    pub client: Option<String>,
    pub role: String,
    pub minutes: Option<i64>,
    pub reason: Option<String>,
    pub eligible_role: Option<String>,
    pub eligible_max_minutes: Option<i64>,
}

async fn team_view(call: &Call, id: &str) -> Answer {
    let d = crate::service::teams::team_detail(&call.st.db, id)
        .await?
        .ok_or_else(|| Problem::new(404, "unknown_team", "there is no such team"))?;
    ok(
        StatusCode::OK,
        &TeamDetail {
            members: d.members.into_iter().map(|m| m.email).collect(),
            grants: d
                .grants
                .into_iter()
                .map(|g| ApiTeamGrant {
                    id: g.id,
                    site_id: g.site_id,
                    site_url: g.site_url,
                    client: g.client,
                    role: g.role,
                    expires_at: g.expires_at,
                    reason: g.reason,
                    eligible_role: g.eligible_role,
                    eligible_max_minutes: g.eligible_minutes,
                })
                .collect(),
            team: d.team.into(),
        },
    )
}

fn list_teams(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let teams = crate::service::teams::list(&call.st.db).await?;
        ok(
            StatusCode::OK,
            &teams.into_iter().map(ApiTeam::from).collect::<Vec<_>>(),
        )
    })
}

fn get_team(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move { team_view(&call, call.param("id")).await })
}

fn create_team(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let w: TeamWrite = call.body_as()?;
        let id = crate::service::teams::create_team(
            &call.st.db,
            &w.name,
            &w.description,
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        let (_, body) = team_view(&call, &id).await?;
        Ok((StatusCode::CREATED, body))
    })
}

fn delete_team(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        crate::service::teams::delete_team(&call.st.db, call.param("id"), &call.by, call.now)
            .await
            .map_err(manage)?;
        ok(StatusCode::OK, &json!({ "deleted": true }))
    })
}

fn add_member(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        crate::service::teams::add_members(
            &call.st.db,
            &call.st.config.sign_in.allowed_domains,
            call.param("id"),
            call.param("email"),
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        team_view(&call, call.param("id")).await
    })
}

fn remove_member(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        crate::service::teams::remove_member(
            &call.st.db,
            call.param("id"),
            call.param("email"),
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        team_view(&call, call.param("id")).await
    })
}

fn grant_team(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let w: TeamGrantWrite = call.body_as()?;
        let (terms, eligible) = grant_terms(
            w.minutes,
            w.reason.as_deref(),
            w.eligible_role.as_deref(),
            w.eligible_max_minutes,
            call.now,
        )?;
        crate::service::teams::grant_team(
            &call.st.db,
            call.param("id"),
            w.site.as_deref(),
            w.client.as_deref(),
            &w.role,
            &terms,
            eligible,
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        team_view(&call, call.param("id")).await
    })
}

fn revoke_team_grant(call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
    boxed(async move {
        let grants = crate::service::teams::grants(&call.st.db, call.param("id")).await?;
        if !grants.iter().any(|g| g.id == call.param("grant")) {
            return Err(Problem::new(
                404,
                "unknown_grant",
                "the team has no such grant",
            ));
        }
        crate::service::teams::revoke_team_grant(
            &call.st.db,
            call.param("grant"),
            &call.by,
            call.now,
        )
        .await
        .map_err(manage)?;
        team_view(&call, call.param("id")).await
    })
}

fn list_schema<T: JsonSchema>() -> Value {
    schema::<Vec<T>>()
}

fn done_schema() -> Value {
    json!({ "type": "object" })
}

/// The API: every route, what it needs and does (made once per process).
pub fn endpoints() -> &'static [Endpoint] {
    static TABLE: std::sync::OnceLock<Vec<Endpoint>> = std::sync::OnceLock::new();
    TABLE.get_or_init(table)
}

fn table() -> Vec<Endpoint> {
    let get = Method::GET;
    let e = |method: Method,
             path: &'static str,
             scope: Scope,
             summary: &'static str,
             handler: super::Handler,
             response: fn() -> Value| Endpoint {
        method,
        path,
        scope,
        summary,
        description: "",
        query: &[],
        request: None,
        response,
        status: 200,
        handler,
    };
    vec![
        Endpoint {
            query: &[
                ("q", "words the name, client or URL holds"),
                ("client", "one client's sites"),
                ("profile", "twl-sso, connector or miniorange"),
                ("enabled", "true or false"),
                ("limit", "rows per page, 1 to 500 (default 100)"),
                ("cursor", "the next_cursor of the page before"),
            ],
            ..e(
                get.clone(),
                "/sites",
                Scope::SitesRead,
                "List sites, by client and name",
                list_sites,
                schema::<SitePage>,
            )
        },
        Endpoint {
            request: Some(schema::<SiteWrite>),
            status: 201,
            ..e(
                Method::POST,
                "/sites",
                Scope::SitesWrite,
                "Add a site",
                create_site,
                schema::<ApiSite>,
            )
        },
        e(
            get.clone(),
            "/sites/{id}",
            Scope::SitesRead,
            "Read a site (by id or URL)",
            get_site,
            schema::<ApiSite>,
        ),
        Endpoint {
            request: Some(schema::<SiteWrite>),
            ..e(
                Method::PATCH,
                "/sites/{id}",
                Scope::SitesWrite,
                "Change a site: what is left out stays",
                update_site,
                schema::<ApiSite>,
            )
        },
        e(
            Method::DELETE,
            "/sites/{id}",
            Scope::SitesWrite,
            "Delete a site and its grants (the audit log keeps its history)",
            delete_site,
            schema::<ApiSite>,
        ),
        e(
            get.clone(),
            "/sites/{id}/grants",
            Scope::AccessRead,
            "The people granted a role on a site",
            list_grants,
            list_schema::<ApiGrant>,
        ),
        Endpoint {
            request: Some(schema::<GrantWrite>),
            ..e(
                Method::PUT,
                "/sites/{id}/grants/{email}",
                Scope::AccessWrite,
                "Grant a person a role on a site (replacing theirs)",
                put_grant,
                schema::<ApiGrant>,
            )
        },
        e(
            Method::DELETE,
            "/sites/{id}/grants/{email}",
            Scope::AccessWrite,
            "Revoke a person's grants on a site",
            delete_grant,
            done_schema,
        ),
        Endpoint {
            query: &[
                ("q", "words the e-mail or name holds"),
                ("standing", "admin, staff or disabled"),
                ("limit", "rows per page, 1 to 500 (default 100)"),
                ("cursor", "the next_cursor of the page before"),
            ],
            ..e(
                get.clone(),
                "/people",
                Scope::PeopleRead,
                "List people, by e-mail",
                list_people,
                schema::<PersonPage>,
            )
        },
        e(
            get.clone(),
            "/people/{id}",
            Scope::PeopleRead,
            "Read a person: teams, sessions, sites",
            get_person,
            schema::<PersonDetail>,
        ),
        e(
            Method::POST,
            "/people/{id}/disable",
            Scope::PeopleWrite,
            "Disable a person: sessions end, connector sites lock their accounts",
            disable_person,
            schema::<ApiPerson>,
        ),
        e(
            Method::POST,
            "/people/{id}/enable",
            Scope::PeopleWrite,
            "Enable a person again",
            enable_person,
            schema::<ApiPerson>,
        ),
        e(
            Method::POST,
            "/people/{id}/end-sessions",
            Scope::PeopleWrite,
            "End every dashboard session of a person",
            end_sessions,
            done_schema,
        ),
        e(
            get.clone(),
            "/people/{id}/offboarding",
            Scope::PeopleRead,
            "A person's offboarding checklist, site by site",
            offboarding,
            list_schema::<ChecklistStep>,
        ),
        Endpoint {
            query: &[
                ("person", "records by or about this e-mail"),
                ("site_id", "one site's records"),
                ("client", "one client's records"),
                ("kind", "one kind, such as launch"),
                ("outcome", "success, failure or refused"),
                ("since", "from this Unix time"),
                ("until", "before this Unix time"),
                (
                    "before",
                    "older than this seq (the next_before of the page before)",
                ),
                ("limit", "rows per page, 1 to 500 (default 100)"),
            ],
            ..e(
                get.clone(),
                "/audit",
                Scope::AuditRead,
                "Audit records, newest first",
                list_audit,
                schema::<RecordPage>,
            )
        },
        e(
            get.clone(),
            "/teams",
            Scope::TeamsRead,
            "List teams",
            list_teams,
            list_schema::<ApiTeam>,
        ),
        Endpoint {
            request: Some(schema::<TeamWrite>),
            status: 201,
            ..e(
                Method::POST,
                "/teams",
                Scope::TeamsWrite,
                "Make a team",
                create_team,
                schema::<TeamDetail>,
            )
        },
        e(
            get.clone(),
            "/teams/{id}",
            Scope::TeamsRead,
            "Read a team: members and grants",
            get_team,
            schema::<TeamDetail>,
        ),
        e(
            Method::DELETE,
            "/teams/{id}",
            Scope::TeamsWrite,
            "Delete a team: its members lose what it granted",
            delete_team,
            done_schema,
        ),
        e(
            Method::PUT,
            "/teams/{id}/members/{email}",
            Scope::TeamsWrite,
            "Add a person to a team",
            add_member,
            schema::<TeamDetail>,
        ),
        e(
            Method::DELETE,
            "/teams/{id}/members/{email}",
            Scope::TeamsWrite,
            "Take a person out of a team",
            remove_member,
            schema::<TeamDetail>,
        ),
        Endpoint {
            request: Some(schema::<TeamGrantWrite>),
            ..e(
                Method::POST,
                "/teams/{id}/grants",
                Scope::TeamsWrite,
                "Grant a team a role on a site or on a client's sites",
                grant_team,
                schema::<TeamDetail>,
            )
        },
        e(
            Method::DELETE,
            "/teams/{id}/grants/{grant}",
            Scope::TeamsWrite,
            "Revoke a team's grant",
            revoke_team_grant,
            schema::<TeamDetail>,
        ),
        e(
            get,
            "/keys",
            Scope::KeysRead,
            "The signing keys",
            list_keys,
            list_schema::<ApiKey>,
        ),
        Endpoint {
            request: Some(schema::<Rotate>),
            ..e(
                Method::POST,
                "/keys/rotate",
                Scope::KeysWrite,
                "Rotate the signing key (revoking one needs the console)",
                rotate_key,
                done_schema,
            )
        },
    ]
}

//! Connecting a site in one step. An admin makes connection codes (the
//! console, the command line, or by approving a site's request in the
//! browser); the site redeems one. The dashboard then proves that the
//! WordPress served at the code's URL is the one asking (a signed
//! `connect` site message to its back-channel route, answered only while
//! its own attempt is pending), and in one transaction uses the code,
//! creates the site with the connector profile (or switches an existing
//! one to it) and records it.

use serde_json::json;

use crate::domain::audit::{kind, outcome, Actor, Event, Origin};
use crate::domain::connect::{
    check_stored, host_of, judge_confirmation, new_code, parse_code, site_claims, Confirmation,
    Redeem, Refusal, SiteRequest, StoredCode, APPROVAL_TTL, MAX_TTL, SITE_TYP,
};
use crate::domain::messages::ROUTE;
use crate::domain::sites::{normalise_url, FieldError, Profile, Site, SiteInput};
use crate::domain::tokens::new_jti;
use crate::service::messages::{self, read_capped, root_cause};
use crate::service::sites::{site_summary, ManageError};
use crate::service::Context;
use crate::store::{self, audit, Db};

/// A code just made: shown once, never again.
#[derive(Debug, Clone)]
pub struct MadeCode {
    pub url: String,
    pub code: String,
    pub expires_at: i64,
    /// The site the URL already is, if any (it will be switched to the
    /// connector profile when it connects).
    pub site: Option<Site>,
}

/// How a code comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Made in the console or on the command line, to hand to the site.
    Code,
    /// Made when an admin approved the site's request in the browser.
    Approval,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Code => "code",
            Via::Approval => "approval",
        }
    }
}

/// Make a code for each URL (all checked first: one bad URL makes none),
/// each recorded. `issuer` is the dashboard's public URL (the code names
/// it). `client` files a new site under that client (empty: the
/// site's host); `ttl` is seconds (60 s to 30 days).
pub async fn make_codes(
    db: &Db,
    issuer: &str,
    urls: &[String],
    client: &str,
    ttl: i64,
    by: &Actor,
    now: i64,
) -> Result<Vec<MadeCode>, ManageError> {
    make(db, issuer, urls, client, ttl, Via::Code, by, now).await
}

/// An admin approved a site's request: a short-lived code for it, which
/// the browser takes back to the site.
pub async fn approve(
    db: &Db,
    issuer: &str,
    url: &str,
    by: &Actor,
    now: i64,
) -> Result<MadeCode, ManageError> {
    let mut made = make(
        db,
        issuer,
        &[url.to_string()],
        "",
        APPROVAL_TTL,
        Via::Approval,
        by,
        now,
    )
    .await?;
    Ok(made.remove(0))
}

#[allow(clippy::too_many_arguments)]
async fn make(
    db: &Db,
    issuer: &str,
    urls: &[String],
    client: &str,
    ttl: i64,
    via: Via,
    by: &Actor,
    now: i64,
) -> Result<Vec<MadeCode>, ManageError> {
    let invalid =
        |message: String, field| ManageError::Invalid(vec![FieldError { field, message }]);
    if !(60..=MAX_TTL).contains(&ttl) {
        return Err(invalid(
            format!("a code lasts from a minute to {} days", MAX_TTL / 86_400),
            "ttl",
        ));
    }
    let client = client.trim();
    if client.chars().count() > 200 || client.chars().any(char::is_control) {
        return Err(invalid("the client is not a plain name".into(), "client"));
    }
    let mut normalised = Vec::new();
    let mut problems = Vec::new();
    for raw in urls.iter().filter(|u| !u.trim().is_empty()) {
        match normalise_url(raw) {
            Ok(u) if !normalised.contains(&u) => normalised.push(u),
            Ok(_) => {}
            Err(e) => problems.push(FieldError {
                field: "url",
                message: format!("{}: {e}", raw.trim()),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ManageError::Invalid(problems));
    }
    if normalised.is_empty() {
        return Err(invalid("give at least one site URL".into(), "url"));
    }
    let mut made = Vec::with_capacity(normalised.len());
    let mut events = Vec::with_capacity(normalised.len());
    let mut tx = audit::begin(db).await?;
    for url in normalised {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let code = new_code(issuer, &secret);
        let id = uuid::Uuid::new_v4().to_string();
        store::connect::insert(
            &mut *tx,
            &store::connect::NewCode {
                id: &id,
                hash: &code.hash,
                site_url: &url,
                client,
                via: via.as_str(),
                created_by: &by.who,
                created_at: now,
                expires_at: now + ttl,
            },
        )
        .await?;
        let site = store::sites::find_by_url_in(&mut *tx, &url).await?;
        let (site_id, site_client) = site
            .as_ref()
            .map(|s| (s.id.as_str(), s.client.as_str()))
            .unwrap_or(("", client));
        events.push(
            by.did(now, kind::CONNECT_CODE_CREATED)
                .site(site_id, &url, site_client)
                .detail(json!({
                    "code_id": id,
                    "via": via.as_str(),
                    "expires_at": now + ttl,
                    "profile_now": site.as_ref().map(|s| s.profile.as_str()),
                })),
        );
        made.push(MadeCode {
            url,
            code: code.code,
            expires_at: now + ttl,
            site,
        });
    }
    audit::append_all(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(made)
}

/// A site connected.
#[derive(Debug, Clone)]
pub struct Connected {
    pub site: Site,
    /// A new site (rather than an existing one switched or confirmed).
    pub created: bool,
}

/// Redeem a code for the site asking: every check, the proof that the
/// URL serves that site, then the code used and the site connected in one
/// transaction. A refusal of a code the dashboard knows is recorded.
pub async fn redeem(ctx: &Context, req: &Redeem, from: &Origin) -> Result<Connected, Refusal> {
    req.check()?;
    let parsed = parse_code(&req.code).ok_or(Refusal::Malformed)?;
    if parsed.issuer != ctx.config.public_url {
        return Err(Refusal::Unknown);
    }
    let code = store::connect::find_by_hash(&ctx.db.pool, &parsed.hash)
        .await
        .map_err(unavailable)?
        .ok_or(Refusal::Unknown)?;
    let result = redeem_known(ctx, req, &code, from).await;
    if let Err(refusal) = &result {
        if !matches!(refusal, Refusal::Unavailable) {
            record_refusal(&ctx.db, &code, req, refusal, from, ctx.now()).await;
        }
    }
    result
}

async fn redeem_known(
    ctx: &Context,
    req: &Redeem,
    code: &StoredCode,
    from: &Origin,
) -> Result<Connected, Refusal> {
    check_stored(code, ctx.now())?;
    let site_url = normalise_url(&req.site_url).map_err(|e| Refusal::WrongSite {
        code_for: code.site_url.clone(),
        site: format!("{} ({e})", req.site_url.trim()),
    })?;
    if site_url != code.site_url {
        return Err(Refusal::WrongSite {
            code_for: code.site_url.clone(),
            site: site_url,
        });
    }
    let confirmed = confirm(ctx, &site_url, &req.attempt).await?;
    connect(ctx, req, code, &confirmed, from).await
}

/// Ask the site at `url` to confirm the attempt: a signed `connect` site
/// message to its back-channel route, no redirects followed, at most
/// 16 KiB of its answer read.
async fn confirm(ctx: &Context, url: &str, attempt: &str) -> Result<Confirmation, Refusal> {
    let signer = ctx.keys.signer().ok_or(Refusal::Unavailable)?;
    let jti = new_jti(&mut rand::rngs::OsRng);
    let claims = site_claims(
        &ctx.config.public_url,
        url,
        &SiteRequest::Connect { attempt },
        ctx.now(),
        &jti,
    );
    let token = signer
        .sign_typed(SITE_TYP, &claims)
        .map_err(|_| Refusal::Unavailable)?;
    let client = messages::http_client();
    let sent = client
        .post(format!("{url}{ROUTE}"))
        .form(&[("site_token", token)])
        .send()
        .await;
    let mut res = match sent {
        Ok(res) => res,
        Err(e) if e.is_timeout() => {
            return Err(Refusal::SiteUnreachable("it did not answer in time".into()))
        }
        Err(e) => return Err(Refusal::SiteUnreachable(root_cause(&e))),
    };
    let status = res.status().as_u16();
    let (body, cut) = read_capped(&mut res, crate::domain::connect::MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e.is_timeout() {
            true => Refusal::SiteUnreachable("it did not finish its answer in time".into()),
            false => Refusal::SiteUnreachable(format!("its answer broke off: {}", root_cause(&e))),
        })?;
    judge_confirmation(&jti, url, status, &body, cut)
}

/// The code used and the site connected, recorded, in one transaction.
async fn connect(
    ctx: &Context,
    req: &Redeem,
    code: &StoredCode,
    confirmed: &Confirmation,
    from: &Origin,
) -> Result<Connected, Refusal> {
    let now = ctx.now();
    let by = Actor::person(&code.created_by, from.clone());
    let mut tx = audit::begin(&ctx.db).await.map_err(unavailable)?;
    let before = store::sites::find_by_url_in(&mut *tx, &code.site_url)
        .await
        .map_err(unavailable)?;
    let (site, created) = match &before {
        Some(site) if site.profile == Profile::Connector => (site.clone(), false),
        Some(site) => (switch_to_connector(&mut tx, site, &by, now).await?, false),
        None => {
            let client = match code.client.as_str() {
                "" => host_of(&code.site_url),
                c => c.to_string(),
            };
            let input = SiteInput {
                name: req.name_or(&code.site_url),
                client,
                url: code.site_url.clone(),
                profile: Profile::Connector.as_str().into(),
                ..SiteInput::default()
            };
            let valid = input
                .validate()
                .map_err(|e| Refusal::Invalid(describe(&e)))?;
            let id = uuid::Uuid::new_v4().to_string();
            let site = store::sites::insert(&mut *tx, &id, &valid, None, now)
                .await
                .map_err(|e| match e {
                    store::sites::SiteStoreError::DuplicateUrl(_) => Refusal::Used,
                    store::sites::SiteStoreError::Db(e) => unavailable(e),
                })?;
            (site, true)
        }
    };
    if !store::connect::use_code(&mut *tx, &code.id, &site.id, now)
        .await
        .map_err(unavailable)?
    {
        // Another redemption of the same code won (or it ran out meanwhile).
        return Err(Refusal::Used);
    }
    let event = by
        .did(now, kind::SITE_CONNECTED)
        .site(&site.id, &site.url, &site.client)
        .detail(json!({
            "code_id": code.id,
            "via": code.via,
            "created": created,
            "before": before.as_ref().map(site_summary),
            "after": site_summary(&site),
            "site": {
                "plugin_version": confirmed.plugin_version.chars().take(40).collect::<String>(),
                "wp_version": confirmed.wp_version.chars().take(40).collect::<String>(),
                "php_version": confirmed.php_version.chars().take(40).collect::<String>(),
                "multisite": confirmed.multisite,
            },
            "reported": req.facts(),
        }));
    audit::append(&mut tx, &event).await.map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(Connected { site, created })
}

/// An existing site of another profile now uses the connector: its
/// settings kept, the connector's login path, RS256 (no secret), and its
/// waiting messages follow the change.
async fn switch_to_connector(
    tx: &mut sqlx::AnyConnection,
    site: &Site,
    by: &Actor,
    now: i64,
) -> Result<Site, Refusal> {
    let input = SiteInput {
        name: site.name.clone(),
        client: site.client.clone(),
        url: site.url.clone(),
        profile: Profile::Connector.as_str().into(),
        login_template: String::new(),
        username_claim: String::new(),
        signing: String::new(),
        secret: None,
        roles: site.roles.clone(),
        token_lifetime: Some(site.token_lifetime),
        notes: site.notes.clone(),
    };
    let valid = input
        .validate()
        .map_err(|e| Refusal::Invalid(describe(&e)))?;
    let changed = store::sites::update(
        &mut *tx,
        &site.id,
        site.version,
        &valid,
        None,
        site.enabled,
        now,
    )
    .await
    .map_err(|e| match e {
        store::sites::SiteStoreError::DuplicateUrl(_) => Refusal::Used,
        store::sites::SiteStoreError::Db(e) => unavailable(e),
    })?;
    if !changed {
        return Err(Refusal::Used);
    }
    let after = store::sites::find_in(&mut *tx, &site.id)
        .await
        .map_err(unavailable)?
        .ok_or(Refusal::Used)?;
    messages::follow_site(tx, site, Some(&after), by, now)
        .await
        .map_err(unavailable)?;
    Ok(after)
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn unavailable(e: sqlx::Error) -> Refusal {
    tracing::error!(error = %e, "connect: database error");
    Refusal::Unavailable
}

/// A refused redemption of a known code, recorded (best effort: the
/// refusal stands whether or not the record is written).
async fn record_refusal(
    db: &Db,
    code: &StoredCode,
    req: &Redeem,
    refusal: &Refusal,
    from: &Origin,
    now: i64,
) {
    let event = Event::new(
        now,
        kind::SITE_CONNECT_REFUSED,
        outcome::REFUSED,
        &code.created_by,
        from,
    )
    .site("", &code.site_url, &code.client)
    .reason(refusal.code())
    .detail(json!({
        "code_id": code.id,
        "via": code.via,
        "asked_for": req.site_url.chars().take(300).collect::<String>(),
        "why": refusal.message(),
        "reported": req.facts(),
    }));
    if let Err(e) = crate::service::audit::record(db, std::slice::from_ref(&event)).await {
        tracing::warn!(error = %e, "cannot record a refused connection");
    }
}

//! The fleet: every connector site asked how it stands (a signed `status`
//! site message on the back-channel: plugin, WordPress and PHP versions,
//! the key ids it holds, its refusals by code), on a schedule spread over
//! the day, with the outbox's bounded concurrency, and at once when an
//! admin asks. Connected by a code, an approval or by hand alike.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::connect::{site_claims, SiteRequest, MAX_ANSWER_BYTES, SITE_TYP};
use crate::domain::fleet::{
    judge_status, shipped_version, standing, RingKids, SiteFacts, Standing,
};
use crate::domain::messages::ROUTE;
use crate::domain::tokens::new_jti;
use crate::service::messages::{read_capped, root_cause, CONCURRENCY};
use crate::service::Context;
use crate::store::fleet::{self as store, Checked, Due};

/// How often each site is asked, seconds.
pub const INTERVAL: i64 = 6 * 3600;
/// A site that did not answer is asked again sooner.
pub const RETRY: i64 = 15 * 60;
/// Sites never asked are first asked within this many seconds, spread out.
const FIRST_SPREAD: i64 = 600;
/// Checks claimed at a time, and outcomes written per transaction.
const BATCH: i64 = 64;
/// The most checks per second an instance makes: background work that
/// must leave launches their speed (5,000 sites still take under 30 s;
/// BENCHMARKS.md).
const MAX_RATE: f64 = 200.0;
const OUTCOMES_PER_WRITE: usize = 16;
/// How long a claim holds against other instances, seconds.
const LEASE_SECS: i64 = 60;

/// When a site is asked next after a check at `now`: the interval less up
/// to a tenth (so that sites checked together drift apart), or sooner
/// after a failure.
fn next_check(now: i64, failed: bool) -> i64 {
    if failed {
        return now + RETRY;
    }
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..INTERVAL / 10);
    now + INTERVAL - jitter
}

/// New connector sites get their row, first asked within ten minutes.
async fn add_missing(ctx: &Context, now: i64) -> Result<usize, sqlx::Error> {
    store::add_missing(&ctx.db, |i| now + (i as i64 * 7) % FIRST_SPREAD).await
}

/// Ask the sites that are due (at most one batch), many at once; write
/// their outcomes as they come. Returns how many were asked.
pub async fn check_due(
    ctx: &Context,
    client: &reqwest::Client,
    owner: &str,
) -> Result<usize, sqlx::Error> {
    let now = ctx.now();
    let started = std::time::Instant::now();
    add_missing(ctx, now).await?;
    let due = store::claim_due(&ctx.db, owner, now, now + LEASE_SECS, BATCH).await?;
    let n = due.len();
    let mut outcomes = futures_util::stream::iter(due)
        .map(|d| async move {
            let checked = check(ctx, client, &d).await;
            let failed = matches!(checked, Checked::Problem(_));
            (d.site_id, checked, next_check(ctx.now(), failed))
        })
        .buffer_unordered(CONCURRENCY)
        .ready_chunks(OUTCOMES_PER_WRITE);
    while let Some(done) = outcomes.next().await {
        if let Err(e) = store::finish(&ctx.db, owner, ctx.now(), &done).await {
            tracing::warn!(error = %e, "cannot record the fleet's checks");
        }
    }
    // Paced: a batch takes at least its share of a second at MAX_RATE.
    let floor = Duration::from_secs_f64(n as f64 / MAX_RATE);
    if let Some(rest) = floor.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    Ok(n)
}

/// One check: a fresh signed site message, at most 16 KiB of the answer read.
async fn check(ctx: &Context, client: &reqwest::Client, d: &Due) -> Checked {
    let Some(signer) = ctx.keys.signer() else {
        return Checked::Problem("the dashboard has no signing key".into());
    };
    let request = match d.next_action.as_str() {
        "refresh-keys" => SiteRequest::RefreshKeys,
        _ => SiteRequest::Status,
    };
    let jti = new_jti(&mut rand::rngs::OsRng);
    let claims = site_claims(&ctx.config.public_url, &d.url, &request, ctx.now(), &jti);
    let token = match signer.sign_typed(SITE_TYP, &claims) {
        Ok(t) => t,
        Err(e) => return Checked::Problem(format!("cannot sign: {e}")),
    };
    let sent = client
        .post(format!("{}{ROUTE}", d.url))
        .form(&[("site_token", token)])
        .send()
        .await;
    let mut res = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Checked::Problem("it did not answer in time".into()),
        Err(e) => return Checked::Problem(format!("it cannot be reached: {}", root_cause(&e))),
    };
    let status = res.status().as_u16();
    match read_capped(&mut res, MAX_ANSWER_BYTES).await {
        Ok((body, cut)) => match judge_status(&jti, request.action(), status, &body, cut) {
            Ok(report) => Checked::Report(Box::new(report)),
            Err(why) => Checked::Problem(why),
        },
        Err(e) if e.is_timeout() => Checked::Problem("it did not finish its answer in time".into()),
        Err(e) => Checked::Problem(format!("its answer broke off: {}", root_cause(&e))),
    }
}

/// "Check now": every connector site (or these) asked at the next turn of
/// the worker; `refresh` asks them to refetch the key set first.
pub async fn check_soon(
    ctx: &Context,
    sites: Option<&[String]>,
    refresh: bool,
) -> Result<u64, sqlx::Error> {
    let now = ctx.now();
    add_missing(ctx, now).await?;
    store::due_now(&ctx.db, sites, refresh, now).await
}

/// Ask every connector site now and wait for every answer (or its failure):
/// the command line's `sites status --check`. Checks another instance
/// holds are waited for, up to a minute past their lease.
pub async fn check_all_now(ctx: &Context) -> Result<(), sqlx::Error> {
    let started = ctx.now();
    check_soon(ctx, None, false).await?;
    let client = crate::service::messages::http_client();
    let owner = uuid::Uuid::new_v4().to_string();
    while check_due(ctx, &client, &owner).await? > 0 {}
    for _ in 0..(LEASE_SECS + 10) {
        let rows = store::rows(&ctx.db).await?;
        if rows
            .iter()
            .all(|r| r.checked_at.is_some_and(|t| t >= started))
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        check_due(ctx, &client, &owner).await?;
    }
    Ok(())
}

/// The worker: asks the sites that are due, every few seconds.
pub fn spawn_worker(ctx: Context) {
    tokio::spawn(async move {
        let owner = uuid::Uuid::new_v4().to_string();
        let client = crate::service::messages::http_client();
        loop {
            match check_due(&ctx, &client, &owner).await {
                Ok(0) => tokio::time::sleep(Duration::from_secs(2)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the fleet");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
        }
    });
}

/// One site as the fleet shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FleetEntry {
    pub site_id: String,
    pub url: String,
    pub name: String,
    pub client: String,
    pub enabled: bool,
    /// `code` (connected by a code or an approval) or `manual`.
    pub connected_by: &'static str,
    /// The site's own word: its connection record names this dashboard.
    pub site_says_connected: Option<bool>,
    pub plugin_version: String,
    pub outdated: bool,
    pub wp_version: String,
    pub php_version: String,
    pub multisite: bool,
    pub checked_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub next_check_at: Option<i64>,
    pub keys: Vec<String>,
    pub has_active_key: bool,
    pub has_next_key: Option<bool>,
    pub refusals: BTreeMap<String, u64>,
    pub refusals_since: Option<i64>,
    pub problem: String,
    pub standing: Standing,
    /// What needs attention first, in words ('' when nothing does).
    pub attention: String,
}

/// Every connector site, worst first, then by URL.
pub async fn fleet(ctx: &Context) -> Result<Vec<FleetEntry>, sqlx::Error> {
    let rows = store::rows(&ctx.db).await?;
    let snapshot = ctx.keys.snapshot();
    let active = snapshot.ring.active().map(|k| k.kid.as_str());
    let next = snapshot.ring.next().map(|k| k.kid.as_str());
    let ring = RingKids { active, next };
    let shipped = shipped_version();
    let mut entries: Vec<FleetEntry> = rows
        .into_iter()
        .map(|r| {
            let keys: Vec<String> = r
                .keys
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect();
            let refusals: BTreeMap<String, u64> = r
                .refusals
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let facts = SiteFacts {
                answered_at: r.answered_at,
                checked_at: r.checked_at,
                problem: r.problem.clone().unwrap_or_default(),
                plugin_version: r.plugin_version.clone().unwrap_or_default(),
                connected: r.connected == Some(1),
                keys: keys.clone(),
                refusals: refusals.clone(),
            };
            let (st, attention) = standing(&facts, shipped, ring);
            let version = facts.plugin_version.clone();
            FleetEntry {
                outdated: r.answered_at.is_some() && crate::domain::fleet::older(&version, shipped),
                has_active_key: active.is_some_and(|a| keys.iter().any(|k| k == a)),
                has_next_key: next.map(|n| keys.iter().any(|k| k == n)),
                site_id: r.site_id,
                url: r.url,
                name: r.name,
                client: r.client,
                enabled: r.enabled != 0,
                connected_by: if r.connected_by_code != 0 {
                    "code"
                } else {
                    "manual"
                },
                site_says_connected: r.answered_at.map(|_| facts.connected),
                plugin_version: version,
                wp_version: r.wp_version.unwrap_or_default(),
                php_version: r.php_version.unwrap_or_default(),
                multisite: r.multisite == Some(1),
                checked_at: r.checked_at,
                answered_at: r.answered_at,
                next_check_at: r.next_check_at,
                keys,
                refusals,
                refusals_since: r.refusals_since,
                problem: facts.problem,
                standing: st,
                attention,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.standing.cmp(&b.standing).then_with(|| a.url.cmp(&b.url)));
    Ok(entries)
}

/// The fleet as CSV, one row per site, worst first.
pub fn fleet_csv(entries: &[FleetEntry]) -> String {
    use crate::domain::audit::{csv_cell, utc};
    let when = |t: Option<i64>| t.map(utc).unwrap_or_default();
    let mut out = String::from(
        "url,name,client,standing,attention,connected_by,site_says_connected,plugin_version,\
         outdated,wp_version,php_version,multisite,keys,has_active_key,has_next_key,refusals,\
         last_contact_utc,last_check_utc,problem\n",
    );
    for e in entries {
        let refusals: Vec<String> = e.refusals.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        let cells = [
            e.url.clone(),
            e.name.clone(),
            e.client.clone(),
            e.standing.as_str().to_string(),
            e.attention.clone(),
            e.connected_by.to_string(),
            e.site_says_connected
                .map(|b| b.to_string())
                .unwrap_or_default(),
            e.plugin_version.clone(),
            e.outdated.to_string(),
            e.wp_version.clone(),
            e.php_version.clone(),
            e.multisite.to_string(),
            e.keys.join(" "),
            e.has_active_key.to_string(),
            e.has_next_key.map(|b| b.to_string()).unwrap_or_default(),
            refusals.join(" "),
            when(e.answered_at),
            when(e.checked_at),
            e.problem.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Who holds the next key before it starts to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub kid: String,
    /// When it is due to start signing.
    pub activates_at: Option<i64>,
    /// Sites that answered recently and hold it, of all that answered recently.
    pub holding: usize,
    pub answered: usize,
    /// Those that answered recently and lack it: (site id, URL).
    pub lacking: Vec<(String, String)>,
    /// Connector sites that have not answered recently (not counted).
    pub silent: usize,
}

/// How ready the fleet is for the next key, if one is published.
pub async fn readiness(ctx: &Context) -> Result<Option<Readiness>, sqlx::Error> {
    let snapshot = ctx.keys.snapshot();
    let Some(next) = snapshot.ring.next() else {
        return Ok(None);
    };
    let now = ctx.now();
    let entries = fleet(ctx).await?;
    let (recent, silent): (Vec<&FleetEntry>, Vec<&FleetEntry>) = entries.iter().partition(|e| {
        e.answered_at
            .is_some_and(|t| now - t <= crate::domain::fleet::RECENT)
    });
    let lacking: Vec<(String, String)> = recent
        .iter()
        .filter(|e| !e.keys.contains(&next.kid))
        .map(|e| (e.site_id.clone(), e.url.clone()))
        .collect();
    Ok(Some(Readiness {
        kid: next.kid.clone(),
        activates_at: next.activates_at,
        holding: recent.len() - lacking.len(),
        answered: recent.len(),
        lacking,
        silent: silent.len(),
    }))
}

/// The entries a filter keeps: of that standing (`""`: any), whose URL,
/// name or client contains `text` (any case).
pub fn matching(entries: Vec<FleetEntry>, text: &str, state: &str) -> Vec<FleetEntry> {
    let wanted = Standing::parse(state.trim());
    let text = text.trim().to_lowercase();
    entries
        .into_iter()
        .filter(|e| {
            wanted.is_none_or(|w| e.standing == w)
                && (text.is_empty()
                    || e.url.to_lowercase().contains(&text)
                    || e.name.to_lowercase().contains(&text)
                    || e.client.to_lowercase().contains(&text))
        })
        .collect()
}

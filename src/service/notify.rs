//! Notifications of just-in-time access requests and decisions: written
//! with the step they tell of (one transaction), posted to the agency's
//! webhook by a worker of their own (a slow receiver holds up nothing
//! else), signed, retried with backoff for three days, at least once, each
//! under one idempotency key.

use serde_json::{json, Value};

use super::elevation::Elevation;
use super::Context;
use crate::domain::elevation::minutes_text;
use crate::domain::notify::{self, About};
use crate::store;

/// Write the notification of `event` about `e`, in the caller's transaction.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    event: &str,
    e: &Elevation,
    now: i64,
) -> Result<(), sqlx::Error> {
    let facts = json!({
        "event": event,
        "elevation_id": e.id,
        "email": e.email,
        "site_id": e.site_id,
        "site_name": e.site_name,
        "site_url": e.site_url,
        "role": e.role,
        "minutes": e.minutes,
        "reason": e.reason,
        "state": e.state,
        "decided_by": e.decided_by,
        "comment": e.comment,
        "break_glass": e.self_approved != 0,
        "ends_at": e.ends_at,
    });
    let id = uuid::Uuid::new_v4().to_string();
    store::notifications::insert(conn, &id, event, &facts.to_string(), now).await
}

/// How long a claim on a notification lasts: longer than one attempt.
const LEASE_SECS: i64 = 60;

/// Post what is due. Returns how many were tried.
pub async fn deliver_due(
    ctx: &Context,
    client: &reqwest::Client,
    owner: &str,
) -> Result<usize, sqlx::Error> {
    let now = ctx.now();
    if !store::notifications::any_due(&ctx.db, now).await? {
        return Ok(0);
    }
    let batch = store::notifications::claim_due(&ctx.db, owner, now, now + LEASE_SECS, 20).await?;
    for n in &batch {
        let finish = |state: &'static str, next: i64, error: String| {
            let (db, id) = (ctx.db.clone(), n.id.clone());
            async move {
                store::notifications::finish(&db, &id, owner, state, next, &error, ctx.now()).await
            }
        };
        let Some(cfg) = &ctx.config.notify else {
            finish("skipped", now, "no SSO_NOTIFY_URL is set".into()).await?;
            continue;
        };
        let facts: Value = serde_json::from_str(&n.body).unwrap_or(Value::Null);
        let field = |k: &str| facts[k].as_str().unwrap_or_default().to_string();
        let minutes = minutes_text(facts["minutes"].as_i64().unwrap_or_default());
        let (email, site_name, site_url, role, reason, decided_by, comment) = (
            field("email"),
            field("site_name"),
            field("site_url"),
            field("role"),
            field("reason"),
            field("decided_by"),
            field("comment"),
        );
        let console_url = format!("{}/admin/access", ctx.config.public_origin);
        let text = notify::text(&About {
            event: &n.event,
            email: &email,
            site_name: &site_name,
            site_url: &site_url,
            role: &role,
            minutes_text: &minutes,
            reason: &reason,
            decided_by: &decided_by,
            comment: &comment,
            console_url: &console_url,
        });
        let body = notify::body(cfg.template.as_ref(), &text, &n.id, n.created_at, facts);
        let sent_at = ctx.now();
        let answer = client
            .post(&cfg.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                notify::SIGNATURE_HEADER,
                notify::signature(cfg.secret.expose().as_bytes(), sent_at, &body),
            )
            .header(notify::IDEMPOTENCY_HEADER, &n.id)
            .body(body)
            .send()
            .await;
        let error = match answer {
            Ok(r) if r.status().is_success() => {
                finish("done", now, String::new()).await?;
                continue;
            }
            Ok(r) => format!("the receiver answered {}", r.status()),
            Err(e) => format!("the receiver could not be reached: {e}"),
        };
        tracing::warn!(id = %n.id, event = %n.event, attempts = n.attempts, %error, "a notification was not delivered");
        if ctx.now() - n.created_at >= notify::GIVE_UP_SECS {
            finish("failed", now, error).await?;
        } else {
            finish("pending", ctx.now() + notify::backoff(n.attempts), error).await?;
        }
    }
    Ok(batch.len())
}

/// The notifications' worker: runs until the process stops.
pub fn spawn_worker(ctx: Context) {
    tokio::spawn(async move {
        let owner = uuid::Uuid::new_v4().to_string();
        let client = super::messages::http_client();
        loop {
            match deliver_due(&ctx, &client, &owner).await {
                Ok(0) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot send the notifications");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
        }
    });
}

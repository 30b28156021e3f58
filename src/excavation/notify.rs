//! Owner notifications of excavation tickets (issue 4): when a ticket reaches its owners
//! (`owners_notified`, or `emergency`), each owner gets one notification per channel its
//! contact data names — e-mail (the owner's address), SMS (its emergency phone) and a
//! webhook (a URL the owner registered through `PUT /excavation/owners/{id}/channels`) —
//! carrying the message text, the ticket id and the owner's response deadline.
//!
//! Notifications are written to a durable outbox (`notification_outbox`, migration 0005,
//! through [`TicketStore`](crate::store::tickets::TicketStore)), each audited. Delivery is
//! pluggable: the [`spawn`]ed worker POSTs webhooks (at least once: a receiver deduplicates
//! by the `Idempotency-Key` header) with retries and backoff; e-mail and SMS rows stay
//! `pending` for an external gateway, which reads them from `GET /excavation/notifications`
//! and reports back through `POST /excavation/notifications/{id}/status`. The service
//! itself sends no e-mail or SMS.

use super::calendar::CalendarSettings;
use super::tickets::{OwnerResponse, Ticket, TicketState};
use super::ExcavationError;
use crate::model::{Actor, Clock, Role};
use crate::store::tickets::NotificationOutcome;
use crate::store::SharedStore;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

crate::string_enum! {
    /// How a notification reaches an owner.
    pub enum Channel {
        Email = "email",
        Sms = "sms",
        Webhook = "webhook",
    }
}

crate::string_enum! {
    /// Where a notification is: `pending` (waiting for the worker or the gateway),
    /// `delivered`, or `failed` (given up).
    pub enum DeliveryStatus {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

/// Delivery settings (`[notifications]` in `data/excavation.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// How often the worker looks for due webhooks, s (it is also woken by submissions).
    pub poll_seconds: u64,
    /// Timeout of one webhook POST, ms.
    pub webhook_timeout_ms: u64,
    /// Attempts before a webhook is marked failed.
    pub max_attempts: i32,
    /// Retry `n` waits `2^(n-1) × retry_base_seconds`.
    pub retry_base_seconds: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            poll_seconds: 5,
            webhook_timeout_ms: 5000,
            max_attempts: 5,
            retry_base_seconds: 10,
        }
    }
}

impl NotifySettings {
    /// Checks the ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.poll_seconds) {
            return Err("poll_seconds must be 1..3600".into());
        }
        if !(100..=60_000).contains(&self.webhook_timeout_ms) {
            return Err("webhook_timeout_ms must be 100..60000".into());
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err("max_attempts must be 1..20".into());
        }
        if !(1..=3600).contains(&self.retry_base_seconds) {
            return Err("retry_base_seconds must be 1..3600".into());
        }
        Ok(())
    }

    /// How long to wait after failed attempt `attempts` (1-based).
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = attempts.clamp(1, 16) - 1;
        Duration::seconds((self.retry_base_seconds << exp).min(86_400) as i64)
    }

    /// How long a claimed webhook is reserved for one worker: the POST's timeout plus slack.
    pub fn lease(&self) -> Duration {
        Duration::milliseconds(self.webhook_timeout_ms as i64) + Duration::seconds(30)
    }
}

/// An owner's notification addresses beyond its owner record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerChannels {
    /// Set from the path; ignored in a request body.
    #[serde(default)]
    pub owner_id: i64,
    /// http(s) URL the ticket notifications are POSTed to (JSON); none: no webhook.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// E-mail address for notifications instead of the owner record's.
    #[serde(default)]
    pub email: Option<String>,
    /// Mobile number for SMS instead of the owner record's emergency phone.
    #[serde(default)]
    pub sms: Option<String>,
}

impl OwnerChannels {
    /// Checks the addresses' shapes.
    pub fn validate(&self) -> Result<(), ExcavationError> {
        let bad = |m: String| Err(ExcavationError::Invalid(m));
        if let Some(u) = &self.webhook_url {
            if u.len() > 2000 {
                return bad("webhook_url is longer than 2000 characters".into());
            }
            match reqwest::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                Ok(url) => {
                    return bad(format!(
                        "webhook_url must be an http or https URL with a host, not '{}:'",
                        url.scheme()
                    ))
                }
                Err(e) => return bad(format!("webhook_url is not a URL: {e}")),
            }
        }
        if let Some(e) = &self.email {
            if e.len() > 200 || !e.contains('@') || e.chars().any(char::is_whitespace) {
                return bad("email is not an e-mail address".into());
            }
        }
        if let Some(s) = &self.sms {
            if s.is_empty()
                || s.len() > 40
                || !s.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
            {
                return bad("sms may hold only digits, spaces and + - ( ), at most 40".into());
            }
        }
        Ok(())
    }
}

/// A notification to write to the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewNotification {
    pub ticket_id: i64,
    pub owner_id: i64,
    pub channel: Channel,
    pub address: String,
    pub message: String,
    pub due_at: DateTime<Utc>,
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    pub ticket_id: i64,
    pub owner_id: i64,
    /// email, sms or webhook.
    #[schema(value_type = String)]
    pub channel: Channel,
    /// The e-mail address, phone number or URL (URLs are shown to operators only).
    pub address: String,
    pub message: String,
    /// The owner's response deadline on the ticket.
    #[schema(value_type = String, format = DateTime)]
    pub due_at: DateTime<Utc>,
    /// pending, delivered or failed.
    #[schema(value_type = String)]
    pub status: DeliveryStatus,
    pub attempts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the worker tries a pending webhook next.
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// Hides a webhook URL (which may carry the owner's token) from callers below operator.
    pub fn redacted_for(mut self, actor: &Actor) -> Notification {
        if self.channel == Channel::Webhook && !actor.has(Role::Operator) {
            self.address = "(webhook)".into();
        }
        self
    }
}

/// The text sent to an owner: the ticket, the work, the owner's pipelines and the deadline
/// (in local time), in Chinese and English.
pub fn message(t: &Ticket, o: &OwnerResponse, cal: &CalendarSettings) -> String {
    message_parts(t, o, cal).join(&t.id.to_string())
}

/// [`message`] cut where the ticket id goes: joined with the id, the parts are the text.
/// A submission writes its notifications in the same statement that assigns the ticket
/// its id, so the PostGIS store joins them there (`array_to_string(parts, id)`); user text
/// is never searched for a placeholder, so no input can forge the id.
pub fn message_parts(t: &Ticket, o: &OwnerResponse, cal: &CalendarSettings) -> Vec<String> {
    let due = cal
        .offset()
        .map(|off| {
            o.due_at
                .with_timezone(&off)
                .format("%Y-%m-%d %H:%M %:z")
                .to_string()
        })
        .unwrap_or_else(|_| o.due_at.to_rfc3339());
    let who = match &t.requester.company {
        Some(c) => format!("{c} / {}", t.requester.name),
        None => t.requester.name.clone(),
    };
    let pipes = o
        .owner
        .pipeline_ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let r = &t.request;
    let (phone, sd, ed, wt, m) = (
        &t.requester.phone,
        r.start_date,
        r.end_date,
        &r.work_type,
        r.method,
    );
    let (top, bot, sev) = (r.top_depth_m, r.bottom_depth_m, o.owner.worst_severity);
    let em = if t.state == TicketState::Emergency {
        " (EMERGENCY)"
    } else {
        ""
    };
    vec![
        "【开挖工单 #".to_string(),
        format!(
            "】{who}（{phone}）将于 {sd} 至 {ed} 进行 {wt}（{m}，深 {top}–{bot} m），涉及贵单位管线 {pipes}（最严重：{sev}）。\
             请于 {due} 前现场标记或答复无冲突。\n\
             Lifeline excavation ticket #"
        ),
        format!(
            "{em}: {wt} by {who} (tel {phone}), {sd} to {ed}, method {m}, depth {top}–{bot} m. \
             Your pipelines {pipes} are affected (worst: {sev}). Mark them or answer clear by {due}: \
             POST /excavation/tickets/"
        ),
        "/responses.".to_string(),
    ]
}

/// One owner's notifications before its registered channels are applied: the owner
/// record's addresses and the message (cut at the ticket id, [`message_parts`]). A store
/// resolves drafts against `owner_channels` inside the submission's own transaction
/// ([`Draft::resolve`], or the same rule in SQL), so a channel change counts from the next
/// submission on, on every instance, with no cache to invalidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    /// Position among the ticket's owners: the outbox rows keep this order.
    pub ord: usize,
    pub owner_id: i64,
    /// The owner record's e-mail (a registered address replaces it).
    pub email: Option<String>,
    /// The owner record's emergency phone, if not blank (a registered number replaces it).
    pub sms: Option<String>,
    pub parts: Vec<String>,
    pub due_at: DateTime<Utc>,
}

impl Draft {
    /// The notifications this owner gets with its registered channels `c`: e-mail
    /// (registered, else the owner's address), SMS (registered, else the emergency phone)
    /// and the webhook if one is registered, in that order.
    pub fn resolve(&self, ticket_id: i64, c: Option<&OwnerChannels>) -> Vec<NewNotification> {
        let email = c
            .and_then(|c| c.email.clone())
            .or_else(|| self.email.clone());
        let sms = c.and_then(|c| c.sms.clone()).or_else(|| self.sms.clone());
        let webhook = c.and_then(|c| c.webhook_url.clone());
        let text = self.parts.join(&ticket_id.to_string());
        [
            (Channel::Email, email),
            (Channel::Sms, sms),
            (Channel::Webhook, webhook),
        ]
        .into_iter()
        .filter_map(|(channel, address)| {
            Some(NewNotification {
                ticket_id,
                owner_id: self.owner_id,
                channel,
                address: address?,
                message: text.clone(),
                due_at: self.due_at,
            })
        })
        .collect()
    }
}

/// The drafts of a ticket's notifications: one per owner when the ticket reaches its owners
/// (`owners_notified` or `emergency`), none otherwise.
pub fn drafts(t: &Ticket, cal: &CalendarSettings) -> Vec<Draft> {
    if !matches!(
        t.state,
        TicketState::OwnersNotified | TicketState::Emergency
    ) {
        return vec![];
    }
    t.owners
        .iter()
        .enumerate()
        .map(|(ord, o)| Draft {
            ord,
            owner_id: o.owner.owner_id,
            email: o.owner.email.clone(),
            sms: Some(o.owner.emergency_phone.clone()).filter(|p| !p.trim().is_empty()),
            parts: message_parts(t, o, cal),
            due_at: o.due_at,
        })
        .collect()
}

/// The notifications a ticket calls for: per owner, e-mail (registered override, else the
/// owner's address), SMS (override, else the emergency phone) and the webhook if one is
/// registered. Nothing for a ticket that notifies no owner.
pub fn plan(
    t: &Ticket,
    channels: &HashMap<i64, OwnerChannels>,
    cal: &CalendarSettings,
) -> Vec<NewNotification> {
    drafts(t, cal)
        .iter()
        .flat_map(|d| d.resolve(t.id, channels.get(&d.owner_id)))
        .collect()
}

/// The JSON a webhook receives.
pub fn webhook_body(n: &Notification) -> serde_json::Value {
    serde_json::json!({
        "notification_id": n.id,
        "ticket_id": n.ticket_id,
        "owner_id": n.owner_id,
        "due_at": n.due_at,
        "message": n.message,
        "ticket": format!("/excavation/tickets/{}", n.ticket_id),
        "respond": format!("/excavation/tickets/{}/responses", n.ticket_id),
    })
}

/// The actor the worker records in the audit log.
fn worker_actor() -> Actor {
    Actor {
        name: "notifier".into(),
        key_id: None,
        role: Role::Admin,
    }
}

/// POSTs one webhook; `Err` carries a short reason.
async fn post(client: &reqwest::Client, n: &Notification) -> Result<(), String> {
    let resp = client
        .post(&n.address)
        .header("Idempotency-Key", format!("lifeline-notification-{}", n.id))
        .json(&webhook_body(n))
        .send()
        .await
        .map_err(|e| {
            // reqwest's Display omits the cause ("error sending request"); keep it short.
            let mut m = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                m = format!("{m}: {src}");
            }
            m.chars().take(300).collect::<String>()
        })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered HTTP {}", resp.status().as_u16()))
    }
}

/// One round of the worker: claims due webhooks, POSTs them, records the outcomes. Returns
/// how many it handled.
pub async fn deliver_due(
    store: &SharedStore,
    client: &reqwest::Client,
    settings: &NotifySettings,
    clock: &Clock,
    limit: usize,
) -> Result<usize, crate::store::StoreError> {
    let now = clock.now();
    let batch = store
        .claim_webhooks(now, now + settings.lease(), limit)
        .await?;
    let actor = worker_actor();
    for n in &batch {
        let outcome = match post(client, n).await {
            Ok(()) => NotificationOutcome::Delivered,
            Err(e) if n.attempts >= settings.max_attempts => NotificationOutcome::Failed(e),
            Err(e) => NotificationOutcome::Retry {
                error: e,
                at: clock.now() + settings.backoff(n.attempts),
            },
        };
        if let Err(e) = store
            .finish_notification(n.id, &outcome, &actor, clock.now())
            .await
        {
            tracing::warn!(notification = n.id, error = %e, "could not record a webhook outcome");
        }
    }
    Ok(batch.len())
}

/// Starts the delivery worker: it runs until aborted, woken by [`super::Excavation::wake`]
/// after each submission and every `poll_seconds` otherwise.
pub fn spawn(
    store: SharedStore,
    ex: std::sync::Arc<super::Excavation>,
    clock: Clock,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let settings = ex.notifications.clone();
        let client = match reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(
                settings.webhook_timeout_ms,
            ))
            // A receiver's redirect is not followed: the owner registered this URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client could not be built; webhooks stay pending");
                return;
            }
        };
        const BATCH: usize = 32;
        loop {
            let handled = match deliver_due(&store, &client, &settings, &clock, BATCH).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "notification worker: store error");
                    0
                }
            };
            if handled < BATCH {
                tokio::select! {
                    _ = ex.wake.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(settings.poll_seconds)) => {}
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_backoff() {
        let s = crate::excavation::Excavation::builtin().notifications;
        s.validate().unwrap();
        assert_eq!(s.backoff(1), Duration::seconds(10));
        assert_eq!(s.backoff(3), Duration::seconds(40));
        let mut bad = s.clone();
        bad.max_attempts = 0;
        assert!(bad.validate().unwrap_err().contains("max_attempts"));
    }

    #[test]
    fn channels_are_validated() {
        let c = |w: &str| OwnerChannels {
            owner_id: 1,
            webhook_url: Some(w.into()),
            email: None,
            sms: None,
        };
        assert!(c("https://gas.example.cn/hooks/811").validate().is_ok());
        assert!(c("ftp://x.cn/")
            .validate()
            .unwrap_err()
            .to_string()
            .contains("http"));
        assert!(c("not a url").validate().is_err());
        let mut s = c("http://127.0.0.1:9/x");
        s.sms = Some("call me".into());
        assert!(s.validate().unwrap_err().to_string().contains("sms"));
    }
}

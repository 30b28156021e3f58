//! Owner notifications of excavation tickets (issue 4): when a ticket reaches its owners
//! (`owners_notified`, or `emergency`), each owner gets one notification per channel its
//! contact data names — e-mail (the owner's address), SMS (its emergency phone) and a
//! webhook (a URL the owner registered through `PUT /excavation/owners/{id}/channels`) —
//! carrying the message text, the ticket id and the owner's response deadline.
//!
//! Notifications are written to a durable outbox (`notification_outbox`, migration 0005,
//! through [`TicketStore`](lifeline_store::tickets::TicketStore)), each audited. Delivery is
//! pluggable: the [`spawn`]ed worker POSTs webhooks (at least once: a receiver deduplicates
//! by the `Idempotency-Key` header) with retries and backoff; e-mail and SMS rows stay
//! `pending` for an external gateway, which reads them from `GET /excavation/notifications`
//! and reports back through `POST /excavation/notifications/{id}/status`. The service
//! itself sends no e-mail or SMS.

use chrono::Duration;
use lifeline_model::calendar::CalendarSettings;
use lifeline_model::notification::{
    Draft, NewNotification, Notification, NotificationOutcome, OwnerChannels,
};
use lifeline_model::ticket::{OwnerResponse, Ticket, TicketState};
use lifeline_model::{Actor, Clock, Role};
use lifeline_store::tickets::TicketStore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

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
    store: &dyn TicketStore,
    client: &reqwest::Client,
    settings: &NotifySettings,
    clock: &Clock,
    limit: usize,
) -> Result<usize, lifeline_store::StoreError> {
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
    store: Arc<dyn TicketStore>,
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
            let handled = match deliver_due(&*store, &client, &settings, &clock, BATCH).await {
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
    use lifeline_model::ticket::fixtures::*;
    use lifeline_model::ticket::TicketType;

    #[test]
    fn settings_and_backoff() {
        let s = crate::Excavation::builtin().notifications;
        s.validate().unwrap();
        assert_eq!(s.backoff(1), Duration::seconds(10));
        assert_eq!(s.backoff(3), Duration::seconds(40));
        let mut bad = s.clone();
        bad.max_attempts = 0;
        assert!(bad.validate().unwrap_err().contains("max_attempts"));
    }

    #[test]
    fn owners_get_a_notification_per_channel() {
        use lifeline_model::notification::{Channel, OwnerChannels};
        let ex = crate::Excavation::builtin();
        let mut t = ticket(2, TicketType::Normal);
        t.owners[0].owner.email = Some("gas@example.cn".into());
        let mut channels = std::collections::HashMap::new();
        channels.insert(
            2,
            OwnerChannels {
                owner_id: 2,
                webhook_url: Some("http://127.0.0.1:9/hook".into()),
                email: None,
                sms: Some("139 0000 0000".into()),
            },
        );
        let p = plan(&t, &channels, &ex.tickets.calendar);
        let got: Vec<(i64, Channel, &str)> = p
            .iter()
            .map(|n| (n.owner_id, n.channel, n.address.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Channel::Email, "gas@example.cn"),
                (1, Channel::Sms, "1"),
                (2, Channel::Sms, "139 0000 0000"),
                (2, Channel::Webhook, "http://127.0.0.1:9/hook"),
            ]
        );
        let n = &p[0];
        assert_eq!(n.ticket_id, 7);
        assert_eq!(n.due_at, t.owners[0].due_at);
        assert!(
            n.message.contains("#7") && n.message.contains("Mark them"),
            "{}",
            n.message
        );
        // The deadline is written in Beijing time: due 2026-11-24 09:00 UTC = 17:00 +08:00.
        assert!(
            n.message.contains("2026-11-24 17:00 +08:00"),
            "{}",
            n.message
        );
        // A ticket that reached no owner notifies nobody.
        assert!(plan(
            &ticket(0, TicketType::Normal),
            &channels,
            &ex.tickets.calendar
        )
        .is_empty());
    }

    #[test]
    fn notification_drafts_resolve_to_the_planned_messages() {
        use crate::notify;
        use lifeline_model::notification::{Channel, OwnerChannels};
        let cal = crate::Excavation::builtin().tickets.calendar;
        let mut t = ticket(2, TicketType::Normal);
        // User text holding digits and '#' must not disturb where the id goes.
        t.request.work_type = "trench #12 for 7".into();
        t.id = 4711;
        let drafts = notify::drafts(&t, &cal);
        assert_eq!(drafts.len(), 2);
        for (d, o) in drafts.iter().zip(&t.owners) {
            let text = notify::message(&t, o, &cal);
            assert_eq!(d.parts.join("4711"), text);
            assert_eq!(text.matches("4711").count(), 3, "{text}");
            assert!(text.contains("【开挖工单 #4711】"), "{text}");
            assert!(
                text.contains("excavation ticket #4711: trench #12 for 7"),
                "{text}"
            );
            assert!(
                text.ends_with("POST /excavation/tickets/4711/responses."),
                "{text}"
            );
            assert_eq!(d.due_at, o.due_at);
        }
        // Registered channels replace the owner record's e-mail and phone; a webhook only
        // when registered; the order is e-mail, SMS, webhook, owner by owner.
        let c = OwnerChannels {
            owner_id: 2,
            webhook_url: Some("https://gas.example.cn/811".into()),
            email: Some("811@gas.example.cn".into()),
            sms: None,
        };
        let channels = [(2, c.clone())].into_iter().collect();
        let plan = notify::plan(&t, &channels, &cal);
        let got: Vec<_> = plan
            .iter()
            .map(|n| (n.owner_id, n.channel, n.address.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Channel::Sms, "1"),
                (2, Channel::Email, "811@gas.example.cn"),
                (2, Channel::Sms, "1"),
                (2, Channel::Webhook, "https://gas.example.cn/811"),
            ]
        );
        assert_eq!(plan[1].message, notify::message(&t, &t.owners[1], &cal));
        assert_eq!(drafts[1].resolve(t.id, Some(&c)), plan[1..].to_vec());
        // A ticket that reaches no owner notifies nobody.
        assert!(notify::drafts(&ticket(0, TicketType::Normal), &cal).is_empty());
    }
}

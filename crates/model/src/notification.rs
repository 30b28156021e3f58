//! The owners' notification outbox as stored: channels, delivery states, an owner's
//! registered addresses, notifications before and after they are written, how a delivery
//! ended, and the filters of the outbox's lists.

use super::{Actor, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

/// An owner's notification address that is not of its kind's shape; the message names
/// the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ChannelError(pub String);

impl OwnerChannels {
    /// Checks the addresses' shapes.
    pub fn validate(&self) -> Result<(), ChannelError> {
        let bad = |m: String| Err(ChannelError(m));
        if let Some(u) = &self.webhook_url {
            if u.len() > 2000 {
                return bad("webhook_url is longer than 2000 characters".into());
            }
            match url::Url::parse(u) {
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

/// Which notifications a list returns (oldest first).
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub ticket_id: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub id: Option<i64>,
    pub limit: usize,
}

/// How a delivery attempt (or an external gateway's report) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationOutcome {
    Delivered,
    /// Failed for good.
    Failed(String),
    /// Failed; try again at `at`.
    Retry {
        error: String,
        at: DateTime<Utc>,
    },
}

impl NotificationOutcome {
    /// The stored status, error, retry time and audit action of this outcome.
    pub fn parts(
        &self,
    ) -> (
        DeliveryStatus,
        Option<String>,
        Option<DateTime<Utc>>,
        &'static str,
    ) {
        match self {
            NotificationOutcome::Delivered => (
                DeliveryStatus::Delivered,
                None,
                None,
                "notification_delivered",
            ),
            NotificationOutcome::Failed(e) => (
                DeliveryStatus::Failed,
                Some(e.clone()),
                None,
                "notification_failed",
            ),
            NotificationOutcome::Retry { error, at } => (
                DeliveryStatus::Pending,
                Some(error.clone()),
                Some(*at),
                "notification_retry",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

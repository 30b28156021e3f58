//! Persistence of excavation tickets (issue 4): the [`TicketStore`] sub-trait of
//! [`Store`](super::Store), over the `excavation_tickets` table of migration 0002, and what
//! both implementations share (the ticket document's decoding, the audit details, the
//! stale-save error). The implementations are beside this file: `postgis.rs` (SQL in
//! `postgis.sql`) and `gpkg.rs` (SQL in `gpkg.sql`).
//!
//! A ticket is stored as one JSON document (on PostGIS a `json` column, LZ4-compressed,
//! migration 0007: SQL never looks inside it) plus the columns that are filtered or kept
//! unique. Every write is one transaction that also appends the audit entry, so the audit
//! log holds every state change; a submission also writes its owners' notifications in
//! the same transaction ([`TicketStore::submit_ticket`]). Saves are optimistic: a save
//! names the version it read, and a concurrent change makes it a `Conflict` instead of a
//! lost update. Submission is idempotent per (submitter, `Idempotency-Key`): a second
//! insert with the same key writes nothing and returns the first ticket.
//!
//! The owners' notification outbox (`notification_outbox`, `owner_channels`, migration
//! 0005; see the excavation capability's `notify`) lives here too: each new notification and each
//! delivery outcome is written together with its audit entry.

mod gpkg;
mod postgis;

use super::{BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::notification::{
    Draft, NewNotification, Notification, NotificationFilter, NotificationOutcome, OwnerChannels,
};
use lifeline_model::ticket::{Ticket, TicketFilter};
use lifeline_model::Actor;

/// What [`TicketStore::submit_ticket`] did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The new ticket, or the earlier one with the same idempotency key.
    pub ticket: Ticket,
    /// False: an earlier submission with the same key, returned unchanged.
    pub created: bool,
    /// Webhook notifications written now.
    pub webhooks: usize,
}

/// Ticket persistence; see the module docs for the contract.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Inserts `t` (its id is assigned) and audits the submission, and writes its owners'
    /// notifications (`drafts` resolved against the registered channels as they stand in
    /// the same transaction, [`Draft::resolve`]) each with its audit entry: all or nothing,
    /// one transaction. When the submitter already has a ticket with the same idempotency
    /// key it writes nothing and returns that ticket. Returns the ticket, whether it was
    /// created, and how many webhook notifications were written (to wake the worker).
    async fn submit_ticket(
        &self,
        t: Ticket,
        drafts: Vec<Draft>,
        actor: &Actor,
    ) -> StoreResult<Submitted>;

    /// One ticket by id.
    async fn ticket(&self, id: i64) -> StoreResult<Option<Ticket>>;

    /// Tickets newest first.
    async fn tickets(&self, filter: &TicketFilter) -> StoreResult<Vec<Ticket>>;

    /// Saves a changed ticket if the stored one still has version `t.version` (what the
    /// caller read), and audits `action` with `detail`; returns it with the new version.
    /// A concurrent change is a `Conflict`; a missing ticket `NotFound`-like `Conflict`.
    async fn save_ticket(
        &self,
        t: &Ticket,
        actor: &Actor,
        action: &str,
        detail: serde_json::Value,
    ) -> StoreResult<Ticket>;

    /// The registered notification channels of these owners (owners without any are absent).
    async fn owner_channels(&self, owner_ids: &[i64]) -> StoreResult<Vec<OwnerChannels>>;

    /// Registers (replaces) an owner's notification channels at `now`, audited.
    async fn set_owner_channels(
        &self,
        c: &OwnerChannels,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Writes new notifications to the outbox at `now`, each with an audit entry; ones
    /// already there (same ticket, owner and channel) are skipped. Returns those written.
    async fn enqueue_notifications(
        &self,
        list: &[NewNotification],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Notification>>;

    /// Notifications, oldest first.
    async fn notifications(&self, f: &NotificationFilter) -> StoreResult<Vec<Notification>>;

    /// Reserves up to `limit` pending webhooks due at `now` until `until` (counting the
    /// attempt) and returns them.
    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Notification>>;

    /// Records the outcome of a pending notification at `now`, audited; `None` when there
    /// is no pending notification `id`.
    async fn finish_notification(
        &self,
        id: i64,
        outcome: &NotificationOutcome,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Notification>>;
}

fn decode(doc: serde_json::Value) -> StoreResult<Ticket> {
    serde_json::from_value(doc).map_err(|e| {
        StoreError::Backend(BackendError::with_source(
            format!("stored ticket does not decode: {e}"),
            e,
        ))
    })
}

fn stale(id: i64) -> StoreError {
    StoreError::Conflict(format!(
        "ticket {id} was changed by someone else meanwhile (or does not exist); read it again and retry"
    ))
}

fn submit_detail(t: &Ticket) -> serde_json::Value {
    serde_json::json!({
        "state": t.state, "ticket_type": t.ticket_type, "owners": t.owners.len(),
        "idempotency_key": t.idempotency_key,
        "work_type": t.request.work_type, "start_date": t.request.start_date,
        "end_date": t.request.end_date, "geometry": t.request.geometry
    })
}

fn channels_detail(c: &OwnerChannels) -> serde_json::Value {
    // The URL may carry the owner's token: the audit says whether one is set, not what.
    serde_json::json!({
        "webhook": c.webhook_url.is_some(), "email": c.email, "sms": c.sms
    })
}

fn parse_enum<T: std::str::FromStr>(v: &str) -> StoreResult<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.parse::<T>().map_err(|e| {
        StoreError::Backend(BackendError::with_source(
            format!("stored notification: {e}"),
            e,
        ))
    })
}

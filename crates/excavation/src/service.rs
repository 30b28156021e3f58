//! The ticket operations the HTTP layer calls: each reads what it needs, applies the pure
//! state machine of [`super::tickets`], and saves through the store (which audits). Access
//! rules live here so every entry point applies the same ones.
//!
//! Submission also writes the owners' notifications to the outbox ([`super::notify`]), in
//! the ticket's own transaction, and wakes the delivery worker.

use super::check::check;
use super::notify;
use super::{Excavation, ExcavationError};
use chrono::SubsecRound;
use lifeline_index::SpatialIndex;
use lifeline_model::access::{require, Forbidden};
use lifeline_model::check_result::{CheckRequest, CheckResult};
use lifeline_model::notification::{
    Channel, DeliveryStatus, Notification, NotificationFilter, NotificationOutcome, OwnerChannels,
};
use lifeline_model::ticket::{
    can_see, ResponseRequest, Ticket, TicketFilter, TicketRequest, TicketState, TransitionRequest,
};
use lifeline_model::{Actor, Clock, Layer, Role};
use lifeline_store::tickets::TicketStore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// Largest `Idempotency-Key` accepted, characters.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

fn forbid(e: Forbidden) -> ExcavationError {
    ExcavationError::Forbidden(e.to_string())
}

/// `POST /excavation/check`: contractors and above.
pub fn run_check(
    index: &SpatialIndex,
    ex: &Excavation,
    clock: &Clock,
    actor: &Actor,
    req: &CheckRequest,
) -> Result<CheckResult, ExcavationError> {
    require(actor, Role::Contractor).map_err(forbid)?;
    check(index, ex, req, clock.now())
}

/// Submits a ticket. Returns the ticket and whether it was created now (false: an earlier
/// submission with the same idempotency key, returned unchanged).
pub async fn submit(
    store: &dyn TicketStore,
    index: &SpatialIndex,
    ex: &Excavation,
    clock: &Clock,
    actor: &Actor,
    body: serde_json::Value,
    idempotency_key: Option<String>,
) -> Result<(Ticket, bool), ExcavationError> {
    require(actor, Role::Contractor).map_err(forbid)?;
    if let Some(k) = &idempotency_key {
        if k.trim().is_empty()
            || k.chars().count() > MAX_IDEMPOTENCY_KEY
            || k.chars().any(char::is_control)
        {
            return Err(ExcavationError::BadRequest(format!(
                "Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} printable characters"
            )));
        }
    }
    let req = TicketRequest::from_json(body)?;
    // A retry runs the check again but writes nothing: the store returns the ticket of
    // the first submission unchanged.
    // Milliseconds, as both stores keep them: the ticket's deadlines and the outbox's
    // (a timestamp column) then agree to the digit.
    let now = clock.now().trunc_subsecs(3);
    let result = check(index, ex, &req.dig, now)?;
    let t = Ticket::new(&req, result, actor, idempotency_key, &ex.tickets, now)?;
    // One transaction writes the ticket, its audit entry and its owners' notifications
    // (resolved against the owners' registered channels inside it).
    let drafts = notify::drafts(&t, &ex.tickets.calendar);
    let done = store.submit_ticket(t, drafts, actor).await?;
    if done.created {
        if done.webhooks > 0 {
            ex.wake.notify_one();
        }
        return Ok((done.ticket, true));
    }
    let out = same_or_conflict(done.ticket, &req)?;
    // A retry: the outbox skips what it holds, so a ticket whose notifications are missing
    // (stored by an older version, which wrote them separately) gets them now.
    let channels = store.owner_channels(&owner_ids(&out.0)).await?;
    notify_owners(store, ex, clock, &out.0, actor, channels).await?;
    Ok(out)
}

fn owner_ids(t: &Ticket) -> Vec<i64> {
    t.owners.iter().map(|o| o.owner.owner_id).collect()
}

/// Writes the notifications a ticket calls for to the outbox and wakes the worker.
async fn notify_owners(
    store: &dyn TicketStore,
    ex: &Excavation,
    clock: &Clock,
    t: &Ticket,
    actor: &Actor,
    channels: Vec<OwnerChannels>,
) -> Result<Vec<Notification>, ExcavationError> {
    if t.owners.is_empty() {
        return Ok(vec![]);
    }
    let channels: HashMap<i64, OwnerChannels> =
        channels.into_iter().map(|c| (c.owner_id, c)).collect();
    let plan = notify::plan(t, &channels, &ex.tickets.calendar);
    let written = store
        .enqueue_notifications(&plan, actor, clock.now())
        .await?;
    if written.iter().any(|n| n.channel == Channel::Webhook) {
        ex.wake.notify_one();
    }
    Ok(written)
}

fn same_or_conflict(t: Ticket, req: &TicketRequest) -> Result<(Ticket, bool), ExcavationError> {
    if t.request_hash == req.hash() {
        Ok((t, false))
    } else {
        Err(ExcavationError::Conflict(format!(
            "Idempotency-Key was already used for ticket {} with a different request body",
            t.id
        )))
    }
}

async fn load_visible(
    store: &dyn TicketStore,
    actor: &Actor,
    id: i64,
) -> Result<Ticket, ExcavationError> {
    require(actor, Role::Contractor).map_err(forbid)?;
    let t = store.ticket(id).await?;
    match t {
        // Another contractor's ticket is reported missing: its existence is not theirs to know.
        Some(t) if can_see(actor, &t) => Ok(t),
        _ => Err(ExcavationError::NotFound(format!(
            "excavation ticket {id} does not exist"
        ))),
    }
}

/// Saves what time changed (expiry) before a ticket is shown or acted on.
async fn refreshed(
    store: &dyn TicketStore,
    clock: &Clock,
    mut t: Ticket,
) -> Result<Ticket, ExcavationError> {
    let from = t.state;
    if t.refresh(clock.now()) {
        let system = Actor {
            name: "system".into(),
            key_id: None,
            role: Role::Admin,
        };
        let detail = serde_json::json!({"from": from, "to": t.state, "reason": "validity ended"});
        match store
            .save_ticket(&t, &system, "ticket_transition", detail)
            .await
        {
            Ok(saved) => t = saved,
            // Someone else saved first; their version is as current as ours.
            Err(lifeline_store::StoreError::Conflict(_)) => {
                if let Some(fresh) = store.ticket(t.id).await? {
                    t = fresh;
                    t.refresh(clock.now());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(t)
}

/// One ticket, if the caller may see it.
pub async fn get(
    store: &dyn TicketStore,
    clock: &Clock,
    actor: &Actor,
    id: i64,
) -> Result<Ticket, ExcavationError> {
    let t = load_visible(store, actor, id).await?;
    refreshed(store, clock, t).await
}

/// A ticket with the notifications sent to its owners (`GET /excavation/tickets/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// One per owner and channel; webhook URLs are shown to operators only.
    pub notifications: Vec<Notification>,
}

/// Most notifications one ticket view or list returns.
pub const MAX_NOTIFICATIONS: usize = 1000;

/// One ticket and its notifications, if the caller may see it.
pub async fn view(
    store: &dyn TicketStore,
    clock: &Clock,
    actor: &Actor,
    id: i64,
) -> Result<TicketView, ExcavationError> {
    let ticket = get(store, clock, actor, id).await?;
    let notifications = store
        .notifications(&NotificationFilter {
            ticket_id: Some(id),
            limit: MAX_NOTIFICATIONS,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|n| n.redacted_for(actor))
        .collect();
    Ok(TicketView {
        ticket,
        notifications,
    })
}

/// The outbox for operators (and the e-mail/SMS gateway, which holds an operator key).
pub async fn notifications(
    store: &dyn TicketStore,
    actor: &Actor,
    ticket_id: Option<i64>,
    status: Option<DeliveryStatus>,
    limit: Option<usize>,
) -> Result<Vec<Notification>, ExcavationError> {
    require(actor, Role::Operator).map_err(forbid)?;
    let limit = lifeline_model::page_limit(limit, 100, MAX_NOTIFICATIONS)
        .map_err(|e| ExcavationError::BadRequest(e.to_string()))?;
    Ok(store
        .notifications(&NotificationFilter {
            ticket_id,
            status,
            id: None,
            limit,
        })
        .await?)
}

/// The body of `POST /excavation/notifications/{id}/status`: an external gateway's report.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryReport {
    /// delivered or failed.
    #[schema(value_type = String, example = "delivered")]
    pub status: DeliveryStatus,
    #[serde(default)]
    pub error: Option<String>,
}

/// Records a gateway's delivery report for a pending e-mail or SMS notification.
pub async fn report_delivery(
    store: &dyn TicketStore,
    clock: &Clock,
    actor: &Actor,
    id: i64,
    r: &DeliveryReport,
) -> Result<Notification, ExcavationError> {
    require(actor, Role::Operator).map_err(forbid)?;
    let outcome = match (r.status, &r.error) {
        (DeliveryStatus::Delivered, _) => NotificationOutcome::Delivered,
        (DeliveryStatus::Failed, e) => NotificationOutcome::Failed(
            e.clone()
                .unwrap_or_else(|| "reported failed by the gateway".into())
                .chars()
                .take(500)
                .collect(),
        ),
        (DeliveryStatus::Pending, _) => {
            return Err(ExcavationError::Invalid(
                "status must be delivered or failed".into(),
            ))
        }
    };
    let current = store
        .notifications(&NotificationFilter {
            id: Some(id),
            limit: 1,
            ..Default::default()
        })
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ExcavationError::NotFound(format!("notification {id} does not exist")))?;
    if current.channel == Channel::Webhook {
        return Err(ExcavationError::Conflict(format!(
            "notification {id} is a webhook, delivered by the service itself"
        )));
    }
    store
        .finish_notification(id, &outcome, actor, clock.now())
        .await?
        .ok_or_else(|| {
            ExcavationError::Conflict(format!("notification {id} is already {}", current.status))
        })
}

fn known_owner(index: &SpatialIndex, owner_id: i64) -> Result<(), ExcavationError> {
    match index.get(Layer::Owners, owner_id) {
        Some(_) => Ok(()),
        None => Err(ExcavationError::NotFound(format!(
            "owner {owner_id} does not exist"
        ))),
    }
}

/// An owner's registered notification channels (operators).
pub async fn owner_channels(
    store: &dyn TicketStore,
    index: &SpatialIndex,
    actor: &Actor,
    owner_id: i64,
) -> Result<OwnerChannels, ExcavationError> {
    require(actor, Role::Operator).map_err(forbid)?;
    known_owner(index, owner_id)?;
    Ok(store
        .owner_channels(&[owner_id])
        .await?
        .into_iter()
        .next()
        .unwrap_or(OwnerChannels {
            owner_id,
            webhook_url: None,
            email: None,
            sms: None,
        }))
}

/// Registers an owner's notification channels (operators), audited.
pub async fn set_owner_channels(
    store: &dyn TicketStore,
    index: &SpatialIndex,
    clock: &Clock,
    actor: &Actor,
    owner_id: i64,
    mut c: OwnerChannels,
) -> Result<OwnerChannels, ExcavationError> {
    require(actor, Role::Operator).map_err(forbid)?;
    known_owner(index, owner_id)?;
    c.owner_id = owner_id;
    c.validate()
        .map_err(|e| ExcavationError::Invalid(e.to_string()))?;
    store.set_owner_channels(&c, actor, clock.now()).await?;
    Ok(c)
}

/// Tickets the caller may see, newest first: a contractor's own, or everyone's for
/// analysts and above.
pub async fn list(
    store: &dyn TicketStore,
    ex: &Excavation,
    clock: &Clock,
    actor: &Actor,
    state: Option<TicketState>,
    limit: Option<usize>,
    offset: Option<usize>,
) -> Result<Vec<Ticket>, ExcavationError> {
    require(actor, Role::Contractor).map_err(forbid)?;
    let limit = lifeline_model::page_limit(limit, 100, ex.tickets.max_list)
        .map_err(|e| ExcavationError::BadRequest(e.to_string()))?;
    let filter = TicketFilter {
        submitted_by: (!actor.has(Role::Analyst)).then(|| actor.name.clone()),
        state,
        limit,
        offset: offset.unwrap_or(0),
    };
    let now = clock.now();
    let mut out = store.tickets(&filter).await?;
    for t in &mut out {
        // Shown as it stands now; the expiry is saved when the ticket itself is read.
        t.refresh(now);
    }
    Ok(out)
}

/// Records an owner's response.
pub async fn respond(
    store: &dyn TicketStore,
    clock: &Clock,
    actor: &Actor,
    id: i64,
    r: &ResponseRequest,
) -> Result<Ticket, ExcavationError> {
    let t = load_visible(store, actor, id).await?;
    let mut t = refreshed(store, clock, t).await?;
    let from = t.state;
    t.respond(r, actor, clock.now())?;
    let detail = serde_json::json!({
        "owner_id": r.owner_id, "status": r.status, "note": r.note, "from": from, "to": t.state
    });
    Ok(store
        .save_ticket(&t, actor, "ticket_response", detail)
        .await?)
}

/// Moves a ticket to another state.
pub async fn transition(
    store: &dyn TicketStore,
    clock: &Clock,
    actor: &Actor,
    id: i64,
    r: &TransitionRequest,
) -> Result<Ticket, ExcavationError> {
    let t = load_visible(store, actor, id).await?;
    let mut t = refreshed(store, clock, t).await?;
    let from = t.state;
    let before = t.clone();
    match t.transition(r, actor, clock.now()) {
        Ok(()) => {
            let detail = serde_json::json!({"from": from, "to": t.state, "note": r.note});
            Ok(store
                .save_ticket(&t, actor, "ticket_transition", detail)
                .await?)
        }
        Err(e) => {
            // A start refused because the ticket just expired still records the expiry.
            if t.state != before.state {
                let detail =
                    serde_json::json!({"from": from, "to": t.state, "reason": "validity ended"});
                store
                    .save_ticket(&t, actor, "ticket_transition", detail)
                    .await?;
            }
            Err(e.into())
        }
    }
}

//! The ticket operations the HTTP layer calls: each reads what it needs, applies the pure
//! state machine of [`super::tickets`], and saves through the store (which audits). Access
//! rules live here so every entry point applies the same ones.

use super::check::{check, CheckRequest, CheckResult};
use super::tickets::{
    can_see, ResponseRequest, Ticket, TicketRequest, TicketState, TransitionRequest,
};
use super::{Excavation, ExcavationError};
use crate::auth::require;
use crate::index::SpatialIndex;
use crate::model::{Actor, Role};
use crate::store::tickets::TicketFilter;
use crate::store::SharedStore;
use chrono::Utc;

/// Largest `Idempotency-Key` accepted, characters.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

fn forbid(e: crate::auth::AuthError) -> ExcavationError {
    ExcavationError::Forbidden(e.to_string())
}

/// `POST /excavation/check`: contractors and above.
pub fn run_check(
    index: &SpatialIndex,
    ex: &Excavation,
    actor: &Actor,
    req: &CheckRequest,
) -> Result<CheckResult, ExcavationError> {
    require(actor, Role::Contractor).map_err(forbid)?;
    check(index, ex, req)
}

/// Submits a ticket. Returns the ticket and whether it was created now (false: an earlier
/// submission with the same idempotency key, returned unchanged).
pub async fn submit(
    store: &SharedStore,
    index: &SpatialIndex,
    ex: &Excavation,
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
    let result = check(index, ex, &req.dig)?;
    let now = Utc::now();
    let t = Ticket::new(&req, &result, actor, idempotency_key, &ex.tickets, now)?;
    let (stored, created) = store.create_ticket(&t, actor).await?;
    if created {
        Ok((stored, true))
    } else {
        same_or_conflict(stored, &req)
    }
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
    store: &SharedStore,
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
async fn refreshed(store: &SharedStore, mut t: Ticket) -> Result<Ticket, ExcavationError> {
    let from = t.state;
    if t.refresh(Utc::now()) {
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
            Err(crate::store::StoreError::Conflict(_)) => {
                if let Some(fresh) = store.ticket(t.id).await? {
                    t = fresh;
                    t.refresh(Utc::now());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(t)
}

/// One ticket, if the caller may see it.
pub async fn get(store: &SharedStore, actor: &Actor, id: i64) -> Result<Ticket, ExcavationError> {
    let t = load_visible(store, actor, id).await?;
    refreshed(store, t).await
}

/// Tickets the caller may see, newest first: a contractor's own, or everyone's for
/// analysts and above.
pub async fn list(
    store: &SharedStore,
    ex: &Excavation,
    actor: &Actor,
    state: Option<TicketState>,
    limit: Option<usize>,
    offset: Option<usize>,
) -> Result<Vec<Ticket>, ExcavationError> {
    require(actor, Role::Contractor).map_err(forbid)?;
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > ex.tickets.max_list {
        return Err(ExcavationError::BadRequest(format!(
            "limit must be 1..{}",
            ex.tickets.max_list
        )));
    }
    let filter = TicketFilter {
        submitted_by: (!actor.has(Role::Analyst)).then(|| actor.name.clone()),
        state,
        limit,
        offset: offset.unwrap_or(0),
    };
    let now = Utc::now();
    let mut out = store.tickets(&filter).await?;
    for t in &mut out {
        // Shown as it stands now; the expiry is saved when the ticket itself is read.
        t.refresh(now);
    }
    Ok(out)
}

/// Records an owner's response.
pub async fn respond(
    store: &SharedStore,
    actor: &Actor,
    id: i64,
    r: &ResponseRequest,
) -> Result<Ticket, ExcavationError> {
    let t = load_visible(store, actor, id).await?;
    let mut t = refreshed(store, t).await?;
    let from = t.state;
    t.respond(r, actor, Utc::now())?;
    let detail = serde_json::json!({
        "owner_id": r.owner_id, "status": r.status, "note": r.note, "from": from, "to": t.state
    });
    Ok(store
        .save_ticket(&t, actor, "ticket_response", detail)
        .await?)
}

/// Moves a ticket to another state.
pub async fn transition(
    store: &SharedStore,
    actor: &Actor,
    id: i64,
    r: &TransitionRequest,
) -> Result<Ticket, ExcavationError> {
    let t = load_visible(store, actor, id).await?;
    let mut t = refreshed(store, t).await?;
    let from = t.state;
    let before = t.clone();
    match t.transition(r, actor, Utc::now()) {
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
            Err(e)
        }
    }
}

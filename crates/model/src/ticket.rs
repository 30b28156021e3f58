//! Excavation tickets: a check that follows the dig. States
//! `submitted → owners_notified → (each owner: marked | clear | partially_marked) → cleared
//! → in_progress → closed`, plus `expired`, `cancelled` and `emergency`. The transitions
//! here are pure functions of the ticket, the caller and the time; the store persists the
//! result with an optimistic version check and one audit entry per change
//! (the store's `TicketStore`).
//!
//! Who may do what: contractors submit and see only their own tickets, and move their own
//! tickets (start, close, cancel, declare an emergency); owners' responses are recorded by
//! operators (the owners' duty desks hold operator keys); operators see and move every
//! ticket; viewers cannot submit.

use super::calendar;
use super::check_result::{
    CheckGeometry, CheckRequest, CheckResult, LiveGeometry, OwnerNotice, Severity,
};
use super::{Actor, Role};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::Arc;
use utoipa::ToSchema;

/// Why a ticket operation was refused; every message names the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TicketError {
    /// A value that breaks a rule of the request (a note too long, a bad requester).
    #[error("{0}")]
    Invalid(String),
    /// Malformed input (a missing or mistyped field).
    #[error("{0}")]
    BadRequest(String),
    /// A state change the ticket's state does not allow.
    #[error("{0}")]
    Conflict(String),
    /// Something the ticket does not hold (an owner it did not notify).
    #[error("{0}")]
    NotFound(String),
    /// An action the caller may not take on this ticket.
    #[error("{0}")]
    Forbidden(String),
    /// A stored document that does not read back (ours, not the client's).
    #[error("{0}")]
    Internal(String),
}

/// Ticket timing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TicketSettings {
    /// How long a ticket is valid from submission (US 811: 28 days), days.
    pub validity_days: i64,
    /// Owners' response deadline for a normal ticket, hours (KLIC: 1 working day).
    pub response_hours: i64,
    /// Owners' response deadline for an emergency ticket, hours.
    pub emergency_response_hours: i64,
    /// Most tickets one list request returns.
    pub max_list: usize,
    /// Which days count towards deadlines and validity (plain calendar days when absent).
    #[serde(default)]
    pub calendar: calendar::CalendarSettings,
}

/// Which tickets a list returns.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this submitter's (a contractor's own); `None`: everyone's.
    pub submitted_by: Option<String>,
    pub state: Option<TicketState>,
    pub limit: usize,
    pub offset: usize,
}

crate::string_enum! {
    /// Where a ticket is in its life.
    pub enum TicketState {
        Submitted = "submitted",
        OwnersNotified = "owners_notified",
        Cleared = "cleared",
        InProgress = "in_progress",
        Closed = "closed",
        Expired = "expired",
        Cancelled = "cancelled",
        Emergency = "emergency",
    }
}

impl TicketState {
    /// No transition leaves these.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TicketState::Closed | TicketState::Expired | TicketState::Cancelled
        )
    }
}

crate::string_enum! {
    /// An owner's answer (California one-call response codes, simplified).
    pub enum ResponseStatus {
        Pending = "pending",
        Marked = "marked",
        Clear = "clear",
        PartiallyMarked = "partially_marked",
    }
}

crate::string_enum! {
    /// Normal tickets wait for the owners; emergency tickets (a burst main, a gas leak)
    /// may start at once and get the short response deadline.
    pub enum TicketType {
        Normal = "normal",
        Emergency = "emergency",
    }
}

/// Who asks: the person and firm doing the work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Requester {
    fn validate(&self) -> Result<(), TicketError> {
        let text = |field: &str, v: &str, max: usize| {
            crate::check_name(field, v)
                .map_err(|e| TicketError::Invalid(format!("requester.{e}")))
                .and_then(|_| {
                    if v.chars().count() > max {
                        Err(TicketError::Invalid(format!(
                            "requester.{field} is longer than {max} characters"
                        )))
                    } else {
                        Ok(())
                    }
                })
        };
        text("name", &self.name, 100)?;
        text("phone", &self.phone, 40)?;
        if !self
            .phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
        {
            return Err(TicketError::Invalid(
                "requester.phone may hold only digits, spaces and + - ( )".into(),
            ));
        }
        if let Some(c) = &self.company {
            text("company", c, 100)?;
        }
        if let Some(e) = &self.email {
            text("email", e, 100)?;
            if !e.contains('@') {
                return Err(TicketError::Invalid(
                    "requester.email is not an e-mail address".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The body of `POST /excavation/tickets`: the check request's fields plus these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketRequest {
    #[serde(flatten)]
    pub dig: CheckRequest,
    pub requester: Requester,
    /// normal (default) or emergency.
    #[serde(default = "normal")]
    #[schema(value_type = String)]
    pub ticket_type: TicketType,
}

fn normal() -> TicketType {
    TicketType::Normal
}

impl TicketRequest {
    /// Parses a body: `requester` and `ticket_type` are taken out and the rest must be a
    /// valid [`CheckRequest`] (unknown fields are refused, naming them).
    pub fn from_json(mut v: serde_json::Value) -> Result<TicketRequest, TicketError> {
        let obj = v
            .as_object_mut()
            .ok_or_else(|| TicketError::BadRequest("the body must be a JSON object".into()))?;
        let requester = obj.remove("requester").ok_or_else(|| {
            TicketError::BadRequest(
                "requester is required: {\"name\", \"phone\", \"company\"?, \"email\"?}".into(),
            )
        })?;
        let requester: Requester = serde_json::from_value(requester)
            .map_err(|e| TicketError::BadRequest(format!("requester: {e}")))?;
        let ticket_type = match obj.remove("ticket_type") {
            None => TicketType::Normal,
            Some(t) => serde_json::from_value(t)
                .map_err(|e| TicketError::BadRequest(format!("ticket_type: {e}")))?,
        };
        let dig: CheckRequest =
            serde_json::from_value(v).map_err(|e| TicketError::BadRequest(e.to_string()))?;
        requester.validate()?;
        Ok(TicketRequest {
            dig,
            requester,
            ticket_type,
        })
    }

    /// A stable hash of the request, to tell a retry from a different request that reuses
    /// an idempotency key.
    pub fn hash(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// One owner's part of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OwnerResponse {
    #[serde(flatten)]
    pub owner: OwnerNotice,
    #[schema(value_type = String)]
    pub status: ResponseStatus,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub responded_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Responded after the deadline.
    #[serde(default)]
    pub late: bool,
    /// Still pending after the deadline (computed when the ticket is read).
    #[serde(default)]
    pub overdue: bool,
}

/// One entry of a ticket's history (the audit log holds the same, across tickets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketEvent {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub from: Option<TicketState>,
    #[schema(value_type = String)]
    pub to: TicketState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A ticket as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    pub id: i64,
    /// Bumped by every save (optimistic concurrency).
    pub version: i64,
    #[schema(value_type = String)]
    pub state: TicketState,
    #[schema(value_type = String)]
    pub ticket_type: TicketType,
    /// The API key name that submitted it: the contractor who owns it.
    pub submitted_by: String,
    pub requester: Requester,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub request: CheckRequest,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = String, format = Date)]
    pub valid_from: NaiveDate,
    /// The first instant of `valid_from` in local time: work may start from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<DateTime<Utc>>,
    /// After this the ticket expires unless work is under way.
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: DateTime<Utc>,
    pub owners: Vec<OwnerResponse>,
    /// The check at submission (the `POST /excavation/check` answer).
    #[schema(value_type = Object)]
    pub check: SavedCheck,
    /// The geometries of the check's pipes, risk points and sensors at submission (GeoJSON
    /// by id), so the ticket renders as submitted whatever changes later. Absent on
    /// tickets stored before this existed.
    #[serde(default, skip_serializing_if = "SavedGeometry::is_empty")]
    #[schema(value_type = Object)]
    pub check_geometry: SavedGeometry,
    pub history: Vec<TicketEvent>,
    /// What the reader should know about the dates, such as deadlines that fall where the
    /// holiday calendar is provisional or not known (set at submission).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A ticket's saved check: at submission the live [`CheckResult`], serialised straight into
/// the stored document and the answer; once read back, the stored JSON. (A
/// `serde_json::Value` copy of the result, built, serialised and dropped on every
/// submission, was ~10 % of the service's CPU per ticket.) Both serialise alike.
#[derive(Debug, Clone)]
pub enum SavedCheck {
    Live(Arc<CheckResult>),
    Stored(serde_json::Value),
}

impl SavedCheck {
    /// The ids of the pipelines in the check's conflicts (any severity), sorted, each once:
    /// the pipes a contractor may trace from for this ticket.
    pub fn conflict_pipes(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = match self {
            SavedCheck::Live(r) => r.conflicts.iter().map(|c| c.pipeline_id).collect(),
            SavedCheck::Stored(v) => v["conflicts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["pipeline_id"].as_i64())
                .collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The check as a JSON value (a copy).
    pub fn to_json(&self) -> Result<serde_json::Value, TicketError> {
        match self {
            SavedCheck::Live(r) => serde_json::to_value(&**r)
                .map_err(|e| TicketError::Internal(format!("check does not encode: {e}"))),
            SavedCheck::Stored(v) => Ok(v.clone()),
        }
    }
}

impl Serialize for SavedCheck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SavedCheck::Live(r) => r.serialize(s),
            SavedCheck::Stored(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SavedCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(SavedCheck::Stored)
    }
}

impl PartialEq for SavedCheck {
    /// Equal when they serialise to the same JSON.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SavedCheck::Live(a), SavedCheck::Live(b)) => a == b,
            (SavedCheck::Stored(a), SavedCheck::Stored(b)) => a == b,
            (a, b) => matches!((a.to_json(), b.to_json()), (Ok(x), Ok(y)) if x == y),
        }
    }
}

/// A ticket's saved check geometries: at submission taken from the live [`CheckResult`]
/// and serialised straight from its geometries ([`LiveGeometry`]); once read back, the
/// stored [`CheckGeometry`]. Both serialise alike.
#[derive(Debug, Clone)]
pub enum SavedGeometry {
    Live(Arc<CheckResult>),
    Stored(CheckGeometry),
}

impl Default for SavedGeometry {
    fn default() -> Self {
        SavedGeometry::Stored(CheckGeometry::default())
    }
}

impl SavedGeometry {
    /// Whether nothing is held (a ticket stored before snapshots, or a clear check).
    pub fn is_empty(&self) -> bool {
        match self {
            SavedGeometry::Live(r) => LiveGeometry(r).is_empty(),
            SavedGeometry::Stored(g) => g.is_empty(),
        }
    }

    /// The geometries as GeoJSON by id.
    pub fn geometry(&self) -> Cow<'_, CheckGeometry> {
        match self {
            SavedGeometry::Live(r) => Cow::Owned(CheckGeometry::of(r)),
            SavedGeometry::Stored(g) => Cow::Borrowed(g),
        }
    }
}

impl Serialize for SavedGeometry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SavedGeometry::Live(r) => LiveGeometry(r).serialize(s),
            SavedGeometry::Stored(g) => g.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SavedGeometry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CheckGeometry::deserialize(d).map(SavedGeometry::Stored)
    }
}

impl PartialEq for SavedGeometry {
    fn eq(&self, other: &Self) -> bool {
        *self.geometry() == *other.geometry()
    }
}

/// The body of `POST /excavation/tickets/{id}/responses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseRequest {
    pub owner_id: i64,
    /// marked, clear or partially_marked.
    #[schema(value_type = String, example = "marked")]
    pub status: ResponseStatus,
    #[serde(default)]
    pub note: Option<String>,
}

/// The body of `POST /excavation/tickets/{id}/transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The target state: in_progress, closed, cancelled, emergency, expired or cleared.
    #[schema(value_type = String, example = "in_progress")]
    pub to: TicketState,
    #[serde(default)]
    pub note: Option<String>,
}

fn conflict(m: impl Into<String>) -> TicketError {
    TicketError::Conflict(m.into())
}

fn check_note(note: &Option<String>) -> Result<(), TicketError> {
    if let Some(n) = note {
        if n.chars().count() > 1000 {
            return Err(TicketError::Invalid(
                "note is longer than 1000 characters".into(),
            ));
        }
    }
    Ok(())
}

/// Whether `actor` may see (and act on as requester) `t`: its submitter, or an analyst
/// and above (operators, admins; analysts read only).
pub fn can_see(actor: &Actor, t: &Ticket) -> bool {
    actor.has(Role::Analyst) || (actor.has(Role::Contractor) && actor.name == t.submitted_by)
}

impl Ticket {
    /// A new ticket from a submitted request and its check, in its first state:
    /// `owners_notified` (owners affected), `cleared` (none), or `emergency`.
    pub fn new(
        req: &TicketRequest,
        check: CheckResult,
        actor: &Actor,
        idempotency_key: Option<String>,
        settings: &TicketSettings,
        now: DateTime<Utc>,
    ) -> Result<Ticket, TicketError> {
        let cal = &settings.calendar;
        // Normal deadlines count working-day time (when so configured); an emergency's
        // deadline is clock hours: a gas leak does not wait for Monday.
        let due_at = match req.ticket_type {
            TicketType::Normal => cal.add_hours(now, settings.response_hours),
            TicketType::Emergency => now + Duration::hours(settings.emergency_response_hours),
        };
        // The end date is a local date: the work may go on until its last second there.
        let end_of_work = cal.end_of_day(req.dig.end_date);
        let valid_until = end_of_work.min(cal.add_hours(now, settings.validity_days * 24));
        // The latest date counted in working days decides whether the holiday lists knew
        // every day the counting crossed.
        let counted = match req.ticket_type {
            TicketType::Normal => due_at.max(valid_until),
            TicketType::Emergency => valid_until,
        };
        let warnings = cal.coverage_warning(counted).into_iter().collect();
        let check = Arc::new(check);
        let owners: Vec<OwnerResponse> = check
            .owners
            .iter()
            .map(|o| OwnerResponse {
                owner: o.clone(),
                status: ResponseStatus::Pending,
                due_at,
                responded_at: None,
                responder: None,
                note: None,
                late: false,
                overdue: false,
            })
            .collect();
        let mut history = vec![TicketEvent {
            at: now,
            actor: actor.name.clone(),
            from: None,
            to: TicketState::Submitted,
            note: None,
        }];
        let (state, note) = match (req.ticket_type, owners.is_empty()) {
            (TicketType::Emergency, _) => (
                TicketState::Emergency,
                format!("emergency work; {} owner(s) notified", owners.len()),
            ),
            (TicketType::Normal, false) => (
                TicketState::OwnersNotified,
                format!("{} owner(s) notified", owners.len()),
            ),
            (TicketType::Normal, true) => (
                TicketState::Cleared,
                "no pipeline within reach: no owner to notify".to_string(),
            ),
        };
        history.push(TicketEvent {
            at: now,
            actor: "system".into(),
            from: Some(TicketState::Submitted),
            to: state,
            note: Some(note),
        });
        Ok(Ticket {
            id: 0,
            version: 1,
            state,
            ticket_type: req.ticket_type,
            submitted_by: actor.name.clone(),
            requester: req.requester.clone(),
            idempotency_key,
            request_hash: req.hash(),
            request: req.dig.clone(),
            created_at: now,
            updated_at: now,
            valid_from: req.dig.start_date,
            starts_at: Some(cal.start_of_day(req.dig.start_date)),
            valid_until,
            owners,
            check: SavedCheck::Live(check.clone()),
            check_geometry: SavedGeometry::Live(check),
            history,
            warnings,
        })
    }

    fn go(&mut self, to: TicketState, actor: &str, note: Option<String>, now: DateTime<Utc>) {
        self.history.push(TicketEvent {
            at: now,
            actor: actor.to_string(),
            from: Some(self.state),
            to,
            note,
        });
        self.state = to;
        self.updated_at = now;
    }

    /// Applies what time alone decides: a ticket not yet under way expires after
    /// `valid_until`; pending owners past their deadline are flagged overdue. Returns
    /// whether the state changed (and so must be saved).
    pub fn refresh(&mut self, now: DateTime<Utc>) -> bool {
        for o in &mut self.owners {
            o.overdue = o.status == ResponseStatus::Pending && now > o.due_at;
        }
        let waiting = matches!(
            self.state,
            TicketState::Submitted | TicketState::OwnersNotified | TicketState::Cleared
        );
        if waiting && now > self.valid_until {
            self.go(
                TicketState::Expired,
                "system",
                Some(format!("validity ended {}", self.valid_until)),
                now,
            );
            return true;
        }
        false
    }

    /// Records an owner's response (operators, for the owner's duty desk). When every
    /// owner has answered `marked` or `clear`, a ticket waiting on owners becomes `cleared`.
    pub fn respond(
        &mut self,
        r: &ResponseRequest,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), TicketError> {
        if !actor.has(Role::Operator) {
            return Err(TicketError::Forbidden(format!(
                "owner responses are recorded by operators; your key has '{}'",
                actor.role
            )));
        }
        check_note(&r.note)?;
        if r.status == ResponseStatus::Pending {
            return Err(TicketError::Invalid(
                "status must be marked, clear or partially_marked".into(),
            ));
        }
        if !matches!(
            self.state,
            TicketState::OwnersNotified | TicketState::Emergency | TicketState::InProgress
        ) {
            return Err(conflict(format!(
                "ticket {} is {}; owners respond while it is owners_notified, emergency or in_progress",
                self.id, self.state
            )));
        }
        let id = self.id;
        let o = self
            .owners
            .iter_mut()
            .find(|o| o.owner.owner_id == r.owner_id)
            .ok_or_else(|| {
                TicketError::NotFound(format!(
                    "owner {} was not notified by ticket {id}",
                    r.owner_id
                ))
            })?;
        if matches!(o.status, ResponseStatus::Marked | ResponseStatus::Clear) {
            return Err(conflict(format!(
                "owner {} already answered {} on ticket {id}",
                r.owner_id, o.status
            )));
        }
        o.status = r.status;
        o.responded_at = Some(now);
        o.responder = Some(actor.name.clone());
        o.note = r.note.clone();
        o.late = now > o.due_at;
        o.overdue = false;
        self.updated_at = now;
        let all_answered = self
            .owners
            .iter()
            .all(|o| matches!(o.status, ResponseStatus::Marked | ResponseStatus::Clear));
        if self.state == TicketState::OwnersNotified && all_answered {
            self.go(
                TicketState::Cleared,
                "system",
                Some("every owner has marked its pipelines or answered clear".into()),
                now,
            );
        }
        Ok(())
    }

    /// Moves the ticket to `to` if the state machine, the caller and the time allow it.
    pub fn transition(
        &mut self,
        req: &TransitionRequest,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), TicketError> {
        use TicketState::*;
        check_note(&req.note)?;
        let to = req.to;
        let operator = actor.has(Role::Operator);
        let owner = actor.has(Role::Contractor) && actor.name == self.submitted_by;
        if !operator && !owner {
            return Err(TicketError::Forbidden(
                "only the contractor who submitted the ticket or an operator may change it".into(),
            ));
        }
        if self.state.is_terminal() {
            return Err(conflict(format!(
                "ticket {} is {}; no further transition is possible",
                self.id, self.state
            )));
        }
        let from = self.state;
        let allowed = match (from, to) {
            (Submitted | OwnersNotified | Cleared | Emergency, Cancelled) => true,
            (Cleared | Emergency, InProgress) => true,
            (InProgress | Emergency, Closed) => true,
            (Submitted | OwnersNotified | Cleared | InProgress, Emergency) => true,
            // Override after a site meeting: owners answered but not all marked fully.
            (OwnersNotified, Cleared) => {
                if !operator {
                    return Err(TicketError::Forbidden(
                        "only an operator may clear a ticket by hand".into(),
                    ));
                }
                if self
                    .owners
                    .iter()
                    .any(|o| o.status == ResponseStatus::Pending)
                {
                    return Err(conflict(format!(
                        "ticket {} cannot be cleared: owner(s) {} have not answered",
                        self.id,
                        self.pending_owners()
                    )));
                }
                true
            }
            (Submitted | OwnersNotified | Cleared, Expired) => {
                if now <= self.valid_until {
                    return Err(conflict(format!(
                        "ticket {} is valid until {}; it cannot expire yet",
                        self.id, self.valid_until
                    )));
                }
                true
            }
            _ => false,
        };
        if !allowed {
            let hint = match (from, to) {
                (OwnersNotified, InProgress) => format!(
                    ": owner(s) {} must mark their pipelines or answer clear first",
                    self.pending_owners()
                ),
                _ => String::new(),
            };
            return Err(conflict(format!(
                "ticket {} cannot go from {from} to {to}{hint}",
                self.id
            )));
        }
        if to == InProgress {
            // The start date begins at local midnight (tickets stored before `starts_at`
            // existed: UTC midnight).
            let starts = self.starts_at.unwrap_or_else(|| {
                self.valid_from
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    .and_utc()
            });
            if from != Emergency && now < starts {
                return Err(conflict(format!(
                    "work may not start before the ticket's start date {}",
                    self.valid_from
                )));
            }
            if from != Emergency && now > self.valid_until {
                self.go(
                    Expired,
                    "system",
                    Some(format!("validity ended {}", self.valid_until)),
                    now,
                );
                return Err(conflict(format!(
                    "ticket {} expired at {}; submit a new one",
                    self.id, self.valid_until
                )));
            }
        }
        self.go(to, &actor.name, req.note.clone(), now);
        Ok(())
    }

    fn pending_owners(&self) -> String {
        self.owners
            .iter()
            .filter(|o| !matches!(o.status, ResponseStatus::Marked | ResponseStatus::Clear))
            .map(|o| o.owner.owner_id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The most serious conflict among the notified owners' pipelines.
    pub fn worst(&self) -> Option<Severity> {
        self.owners.iter().map(|o| o.owner.worst_severity).min()
    }
}

/// Fixtures for tests of tickets and what is built on them (notifications, renderings):
/// the built-in ticket settings of `data/excavation.toml` and a small ticket.
#[cfg(any(test, feature = "test-util"))]
pub mod fixtures {
    use super::*;
    use crate::check_result::{DigMethod, DigSummary, Summary};

    /// The `[tickets]` settings of the built-in `data/excavation.toml`, validated.
    pub fn builtin_settings() -> TicketSettings {
        let file: toml::Table = toml::from_str(include_str!("../../../data/excavation.toml"))
            .expect("the built-in settings parse");
        let mut s: TicketSettings = file["tickets"]
            .clone()
            .try_into()
            .expect("the built-in [tickets] table");
        s.calendar.validate().expect("the built-in calendar");
        s
    }

    pub fn now() -> DateTime<Utc> {
        "2026-11-23T09:00:00Z".parse().unwrap()
    }

    pub fn actor(name: &str, role: Role) -> Actor {
        Actor {
            name: name.into(),
            key_id: Some(1),
            role,
        }
    }

    pub fn request(t: TicketType) -> TicketRequest {
        TicketRequest {
            dig: CheckRequest {
                geometry: serde_json::json!({"type": "Polygon", "coordinates": []}),
                width_m: None,
                top_depth_m: 0.0,
                bottom_depth_m: 2.0,
                method: DigMethod::Manual,
                work_type: "trench".into(),
                start_date: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            },
            requester: Requester {
                name: "Li".into(),
                company: None,
                phone: "138 0000".into(),
                email: None,
            },
            ticket_type: t,
        }
    }

    pub fn result(owners: usize) -> CheckResult {
        let notice = |id| OwnerNotice {
            owner_id: id,
            name: format!("o{id}"),
            emergency_contact: "d".into(),
            emergency_phone: "1".into(),
            email: None,
            worst_severity: Severity::Violation,
            pipeline_ids: vec![id],
        };
        CheckResult {
            dig: DigSummary {
                geometry: serde_json::json!(null),
                area_m2: 1.0,
                width_m: None,
                top_depth_m: 0.0,
                bottom_depth_m: 2.0,
                method: DigMethod::Manual,
                method_factor: 1.0,
                work_type: "t".into(),
                start_date: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                metric_crs: "EPSG:4545".into(),
            },
            summary: Summary {
                violations: owners,
                warnings: 0,
                infos: 0,
                owners_to_notify: owners,
                permit_required: false,
                depth_unknown: 0,
                verdict: "stop".into(),
                text: String::new(),
            },
            conflicts: vec![],
            owners: (1..=owners as i64).map(notice).collect(),
            risk_points: vec![],
            sensors: vec![],
            rules_version: 1,
            checked_at: now(),
        }
    }

    pub fn ticket(owners: usize, t: TicketType) -> Ticket {
        let s = builtin_settings();
        let mut t = Ticket::new(
            &request(t),
            result(owners),
            &actor("acme", Role::Contractor),
            None,
            &s,
            now(),
        )
        .unwrap();
        t.id = 7;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn conflict_pipes_come_from_a_stored_check_once_each() {
        let v = serde_json::json!({"conflicts": [
            {"pipeline_id": 5}, {"pipeline_id": 2}, {"pipeline_id": 5}, {"other": 1}
        ]});
        assert_eq!(SavedCheck::Stored(v).conflict_pipes(), vec![2, 5]);
        assert!(SavedCheck::Stored(serde_json::json!({}))
            .conflict_pipes()
            .is_empty());
    }

    fn to(t: TicketState) -> TransitionRequest {
        TransitionRequest { to: t, note: None }
    }

    #[test]
    fn deadlines_beyond_the_known_holidays_are_flagged() {
        let s = builtin_settings();
        let submit = |at: &str, start: (i32, u32, u32), end: (i32, u32, u32)| {
            let mut req = request(TicketType::Normal);
            req.dig.start_date = NaiveDate::from_ymd_opt(start.0, start.1, start.2).unwrap();
            req.dig.end_date = NaiveDate::from_ymd_opt(end.0, end.1, end.2).unwrap();
            let acme = actor("acme", Role::Contractor);
            Ticket::new(&req, result(1), &acme, None, &s, at.parse().unwrap()).unwrap()
        };
        // Inside the notice's year: nothing to say.
        assert!(ticket(1, TicketType::Normal).warnings.is_empty());
        // Validity reaching into 2027, whose holidays are provisional.
        let t = submit("2026-12-21T09:00:00Z", (2026, 12, 22), (2027, 1, 20));
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("provisional"), "{:?}", t.warnings);
        // Past the lists' end: the date after which holidays are unknown is named.
        let t = submit("2027-12-20T09:00:00Z", (2027, 12, 21), (2028, 1, 31));
        assert_eq!(
            t.warnings,
            vec!["holidays after 2027-12-31 are not known: deadlines after that date count weekends only"]
        );
        // The warning is part of the stored document and reads back.
        let back: Ticket = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back.warnings, t.warnings);
    }

    #[test]
    fn full_life_cycle() {
        let op = actor("desk", Role::Operator);
        let acme = actor("acme", Role::Contractor);
        let mut t = ticket(2, TicketType::Normal);
        assert_eq!(t.state, TicketState::OwnersNotified);
        assert_eq!(
            t.valid_until.date_naive(),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
        let later = now() + Duration::days(2);
        let e = t
            .transition(&to(TicketState::InProgress), &acme, later)
            .unwrap_err();
        assert!(e.to_string().contains("1, 2"), "{e}");
        let r = |id, s| ResponseRequest {
            owner_id: id,
            status: s,
            note: None,
        };
        assert!(matches!(
            t.respond(&r(1, ResponseStatus::Marked), &acme, later),
            Err(TicketError::Forbidden(_))
        ));
        t.respond(&r(1, ResponseStatus::Marked), &op, later)
            .unwrap();
        t.respond(&r(2, ResponseStatus::PartiallyMarked), &op, later)
            .unwrap();
        assert_eq!(t.state, TicketState::OwnersNotified);
        assert!(t.owners[0].late, "answered after the 24 h deadline");
        t.respond(&r(2, ResponseStatus::Clear), &op, later).unwrap();
        assert_eq!(t.state, TicketState::Cleared);
        assert!(t.respond(&r(2, ResponseStatus::Clear), &op, later).is_err());
        let other = actor("rival", Role::Contractor);
        assert!(matches!(
            t.transition(&to(TicketState::InProgress), &other, later),
            Err(TicketError::Forbidden(_))
        ));
        t.transition(&to(TicketState::InProgress), &acme, later)
            .unwrap();
        t.transition(&to(TicketState::Closed), &acme, later)
            .unwrap();
        assert!(t
            .transition(&to(TicketState::Cancelled), &op, later)
            .is_err());
        let states: Vec<_> = t.history.iter().map(|e| e.to).collect();
        assert_eq!(
            states,
            vec![
                TicketState::Submitted,
                TicketState::OwnersNotified,
                TicketState::Cleared,
                TicketState::InProgress,
                TicketState::Closed
            ]
        );
    }

    #[test]
    fn expiry_and_early_start() {
        let acme = actor("acme", Role::Contractor);
        let mut t = ticket(0, TicketType::Normal);
        assert_eq!(t.state, TicketState::Cleared);
        // Before the start date.
        let e = t
            .transition(&to(TicketState::InProgress), &acme, now())
            .unwrap_err();
        assert!(e.to_string().contains("start date"), "{e}");
        // After validity: refresh expires it.
        let late = now() + Duration::days(10);
        assert!(t.refresh(late));
        assert_eq!(t.state, TicketState::Expired);
        let mut t = ticket(0, TicketType::Normal);
        let e = t
            .transition(&to(TicketState::InProgress), &acme, late)
            .unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        assert_eq!(t.state, TicketState::Expired);
    }

    #[test]
    fn emergency_starts_at_once_and_overdue_is_flagged() {
        let acme = actor("acme", Role::Contractor);
        let mut t = ticket(1, TicketType::Emergency);
        assert_eq!(t.state, TicketState::Emergency);
        assert_eq!(t.owners[0].due_at, now() + Duration::hours(2));
        t.refresh(now() + Duration::hours(3));
        assert!(t.owners[0].overdue);
        t.transition(&to(TicketState::InProgress), &acme, now())
            .unwrap();
        t.transition(&to(TicketState::Emergency), &acme, now())
            .unwrap();
        t.transition(&to(TicketState::Closed), &acme, now())
            .unwrap();
    }

    #[test]
    fn deadlines_and_validity_count_working_days() {
        let ex_tickets = builtin_settings();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Submitted Wednesday 30 September 2026, 10:00 Beijing time, before 国庆 (1–7 Oct).
        let submitted = at("2026-09-30T10:00:00+08:00");
        let mut req = request(TicketType::Normal);
        req.dig.start_date = NaiveDate::from_ymd_opt(2026, 10, 8).unwrap();
        req.dig.end_date = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let acme = actor("acme", Role::Contractor);
        let t = Ticket::new(&req, result(2), &acme, None, &ex_tickets, submitted).unwrap();
        // Work may start at local midnight of its start date, not UTC midnight.
        assert_eq!(t.starts_at, Some(at("2026-10-08T00:00:00+08:00")));
        let mut early = t.clone();
        let start = to(TicketState::InProgress);
        early.state = TicketState::Cleared;
        assert!(early
            .transition(&start, &acme, at("2026-10-07T23:59:00+08:00"))
            .is_err());
        early
            .transition(&start, &acme, at("2026-10-08T00:01:00+08:00"))
            .unwrap();
        // One working day: Thursday 8 October, 10:00 — not 1 October.
        assert_eq!(t.owners[0].due_at, at("2026-10-08T10:00:00+08:00"));
        // 20 × 24 h of working days: 14 h left of 30 Sep, 19 whole days (8, 9, 10 (调休
        // Saturday), 12–16, 19–23, 26–30 Oct and Monday 2 Nov) and 10 h of Tuesday 3 Nov.
        assert_eq!(t.valid_until, at("2026-11-03T10:00:00+08:00"));
        // An emergency's deadline is clock hours even in a holiday week.
        req.ticket_type = TicketType::Emergency;
        let e = Ticket::new(&req, result(1), &acme, None, &ex_tickets, submitted).unwrap();
        assert_eq!(e.owners[0].due_at, submitted + Duration::hours(2));
        // Calendar days when so configured: 24 h and 20 days.
        let mut cal = ex_tickets.clone();
        cal.calendar.count = crate::calendar::DayCount::Calendar;
        req.ticket_type = TicketType::Normal;
        let c = Ticket::new(&req, result(1), &acme, None, &cal, submitted).unwrap();
        assert_eq!(c.owners[0].due_at, submitted + Duration::hours(24));
        assert_eq!(c.valid_until, submitted + Duration::days(20));
        // The work's last day ends at midnight local time, not UTC.
        req.dig.end_date = NaiveDate::from_ymd_opt(2026, 10, 9).unwrap();
        let short = Ticket::new(&req, result(1), &acme, None, &ex_tickets, submitted).unwrap();
        assert_eq!(short.valid_until, at("2026-10-09T23:59:59+08:00"));
    }

    #[test]
    fn requests_parse_and_hash() {
        let body = serde_json::json!({
            "geometry": {"type": "Polygon", "coordinates": []}, "top_depth_m": 0, "bottom_depth_m": 2,
            "method": "manual", "work_type": "t", "start_date": "2026-11-24", "end_date": "2026-11-30",
            "requester": {"name": "Li", "phone": "138"}
        });
        let a = TicketRequest::from_json(body.clone()).unwrap();
        assert_eq!(
            a.hash(),
            TicketRequest::from_json(body.clone()).unwrap().hash()
        );
        let mut other = body.clone();
        other["bottom_depth_m"] = 3.into();
        assert_ne!(a.hash(), TicketRequest::from_json(other).unwrap().hash());
        let mut bad = body.clone();
        bad["colour"] = "red".into();
        assert!(TicketRequest::from_json(bad)
            .unwrap_err()
            .to_string()
            .contains("colour"));
        let mut bad = body;
        bad["requester"]["phone"] = "call me".into();
        assert!(TicketRequest::from_json(bad)
            .unwrap_err()
            .to_string()
            .contains("phone"));
    }
}

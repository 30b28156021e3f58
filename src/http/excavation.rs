//! `/excavation`: the excavation check (JSON, GeoJSON or printable HTML) and tickets —
//! submit (idempotent with `Idempotency-Key`), list, read (JSON, GeoJSON or HTML, as
//! submitted), owner responses, transitions — and the owners' notifications: the outbox,
//! gateway delivery reports, and owners' notification channels. Handlers extract, call
//! [`crate::excavation::service`], and map the result.

use super::routes::Routes;
use super::{parse_id, roles, AtLeast, Caller, JsonBody, QueryParams, ReqId};
use crate::excavation::service::{DeliveryReport, TicketView};
use crate::excavation::{report, service, ticket_view, Rules};
use crate::model::check_result::{CheckRequest, CheckResult};
use crate::model::notification::{DeliveryStatus, Notification, OwnerChannels};
use crate::model::ticket::{ResponseRequest, Ticket, TicketState, TransitionRequest};
use crate::state::AppState;
use crate::AppError;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(check))
        .routes(routes!(rules))
        .routes(routes!(submit, list))
        .routes(routes!(read))
        .routes(routes!(respond))
        .routes(routes!(transition))
        .routes(routes!(notifications))
        .routes(routes!(report_delivery))
        .routes(routes!(owner_channels, set_owner_channels))
        // A dig polygon of 500 vertices is ~20 kB; leave room, refuse megabytes.
        .layer(DefaultBodyLimit::max(256 * 1024))
}

/// `?format=` (or `?f=`) of the check and of a ticket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// json (default), geojson or html; overrides the Accept header.
    #[serde(alias = "f")]
    pub format: Option<String>,
}

/// The representations of a check, a ticket and a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Format {
    Json,
    GeoJson,
    Html,
}

impl std::str::FromStr for Format {
    type Err = AppError;

    /// Parses `?format=` (`f`): json, geojson or html.
    fn from_str(f: &str) -> Result<Self, AppError> {
        match f {
            "json" => Ok(Format::Json),
            "geojson" => Ok(Format::GeoJson),
            "html" => Ok(Format::Html),
            other => Err(AppError::BadRequest(format!(
                "format '{}' is not one of json, geojson, html",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// The format asked for: `?format=` if given, else by the Accept header, else JSON.
pub(super) fn negotiate(q: &FormatQuery, headers: &HeaderMap) -> Result<Format, AppError> {
    if let Some(f) = &q.format {
        return f.parse();
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(if accept.contains("text/html") {
        Format::Html
    } else if accept.contains("application/geo+json") {
        Format::GeoJson
    } else {
        Format::Json
    })
}

fn render(state: &AppState, r: &CheckResult, f: Format, title: &str) -> Response {
    match f {
        Format::Json => Json(r).into_response(),
        Format::GeoJson => (
            [(header::CONTENT_TYPE, "application/geo+json")],
            Json(report::geojson(r)).0.to_string(),
        )
            .into_response(),
        Format::Html => Html(report::html(r, state.index.crs(), title)).into_response(),
    }
}

/// Checks a dig: every pipeline within reach judged by the clearance rules, the owners to
/// notify, risk points and sensors nearby, and a verdict (contractor role and above).
#[utoipa::path(post, path = "/excavation/check", operation_id = "excavation_check", tag = "excavation",
    params(("format" = Option<String>, Query, description = "json (default), geojson or html (`f` is an alias); the Accept header (application/geo+json, text/html) is honoured too")),
    request_body = CheckRequest,
    responses((status = 200, description = "The check (JSON), a GeoJSON FeatureCollection, or an HTML report", body = CheckResult),
        (status = 400, description = "Malformed body, wrong geometry type, width_m missing for a LineString"),
        (status = 403, description = "Viewers cannot check"),
        (status = 422, description = "Invalid geometry (self-intersecting, …), too many vertices, area over the limit, depths inverted or out of range, bad dates")))]
pub async fn check(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Contractor>,
    QueryParams(q): QueryParams<FormatQuery>,
    headers: HeaderMap,
    rid: ReqId,
    JsonBody(req): JsonBody<CheckRequest>,
) -> Result<Response, AppError> {
    let f = negotiate(&q, &headers)?;
    let (index, ex, clock) = (
        state.index.clone(),
        state.excavation.clone(),
        state.clock.clone(),
    );
    let who = actor.clone();
    // Projection and distance work for a 1 km² dig take milliseconds: keep them off the
    // async workers.
    let r =
        tokio::task::spawn_blocking(move || service::run_check(&index, &ex, &clock, &who, &req))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))??;
    let entry = crate::audit::of_check(&r);
    state.audit.record(&actor, rid.as_deref(), entry).await?;
    Ok(render(&state, &r, f, "Excavation check"))
}

/// The clearance rules in force, with their sources and whether each is confirmed.
#[utoipa::path(get, path = "/excavation/rules", operation_id = "excavation_rules", tag = "excavation",
    responses((status = 200, description = "The rule table and the request limits")))]
pub async fn rules(State(state): State<AppState>) -> Json<Value> {
    let ex = &state.excavation;
    let r: &Rules = &ex.rules;
    Json(json!({"rules": r, "limits": ex.limits, "tickets": ex.tickets}))
}

/// Submits a ticket: the check's input plus `requester` (and optionally `ticket_type`:
/// normal | emergency). With an `Idempotency-Key` header a retry returns the first ticket
/// (200) instead of creating another (201); the same key with a different body is a 409.
#[utoipa::path(post, path = "/excavation/tickets", operation_id = "submit_ticket", tag = "excavation",
    params(("Idempotency-Key" = Option<String>, Header, description = "client-chosen key, 1..200 characters")),
    request_body(content = crate::model::ticket::TicketRequest, description = "The check request's fields plus requester {name, phone, company?, email?} and ticket_type?"),
    responses((status = 201, description = "Created", body = Ticket), (status = 200, description = "Retry of an earlier submission", body = Ticket),
        (status = 403, description = "Viewers cannot submit"), (status = 409, description = "Idempotency-Key reused with another body"),
        (status = 422, description = "Invalid dig (see /excavation/check)")))]
pub async fn submit(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Contractor>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let (ex, clock) = (&state.excavation, &state.clock);
    let (t, created) =
        service::submit(&*state.store, &state.index, ex, clock, &actor, body, key).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/excavation/tickets/{}", t.id);
    Ok((status, [(header::LOCATION, location)], Json(t)).into_response())
}

/// The `Idempotency-Key` header, if given (it must be text).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| AppError::BadRequest("Idempotency-Key is not text".into()))
        })
        .transpose()
}

/// Query of a ticket list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    pub limit: Option<usize>,
    #[serde(default, deserialize_with = "super::offset")]
    pub offset: Option<usize>,
}

/// Tickets newest first: a contractor's own; everyone's for analysts and above.
#[utoipa::path(get, path = "/excavation/tickets", operation_id = "list_tickets", tag = "excavation",
    params(("state" = Option<String>, Query, description = "only tickets in this state"),
        ("limit" = Option<usize>, Query, description = "1..1000, default 100"), ("offset" = Option<usize>, Query, description = "tickets to skip")),
    responses((status = 200, description = "{\"tickets\": [Ticket]}"), (status = 403, description = "Viewers")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let st = q
        .state
        .as_deref()
        .map(str::parse::<TicketState>)
        .transpose()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let tickets = service::list(
        &*state.store,
        &state.excavation,
        &state.clock,
        &caller.0,
        st,
        q.limit,
        q.offset,
    )
    .await?;
    Ok(Json(
        json!({"numberReturned": tickets.len(), "tickets": tickets}),
    ))
}

/// One ticket (its submitter, or analysts and above; others get 404) with the
/// notifications sent to its owners. As GeoJSON or HTML it renders like a check — the check
/// made at submission, not re-run — with the ticket's state, requester, owners' responses,
/// deadlines and notifications.
#[utoipa::path(get, path = "/excavation/tickets/{id}", operation_id = "get_ticket", tag = "excavation",
    params(("id" = i64, Path, description = "ticket id"),
        ("format" = Option<String>, Query, description = "json (default), geojson or html (`f` is an alias); the Accept header (application/geo+json, text/html) is honoured too")),
    responses((status = 200, description = "The ticket and its notifications (JSON), a GeoJSON FeatureCollection with the ticket as foreign member `ticket`, or an HTML report", body = TicketView),
        (status = 400, description = "Unknown format"), (status = 404, description = "No such ticket, or not yours")))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<FormatQuery>,
    headers: HeaderMap,
    rid: ReqId,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let f = negotiate(&q, &headers)?;
    let v = service::view(&*state.store, &state.clock, &caller.0, id).await?;
    let entry = crate::audit::of_ticket(&v.ticket);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    render_ticket(&state, &v, f)
}

/// A ticket view as JSON, or rendered like a check (GeoJSON, or the printable HTML report
/// in the calendar's time zone).
fn render_ticket(state: &AppState, v: &TicketView, f: Format) -> Result<Response, AppError> {
    let (t, n, index) = (&v.ticket, &v.notifications, &state.index);
    Ok(match f {
        Format::Json => Json(v).into_response(),
        Format::GeoJson => (
            [(header::CONTENT_TYPE, "application/geo+json")],
            ticket_view::geojson(t, n, index)?.to_string(),
        )
            .into_response(),
        Format::Html => {
            let calendar = &state.excavation.tickets.calendar;
            let off = calendar.offset().map_err(AppError::Internal)?;
            Html(ticket_view::html(t, n, index, &off)?).into_response()
        }
    })
}

/// Query of the notification outbox.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// Only this ticket's.
    pub ticket: Option<String>,
    /// pending, delivered or failed.
    pub status: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    pub limit: Option<usize>,
}

/// The owners' notification outbox, oldest first (operators; an e-mail/SMS gateway reads
/// its `pending` e-mail and SMS rows here).
#[utoipa::path(get, path = "/excavation/notifications", operation_id = "list_notifications", tag = "excavation",
    params(("ticket" = Option<i64>, Query, description = "only this ticket's notifications"),
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
        ("limit" = Option<usize>, Query, description = "1..1000, default 100")),
    responses((status = 200, description = "{\"numberReturned\", \"notifications\": [Notification]}"),
        (status = 400, description = "Bad ticket id, status or limit"), (status = 403, description = "Below operator")))]
pub async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<NotificationQuery>,
) -> Result<Json<Value>, AppError> {
    let ticket = q.ticket.as_deref().map(parse_id).transpose()?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let list: Vec<Notification> =
        service::notifications(&*state.store, &caller.0, ticket, status, q.limit).await?;
    Ok(Json(
        json!({"numberReturned": list.len(), "notifications": list}),
    ))
}

/// An external gateway reports an e-mail or SMS notification delivered or failed
/// (operators). Webhooks are delivered by the service itself (409).
#[utoipa::path(post, path = "/excavation/notifications/{id}/status", operation_id = "report_notification_delivery", tag = "excavation",
    params(("id" = i64, Path, description = "notification id")), request_body = DeliveryReport,
    responses((status = 200, description = "The notification", body = Notification), (status = 403, description = "Below operator"),
        (status = 404, description = "No such notification"), (status = 409, description = "A webhook, or no longer pending")))]
pub async fn report_delivery(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Operator>,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<DeliveryReport>,
) -> Result<Json<Notification>, AppError> {
    let id = parse_id(&id)?;
    Ok(Json(
        service::report_delivery(&*state.store, &state.clock, &actor, id, &r).await?,
    ))
}

/// An owner's notification channels: webhook URL, and e-mail / SMS numbers replacing the
/// owner record's (operators).
#[utoipa::path(get, path = "/excavation/owners/{id}/channels", operation_id = "get_owner_channels", tag = "excavation",
    params(("id" = i64, Path, description = "owner id")),
    responses((status = 200, description = "The channels (all null: none registered)", body = OwnerChannels),
        (status = 403, description = "Below operator"), (status = 404, description = "No such owner")))]
pub async fn owner_channels(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OwnerChannels>, AppError> {
    let id = parse_id(&id)?;
    Ok(Json(
        service::owner_channels(&*state.store, &state.index, &caller.0, id).await?,
    ))
}

/// Registers (replaces) an owner's notification channels (operators), audited. Ticket
/// notifications are then POSTed to `webhook_url` as JSON with an `Idempotency-Key`.
#[utoipa::path(put, path = "/excavation/owners/{id}/channels", operation_id = "set_owner_channels", tag = "excavation",
    params(("id" = i64, Path, description = "owner id")), request_body = OwnerChannels,
    responses((status = 200, description = "The channels as saved", body = OwnerChannels),
        (status = 403, description = "Below operator"), (status = 404, description = "No such owner"),
        (status = 422, description = "Not an http(s) URL, e-mail address or phone number")))]
pub async fn set_owner_channels(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Operator>,
    Path(id): Path<String>,
    JsonBody(c): JsonBody<OwnerChannels>,
) -> Result<Json<OwnerChannels>, AppError> {
    let id = parse_id(&id)?;
    Ok(Json(
        service::set_owner_channels(&*state.store, &state.index, &state.clock, &actor, id, c)
            .await?,
    ))
}

/// Records an owner's response (operators, for the owner's duty desk). When every owner
/// has answered marked or clear, the ticket becomes `cleared`.
#[utoipa::path(post, path = "/excavation/tickets/{id}/responses", operation_id = "respond_to_ticket", tag = "excavation",
    params(("id" = i64, Path, description = "ticket id")), request_body = ResponseRequest,
    responses((status = 200, description = "The updated ticket", body = Ticket), (status = 403, description = "Not an operator"),
        (status = 404, description = "No such ticket or owner not notified"), (status = 409, description = "State does not take responses, or already answered")))]
pub async fn respond(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Operator>,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<ResponseRequest>,
) -> Result<Json<Ticket>, AppError> {
    let id = parse_id(&id)?;
    Ok(Json(
        service::respond(&*state.store, &state.clock, &actor, id, &r).await?,
    ))
}

/// Moves a ticket: `in_progress` (after clearance, inside the validity window), `closed`,
/// `cancelled`, `emergency`, `expired` (after validity), `cleared` (operator override).
#[utoipa::path(post, path = "/excavation/tickets/{id}/transitions", operation_id = "ticket_transition", tag = "excavation",
    params(("id" = i64, Path, description = "ticket id")), request_body = TransitionRequest,
    responses((status = 200, description = "The updated ticket", body = Ticket), (status = 403, description = "Not the submitter or an operator"),
        (status = 409, description = "The state machine does not allow it; the message says why")))]
pub async fn transition(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Contractor>,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<TransitionRequest>,
) -> Result<Json<Ticket>, AppError> {
    let id = parse_id(&id)?;
    Ok(Json(
        service::transition(&*state.store, &state.clock, &actor, id, &r).await?,
    ))
}

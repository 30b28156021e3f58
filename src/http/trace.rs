//! `/trace/*`: network traces for incidents (issue 15). `POST /trace/isolate` answers which
//! valves to close to cut off pipes (given by id, by a point or by a dig's geometry), what
//! that cuts off, and who loses supply, and with `?publish=true` puts it on the event
//! stream; `POST /trace/connected` answers what is joined to a pipe through open valves;
//! `POST /trace/upstream` and `/trace/downstream` follow the flow from the sources;
//! `GET /alarms/{id}/isolation` is the isolation of a leak alarm's pipe. Analysts and
//! operators trace from any pipe, contractors from their own ticket's conflicts
//! (`?ticket=`). Handlers extract, call [`crate::trace::service`], and render JSON,
//! GeoJSON or the printable HTML report.

use super::excavation::{negotiate, Format, FormatQuery};
use super::routes::Routes;
use super::{parse_id, Caller, JsonBody, QueryParams, ReqId};
use crate::model::{Actor, Role};
use crate::state::AppState;
use crate::trace::flow::Direction;
use crate::trace::service::{self, IsolationAnswer, TraceRequest, Tracer};
use crate::AppError;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(isolate))
        .routes(routes!(connected))
        .routes(routes!(upstream))
        .routes(routes!(downstream))
        .routes(routes!(alarm_isolation))
}

/// The query of a trace: its format, the contractor's ticket, and whether to publish.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// json (default), geojson or html; overrides the Accept header (isolation only).
    #[serde(alias = "f")]
    format: Option<String>,
    /// An excavation ticket of the caller's: the trace may start from its conflicts only.
    ticket: Option<String>,
    /// Put the isolation on the event stream (operators and above).
    #[serde(default)]
    publish: bool,
}

/// Who traces, decided from the request head before the body is read: the analyst role or
/// above, or the caller's own ticket (`?ticket=`, any role that may see it); publishing
/// (`?publish=true`) needs the operator role.
pub struct TraceCaller {
    who: Tracer,
    actor: Actor,
    query: TraceQuery,
    rid: ReqId,
}

impl TraceCaller {
    /// Records the pipes a trace showed (the ticket, when it is a ticket's, as purpose).
    async fn audit(&self, state: &AppState, target: &str, pipes: &[i64]) -> Result<(), AppError> {
        let purpose = self.who.ticket().map(|t| format!("ticket {t}"));
        let (actor, rid) = (&self.actor, self.rid.as_deref());
        let index = &state.index;
        state
            .audit
            .pipes(actor, rid, index, target, pipes, purpose)
            .await?;
        Ok(())
    }
}

impl FromRequestParts<AppState> for TraceCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        let QueryParams(query) =
            QueryParams::<TraceQuery>::from_request_parts(parts, state).await?;
        if query.publish {
            crate::auth::require(&actor, Role::Operator)?;
        }
        let who = match &query.ticket {
            None => Tracer::check(&actor)?,
            Some(t) => {
                let id = parse_id(t)?;
                let ticket =
                    crate::excavation::service::get(&*state.store, &state.clock, &actor, id)
                        .await?;
                Tracer::for_ticket(&actor, &ticket)?
            }
        };
        let Ok(rid) = ReqId::from_request_parts(parts, state).await;
        Ok(TraceCaller {
            who,
            actor,
            query,
            rid,
        })
    }
}

/// An isolation answer in the format asked for.
fn render(state: &AppState, a: IsolationAnswer, f: Format) -> Response {
    match f {
        Format::Json => Json(a).into_response(),
        Format::GeoJson => (
            [(header::CONTENT_TYPE, super::ogc::GEOJSON)],
            Json(service::isolation_geojson(&state.index, &a)),
        )
            .into_response(),
        Format::Html => Html(service::isolation_html(&state.index, &a)).into_response(),
    }
}

/// The isolation trace: the valve segment(s) of the start pipes, the minimal set of valves
/// to close, every boundary valve, the pockets cut off as a side effect, whether a source
/// lies inside, the customers, sensors and risk points affected, and lengths and counts
/// per grid cell. A lost source is never an error: the answer says so in `notes`.
#[utoipa::path(post, path = "/trace/isolate", operation_id = "trace_isolate", tag = "trace",
    params(("format" = Option<String>, Query, description = "json (default), geojson or html (`f` is an alias); the Accept header is honoured too"),
        ("ticket" = Option<i64>, Query, description = "an excavation ticket the caller may see: the trace may start from its conflicts only (how contractors trace)"),
        ("publish" = Option<bool>, Query, description = "operators: also put the isolation on the event stream (`event: trace`), with the body's `message`")),
    request_body = TraceRequest,
    responses((status = 200, description = "Per network (utility kind): start_pipes, segment {nodes, pipes}, valves_to_close, boundary_valves, pockets, source_inside, customers {count, nodes}, impact {segment_length_m, pockets_length_m, sensors, risk_points, grid_cells}, notes; totals; and `published` (the event's log id) when published. GeoJSON: the pipes by role (segment, pocket), valves (valve_to_close, boundary_valve) and outlines; HTML: a printable report"),
        (status = 400, description = "Not exactly one of pipes, point, geometry; an unknown pipe or one without topology; a valve not in the traced network; a message without publishing"),
        (status = 403, description = "Below the analyst role without a ticket; a start pipe that is not one of the ticket's conflicts; publishing below the operator role"),
        (status = 404, description = "The ticket does not exist (or is another contractor's)")))]
pub async fn isolate(
    State(state): State<AppState>,
    c: TraceCaller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<TraceRequest>,
) -> Result<Response, AppError> {
    let f = negotiate(
        &FormatQuery {
            format: c.query.format.clone(),
        },
        &headers,
    )?;
    let a = service::isolate(&c.who, &state.index, &state.networks, req.clone()).await?;
    c.audit(&state, "trace/isolate", &a.pipes_read()).await?;
    let now = state.clock.now();
    let publish = service::published(&state.index, &a, &req, c.query.publish, c.actor.role, now)?;
    let Some(p) = publish else {
        return Ok(render(&state, a, f));
    };
    let id = state.risk.publish_trace(&p, &c.actor).await?;
    Ok(match f {
        Format::Json => {
            let mut v = serde_json::to_value(&a).unwrap_or_default();
            v["published"] = json!(id);
            Json(v).into_response()
        }
        _ => render(&state, a, f),
    })
}

/// Everything joined to the start pipe(s) through open valves (broken ones conduct, closed
/// ones do not), per network, with its length and whether it reaches a source.
#[utoipa::path(post, path = "/trace/connected", operation_id = "trace_connected", tag = "trace",
    params(("ticket" = Option<i64>, Query, description = "an excavation ticket the caller may see: start from its conflicts only")),
    request_body = TraceRequest,
    responses((status = 200, description = "One entry per start pipe not already covered: kind, start_pipe, nodes, pipes, length_m, fed"),
        (status = 400, description = "Not exactly one of pipes, point, geometry; an unknown pipe or one without topology"),
        (status = 403, description = "Below the analyst role without a ticket, or a pipe not on the ticket")))]
pub async fn connected(
    State(state): State<AppState>,
    c: TraceCaller,
    JsonBody(req): JsonBody<TraceRequest>,
) -> Result<Response, AppError> {
    let parts = service::connected(&c.who, &state.index, &state.networks, req).await?;
    c.audit(&state, "trace/connected", &service::connected_pipes(&parts))
        .await?;
    Ok(Json(parts).into_response())
}

/// Upstream from the start pipe(s): every way back to the sources along the flow, with the
/// sources reached. The flow runs from each pipe's end nearer a source (along the pipes) to
/// its farther end: exact on branched networks, the shortest-path approximation on loops.
#[utoipa::path(post, path = "/trace/upstream", operation_id = "trace_upstream", tag = "trace",
    params(("format" = Option<String>, Query, description = "json (default) or geojson (`f` is an alias): the pipes by role (start, upstream or downstream), sources and customers as points"),
        ("ticket" = Option<i64>, Query, description = "an excavation ticket the caller may see: start from its conflicts only")),
    request_body = TraceRequest,
    responses((status = 200, description = "One entry per start pipe: kind, start_pipe, direction, nodes, pipes, valves, sources, customers, fed, length_m, notes (an unfed pipe has no direction: the pipe alone, fed false)"),
        (status = 400, description = "Not exactly one of pipes, point, geometry; an unknown pipe or one without topology"),
        (status = 403, description = "Below the analyst role without a ticket, or a pipe not on the ticket")))]
pub async fn upstream(
    State(state): State<AppState>,
    c: TraceCaller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<TraceRequest>,
) -> Result<Response, AppError> {
    directed(state, c, headers, req, Direction::Upstream).await
}

/// An upstream or downstream trace, as JSON or GeoJSON.
async fn directed(
    state: AppState,
    c: TraceCaller,
    headers: HeaderMap,
    req: TraceRequest,
    direction: Direction,
) -> Result<Response, AppError> {
    let f = negotiate(
        &FormatQuery {
            format: c.query.format.clone(),
        },
        &headers,
    )?;
    if f == Format::Html {
        return Err(AppError::BadRequest(
            "upstream and downstream traces come as json or geojson".into(),
        ));
    }
    let a = service::directed(&c.who, &state.index, &state.networks, req, direction).await?;
    let target = match direction {
        Direction::Upstream => "trace/upstream",
        Direction::Downstream => "trace/downstream",
    };
    c.audit(&state, target, &service::directed_pipes(&a))
        .await?;
    Ok(match f {
        Format::GeoJson => (
            [(header::CONTENT_TYPE, super::ogc::GEOJSON)],
            Json(service::directed_geojson(&state.index, &a)),
        )
            .into_response(),
        _ => Json(a).into_response(),
    })
}

/// Downstream from the start pipe(s): everything the flow carries on to, with the customer
/// connections it feeds (see `/trace/upstream` for the direction).
#[utoipa::path(post, path = "/trace/downstream", operation_id = "trace_downstream", tag = "trace",
    params(("format" = Option<String>, Query, description = "json (default) or geojson (`f` is an alias): the pipes by role (start, upstream or downstream), sources and customers as points"),
        ("ticket" = Option<i64>, Query, description = "an excavation ticket the caller may see: start from its conflicts only")),
    request_body = TraceRequest,
    responses((status = 200, description = "One entry per start pipe: kind, start_pipe, direction, nodes, pipes, valves, sources, customers {count, nodes}, fed, length_m, notes"),
        (status = 400, description = "Not exactly one of pipes, point, geometry; an unknown pipe or one without topology"),
        (status = 403, description = "Below the analyst role without a ticket, or a pipe not on the ticket")))]
pub async fn downstream(
    State(state): State<AppState>,
    c: TraceCaller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<TraceRequest>,
) -> Result<Response, AppError> {
    directed(state, c, headers, req, Direction::Downstream).await
}

/// The isolation of an open leak alarm's pipe (a gas, pressure or flow alarm on a sensor of
/// a pipe with topology), as the network stands.
#[utoipa::path(get, path = "/alarms/{id}/isolation", operation_id = "alarm_isolation", tag = "trace",
    params(("id" = i64, Path, description = "alarm id"),
        ("format" = Option<String>, Query, description = "json (default), geojson or html (`f` is an alias)")),
    responses((status = 200, description = "As POST /trace/isolate from the alarm's pipe"),
        (status = 403, description = "Below the analyst role"),
        (status = 404, description = "No such alarm, or nothing to isolate: the alarm is closed, its sensor kind does not signal a leak, or its sensor watches no pipe with topology (the message says which)")))]
pub async fn alarm_isolation(
    State(state): State<AppState>,
    Caller(actor): Caller,
    rid: ReqId,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<FormatQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let who = Tracer::check(&actor)?;
    let f = negotiate(&q, &headers)?;
    let alarm = state.risk.alarm(parse_id(&id)?).await?;
    let a = service::alarm_isolation(&who, &state.index, &state.networks, &alarm).await?;
    let (pipes, purpose) = (a.pipes_read(), Some(format!("alarm {}", alarm.id)));
    let target = format!("alarms/{}/isolation", alarm.id);
    let index = &state.index;
    state
        .audit
        .pipes(&actor, rid.as_deref(), index, &target, &pipes, purpose)
        .await?;
    Ok(render(&state, a, f))
}

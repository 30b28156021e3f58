//! `/trace/*`: network traces for incidents (issue 15). `POST /trace/isolate` answers which
//! valves to close to cut off pipes (given by id, by a point or by a dig's geometry), what
//! that cuts off, and who loses supply; `POST /trace/connected` answers what is joined to a
//! pipe through open valves. Analysts and operators only. Handlers extract, call
//! [`crate::trace::service`], and render JSON, GeoJSON or the printable HTML report.

use super::excavation::{negotiate, Format, FormatQuery};
use super::routes::Routes;
use super::{roles, AtLeast, JsonBody, QueryParams};
use crate::state::AppState;
use crate::trace::service::{self, TraceRequest, Tracer};
use crate::AppError;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(isolate))
        .routes(routes!(connected))
}

/// The isolation trace: the valve segment(s) of the start pipes, the minimal set of valves
/// to close, every boundary valve, the pockets cut off as a side effect, whether a source
/// lies inside, the customers, sensors and risk points affected, and lengths and counts
/// per grid cell. A lost source is never an error: the answer says so in `notes`.
#[utoipa::path(post, path = "/trace/isolate", operation_id = "trace_isolate", tag = "trace",
    params(("format" = Option<String>, Query, description = "json (default), geojson or html (`f` is an alias); the Accept header is honoured too")),
    request_body = TraceRequest,
    responses((status = 200, description = "Per network (utility kind): start_pipes, segment {nodes, pipes}, valves_to_close, boundary_valves, pockets, source_inside, customers {count, nodes}, impact {segment_length_m, pockets_length_m, sensors, risk_points, grid_cells}, notes; and totals. GeoJSON: the pipes by role (segment, pocket), valves (valve_to_close, boundary_valve) and outlines; HTML: a printable report"),
        (status = 400, description = "Not exactly one of pipes, point, geometry; an unknown pipe or one without topology; a valve not in the traced network"),
        (status = 403, description = "Below the analyst role")))]
pub async fn isolate(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Analyst>,
    QueryParams(q): QueryParams<FormatQuery>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<TraceRequest>,
) -> Result<Response, AppError> {
    let f = negotiate(&q, &headers)?;
    let who = Tracer::check(&actor)?;
    let a = service::isolate(&who, &state.index, &state.networks, req).await?;
    Ok(match f {
        Format::Json => Json(a).into_response(),
        Format::GeoJson => (
            [(header::CONTENT_TYPE, super::ogc::GEOJSON)],
            Json(service::isolation_geojson(&state.index, &a)),
        )
            .into_response(),
        Format::Html => Html(service::isolation_html(&state.index, &a)).into_response(),
    })
}

/// Everything joined to the start pipe(s) through open valves (broken ones conduct, closed
/// ones do not), per network, with its length and whether it reaches a source.
#[utoipa::path(post, path = "/trace/connected", operation_id = "trace_connected", tag = "trace",
    request_body = TraceRequest,
    responses((status = 200, description = "One entry per start pipe not already covered: kind, start_pipe, nodes, pipes, length_m, fed"),
        (status = 400, description = "Not exactly one of pipes, point, geometry; an unknown pipe or one without topology"),
        (status = 403, description = "Below the analyst role")))]
pub async fn connected(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Analyst>,
    JsonBody(req): JsonBody<TraceRequest>,
) -> Result<Response, AppError> {
    let who = Tracer::check(&actor)?;
    let parts = service::connected(&who, &state.index, &state.networks, req).await?;
    Ok(Json(parts).into_response())
}

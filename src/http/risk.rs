//! `/alarms` and `/risk`: alarms with their lifecycle moves, risk points at their live
//! level, suggested sensors, the coverage report and per-grid statistics. Handlers
//! extract, call the risk engine (parameters parsed by [`crate::risk::service`]), and
//! render.

use super::routes::Routes;
use super::{parse_id, Caller, JsonBody, QueryParams};
use crate::model::{Actor, Bbox, GridLevel, Role};
use crate::risk::model::{Alarm, AlarmFilter, AlarmStatus};
use crate::risk::service::{self, GridFormat, PointParams};
use crate::state::AppState;
use crate::AppError;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(list_alarms))
        .routes(routes!(alarm))
        .routes(routes!(transition))
        .routes(routes!(points))
        .routes(routes!(point))
        .routes(routes!(suggested))
        .routes(routes!(coverage))
        .routes(routes!(grid_stats))
        .routes(routes!(alarm_density))
}

fn list<T: std::str::FromStr<Err = crate::model::ModelError>>(
    s: &Option<String>,
) -> Result<Vec<T>, AppError> {
    Ok(service::parse_list(s.as_deref())?)
}

fn bbox(s: &Option<String>) -> Result<Option<Bbox>, AppError> {
    Ok(service::parse_bbox(s.as_deref())?)
}

/// Query of `GET /alarms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmQuery {
    status: Option<String>,
    bbox: Option<String>,
    sensor_id: Option<i64>,
    #[serde(default, deserialize_with = "super::limit")]
    limit: Option<usize>,
}

/// Alarms, newest first.
#[utoipa::path(get, path = "/alarms", operation_id = "list_alarms", tag = "risk",
    params(("status" = Option<String>, Query, description = "comma-separated: detected, verified, dispatched, handled, closed, false_alarm; `open` = all but closed and false_alarm"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat"),
        ("sensor_id" = Option<i64>, Query, description = "one sensor"),
        ("limit" = Option<usize>, Query, description = "1..10000, default 1000")),
    responses((status = 200, description = "`{\"alarms\": [Alarm]}`; Alarm = `{\"id\", \"sensor_id\", \"sensor_kind\", \"risk_point_id\", \"rule\": \"threshold|rate_of_rise|offline\", \"severity\": \"notice|alarm|emergency\", \"status\", \"value\", \"detected_at\", \"updated_at\", \"cleared_at\", \"lon\", \"lat\", \"history\": [{\"from\", \"to\", \"by\", \"role\", \"at\", \"comment\"}], \"isolation\"?}`; `isolation` (analysts and above): the link to an open leak alarm's isolation (GET /alarms/{id}/isolation), when its sensor watches a pipe with topology"),
        (status = 400, description = "Bad status, bbox or limit")))]
pub async fn list_alarms(
    State(state): State<AppState>,
    Caller(caller): Caller,
    QueryParams(q): QueryParams<AlarmQuery>,
) -> Result<Json<Value>, AppError> {
    let statuses = match q.status.as_deref() {
        Some("open") => AlarmStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_open())
            .collect(),
        _ => list::<AlarmStatus>(&q.status)?,
    };
    let limit = crate::model::page_limit(q.limit, 1000, 10_000)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let filter = AlarmFilter {
        statuses,
        bbox: bbox(&q.bbox)?.map(Into::into),
        sensor_id: q.sensor_id,
        limit,
    };
    let alarms = state.risk.alarms(&filter).await?;
    Ok(Json(
        json!({"alarms": with_isolation(&state, &caller, &alarms)}),
    ))
}

/// Alarms as JSON; for callers who may trace, each open leak alarm on a pipe with topology
/// links to its isolation (`"isolation": "/alarms/{id}/isolation"`).
fn with_isolation(state: &AppState, caller: &Actor, alarms: &[Alarm]) -> Vec<Value> {
    let may = caller.has(Role::Analyst);
    alarms
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or_default();
            crate::model::access::redact_alarm(&mut v, caller.role);
            if may && crate::trace::service::alarm_pipe(&state.index, a).is_ok() {
                v["isolation"] = json!(format!("/alarms/{}/isolation", a.id));
            }
            v
        })
        .collect()
}

/// One alarm, with the statuses it may move to next.
#[utoipa::path(get, path = "/alarms/{id}", operation_id = "get_alarm", tag = "risk", params(("id" = i64, Path, description = "alarm id")),
    responses((status = 200, description = "Alarm plus `\"next\": [status]`"), (status = 404, description = "No such alarm")))]
pub async fn alarm(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let a = state.risk.alarm(parse_id(&id)?).await?;
    let next = crate::risk::alarms::next_statuses(a.status);
    let mut v = with_isolation(&state, &caller, std::slice::from_ref(&a)).remove(0);
    v["next"] = json!(next);
    Ok(Json(v))
}

/// Body of `POST /alarms/{id}/transitions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    to: AlarmStatus,
    comment: Option<String>,
}

/// Moves an alarm along its lifecycle (who and when go in its history and the audit log).
#[utoipa::path(post, path = "/alarms/{id}/transitions", operation_id = "alarm_transition", tag = "risk", params(("id" = i64, Path, description = "alarm id")),
    request_body(content = Object, description = "`{\"to\": \"verified|dispatched|handled|closed|false_alarm\", \"comment\"?: \"…\"}`. Roles per target status are data (`[lifecycle]` in data/rules/alarms.toml): verified and false_alarm need analyst, dispatched/handled/closed need operator.", content_type = "application/json"),
    responses((status = 200, description = "The alarm after the move"),
        (status = 403, description = "The caller's role may not make this move (e.g. a viewer dispatching)"),
        (status = 404, description = "No such alarm"),
        (status = 409, description = "The lifecycle does not allow this move from the alarm's status (the message lists what does)")))]
pub async fn transition(
    State(state): State<AppState>,
    AlarmMover(actor): AlarmMover,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TransitionBody>,
) -> Result<Json<Value>, AppError> {
    let id = parse_id(&id)?;
    let a = state
        .risk
        .transition(id, body.to, body.comment, &actor)
        .await?;
    let mut v = serde_json::to_value(a).unwrap_or_default();
    crate::model::access::redact_alarm(&mut v, actor.role);
    Ok(Json(v))
}

/// A caller whose role may make at least one alarm move (the lifecycle's roles are data),
/// checked from the request head, before the body is read or validated. Which move the
/// role may make is the service's finer check.
pub struct AlarmMover(Actor);

impl axum::extract::FromRequestParts<AppState> for AlarmMover {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        match state.risk.least_mover_role() {
            Some(role) if !actor.has(role) => Err(AppError::Forbidden(format!(
                "the {} role cannot move alarms ({})",
                actor.role,
                state.risk.movers()
            ))),
            _ => Ok(()),
        }?;
        Ok(AlarmMover(actor))
    }
}

/// Query of `GET /risk/points`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointQuery {
    bbox: Option<String>,
    level: Option<String>,
    category: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    limit: Option<usize>,
}

/// Risk points with their live level.
#[utoipa::path(get, path = "/risk/points", operation_id = "list_risk_points", tag = "risk",
    params(("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat"),
        ("level" = Option<String>, Query, description = "comma-separated live levels: major, large, general, low"),
        ("category" = Option<String>, Query, description = "a category code"),
        ("status" = Option<String>, Query, description = "active, mitigated or closed"),
        ("limit" = Option<usize>, Query, description = "1..100000, default 10000")),
    responses((status = 200, description = "`{\"risk_points\": [{\"id\", \"name\", \"category\", \"registered_level\", \"level\", \"colour\", \"status\", \"grid_cell_id\", \"open_alarms\", \"lon\", \"lat\"}]}`")))]
pub async fn points(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(q): QueryParams<PointQuery>,
) -> Result<Json<Value>, AppError> {
    let params = PointParams {
        bbox: q.bbox.as_deref(),
        level: q.level.as_deref(),
        category: q.category.as_deref(),
        status: q.status.as_deref(),
        limit: q.limit,
    };
    let f = service::point_filter(state.catalog, params)?;
    Ok(Json(json!({"risk_points": state.risk.risk_points(&f)?})))
}

/// One risk point: live level, sensors with latest values, open alarms, plan, people.
#[utoipa::path(get, path = "/risk/points/{id}", operation_id = "get_risk_point", tag = "risk", params(("id" = i64, Path, description = "risk point id")),
    responses((status = 200, description = "The list fields plus `responsible_unit`, `responsible_person`, `responsible_phone`, `emergency_plan`, `last_review`, `next_review`, `sensors`: [{\"id\", \"kind\", \"code\", \"status\", \"offline\", \"unit\", \"latest\", \"lon\", \"lat\"}], `alarms`: [Alarm]"),
        (status = 404, description = "No such risk point")))]
pub async fn point(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let mut v = state.risk.risk_point(parse_id(&id)?).await?;
    if let Some(alarms) = v["alarms"].as_array_mut() {
        alarms
            .iter_mut()
            .for_each(|a| crate::model::access::redact_alarm(a, caller.role));
    }
    Ok(Json(v))
}

/// Sensors near a risk point that could watch it, nearest first.
#[utoipa::path(get, path = "/risk/points/{id}/suggested-sensors", operation_id = "suggest_sensors", tag = "risk", params(("id" = i64, Path, description = "risk point id")),
    responses((status = 200, description = "`{\"risk_point_id\", \"radius_m\", \"sensors\": [{\"id\", \"kind\", \"code\", \"distance_m\", \"linked_to\", \"working\", \"lon\", \"lat\"}]}`; kinds per category group and the radius are data (data/rules/risk_raise.toml)"),
        (status = 404, description = "No such risk point")))]
pub async fn suggested(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = parse_id(&id)?;
    let sensors = state.risk.suggested_sensors(id)?;
    Ok(Json(
        json!({"risk_point_id": id, "radius_m": state.risk.rules.suggest_radius_m, "sensors": sensors}),
    ))
}

/// Query of `/risk/coverage` and `/risk/grid-stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridQuery {
    level: Option<String>,
    bbox: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    limit: Option<usize>,
    /// `json` (default) or `geojson`.
    format: Option<String>,
}

fn grid_level(s: &Option<String>) -> Result<GridLevel, AppError> {
    Ok(service::parse_grid_level(s.as_deref())?)
}

/// Which risk points have no working sensor, in total, per category and per grid cell.
#[utoipa::path(get, path = "/risk/coverage", operation_id = "risk_coverage", tag = "risk",
    params(("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat"),
        ("level" = Option<String>, Query, description = "grid level of the per-cell rows (default street)"),
        ("limit" = Option<usize>, Query, description = "uncovered ids listed, default 1000")),
    responses((status = 200, description = "`{\"risk_points\", \"linked\", \"working\", \"coverage\", \"target\": 1.0, \"by_category\": [{\"category\", \"risk_points\", \"linked\", \"working\", \"coverage\"}], \"grid_level\", \"by_grid_cell\": [{\"grid_cell_id\", \"risk_points\", \"linked\", \"working\", \"coverage\", \"unlinked_sensors\", \"unlinked_working\", \"unlinked_offline\"}], \"uncovered_total\", \"uncovered\": [id], \"unlinked_sensors\", \"unlinked_working\", \"unlinked_offline\"}` (closed risk points are left out; unlinked = sensors linked to no risk point, counted in the cell they stand in)")))]
pub async fn coverage(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(q): QueryParams<GridQuery>,
) -> Result<Json<Value>, AppError> {
    let level = grid_level(&q.level)?;
    let b = bbox(&q.bbox)?;
    Ok(Json(state.risk.coverage(
        b.as_ref(),
        level,
        q.limit.unwrap_or(1000).min(100_000),
    )?))
}

/// Counts per grid cell at one level, rolled up through the grid hierarchy.
#[utoipa::path(get, path = "/risk/grid-stats", operation_id = "risk_grid_stats", tag = "risk",
    params(("level" = Option<String>, Query, description = "district, street (default), community, grid or micro_grid"),
        ("bbox" = Option<String>, Query, description = "cells meeting minLon,minLat,maxLon,maxLat"),
        ("format" = Option<String>, Query, description = "`json` (default) or `geojson`: a FeatureCollection of the cells' polygons with the counts as properties, for a choropleth")),
    responses((status = 200, description = "`{\"level\", \"cells\": [{\"id\", \"name\", \"code\", \"level\", \"major\", \"large\", \"general\", \"low\", \"risk_points\", \"covered\", \"coverage\", \"open_alarms\", \"sensors\", \"offline_sensors\", \"unlinked_sensors\", \"unlinked_working\", \"unlinked_offline\"}]}`; risk-point levels are live levels, `sensors`/`offline_sensors` are those linked to the cell's risk points, `unlinked_*` the sensors linked to no risk point that stand in the cell")))]
pub async fn grid_stats(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(q): QueryParams<GridQuery>,
) -> Result<Json<Value>, AppError> {
    let level = grid_level(&q.level)?;
    let b = bbox(&q.bbox)?;
    let cells = state.risk.grid_stats(level, b.as_ref())?;
    let format = q.format.as_deref().map(str::parse).transpose()?;
    Ok(Json(match format.unwrap_or(GridFormat::Json) {
        GridFormat::Json => json!({"level": level, "cells": cells}),
        GridFormat::GeoJson => state.risk.grid_stats_geojson(&cells),
    }))
}

/// Query of `/risk/alarm-density`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityQuery {
    bbox: Option<String>,
}

/// Open alarms as weighted points for a heat map.
#[utoipa::path(get, path = "/risk/alarm-density", operation_id = "alarm_density", tag = "risk",
    params(("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat")),
    responses((status = 200, description = "GeoJSON FeatureCollection of Points, properties `{\"id\", \"severity\", \"rule\", \"status\", \"sensor_id\", \"weight\"}` (weight: notice 1, alarm 3, emergency 5) — a MapLibre `heatmap` layer's source")))]
pub async fn alarm_density(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(q): QueryParams<DensityQuery>,
) -> Result<Json<Value>, AppError> {
    let b = bbox(&q.bbox)?;
    Ok(Json(state.risk.alarm_density(b.as_ref())))
}

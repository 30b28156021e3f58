//! `/admin`: API keys and the audit log, for admins. (`lifeline keys` does the same from
//! the command line on the store directly.)

use super::routes::Routes;
use super::{parse_id, roles, AtLeast, Caller, JsonBody, QueryParams, ReqId};
use crate::auth::{generate_key, hash_key, require};
use crate::model::Role;
use crate::state::AppState;
use crate::AppError;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(audit))
        .routes(routes!(grant_quota))
}

/// A one-off allowance to grant (issue 21).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The key name (or OIDC subject) it is for.
    pub actor: String,
    #[serde(default)]
    pub features: u64,
    #[serde(default)]
    pub area_km2: f64,
}

/// Grants a key a one-off allowance on top of its role's daily quota, for today (admins;
/// audited as `quota_grant`).
#[utoipa::path(post, path = "/admin/quota-grants", operation_id = "grant_quota", tag = "admin",
    request_body(content = Object, description = "`{\"actor\": \"key name\", \"features\"?: n, \"area_km2\"?: x}`", content_type = "application/json"),
    responses((status = 200, description = "The key's usage today after the grant: `{day, features, area_km2, extra_features, extra_area_km2}`"),
        (status = 403, description = "Below the admin role"),
        (status = 422, description = "An empty actor, or a negative or non-finite area")))]
pub async fn grant_quota(
    State(state): State<AppState>,
    AtLeast(admin, _): AtLeast<roles::Admin>,
    rid: ReqId,
    JsonBody(g): JsonBody<Grant>,
) -> Result<Json<Value>, AppError> {
    crate::model::check_name("actor", &g.actor)?;
    if !g.area_km2.is_finite() || g.area_km2 < 0.0 {
        return Err(AppError::Unprocessable(
            "area_km2 must be a number >= 0".into(),
        ));
    }
    let (f, a) = (g.features, g.area_km2);
    let usage = state
        .audit
        .grant(&admin, rid.as_deref(), &g.actor, f, a)
        .await?;
    Ok(Json(json!(usage)))
}

/// A key to create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
}

/// Creates a key; the key itself is in this response only.
#[utoipa::path(post, path = "/admin/keys", operation_id = "create_key", tag = "admin",
    request_body(content = Object, description = "{\"name\": \"…\", \"role\": \"auditor|viewer|contractor|analyst|operator|admin\"}", content_type = "application/json"),
    responses((status = 201, description = "The key (shown once) and its record"), (status = 403, description = "Not an admin")))]
pub async fn create_key(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Admin>,
    JsonBody(new): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    crate::model::check_key_name(&new.name)?;
    let key = generate_key();
    let stored = state
        .store
        .create_api_key(new.name.trim(), new.role, &hash_key(&key), &actor)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": key, "record": stored})),
    ))
}

/// Every key (without secrets).
#[utoipa::path(get, path = "/admin/keys", operation_id = "list_keys", tag = "admin", responses((status = 200, description = "Keys, newest first")))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    require(&caller.0, Role::Admin)?;
    Ok(Json(json!({"keys": state.store.list_api_keys().await?})))
}

/// Revokes a key; it stops working at once on this instance.
#[utoipa::path(delete, path = "/admin/keys/{id}", operation_id = "revoke_key", tag = "admin", params(("id" = i64, Path, description = "key id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such active key")))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    require(&caller.0, Role::Admin)?;
    let id = parse_id(&id)?;
    if !state.store.revoke_api_key(id, &caller.0).await? {
        return Err(AppError::NotFound(format!("no active key {id}")));
    }
    state.auth.forget(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Audit search query (issue 21).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub bbox: Option<String>,
    pub layer: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub f: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    pub limit: Option<usize>,
}

/// Searches the audit log (admins and auditors): who did or read what, where and when.
#[utoipa::path(get, path = "/admin/audit", operation_id = "audit_log", tag = "admin",
    params(("actor" = Option<String>, Query, description = "exactly this key name, OIDC subject or `cli`"),
        ("action" = Option<String>, Query, description = "exactly this action (insert, key_create, excavation_check, ticket_view, trace, ogc_items, ogc_feature, features, analysis, export, tiles, quota_exceeded, quota_grant, …), or `read` for every read"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat: entries whose area intersects it (entries without an area never match)"),
        ("layer" = Option<String>, Query, description = "entries that read this layer"),
        ("from" = Option<String>, Query, description = "at or after: RFC 3339 time or YYYY-MM-DD (UTC midnight)"),
        ("to" = Option<String>, Query, description = "before: RFC 3339 time or YYYY-MM-DD"),
        ("f" = Option<String>, Query, description = "json (default) or csv"),
        ("limit" = Option<usize>, Query, description = "1..100000, default 100")),
    responses((status = 200, description = "`{\"entries\": [...]}` newest first (id, seq, at, actor, role, action, target, detail, request_id, bbox, hash), or the same as CSV"),
        (status = 400, description = "A malformed bbox, time, layer or f"),
        (status = 403, description = "Neither admin nor auditor")))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response, AppError> {
    crate::model::audit::may_read_audit(&caller.0).map_err(crate::auth::AuthError::from)?;
    let (filter, format) = crate::audit::search_request(crate::audit::SearchParams {
        actor: q.actor,
        action: q.action,
        bbox: q.bbox.as_deref(),
        layer: q.layer.as_deref(),
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        f: q.f.as_deref(),
        limit: q.limit,
    })?;
    let entries = state.store.search_audit(&filter).await?;
    Ok(match format {
        crate::audit::SearchFormat::Json => Json(json!({"entries": entries})).into_response(),
        crate::audit::SearchFormat::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::audit::entries_csv(&entries),
        )
            .into_response(),
    })
}

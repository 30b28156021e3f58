//! `/admin`: API keys and the audit log, for admins. (`lifeline keys` does the same from
//! the command line on the store directly.)

use super::routes::Routes;
use super::{parse_id, roles, AtLeast, Caller, JsonBody, QueryParams};
use crate::auth::{generate_key, hash_key, require};
use crate::model::Role;
use crate::state::AppState;
use crate::AppError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
    request_body(content = Object, description = "{\"name\": \"…\", \"role\": \"viewer|contractor|analyst|operator|admin\"}", content_type = "application/json"),
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

/// Audit query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default, deserialize_with = "super::limit")]
    pub limit: Option<usize>,
}

/// The newest audit entries.
#[utoipa::path(get, path = "/admin/audit", operation_id = "audit_log", tag = "admin", params(("limit" = Option<usize>, Query, description = "1..10000, default 100")),
    responses((status = 200, description = "Audit entries, newest first")))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<Value>, AppError> {
    require(&caller.0, Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    Ok(Json(
        json!({"entries": state.store.audit_log(limit).await?}),
    ))
}

//! `/me`: who the caller is — the key's name and role, or the anonymous role — so a client
//! (the web client in `web/`) can check a key at login and show only what the role may do.
//! It reveals nothing the caller does not already hold: no key id, no hash.

use super::routes::Routes;
use super::Caller;
use crate::model::Role;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new().routes(routes!(me))
}

/// The caller's name, role, whether a key was presented, and the roles it includes
/// (least to most privileged). A wrong or revoked key is a 401, so this is how a client
/// checks a key; without a key it answers with the anonymous role, or 401 when anonymous
/// access is off.
#[utoipa::path(get, path = "/me", operation_id = "me", tag = "service",
    responses((status = 200, description = "`{\"name\", \"role\", \"authenticated\", \"roles\"}`"),
        (status = 401, description = "Invalid or revoked key, or no key while anonymous access is off")))]
pub async fn me(caller: Caller) -> Json<Value> {
    Json(describe(&caller.0))
}

fn describe(actor: &crate::model::Actor) -> Value {
    // The auditor role sits outside the hierarchy (it reads the audit log only): listed
    // for an auditor alone.
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| actor.has(**r) && (**r != Role::Auditor || actor.role == Role::Auditor))
        .map(|r| r.as_str())
        .collect();
    json!({
        "name": actor.name,
        "role": actor.role.as_str(),
        // A key, or a single sign-on token (which has no key id).
        "authenticated": actor.key_id.is_some()
            || actor.name.starts_with(crate::auth::oidc::ACTOR_PREFIX),
        "roles": roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Actor;

    #[test]
    fn describes_the_role_and_the_roles_it_includes() {
        let v = describe(&Actor::anonymous(Role::Contractor));
        assert_eq!(v["role"], "contractor");
        assert_eq!(v["authenticated"], false);
        assert_eq!(v["roles"], json!(["viewer", "contractor"]));
        let v = describe(&Actor {
            name: "ops".into(),
            key_id: Some(7),
            role: Role::Operator,
        });
        assert_eq!(v["name"], "ops");
        assert_eq!(v["authenticated"], true);
        assert_eq!(v["roles"].as_array().unwrap().len(), 4);
        assert!(v.get("key_id").is_none());
    }
}

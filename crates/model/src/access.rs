//! Access by role: whether an actor may do what needs a role. Who the actor is (keys,
//! tokens) is the server's; what each role may do is decided here, once.

use super::{Actor, Role};

/// An actor whose role is below what an operation needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this needs the '{needed}' role; your key has '{has}'")]
pub struct Forbidden {
    pub needed: Role,
    pub has: Role,
}

/// Checks that an actor has at least `role`.
pub fn require(actor: &Actor, role: Role) -> Result<(), Forbidden> {
    if actor.has(role) {
        Ok(())
    } else {
        Err(Forbidden {
            needed: role,
            has: actor.role,
        })
    }
}

/// Whether `role` may see who acted: key names and single-sign-on subjects in edits, alarm
/// histories and the like (issue 21). Operators coordinate each other's work and admins
/// manage the keys; every lower role sees only the role that acted.
pub fn sees_actors(role: Role) -> bool {
    role >= Role::Operator
}

/// The name the rule engine acts under in alarm histories: not a key, shown to everyone.
pub const SYSTEM_ACTOR: &str = "system";

/// An alarm (as JSON) as `role` may see it: below [`sees_actors`], each history entry's
/// `by` names the role that acted instead of the key (the rule engine's `system` stays).
pub fn redact_alarm(alarm: &mut serde_json::Value, role: Role) {
    if sees_actors(role) {
        return;
    }
    if let Some(history) = alarm
        .get_mut("history")
        .and_then(serde_json::Value::as_array_mut)
    {
        for h in history {
            if h["by"] == SYSTEM_ACTOR {
                continue;
            }
            let shown = h["role"].as_str().unwrap_or("someone").to_string();
            h["by"] = serde_json::Value::String(shown);
        }
    }
}

/// An edit event's data (as JSON) as `role` may see it: below [`sees_actors`], without
/// the `actor` who made the edit.
pub fn redact_edit(edit: &mut serde_json::Value, role: Role) {
    if !sees_actors(role) {
        if let Some(m) = edit.as_object_mut() {
            m.remove("actor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_names_are_shown_to_operators_and_admins_only() {
        for role in Role::ALL {
            let mut alarm = json!({"history": [
                {"by": "system", "role": null},
                {"by": "ops-zhang", "role": "operator"}]});
            let mut edit = json!({"layer": "pipelines", "actor": "ops-zhang"});
            redact_alarm(&mut alarm, *role);
            redact_edit(&mut edit, *role);
            let sees = *role >= Role::Operator;
            assert_eq!(alarm["history"][0]["by"], "system");
            assert_eq!(alarm["history"][1]["by"] == "ops-zhang", sees, "{role}");
            assert_eq!(edit.get("actor").is_some(), sees, "{role}");
            if !sees {
                assert_eq!(alarm["history"][1]["by"], "operator");
            }
        }
    }
}

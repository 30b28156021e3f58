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

//! Pipeline owners and operators, with the emergency contact an excavation check hands out.

use super::{check_id, check_required_text, check_text, ModelError};
use serde::{Deserialize, Serialize};

/// A utility company or agency that owns or operates pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    /// Who to call when a pipe is hit: a duty desk or person.
    pub emergency_contact: String,
    /// 24-hour emergency phone number.
    pub emergency_phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Owner {
    /// Checks names and the phone number's shape.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_id("id", self.id, true)?;
        check_required_text("name", &self.name, 200)?;
        check_required_text("emergency_contact", &self.emergency_contact, 200)?;
        check_required_text("emergency_phone", &self.emergency_phone, 40)?;
        if !self
            .emergency_phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
        {
            return Err(ModelError::invalid(
                "emergency_phone",
                "may hold only digits, spaces and + - ( )",
            ));
        }
        check_text("email", &self.email, 200)?;
        if let Some(e) = &self.email {
            if !e.contains('@') {
                return Err(ModelError::invalid("email", "is not an e-mail address"));
            }
        }
        Ok(())
    }
}

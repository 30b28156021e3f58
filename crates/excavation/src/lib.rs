//! The excavation check (issue 4): before a contractor digs, every pipeline the work could
//! hit, judged by the clearance rules of `data/rules/clearances.toml` in metres of the
//! deployment's projected CRS, with the owners to notify; and the ticket that follows the
//! dig from submission through owner responses to closure.
//!
//! - [`rules`]: the rule table as typed, validated data, and the per-pipe thresholds.
//! - [`check`]: the dig's limits, and the check engine over the spatial index.
//! - [`report`]: JSON, GeoJSON and printable HTML renderings of a check.
//! - [`service`]: the operations the HTTP layer calls, with their access rules.
//! - [`notify`]: the owners' notification messages and the webhook delivery worker.
//! - [`ticket_view`]: GeoJSON and HTML renderings of a stored ticket.
//!
//! The records they produce and keep are the model's: the check result
//! ([`lifeline_model::check_result`]), the ticket with its state machine and deadlines
//! ([`lifeline_model::ticket`], working days in [`lifeline_model::calendar`]) and the
//! notification outbox ([`lifeline_model::notification`]).
//!
//! Settings (limits, validity windows, response deadlines) are `data/excavation.toml`,
//! validated at load like the rules.

pub mod check;
pub mod notify;
pub mod report;
pub mod rules;
pub mod service;
pub mod ticket_view;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use lifeline_model::check_result::{CheckRequest, CheckResult, Conflict, DigMethod, Severity};
pub use lifeline_model::ticket::TicketSettings;
pub use rules::{RuleError, Rules};

/// Why an excavation request or operation failed. Every variant but `Internal` is the
/// client's doing and names the problem.
#[derive(Debug, thiserror::Error)]
pub enum ExcavationError {
    /// A value that breaks a rule of the request (geometry, limits, depths, dates).
    #[error("{0}")]
    Invalid(String),
    /// Malformed input (wrong geometry type, missing field).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A state change the ticket's state does not allow, or an idempotency key reused with
    /// a different body.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] lifeline_store::StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<lifeline_model::ticket::TicketError> for ExcavationError {
    fn from(e: lifeline_model::ticket::TicketError) -> Self {
        use lifeline_model::ticket::TicketError;
        match e {
            TicketError::Invalid(m) => ExcavationError::Invalid(m),
            TicketError::BadRequest(m) => ExcavationError::BadRequest(m),
            TicketError::Conflict(m) => ExcavationError::Conflict(m),
            TicketError::NotFound(m) => ExcavationError::NotFound(m),
            TicketError::Forbidden(m) => ExcavationError::Forbidden(m),
            TicketError::Internal(m) => ExcavationError::Internal(m),
        }
    }
}

/// Request limits (like KLIC's 50 vertices / 500 × 500 m, or LinesearchbeforeUdig's 1 km²).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most vertices in the dig geometry (all rings together).
    pub max_vertices: usize,
    /// Largest dig area, m² (the buffered area for a LineString).
    pub max_area_m2: f64,
    /// Widest trench for a LineString dig, m.
    pub max_width_m: f64,
    /// Deepest work, m below ground.
    pub max_depth_m: f64,
    /// Longest work period, days.
    pub max_duration_days: i64,
    /// How far in the past a start date may be (emergency work already under way), days.
    pub max_start_in_past_days: i64,
    /// How far ahead a start date may be (a check is for work being planned now), days.
    #[serde(default = "default_start_ahead_days")]
    pub max_start_ahead_days: i64,
    /// Longest `work_type` text, characters.
    pub max_work_type_chars: usize,
}

fn default_start_ahead_days() -> i64 {
    366
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    /// Rule file, relative to the settings file (the built-in rules when absent).
    #[serde(default)]
    rules: Option<PathBuf>,
    limits: Limits,
    tickets: TicketSettings,
    #[serde(default)]
    notifications: notify::NotifySettings,
}

/// The rules and settings of the excavation check, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct Excavation {
    pub rules: Rules,
    pub limits: Limits,
    pub tickets: TicketSettings,
    pub notifications: notify::NotifySettings,
    /// Wakes this process's notification worker ([`notify::spawn`]) after a submission.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
    /// The utility networks as traces see them, for a violation's "if struck" (issue 15);
    /// the server shares it with the trace endpoints, so both build each network once.
    pub networks: std::sync::Arc<lifeline_trace::service::Networks>,
}

impl Excavation {
    /// The rules and settings compiled in from `data/`.
    pub fn builtin() -> Excavation {
        Excavation::parse(include_str!("../../../data/excavation.toml"), None)
            .expect("the built-in excavation settings are checked by unit tests")
    }

    /// Reads a settings file (and the rule file it names, relative to it).
    pub fn load(path: &Path) -> Result<Excavation, RuleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RuleError::File(format!("cannot read {}: {e}", path.display())))?;
        Excavation::parse(&text, path.parent())
    }

    /// The configured settings file, or the built-in ones.
    pub fn from_path(path: Option<&Path>) -> Result<Excavation, RuleError> {
        match path {
            Some(p) => Excavation::load(p),
            None => Ok(Excavation::builtin()),
        }
    }

    /// Parses and validates settings text; `base` resolves a relative `rules` path (none:
    /// the built-in rules).
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Excavation, RuleError> {
        let mut f: SettingsFile = toml::from_str(text)
            .map_err(|e| RuleError::Parse(format!("excavation settings: {e}")))?;
        let rules = match (&f.rules, base) {
            (Some(r), Some(b)) => Rules::load(&b.join(r))?,
            _ => Rules::builtin(),
        };
        let bad = |field: &str, m: &str| {
            Err(RuleError::Rule {
                id: field.to_string(),
                message: m.to_string(),
            })
        };
        let l = &f.limits;
        if !(4..=100_000).contains(&l.max_vertices) {
            return bad("limits.max_vertices", "must be 4..100000");
        }
        if !l.max_area_m2.is_finite() || l.max_area_m2 <= 0.0 || l.max_area_m2 > 1.0e8 {
            return bad(
                "limits.max_area_m2",
                "must be a positive area up to 100 km²",
            );
        }
        if !l.max_width_m.is_finite() || l.max_width_m <= 0.0 || l.max_width_m > 1000.0 {
            return bad("limits.max_width_m", "must be in (0, 1000] m");
        }
        if !l.max_depth_m.is_finite() || l.max_depth_m <= 0.0 || l.max_depth_m > 200.0 {
            return bad("limits.max_depth_m", "must be in (0, 200] m");
        }
        if l.max_duration_days < 1
            || l.max_start_in_past_days < 0
            || l.max_start_ahead_days < 0
            || l.max_work_type_chars < 1
        {
            return bad(
                "limits",
                "max_duration_days and max_work_type_chars must be positive, max_start_in_past_days and max_start_ahead_days >= 0",
            );
        }
        let t = &f.tickets;
        if t.validity_days < 1 || t.response_hours < 1 || t.emergency_response_hours < 1 {
            return bad(
                "tickets",
                "validity_days and response hours must be positive",
            );
        }
        if t.emergency_response_hours > t.response_hours {
            return bad(
                "tickets.emergency_response_hours",
                "must not exceed response_hours",
            );
        }
        if !(1..=10_000).contains(&t.max_list) {
            return bad("tickets.max_list", "must be 1..10000");
        }
        if t.validity_days > 366 || t.response_hours > 24 * 60 {
            return bad(
                "tickets",
                "validity_days must be at most 366 and response_hours at most 1440",
            );
        }
        if let Err(m) = f.tickets.calendar.validate() {
            return bad("tickets.calendar", &m);
        }
        if let Err(m) = f.notifications.validate() {
            return bad("notifications", &m);
        }
        Ok(Excavation {
            rules,
            limits: f.limits,
            tickets: f.tickets,
            notifications: f.notifications,
            wake: Default::default(),
            networks: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_settings_load() {
        let e = Excavation::builtin();
        assert_eq!(e.limits.max_area_m2, 1_000_000.0);
        assert!(e.tickets.validity_days > 0);
    }

    #[test]
    fn bad_settings_are_named() {
        let text = include_str!("../../../data/excavation.toml");
        let e = Excavation::parse(
            &text.replace("max_area_m2 = 1_000_000.0", "max_area_m2 = -1.0"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_area_m2"), "{e}");
        let e = Excavation::parse(&format!("{text}\ncolour = 1\n"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn settings_file_names_its_rule_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.toml"),
            include_str!("../../../data/rules/clearances.toml")
                .replace("clearance_m = 1.2", "clearance_m = 1.25"),
        )
        .unwrap();
        let s = format!(
            "rules = \"r.toml\"\n{}",
            include_str!("../../../data/excavation.toml")
        );
        std::fs::write(dir.path().join("s.toml"), s).unwrap();
        let e = Excavation::load(&dir.path().join("s.toml")).unwrap();
        assert!(e.rules.horizontal.iter().any(|r| r.clearance_m == 1.25));
        std::fs::write(dir.path().join("r.toml"), "version = 1\n").unwrap();
        let err = Excavation::load(&dir.path().join("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tolerance") || err.contains("parse"), "{err}");
    }
}

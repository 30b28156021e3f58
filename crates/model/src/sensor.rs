//! Sensing devices: their kind, where they are, and what they watch.

use super::{check_id, check_text, geom, ModelError};
use chrono::NaiveDate;
use geo::Point;
use serde::{Deserialize, Serialize};

string_enum! {
    /// Sensor kinds (domain reference §5); units and thresholds per kind live in
    /// `data/sensor_kinds.toml`.
    pub enum SensorKind {
        GasLel = "gas_lel",
        Pressure = "pressure",
        Flow = "flow",
        Level = "level",
        Displacement = "displacement",
        Crack = "crack",
        Strain = "strain",
        Vibration = "vibration",
        Temperature = "temperature",
        Video = "video",
    }
}

string_enum! {
    /// Operating state of a device.
    pub enum SensorStatus {
        Online = "online",
        Offline = "offline",
        Fault = "fault",
        Maintenance = "maintenance",
    }
}

/// One sensing device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sensor {
    #[serde(default)]
    pub id: i64,
    pub kind: SensorKind,
    /// Manufacturer serial or asset code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The pipeline it watches, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<i64>,
    /// The risk point it is linked to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_point_id: Option<i64>,
    #[serde(default = "default_status")]
    pub status: SensorStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<NaiveDate>,
    /// CGCS2000 lon/lat.
    #[serde(with = "geom::point")]
    pub location: Point<f64>,
}

fn default_status() -> SensorStatus {
    SensorStatus::Online
}

impl Sensor {
    /// Checks ids and the location.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_id("id", self.id, true)?;
        if let Some(p) = self.pipeline_id {
            check_id("pipeline_id", p, false)?;
        }
        if let Some(r) = self.risk_point_id {
            check_id("risk_point_id", r, false)?;
        }
        check_text("code", &self.code, 64)?;
        geom::check_point(&self.location)
    }
}

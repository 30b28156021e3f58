//! Underground pipelines: the nine kinds of the domain reference (plus heat), their
//! kind-specific attributes, depths, positional accuracy and status.

use super::{check_id, check_range, check_text, geom, ModelError};
use chrono::NaiveDate;
use geo::LineString;
use serde::{Deserialize, Serialize};

string_enum! {
    /// Pipeline kinds (domain reference §2).
    pub enum PipeKind {
        WaterSupply = "water_supply",
        Drainage = "drainage",
        Gas = "gas",
        OilGas = "oil_gas",
        Power = "power",
        Telecom = "telecom",
        BroadcastTv = "broadcast_tv",
        StreetLighting = "street_lighting",
        TrafficSignal = "traffic_signal",
        Heat = "heat",
    }
}

impl PipeKind {
    /// Whether the kind is carried by gravity (and so does not yield at conflicts).
    pub fn is_gravity(self) -> bool {
        matches!(self, PipeKind::Drainage)
    }
}

string_enum! {
    /// Drainage sub-kinds.
    pub enum DrainageKind {
        Storm = "storm",
        Sewage = "sewage",
        Combined = "combined",
    }
}

string_enum! {
    /// Gas pressure classes (MPa): low < 0.01; medium B 0.01–0.2; medium A 0.2–0.4;
    /// sub-high B 0.4–0.8; sub-high A 0.8–1.6; high B 1.6–2.5; high A 2.5–4.0.
    pub enum GasPressure {
        Low = "low",
        MediumB = "medium_b",
        MediumA = "medium_a",
        SubHighB = "sub_high_b",
        SubHighA = "sub_high_a",
        HighB = "high_b",
        HighA = "high_a",
    }
}

impl GasPressure {
    /// The class a pressure in MPa falls in.
    pub fn from_mpa(p: f64) -> Option<GasPressure> {
        Some(match p {
            p if !p.is_finite() || p < 0.0 => return None,
            p if p < 0.01 => GasPressure::Low,
            p if p <= 0.2 => GasPressure::MediumB,
            p if p <= 0.4 => GasPressure::MediumA,
            p if p <= 0.8 => GasPressure::SubHighB,
            p if p <= 1.6 => GasPressure::SubHighA,
            p if p <= 2.5 => GasPressure::HighB,
            p if p <= 4.0 => GasPressure::HighA,
            _ => return None,
        })
    }
}

string_enum! {
    /// How the pipe is buried.
    pub enum Burial {
        Direct = "direct",
        Duct = "duct",
        Tunnel = "tunnel",
    }
}

string_enum! {
    /// Survey quality levels of ASCE 38-22 / PAS 128.
    pub enum QualityLevel {
        QlA = "QL-A",
        QlB = "QL-B",
        QlC = "QL-C",
        QlD = "QL-D",
    }
}

string_enum! {
    /// Life-cycle status of a pipe.
    pub enum PipeStatus {
        InService = "in_service",
        Planned = "planned",
        UnderConstruction = "under_construction",
        Abandoned = "abandoned",
        Removed = "removed",
    }
}

/// One pipeline segment (typically manhole to manhole), the unit surveyors deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Positive id; 0 (or absent) on insert lets the store assign one.
    #[serde(default)]
    pub id: i64,
    pub kind: PipeKind,
    /// Drainage only: storm, sewage or combined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_kind: Option<DrainageKind>,
    /// Gas and long-distance oil/gas only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure_class: Option<GasPressure>,
    /// Power only, kV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voltage_kv: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
    /// Round pipes: nominal diameter in mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diameter_mm: Option<f64>,
    /// Box sections (culverts, duct banks): width × height in mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_width_mm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_height_mm: Option<f64>,
    /// Depth of the top of the pipe below ground at the start vertex, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_start_m: Option<f64>,
    /// Depth of the top of the pipe below ground at the end vertex, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_end_m: Option<f64>,
    /// Invert elevation at the start (1985 national height datum), m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invert_start_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invert_end_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burial: Option<Burial>,
    /// The owner/operator ([`super::Owner`]) responsible for the pipe.
    pub owner_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year_built: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_date: Option<NaiveDate>,
    /// Plan (horizontal) positional accuracy, ± cm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_accuracy_cm: Option<f64>,
    /// Depth accuracy, ± cm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_accuracy_cm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_level: Option<QualityLevel>,
    #[serde(default = "default_status")]
    pub status: PipeStatus,
    /// The network node ([`super::NetworkNode`]) at the start vertex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_node: Option<i64>,
    /// The network node at the end vertex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_node: Option<i64>,
    /// CGCS2000 lon/lat.
    #[serde(with = "geom::line")]
    pub geometry: LineString<f64>,
}

fn default_status() -> PipeStatus {
    PipeStatus::InService
}

impl Pipeline {
    /// A pipe with only the required fields set: every optional attribute unknown, in
    /// service. Use struct-update syntax to add what is known.
    pub fn new(id: i64, kind: PipeKind, owner_id: i64, geometry: LineString<f64>) -> Self {
        Pipeline {
            id,
            kind,
            sub_kind: None,
            pressure_class: None,
            voltage_kv: None,
            material: None,
            diameter_mm: None,
            section_width_mm: None,
            section_height_mm: None,
            depth_start_m: None,
            depth_end_m: None,
            invert_start_m: None,
            invert_end_m: None,
            burial: None,
            owner_id,
            year_built: None,
            survey_date: None,
            plan_accuracy_cm: None,
            depth_accuracy_cm: None,
            quality_level: None,
            status: PipeStatus::InService,
            from_node: None,
            to_node: None,
            geometry,
        }
    }

    /// Checks ranges, kind-specific fields and the geometry.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_id("id", self.id, true)?;
        check_id("owner_id", self.owner_id, false)?;
        if self.sub_kind.is_some() && self.kind != PipeKind::Drainage {
            return Err(ModelError::invalid(
                "sub_kind",
                "only drainage pipes have a sub_kind",
            ));
        }
        if self.pressure_class.is_some() && !matches!(self.kind, PipeKind::Gas | PipeKind::OilGas) {
            return Err(ModelError::invalid(
                "pressure_class",
                "only gas and oil_gas pipes have a pressure class",
            ));
        }
        if self.voltage_kv.is_some() && self.kind != PipeKind::Power {
            return Err(ModelError::invalid(
                "voltage_kv",
                "only power cables have a voltage",
            ));
        }
        check_range("voltage_kv", self.voltage_kv, 0.0, 1200.0)?;
        check_text("material", &self.material, 64)?;
        check_range("diameter_mm", self.diameter_mm, 1.0, 10_000.0)?;
        check_range("section_width_mm", self.section_width_mm, 1.0, 20_000.0)?;
        check_range("section_height_mm", self.section_height_mm, 1.0, 20_000.0)?;
        check_range("depth_start_m", self.depth_start_m, 0.0, 100.0)?;
        check_range("depth_end_m", self.depth_end_m, 0.0, 100.0)?;
        check_range("invert_start_m", self.invert_start_m, -500.0, 9000.0)?;
        check_range("invert_end_m", self.invert_end_m, -500.0, 9000.0)?;
        if let Some(y) = self.year_built {
            if !(1800..=2100).contains(&y) {
                return Err(ModelError::invalid(
                    "year_built",
                    format!("{y} is outside 1800..2100"),
                ));
            }
        }
        check_range("plan_accuracy_cm", self.plan_accuracy_cm, 0.0, 10_000.0)?;
        check_range("depth_accuracy_cm", self.depth_accuracy_cm, 0.0, 10_000.0)?;
        for (field, node) in [("from_node", self.from_node), ("to_node", self.to_node)] {
            if let Some(n) = node {
                check_id(field, n, false)?;
            }
        }
        if self.from_node.is_some() && self.from_node == self.to_node {
            return Err(ModelError::invalid(
                "to_node",
                "a pipe cannot start and end at the same node",
            ));
        }
        geom::check_line(&self.geometry)
    }

    /// The outside size of the pipe in metres (diameter, or the larger section side), if known.
    pub fn size_m(&self) -> Option<f64> {
        self.diameter_mm
            .or(match (self.section_width_mm, self.section_height_mm) {
                (Some(w), Some(h)) => Some(w.max(h)),
                (w, h) => w.or(h),
            })
            .map(|mm| mm / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "kind": "gas", "pressure_class": "medium_b", "owner_id": 1, "diameter_mm": 160.0,
            "geometry": {"type": "LineString", "coordinates": [[106.5, 29.5], [106.501, 29.5]]}
        })
    }

    #[test]
    fn parses_and_validates() {
        let p: Pipeline = serde_json::from_value(sample()).unwrap();
        p.validate().unwrap();
        assert_eq!(p.status, PipeStatus::InService);
        assert_eq!(p.size_m(), Some(0.16));
    }

    #[test]
    fn unknown_kind_names_allowed_values() {
        let mut v = sample();
        v["kind"] = "lava".into();
        let e = serde_json::from_value::<Pipeline>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lava"), "{e}");
    }

    #[test]
    fn kind_specific_fields() {
        let mut v = sample();
        v["kind"] = "water_supply".into();
        let p: Pipeline = serde_json::from_value(v).unwrap();
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("pressure_class"));
    }

    #[test]
    fn gas_pressure_classes() {
        assert_eq!(GasPressure::from_mpa(0.005), Some(GasPressure::Low));
        assert_eq!(GasPressure::from_mpa(0.3), Some(GasPressure::MediumA));
        assert_eq!(GasPressure::from_mpa(3.0), Some(GasPressure::HighA));
        assert_eq!(GasPressure::from_mpa(5.0), None);
    }
}

//! A small, valid data set around Jiulongpo (lon ≈ 106.5, lat ≈ 29.5): two owners, a
//! district and a street cell, five pipelines of different kinds, two risk points, three
//! sensors, and the water main's two end nodes (a plant and a valve). Also JSON bodies for
//! the API.

use lifeline::model::*;
use serde_json::{json, Value};

/// A counter-clockwise square polygon of side `d` degrees.
pub fn square(x: f64, y: f64, d: f64) -> geo::Polygon<f64> {
    geo::Polygon::new(
        geo::LineString::from(vec![(x, y), (x + d, y), (x + d, y + d), (x, y + d), (x, y)]),
        vec![],
    )
}

/// A water main from (x, y) eastwards by `dx` degrees.
pub fn pipe(id: i64, owner_id: i64, kind: PipeKind, x: f64, y: f64, dx: f64) -> Pipeline {
    Pipeline {
        id,
        kind,
        sub_kind: (kind == PipeKind::Drainage).then_some(DrainageKind::Sewage),
        pressure_class: (kind == PipeKind::Gas).then_some(GasPressure::MediumB),
        voltage_kv: (kind == PipeKind::Power).then_some(10.0),
        material: Some("ductile iron".into()),
        diameter_mm: Some(300.0),
        section_width_mm: None,
        section_height_mm: None,
        depth_start_m: Some(1.2),
        depth_end_m: Some(1.4),
        invert_start_m: None,
        invert_end_m: None,
        burial: Some(Burial::Direct),
        owner_id,
        year_built: Some(2005),
        survey_date: Some(chrono::NaiveDate::from_ymd_opt(2023, 5, 1).unwrap()),
        plan_accuracy_cm: Some(10.0),
        depth_accuracy_cm: Some(15.0),
        quality_level: Some(QualityLevel::QlB),
        status: PipeStatus::InService,
        from_node: None,
        to_node: None,
        geometry: geo::LineString::from(vec![(x, y), (x + dx, y + dx / 10.0)]),
    }
}

/// An owner.
pub fn owner(id: i64, name: &str) -> Owner {
    Owner {
        id,
        name: name.into(),
        emergency_contact: "值班调度".into(),
        emergency_phone: "023-6888 0000".into(),
        email: Some("duty@example.cn".into()),
    }
}

/// The fixture data set.
pub fn dataset() -> Dataset {
    let district = GridCell {
        id: 1,
        level: GridLevel::District,
        parent_id: None,
        name: "九龙坡区".into(),
        code: "500107".into(),
        geometry: geo::MultiPolygon(vec![square(106.40, 29.40, 0.2)]),
    };
    let street = GridCell {
        id: 2,
        level: GridLevel::Street,
        parent_id: Some(1),
        name: "谢家湾街道".into(),
        code: "500107001".into(),
        geometry: geo::MultiPolygon(vec![square(106.45, 29.45, 0.1)]),
    };
    let risk = |id, cat: &str, level, x, y| RiskPoint {
        id,
        category: cat.into(),
        level,
        name: format!("风险点 {id}"),
        grid_cell_id: Some(2),
        responsible_unit: "谢家湾街道办事处".into(),
        responsible_person: "张伟".into(),
        responsible_phone: Some("13800000000".into()),
        emergency_plan: Some("YA-2024-001".into()),
        last_review: chrono::NaiveDate::from_ymd_opt(2025, 1, 1),
        next_review: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        status: RiskStatus::Active,
        geometry: geo::Geometry::Point(geo::point!(x: x, y: y)),
    };
    let sensor = |id, kind, pipeline_id, risk_point_id, x, y| Sensor {
        id,
        kind,
        code: Some(format!("SN-{id}")),
        pipeline_id,
        risk_point_id,
        status: SensorStatus::Online,
        installed: chrono::NaiveDate::from_ymd_opt(2024, 3, 1),
        location: geo::point!(x: x, y: y),
    };
    let plant = NetworkNode {
        source_kind: Some(SourceKind::WaterPlant),
        name: Some("九龙坡水厂".into()),
        ..NetworkNode::new(
            1,
            PipeKind::WaterSupply,
            NodeType::Source,
            geo::point!(x: 106.50, y: 29.50),
        )
    };
    let valve = NetworkNode {
        code: Some("V-0001".into()),
        valve_condition: Some(ValveCondition::Operable),
        ..NetworkNode::new(
            2,
            PipeKind::WaterSupply,
            NodeType::Valve,
            geo::point!(x: 106.501, y: 29.5001),
        )
    };
    Dataset {
        owners: vec![owner(1, "重庆水务集团"), owner(2, "重庆燃气集团")],
        grid_cells: vec![district, street],
        nodes: vec![plant, valve],
        pipelines: vec![
            Pipeline {
                from_node: Some(1),
                to_node: Some(2),
                ..pipe(1, 1, PipeKind::WaterSupply, 106.50, 29.50, 0.001)
            },
            pipe(2, 2, PipeKind::Gas, 106.50, 29.5001, 0.001),
            pipe(3, 1, PipeKind::Drainage, 106.51, 29.51, 0.002),
            pipe(4, 2, PipeKind::Power, 106.52, 29.52, 0.001),
            pipe(5, 1, PipeKind::Telecom, 106.53, 29.53, 0.001),
        ],
        risk_points: vec![
            risk(1, "gas_pipe_leak", RiskLevel::Major, 106.5005, 29.5001),
            risk(
                2,
                "drain_waterlogging",
                RiskLevel::General,
                106.511,
                29.5101,
            ),
        ],
        sensors: vec![
            sensor(1, SensorKind::GasLel, Some(2), Some(1), 106.5005, 29.50012),
            sensor(2, SensorKind::Level, Some(3), Some(2), 106.511, 29.51012),
            sensor(3, SensorKind::Pressure, Some(1), None, 106.5002, 29.50002),
        ],
    }
}

/// A valid GeoJSON Feature body for a new water pipe owned by owner 1.
pub fn pipe_feature() -> Value {
    json!({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[106.505, 29.505], [106.506, 29.5055]]},
        "properties": {"kind": "water_supply", "owner_id": 1, "diameter_mm": 200.0, "material": "PE", "depth_start_m": 1.1}
    })
}

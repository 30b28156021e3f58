//! Support for the store conformance suite: fresh stores of both backends, and small
//! constructors for realistic records around Jiulongpo, Chongqing (lon ≈ 106.5,
//! lat ≈ 29.5), each in a "full" form (every optional field set) and a "minimal" one.
#![allow(dead_code)]

use chrono::NaiveDate;
use geo::{LineString, MultiPolygon, Point, Polygon};
use lifeline::model::*;
use lifeline::store::{SharedStore, Store, StoreInfo};
use std::sync::Arc;

/// A store under test, with whatever must live as long as it (the GeoPackage's temp dir).
pub struct TestStore {
    pub store: SharedStore,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

/// A PostGIS store on a fresh database of the process-wide throwaway cluster.
pub async fn postgis() -> TestStore {
    let url = lifeline_pgcluster::shared()
        .fresh_database("conformance")
        .expect("create a test database");
    let store = lifeline::store::postgis::PostgisStore::connect(&url, 4)
        .await
        .expect("connect to the test database");
    TestStore {
        store: Arc::new(store),
        _dir: None,
    }
}

/// A PostGIS store on a fresh database of the process-wide throwaway Citus cluster (a
/// coordinator and two workers); `connect` migrates it, which lays it out for Citus.
pub async fn citus() -> TestStore {
    let url = lifeline_pgcluster::shared_citus()
        .fresh_database("conformance")
        .expect("create a test database on the Citus cluster");
    let store = lifeline::store::postgis::PostgisStore::connect(&url, 4)
        .await
        .expect("connect to the Citus coordinator");
    TestStore {
        store: Arc::new(store),
        _dir: None,
    }
}

/// A GeoPackage store on a new file in a temp dir.
pub async fn gpkg() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = lifeline::store::gpkg::GpkgStore::open(&dir.path().join("conformance.gpkg"))
        .expect("create the GeoPackage");
    store.migrate().await.expect("migrate the GeoPackage");
    TestStore {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// The actor the tests write as.
pub fn actor() -> Actor {
    Actor {
        name: "conformance".into(),
        key_id: None,
        role: Role::Operator,
    }
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// A counter-clockwise rectangle `w` × `h` degrees with its south-west corner at (x, y).
pub fn rect(x: f64, y: f64, w: f64, h: f64) -> Polygon<f64> {
    Polygon::new(
        LineString::from(vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]),
        vec![],
    )
}

/// A rectangle with a clockwise rectangular hole in its middle.
pub fn rect_with_hole(x: f64, y: f64, w: f64, h: f64) -> Polygon<f64> {
    let (hx, hy, hw, hh) = (x + w / 4.0, y + h / 4.0, w / 2.0, h / 2.0);
    Polygon::new(
        LineString::from(vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]),
        vec![LineString::from(vec![
            (hx, hy),
            (hx, hy + hh),
            (hx + hw, hy + hh),
            (hx + hw, hy),
            (hx, hy),
        ])],
    )
}

/// An owner with every field set.
pub fn owner_full(id: i64) -> Owner {
    Owner {
        id,
        name: "重庆燃气集团股份有限公司".into(),
        emergency_contact: "燃气抢险调度中心".into(),
        emergency_phone: "023-6777 0000".into(),
        email: Some("qiangxian@cqgas.example.cn".into()),
    }
}

/// An owner with only the required fields.
pub fn owner_min(id: i64) -> Owner {
    Owner {
        id,
        name: "重庆水务集团".into(),
        emergency_contact: "供水热线".into(),
        emergency_phone: "96968".into(),
        email: None,
    }
}

/// The Jiulongpo district cell: two parts, one with a hole (coordinates with many digits,
/// to check they survive bit for bit).
pub fn district(id: i64) -> GridCell {
    GridCell {
        id,
        level: GridLevel::District,
        parent_id: None,
        name: "九龙坡区".into(),
        code: "500107".into(),
        geometry: MultiPolygon(vec![
            rect_with_hole(106.3712345678901, 29.3398765432109, 0.25, 0.2),
            rect(106.7, 29.7, 0.05, 0.05),
        ]),
    }
}

/// A street cell inside [`district`].
pub fn street(id: i64, parent: i64) -> GridCell {
    GridCell {
        id,
        level: GridLevel::Street,
        parent_id: Some(parent),
        name: "谢家湾街道".into(),
        code: "500107001".into(),
        geometry: MultiPolygon(vec![rect(106.52, 29.52, 0.03, 0.02)]),
    }
}

/// A medium-pressure gas main with every optional field set.
pub fn pipeline_full(id: i64, owner_id: i64) -> Pipeline {
    Pipeline {
        id,
        kind: PipeKind::Gas,
        sub_kind: None,
        pressure_class: Some(GasPressure::MediumA),
        voltage_kv: None,
        material: Some("PE100 SDR11".into()),
        diameter_mm: Some(315.0),
        section_width_mm: Some(400.0),
        section_height_mm: Some(350.5),
        depth_start_m: Some(1.25),
        depth_end_m: Some(1.4),
        invert_start_m: Some(241.37),
        invert_end_m: Some(240.98),
        burial: Some(Burial::Direct),
        owner_id,
        year_built: Some(2011),
        survey_date: Some(date(2023, 4, 18)),
        plan_accuracy_cm: Some(5.0),
        depth_accuracy_cm: Some(7.5),
        quality_level: Some(QualityLevel::QlA),
        status: PipeStatus::InService,
        from_node: None,
        to_node: None,
        geometry: LineString::from(vec![
            (106.5123456789012, 29.5012345678901),
            (106.5131, 29.5016),
            (106.5142, 29.50185),
        ]),
    }
}

/// [`pipeline_full`] joined to the network: from node 400 to node 401.
pub fn pipeline_joined(id: i64, owner_id: i64) -> Pipeline {
    Pipeline {
        from_node: Some(400),
        to_node: Some(401),
        ..pipeline_full(id, owner_id)
    }
}

/// A drainage pipe with only the required fields.
pub fn pipeline_min(id: i64, owner_id: i64) -> Pipeline {
    Pipeline {
        status: PipeStatus::Planned,
        ..Pipeline::new(
            id,
            PipeKind::Drainage,
            owner_id,
            LineString::from(vec![(106.52, 29.53), (106.5212, 29.5305)]),
        )
    }
}

/// A point risk point with every optional field set.
pub fn risk_point_full(id: i64, grid_cell_id: i64) -> RiskPoint {
    RiskPoint {
        id,
        category: "gas_valve_well".into(),
        level: RiskLevel::Large,
        name: "杨家坪步行街燃气阀门井".into(),
        grid_cell_id: Some(grid_cell_id),
        responsible_unit: "谢家湾街道办事处".into(),
        responsible_person: "李明".into(),
        responsible_phone: Some("138 0838 0000".into()),
        emergency_plan: Some("JLP-YJ-2024-017".into()),
        last_review: Some(date(2024, 3, 1)),
        next_review: Some(date(2024, 9, 1)),
        status: RiskStatus::Active,
        geometry: geo::Geometry::Point(Point::new(106.5134567890123, 29.5016543210987)),
    }
}

/// An area risk point (a landslide zone with a hole) with only the required fields.
pub fn risk_point_min(id: i64) -> RiskPoint {
    RiskPoint {
        id,
        category: "landslide".into(),
        level: RiskLevel::Major,
        name: "黄桷坪滑坡隐患区".into(),
        grid_cell_id: None,
        responsible_unit: "九龙坡区规划和自然资源局".into(),
        responsible_person: "王芳".into(),
        responsible_phone: None,
        emergency_plan: None,
        last_review: None,
        next_review: None,
        status: RiskStatus::Mitigated,
        geometry: geo::Geometry::Polygon(rect_with_hole(106.531, 29.481, 0.004, 0.003)),
    }
}

/// A gas detector on a pipe and linked to a risk point, every optional field set.
pub fn sensor_full(id: i64, pipeline_id: i64, risk_point_id: i64) -> Sensor {
    Sensor {
        id,
        kind: SensorKind::GasLel,
        code: Some("CQ-GAS-00017".into()),
        pipeline_id: Some(pipeline_id),
        risk_point_id: Some(risk_point_id),
        status: SensorStatus::Online,
        installed: Some(date(2022, 11, 5)),
        location: Point::new(106.5130987654321, 29.5015123456789),
    }
}

/// A free-standing displacement sensor with only the required fields.
pub fn sensor_min(id: i64) -> Sensor {
    Sensor {
        id,
        kind: SensorKind::Displacement,
        code: None,
        pipeline_id: None,
        risk_point_id: None,
        status: SensorStatus::Maintenance,
        installed: None,
        location: Point::new(106.5325, 29.4825),
    }
}

/// A gas valve with every optional field set, on pipeline `on_pipe`.
pub fn node_full(id: i64, on_pipe: i64) -> NetworkNode {
    NetworkNode {
        code: Some("FM-渝中-0042".into()),
        name: Some("解放碑支线阀".into()),
        valve_position: Some(ValvePosition::Closed),
        valve_condition: Some(ValveCondition::Inaccessible),
        on_pipe_id: Some(on_pipe),
        ..NetworkNode::new(
            id,
            PipeKind::Gas,
            NodeType::Valve,
            Point::new(106.5123456789012, 29.5012345678901),
        )
    }
}

/// A gas junction with only the required fields.
pub fn node_min(id: i64) -> NetworkNode {
    NetworkNode::new(
        id,
        PipeKind::Gas,
        NodeType::Junction,
        Point::new(106.5142, 29.50185),
    )
}

/// A small consistent data set: 2 owners, 2 cells, 2 nodes, 2 pipelines, 2 risk points, 2
/// sensors.
pub fn dataset() -> Dataset {
    Dataset {
        owners: vec![owner_full(1), owner_min(2)],
        // Child before parent on purpose: loads must order grid cells by level.
        grid_cells: vec![street(11, 10), district(10)],
        nodes: vec![node_full(400, 100), node_min(401)],
        pipelines: vec![pipeline_joined(100, 1), pipeline_min(101, 2)],
        risk_points: vec![risk_point_full(200, 11), risk_point_min(201)],
        sensors: vec![sensor_full(300, 100, 200), sensor_min(301)],
    }
}

/// A synthetic network of `n` pipelines over the central city (plus owners, a district, and
/// one sensor per four pipes), deterministic, for scale runs.
pub fn synthetic(n: usize) -> Dataset {
    let kinds = PipeKind::ALL;
    let pipelines = (0..n)
        .map(|i| {
            let k = kinds[i % kinds.len()];
            let (x, y) = (
                106.40 + (i % 1000) as f64 * 0.0003,
                29.45 + (i / 1000) as f64 * 0.0003,
            );
            let mut p = pipeline_min(i as i64 + 1, (i % 8) as i64 + 1);
            p.kind = k;
            p.sub_kind = (k == PipeKind::Drainage).then_some(DrainageKind::Storm);
            p.pressure_class = (k == PipeKind::Gas).then_some(GasPressure::Low);
            p.voltage_kv = (k == PipeKind::Power).then_some(10.0);
            p.material = Some("球墨铸铁".into());
            p.diameter_mm = Some(100.0 + (i % 20) as f64 * 50.0);
            p.depth_start_m = Some(1.0 + (i % 7) as f64 * 0.1);
            p.year_built = Some(1990 + (i % 30) as i32);
            p.survey_date = Some(date(2023, 1 + (i % 12) as u32, 1 + (i % 28) as u32));
            p.status = PipeStatus::InService;
            p.geometry = LineString::from(vec![
                (x, y),
                (x + 0.0001, y + 0.00005),
                (x + 0.0002, y + 0.00002),
                (x + 0.00025, y + 0.0001),
            ]);
            p
        })
        .collect();
    let sensors = (0..n / 4)
        .map(|i| {
            let mut s = sensor_min(i as i64 + 1);
            s.pipeline_id = Some(i as i64 * 4 + 1);
            s.code = Some(format!("CQ-{i:07}"));
            s.location = Point::new(
                106.40 + (i * 4 % 1000) as f64 * 0.0003,
                29.45 + (i * 4 / 1000) as f64 * 0.0003,
            );
            s
        })
        .collect();
    Dataset {
        owners: (1..=8).map(owner_full).collect(),
        grid_cells: vec![district(1)],
        pipelines,
        risk_points: vec![risk_point_full(1, 1), risk_point_min(2)],
        sensors,
        nodes: Vec::new(),
    }
}

/// Sorts every layer by id, so data sets compare regardless of read order.
pub fn sorted(mut d: Dataset) -> Dataset {
    d.owners.sort_by_key(|r| r.id);
    d.grid_cells.sort_by_key(|r| r.id);
    d.pipelines.sort_by_key(|r| r.id);
    d.risk_points.sort_by_key(|r| r.id);
    d.sensors.sort_by_key(|r| r.id);
    d.nodes.sort_by_key(|r| r.id);
    d
}

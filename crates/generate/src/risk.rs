//! Risk points and sensors of one street.
//!
//! Each risk point takes a category of the catalog by weight and is placed where that
//! category occurs: gas risks on gas pipes, waterlogging at the lowest storm-drain points,
//! landslides and rockfalls near the district edge (in Chongqing mostly river banks and
//! ridges), bridges and road voids on roads, buildings beside roads. Some are small areas
//! (circles or squares). Each gets the micro-grid containing it, a responsible unit and
//! person, an emergency plan and review dates. Sensors of fitting kinds watch most risk
//! points (about 2 % are left unwatched so the coverage check has something to report),
//! and more sensors watch the pipes themselves.

use super::cells::StreetCells;
use super::geom::{self, Frame, Terrain};
use super::network::{crosses_odd, PipeInfo, Region, Road, RoadClass, Role, StreetNet};
use super::owners;
use chrono::{Days, NaiveDate};
use geo::{Coord, Geometry, MultiPolygon, Point};
use lifeline_model::{
    Catalog, PipeKind, RiskLevel, RiskPoint, RiskStatus, Sensor, SensorKind, SensorStatus,
};
use rand::Rng;

/// Where a category's risk points are placed.
#[derive(Clone, Copy)]
enum Place {
    /// On a pipe that passes the filter.
    Pipe(fn(&PipeInfo) -> bool),
    /// At the lowest of a few storm or combined drain points.
    LowDrain,
    /// On a road centre line (arterials and secondaries when `true`).
    Road(bool),
    /// Near the district boundary.
    Edge,
    /// Beside a road, where buildings are.
    Built,
    /// Anywhere in the street.
    Anywhere,
}

/// Who answers for a category's risk points.
#[derive(Clone, Copy)]
enum Unit {
    /// The owner of the pipe the point sits on (falls back to the agency).
    PipeOwner(&'static str),
    /// A district agency (name after the district's).
    Agency(&'static str),
    /// The street office or town government.
    Street,
}

struct Cat {
    code: &'static str,
    weight: f64,
    place: Place,
    /// Share drawn as a polygon, and its radius range in metres.
    area: (f64, f64, f64),
    /// Whether the category exists only where its network does (no fallback placement).
    strict: bool,
    unit: Unit,
    plan: &'static str,
    sensors: &'static [(SensorKind, f64)],
}

use SensorKind as S;

fn is_gas(p: &PipeInfo) -> bool {
    p.kind == PipeKind::Gas && p.role != Role::GasService
}
fn is_old_gas(p: &PipeInfo) -> bool {
    is_gas(p) && p.year.is_some_and(|y| y < 2000)
}
fn is_gas_station_site(p: &PipeInfo) -> bool {
    matches!(p.role, Role::GasSubHigh | Role::GasMain)
}
fn is_oil_gas(p: &PipeInfo) -> bool {
    p.kind == PipeKind::OilGas
}
fn is_water_main(p: &PipeInfo) -> bool {
    p.role == Role::WaterMain || (p.role == Role::WaterDist && p.size_mm >= 300.0)
}
fn is_water(p: &PipeInfo) -> bool {
    p.kind == PipeKind::WaterSupply && p.role != Role::WaterService
}
fn is_sewer(p: &PipeInfo) -> bool {
    matches!(p.role, Role::Sewage | Role::Combined)
}
fn is_drain(p: &PipeInfo) -> bool {
    p.kind == PipeKind::Drainage && p.role != Role::SewerConnection
}
fn is_power_tunnel(p: &PipeInfo) -> bool {
    p.kind == PipeKind::Power && p.tunnel
}
fn is_power_feeder(p: &PipeInfo) -> bool {
    matches!(p.role, Role::PowerHv | Role::PowerMv)
}
fn is_heat(p: &PipeInfo) -> bool {
    p.kind == PipeKind::Heat && p.role != Role::HeatService
}
fn is_corridor(p: &PipeInfo) -> bool {
    p.tunnel && p.role != Role::PowerHv
}
fn is_main(p: &PipeInfo) -> bool {
    !matches!(
        p.role,
        Role::WaterService | Role::GasService | Role::HeatService | Role::SewerConnection
    )
}

/// The 40 categories: weight (share of all risk points), placement, area share, who is
/// responsible, the district emergency plan, and which sensors watch them.
const CATS: &[Cat] = &[
    Cat {
        code: "gas_pipe_leak",
        weight: 4.0,
        place: Place::Pipe(is_gas),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城镇燃气突发事件应急预案",
        sensors: &[(S::GasLel, 5.0), (S::Pressure, 2.0), (S::Video, 1.0)],
    },
    Cat {
        code: "gas_station",
        weight: 0.6,
        place: Place::Pipe(is_gas_station_site),
        area: (0.5, 20.0, 40.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城镇燃气突发事件应急预案",
        sensors: &[
            (S::GasLel, 3.0),
            (S::Pressure, 3.0),
            (S::Video, 2.0),
            (S::Temperature, 1.0),
        ],
    },
    Cat {
        code: "gas_valve_well",
        weight: 7.0,
        place: Place::Pipe(is_gas),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城镇燃气突发事件应急预案",
        sensors: &[(S::GasLel, 6.0), (S::Pressure, 1.0)],
    },
    Cat {
        code: "gas_aging_pipe",
        weight: 4.0,
        place: Place::Pipe(is_old_gas),
        area: (0.3, 30.0, 80.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城镇燃气突发事件应急预案",
        sensors: &[(S::GasLel, 4.0), (S::Pressure, 2.0)],
    },
    Cat {
        code: "gas_occupied_pipe",
        weight: 3.0,
        place: Place::Pipe(is_gas),
        area: (0.2, 10.0, 25.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城镇燃气突发事件应急预案",
        sensors: &[(S::GasLel, 4.0), (S::Video, 2.0), (S::Displacement, 1.0)],
    },
    Cat {
        code: "lpg_supply_point",
        weight: 1.2,
        place: Place::Built,
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("城市管理局"),
        plan: "城镇燃气突发事件应急预案",
        sensors: &[(S::GasLel, 4.0), (S::Video, 2.0)],
    },
    Cat {
        code: "oil_gas_pipeline",
        weight: 0.8,
        place: Place::Pipe(is_oil_gas),
        area: (0.4, 50.0, 150.0),
        strict: true,
        unit: Unit::PipeOwner("经济和信息化委员会"),
        plan: "油气长输管道突发事件应急预案",
        sensors: &[
            (S::Pressure, 3.0),
            (S::Vibration, 3.0),
            (S::Displacement, 2.0),
            (S::Video, 2.0),
        ],
    },
    Cat {
        code: "water_main_burst",
        weight: 4.0,
        place: Place::Pipe(is_water_main),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市供水突发事件应急预案",
        sensors: &[(S::Pressure, 4.0), (S::Flow, 2.0), (S::Vibration, 2.0)],
    },
    Cat {
        code: "water_plant",
        weight: 0.4,
        place: Place::Pipe(is_water_main),
        area: (0.6, 40.0, 100.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市供水突发事件应急预案",
        sensors: &[
            (S::Pressure, 3.0),
            (S::Flow, 3.0),
            (S::Level, 2.0),
            (S::Video, 2.0),
        ],
    },
    Cat {
        code: "water_leak_zone",
        weight: 3.0,
        place: Place::Pipe(is_water),
        area: (1.0, 40.0, 120.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市供水突发事件应急预案",
        sensors: &[(S::Flow, 3.0), (S::Pressure, 3.0), (S::Vibration, 2.0)],
    },
    Cat {
        code: "drain_waterlogging",
        weight: 4.0,
        place: Place::LowDrain,
        area: (0.3, 20.0, 60.0),
        strict: false,
        unit: Unit::Agency("城市管理局"),
        plan: "城市排水防涝应急预案",
        sensors: &[(S::Level, 6.0), (S::Video, 2.0), (S::Flow, 1.0)],
    },
    Cat {
        code: "drain_overflow",
        weight: 3.0,
        place: Place::Pipe(is_sewer),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市排水防涝应急预案",
        sensors: &[(S::Level, 5.0), (S::Flow, 2.0)],
    },
    Cat {
        code: "drain_gas_accumulation",
        weight: 4.0,
        place: Place::Pipe(is_sewer),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市排水防涝应急预案",
        sensors: &[(S::GasLel, 6.0), (S::Level, 1.0)],
    },
    Cat {
        code: "manhole_cover",
        weight: 8.0,
        place: Place::Pipe(is_drain),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市道路及附属设施突发事件应急预案",
        sensors: &[(S::Displacement, 4.0), (S::Level, 2.0), (S::Video, 1.0)],
    },
    Cat {
        code: "pump_station",
        weight: 0.8,
        place: Place::LowDrain,
        area: (0.5, 15.0, 35.0),
        strict: false,
        unit: Unit::Agency("城市管理局"),
        plan: "城市排水防涝应急预案",
        sensors: &[(S::Level, 4.0), (S::Flow, 2.0), (S::Video, 2.0)],
    },
    Cat {
        code: "power_cable_tunnel",
        weight: 1.5,
        place: Place::Pipe(is_power_tunnel),
        area: (0.0, 0.0, 0.0),
        strict: true,
        unit: Unit::PipeOwner("经济和信息化委员会"),
        plan: "大面积停电事件应急预案",
        sensors: &[
            (S::Temperature, 5.0),
            (S::GasLel, 1.0),
            (S::Video, 2.0),
            (S::Level, 1.0),
        ],
    },
    Cat {
        code: "substation",
        weight: 1.2,
        place: Place::Pipe(is_power_feeder),
        area: (0.6, 25.0, 60.0),
        strict: false,
        unit: Unit::PipeOwner("经济和信息化委员会"),
        plan: "大面积停电事件应急预案",
        sensors: &[(S::Temperature, 4.0), (S::Video, 3.0), (S::Vibration, 1.0)],
    },
    Cat {
        code: "heat_pipe",
        weight: 0.3,
        place: Place::Pipe(is_heat),
        area: (0.0, 0.0, 0.0),
        strict: true,
        unit: Unit::PipeOwner("城市管理局"),
        plan: "城市供热突发事件应急预案",
        sensors: &[(S::Temperature, 4.0), (S::Pressure, 3.0)],
    },
    Cat {
        code: "utility_tunnel",
        weight: 0.8,
        place: Place::Pipe(is_corridor),
        area: (0.0, 0.0, 0.0),
        strict: true,
        unit: Unit::Agency("住房和城乡建设委员会"),
        plan: "城市综合管廊突发事件应急预案",
        sensors: &[
            (S::GasLel, 3.0),
            (S::Temperature, 3.0),
            (S::Level, 2.0),
            (S::Video, 2.0),
        ],
    },
    Cat {
        code: "road_collapse",
        weight: 3.0,
        place: Place::Road(false),
        area: (0.4, 5.0, 20.0),
        strict: false,
        unit: Unit::Agency("城市管理局"),
        plan: "城市道路及附属设施突发事件应急预案",
        sensors: &[(S::Displacement, 4.0), (S::Strain, 1.0), (S::Video, 2.0)],
    },
    Cat {
        code: "road_void",
        weight: 3.0,
        place: Place::Road(false),
        area: (0.3, 3.0, 10.0),
        strict: false,
        unit: Unit::Agency("城市管理局"),
        plan: "城市道路及附属设施突发事件应急预案",
        sensors: &[(S::Displacement, 4.0), (S::Video, 1.0)],
    },
    Cat {
        code: "bridge",
        weight: 3.0,
        place: Place::Road(true),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("交通运输委员会"),
        plan: "桥梁隧道突发事件应急预案",
        sensors: &[
            (S::Strain, 4.0),
            (S::Vibration, 3.0),
            (S::Crack, 3.0),
            (S::Displacement, 3.0),
            (S::Video, 1.0),
        ],
    },
    Cat {
        code: "bridge_overload",
        weight: 1.0,
        place: Place::Road(true),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("交通运输委员会"),
        plan: "桥梁隧道突发事件应急预案",
        sensors: &[(S::Strain, 4.0), (S::Video, 3.0), (S::Vibration, 2.0)],
    },
    Cat {
        code: "tunnel",
        weight: 1.0,
        place: Place::Road(true),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("交通运输委员会"),
        plan: "桥梁隧道突发事件应急预案",
        sensors: &[
            (S::Crack, 3.0),
            (S::Displacement, 3.0),
            (S::Video, 3.0),
            (S::GasLel, 1.0),
        ],
    },
    Cat {
        code: "underpass_flooding",
        weight: 1.5,
        place: Place::LowDrain,
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("城市管理局"),
        plan: "城市排水防涝应急预案",
        sensors: &[(S::Level, 5.0), (S::Video, 3.0)],
    },
    Cat {
        code: "landslide",
        weight: 4.0,
        place: Place::Edge,
        area: (0.6, 30.0, 120.0),
        strict: false,
        unit: Unit::Agency("规划和自然资源局"),
        plan: "突发地质灾害应急预案",
        sensors: &[
            (S::Displacement, 5.0),
            (S::Crack, 2.0),
            (S::Strain, 1.0),
            (S::Video, 1.0),
        ],
    },
    Cat {
        code: "rockfall",
        weight: 3.0,
        place: Place::Edge,
        area: (0.4, 15.0, 60.0),
        strict: false,
        unit: Unit::Agency("规划和自然资源局"),
        plan: "突发地质灾害应急预案",
        sensors: &[(S::Crack, 4.0), (S::Displacement, 3.0), (S::Video, 2.0)],
    },
    Cat {
        code: "high_slope",
        weight: 4.0,
        place: Place::Edge,
        area: (0.5, 20.0, 80.0),
        strict: false,
        unit: Unit::Agency("规划和自然资源局"),
        plan: "突发地质灾害应急预案",
        sensors: &[(S::Displacement, 4.0), (S::Crack, 2.0), (S::Video, 1.0)],
    },
    Cat {
        code: "ground_subsidence",
        weight: 1.5,
        place: Place::Built,
        area: (0.7, 30.0, 100.0),
        strict: false,
        unit: Unit::Agency("规划和自然资源局"),
        plan: "突发地质灾害应急预案",
        sensors: &[(S::Displacement, 5.0), (S::Crack, 1.0)],
    },
    Cat {
        code: "deep_excavation",
        weight: 3.0,
        place: Place::Built,
        area: (0.8, 25.0, 70.0),
        strict: false,
        unit: Unit::Agency("住房和城乡建设委员会"),
        plan: "建设工程生产安全事故应急预案",
        sensors: &[
            (S::Displacement, 4.0),
            (S::Strain, 2.0),
            (S::Level, 1.0),
            (S::Video, 2.0),
        ],
    },
    Cat {
        code: "construction_near_pipe",
        weight: 4.0,
        place: Place::Pipe(is_main),
        area: (0.5, 15.0, 50.0),
        strict: false,
        unit: Unit::Agency("住房和城乡建设委员会"),
        plan: "建设工程生产安全事故应急预案",
        sensors: &[(S::Vibration, 4.0), (S::Displacement, 2.0), (S::Video, 3.0)],
    },
    Cat {
        code: "tower_crane",
        weight: 3.0,
        place: Place::Built,
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("住房和城乡建设委员会"),
        plan: "建设工程生产安全事故应急预案",
        sensors: &[(S::Strain, 3.0), (S::Vibration, 2.0), (S::Video, 2.0)],
    },
    Cat {
        code: "old_building",
        weight: 5.0,
        place: Place::Built,
        area: (0.3, 10.0, 30.0),
        strict: false,
        unit: Unit::Agency("住房和城乡建设委员会"),
        plan: "房屋建筑安全事故应急预案",
        sensors: &[(S::Crack, 4.0), (S::Displacement, 3.0), (S::Strain, 1.0)],
    },
    Cat {
        code: "high_rise_fire",
        weight: 4.0,
        place: Place::Built,
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("消防救援支队"),
        plan: "火灾事故应急预案",
        sensors: &[(S::Temperature, 4.0), (S::Video, 3.0)],
    },
    Cat {
        code: "crowded_place",
        weight: 3.0,
        place: Place::Built,
        area: (0.4, 30.0, 90.0),
        strict: false,
        unit: Unit::Street,
        plan: "人员密集场所突发事件应急预案",
        sensors: &[(S::Video, 6.0), (S::Temperature, 1.0)],
    },
    Cat {
        code: "hazardous_chemicals",
        weight: 1.5,
        place: Place::Anywhere,
        area: (0.3, 30.0, 100.0),
        strict: false,
        unit: Unit::Agency("应急管理局"),
        plan: "危险化学品事故应急预案",
        sensors: &[
            (S::GasLel, 4.0),
            (S::Temperature, 2.0),
            (S::Video, 2.0),
            (S::Pressure, 1.0),
        ],
    },
    Cat {
        code: "gas_station_fuel",
        weight: 1.5,
        place: Place::Road(true),
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("商务委员会"),
        plan: "危险化学品事故应急预案",
        sensors: &[(S::GasLel, 4.0), (S::Video, 2.0), (S::Level, 1.0)],
    },
    Cat {
        code: "elevator",
        weight: 5.0,
        place: Place::Built,
        area: (0.0, 0.0, 0.0),
        strict: false,
        unit: Unit::Agency("市场监督管理局"),
        plan: "特种设备事故应急预案",
        sensors: &[(S::Vibration, 3.0), (S::Video, 3.0)],
    },
    Cat {
        code: "river_embankment",
        weight: 1.2,
        place: Place::Edge,
        area: (0.3, 40.0, 120.0),
        strict: false,
        unit: Unit::Agency("水利局"),
        plan: "防汛抗旱应急预案",
        sensors: &[(S::Level, 4.0), (S::Displacement, 3.0), (S::Video, 2.0)],
    },
    Cat {
        code: "reservoir_dam",
        weight: 0.5,
        place: Place::Anywhere,
        area: (0.3, 40.0, 120.0),
        strict: false,
        unit: Unit::Agency("水利局"),
        plan: "防汛抗旱应急预案",
        sensors: &[
            (S::Level, 4.0),
            (S::Displacement, 3.0),
            (S::Strain, 1.0),
            (S::Video, 2.0),
        ],
    },
];

/// A risk point before ids are assigned; `cell` indexes the street's cells.
pub(super) struct LocalRisk {
    pub rec: RiskPoint,
    pub cell: usize,
}

/// A sensor before ids are assigned; `pipe` and `risk` index the street's own lists.
pub(super) struct LocalSensor {
    pub rec: Sensor,
    pub pipe: Option<usize>,
    pub risk: Option<usize>,
}

/// Inputs of one street's risk points and sensors.
pub(super) struct RiskInput<'a> {
    pub frame: &'a Frame,
    pub terrain: &'a Terrain,
    pub district_name: &'a str,
    pub street_name: &'a str,
    pub street_code: &'a str,
    pub street_is_subdistrict: bool,
    pub cells: &'a StreetCells,
    pub street: &'a Region,
    pub district: &'a Region,
    pub net: &'a StreetNet,
    pub count: usize,
    /// Pipe-watching sensors per pipe segment.
    pub sensor_ratio: f64,
}

/// Generates the risk points and sensors of one street.
pub(super) fn street_risks(
    inp: &RiskInput<'_>,
    catalog: &Catalog,
    rng: &mut impl Rng,
) -> (Vec<LocalRisk>, Vec<LocalSensor>) {
    let mut risks = Vec::with_capacity(inp.count);
    let mut sensors = Vec::new();
    let mut serial = vec![0usize; CATS.len()];
    let mut sensor_serial = 0usize;
    let total_weight: f64 = CATS.iter().map(|c| c.weight).sum();
    let mut candidates: Vec<Option<Vec<usize>>> = vec![None; CATS.len()];
    for _ in 0..inp.count {
        // Draw a category; strict ones need their network in this street, others fall back
        // to a placement near buildings.
        let mut placed = None;
        for _attempt in 0..12 {
            let ci = draw_cat(rng, total_weight);
            if let Some(p) = place(inp, ci, &mut candidates, rng) {
                placed = Some((ci, p));
                break;
            }
        }
        let (ci, (pos, pipe)) = match placed {
            Some(x) => x,
            None => {
                let ci = CATS
                    .iter()
                    .position(|c| c.code == "old_building")
                    .unwrap_or(0);
                (ci, (sample_in_street(inp, rng), None))
            }
        };
        let cat = &CATS[ci];
        serial[ci] += 1;
        let ll = inp.frame.to_ll(pos);
        let cell = locate_cell(inp.cells, ll);
        let community = community_name(inp.cells, cell).unwrap_or(inp.street_name);
        let name_zh = catalog
            .risk_category(cat.code)
            .map(|c| c.name_zh.as_str())
            .unwrap_or(cat.code);
        let default_level = catalog
            .risk_category(cat.code)
            .map(|c| c.default_level)
            .unwrap_or(RiskLevel::General);
        let level = spread_level(default_level, rng);
        let geometry = if cat.area.0 > 0.0 && rng.gen_bool(cat.area.0) {
            let r = rng.gen_range(cat.area.1..=cat.area.2);
            let ring = if rng.gen_bool(0.5) {
                geom::regular_ring(pos, r, 16, rng.gen_range(0.0..0.4))
            } else {
                geom::regular_ring(pos, r, 4, rng.gen_range(0.0..1.5))
            };
            Geometry::Polygon(inp.frame.ring_to_ll(&ring))
        } else {
            Geometry::Point(Point(ll))
        };
        let pipe_owner = pipe.map(|i| inp.net.info[i].owner);
        let unit = match (cat.unit, pipe_owner) {
            (Unit::PipeOwner(_), Some(o)) => owners::name_of(o).to_string(),
            (Unit::PipeOwner(agency) | Unit::Agency(agency), _) => {
                format!("{}{}", inp.district_name, agency)
            }
            (Unit::Street, _) => street_office(inp),
        };
        let phone = if rng.gen_bool(0.85) {
            owners::mobile(rng)
        } else {
            owners::landline(rng)
        };
        let plan = rng.gen_bool(0.96).then(|| {
            format!(
                "{}{}（{}年修订）",
                inp.district_name,
                cat.plan,
                rng.gen_range(2021..=2025)
            )
        });
        let r: f64 = rng.gen();
        let status = if r < 0.9 {
            RiskStatus::Active
        } else if r < 0.97 {
            RiskStatus::Mitigated
        } else {
            RiskStatus::Closed
        };
        let base = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
        let last = base.checked_add_days(Days::new(rng.gen_range(0..=660)));
        let interval = match level {
            RiskLevel::Major => 90,
            RiskLevel::Large => 180,
            _ => 365,
        };
        let next = match (status, last) {
            (RiskStatus::Closed, _) => None,
            (_, Some(l)) => l.checked_add_days(Days::new(interval)),
            _ => None,
        };
        let risk_idx = risks.len();
        risks.push(LocalRisk {
            rec: RiskPoint {
                id: 0,
                category: cat.code.to_string(),
                level,
                name: format!("{community}·{name_zh}{}号", serial[ci]),
                grid_cell_id: None,
                responsible_unit: unit,
                responsible_person: owners::person_name(rng),
                responsible_phone: Some(phone),
                emergency_plan: plan,
                last_review: last,
                next_review: next,
                status,
                geometry,
            },
            cell,
        });

        // Sensors: about 2 % of risk points have none yet.
        let n = if rng.gen_bool(0.02) {
            0
        } else {
            pick_count(rng)
        };
        let spread = if cat.area.0 > 0.0 { cat.area.1 } else { 8.0 };
        for k in 0..n {
            let kind = pick_kind(rng, cat.sensors);
            let at = if k == 0 {
                pos
            } else {
                let a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
                let d = rng.gen_range(1.0..spread.max(2.0));
                Coord {
                    x: pos.x + d * a.cos(),
                    y: pos.y + d * a.sin(),
                }
            };
            let on_pipe = pipe.filter(|_| kind != SensorKind::Video);
            sensor_serial += 1;
            sensors.push(make_sensor(
                inp,
                kind,
                at,
                on_pipe,
                Some(risk_idx),
                sensor_serial,
                rng,
            ));
        }
    }

    // Sensors on the pipes themselves (pressure and flow on water, gas detectors in
    // manholes beside gas mains, levels in sewers, temperatures in cable ducts).
    let n_pipe_sensors = (inp.net.info.len() as f64 * inp.sensor_ratio).round() as usize;
    let groups: Vec<(PipeKind, f64, Vec<usize>)> = [
        (PipeKind::Gas, 35.0),
        (PipeKind::WaterSupply, 25.0),
        (PipeKind::Drainage, 25.0),
        (PipeKind::Power, 10.0),
        (PipeKind::OilGas, 3.0),
        (PipeKind::Heat, 2.0),
    ]
    .into_iter()
    .map(|(k, w)| {
        let idx: Vec<usize> = inp
            .net
            .info
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == k && p.role != Role::SewerConnection)
            .map(|(i, _)| i)
            .collect();
        (k, w, idx)
    })
    .filter(|g| !g.2.is_empty())
    .collect();
    if !groups.is_empty() {
        let total: f64 = groups.iter().map(|g| g.1).sum();
        for _ in 0..n_pipe_sensors {
            let mut r = rng.gen::<f64>() * total;
            let g = groups
                .iter()
                .find(|g| {
                    if r < g.1 {
                        true
                    } else {
                        r -= g.1;
                        false
                    }
                })
                .unwrap_or(&groups[0]);
            let pi = g.2[rng.gen_range(0..g.2.len())];
            let p = &inp.net.info[pi];
            let kind = match g.0 {
                PipeKind::Gas => pick_kind(rng, &[(S::GasLel, 6.0), (S::Pressure, 4.0)]),
                PipeKind::WaterSupply => pick_kind(
                    rng,
                    &[(S::Pressure, 5.0), (S::Flow, 3.5), (S::Vibration, 1.5)],
                ),
                PipeKind::Drainage => {
                    pick_kind(rng, &[(S::Level, 6.0), (S::Flow, 2.0), (S::GasLel, 2.0)])
                }
                PipeKind::Power => pick_kind(rng, &[(S::Temperature, 8.0), (S::Video, 2.0)]),
                PipeKind::OilGas => pick_kind(
                    rng,
                    &[
                        (S::Pressure, 4.0),
                        (S::Vibration, 4.0),
                        (S::Displacement, 2.0),
                    ],
                ),
                _ => pick_kind(rng, &[(S::Temperature, 6.0), (S::Pressure, 4.0)]),
            };
            let t: f64 = rng.gen_range(0.1..0.9);
            let at = Coord {
                x: p.a.x + (p.b.x - p.a.x) * t,
                y: p.a.y + (p.b.y - p.a.y) * t,
            };
            sensor_serial += 1;
            sensors.push(make_sensor(
                inp,
                kind,
                at,
                Some(pi),
                None,
                sensor_serial,
                rng,
            ));
        }
    }
    (risks, sensors)
}

fn make_sensor(
    inp: &RiskInput<'_>,
    kind: SensorKind,
    at: Coord<f64>,
    pipe: Option<usize>,
    risk: Option<usize>,
    serial: usize,
    rng: &mut impl Rng,
) -> LocalSensor {
    let tag = match kind {
        SensorKind::GasLel => "GL",
        SensorKind::Pressure => "PR",
        SensorKind::Flow => "FL",
        SensorKind::Level => "LV",
        SensorKind::Displacement => "DS",
        SensorKind::Crack => "CK",
        SensorKind::Strain => "ST",
        SensorKind::Vibration => "VB",
        SensorKind::Temperature => "TP",
        SensorKind::Video => "VD",
    };
    let r: f64 = rng.gen();
    let status = if r < 0.92 {
        SensorStatus::Online
    } else if r < 0.965 {
        SensorStatus::Offline
    } else if r < 0.99 {
        SensorStatus::Fault
    } else {
        SensorStatus::Maintenance
    };
    let installed = NaiveDate::from_ymd_opt(2018, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new(rng.gen_range(0..=2850))));
    LocalSensor {
        rec: Sensor {
            id: 0,
            kind,
            code: Some(format!("{}-{tag}-{serial:05}", inp.street_code)),
            pipeline_id: None,
            risk_point_id: None,
            status,
            installed,
            location: Point(inp.frame.to_ll(at)),
        },
        pipe,
        risk,
    }
}

fn draw_cat(rng: &mut impl Rng, total: f64) -> usize {
    let mut r = rng.gen::<f64>() * total;
    for (i, c) in CATS.iter().enumerate() {
        if r < c.weight {
            return i;
        }
        r -= c.weight;
    }
    CATS.len() - 1
}

/// 1–5 sensors, three most often.
fn pick_count(rng: &mut impl Rng) -> usize {
    super::network::pick(
        rng,
        &[(1, 15.0), (2, 25.0), (3, 30.0), (4, 18.0), (5, 12.0)],
    )
}

fn pick_kind(rng: &mut impl Rng, kinds: &[(SensorKind, f64)]) -> SensorKind {
    if kinds.is_empty() {
        return SensorKind::Video;
    }
    super::network::pick(rng, kinds)
}

/// Moves a level one step down or up now and then (registered levels follow local
/// assessments, not only the category default).
fn spread_level(default: RiskLevel, rng: &mut impl Rng) -> RiskLevel {
    let all = RiskLevel::ALL;
    let i = all.iter().position(|l| *l == default).unwrap_or(1) as i64;
    let r: f64 = rng.gen();
    let j = if r < 0.7 {
        i
    } else if r < 0.87 {
        i - 1
    } else if r < 0.97 {
        i + 1
    } else {
        i - 2
    };
    all[j.clamp(0, all.len() as i64 - 1) as usize]
}

fn street_office(inp: &RiskInput<'_>) -> String {
    if inp.street_is_subdistrict {
        format!("{}{}办事处", inp.district_name, inp.street_name)
    } else {
        format!("{}{}人民政府", inp.district_name, inp.street_name)
    }
}

/// Finds a position for a risk point of category `ci`, and the pipe it sits on.
fn place(
    inp: &RiskInput<'_>,
    ci: usize,
    candidates: &mut [Option<Vec<usize>>],
    rng: &mut impl Rng,
) -> Option<(Coord<f64>, Option<usize>)> {
    let cat = &CATS[ci];
    let info = &inp.net.info;
    match cat.place {
        Place::Pipe(filter) => {
            let list = candidates[ci].get_or_insert_with(|| {
                info.iter()
                    .enumerate()
                    .filter(|(_, p)| filter(p))
                    .map(|(i, _)| i)
                    .collect()
            });
            if list.is_empty() {
                if cat.strict {
                    return None;
                }
                return place_built(inp, rng).map(|p| (p, None));
            }
            let i = list[rng.gen_range(0..list.len())];
            let p = &info[i];
            let t: f64 = rng.gen_range(0.0..1.0);
            Some((
                Coord {
                    x: p.a.x + (p.b.x - p.a.x) * t,
                    y: p.a.y + (p.b.y - p.a.y) * t,
                },
                Some(i),
            ))
        }
        Place::LowDrain => {
            let list = candidates[ci].get_or_insert_with(|| {
                info.iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        matches!(p.role, Role::Storm | Role::Combined | Role::StormBranch)
                    })
                    .map(|(i, _)| i)
                    .collect()
            });
            if list.is_empty() {
                return place_built(inp, rng).map(|p| (p, None));
            }
            // The lowest end of a few drains: water gathers where the ground is low.
            let mut best: Option<(f64, usize)> = None;
            for _ in 0..8 {
                let i = list[rng.gen_range(0..list.len())];
                let z = inp.terrain.z(info[i].b);
                if best.is_none_or(|(bz, _)| z < bz) {
                    best = Some((z, i));
                }
            }
            best.map(|(_, i)| (info[i].b, Some(i)))
        }
        Place::Road(major) => {
            let roads: Vec<&Road> = inp
                .net
                .roads
                .iter()
                .filter(|r| !major || r.class != RoadClass::Local)
                .collect();
            let roads = if roads.is_empty() {
                inp.net.roads.iter().collect()
            } else {
                roads
            };
            if roads.is_empty() {
                return Some((sample_in_street(inp, rng), None));
            }
            let r = roads[rng.gen_range(0..roads.len())];
            let w = geom::Walk::new(&r.pts);
            Some((w.at(rng.gen_range(0.0..w.len())).0, None))
        }
        Place::Edge => Some((place_edge(inp, rng), None)),
        Place::Built => Some((
            place_built(inp, rng).unwrap_or_else(|| sample_in_street(inp, rng)),
            None,
        )),
        Place::Anywhere => Some((sample_in_street(inp, rng), None)),
    }
}

/// A point beside a road (where buildings stand), inside the street.
fn place_built(inp: &RiskInput<'_>, rng: &mut impl Rng) -> Option<Coord<f64>> {
    let roads = &inp.net.roads;
    if roads.is_empty() {
        return Some(sample_in_street(inp, rng));
    }
    for _ in 0..6 {
        let r = &roads[rng.gen_range(0..roads.len())];
        let w = geom::Walk::new(&r.pts);
        let (p, dir) = w.at(rng.gen_range(0.0..w.len()));
        let side = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        let d = side * (r.class.half_width() + rng.gen_range(5.0..60.0));
        let c = Coord {
            x: p.x - dir.y * d,
            y: p.y + dir.x * d,
        };
        if inp.street.locate(c).is_some() {
            return Some(c);
        }
    }
    None
}

/// The one of a few random points in the street that lies nearest the district boundary.
fn place_edge(inp: &RiskInput<'_>, rng: &mut impl Rng) -> Coord<f64> {
    let mut best: Option<(f64, Coord<f64>)> = None;
    for _ in 0..10 {
        let c = sample_in_street(inp, rng);
        let d = inp
            .district
            .exteriors()
            .flat_map(|r| {
                r.windows(2)
                    .map(move |w| geom::dist_to_segment(c, w[0], w[1]))
            })
            .fold(f64::MAX, f64::min);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|b| b.1)
        .unwrap_or_else(|| sample_in_street(inp, rng))
}

/// A uniformly random point of the street polygon (rejection sampling in its bounds).
fn sample_in_street(inp: &RiskInput<'_>, rng: &mut impl Rng) -> Coord<f64> {
    if let Some((min, max)) = inp.street.bounds() {
        if min.x < max.x && min.y < max.y {
            for _ in 0..200 {
                let c = Coord {
                    x: rng.gen_range(min.x..max.x),
                    y: rng.gen_range(min.y..max.y),
                };
                if inp.street.locate(c).is_some() {
                    return c;
                }
            }
        }
    }
    inp.frame
        .to_m(super::cells::centre_of(&inp.cells.cells[0].geom))
}

/// The smallest cell of the street containing a lon/lat point: a micro-grid normally, a
/// coarser cell if the point falls in a crack between cells, the street itself otherwise.
pub(super) fn locate_cell(cells: &StreetCells, ll: Coord<f64>) -> usize {
    let mut at = 0usize;
    loop {
        let next = cells.children[at]
            .iter()
            .copied()
            .find(|&c| mp_contains(&cells.cells[c].geom, ll));
        match next {
            Some(c) => at = c,
            None => return at,
        }
    }
}

fn mp_contains(mp: &MultiPolygon<f64>, c: Coord<f64>) -> bool {
    mp.0.iter().any(|p| {
        let ext = &p.exterior().0;
        let (mut minx, mut maxx, mut miny, mut maxy) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for v in ext {
            minx = minx.min(v.x);
            maxx = maxx.max(v.x);
            miny = miny.min(v.y);
            maxy = maxy.max(v.y);
        }
        if c.x < minx || c.x > maxx || c.y < miny || c.y > maxy {
            return false;
        }
        let n = std::iter::once(p.exterior())
            .chain(p.interiors())
            .filter(|r| crosses_odd(&r.0, c))
            .count();
        n % 2 == 1
    })
}

/// The community a cell belongs to (itself if it is one).
fn community_name(cells: &StreetCells, mut at: usize) -> Option<&str> {
    loop {
        let c = &cells.cells[at];
        if c.level == lifeline_model::GridLevel::Community {
            return Some(&c.name);
        }
        at = c.parent?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_in_the_catalog_and_back() {
        let catalog = Catalog::builtin();
        assert_eq!(CATS.len(), catalog.risk_categories.len());
        for c in CATS {
            assert!(catalog.risk_category(c.code).is_some(), "{}", c.code);
            assert!(!c.sensors.is_empty());
        }
    }

    #[test]
    fn level_spread_stays_in_range() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            seen.insert(spread_level(RiskLevel::Major, &mut rng));
        }
        assert!(seen.contains(&RiskLevel::Major) && seen.len() >= 2);
    }
}

//! Roads and pipelines of one street.
//!
//! Roads are a jittered grid (arterials every fourth line, secondaries every second, local
//! streets between) laid over the built-up communities of the street — urban communities
//! nearest the city centre first, as many as the street's pipeline budget needs — and kept
//! within the radius around the most central community that the budget reaches, so a
//! street is built up concentrically. Pipes follow the road centre lines at the lateral
//! offsets of a Chinese urban cross-section (cables under the footways, water and gas under
//! the non-motorised lanes, storm and sewage under the carriageway), so different kinds run
//! parallel a few metres apart, and are cut manhole to manhole (32–77 m). Service branches
//! cross the road at right angles and branch pipes cross blocks between parallel roads, so
//! excavation checks meet real conflicts. A few long-distance oil and gas lines cross each
//! district (100–250 m between marker posts); heat is rare, laid as a supply and return pair
//! with a pair of services to a building substation every 60–150 m. Each pipe keeps its
//! polyline in metres and its network, from which `nodes` builds the traceable networks.

use super::geom::{self, Frame, Terrain, Walk};
use super::nodes::Net;
use super::owners::{self, id};
use chrono::NaiveDate;
use geo::{Coord, MultiPolygon};
use lifeline_model::{
    Burial, DrainageKind, GasPressure, PipeKind, PipeStatus, Pipeline, QualityLevel,
};
use rand::Rng;

/// Pipe kilometres one road kilometre carries on average (mains of every kind plus
/// services), used only to size the road network before pipes are laid.
const PIPE_KM_PER_ROAD_KM: f64 = 9.0;
/// Block size of a built-up area, m (road density 2 / spacing).
const BASE_SPACING_M: f64 = 200.0;
/// The densest grid the generator makes (Yuzhong-like cores), m.
const MIN_SPACING_M: f64 = 90.0;
/// Manhole-to-manhole segment length, m (mean 54.5 m; with short services the city
/// averages ≈ 52 m, the 62,000 km / 1.2 M segments of the domain reference).
const SEGMENT_M: (f64, f64) = (32.0, 77.0);

/// Road classes of the Chinese urban road standard (CJJ 37): 主干路, 次干路, 支路.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RoadClass {
    Arterial,
    Secondary,
    Local,
}

impl RoadClass {
    /// Half the width between building lines, m.
    pub fn half_width(self) -> f64 {
        match self {
            RoadClass::Arterial => 20.0,
            RoadClass::Secondary => 12.5,
            RoadClass::Local => 7.0,
        }
    }
}

/// One road piece inside the built-up area, in the district frame (metres).
#[derive(Debug, Clone)]
pub(super) struct Road {
    pub class: RoadClass,
    pub pts: Vec<Coord<f64>>,
    /// Year the road (and most of its first pipes) was built.
    pub year: i32,
    /// Older roads keep combined sewers more often.
    pub old: bool,
    /// Arterials with a utility tunnel (综合管廊) under them.
    pub corridor: bool,
    /// Distance to the next parallel road, m (for branch pipes across the block).
    pub spacing: f64,
}

/// What a pipe run is, which fixes its kind, sizes, materials and depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    WaterMain,
    WaterDist,
    WaterService,
    Storm,
    StormBranch,
    Sewage,
    SewerConnection,
    Combined,
    GasMain,
    GasSubHigh,
    GasLocal,
    GasService,
    GasTransmission,
    OilProduct,
    PowerHv,
    PowerMv,
    PowerLv,
    Telecom(i64),
    Tv,
    Lighting,
    Signal,
    Heat,
    /// A service pair's one line from a heat main to a building's substation.
    HeatService,
}

impl Role {
    /// The traceable network a run of this role belongs to, if any (heat runs are supply
    /// lines here; the return line beside each is relabelled where it is laid).
    pub fn net(self) -> Option<Net> {
        match self {
            Role::WaterMain | Role::WaterDist | Role::WaterService => Some(Net::Water),
            Role::GasSubHigh => Some(Net::GasSubHigh),
            Role::GasMain | Role::GasLocal | Role::GasService => Some(Net::GasDist),
            Role::Heat | Role::HeatService => Some(Net::HeatSupply),
            _ => None,
        }
    }

    /// A service connection: from a main to a building, where a customer is connected.
    pub fn is_service(self) -> bool {
        matches!(
            self,
            Role::WaterService | Role::GasService | Role::HeatService
        )
    }

    fn kind(self) -> PipeKind {
        match self {
            Role::WaterMain | Role::WaterDist | Role::WaterService => PipeKind::WaterSupply,
            Role::Storm
            | Role::StormBranch
            | Role::Sewage
            | Role::SewerConnection
            | Role::Combined => PipeKind::Drainage,
            Role::GasMain | Role::GasSubHigh | Role::GasLocal | Role::GasService => PipeKind::Gas,
            Role::GasTransmission | Role::OilProduct => PipeKind::OilGas,
            Role::PowerHv | Role::PowerMv | Role::PowerLv => PipeKind::Power,
            Role::Telecom(_) => PipeKind::Telecom,
            Role::Tv => PipeKind::BroadcastTv,
            Role::Lighting => PipeKind::StreetLighting,
            Role::Signal => PipeKind::TrafficSignal,
            Role::Heat | Role::HeatService => PipeKind::Heat,
        }
    }
}

/// (role, lateral offset from the centre line in m — positive to the left —, probability).
type Lane = (Role, f64, f64);

const ARTERIAL: &[Lane] = &[
    (Role::PowerHv, -14.5, 0.3),
    (Role::PowerMv, -17.0, 1.0),
    (Role::Lighting, -19.5, 1.0),
    (Role::Lighting, 19.5, 1.0),
    (Role::Telecom(id::TELECOM), 17.0, 1.0),
    (Role::Telecom(id::MOBILE), 16.2, 0.9),
    (Role::Telecom(id::UNICOM), 15.4, 0.8),
    (Role::Telecom(id::TOWER), 14.6, 0.3),
    (Role::Tv, 13.8, 0.8),
    (Role::Signal, -12.0, 0.9),
    (Role::WaterMain, -10.0, 1.0),
    (Role::WaterDist, 11.0, 0.8),
    (Role::GasMain, 8.5, 0.9),
    (Role::GasSubHigh, -7.5, 0.12),
    (Role::Heat, -6.0, 0.015),
    (Role::Storm, -4.0, 1.0),
    (Role::Sewage, 4.0, 1.0),
];

const SECONDARY: &[Lane] = &[
    (Role::PowerMv, -10.5, 1.0),
    (Role::Lighting, -12.0, 1.0),
    (Role::Lighting, 12.0, 0.5),
    (Role::Telecom(id::TELECOM), 10.5, 1.0),
    (Role::Telecom(id::MOBILE), 9.8, 0.8),
    (Role::Telecom(id::UNICOM), 9.1, 0.5),
    (Role::Tv, 8.4, 0.7),
    (Role::Signal, -9.0, 0.6),
    (Role::WaterDist, -7.0, 1.0),
    (Role::GasMain, 6.0, 0.85),
    (Role::Heat, -5.0, 0.01),
    (Role::Storm, -2.5, 0.95),
    (Role::Sewage, 2.5, 0.95),
];

const LOCAL: &[Lane] = &[
    (Role::PowerLv, -5.5, 0.6),
    (Role::PowerMv, -5.0, 0.4),
    (Role::Lighting, -6.5, 0.9),
    (Role::Telecom(id::TELECOM), 5.5, 0.9),
    (Role::Telecom(id::MOBILE), 5.0, 0.5),
    (Role::Tv, 4.5, 0.5),
    (Role::WaterDist, -3.5, 0.95),
    (Role::GasLocal, 3.0, 0.8),
    (Role::Storm, -1.2, 0.9),
    (Role::Sewage, 1.2, 0.9),
];

/// Where the roles that share a utility tunnel lie under a corridor arterial.
fn corridor_offset(role: Role) -> Option<f64> {
    match role {
        Role::WaterMain => Some(-12.8),
        Role::PowerMv => Some(-12.0),
        Role::Telecom(id::TELECOM) => Some(-11.2),
        _ => None,
    }
}

/// A set of polygons in the district frame with a tag each, for fast point location.
pub(super) struct Region {
    parts: Vec<Part>,
}

struct Part {
    min: Coord<f64>,
    max: Coord<f64>,
    /// Rings of one polygon (exterior and holes), tested even-odd.
    rings: Vec<Vec<Coord<f64>>>,
    tag: usize,
}

impl Region {
    /// A region of lon/lat multipolygons (converted to the frame), tagged by position.
    pub fn new(frame: &Frame, polys: &[(&MultiPolygon<f64>, usize)]) -> Self {
        let mut parts = Vec::new();
        for (mp, tag) in polys {
            for p in &mp.0 {
                let pm = frame.polygon_to_m(p);
                let rings: Vec<Vec<Coord<f64>>> = std::iter::once(pm.exterior())
                    .chain(pm.interiors())
                    .map(|r| r.0.clone())
                    .collect();
                let (mut min, mut max) = (
                    Coord {
                        x: f64::MAX,
                        y: f64::MAX,
                    },
                    Coord {
                        x: f64::MIN,
                        y: f64::MIN,
                    },
                );
                for c in &rings[0] {
                    min.x = min.x.min(c.x);
                    min.y = min.y.min(c.y);
                    max.x = max.x.max(c.x);
                    max.y = max.y.max(c.y);
                }
                parts.push(Part {
                    min,
                    max,
                    rings,
                    tag: *tag,
                });
            }
        }
        Region { parts }
    }

    /// The tag of the polygon containing `c`.
    pub fn locate(&self, c: Coord<f64>) -> Option<usize> {
        self.parts
            .iter()
            .find(|p| {
                c.x >= p.min.x
                    && c.x <= p.max.x
                    && c.y >= p.min.y
                    && c.y <= p.max.y
                    && p.rings.iter().filter(|r| crosses_odd(r, c)).count() % 2 == 1
            })
            .map(|p| p.tag)
    }

    /// Bounding box of the whole region.
    pub fn bounds(&self) -> Option<(Coord<f64>, Coord<f64>)> {
        let first = self.parts.first()?;
        let (mut min, mut max) = (first.min, first.max);
        for p in &self.parts {
            min.x = min.x.min(p.min.x);
            min.y = min.y.min(p.min.y);
            max.x = max.x.max(p.max.x);
            max.y = max.y.max(p.max.y);
        }
        Some((min, max))
    }

    /// Every exterior ring (for distances to the boundary).
    pub fn exteriors(&self) -> impl Iterator<Item = &[Coord<f64>]> {
        self.parts.iter().map(|p| p.rings[0].as_slice())
    }
}

/// Ray casting: whether a ray from `c` to +x crosses the ring an odd number of times.
pub(super) fn crosses_odd(ring: &[Coord<f64>], c: Coord<f64>) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.y > c.y) != (b.y > c.y) {
            let x = a.x + (c.y - a.y) / (b.y - a.y) * (b.x - a.x);
            if c.x < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// What the risk and sensor generators need to know about each generated pipe.
#[derive(Debug, Clone)]
pub(super) struct PipeInfo {
    pub kind: PipeKind,
    pub role: Role,
    pub owner: i64,
    pub a: Coord<f64>,
    pub b: Coord<f64>,
    pub year: Option<i32>,
    pub size_mm: f64,
    pub tunnel: bool,
    /// Length along the pipe, m.
    pub len_m: f64,
}

/// A long-distance oil or gas line across a district, in the district frame.
#[derive(Debug, Clone)]
pub(super) struct LongLine {
    pub pts: Vec<Coord<f64>>,
    pub role: Role,
    pub owner: i64,
    pub pressure: Option<GasPressure>,
    pub diameter: f64,
    pub material: &'static str,
    pub year: i32,
}

/// Lays out the long-distance lines of a district: each passes through one anchor point
/// (inside a street the preset uses) at a random bearing and meanders across the district.
pub(super) fn long_lines(anchors: &[Coord<f64>], extent: f64, rng: &mut impl Rng) -> Vec<LongLine> {
    anchors
        .iter()
        .map(|&anchor| {
            let bearing: f64 = rng.gen_range(0.0..std::f64::consts::PI);
            let (ux, uy) = (bearing.cos(), bearing.sin());
            let (vx, vy) = (-uy, ux);
            let n = (extent / 400.0).ceil().max(2.0) as i64;
            let mut drift = 0.0f64;
            let mut pts = Vec::with_capacity(2 * n as usize + 1);
            for i in -n..=n {
                let s = i as f64 * 400.0;
                // A bounded random walk keeps the line smooth and within a corridor.
                if i != 0 {
                    drift = (drift + rng.gen_range(-40.0..40.0)).clamp(-200.0, 200.0);
                }
                let lat = if i == 0 { 0.0 } else { drift };
                pts.push(Coord {
                    x: anchor.x + ux * s + vx * lat,
                    y: anchor.y + uy * s + vy * lat,
                });
            }
            let gas = rng.gen_bool(0.7);
            if gas {
                LongLine {
                    pts,
                    role: Role::GasTransmission,
                    owner: if rng.gen_bool(0.6) {
                        id::OILGAS_PETROCHINA
                    } else {
                        id::OILGAS_PIPECHINA
                    },
                    pressure: Some(if rng.gen_bool(0.5) {
                        GasPressure::HighA
                    } else {
                        GasPressure::HighB
                    }),
                    diameter: pick(
                        rng,
                        &[
                            (406.0, 2.0),
                            (508.0, 2.0),
                            (610.0, 1.5),
                            (711.0, 1.0),
                            (813.0, 0.5),
                        ],
                    ),
                    material: "steel L415, 3PE coated",
                    year: rng.gen_range(1996..=2018),
                }
            } else {
                LongLine {
                    pts,
                    role: Role::OilProduct,
                    owner: if rng.gen_bool(0.6) {
                        id::OILGAS_SINOPEC
                    } else {
                        id::OILGAS_PIPECHINA
                    },
                    pressure: None,
                    diameter: pick(rng, &[(273.0, 1.0), (323.0, 2.0), (406.0, 1.0)]),
                    material: "steel L360, 3PE coated",
                    year: rng.gen_range(2002..=2016),
                }
            }
        })
        .collect()
}

/// Everything one street's network generation produces.
pub(super) struct StreetNet {
    pub pipes: Vec<Pipeline>,
    pub info: Vec<PipeInfo>,
    /// Each pipe's polyline in the district frame (metres), for the topology.
    pub lines: Vec<Vec<Coord<f64>>>,
    /// Each pipe's traceable network, if it belongs to one.
    pub nets: Vec<Option<Net>>,
    /// Roads that received pipes.
    pub roads: Vec<Road>,
}

/// Inputs of one street's network.
pub(super) struct NetInput<'a> {
    pub frame: &'a Frame,
    pub terrain: &'a Terrain,
    pub adcode: &'a str,
    /// The street polygon (for long-distance lines, which ignore the built-up area).
    pub street: &'a Region,
    /// Communities of the street, tagged by community position.
    pub communities: &'a Region,
    /// Community areas in km², urban flags and centroids (frame), same order as the tags.
    pub community_area_km2: &'a [f64],
    pub community_urban: &'a [bool],
    pub community_centre: &'a [Coord<f64>],
    /// Where the city centre lies in the frame (central communities are built first).
    pub city_centre: Coord<f64>,
    pub budget_km: f64,
    pub long_lines: &'a [LongLine],
}

/// Generates the roads and pipes of one street.
pub(super) fn street_network(inp: &NetInput<'_>, rng: &mut impl Rng) -> StreetNet {
    let mut b = Builder {
        frame: inp.frame,
        terrain: inp.terrain,
        adcode: inp.adcode,
        pipes: Vec::new(),
        info: Vec::new(),
        lines: Vec::new(),
        nets: Vec::new(),
        km: 0.0,
    };
    let roads = if inp.budget_km > 0.0 {
        let (roads, core) = plan_roads(inp, rng);
        grow_from_core(roads, core, inp.budget_km)
    } else {
        vec![]
    };
    let mut used = Vec::new();
    let mut heat_laid = false;
    for road in roads {
        heat_laid |= b.lay_road(&road, rng);
        used.push(road);
    }
    // Heat is rare in Chongqing (district energy from river-water heat pumps, hospitals,
    // hotels) but every built-up street gets at least one short line.
    if !heat_laid {
        if let Some(road) = used
            .iter()
            .find(|r| r.class != RoadClass::Local)
            .or_else(|| used.first())
        {
            let walk = Walk::new(&road.pts);
            let len = walk.len().min(rng.gen_range(300.0..800.0));
            if len > 40.0 {
                let pts = walk.slice(0.0, len);
                let off = -0.45 * road.class.half_width();
                let run = b.run(Role::Heat, road, false, rng);
                b.emit(&run, &geom::offset(&pts, off), SEGMENT_M, rng);
                let mark = b.pipes.len();
                b.emit(&run, &geom::offset(&pts, off - 0.8), SEGMENT_M, rng);
                b.relabel(mark, Net::HeatReturn);
                b.heat_services(road, &pts, off, rng);
            }
        }
    }
    for line in inp.long_lines {
        b.lay_long_line(line, inp.street, rng);
    }
    StreetNet {
        pipes: b.pipes,
        info: b.info,
        lines: b.lines,
        nets: b.nets,
        roads: used,
    }
}

/// Expected pipe km per road km of a class: lanes by probability, plus services.
fn expected_pipes(class: RoadClass) -> f64 {
    let lanes = match class {
        RoadClass::Arterial => ARTERIAL,
        RoadClass::Secondary => SECONDARY,
        RoadClass::Local => LOCAL,
    };
    lanes.iter().map(|l| l.2).sum::<f64>() + 0.42
}

/// Keeps the parts of the roads within the radius of the core that the budget reaches,
/// so a street is built up concentrically from its most central community (a compact
/// neighbourhood for the demo, whole built-up communities for larger budgets).
fn grow_from_core(roads: Vec<Road>, core: Coord<f64>, budget_km: f64) -> Vec<Road> {
    const STEP: f64 = 20.0;
    let mut samples: Vec<(f64, f64)> = Vec::new();
    for r in &roads {
        let w = Walk::new(&r.pts);
        let n = (w.len() / STEP).ceil().max(1.0);
        let per = expected_pipes(r.class) * w.len() / n / 1000.0;
        for k in 0..n as usize {
            let s = (k as f64 + 0.5) * w.len() / n;
            samples.push((geom::dist(w.at(s).0, core), per));
        }
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0.0;
    let mut radius = f64::MAX;
    for (d, km) in &samples {
        acc += km;
        if acc >= budget_km {
            radius = *d;
            break;
        }
    }
    if radius == f64::MAX {
        return roads;
    }
    let mut out = Vec::new();
    for r in roads {
        for piece in inside_runs(&r.pts, 10.0, 40.0, |c| geom::dist(c, core) <= radius) {
            out.push(Road {
                pts: piece,
                ..r.clone()
            });
        }
    }
    out
}

/// Picks the built-up communities and the block size, and lays out the road grid over
/// them. Returns the roads and the core (centre of the most central built community).
fn plan_roads(inp: &NetInput<'_>, rng: &mut impl Rng) -> (Vec<Road>, Coord<f64>) {
    let n = inp.community_area_km2.len();
    if n == 0 {
        return (vec![], inp.city_centre);
    }
    let total_area: f64 = inp.community_area_km2.iter().sum();
    let road_km = inp.budget_km / PIPE_KM_PER_ROAD_KM * 1.5;
    let base_density = 2000.0 / BASE_SPACING_M; // km of road per km²
    let mut order: Vec<usize> = (0..n).collect();
    let d = |i: usize| geom::dist(inp.community_centre[i], inp.city_centre);
    order.sort_by(|&a, &b| {
        (!inp.community_urban[a], d(a))
            .partial_cmp(&(!inp.community_urban[b], d(b)))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let (spacing, built): (f64, Vec<usize>) = if road_km > total_area * base_density {
        let s = (2000.0 * total_area / road_km).clamp(MIN_SPACING_M, BASE_SPACING_M);
        (s, order.clone())
    } else {
        let mut area = 0.0;
        let mut built = Vec::new();
        for &i in &order {
            built.push(i);
            area += inp.community_area_km2[i];
            if area * base_density >= road_km {
                break;
            }
        }
        (BASE_SPACING_M, built)
    };
    let mut is_built = vec![false; n];
    for &i in &built {
        is_built[i] = true;
    }
    let locate = |c: Coord<f64>| inp.communities.locate(c).filter(|&t| t < n && is_built[t]);
    let Some((min, max)) = built_bounds(inp.communities, &built) else {
        return (vec![], inp.city_centre);
    };
    let core = inp.community_centre[built[0]];
    let centre = Coord {
        x: 0.5 * (min.x + max.x),
        y: 0.5 * (min.y + max.y),
    };
    let theta: f64 = rng.gen_range(0.0..std::f64::consts::FRAC_PI_2);
    let mut roads: Vec<Road> = Vec::new();
    for family in 0..2 {
        let angle =
            theta + family as f64 * std::f64::consts::FRAC_PI_2 + rng.gen_range(-0.06..0.06);
        let u = Coord {
            x: angle.cos(),
            y: angle.sin(),
        };
        let v = Coord { x: -u.y, y: u.x };
        let corners = [
            min,
            max,
            Coord { x: min.x, y: max.y },
            Coord { x: max.x, y: min.y },
        ];
        let proj = |c: Coord<f64>, a: Coord<f64>| (c.x - centre.x) * a.x + (c.y - centre.y) * a.y;
        let (umin, umax) = corners.iter().fold((f64::MAX, f64::MIN), |(lo, hi), c| {
            (lo.min(proj(*c, u)), hi.max(proj(*c, u)))
        });
        let (vmin, vmax) = corners.iter().fold((f64::MAX, f64::MIN), |(lo, hi), c| {
            (lo.min(proj(*c, v)), hi.max(proj(*c, v)))
        });
        let i0 = (vmin / spacing).floor() as i64 - 1;
        let i1 = (vmax / spacing).ceil() as i64 + 1;
        for i in i0..=i1 {
            let class = match i.rem_euclid(4) {
                0 => RoadClass::Arterial,
                2 => RoadClass::Secondary,
                _ => RoadClass::Local,
            };
            let o = i as f64 * spacing + rng.gen_range(-0.12..0.12) * spacing;
            // The centre line: vertices every 150 m, a few metres of lateral wander.
            let nv = ((umax - umin + 40.0) / 150.0).ceil().max(1.0) as usize;
            let pts: Vec<Coord<f64>> = (0..=nv)
                .map(|k| {
                    let s = umin - 20.0 + k as f64 * (umax - umin + 40.0) / nv as f64;
                    let lat = o + rng.gen_range(-4.0..4.0);
                    Coord {
                        x: centre.x + u.x * s + v.x * lat,
                        y: centre.y + u.y * s + v.y * lat,
                    }
                })
                .collect();
            for piece in inside_runs(&pts, 20.0, 60.0, |c| locate(c).is_some()) {
                let mid = Walk::new(&piece).at(geom::length(&piece) / 2.0).0;
                let comm = locate(mid).or_else(|| locate(piece[0])).unwrap_or(built[0]);
                let urban = inp.community_urban.get(comm).copied().unwrap_or(false);
                let year = if urban {
                    rng.gen_range(1982..=2018)
                } else {
                    rng.gen_range(1995..=2024)
                };
                let corridor = class == RoadClass::Arterial && year >= 2008 && rng.gen_bool(0.25);
                roads.push(Road {
                    class,
                    pts: piece,
                    year,
                    old: year < 1998,
                    corridor,
                    spacing,
                });
            }
        }
    }
    (roads, core)
}

fn built_bounds(region: &Region, built: &[usize]) -> Option<(Coord<f64>, Coord<f64>)> {
    let mut out: Option<(Coord<f64>, Coord<f64>)> = None;
    for p in region.parts.iter().filter(|p| built.contains(&p.tag)) {
        out = Some(match out {
            None => (p.min, p.max),
            Some((a, b)) => (
                Coord {
                    x: a.x.min(p.min.x),
                    y: a.y.min(p.min.y),
                },
                Coord {
                    x: b.x.max(p.max.x),
                    y: b.y.max(p.max.y),
                },
            ),
        });
    }
    out
}

/// The parts of a polyline whose sample points (every `step` m) pass `inside`, at least
/// `min_len` long.
fn inside_runs(
    pts: &[Coord<f64>],
    step: f64,
    min_len: f64,
    inside: impl Fn(Coord<f64>) -> bool,
) -> Vec<Vec<Coord<f64>>> {
    let walk = Walk::new(pts);
    let total = walk.len();
    let mut out = Vec::new();
    let mut start: Option<f64> = None;
    let mut s = 0.0f64;
    loop {
        let here = s.min(total);
        let ins = inside(walk.at(here).0);
        match (ins, start) {
            (true, None) => start = Some(here),
            (false, Some(s0)) => {
                let s1 = here - step;
                if s1 - s0 >= min_len {
                    out.push(walk.slice(s0, s1));
                }
                start = None;
            }
            _ => {}
        }
        if here >= total {
            break;
        }
        s += step;
    }
    if let Some(s0) = start {
        if total - s0 >= min_len {
            out.push(walk.slice(s0, total));
        }
    }
    out
}

/// Attributes shared by every segment of one pipe run.
struct Run {
    role: Role,
    sub_kind: Option<DrainageKind>,
    pressure: Option<GasPressure>,
    voltage: Option<f64>,
    material: &'static str,
    diameter: Option<f64>,
    section: Option<(f64, f64)>,
    burial: Burial,
    owner: i64,
    year: Option<i32>,
    status: PipeStatus,
    depth: (f64, f64),
    quality: Option<QualityLevel>,
    survey: Option<NaiveDate>,
}

impl Run {
    fn size_mm(&self) -> f64 {
        self.diameter
            .or(self.section.map(|(_, h)| h))
            .unwrap_or(100.0)
    }
}

struct Builder<'a> {
    frame: &'a Frame,
    terrain: &'a Terrain,
    adcode: &'a str,
    pipes: Vec<Pipeline>,
    info: Vec<PipeInfo>,
    lines: Vec<Vec<Coord<f64>>>,
    nets: Vec<Option<Net>>,
    km: f64,
}

impl Builder<'_> {
    /// Puts the pipes laid since `mark` into `net` (the return line of a heat pair, which
    /// shares its run's attributes with the supply line but never a node).
    fn relabel(&mut self, mark: usize, net: Net) {
        for n in self.nets.iter_mut().skip(mark) {
            *n = Some(net);
        }
    }

    /// Lays every lane of a road, its service branches and its branch pipes across the
    /// block. Returns whether a heat line was laid.
    fn lay_road(&mut self, road: &Road, rng: &mut impl Rng) -> bool {
        let lanes = match road.class {
            RoadClass::Arterial => ARTERIAL,
            RoadClass::Secondary => SECONDARY,
            RoadClass::Local => LOCAL,
        };
        let combined = road.old && road.class != RoadClass::Arterial && rng.gen_bool(0.45);
        let mut present: Vec<(Role, f64, i32)> = Vec::new();
        let mut heat = false;
        for &(role, off, p) in lanes {
            if !rng.gen_bool(p) {
                continue;
            }
            if combined && matches!(role, Role::Storm | Role::Sewage) {
                continue;
            }
            let (off, tunnel) = match (road.corridor, corridor_offset(role)) {
                (true, Some(o)) => (o, true),
                _ => (off, false),
            };
            let run = self.run(role, road, tunnel, rng);
            self.emit(&run, &geom::offset(&road.pts, off), SEGMENT_M, rng);
            if role == Role::Heat {
                // Supply and return run side by side.
                let mark = self.pipes.len();
                self.emit(&run, &geom::offset(&road.pts, off - 0.8), SEGMENT_M, rng);
                self.relabel(mark, Net::HeatReturn);
                self.heat_services(road, &road.pts, off, rng);
                heat = true;
            }
            present.push((role, off, run.year.unwrap_or(road.year)));
        }
        if combined {
            let run = self.run(Role::Combined, road, false, rng);
            self.emit(&run, &road.pts, SEGMENT_M, rng);
            present.push((Role::Combined, 0.0, run.year.unwrap_or(road.year)));
        }
        self.services(road, &present, rng);
        self.block_branches(road, &present, rng);
        heat
    }

    /// Service connections from a main to the far side of the road, at right angles.
    fn services(&mut self, road: &Road, present: &[(Role, f64, i32)], rng: &mut impl Rng) {
        let walk = Walk::new(&road.pts);
        let total = walk.len();
        let hw = road.class.half_width();
        let mut s = rng.gen_range(15.0..60.0);
        while s < total - 15.0 {
            let which = rng.gen_range(0..100);
            let (from, service) = if which < 40 {
                (
                    present
                        .iter()
                        .find(|l| matches!(l.0, Role::WaterDist | Role::WaterMain)),
                    Role::WaterService,
                )
            } else if which < 65 {
                (
                    present
                        .iter()
                        .find(|l| matches!(l.0, Role::GasLocal | Role::GasMain)),
                    Role::GasService,
                )
            } else if which < 85 {
                (
                    present
                        .iter()
                        .find(|l| matches!(l.0, Role::Sewage | Role::Combined)),
                    Role::SewerConnection,
                )
            } else {
                (
                    present.iter().find(|l| matches!(l.0, Role::Telecom(_))),
                    Role::Telecom(id::TELECOM),
                )
            };
            if let Some(&(main_role, off, _)) = from {
                let (p, dir) = walk.at(s);
                let n = Coord {
                    x: -dir.y,
                    y: dir.x,
                };
                let end = if off <= 0.0 {
                    hw + rng.gen_range(2.0..5.0)
                } else {
                    -hw - rng.gen_range(2.0..5.0)
                };
                let a = Coord {
                    x: p.x + n.x * off,
                    y: p.y + n.y * off,
                };
                let b = Coord {
                    x: p.x + n.x * end,
                    y: p.y + n.y * end,
                };
                let owner_role = match (service, main_role) {
                    (Role::Telecom(_), Role::Telecom(o)) => Role::Telecom(o),
                    _ => service,
                };
                let run = self.run(owner_role, road, false, rng);
                let run = if matches!(owner_role, Role::Telecom(_)) {
                    Run {
                        diameter: Some(110.0),
                        section: None,
                        ..run
                    }
                } else {
                    run
                };
                self.emit(&run, &[a, b], (1000.0, 1000.0), rng);
            }
            s += rng.gen_range(40.0..120.0);
        }
    }

    /// Building substations on a heat pair laid along `pts` (supply at `off`, return
    /// 0.8 m further out): every 60–150 m a building on the pair's side of the road takes a
    /// supply and a return service, 1 m apart along the road. The return service is laid
    /// right after its supply twin, which is how `nodes` pairs their customer counts.
    fn heat_services(&mut self, road: &Road, pts: &[Coord<f64>], off: f64, rng: &mut impl Rng) {
        let walk = Walk::new(pts);
        let total = walk.len();
        // The building line on the pair's own side: heat lines run on one side of the
        // street, so their buildings are served without crossing the carriageway.
        let side = if off <= 0.0 { -1.0 } else { 1.0 };
        let mut s = rng.gen_range(20.0..60.0);
        while s < total - 20.0 {
            let end = side * (road.class.half_width() + rng.gen_range(2.0..5.0));
            let run = self.run(Role::HeatService, road, false, rng);
            for (along, lateral, net) in [
                (s, off, Net::HeatSupply),
                (s + 1.0, off - 0.8, Net::HeatReturn),
            ] {
                let (p, dir) = walk.at(along);
                let n = Coord {
                    x: -dir.y,
                    y: dir.x,
                };
                let at = |d: f64| Coord {
                    x: p.x + n.x * d,
                    y: p.y + n.y * d,
                };
                let mark = self.pipes.len();
                self.emit(&run, &[at(lateral), at(end)], (1000.0, 1000.0), rng);
                self.relabel(mark, net);
            }
            s += rng.gen_range(60.0..150.0);
        }
    }

    /// Branch pipes from a road across the block to the next parallel road.
    fn block_branches(&mut self, road: &Road, present: &[(Role, f64, i32)], rng: &mut impl Rng) {
        if road.class == RoadClass::Local {
            return;
        }
        let walk = Walk::new(&road.pts);
        let total = walk.len();
        let mut s = rng.gen_range(100.0..300.0);
        while s < total - 50.0 {
            let storm = rng.gen_bool(0.6);
            let from = present.iter().find(|l| {
                if storm {
                    matches!(l.0, Role::Storm | Role::Combined)
                } else {
                    matches!(l.0, Role::WaterDist | Role::WaterMain)
                }
            });
            if let Some(&(_, off, _)) = from {
                let (p, dir) = walk.at(s);
                let n = Coord {
                    x: -dir.y,
                    y: dir.x,
                };
                let len = road.spacing;
                let pts: Vec<Coord<f64>> = [off, off + len * 0.5, off + len]
                    .iter()
                    .map(|d| Coord {
                        x: p.x + n.x * d,
                        y: p.y + n.y * d,
                    })
                    .collect();
                let role = if storm {
                    Role::StormBranch
                } else {
                    Role::WaterDist
                };
                let run = self.run(role, road, false, rng);
                self.emit(&run, &pts, SEGMENT_M, rng);
            }
            s += rng.gen_range(250.0..500.0);
        }
    }

    /// Lays the parts of a long-distance line inside this street.
    fn lay_long_line(&mut self, line: &LongLine, street: &Region, rng: &mut impl Rng) {
        for piece in inside_runs(&line.pts, 25.0, 50.0, |c| street.locate(c).is_some()) {
            let (quality, survey) = quality_and_survey(Some(line.year), false, rng);
            let run = Run {
                role: line.role,
                sub_kind: None,
                pressure: line.pressure,
                voltage: None,
                material: line.material,
                diameter: Some(line.diameter),
                section: None,
                burial: Burial::Direct,
                owner: line.owner,
                year: Some(line.year),
                status: PipeStatus::InService,
                depth: (1.2, 2.0),
                quality,
                survey,
            };
            self.emit(&run, &piece, (100.0, 250.0), rng);
        }
    }

    /// Draws the attributes of one run of `role` along `road`.
    fn run(&self, role: Role, road: &Road, tunnel: bool, rng: &mut impl Rng) -> Run {
        let class = road.class;
        let min_year = match role {
            Role::Telecom(_) | Role::Tv => 1992,
            Role::Signal | Role::GasSubHigh => 2000,
            Role::PowerHv => 2005,
            Role::Heat | Role::HeatService => 2008,
            _ => 1980,
        };
        let mut year = (road.year + rng.gen_range(-2..=6)).clamp(min_year, 2025);
        if tunnel {
            year = year.max(2010);
        }
        let old = year < 1995;
        let mut sub_kind = None;
        let mut pressure = None;
        let mut voltage = None;
        let mut diameter = None;
        let mut section = None;
        let mut burial = Burial::Direct;
        let water = owners::water_owner(self.adcode);
        let power = owners::power_owner(self.adcode);
        let drain = if class == RoadClass::Local {
            id::DRAIN_LOCAL
        } else {
            id::DRAIN_TRUNK
        };
        let (material, owner, depth): (&'static str, i64, (f64, f64)) = match role {
            Role::WaterMain => {
                let dn = pick(
                    rng,
                    &[
                        (400.0, 3.0),
                        (500.0, 3.0),
                        (600.0, 3.0),
                        (800.0, 2.0),
                        (1000.0, 1.0),
                        (1200.0, 0.6),
                    ],
                );
                diameter = Some(dn);
                let m = if old && dn <= 600.0 && rng.gen_bool(0.3) {
                    "cast iron"
                } else if dn >= 800.0 && rng.gen_bool(0.15) {
                    "PCCP"
                } else if rng.gen_bool(0.75) {
                    "ductile iron"
                } else {
                    "steel"
                };
                (m, water, (1.2, 2.2))
            }
            Role::WaterDist => {
                let dn = pick(
                    rng,
                    &[
                        (100.0, 2.0),
                        (150.0, 3.0),
                        (200.0, 3.0),
                        (300.0, 2.5),
                        (400.0, 1.0),
                    ],
                );
                diameter = Some(dn);
                let m = if year < 1998 && rng.gen_bool(0.35) {
                    "cast iron"
                } else if dn <= 300.0 && year >= 2000 && rng.gen_bool(0.3) {
                    "PE100"
                } else if rng.gen_bool(0.1) {
                    "steel"
                } else {
                    "ductile iron"
                };
                (m, water, (0.9, 1.6))
            }
            Role::WaterService => {
                diameter = Some(pick(rng, &[(100.0, 3.0), (150.0, 1.0)]));
                let m = if year >= 2000 {
                    "PE100"
                } else {
                    "galvanised steel"
                };
                (m, water, (0.8, 1.3))
            }
            Role::Storm | Role::StormBranch => {
                sub_kind = Some(DrainageKind::Storm);
                let boxed = match (role, class) {
                    (Role::StormBranch, _) => false,
                    (_, RoadClass::Arterial) => rng.gen_bool(0.35),
                    (_, RoadClass::Secondary) => rng.gen_bool(0.1),
                    _ => false,
                };
                let m = if boxed {
                    let w: f64 = if class == RoadClass::Arterial {
                        pick(
                            rng,
                            &[
                                (1500.0, 1.0),
                                (2000.0, 2.0),
                                (2500.0, 1.5),
                                (3000.0, 1.0),
                                (4000.0, 0.5),
                            ],
                        )
                    } else {
                        pick(rng, &[(1000.0, 1.0), (1500.0, 2.0), (2000.0, 1.0)])
                    };
                    let h: f64 = pick(
                        rng,
                        &[
                            (800.0, 1.0),
                            (1000.0, 2.0),
                            (1500.0, 2.0),
                            (2000.0, 1.0),
                            (2500.0, 0.5),
                        ],
                    );
                    let h = h.min(w);
                    section = Some((w, h));
                    if old && rng.gen_bool(0.5) {
                        "brick masonry"
                    } else {
                        "reinforced concrete"
                    }
                } else {
                    let dn = match (role, class) {
                        (Role::StormBranch, _) => pick(
                            rng,
                            &[(400.0, 1.0), (500.0, 1.0), (600.0, 1.0), (800.0, 0.5)],
                        ),
                        (_, RoadClass::Arterial) => pick(
                            rng,
                            &[
                                (1000.0, 2.0),
                                (1200.0, 2.0),
                                (1500.0, 1.5),
                                (1800.0, 1.0),
                                (2000.0, 0.5),
                            ],
                        ),
                        (_, RoadClass::Secondary) => pick(
                            rng,
                            &[
                                (600.0, 1.5),
                                (800.0, 2.0),
                                (1000.0, 1.5),
                                (1200.0, 1.0),
                                (1500.0, 0.5),
                            ],
                        ),
                        _ => pick(
                            rng,
                            &[
                                (300.0, 1.5),
                                (400.0, 2.0),
                                (500.0, 1.5),
                                (600.0, 1.0),
                                (800.0, 0.5),
                            ],
                        ),
                    };
                    diameter = Some(dn);
                    if dn >= 600.0 {
                        "reinforced concrete"
                    } else if year >= 2005 && rng.gen_bool(0.5) {
                        "HDPE double-wall corrugated"
                    } else if year < 2000 {
                        "concrete"
                    } else {
                        "reinforced concrete"
                    }
                };
                let depth = if class == RoadClass::Arterial {
                    (2.0, 3.5)
                } else {
                    (1.5, 3.0)
                };
                (m, drain, depth)
            }
            Role::Sewage | Role::SewerConnection => {
                sub_kind = Some(DrainageKind::Sewage);
                let dn = match (role, class) {
                    (Role::SewerConnection, _) => pick(rng, &[(200.0, 1.0), (300.0, 1.0)]),
                    (_, RoadClass::Arterial) => pick(
                        rng,
                        &[(600.0, 1.0), (800.0, 2.0), (1000.0, 1.5), (1200.0, 1.0)],
                    ),
                    (_, RoadClass::Secondary) => pick(
                        rng,
                        &[(400.0, 1.0), (500.0, 1.5), (600.0, 1.5), (800.0, 1.0)],
                    ),
                    _ => pick(
                        rng,
                        &[(300.0, 1.5), (400.0, 2.0), (500.0, 1.0), (600.0, 0.5)],
                    ),
                };
                diameter = Some(dn);
                let m = if dn <= 800.0 && year >= 2005 && rng.gen_bool(0.5) {
                    "HDPE double-wall corrugated"
                } else if dn <= 400.0 && rng.gen_bool(0.3) {
                    "PVC-U"
                } else if old {
                    "concrete"
                } else {
                    "reinforced concrete"
                };
                let depth = match (role, class) {
                    (Role::SewerConnection, _) => (1.2, 2.2),
                    (_, RoadClass::Arterial) => (2.5, 4.0),
                    _ => (1.8, 3.5),
                };
                (m, drain, depth)
            }
            Role::Combined => {
                sub_kind = Some(DrainageKind::Combined);
                let m = if rng.gen_bool(0.2) {
                    section = Some((
                        pick(rng, &[(1000.0, 1.0), (1500.0, 1.0), (2000.0, 0.5)]),
                        pick(rng, &[(1000.0, 1.0), (1200.0, 1.0)]),
                    ));
                    if rng.gen_bool(0.5) {
                        "brick masonry"
                    } else {
                        "reinforced concrete"
                    }
                } else {
                    diameter = Some(pick(
                        rng,
                        &[
                            (600.0, 1.5),
                            (800.0, 2.0),
                            (1000.0, 1.5),
                            (1200.0, 1.0),
                            (1500.0, 0.5),
                        ],
                    ));
                    if old {
                        "concrete"
                    } else {
                        "reinforced concrete"
                    }
                };
                (m, drain, (1.8, 3.5))
            }
            Role::GasMain => {
                pressure = Some(if rng.gen_bool(0.6) {
                    GasPressure::MediumA
                } else {
                    GasPressure::MediumB
                });
                let dn = pick(
                    rng,
                    &[
                        (200.0, 2.0),
                        (250.0, 1.5),
                        (300.0, 2.0),
                        (400.0, 1.0),
                        (500.0, 0.5),
                    ],
                );
                diameter = Some(dn);
                let m = if dn <= 300.0 && year >= 2000 && rng.gen_bool(0.5) {
                    "PE100 SDR11"
                } else {
                    "steel"
                };
                (m, id::GAS_CITY, (1.0, 1.6))
            }
            Role::GasSubHigh => {
                pressure = Some(if rng.gen_bool(0.7) {
                    GasPressure::SubHighB
                } else {
                    GasPressure::SubHighA
                });
                diameter = Some(pick(rng, &[(300.0, 1.0), (400.0, 1.0), (500.0, 1.0)]));
                ("steel L245", id::GAS_HIGH, (1.2, 1.8))
            }
            Role::GasLocal => {
                pressure = Some(if rng.gen_bool(0.4) {
                    GasPressure::Low
                } else {
                    GasPressure::MediumB
                });
                diameter = Some(pick(rng, &[(100.0, 2.0), (150.0, 2.0), (200.0, 1.0)]));
                let m = if year >= 1998 && rng.gen_bool(0.75) {
                    "PE100"
                } else if old && rng.gen_bool(0.3) {
                    "cast iron"
                } else {
                    "steel"
                };
                (m, id::GAS_CITY, (0.9, 1.4))
            }
            Role::GasService => {
                pressure = Some(if rng.gen_bool(0.5) {
                    GasPressure::Low
                } else {
                    GasPressure::MediumB
                });
                diameter = Some(pick(rng, &[(63.0, 1.0), (90.0, 1.0), (110.0, 1.0)]));
                let m = if year >= 1998 {
                    "PE100"
                } else {
                    "galvanised steel"
                };
                (m, id::GAS_CITY, (0.8, 1.2))
            }
            Role::GasTransmission | Role::OilProduct => {
                // Long-distance lines are laid by `lay_long_line`; this arm keeps the
                // table total.
                diameter = Some(406.0);
                ("steel", id::OILGAS_PIPECHINA, (1.2, 2.0))
            }
            Role::PowerHv => {
                voltage = Some(110.0);
                burial = Burial::Tunnel;
                section = Some((
                    pick(rng, &[(2000.0, 1.0), (2200.0, 1.0), (2400.0, 1.0)]),
                    pick(rng, &[(2100.0, 1.0), (2300.0, 1.0), (2600.0, 1.0)]),
                ));
                ("copper XLPE cable in cable tunnel", power, (2.0, 3.6))
            }
            Role::PowerMv => {
                voltage = Some(10.0);
                if tunnel || rng.gen_bool(0.92) {
                    burial = Burial::Duct;
                    section = Some((
                        pick(
                            rng,
                            &[(400.0, 1.0), (600.0, 2.0), (800.0, 1.0), (1000.0, 0.5)],
                        ),
                        pick(rng, &[(300.0, 1.0), (400.0, 2.0), (500.0, 1.0)]),
                    ));
                    ("copper XLPE cable in MPP duct bank", power, (0.7, 1.3))
                } else {
                    diameter = Some(110.0);
                    ("copper XLPE cable, direct buried", power, (0.7, 1.1))
                }
            }
            Role::PowerLv => {
                voltage = Some(0.38);
                diameter = Some(pick(rng, &[(100.0, 2.0), (150.0, 1.0)]));
                if rng.gen_bool(0.65) {
                    burial = Burial::Duct;
                    ("copper cable in PVC duct", power, (0.7, 1.0))
                } else {
                    ("copper cable, direct buried", power, (0.7, 1.0))
                }
            }
            Role::Telecom(owner) => {
                burial = Burial::Duct;
                if rng.gen_bool(0.4) {
                    let w = pick(
                        rng,
                        &[(300.0, 1.0), (400.0, 2.0), (600.0, 1.5), (800.0, 0.5)],
                    );
                    let h = pick(rng, &[(200.0, 1.0), (300.0, 2.0), (400.0, 1.0)]);
                    section = Some((w, h));
                } else {
                    diameter = Some(110.0);
                }
                let m = if old && rng.gen_bool(0.5) {
                    "concrete duct bank"
                } else if year >= 2000 && rng.gen_bool(0.6) {
                    "HDPE silicon-core duct"
                } else {
                    "PVC duct"
                };
                (m, owner, (0.7, 1.2))
            }
            Role::Tv => {
                burial = Burial::Duct;
                diameter = Some(pick(rng, &[(90.0, 1.0), (110.0, 2.0)]));
                ("PVC duct", id::CABLE_TV, (0.7, 1.0))
            }
            Role::Lighting => {
                diameter = Some(pick(rng, &[(50.0, 1.0), (75.0, 2.0), (100.0, 1.0)]));
                if rng.gen_bool(0.7) {
                    burial = Burial::Duct;
                    ("copper cable in PVC duct", id::LIGHTING, (0.7, 0.9))
                } else {
                    ("copper cable, direct buried", id::LIGHTING, (0.7, 0.9))
                }
            }
            Role::Signal => {
                burial = Burial::Duct;
                if rng.gen_bool(0.2) {
                    section = Some((300.0, 200.0));
                } else {
                    diameter = Some(pick(rng, &[(75.0, 1.0), (110.0, 1.0)]));
                }
                ("PVC duct", id::SIGNAL, (0.7, 0.9))
            }
            Role::Heat => {
                diameter = Some(pick(
                    rng,
                    &[
                        (150.0, 1.0),
                        (200.0, 2.0),
                        (300.0, 2.0),
                        (400.0, 1.0),
                        (500.0, 0.5),
                    ],
                ));
                ("steel, pre-insulated", id::HEAT, (1.0, 1.8))
            }
            Role::HeatService => {
                // A building substation's connection: DN 50–150 pre-insulated pipe.
                diameter = Some(pick(
                    rng,
                    &[(50.0, 1.0), (80.0, 2.0), (100.0, 2.0), (150.0, 1.0)],
                ));
                ("steel, pre-insulated", id::HEAT, (0.9, 1.5))
            }
        };
        let depth = if tunnel {
            burial = Burial::Tunnel;
            (2.5, 3.6)
        } else {
            depth
        };
        // Life-cycle: a few old runs were abandoned in place, a few are planned or being
        // built.
        let r: f64 = rng.gen();
        let (status, year) = if year < 2000 && r < 0.05 {
            (PipeStatus::Abandoned, Some(year))
        } else if r > 0.993 {
            (PipeStatus::Planned, None)
        } else if r > 0.988 {
            (PipeStatus::UnderConstruction, Some(2025))
        } else {
            (PipeStatus::InService, Some(year))
        };
        let (quality, survey) = if status == PipeStatus::Planned {
            (Some(QualityLevel::QlD), None)
        } else {
            quality_and_survey(year, burial == Burial::Tunnel, rng)
        };
        Run {
            role,
            sub_kind,
            pressure,
            voltage,
            material,
            diameter,
            section,
            burial,
            owner,
            year,
            status,
            depth,
            quality,
            survey,
        }
    }

    /// Cuts a run into segments and records them.
    fn emit(&mut self, run: &Run, pts: &[Coord<f64>], seg: (f64, f64), rng: &mut impl Rng) {
        if pts.len() < 2 || geom::length(pts) < 1.0 {
            return;
        }
        let walk = Walk::new(pts);
        let pieces = if seg.0 >= walk.len() {
            vec![pts.to_vec()]
        } else {
            walk.cut(|| rng.gen_range(seg.0..=seg.1), 0.4 * seg.0)
        };
        let kind = run.role.kind();
        let size_m = run.size_mm() / 1000.0;
        let mut depth_prev: Option<f64> = None;
        for mut piece in pieces {
            let len = geom::length(&piece);
            if len < 0.5 {
                continue;
            }
            let mut z0 = self.terrain.z(piece[0]);
            let mut z1 = self.terrain.z(piece[piece.len() - 1]);
            let gravity = kind == PipeKind::Drainage;
            if gravity && z1 > z0 {
                // Gravity sewers are drawn in the direction of flow.
                piece.reverse();
                std::mem::swap(&mut z0, &mut z1);
                depth_prev = None;
            }
            let d0 = depth_prev.unwrap_or_else(|| rng.gen_range(run.depth.0..=run.depth.1));
            // Depth of top stays within 0.7–4 m, the range surveyors report.
            let mut d1 = (d0 + rng.gen_range(-0.15..0.2))
                .clamp((run.depth.0 - 0.1).max(0.7), (run.depth.1 + 0.2).min(4.0));
            let (mut inv0, mut inv1) = (None, None);
            if gravity {
                let i0 = z0 - d0 - size_m;
                let mut i1 = z1 - d1 - size_m;
                // At least 0.2 % fall; a deeper end where the ground is flat.
                let need = i0 - 0.002 * len;
                if i1 > need {
                    d1 = (z1 - size_m - need).min(4.0);
                    i1 = z1 - d1 - size_m;
                }
                inv0 = Some(round2(i0));
                inv1 = Some(round2(i1));
            }
            depth_prev = if gravity { None } else { Some(d1) };
            let h_cm = ((d0 + size_m / 2.0) * 100.0).max(100.0);
            let (plan_acc, depth_acc) = accuracy(run.quality, h_cm, rng);
            let depth_known =
                !(matches!(run.quality, Some(QualityLevel::QlD) | None) && rng.gen_bool(0.5));
            let geometry = self.frame.line_to_ll(&piece);
            if geometry.0.windows(2).all(|w| w[0] == w[1]) {
                continue;
            }
            self.km += len / 1000.0;
            self.info.push(PipeInfo {
                kind,
                role: run.role,
                owner: run.owner,
                a: piece[0],
                b: piece[piece.len() - 1],
                year: run.year,
                size_mm: run.size_mm(),
                tunnel: run.burial == Burial::Tunnel,
                len_m: len,
            });
            self.nets.push(run.role.net());
            self.lines.push(piece.clone());
            self.pipes.push(Pipeline {
                id: 0,
                kind,
                sub_kind: run.sub_kind,
                pressure_class: run.pressure,
                voltage_kv: run.voltage,
                material: Some(run.material.to_string()),
                diameter_mm: run.diameter,
                section_width_mm: run.section.map(|s| s.0),
                section_height_mm: run.section.map(|s| s.1),
                depth_start_m: depth_known.then(|| round2(d0)),
                depth_end_m: depth_known.then(|| round2(d1)),
                invert_start_m: if depth_known { inv0 } else { None },
                invert_end_m: if depth_known { inv1 } else { None },
                burial: Some(run.burial),
                owner_id: run.owner,
                year_built: run.year,
                survey_date: run.survey,
                plan_accuracy_cm: plan_acc,
                depth_accuracy_cm: if depth_known { depth_acc } else { None },
                quality_level: run.quality,
                status: run.status,
                from_node: None,
                to_node: None,
                geometry,
            });
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Survey quality of a run and the date it was surveyed (never before it was built).
fn quality_and_survey(
    year: Option<i32>,
    visible: bool,
    rng: &mut impl Rng,
) -> (Option<QualityLevel>, Option<NaiveDate>) {
    let r: f64 = rng.gen();
    // Pipes in tunnels are seen and measured directly (QL-A) most of the time.
    let q = if (visible && r < 0.8) || r < 0.08 {
        Some(QualityLevel::QlA)
    } else if r < 0.80 {
        Some(QualityLevel::QlB)
    } else if r < 0.89 {
        Some(QualityLevel::QlC)
    } else if r < 0.95 {
        Some(QualityLevel::QlD)
    } else {
        None
    };
    let built = year.unwrap_or(2025).clamp(1980, 2025);
    let y = rng.gen_range(built.max(2006)..=2025);
    let last_day = if y == 2025 { 300 } else { 365 };
    let date = NaiveDate::from_yo_opt(y, rng.gen_range(1..=last_day));
    (q, date)
}

/// Plan and depth accuracy (± cm) for a quality level, following CJJ 61: hidden points
/// ±0.05·h in plan and ±0.075·h in depth (limits twice that), h the depth to the pipe
/// centre in cm (at least 100).
fn accuracy(q: Option<QualityLevel>, h_cm: f64, rng: &mut impl Rng) -> (Option<f64>, Option<f64>) {
    match q {
        Some(QualityLevel::QlA) => (
            Some(round1(rng.gen_range(1.5..5.0))),
            Some(round1(rng.gen_range(1.5..5.0))),
        ),
        Some(QualityLevel::QlB) => (
            Some(round1(0.05 * h_cm * rng.gen_range(0.5..1.9))),
            Some(round1(0.075 * h_cm * rng.gen_range(0.5..1.9))),
        ),
        Some(QualityLevel::QlC) => (
            Some(round1(rng.gen_range(20.0..60.0))),
            rng.gen_bool(0.6)
                .then(|| round1(0.15 * h_cm * rng.gen_range(0.8..2.0))),
        ),
        Some(QualityLevel::QlD) => (Some(round1(rng.gen_range(100.0..300.0))), None),
        None => (
            rng.gen_bool(0.4)
                .then(|| round1(rng.gen_range(50.0..200.0))),
            None,
        ),
    }
}

/// A weighted choice.
pub(super) fn pick<T: Copy>(rng: &mut impl Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|i| i.1).sum();
    let mut r = rng.gen::<f64>() * total;
    for &(v, w) in items {
        if r < w {
            return v;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_runs_follow_the_region() {
        let pts = vec![Coord { x: 0.0, y: 0.0 }, Coord { x: 1000.0, y: 0.0 }];
        let runs = inside_runs(&pts, 20.0, 60.0, |c| c.x < 300.0 || c.x > 700.0);
        assert_eq!(runs.len(), 2);
        assert!(geom::length(&runs[0]) > 250.0 && geom::length(&runs[0]) < 300.0);
    }

    #[test]
    fn pick_respects_weights() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = (0..1000)
            .filter(|_| pick(&mut rng, &[(true, 9.0), (false, 1.0)]))
            .count();
        assert!(n > 850 && n < 950, "{n}");
    }
}

//! The deterministic sample-city generator: from the real district polygons and the real
//! street and community names of Chongqing (compiled in from `data/`), it builds a
//! complete [`Dataset`] — the grid-governance hierarchy, owners, a road-following network
//! of pipelines of every kind, risk points in the 40 catalog categories and the sensors
//! that watch them.
//!
//! This module owns the presets (`demo`, `jiulongpo`, `city`) and their targets (taken
//! from the domain reference), the orchestration (districts, then streets in parallel,
//! then id assignment, then the join across streets), and the report. Submodules own the
//! parts:
//! `source` the embedded inputs, `split` polygon splitting, `cells` the hierarchy,
//! `network` roads and pipes, `nodes` the traceable water, gas and heat networks laid on
//! them (junctions, valves, sources, customer connections), `ties` joining the streets'
//! networks into one per utility (ties, trunk mains, a few sources), `risk` risk points
//! and sensors, `owners` companies and people, `geom` the metric frame and polyline
//! helpers.
//!
//! Determinism: every district and street draws from its own ChaCha8 stream derived from
//! the seed and its statistical code, results are merged in a fixed order and ids are
//! assigned after the merge, so the same seed gives an identical data set whatever the
//! number of threads, and a street's cells are the same in every preset that includes it.
//!
//! Two choices worth knowing: risk points name the smallest cell containing them (a
//! micro-grid); and every street gets at least 168 grids (the figure the domain reference
//! gives for one Jiulongpo street), so Jiulongpo has about 3,400 grids and 19,000
//! micro-grids, more than the 1,575 grid organisations and 8,861 micro-grids the district
//! reports as a whole.

mod cells;
mod geom;
mod network;
mod nodes;
mod owners;
mod risk;
mod source;
mod split;
mod ties;

use geo::Coord;
use indicatif::{ProgressBar, ProgressStyle};
use lifeline_model::{
    Catalog, Dataset, GridCell, GridLevel, NetworkNode, NodeType, PipeKind, RiskPoint, Sensor,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Jiefangbei, the historic centre of Chongqing: urban sub-districts are laid out towards it.
const CITY_CENTRE: Coord<f64> = Coord {
    x: 106.5775,
    y: 29.5570,
};

/// The districts of the central city (主城区) in the `city` preset.
const CENTRAL_CITY: &[&str] = &[
    "500103", "500104", "500105", "500106", "500107", "500108", "500109", "500112", "500113",
];

/// Jiulongpo district.
const JIULONGPO: &str = "500107";
/// The demo street: 谢家湾街道, Jiulongpo.
const DEMO_STREET: &str = "500107003";

/// Pipeline kilometres a street can hold per km² of its area (a 90 m block grid with every
/// lane filled); budgets above it go to other streets.
const MAX_KM_PER_KM2: f64 = 150.0;

/// Which sample city to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// One street of Jiulongpo (谢家湾街道): about 30 km of pipes, 50 risk points.
    Demo,
    /// The whole Jiulongpo district: ≈ 5,300 km of pipes, 4,508 risk points.
    Jiulongpo,
    /// The nine central-city districts: ≈ 62,000 km of pipes, 105,000 risk points.
    City,
}

impl Preset {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Demo => "demo",
            Preset::Jiulongpo => "jiulongpo",
            Preset::City => "city",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Preset {
    type Err = GenerateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "demo" => Ok(Preset::Demo),
            "jiulongpo" => Ok(Preset::Jiulongpo),
            "city" => Ok(Preset::City),
            _ => Err(GenerateError::UnknownPreset(s.chars().take(64).collect())),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub preset: Preset,
    /// Same seed, same data set.
    pub seed: u64,
    /// Show a progress bar per phase on stderr.
    pub progress: bool,
}

/// Why generation failed. The inputs are compiled in, so these point at a broken build or
/// a geometry the splitter could not handle, never at the caller.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A preset name that is not `demo`, `jiulongpo` or `city`.
    #[error("unknown preset '{0}'; allowed: demo, jiulongpo, city")]
    UnknownPreset(String),
    /// A district adcode missing from the embedded data.
    #[error("district {0} is not in the embedded Chongqing data")]
    UnknownDistrict(String),
    /// A street code missing from the embedded names.
    #[error("street {0} is not in the embedded Chongqing names")]
    UnknownStreet(String),
    /// The embedded data could not be parsed.
    #[error("embedded data: {0}")]
    Data(String),
    /// A cell could not be derived as a valid polygon.
    #[error("could not build {what}: {reason}")]
    Geometry { what: String, reason: String },
    /// A worker thread stopped without a result.
    #[error("a generator thread failed: {0}")]
    Worker(String),
}

/// What was generated, for the command line and the benches.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    pub preset: Preset,
    pub seed: u64,
    /// The districts used, with their streets and what each got.
    pub districts: Vec<DistrictSummary>,
    /// Streets (街道/镇) used.
    pub streets: usize,
    pub owners: usize,
    /// Grid cells per level, from districts down to micro-grids.
    pub grid_cells: Vec<(GridLevel, usize)>,
    /// Pipeline segments.
    pub pipelines: usize,
    /// Nodes of the traceable networks (water supply, gas, heat) by type.
    pub nodes_by_type: Vec<(NodeType, usize)>,
    /// Valves normally closed (zone boundaries), and broken or inaccessible.
    pub closed_valves: usize,
    pub inoperable_valves: usize,
    /// Pipes of the traceable networks in a part no source feeds, as the valves stand.
    pub unfed_pipes: usize,
    /// Ties where the streets' mains meet (module `ties`).
    pub ties: usize,
    /// Trunk mains between the streets' built-up areas, second feeds included.
    pub trunk_mains: usize,
    /// Pipes the ties and trunk mains add (stubs included).
    pub link_pipes: usize,
    /// Sources the streets' networks had before they were joined (one per street part).
    pub street_sources: usize,
    /// Normally closed valves opened once the streets were joined, because a part would
    /// otherwise have lost every source.
    pub reopened_valves: usize,
    /// Total pipeline length, km.
    pub pipeline_km: f64,
    /// Length per kind, km.
    pub km_by_kind: Vec<(PipeKind, f64)>,
    pub risk_points: usize,
    pub sensors: usize,
    /// Risk points no sensor watches.
    pub unmonitored_risk_points: usize,
    pub elapsed: Duration,
}

/// One district of a [`GenerateReport`].
#[derive(Debug, Clone, Serialize)]
pub struct DistrictSummary {
    pub adcode: String,
    pub name: String,
    /// Names of the streets (街道) and towns (镇) used.
    pub streets: Vec<String>,
    pub pipeline_km: f64,
    pub risk_points: usize,
}

impl GenerateReport {
    /// Total grid cells.
    pub fn grid_cell_count(&self) -> usize {
        self.grid_cells.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for GenerateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let levels: Vec<String> = self
            .grid_cells
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        write!(
            f,
            "{} (seed {}): {} district(s) ({}), {} street(s); {} owners; {} grid cells ({}); \
             {} pipeline segments, {:.1} km; {} network nodes ({}; {} valves closed, {} \
             inoperable; {} unfed pipes; {} ties and {} trunk mains between streets, {} pipes, \
             sources {} before); {} risk points ({} unmonitored); {} sensors; {:.2} s",
            self.preset,
            self.seed,
            self.districts.len(),
            self.districts
                .iter()
                .map(|d| format!("{} {:.0} km", d.name, d.pipeline_km))
                .collect::<Vec<_>>()
                .join("、"),
            self.streets,
            self.owners,
            self.grid_cell_count(),
            levels.join(", "),
            self.pipelines,
            self.pipeline_km,
            self.nodes_by_type.iter().map(|(_, n)| n).sum::<usize>(),
            self.nodes_by_type
                .iter()
                .map(|(t, n)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.closed_valves,
            self.inoperable_valves,
            self.unfed_pipes,
            self.ties,
            self.trunk_mains,
            self.link_pipes,
            self.street_sources,
            self.risk_points,
            self.unmonitored_risk_points,
            self.sensors,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The data every bench runs on: the preset named by `LIFELINE_BENCH_PRESET` (default
/// `jiulongpo`; the issues' goals are stated for `city`), seed 42, with the preset's name.
/// Panics on an unknown preset name: benches have no one to return an error to.
pub fn bench_dataset() -> (Dataset, String) {
    let name = std::env::var("LIFELINE_BENCH_PRESET").unwrap_or_else(|_| "jiulongpo".into());
    let preset: Preset = name
        .parse()
        .unwrap_or_else(|e| panic!("LIFELINE_BENCH_PRESET: {e}"));
    let (data, _) = generate(&GenerateOptions {
        preset,
        seed: 42,
        progress: false,
    })
    .unwrap_or_else(|e| panic!("generating {name}: {e}"));
    (data, name)
}

/// Generates the sample city of a preset.
pub fn generate(opts: &GenerateOptions) -> Result<(Dataset, GenerateReport), GenerateError> {
    generate_plan(&Plan::for_preset(opts.preset), opts.seed, opts.progress)
}

/// The targets of one run.
#[derive(Debug, Clone)]
struct Plan {
    preset: Preset,
    adcodes: Vec<&'static str>,
    /// Pipeline km over all districts, and districts whose share is fixed.
    total_km: f64,
    pinned_km: Vec<(&'static str, f64)>,
    /// Risk points over all districts (exact).
    risk_points: usize,
    /// Keep only these streets (the others are still laid out, so cells do not move).
    only_streets: Option<Vec<&'static str>>,
    /// Fixed pipeline km and risk points for each kept street (the demo).
    street_override: Option<(f64, usize)>,
    /// Pipe-watching sensors per pipe segment.
    sensor_ratio: f64,
}

impl Plan {
    fn for_preset(preset: Preset) -> Plan {
        match preset {
            Preset::Demo => Plan {
                preset,
                adcodes: vec![JIULONGPO],
                total_km: 5300.0,
                pinned_km: vec![],
                risk_points: 4508,
                only_streets: Some(vec![DEMO_STREET]),
                street_override: Some((25.0, 50)),
                sensor_ratio: 0.15,
            },
            Preset::Jiulongpo => Plan {
                preset,
                adcodes: vec![JIULONGPO],
                total_km: 5300.0,
                pinned_km: vec![],
                risk_points: 4508,
                only_streets: None,
                street_override: None,
                sensor_ratio: 0.40,
            },
            Preset::City => Plan {
                preset,
                adcodes: CENTRAL_CITY.to_vec(),
                total_km: 62_000.0,
                pinned_km: vec![(JIULONGPO, 5300.0)],
                risk_points: 105_000,
                only_streets: None,
                street_override: None,
                sensor_ratio: 0.25,
            },
        }
    }
}

/// A district laid out: frame, terrain, street polygons, long-distance lines.
struct DistrictCtx {
    src: source::District,
    frame: geom::Frame,
    terrain: geom::Terrain,
    region: network::Region,
    street_geoms: Vec<geo::MultiPolygon<f64>>,
    long_lines: Vec<network::LongLine>,
}

/// One street to generate.
struct StreetJob {
    district: usize,
    street: usize,
    budget_km: f64,
    risks: usize,
}

/// What one street produced, with references local to it.
struct StreetOut {
    cells: cells::StreetCells,
    pipes: Vec<lifeline_model::Pipeline>,
    /// The networks' nodes, with the street's pipe indices (`nodes::build`).
    nodes: nodes::StreetNodes,
    km_by_kind: Vec<f64>,
    risks: Vec<risk::LocalRisk>,
    sensors: Vec<risk::LocalSensor>,
    /// Each pipe's traceable network, and whether it is a service (for `ties`).
    nets: Vec<Option<nodes::Net>>,
    services: Vec<bool>,
}

/// A ChaCha8 stream for one purpose and one place, derived from the seed.
fn stream(seed: u64, purpose: &str, code: &str) -> ChaCha8Rng {
    // FNV-1a over the labels, then SplitMix64 with the seed: stable across platforms and
    // Rust versions (unlike `std`'s hashers).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes().chain([0u8]).chain(code.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

fn bar(progress: bool, len: u64, msg: &'static str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed_precise}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg);
    pb
}

/// Water-filling: shares `total` by weight, no share above its cap (the excess goes to the
/// others, in proportion).
fn allocate(total: f64, weights: &[f64], caps: &[f64]) -> Vec<f64> {
    let n = weights.len();
    let mut out = vec![0.0; n];
    let mut fixed = vec![false; n];
    for _ in 0..=n {
        let left = total - (0..n).filter(|&i| fixed[i]).map(|i| out[i]).sum::<f64>();
        let wsum: f64 = (0..n)
            .filter(|&i| !fixed[i])
            .map(|i| weights[i].max(0.0))
            .sum();
        if wsum <= 0.0 || left <= 0.0 {
            break;
        }
        let mut capped = false;
        let open: Vec<usize> = (0..n).filter(|&i| !fixed[i]).collect();
        for i in open {
            out[i] = left * weights[i].max(0.0) / wsum;
            if out[i] > caps[i] {
                out[i] = caps[i];
                fixed[i] = true;
                capped = true;
            }
        }
        if !capped {
            break;
        }
    }
    out
}

/// Generates the data set of a plan: lays out the districts, runs the streets in
/// parallel, then assigns ids in a fixed order and resolves the local references.
fn generate_plan(
    plan: &Plan,
    seed: u64,
    progress: bool,
) -> Result<(Dataset, GenerateReport), GenerateError> {
    generate_joined(plan, seed, progress).map(|(data, report, _)| (data, report))
}

/// [`generate_plan`], also returning what joining the streets' networks did (the tests
/// judge the links by it).
fn generate_joined(
    plan: &Plan,
    seed: u64,
    progress: bool,
) -> Result<(Dataset, GenerateReport, ties::Joined), GenerateError> {
    let started = Instant::now();
    let districts = source::load_districts(&plan.adcodes)?;
    if let Some(only) = &plan.only_streets {
        for code in only {
            if !districts
                .iter()
                .any(|d| d.streets.iter().any(|s| s.code == *code))
            {
                return Err(GenerateError::UnknownStreet((*code).to_string()));
            }
        }
    }

    let (district_km, district_risks) = district_targets(plan, &districts);

    // Phase 1: lay out every district (streets, terrain, long-distance lines).
    let pb = bar(progress, districts.len() as u64, "districts");
    let mut ctxs = Vec::with_capacity(districts.len());
    let mut jobs = Vec::new();
    for (di, d) in districts.into_iter().enumerate() {
        let (ctx, mut js) =
            layout_district(plan, d, di, (district_km[di], district_risks[di]), seed)?;
        ctxs.push(ctx);
        jobs.append(&mut js);
        pb.inc(1);
    }
    pb.finish();

    // Phase 2: streets, in parallel.
    let pb = bar(progress, jobs.len() as u64, "streets");
    let slots = run_streets(&ctxs, &jobs, seed, plan, &pb);
    pb.finish();

    // Phase 3: ids and references.
    let pb = bar(progress, jobs.len() as u64, "assemble");
    let mut data = Dataset {
        owners: owners::owners(),
        ..Default::default()
    };
    for (di, ctx) in ctxs.iter().enumerate() {
        data.grid_cells.push(GridCell {
            id: di as i64 + 1,
            level: GridLevel::District,
            parent_id: None,
            name: ctx.src.name.clone(),
            code: ctx.src.adcode.clone(),
            geometry: ctx.src.polygon.clone(),
        });
    }
    let mut km_by_kind = vec![0.0; PipeKind::ALL.len()];
    let mut district_out_km = vec![0.0; ctxs.len()];
    let mut district_out_risks = vec![0usize; ctxs.len()];
    let (mut next_cell, mut next_pipe, mut next_risk, mut next_sensor) =
        (ctxs.len() as i64 + 1, 1i64, 1i64, 1i64);
    let mut next_node = 1i64;
    let mut topo = ties::Topo::default();
    for (si, (job, slot)) in jobs.iter().zip(slots).enumerate() {
        let out = match slot {
            Some(Ok(out)) => out,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(GenerateError::Worker(format!(
                    "street {} has no result",
                    ctxs[job.district].src.streets[job.street].name
                )))
            }
        };
        let (cb, pbase, rb) = (next_cell, next_pipe, next_risk);
        let district_id = job.district as i64 + 1;
        for (k, c) in out.cells.cells.into_iter().enumerate() {
            data.grid_cells.push(GridCell {
                id: cb + k as i64,
                level: c.level,
                parent_id: Some(c.parent.map_or(district_id, |p| cb + p as i64)),
                name: c.name,
                code: c.code,
                geometry: c.geom,
            });
            next_cell += 1;
        }
        let nbase = next_node;
        // Each street's networks are fed on their own before they are joined.
        debug_assert_eq!(out.nodes.unfed_pipes, 0);
        topo.pipe_net
            .extend((0..out.pipes.len()).map(|k| out.nets.get(k).copied().flatten()));
        topo.pipe_service
            .extend((0..out.pipes.len()).map(|k| out.services.get(k).copied().unwrap_or(false)));
        for n in out.nodes.nodes {
            topo.node_street.push(si);
            topo.node_district.push(job.district);
            data.nodes.push(NetworkNode {
                id: next_node,
                on_pipe_id: n.on_pipe.map(|p| pbase + p as i64),
                ..n.node
            });
            next_node += 1;
        }
        for (mut p, ends) in out
            .pipes
            .into_iter()
            .zip(out.nodes.ends.into_iter().chain(std::iter::repeat(None)))
        {
            p.id = next_pipe;
            if let Some([a, b]) = ends {
                p.from_node = Some(nbase + a as i64);
                p.to_node = Some(nbase + b as i64);
            }
            next_pipe += 1;
            data.pipelines.push(p);
        }
        for (k, km) in out.km_by_kind.iter().enumerate() {
            km_by_kind[k] += km;
            district_out_km[job.district] += km;
        }
        district_out_risks[job.district] += out.risks.len();
        for r in out.risks {
            data.risk_points.push(RiskPoint {
                id: next_risk,
                grid_cell_id: Some(cb + r.cell as i64),
                ..r.rec
            });
            next_risk += 1;
        }
        for s in out.sensors {
            data.sensors.push(Sensor {
                id: next_sensor,
                pipeline_id: s.pipe.map(|p| pbase + p as i64),
                risk_point_id: s.risk.map(|r| rb + r as i64),
                ..s.rec
            });
            next_sensor += 1;
        }
        pb.inc(1);
    }
    pb.finish();
    // Phase 4: one network per utility across the streets.
    let joined = ties::join(
        &mut data,
        &topo,
        geom::Frame::new(CITY_CENTRE),
        &mut stream(seed, "ties", plan.preset.as_str()),
    );
    for &(d, kind, km) in &joined.km {
        if let Some(k) = PipeKind::ALL.iter().position(|x| *x == kind) {
            km_by_kind[k] += km;
        }
        district_out_km[d] += km;
    }

    let mut watched = vec![false; data.risk_points.len()];
    for s in &data.sensors {
        if let Some(r) = s.risk_point_id {
            if let Some(w) = watched.get_mut((r - 1) as usize) {
                *w = true;
            }
        }
    }
    let report = GenerateReport {
        preset: plan.preset,
        seed,
        districts: ctxs
            .iter()
            .enumerate()
            .map(|(di, c)| DistrictSummary {
                adcode: c.src.adcode.clone(),
                name: c.src.name.clone(),
                streets: jobs
                    .iter()
                    .filter(|j| j.district == di)
                    .map(|j| c.src.streets[j.street].name.clone())
                    .collect(),
                pipeline_km: district_out_km[di],
                risk_points: district_out_risks[di],
            })
            .collect(),
        streets: jobs.len(),
        owners: data.owners.len(),
        grid_cells: GridLevel::ALL
            .iter()
            .map(|l| (*l, data.grid_cells.iter().filter(|c| c.level == *l).count()))
            .collect(),
        pipelines: data.pipelines.len(),
        nodes_by_type: NodeType::ALL
            .iter()
            .map(|t| (*t, data.nodes.iter().filter(|n| n.node_type == *t).count()))
            .collect(),
        closed_valves: data
            .nodes
            .iter()
            .filter(|n| n.valve_position == Some(lifeline_model::ValvePosition::Closed))
            .count(),
        inoperable_valves: data
            .nodes
            .iter()
            .filter(|n| n.node_type == NodeType::Valve && !n.operable())
            .count(),
        unfed_pipes: joined.unfed_pipes,
        ties: joined.ties,
        trunk_mains: joined.trunks,
        link_pipes: joined.link_pipes.len(),
        street_sources: joined.sources_before,
        reopened_valves: joined.reopened,
        pipeline_km: km_by_kind.iter().sum(),
        km_by_kind: PipeKind::ALL.iter().copied().zip(km_by_kind).collect(),
        risk_points: data.risk_points.len(),
        sensors: data.sensors.len(),
        unmonitored_risk_points: watched.iter().filter(|w| !**w).count(),
        elapsed: started.elapsed(),
    };
    Ok((data, report, joined))
}

/// Pipeline km and risk points per district: pinned districts keep their figure, the
/// rest share the remainder by the number of urban communities, capped by what their area
/// can hold; risk points follow the pipeline km (exact total).
fn district_targets(plan: &Plan, districts: &[source::District]) -> (Vec<f64>, Vec<usize>) {
    let areas: Vec<f64> = districts
        .iter()
        .map(|d| geom::Frame::new(cells::centre_of(&d.polygon)).km2(&d.polygon))
        .collect();
    let pinned_total: f64 = plan.pinned_km.iter().map(|p| p.1).sum();
    let free: Vec<usize> = (0..districts.len())
        .filter(|&i| !plan.pinned_km.iter().any(|p| p.0 == districts[i].adcode))
        .collect();
    let weights: Vec<f64> = free
        .iter()
        .map(|&i| {
            let (u, v) = community_counts(&districts[i].streets);
            u as f64 + 0.1 * v as f64
        })
        .collect();
    let caps: Vec<f64> = free.iter().map(|&i| areas[i] * MAX_KM_PER_KM2).collect();
    let shares = allocate(plan.total_km - pinned_total, &weights, &caps);
    let mut district_km = vec![0.0; districts.len()];
    for (k, &i) in free.iter().enumerate() {
        district_km[i] = shares[k];
    }
    for (code, km) in &plan.pinned_km {
        if let Some(i) = districts.iter().position(|d| d.adcode == *code) {
            district_km[i] = *km;
        }
    }
    let district_risks = cells::apportion(plan.risk_points, &district_km, 0);

    (district_km, district_risks)
}

/// Lays out one district: splits it into streets, draws its terrain and long-distance
/// lines, and shares its targets among the streets the plan keeps.
fn layout_district(
    plan: &Plan,
    d: source::District,
    di: usize,
    target: (f64, usize),
    seed: u64,
) -> Result<(DistrictCtx, Vec<StreetJob>), GenerateError> {
    let (district_km, district_risks) = target;
    let mut jobs = Vec::new();
    let mut rng = stream(seed, "district", &d.adcode);
    let street_geoms = cells::split_district(&d, &mut rng)?;
    let frame = geom::Frame::new(cells::centre_of(&d.polygon));
    let terrain = geom::Terrain::new(&mut stream(seed, "terrain", &d.adcode));
    let region = network::Region::new(&frame, &[(&d.polygon, 0)]);

    let street_area: Vec<f64> = street_geoms.iter().map(|g| frame.km2(g)).collect();
    let w: Vec<f64> = d
        .streets
        .iter()
        .map(|s| {
            let (u, v) = community_counts(std::slice::from_ref(s));
            let f = if s.is_subdistrict() { 1.0 } else { 0.7 };
            u as f64 * f + 0.15 * v as f64 + 0.5
        })
        .collect();
    let caps: Vec<f64> = street_area.iter().map(|a| a * MAX_KM_PER_KM2).collect();
    let budgets = allocate(district_km, &w, &caps);
    let rw: Vec<f64> = budgets
        .iter()
        .zip(&street_area)
        .map(|(b, a)| b + 3.0 * a + 10.0)
        .collect();
    let risks = cells::apportion(district_risks, &rw, 0);

    let keep: Vec<usize> = (0..d.streets.len())
        .filter(|&s| {
            plan.only_streets
                .as_ref()
                .is_none_or(|o| o.contains(&d.streets[s].code.as_str()))
        })
        .collect();
    // Long-distance lines: Jiulongpo has two; other districts one to three. Each
    // passes through a street the plan keeps, towns more often than urban streets.
    let n_lines = if d.adcode == JIULONGPO {
        2
    } else {
        rng.gen_range(1..=3)
    }
    .min(keep.len());
    let mut anchors = Vec::new();
    if !keep.is_empty() {
        let aw: Vec<(usize, f64)> = keep
            .iter()
            .map(|&s| {
                (
                    s,
                    if d.streets[s].is_subdistrict() {
                        1.0
                    } else {
                        3.0
                    },
                )
            })
            .collect();
        for _ in 0..n_lines {
            let s = network::pick(&mut rng, &aw);
            let sr = network::Region::new(&frame, &[(&street_geoms[s], 0)]);
            if let Some(p) = random_point(&sr, &mut rng) {
                anchors.push(p);
            }
        }
    }
    let extent = region
        .bounds()
        .map(|(a, b)| geom::dist(a, b))
        .unwrap_or(10_000.0);
    let long_lines = network::long_lines(&anchors, extent, &mut rng);
    for &s in &keep {
        let (budget_km, risks) = plan.street_override.unwrap_or((budgets[s], risks[s]));
        jobs.push(StreetJob {
            district: di,
            street: s,
            budget_km,
            risks,
        });
    }
    Ok((
        DistrictCtx {
            src: d,
            frame,
            terrain,
            region,
            street_geoms,
            long_lines,
        },
        jobs,
    ))
}

/// Runs the street jobs on every core. Each street draws from its own streams, so the
/// order in which threads take jobs does not change the result; results come back in job
/// order.
fn run_streets(
    ctxs: &[DistrictCtx],
    jobs: &[StreetJob],
    seed: u64,
    plan: &Plan,
    pb: &ProgressBar,
) -> Vec<Option<Result<StreetOut, GenerateError>>> {
    let catalog = Catalog::builtin();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<StreetOut, GenerateError>>> =
        (0..jobs.len()).map(|_| None).collect();
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let r = run_street(&ctxs[job.district], job, seed, plan, catalog);
                        pb.inc(1);
                        let failed = r.is_err();
                        done.push((i, r));
                        if failed {
                            break;
                        }
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            if let Ok(done) = h.join() {
                for (i, r) in done {
                    slots[i] = Some(r);
                }
            }
        }
    });
    slots
}

/// Urban communities and villages of some streets.
fn community_counts(streets: &[source::StreetName]) -> (usize, usize) {
    let mut u = 0;
    let mut v = 0;
    for s in streets {
        for c in &s.communities {
            if c.is_urban() {
                u += 1;
            } else {
                v += 1;
            }
        }
    }
    (u, v)
}

/// A random point inside a region (rejection sampling in its bounds).
fn random_point(region: &network::Region, rng: &mut impl Rng) -> Option<Coord<f64>> {
    let (min, max) = region.bounds()?;
    if !(min.x < max.x && min.y < max.y) {
        return None;
    }
    for _ in 0..500 {
        let c = Coord {
            x: rng.gen_range(min.x..max.x),
            y: rng.gen_range(min.y..max.y),
        };
        if region.locate(c).is_some() {
            return Some(c);
        }
    }
    None
}

/// Generates one street: its cells, network, risk points and sensors.
fn run_street(
    ctx: &DistrictCtx,
    job: &StreetJob,
    seed: u64,
    plan: &Plan,
    catalog: &Catalog,
) -> Result<StreetOut, GenerateError> {
    let street = &ctx.src.streets[job.street];
    let frame = &ctx.frame;
    let tree = cells::street_tree(
        street,
        ctx.street_geoms[job.street].clone(),
        &mut stream(seed, "cells", &street.code),
    )?;
    let street_region = network::Region::new(frame, &[(&tree.cells[0].geom, 0)]);
    let comm_polys: Vec<(&geo::MultiPolygon<f64>, usize)> = tree
        .communities
        .iter()
        .enumerate()
        .map(|(k, &ci)| (&tree.cells[ci].geom, k))
        .collect();
    let comm_region = network::Region::new(frame, &comm_polys);
    let comm_area: Vec<f64> = tree
        .communities
        .iter()
        .map(|&ci| frame.km2(&tree.cells[ci].geom))
        .collect();
    let comm_centre: Vec<Coord<f64>> = tree
        .communities
        .iter()
        .map(|&ci| frame.to_m(cells::centre_of(&tree.cells[ci].geom)))
        .collect();
    let mut net = network::street_network(
        &network::NetInput {
            frame,
            terrain: &ctx.terrain,
            adcode: &ctx.src.adcode,
            street: &street_region,
            communities: &comm_region,
            community_area_km2: &comm_area,
            community_urban: &tree.urban,
            community_centre: &comm_centre,
            city_centre: frame.to_m(CITY_CENTRE),
            budget_km: job.budget_km,
            long_lines: &ctx.long_lines,
        },
        &mut stream(seed, "network", &street.code),
    );
    // Topology before risks: sensors name the pipes as they finally are.
    let street_nodes = nodes::build(&mut net, frame, &mut stream(seed, "nodes", &street.code));
    let (risks, sensors) = risk::street_risks(
        &risk::RiskInput {
            frame,
            terrain: &ctx.terrain,
            district_name: &ctx.src.name,
            street_name: &street.name,
            street_code: &street.code,
            street_is_subdistrict: street.is_subdistrict(),
            cells: &tree,
            street: &street_region,
            district: &ctx.region,
            net: &net,
            count: job.risks,
            sensor_ratio: plan.sensor_ratio,
        },
        catalog,
        &mut stream(seed, "risk", &street.code),
    );
    let mut km_by_kind = vec![0.0; PipeKind::ALL.len()];
    for p in &net.info {
        if let Some(k) = PipeKind::ALL.iter().position(|k| *k == p.kind) {
            km_by_kind[k] += p.len_m / 1000.0;
        }
    }
    let services = net.info.iter().map(|i| i.role.is_service()).collect();
    Ok(StreetOut {
        cells: tree,
        nets: net.nets,
        services,
        pipes: net.pipes,
        nodes: street_nodes,
        km_by_kind,
        risks,
        sensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area, BooleanOps, BoundingRect};
    use lifeline_model::check;
    use std::collections::{BTreeMap, BTreeSet};

    fn demo(seed: u64) -> (Dataset, GenerateReport) {
        generate(&GenerateOptions {
            preset: Preset::Demo,
            seed,
            progress: false,
        })
        .expect("demo generates")
    }

    /// Every record valid, no dangling reference or hierarchy error, unique positive ids,
    /// owners matching kinds, and a small share of unwatched risk points.
    fn assert_clean(data: &Dataset, report: &GenerateReport) {
        let catalog = Catalog::builtin();
        data.validate(catalog).expect("every record validates");
        let checked = check::run(data, catalog);
        let errors: Vec<_> = checked
            .problems
            .iter()
            .filter(|p| p.kind != "unmonitored")
            .take(5)
            .collect();
        assert!(errors.is_empty(), "check found errors: {errors:?}");
        assert_eq!(checked.unmonitored(), report.unmonitored_risk_points);
        assert_eq!(report.unfed_pipes, 0, "every network part has a source");
        assert!(report.nodes_by_type.iter().all(|(_, n)| *n > 0), "{report}");
        let share = checked.unmonitored() as f64 / data.risk_points.len().max(1) as f64;
        assert!(share < 0.06, "{share} of risk points unwatched");
        fn unique(ids: impl Iterator<Item = i64>) -> bool {
            let mut seen = BTreeSet::new();
            ids.into_iter().all(|i| i > 0 && seen.insert(i))
        }
        assert!(unique(data.owners.iter().map(|r| r.id)));
        assert!(unique(data.grid_cells.iter().map(|r| r.id)));
        assert!(unique(data.pipelines.iter().map(|r| r.id)));
        assert!(unique(data.risk_points.iter().map(|r| r.id)));
        assert!(unique(data.sensors.iter().map(|r| r.id)));
        for p in &data.pipelines {
            assert!(
                owners::kinds_of(p.owner_id).contains(&p.kind),
                "pipe {} of kind {} belongs to owner {}",
                p.id,
                p.kind,
                p.owner_id
            );
        }
        let codes: BTreeSet<&str> = data
            .sensors
            .iter()
            .filter_map(|s| s.code.as_deref())
            .collect();
        assert_eq!(codes.len(), data.sensors.len(), "sensor codes are unique");
        // Risk points lie in the micro-grid they name.
        let cells: BTreeMap<i64, &GridCell> = data.grid_cells.iter().map(|c| (c.id, c)).collect();
        let mut in_micro = 0;
        for r in &data.risk_points {
            let cell = r
                .grid_cell_id
                .and_then(|id| cells.get(&id))
                .expect("risk has a cell");
            if cell.level == GridLevel::MicroGrid {
                in_micro += 1;
            }
        }
        assert!(in_micro as f64 >= 0.97 * data.risk_points.len() as f64);
    }

    /// Cells of one level do not overlap, lie inside their parent, and (below the
    /// district) the children of a parent cover it.
    fn assert_cells_nest(data: &Dataset) {
        let by_id: BTreeMap<i64, &GridCell> = data.grid_cells.iter().map(|c| (c.id, c)).collect();
        let mut children: BTreeMap<i64, Vec<&GridCell>> = BTreeMap::new();
        for c in &data.grid_cells {
            if let Some(p) = c.parent_id {
                children.entry(p).or_default().push(c);
            }
        }
        for (pid, kids) in &children {
            let parent = by_id[pid];
            let pa = parent.geometry.unsigned_area();
            let mut sum = 0.0;
            for k in kids {
                let a = k.geometry.unsigned_area();
                sum += a;
                let inside = k.geometry.intersection(&parent.geometry).unsigned_area();
                assert!(
                    inside >= a * (1.0 - 1e-5),
                    "{} sticks out of {} ({inside} of {a})",
                    k.name,
                    parent.name
                );
            }
            if parent.level != GridLevel::District {
                assert!(
                    (sum - pa).abs() <= pa * 1e-4,
                    "children of {} cover {sum} of {pa}",
                    parent.name
                );
            }
        }
        for level in GridLevel::ALL {
            let mut cells: Vec<(geo::Rect<f64>, &GridCell)> = data
                .grid_cells
                .iter()
                .filter(|c| c.level == *level)
                .filter_map(|c| c.geometry.bounding_rect().map(|r| (r, c)))
                .collect();
            cells.sort_by(|a, b| a.0.min().x.total_cmp(&b.0.min().x));
            for i in 0..cells.len() {
                let (ri, ci) = cells[i];
                for (rj, cj) in &cells[i + 1..] {
                    if rj.min().x > ri.max().x {
                        break;
                    }
                    if rj.min().y > ri.max().y || rj.max().y < ri.min().y {
                        continue;
                    }
                    let a = ci.geometry.unsigned_area().min(cj.geometry.unsigned_area());
                    let o = ci.geometry.intersection(&cj.geometry).unsigned_area();
                    assert!(
                        o <= a * 1e-5,
                        "{} and {} overlap ({o} of {a})",
                        ci.name,
                        cj.name
                    );
                }
            }
        }
    }

    #[test]
    fn preset_names_parse() {
        assert_eq!("demo".parse::<Preset>().unwrap(), Preset::Demo);
        assert_eq!("Jiulongpo".parse::<Preset>().unwrap(), Preset::Jiulongpo);
        assert_eq!("city".parse::<Preset>().unwrap(), Preset::City);
        let e = "tokyo".parse::<Preset>().unwrap_err().to_string();
        assert!(e.contains("tokyo") && e.contains("jiulongpo"), "{e}");
    }

    #[test]
    fn embedded_districts_are_valid() {
        let d = source::load_districts(CENTRAL_CITY).unwrap();
        assert_eq!(d.len(), 9);
        for x in &d {
            lifeline_model::geom::check_multipolygon(&x.polygon).unwrap();
        }
        let jlp = &d[4];
        assert_eq!(jlp.name, "九龙坡区");
        assert_eq!(jlp.streets.len(), 19);
        assert!(source::load_districts(&["999999"]).is_err());
    }

    #[test]
    fn allocate_respects_caps() {
        let v = allocate(100.0, &[1.0, 1.0, 2.0], &[10.0, 1000.0, 1000.0]);
        assert!((v.iter().sum::<f64>() - 100.0).abs() < 1e-9);
        assert!((v[0] - 10.0).abs() < 1e-9);
        assert!((v[2] - 2.0 * v[1]).abs() < 1e-9);
    }

    #[test]
    fn demo_is_deterministic() {
        let (a, ra) = demo(7);
        let (b, _) = demo(7);
        assert!(a == b, "same seed, same data set");
        let (c, _) = demo(8);
        assert!(a != c, "another seed, another data set");
        assert!(ra.pipelines > 0);
    }

    #[test]
    fn demo_is_small_valid_and_complete() {
        let (data, report) = demo(42);
        println!("{report}");
        assert_clean(&data, &report);
        assert_cells_nest(&data);
        assert_eq!(report.streets, 1);
        assert!(
            (10.0..=40.0).contains(&report.pipeline_km),
            "{} km",
            report.pipeline_km
        );
        assert_eq!(data.risk_points.len(), 50);
        assert!(
            (100..=1000).contains(&data.sensors.len()),
            "{}",
            data.sensors.len()
        );
        let kinds: BTreeSet<PipeKind> = data.pipelines.iter().map(|p| p.kind).collect();
        assert_eq!(kinds.len(), PipeKind::ALL.len(), "kinds present: {kinds:?}");
        let street = data
            .grid_cells
            .iter()
            .find(|c| c.level == GridLevel::Street)
            .unwrap();
        assert_eq!(
            (street.name.as_str(), street.code.as_str()),
            ("谢家湾街道", DEMO_STREET)
        );
        let grids = data
            .grid_cells
            .iter()
            .filter(|c| c.level == GridLevel::Grid)
            .count();
        assert!(grids >= 168, "{grids} grids");
        let community = data
            .grid_cells
            .iter()
            .find(|c| c.level == GridLevel::Community)
            .unwrap();
        assert!(community.code.starts_with(DEMO_STREET) && community.code.len() == 12);
        // Segments run manhole to manhole.
        let mean_m = report.pipeline_km * 1000.0 / report.pipelines as f64;
        assert!((25.0..=80.0).contains(&mean_m), "mean segment {mean_m} m");
        // Sensors watch pipes too, and the right kinds watch gas risks.
        assert!(data
            .sensors
            .iter()
            .any(|s| s.pipeline_id.is_some() && s.risk_point_id.is_none()));
        assert!(data
            .risk_points
            .iter()
            .any(|r| matches!(r.geometry, geo::Geometry::Polygon(_))));
    }

    #[test]
    fn one_jiulongpo_street_is_valid_and_keeps_its_cells() {
        let mut plan = Plan::for_preset(Preset::Jiulongpo);
        plan.only_streets = Some(vec![DEMO_STREET]);
        let (data, report) = generate_plan(&plan, 42, false).unwrap();
        println!("{report}");
        assert_clean(&data, &report);
        assert_cells_nest(&data);
        assert!(report.pipeline_km > 100.0, "{} km", report.pipeline_km);
        // The street's cells are the same in the demo (only budgets differ).
        let (demo, _) = demo(42);
        assert!(data.grid_cells == demo.grid_cells);
    }

    #[test]
    fn unknown_street_is_an_error() {
        let mut plan = Plan::for_preset(Preset::Demo);
        plan.only_streets = Some(vec!["500107999"]);
        assert!(matches!(
            generate_plan(&plan, 1, false),
            Err(GenerateError::UnknownStreet(_))
        ));
    }

    /// The whole district (a couple of seconds even in a debug build).
    #[test]
    fn jiulongpo_preset_meets_its_targets() {
        let (data, report) = generate(&GenerateOptions {
            preset: Preset::Jiulongpo,
            seed: 42,
            progress: false,
        })
        .unwrap();
        println!("{report}");
        println!("km by kind: {:?}", report.km_by_kind);
        assert_eq!(data.risk_points.len(), 4508);
        assert_eq!(report.streets, 19);
        assert!(
            (5000.0..=5600.0).contains(&report.pipeline_km),
            "{} km",
            report.pipeline_km
        );
        assert!(
            data.sensors.len() >= 50_000,
            "{} sensors",
            data.sensors.len()
        );
        let mut grids: BTreeMap<i64, usize> = BTreeMap::new();
        let parent: BTreeMap<i64, i64> = data
            .grid_cells
            .iter()
            .filter_map(|c| c.parent_id.map(|p| (c.id, p)))
            .collect();
        for c in data
            .grid_cells
            .iter()
            .filter(|c| c.level == GridLevel::Grid)
        {
            let street = c
                .parent_id
                .and_then(|p| parent.get(&p))
                .copied()
                .unwrap_or(0);
            *grids.entry(street).or_default() += 1;
        }
        assert_eq!(grids.len(), 19);
        assert!(grids.values().all(|n| *n >= 168), "{grids:?}");
        let kinds: BTreeSet<PipeKind> = data.pipelines.iter().map(|p| p.kind).collect();
        assert_eq!(kinds.len(), PipeKind::ALL.len());
        let cats: BTreeSet<&str> = data
            .risk_points
            .iter()
            .map(|r| r.category.as_str())
            .collect();
        assert_eq!(cats.len(), 40, "every category is used");
        assert_clean(&data, &report);
        assert_cells_nest(&data);
    }

    /// The central city: `cargo test --release --lib generate -- --ignored`.
    #[test]
    #[ignore = "nine districts; run in release"]
    fn city_preset_meets_its_targets() {
        let (data, report) = generate(&GenerateOptions {
            preset: Preset::City,
            seed: 42,
            progress: false,
        })
        .unwrap();
        println!("{report}");
        println!("km by kind: {:?}", report.km_by_kind);
        assert_eq!(report.districts.len(), 9);
        assert!(data.risk_points.len() >= 100_000);
        assert!(
            data.sensors.len() >= 500_000,
            "{} sensors",
            data.sensors.len()
        );
        assert!(
            (58_000.0..=66_000.0).contains(&report.pipeline_km),
            "{} km",
            report.pipeline_km
        );
        assert!(
            data.pipelines.len() >= 1_000_000,
            "{} segments",
            data.pipelines.len()
        );
        let errors = check::run(&data, Catalog::builtin()).errors();
        assert_eq!(errors, 0);
        assert_eq!(report.unfed_pipes, 0);
        let mut sources: BTreeMap<String, usize> = BTreeMap::new();
        for n in data
            .nodes
            .iter()
            .filter(|n| n.node_type == NodeType::Source)
        {
            *sources
                .entry(format!("{} {:?}", n.kind, n.source_kind))
                .or_default() += 1;
        }
        println!("sources: {sources:?}");
    }
}

//! The trace use cases the HTTP layer calls (`POST /trace/isolate`, `/trace/connected`,
//! `/trace/upstream`, `/trace/downstream`): the network of each utility kind is built from
//! the index's nodes and pipes, with its valve segments precomputed, and kept in step with
//! the index by updating it in place from the records that changed ([`Networks`]); a
//! request is parsed into the engine's terms, and the answer is rendered as JSON, GeoJSON
//! or a printable HTML report.
//!
//! Who may trace ([`Tracer`]): analysts and operators (and admins) from any pipe; a
//! contractor from the conflicts of their own excavation ticket only. A trace shows
//! valves, customers and the network's shape, which the map gives no lower role.
//!
//! Stored records become the engine's graph through [`from_attributes`]: every node of
//! the kind, every pipe of the kind that names both end nodes; valve nodes are placed on a
//! pipe as the [`topology`](crate::topology) module says, and what cannot be placed is
//! reported in the answer's notes (and by `lifeline check`).

use crate::topology::{
    from_attributes, AttributeReport, LiveTopology, NodeKind, NodeRecord, PipeRecord, Topology,
    TopologyError, ValveNode,
};
use crate::{Directed, Direction, Flow, Isolation, Network, NodeRole, Part, Position, Scenario};
use geo::{ConvexHull, Geodesic, Geometry, Length, MultiPoint, Point};
use lifeline_index::{IndexError, SpatialIndex};
use lifeline_model::access::{require, Forbidden};
use lifeline_model::alarm::{Alarm, PublishedIsolation, PublishedTrace, MAX_TRACE_MESSAGE};
use lifeline_model::geom::to_geojson;
use lifeline_model::html::esc;
use lifeline_model::ticket::Ticket;
use lifeline_model::{
    Actor, GridLevel, Layer, NetworkNode, NodeType, PipeKind, Pipeline, Record, Role, SensorKind,
    ValvePosition,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// Why a trace request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The request is malformed or names nothing traceable.
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The stored network cannot be traced (ids the engine refuses).
    #[error("the stored network cannot be traced: {0}")]
    Network(#[from] TopologyError),
    #[error("the trace task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Nothing to trace for this alarm (closed, not a leak signal, or no traceable pipe).
    #[error("{0}")]
    NoIsolation(String),
    /// A ticket's trace starting from a pipe that is not one of its conflicts.
    #[error("pipeline {pipe} is not a conflict of excavation ticket {ticket}: a ticket's trace starts from its own conflicts only")]
    NotOnTicket { pipe: i64, ticket: i64 },
}

/// The most pipes one request may start from (a dig across a city block touches a few
/// dozen).
pub const MAX_START_PIPES: usize = 1000;
/// The farthest a point may be from the pipe it names, metres.
pub const MAX_SNAP_M: f64 = 500.0;

/// Proof that the caller may trace: the analyst role or above for any pipe, or a
/// contractor (or above) for the pipes of one ticket's conflicts. The use cases take one,
/// and only [`Tracer::check`] and [`Tracer::for_ticket`] make one, so no entry point can
/// skip the check.
#[derive(Debug, Clone)]
pub struct Tracer {
    /// For a ticket's trace: its id and the pipes of its conflicts, the only pipes the
    /// trace may start from.
    only: Option<(i64, Arc<HashSet<i64>>)>,
}

impl Tracer {
    /// The ticket the trace is limited to, if it is a ticket's (the read audit's purpose).
    pub fn ticket(&self) -> Option<i64> {
        self.only.as_ref().map(|(id, _)| *id)
    }

    /// Checks that `actor` may run traces from any pipe (analyst, operator, admin).
    pub fn check(actor: &Actor) -> Result<Tracer, ServiceError> {
        require(actor, Role::Analyst)?;
        Ok(Tracer { only: None })
    }

    /// A trace limited to the conflicts of `ticket`, for a contractor (or above) the caller
    /// has already shown may see that ticket (the excavation service's `get` does). Its
    /// check's "if struck" summary says what a strike costs; this says which valves and
    /// who in full, for those pipes only.
    pub fn for_ticket(actor: &Actor, ticket: &Ticket) -> Result<Tracer, ServiceError> {
        require(actor, Role::Contractor)?;
        let pipes = ticket.check.conflict_pipes().into_iter().collect();
        Ok(Tracer {
            only: Some((ticket.id, Arc::new(pipes))),
        })
    }

    /// Whether a trace may start from `pipe`.
    fn allows(&self, pipe: i64) -> bool {
        self.only
            .as_ref()
            .is_none_or(|(_, pipes)| pipes.contains(&pipe))
    }

    /// Refuses a start pipe outside the ticket's conflicts, naming it (before anything is
    /// said about the pipe itself).
    fn admit(&self, pipe: i64) -> Result<(), ServiceError> {
        match &self.only {
            Some((ticket, _)) if !self.allows(pipe) => Err(ServiceError::NotOnTicket {
                pipe,
                ticket: *ticket,
            }),
            _ => Ok(()),
        }
    }
}

/// Where a trace starts: pipe ids, a point (the nearest traceable pipe), or a geometry
/// (every traceable pipe it meets, such as a dig).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// Pipeline ids.
    #[serde(default)]
    pub pipes: Option<Vec<i64>>,
    /// A lon/lat point: the nearest pipe with topology, within `within_m`.
    #[serde(default)]
    pub point: Option<[f64; 2]>,
    /// A GeoJSON geometry (lon/lat): every pipe with topology it meets.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub geometry: Option<Value>,
    /// How far from `point` a pipe may be, metres (default 50, at most 500).
    #[serde(default)]
    pub within_m: Option<f64>,
    /// Only pipes of this kind.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub kind: Option<PipeKind>,
    /// Valves found broken or inaccessible in the field (node ids): passed through.
    #[serde(default)]
    pub broken_valves: Vec<i64>,
    /// Valves already closed (node ids): they bound the segment and are never listed to
    /// operate.
    #[serde(default)]
    pub closed_valves: Vec<i64>,
    /// With `?publish=true` (operators): what to say with the trace on the event stream,
    /// e.g. the incident (at most 500 characters).
    #[serde(default)]
    pub message: Option<String>,
}

/// One network as the engine sees it, with what could not be placed. Its valve segments
/// are precomputed, and it is updated in place when records of its kind change
/// ([`Networks::get`]).
#[derive(Clone)]
pub struct Built {
    pub network: Network,
    /// Valve nodes that could not be placed on a pipe, and pipes left out, with why.
    pub problems: Vec<String>,
    /// The sensors watching each pipe of the network, with the risk point each watches:
    /// an isolation's impact then costs what it affects, not a pass over every sensor.
    watchers: HashMap<i64, Vec<Watcher>>,
    /// The pipe each sensor in `watchers` watches.
    watching: HashMap<i64, i64>,
    /// The records behind the network, to update it in place.
    topology: LiveTopology,
    /// Pipes of the kind that name only one end node (left out, and reported).
    one_end: BTreeSet<i64>,
    /// The flow direction as the network stands, made by the first upstream or downstream
    /// trace (a what-if makes its own); dropped by every update in place.
    flow: OnceLock<Flow>,
}

/// The networks built so far, one per kind, each kept in step with the index: built whole
/// on first use, then updated in place from the records the index says changed
/// ([`SpatialIndex::changed_since`]), so an edit costs the segments it touches, and an
/// edit to one kind leaves the other kinds' networks as they are.
#[derive(Default)]
pub struct Networks {
    slots: Mutex<HashMap<PipeKind, Arc<Mutex<Slot>>>>,
    /// Every sensor by the pipe it watches, for pipes that come into a network.
    sensors: Mutex<SensorsByPipe>,
}

/// Every sensor by the pipe it watches, whatever the pipe's kind, kept in step with the
/// index as the networks are: a pipe that comes (back) into a network finds the sensors
/// watching it here, instead of in a pass over every sensor (646,434 in the city, about
/// 100 ms). Filled on first use.
#[derive(Default)]
struct SensorsByPipe {
    /// The index generation it reflects; `None`: not filled yet.
    generation: Option<u64>,
    by_pipe: HashMap<i64, Vec<Watcher>>,
    /// The pipe each sensor watches.
    of: HashMap<i64, i64>,
}

impl SensorsByPipe {
    /// Brings the map up to the index: the changed sensors, or every sensor afresh when
    /// the index's change log cannot say.
    fn sync(&mut self, index: &SpatialIndex) {
        if let Some(changed) = self.generation.and_then(|g| index.changed_since(g)) {
            for &(layer, id) in &changed.records {
                if layer == Layer::Sensors {
                    self.remove(id);
                    if let Some(Record::Sensor(s)) = index.get(layer, id).as_deref() {
                        self.add(s);
                    }
                }
            }
            self.generation = Some(changed.generation);
            return;
        }
        // Read before the records, as the networks do.
        let generation = index.generation();
        self.by_pipe.clear();
        self.of.clear();
        for r in index.all(Layer::Sensors) {
            if let Record::Sensor(s) = &*r {
                self.add(s);
            }
        }
        self.generation = Some(generation);
    }

    fn add(&mut self, s: &lifeline_model::Sensor) {
        if let Some(p) = s.pipeline_id {
            self.by_pipe
                .entry(p)
                .or_default()
                .push((s.id, s.risk_point_id));
            self.of.insert(s.id, p);
        }
    }

    fn remove(&mut self, sensor: i64) {
        if let Some(p) = self.of.remove(&sensor) {
            if let Some(w) = self.by_pipe.get_mut(&p) {
                w.retain(|(s, _)| *s != sensor);
                if w.is_empty() {
                    self.by_pipe.remove(&p);
                }
            }
        }
    }
}

/// One kind's cached network: the index generation it reflects.
#[derive(Default)]
struct Slot {
    generation: u64,
    built: Option<Arc<Built>>,
    stats: CacheStats,
}

/// How a kind's network has been kept: built whole, or updated in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Whole builds (the first use, a reload of the index, a change log that no longer
    /// reaches back, or more changes than an update is worth).
    pub builds: u64,
    /// Updates in place from changed records.
    pub updates: u64,
}

impl std::fmt::Debug for Networks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.lock();
        f.debug_map()
            .entries(slots.iter().map(|(k, s)| (k, s.lock().generation)))
            .finish()
    }
}

/// Fewest changed records that may still be too many for an update in place: past this and
/// a quarter of the network's pipes, the network is built whole (about as cheap, then).
const UPDATE_MIN: usize = 4096;

impl Networks {
    /// The network of `kind` as the index holds it now.
    pub fn get(&self, index: &SpatialIndex, kind: PipeKind) -> Result<Arc<Built>, ServiceError> {
        let slot = self.slots.lock().entry(kind).or_default().clone();
        // One caller per kind builds or updates; the others wait for its result rather
        // than repeat the work. Other kinds are not held up.
        let mut guard = slot.lock();
        let slot = &mut *guard;
        if slot.built.is_some() && slot.generation == index.generation() {
            if let Some(b) = &slot.built {
                return Ok(b.clone());
            }
        }
        if let (Some(built), Some(changed)) =
            (slot.built.as_mut(), index.changed_since(slot.generation))
        {
            let changes = Changes::of(index, kind, &changed.records, built);
            let limit = UPDATE_MIN.max(built.network.pipes().len() / 4);
            if changes.is_empty() {
                slot.generation = changed.generation;
                return Ok(built.clone());
            }
            if changes.len() <= limit {
                // In place when no trace holds this network; otherwise on a copy, which
                // still costs less than building it from the index.
                if Arc::make_mut(built)
                    .update(index, changes, &self.sensors)
                    .is_ok()
                {
                    let b = built.clone();
                    slot.generation = changed.generation;
                    slot.stats.updates += 1;
                    return Ok(b);
                }
            }
        }
        // Read before the records: a change racing the build is applied again next time.
        let generation = index.generation();
        let b = Arc::new(Built::build(index, kind)?);
        slot.built = Some(b.clone());
        slot.generation = generation;
        slot.stats.builds += 1;
        Ok(b)
    }

    /// How the network of `kind` has been kept so far.
    pub fn stats(&self, kind: PipeKind) -> CacheStats {
        let slot = self.slots.lock().get(&kind).cloned();
        slot.map_or_else(CacheStats::default, |s| s.lock().stats)
    }
}

/// A sensor watching a pipe, with the risk point it watches: (sensor, risk point).
type Watcher = (i64, Option<i64>);

/// What a changed sensor watches now: (pipe, risk point).
type Watches = (i64, Option<i64>);

/// The changed records that concern one kind's network, in the engine's terms.
#[derive(Default)]
struct Changes {
    nodes: Vec<(i64, Option<NodeRecord>)>,
    /// Each changed pipe: its record with both ends (`None`: not in the network), and
    /// whether it is of the kind but names only one end.
    pipes: Vec<(i64, Option<PipeRecord>, bool)>,
    /// Each changed sensor with the pipe it watches and its risk point (`None`: gone).
    sensors: Vec<(i64, Option<Watches>)>,
}

impl Changes {
    fn of(index: &SpatialIndex, kind: PipeKind, records: &[(Layer, i64)], built: &Built) -> Self {
        let mut c = Changes::default();
        let mut sensors = Vec::new();
        for &(layer, id) in records {
            let rec = index.get(layer, id);
            match layer {
                Layer::Nodes => {
                    let now = match rec.as_deref() {
                        Some(Record::Node(n)) if n.kind == kind => Some(node_record(n)),
                        _ => None,
                    };
                    if now.is_some() || built.topology.holds_node(id) {
                        c.nodes.push((id, now));
                    }
                }
                Layer::Pipelines => {
                    let (now, one_end) = match rec.as_deref() {
                        Some(Record::Pipeline(p)) if p.kind == kind => {
                            match (p.from_node, p.to_node) {
                                (Some(from), Some(to)) => {
                                    (Some(PipeRecord { id, from, to }), false)
                                }
                                (None, None) => (None, false),
                                _ => (None, true),
                            }
                        }
                        _ => (None, false),
                    };
                    if now.is_some() || one_end || built.ours(id) {
                        c.pipes.push((id, now, one_end));
                    }
                }
                Layer::Sensors => sensors.push((id, rec)),
                _ => {}
            }
        }
        // A sensor concerns the network if it watched one of its pipes, or watches one now.
        let changed_ours: HashSet<i64> = c
            .pipes
            .iter()
            .filter(|(_, now, one_end)| now.is_some() || *one_end)
            .map(|(id, _, _)| *id)
            .collect();
        for (id, rec) in sensors {
            let now = match rec.as_deref() {
                Some(Record::Sensor(s)) => s.pipeline_id.map(|p| (p, s.risk_point_id)),
                _ => None,
            };
            let ours_now = now.is_some_and(|(p, _)| changed_ours.contains(&p) || built.ours(p));
            if ours_now || built.watching.contains_key(&id) {
                c.sensors.push((id, now));
            }
        }
        c
    }

    fn len(&self) -> usize {
        self.nodes.len() + self.pipes.len() + self.sensors.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Built {
    /// The network of `kind` built whole from the index, with its segments precomputed.
    fn build(index: &SpatialIndex, kind: PipeKind) -> Result<Built, ServiceError> {
        let nodes: Vec<NodeRecord> = index
            .all(Layer::Nodes)
            .into_iter()
            .filter_map(|r| match &*r {
                Record::Node(n) if n.kind == kind => Some(node_record(n)),
                _ => None,
            })
            .collect();
        let mut one_end = BTreeSet::new();
        let mut pipes = Vec::new();
        for r in index.all(Layer::Pipelines) {
            if let Record::Pipeline(p) = &*r {
                if p.kind != kind {
                    continue;
                }
                match (p.from_node, p.to_node) {
                    (Some(from), Some(to)) => pipes.push(PipeRecord { id: p.id, from, to }),
                    (None, None) => {}
                    _ => {
                        one_end.insert(p.id);
                    }
                }
            }
        }
        let (network, topology) = LiveTopology::build(&nodes, &pipes)?;
        let mut built = Built {
            network,
            problems: Vec::new(),
            watchers: HashMap::new(),
            watching: HashMap::new(),
            topology,
            one_end,
            flow: OnceLock::new(),
        };
        for r in index.all(Layer::Sensors) {
            if let Record::Sensor(s) = &*r {
                if let Some(p) = s.pipeline_id.filter(|p| built.ours(*p)) {
                    built.watch(s.id, p, s.risk_point_id);
                }
            }
        }
        built.problems = built.problems_now();
        Ok(built)
    }

    /// Whether pipe `id` is one of this network's records (in it, or left out of it).
    fn ours(&self, id: i64) -> bool {
        self.one_end.contains(&id) || self.topology.holds_pipe(&self.network, id)
    }

    fn watch(&mut self, sensor: i64, pipe: i64, risk: Option<i64>) {
        self.watchers.entry(pipe).or_default().push((sensor, risk));
        self.watching.insert(sensor, pipe);
    }

    fn unwatch(&mut self, sensor: i64) {
        if let Some(pipe) = self.watching.remove(&sensor) {
            if let Some(w) = self.watchers.get_mut(&pipe) {
                w.retain(|(s, _)| *s != sensor);
                if w.is_empty() {
                    self.watchers.remove(&pipe);
                }
            }
        }
    }

    /// Applies changed records in place: the network and its segments (through
    /// [`LiveTopology::update`]), the pipes naming one end, the sensors, the problems.
    fn update(
        &mut self,
        index: &SpatialIndex,
        c: Changes,
        sensors: &Mutex<SensorsByPipe>,
    ) -> Result<(), TopologyError> {
        let was_ours: Vec<(i64, bool)> = c
            .pipes
            .iter()
            .map(|(id, ..)| (*id, self.ours(*id)))
            .collect();
        let pipes: Vec<(i64, Option<PipeRecord>)> = c
            .pipes
            .iter()
            .map(|(id, now, _)| (*id, now.clone()))
            .collect();
        // The flow direction is the whole network's (distances from the sources): it is made
        // again on the next upstream or downstream trace, not patched.
        self.flow = OnceLock::new();
        self.topology.update(&mut self.network, &c.nodes, &pipes)?;
        for (id, _, one_end) in &c.pipes {
            if *one_end {
                self.one_end.insert(*id);
            } else {
                self.one_end.remove(id);
            }
        }
        // Sensors follow their pipes in and out of the network's records.
        let mut entering = HashSet::new();
        for (id, was) in was_ours {
            match (was, self.ours(id)) {
                (true, false) => {
                    let gone: Vec<i64> = self
                        .watchers
                        .get(&id)
                        .map(|w| w.iter().map(|(s, _)| *s).collect())
                        .unwrap_or_default();
                    for s in gone {
                        self.unwatch(s);
                    }
                }
                (false, true) => {
                    entering.insert(id);
                }
                _ => {}
            }
        }
        for (id, now) in &c.sensors {
            self.unwatch(*id);
            if let Some((pipe, risk)) = now.filter(|(p, _)| self.ours(*p)) {
                self.watch(*id, pipe, risk);
            }
        }
        if !entering.is_empty() {
            // A pipe new to the network may be watched by sensors that did not change.
            let mut all = sensors.lock();
            all.sync(index);
            for p in entering {
                let on: Vec<Watcher> = all.by_pipe.get(&p).cloned().unwrap_or_default();
                for (sensor, risk) in on {
                    if !self.watching.contains_key(&sensor) {
                        self.watch(sensor, p, risk);
                    }
                }
            }
        }
        self.problems = self.problems_now();
        Ok(())
    }

    /// The problems in plain words: pipes naming one end node, pipes to unknown nodes,
    /// misplaced valves, each by id.
    fn problems_now(&self) -> Vec<String> {
        let report = self.topology.report();
        let mut out: Vec<String> = self.one_end.iter().map(|p| one_end_problem(*p)).collect();
        out.extend(describe(&report));
        out
    }
}

fn one_end_problem(pipe: i64) -> String {
    format!("pipeline {pipe} is left out: it names only one end node")
}

/// The report's pipes to unknown nodes and misplaced valves, in plain words.
fn describe(report: &AttributeReport) -> Vec<String> {
    let mut problems = Vec::new();
    for u in &report.unknown_nodes {
        problems.push(format!(
            "pipeline {} is left out: node {} is not a node of its network",
            u.pipe, u.node
        ));
    }
    for v in &report.misplaced_valves {
        problems.push(match v.on_pipe {
            Some(p) => format!(
                "valve {} names pipeline {p}, which does not end at it; traced as a junction",
                v.node
            ),
            None => format!(
                "valve {} joins {} pipes and names none (on_pipe_id); traced as a junction",
                v.node, v.degree
            ),
        });
    }
    problems
}

/// A stored node in the engine's terms (as `/trace` and the importer build networks).
pub fn node_record(n: &NetworkNode) -> NodeRecord {
    NodeRecord {
        id: n.id,
        kind: match n.node_type {
            NodeType::Junction => NodeKind::Junction,
            NodeType::Source => NodeKind::Source,
            NodeType::Customer => NodeKind::Customer {
                customers: n.customer_count(),
            },
            NodeType::Valve => NodeKind::Valve(ValveNode {
                position: match n.position() {
                    ValvePosition::Open => Position::Open,
                    ValvePosition::Closed => Position::Closed,
                },
                operable: n.operable(),
                on_pipe: n.on_pipe_id,
            }),
        },
    }
}

/// The engine's network of stored nodes and pipes of one kind, through
/// [`from_attributes`](crate::from_attributes) (which places valve nodes on their pipes),
/// with the problems found on the way in plain words. Pipes without both end nodes are
/// left out.
pub fn network_of(
    nodes: &[NetworkNode],
    pipes: &[Pipeline],
) -> Result<(Network, Vec<String>), TopologyError> {
    let records: Vec<NodeRecord> = nodes.iter().map(node_record).collect();
    let mut problems = Vec::new();
    let mut joined = Vec::with_capacity(pipes.len());
    for p in pipes {
        match (p.from_node, p.to_node) {
            (Some(from), Some(to)) => joined.push(PipeRecord { id: p.id, from, to }),
            _ => problems.push(one_end_problem(p.id)),
        }
    }
    let Topology { network, report } = from_attributes(&records, &joined)?;
    problems.extend(describe(&report));
    Ok((network, problems))
}

/// The start pipes of a request, by kind, each a traceable pipe (one with topology).
fn start_pipes(
    who: &Tracer,
    index: &SpatialIndex,
    req: &TraceRequest,
) -> Result<BTreeMap<PipeKind, Vec<i64>>, ServiceError> {
    // A ticket's trace looks among its own conflicts only.
    let traceable = |r: &Record| match r {
        Record::Pipeline(p) if p.from_node.is_some() && p.to_node.is_some() && who.allows(p.id) => {
            req.kind
                .is_none_or(|k| k == p.kind)
                .then_some((p.kind, p.id))
        }
        _ => None,
    };
    let given = [
        req.pipes.is_some(),
        req.point.is_some(),
        req.geometry.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ServiceError::Bad(
            "give exactly one of `pipes`, `point` or `geometry`".into(),
        ));
    }
    let mut found: Vec<(PipeKind, i64)> = Vec::new();
    if let Some(ids) = &req.pipes {
        if ids.is_empty() || ids.len() > MAX_START_PIPES {
            return Err(ServiceError::Bad(format!(
                "`pipes` needs 1 to {MAX_START_PIPES} ids, got {}",
                ids.len()
            )));
        }
        for id in ids {
            who.admit(*id)?;
            let rec = index
                .get(Layer::Pipelines, *id)
                .ok_or_else(|| ServiceError::Bad(format!("pipeline {id} does not exist")))?;
            let hit = traceable(&rec).ok_or_else(|| {
                ServiceError::Bad(format!(
                    "pipeline {id} cannot be traced: it has no from_node/to_node{}",
                    req.kind
                        .map_or(String::new(), |k| format!(", or is not {k}"))
                ))
            })?;
            found.push(hit);
        }
    } else if let Some([lon, lat]) = req.point {
        let within = req.within_m.unwrap_or(50.0);
        if !(0.0..=MAX_SNAP_M).contains(&within) {
            return Err(ServiceError::Bad(format!(
                "within_m must be between 0 and {MAX_SNAP_M}"
            )));
        }
        lifeline_model::Bbox::new(lon, lat, lon, lat)
            .map_err(|e| ServiceError::Bad(format!("point: {e}")))?;
        let hits = index.nearest(Layer::Pipelines, lon, lat, 64, Some(within))?;
        let first = hits.iter().find_map(|h| traceable(&h.record));
        found.extend(first);
        if found.is_empty() {
            return Err(ServiceError::Bad(format!(
                "no pipe with topology within {within} m of the point"
            )));
        }
    } else if let Some(g) = &req.geometry {
        let gj: geojson::Geometry = serde_json::from_value(g.clone())
            .map_err(|e| ServiceError::Bad(format!("geometry: {e}")))?;
        let g = lifeline_model::geom::from_geojson(gj)
            .map_err(|e| ServiceError::Bad(format!("geometry: {e}")))?;
        for r in index.intersects(Layer::Pipelines, &g)? {
            found.extend(traceable(&r));
        }
        if found.is_empty() {
            return Err(ServiceError::Bad(
                "the geometry meets no pipe with topology".into(),
            ));
        }
        if found.len() > MAX_START_PIPES {
            return Err(ServiceError::Bad(format!(
                "the geometry meets {} pipes; at most {MAX_START_PIPES} per trace",
                found.len()
            )));
        }
    }
    let mut by_kind: BTreeMap<PipeKind, Vec<i64>> = BTreeMap::new();
    for (k, id) in found {
        by_kind.entry(k).or_default().push(id);
    }
    for ids in by_kind.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    Ok(by_kind)
}

/// One network a request traces: its kind, the network, and the start pipes in it.
type Traced = (PipeKind, Arc<Built>, Vec<i64>);

/// The networks a request traces, each with its start pipes, once the scenario's valves
/// are known to be theirs.
fn traced(
    who: &Tracer,
    index: &SpatialIndex,
    networks: &Networks,
    req: &TraceRequest,
) -> Result<Vec<Traced>, ServiceError> {
    let nets = start_pipes(who, index, req)?
        .into_iter()
        .map(|(k, start)| Ok((k, networks.get(index, k)?, start)))
        .collect::<Result<Vec<_>, ServiceError>>()?;
    check_scenario(&nets, req)?;
    Ok(nets)
}

/// The field's what-if for one network: the scenario's valves that are in it.
fn scenario_for(net: &Network, req: &TraceRequest) -> Scenario {
    // Looked up per named valve: a set of the network's valves cost a pass over a city's
    // valves on every trace.
    Scenario {
        broken: req
            .broken_valves
            .iter()
            .copied()
            .filter(|v| net.has_valve(*v))
            .collect(),
        closed: req
            .closed_valves
            .iter()
            .copied()
            .filter(|v| net.has_valve(*v))
            .collect(),
    }
}

/// Checks that every valve the request names is a valve of a network it traces.
fn check_scenario(nets: &[Traced], req: &TraceRequest) -> Result<(), ServiceError> {
    for v in req.broken_valves.iter().chain(&req.closed_valves) {
        if !nets.iter().any(|(_, b, _)| b.network.has_valve(*v)) {
            return Err(ServiceError::Bad(format!(
                "valve {v} is not a valve of the traced network(s)"
            )));
        }
    }
    Ok(())
}

/// What an isolation affects beyond the network: lengths, sensors, risk points, cells.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Impact {
    /// Length of the segment's pipes, metres (geodesic).
    pub segment_length_m: f64,
    /// Length of the pockets' pipes, metres.
    pub pockets_length_m: f64,
    /// Sensors that watch an affected pipe.
    pub sensors: Vec<i64>,
    /// Risk points those sensors watch.
    pub risk_points: Vec<i64>,
    /// Per grid cell (the deepest cell holding each affected pipe's first vertex).
    pub grid_cells: Vec<CellImpact>,
}

/// The outage inside one grid cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellImpact {
    pub id: i64,
    pub name: String,
    pub level: GridLevel,
    pub pipes: usize,
    pub length_m: f64,
    pub customers: u64,
}

/// One network's isolation, with its impact.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkIsolation {
    pub kind: PipeKind,
    /// The pipes the trace started from.
    pub start_pipes: Vec<i64>,
    #[serde(flatten)]
    pub isolation: Isolation,
    pub impact: Impact,
    /// Plain-language notes: a source taken out of service, valves that could not be
    /// placed.
    pub notes: Vec<String>,
}

/// The answer of an isolation trace over one or more networks.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationAnswer {
    pub networks: Vec<NetworkIsolation>,
    pub totals: Totals,
}

impl IsolationAnswer {
    /// Every pipe the answer shows (start pipes, segments, pockets), for the read audit.
    pub fn pipes_read(&self) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        for n in &self.networks {
            out.extend(&n.start_pipes);
            out.extend(&n.isolation.segment.pipes);
            for pocket in &n.isolation.pockets {
                out.extend(&pocket.pipes);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Sums over the networks of an answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub valves_to_close: usize,
    pub customers: u64,
    /// Length cut off (segment and pockets), metres, by kind.
    pub length_m_by_kind: BTreeMap<PipeKind, f64>,
}

/// The isolation trace of a request (see [`TraceRequest`]).
pub async fn isolate(
    who: &Tracer,
    index: &Arc<SpatialIndex>,
    networks: &Arc<Networks>,
    req: TraceRequest,
) -> Result<IsolationAnswer, ServiceError> {
    let (who, index, networks) = (who.clone(), index.clone(), networks.clone());
    tokio::task::spawn_blocking(move || isolate_now(&who, &index, &networks, &req)).await?
}

/// [`isolate`], on the calling thread.
pub fn isolate_now(
    who: &Tracer,
    index: &SpatialIndex,
    networks: &Networks,
    req: &TraceRequest,
) -> Result<IsolationAnswer, ServiceError> {
    let mut out = Vec::new();
    let mut totals = Totals::default();
    for (kind, built, start) in &traced(who, index, networks, req)? {
        let net = &built.network;
        let iso = net
            .isolate(start, &scenario_for(net, req))
            .map_err(|e| ServiceError::Bad(e.to_string()))?;
        let impact = impact_of(index, built, &iso);
        let mut notes = Vec::new();
        if iso.source_inside {
            notes.push(
                "the isolated segment holds a source: closing these valves takes it out of service"
                    .to_string(),
            );
        }
        if !iso.pockets.is_empty() {
            notes.push(format!(
                "{} part(s) outside the segment lose every source as a side effect (pockets)",
                iso.pockets.len()
            ));
        }
        notes.extend(built.problems.iter().take(20).cloned());
        totals.valves_to_close += iso.valves_to_close.len();
        totals.customers += iso.customers.count;
        *totals.length_m_by_kind.entry(*kind).or_default() +=
            impact.segment_length_m + impact.pockets_length_m;
        out.push(NetworkIsolation {
            kind: *kind,
            start_pipes: start.clone(),
            isolation: iso,
            impact,
            notes,
        });
    }
    Ok(IsolationAnswer {
        networks: out,
        totals,
    })
}

fn length_m(index: &SpatialIndex, ids: &[i64]) -> f64 {
    ids.iter()
        .filter_map(|id| index.get(Layer::Pipelines, *id))
        .map(|r| match &*r {
            Record::Pipeline(p) => Geodesic.length(&p.geometry),
            _ => 0.0,
        })
        .sum()
}

fn impact_of(index: &SpatialIndex, built: &Built, iso: &Isolation) -> Impact {
    let pocket_pipes: Vec<i64> = iso.pockets.iter().flat_map(|p| p.pipes.clone()).collect();
    let affected: HashSet<i64> = iso
        .segment
        .pipes
        .iter()
        .chain(&pocket_pipes)
        .copied()
        .collect();
    let customers_at: HashMap<i64, u32> = iso
        .customers
        .nodes
        .iter()
        .filter_map(|id| match index.get(Layer::Nodes, *id).as_deref() {
            Some(Record::Node(n)) => Some((*id, n.customer_count())),
            _ => None,
        })
        .collect();
    let mut sensors = Vec::new();
    let mut risk_points = Vec::new();
    for (sensor, risk) in affected
        .iter()
        .filter_map(|p| built.watchers.get(p))
        .flatten()
    {
        sensors.push(*sensor);
        risk_points.extend(*risk);
    }
    sensors.sort_unstable();
    risk_points.sort_unstable();
    risk_points.dedup();
    // Each affected pipe and customer counts in the deepest cell holding its point.
    let mut cells: BTreeMap<i64, CellImpact> = BTreeMap::new();
    let mut count_in = |p: Point<f64>, pipe_len: Option<f64>, customers: u64| {
        let Ok(hits) = index.intersects(Layer::GridCells, &Geometry::Point(p)) else {
            return;
        };
        let deepest = hits
            .iter()
            .filter_map(|r| match &**r {
                Record::GridCell(c) => Some(c),
                _ => None,
            })
            .max_by_key(|c| (c.level, std::cmp::Reverse(c.id)));
        if let Some(c) = deepest {
            let e = cells.entry(c.id).or_insert_with(|| CellImpact {
                id: c.id,
                name: c.name.clone(),
                level: c.level,
                pipes: 0,
                length_m: 0.0,
                customers: 0,
            });
            if let Some(l) = pipe_len {
                e.pipes += 1;
                e.length_m += l;
            }
            e.customers += customers;
        }
    };
    let mut ids: Vec<i64> = affected.iter().copied().collect();
    ids.sort_unstable();
    for id in &ids {
        if let Some(Record::Pipeline(p)) = index.get(Layer::Pipelines, *id).as_deref() {
            if let Some(c) = p.geometry.0.first() {
                count_in(Point(*c), Some(Geodesic.length(&p.geometry)), 0);
            }
        }
    }
    for (id, n) in &customers_at {
        if let Some(Record::Node(node)) = index.get(Layer::Nodes, *id).as_deref() {
            count_in(node.geometry, None, u64::from(*n));
        }
    }
    Impact {
        segment_length_m: length_m(index, &iso.segment.pipes),
        pockets_length_m: length_m(index, &pocket_pipes),
        sensors,
        risk_points,
        grid_cells: cells.into_values().collect(),
    }
}

/// What striking pipeline `pipe` would cut off: its isolation as the network stands (no
/// what-if). `None` for a pipe without topology, or a network that cannot be built.
pub fn if_struck(
    index: &SpatialIndex,
    networks: &Networks,
    pipe: i64,
) -> Option<lifeline_model::check_result::IfStruck> {
    let rec = index.get(Layer::Pipelines, pipe)?;
    let Record::Pipeline(p) = &*rec else {
        return None;
    };
    p.from_node?;
    p.to_node?;
    let built = networks.get(index, p.kind).ok()?;
    let iso = built.network.isolate(&[pipe], &Scenario::default()).ok()?;
    Some(lifeline_model::check_result::IfStruck {
        valves_to_close: iso.valves_to_close,
        customers: iso.customers.count,
        segment_pipes: iso.segment.pipes.len(),
        source_inside: iso.source_inside,
    })
}

/// Sensor kinds whose alarm can mean a leak on the pipe the sensor watches: combustible
/// gas (% LEL), a pressure drop, a flow anomaly. An open alarm of one of these, on a sensor
/// of a pipe with topology, links to that pipe's isolation (`GET /alarms/{id}/isolation`).
pub const LEAK_SIGNALS: [SensorKind; 3] =
    [SensorKind::GasLel, SensorKind::Pressure, SensorKind::Flow];

/// The pipe an alarm's isolation starts from: the pipeline its sensor watches, when the
/// alarm is open, its sensor's kind is a [leak signal](LEAK_SIGNALS), and the pipe has
/// topology. Otherwise why not, in plain words.
pub fn alarm_pipe(index: &SpatialIndex, alarm: &Alarm) -> Result<i64, ServiceError> {
    let none = |why: String| {
        Err(ServiceError::NoIsolation(format!(
            "alarm {}: {why}",
            alarm.id
        )))
    };
    if !alarm.status.is_open() {
        return none(format!(
            "it is {}; only open alarms link to an isolation",
            alarm.status
        ));
    }
    if !LEAK_SIGNALS.contains(&alarm.sensor_kind) {
        return none(format!(
            "a {} alarm does not signal a leak (gas_lel, pressure and flow do)",
            alarm.sensor_kind
        ));
    }
    let pipe = match index.get(Layer::Sensors, alarm.sensor_id).as_deref() {
        Some(Record::Sensor(s)) => s.pipeline_id,
        _ => return none(format!("its sensor {} is not in the data", alarm.sensor_id)),
    };
    let Some(pipe) = pipe else {
        return none(format!(
            "its sensor {} watches no pipeline",
            alarm.sensor_id
        ));
    };
    match index.get(Layer::Pipelines, pipe).as_deref() {
        Some(Record::Pipeline(p)) if p.from_node.is_some() && p.to_node.is_some() => Ok(pipe),
        _ => none(format!(
            "pipeline {pipe}, which its sensor watches, has no topology"
        )),
    }
}

/// The isolation of an alarm's pipe as the network stands (see [`alarm_pipe`]).
pub async fn alarm_isolation(
    who: &Tracer,
    index: &Arc<SpatialIndex>,
    networks: &Arc<Networks>,
    alarm: &Alarm,
) -> Result<IsolationAnswer, ServiceError> {
    let pipe = alarm_pipe(index, alarm)?;
    let req = TraceRequest {
        pipes: Some(vec![pipe]),
        ..TraceRequest::default()
    };
    isolate(who, index, networks, req).await
}

/// An isolation as it goes on the event stream when an operator publishes it (see
/// [`PublishedTrace`]): ids and counts, placed at the first start pipe's first vertex.
/// Refuses a message that is too long, or one given without publishing.
pub fn published(
    index: &SpatialIndex,
    a: &IsolationAnswer,
    req: &TraceRequest,
    publishing: bool,
    role: Role,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<PublishedTrace>, ServiceError> {
    let message = req
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if !publishing {
        return match message {
            Some(_) => Err(ServiceError::Bad(
                "`message` goes with a published trace: add ?publish=true".into(),
            )),
            None => Ok(None),
        };
    }
    if message.is_some_and(|m| m.chars().count() > MAX_TRACE_MESSAGE) {
        return Err(ServiceError::Bad(format!(
            "`message` is longer than {MAX_TRACE_MESSAGE} characters"
        )));
    }
    let first = a
        .networks
        .iter()
        .flat_map(|n| &n.start_pipes)
        .find_map(|id| match index.get(Layer::Pipelines, *id).as_deref() {
            Some(Record::Pipeline(p)) => p.geometry.0.first().copied(),
            _ => None,
        });
    let at = first.ok_or_else(|| ServiceError::Bad("the trace starts from no pipe".into()))?;
    Ok(Some(PublishedTrace {
        message: message.map(str::to_string),
        published_at: now,
        role,
        lon: at.x,
        lat: at.y,
        broken_valves: req.broken_valves.clone(),
        closed_valves: req.closed_valves.clone(),
        networks: a
            .networks
            .iter()
            .map(|n| PublishedIsolation {
                kind: n.kind,
                start_pipes: n.start_pipes.clone(),
                valves_to_close: n.isolation.valves_to_close.clone(),
                segment_pipes: n.isolation.segment.pipes.clone(),
                pocket_pipes: n
                    .isolation
                    .pockets
                    .iter()
                    .flat_map(|p| p.pipes.iter().copied())
                    .collect(),
                customers: n.isolation.customers.count,
                length_m: n.impact.segment_length_m + n.impact.pockets_length_m,
                source_inside: n.isolation.source_inside,
            })
            .collect(),
    }))
}

/// The answer of a connectivity trace.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectedAnswer {
    pub kind: PipeKind,
    pub start_pipe: i64,
    #[serde(flatten)]
    pub part: Part,
    pub length_m: f64,
    /// Whether the part reaches a source.
    pub fed: bool,
}

/// Everything joined to the start pipe(s) through open valves, per network.
pub async fn connected(
    who: &Tracer,
    index: &Arc<SpatialIndex>,
    networks: &Arc<Networks>,
    req: TraceRequest,
) -> Result<Vec<ConnectedAnswer>, ServiceError> {
    let (who, index, networks) = (who.clone(), index.clone(), networks.clone());
    tokio::task::spawn_blocking(move || connected_now(&who, &index, &networks, &req)).await?
}

/// [`connected`], on the calling thread.
pub fn connected_now(
    who: &Tracer,
    index: &SpatialIndex,
    networks: &Networks,
    req: &TraceRequest,
) -> Result<Vec<ConnectedAnswer>, ServiceError> {
    let mut out = Vec::new();
    for (kind, built, start) in &traced(who, index, networks, req)? {
        let net = &built.network;
        let s = scenario_for(net, req);
        let mut seen: HashSet<i64> = HashSet::new();
        let sources: HashSet<i64> = net
            .nodes()
            .iter()
            .filter(|n| n.role == NodeRole::Source)
            .map(|n| n.id)
            .collect();
        for id in start {
            if seen.contains(id) {
                continue;
            }
            let part = net
                .connected(*id, &s)
                .map_err(|e| ServiceError::Bad(e.to_string()))?;
            seen.extend(&part.pipes);
            out.push(ConnectedAnswer {
                kind: *kind,
                start_pipe: *id,
                fed: part.nodes.iter().any(|n| sources.contains(n)),
                length_m: length_m(index, &part.pipes),
                part,
            });
        }
    }
    Ok(out)
}

/// The answer of an upstream or downstream trace from one start pipe.
#[derive(Debug, Clone, Serialize)]
pub struct DirectedAnswer {
    pub kind: PipeKind,
    pub start_pipe: i64,
    pub direction: Direction,
    /// `nodes`, `pipes`, `valves` on the way; `sources` reached (upstream); `customers`
    /// fed (downstream); `fed`: whether any source reaches the start pipe.
    #[serde(flatten)]
    pub trace: Directed,
    /// Length of the trace's pipes, metres (geodesic).
    pub length_m: f64,
    /// Plain-language notes: an unfed start, a looped network's approximation.
    pub notes: Vec<String>,
}

/// Every pipe a connectivity trace's answers show, for the read audit.
pub fn connected_pipes(answers: &[ConnectedAnswer]) -> Vec<i64> {
    let mut out: Vec<i64> = answers
        .iter()
        .flat_map(|a| std::iter::once(a.start_pipe).chain(a.part.pipes.iter().copied()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every pipe a directed trace's answers show, for the read audit.
pub fn directed_pipes(answers: &[DirectedAnswer]) -> Vec<i64> {
    let mut out: Vec<i64> = answers
        .iter()
        .flat_map(|a| std::iter::once(a.start_pipe).chain(a.trace.part.pipes.iter().copied()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The upstream or downstream trace of a request, one answer per start pipe (see
/// [`crate::flow`] for the direction's semantics).
pub async fn directed(
    who: &Tracer,
    index: &Arc<SpatialIndex>,
    networks: &Arc<Networks>,
    req: TraceRequest,
    direction: Direction,
) -> Result<Vec<DirectedAnswer>, ServiceError> {
    let (who, index, networks) = (who.clone(), index.clone(), networks.clone());
    tokio::task::spawn_blocking(move || directed_now(&who, &index, &networks, &req, direction))
        .await?
}

/// [`directed`], on the calling thread.
pub fn directed_now(
    who: &Tracer,
    index: &SpatialIndex,
    networks: &Networks,
    req: &TraceRequest,
    direction: Direction,
) -> Result<Vec<DirectedAnswer>, ServiceError> {
    let mut out = Vec::new();
    for (kind, built, start) in &traced(who, index, networks, req)? {
        let net = &built.network;
        let s = scenario_for(net, req);
        let length = |id: i64| length_m(index, &[id]);
        let what_if;
        let flow = if s.broken.is_empty() && s.closed.is_empty() {
            built.flow.get_or_init(|| net.flow(&s, length))
        } else {
            what_if = net.flow(&s, length);
            &what_if
        };
        for id in start {
            let trace = match direction {
                Direction::Upstream => net.upstream(flow, *id),
                Direction::Downstream => net.downstream(flow, *id),
            }
            .map_err(|e| ServiceError::Bad(e.to_string()))?;
            let mut notes = Vec::new();
            if !trace.fed {
                notes.push(format!(
                    "no source reaches pipeline {id} as the network stands: it has no direction"
                ));
            }
            out.push(DirectedAnswer {
                kind: *kind,
                start_pipe: *id,
                direction,
                length_m: length_m(index, &trace.part.pipes),
                trace,
                notes,
            });
        }
    }
    Ok(out)
}

/// The answers of upstream or downstream traces as a GeoJSON FeatureCollection: each
/// trace's pipes (`role` = `start`, or the direction: `upstream`, `downstream`), the sources
/// reached (`source`) and the customer connections fed (`customer`).
pub fn directed_geojson(index: &SpatialIndex, answers: &[DirectedAnswer]) -> Value {
    let mut features = Vec::new();
    for a in answers {
        for id in &a.trace.part.pipes {
            if let Some(Record::Pipeline(p)) = index.get(Layer::Pipelines, *id).as_deref() {
                let role = if *id == a.start_pipe {
                    "start"
                } else {
                    match a.direction {
                        Direction::Upstream => "upstream",
                        Direction::Downstream => "downstream",
                    }
                };
                features.push(json!({
                    "type": "Feature", "id": format!("pipelines.{id}"),
                    "geometry": to_geojson(&Geometry::LineString(p.geometry.clone())),
                    "properties": {"role": role, "layer": "pipelines", "id": id, "kind": a.kind, "start_pipe": a.start_pipe},
                }));
            }
        }
        let points = a
            .trace
            .sources
            .iter()
            .map(|id| ("source", id))
            .chain(a.trace.customers.nodes.iter().map(|id| ("customer", id)));
        for (role, id) in points {
            if let Some(Record::Node(n)) = index.get(Layer::Nodes, *id).as_deref() {
                features.push(json!({
                    "type": "Feature", "id": format!("nodes.{id}"),
                    "geometry": to_geojson(&Geometry::Point(n.geometry)),
                    "properties": {"role": role, "layer": "nodes", "id": id, "kind": a.kind, "start_pipe": a.start_pipe},
                }));
            }
        }
    }
    json!({"type": "FeatureCollection", "features": features})
}

/// The answer of an isolation as a GeoJSON FeatureCollection: the segment's and pockets'
/// pipes (`role` = `segment` or `pocket`), the valves to close (`valve_to_close`), the
/// other boundary valves (`boundary_valve`), and each part's outline (`outline`, the
/// convex hull of its pipes).
pub fn isolation_geojson(index: &SpatialIndex, a: &IsolationAnswer) -> Value {
    let mut features = Vec::new();
    for n in &a.networks {
        let iso = &n.isolation;
        let mut parts: Vec<(&str, &Part)> = vec![("segment", &iso.segment)];
        parts.extend(iso.pockets.iter().map(|p| ("pocket", p)));
        for (role, part) in parts {
            let mut points: Vec<Point<f64>> = Vec::new();
            for id in &part.pipes {
                if let Some(Record::Pipeline(p)) = index.get(Layer::Pipelines, *id).as_deref() {
                    points.extend(p.geometry.points());
                    features.push(json!({
                        "type": "Feature", "id": format!("pipelines.{id}"),
                        "geometry": to_geojson(&Geometry::LineString(p.geometry.clone())),
                        "properties": {"role": role, "layer": "pipelines", "id": id, "kind": n.kind},
                    }));
                }
            }
            if points.len() >= 3 {
                let hull = MultiPoint(points).convex_hull();
                features.push(json!({
                    "type": "Feature",
                    "geometry": to_geojson(&Geometry::Polygon(hull)),
                    "properties": {"role": "outline", "part": role, "kind": n.kind},
                }));
            }
        }
        for b in &iso.boundary_valves {
            let role = if iso.valves_to_close.contains(&b.id) {
                "valve_to_close"
            } else {
                "boundary_valve"
            };
            if let Some(Record::Node(v)) = index.get(Layer::Nodes, b.id).as_deref() {
                features.push(json!({
                    "type": "Feature", "id": format!("nodes.{}", b.id),
                    "geometry": to_geojson(&Geometry::Point(v.geometry)),
                    "properties": {
                        "role": role, "layer": "nodes", "id": b.id, "kind": n.kind,
                        "pipe": b.pipe, "closed": b.closed, "far_side_fed": b.far_side_fed,
                        "code": v.code, "name": v.name,
                    },
                }));
            }
        }
    }
    json!({
        "type": "FeatureCollection",
        "features": features,
        "totals": a.totals,
    })
}

/// The answer of an isolation as a printable HTML page: per network, the valves to close
/// (with their codes and positions), the counts, the pockets and the cells affected.
pub fn isolation_html(index: &SpatialIndex, a: &IsolationAnswer) -> String {
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Isolation trace</title>\
         <style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #999;padding:.2em .5em;text-align:left}h2{margin-top:1.5em}</style>\
         <h1>Isolation trace</h1>",
    );
    h.push_str(&format!(
        "<p>Valves to close: <b>{}</b> · customers losing supply: <b>{}</b></p>",
        a.totals.valves_to_close, a.totals.customers
    ));
    for n in &a.networks {
        let iso = &n.isolation;
        h.push_str(&format!(
            "<h2>{} network — from pipe(s) {}</h2>",
            esc(n.kind.as_str()),
            esc(&join(&n.start_pipes))
        ));
        for note in &n.notes {
            h.push_str(&format!("<p><b>Note:</b> {}</p>", esc(note)));
        }
        h.push_str("<h3>Valves to close</h3><table><tr><th>valve</th><th>code</th><th>name</th><th>on pipe</th><th>lon, lat</th></tr>");
        for b in iso
            .boundary_valves
            .iter()
            .filter(|b| iso.valves_to_close.contains(&b.id))
        {
            let v = match index.get(Layer::Nodes, b.id).as_deref() {
                Some(Record::Node(v)) => Some(v.clone()),
                _ => None,
            };
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                b.id,
                esc(v.as_ref().and_then(|v| v.code.as_deref()).unwrap_or("")),
                esc(v.as_ref().and_then(|v| v.name.as_deref()).unwrap_or("")),
                b.pipe,
                v.map_or(String::new(), |v| format!(
                    "{:.6}, {:.6}",
                    v.geometry.x(),
                    v.geometry.y()
                )),
            ));
        }
        h.push_str("</table>");
        h.push_str(&format!(
            "<p>Segment: {} pipe(s), {:.0} m · pockets: {} ({:.0} m) · source inside: {} · \
             customers: {} · sensors: {} · risk points: {}</p>",
            iso.segment.pipes.len(),
            n.impact.segment_length_m,
            iso.pockets.len(),
            n.impact.pockets_length_m,
            if iso.source_inside { "yes" } else { "no" },
            iso.customers.count,
            n.impact.sensors.len(),
            n.impact.risk_points.len(),
        ));
        if !n.impact.grid_cells.is_empty() {
            h.push_str("<h3>By grid cell</h3><table><tr><th>cell</th><th>level</th><th>pipes</th><th>length (m)</th><th>customers</th></tr>");
            for c in &n.impact.grid_cells {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td></tr>",
                    esc(&c.name),
                    c.level,
                    c.pipes,
                    c.length_m,
                    c.customers
                ));
            }
            h.push_str("</table>");
        }
    }
    h.push_str("</html>");
    h
}

fn join(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, t: NodeType) -> NetworkNode {
        NetworkNode::new(id, PipeKind::WaterSupply, t, (106.5, 29.5).into())
    }

    fn pipe(id: i64, a: i64, b: i64) -> Pipeline {
        Pipeline {
            from_node: Some(a),
            to_node: Some(b),
            ..Pipeline::new(
                id,
                PipeKind::WaterSupply,
                1,
                vec![(106.5, 29.5), (106.501, 29.5)].into(),
            )
        }
    }

    #[test]
    fn an_inline_valve_node_separates_its_two_pipes() {
        // source 1 — p10 — valve 2 — p11 — customer 3
        let nodes = vec![
            node(1, NodeType::Source),
            node(2, NodeType::Valve),
            NetworkNode {
                customers: Some(5),
                ..node(3, NodeType::Customer)
            },
        ];
        let pipes = vec![pipe(10, 1, 2), pipe(11, 2, 3)];
        let (net, problems) = network_of(&nodes, &pipes).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let iso = net.isolate(&[11], &Scenario::default()).unwrap();
        assert_eq!(iso.segment.pipes, vec![11]);
        assert_eq!(iso.valves_to_close, vec![2]);
        assert_eq!(iso.customers.count, 5);
        // The valve broken: the segment grows to the source.
        let s = Scenario {
            broken: [2].into(),
            ..Default::default()
        };
        let iso = net.isolate(&[11], &s).unwrap();
        assert_eq!(iso.segment.pipes, vec![10, 11]);
        assert!(iso.source_inside);
    }

    /// The network of one kind as sets, whatever the order of its arrays, with its sorted
    /// problems and watchers: what a cached network must share with a fresh one.
    fn summary(b: &Built) -> String {
        let mut nodes: Vec<String> = b.network.nodes().iter().map(|n| format!("{n:?}")).collect();
        nodes.sort();
        let mut pipes: Vec<String> = b.network.pipes().iter().map(|p| format!("{p:?}")).collect();
        pipes.sort();
        let mut valves: Vec<String> = b
            .network
            .valves()
            .iter()
            .map(|v| format!("{v:?}"))
            .collect();
        valves.sort();
        let mut problems = b.problems.clone();
        problems.sort();
        let mut watchers: Vec<(i64, Vec<Watcher>)> = b
            .watchers
            .iter()
            .map(|(p, w)| {
                let mut w = w.clone();
                w.sort_unstable();
                (*p, w)
            })
            .collect();
        watchers.sort_unstable();
        format!("{nodes:?}\n{pipes:?}\n{valves:?}\n{problems:?}\n{watchers:?}")
    }

    fn at(rng: &mut rand_chacha::ChaCha8Rng) -> Point<f64> {
        use rand::Rng;
        (
            106.5 + rng.gen::<f64>() * 0.01,
            29.5 + rng.gen::<f64>() * 0.01,
        )
            .into()
    }

    fn random_node(rng: &mut rand_chacha::ChaCha8Rng, id: i64, kind: PipeKind) -> NetworkNode {
        use lifeline_model::ValveCondition;
        use rand::Rng;
        let t = match rng.gen_range(0..10) {
            0..=3 => NodeType::Junction,
            4 => NodeType::Source,
            5..=6 => NodeType::Customer,
            _ => NodeType::Valve,
        };
        let mut n = NetworkNode::new(id, kind, t, at(rng));
        match t {
            NodeType::Customer => n.customers = Some(rng.gen_range(1..40)),
            NodeType::Valve => {
                if rng.gen_bool(0.2) {
                    n.valve_position = Some(ValvePosition::Closed);
                }
                if rng.gen_bool(0.2) {
                    n.valve_condition = Some(ValveCondition::Broken);
                }
            }
            _ => {}
        }
        n
    }

    fn random_pipe(
        rng: &mut rand_chacha::ChaCha8Rng,
        id: i64,
        kind: PipeKind,
        nodes: i64,
    ) -> Pipeline {
        use rand::Rng;
        let from = rng.gen_range(1..=nodes);
        let to = (from + rng.gen_range(1..5)).min(nodes);
        let (a, b) = (at(rng), at(rng));
        Pipeline {
            from_node: (!rng.gen_bool(0.03)).then_some(from),
            to_node: Some(to),
            ..Pipeline::new(id, kind, 1, vec![(a.x(), a.y()), (b.x(), b.y())].into())
        }
    }

    fn sensor(id: i64, pipe: i64, risk: Option<i64>) -> lifeline_model::Sensor {
        lifeline_model::Sensor {
            id,
            kind: lifeline_model::SensorKind::Pressure,
            code: None,
            pipeline_id: Some(pipe),
            risk_point_id: risk,
            status: lifeline_model::SensorStatus::Online,
            installed: None,
            location: (106.5, 29.5).into(),
        }
    }

    /// The cache follows random edits of the index in place — nodes, pipes (with one end,
    /// moved, of another kind), sensors — and after every edit equals a network built
    /// afresh, with exact precomputed segments; it is built whole once. An edit to the gas
    /// network leaves the water network untouched.
    #[test]
    fn cached_networks_follow_edits_in_place_and_per_kind() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let water = PipeKind::WaterSupply;
        let gas = PipeKind::Gas;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        let n = 300;
        let mut data = lifeline_model::Dataset::default();
        for id in 1..=n {
            data.nodes.push(random_node(&mut rng, id, water));
            data.nodes.push(random_node(&mut rng, 10_000 + id, gas));
        }
        for id in 1..=2 * n {
            data.pipelines
                .push(random_pipe(&mut rng, 20_000 + id, water, n));
        }
        for id in 1..=40 {
            let mut g = random_pipe(&mut rng, 30_000 + id, gas, 40);
            g.from_node = g.from_node.map(|x| x + 10_000);
            g.to_node = g.to_node.map(|x| x + 10_000);
            data.pipelines.push(g);
        }
        for id in 1..=50 {
            data.sensors
                .push(sensor(id, 20_000 + rng.gen_range(1..=2 * n), Some(id % 7)));
        }
        let index = SpatialIndex::new(lifeline_model::crs::MetricCrs::auto(106.5, 29.5));
        index.load(data).unwrap();
        let networks = Networks::default();
        networks.get(&index, water).unwrap();
        networks.get(&index, gas).unwrap();

        for step in 0..300 {
            let kind_before = networks.get(&index, water).unwrap();
            let gas_edit = rng.gen_bool(0.15);
            if gas_edit {
                let id = 30_000 + rng.gen_range(1..=40);
                let mut g = random_pipe(&mut rng, id, gas, 40);
                g.from_node = g.from_node.map(|x| x + 10_000);
                g.to_node = g.to_node.map(|x| x + 10_000);
                index.upsert(Record::Pipeline(g)).unwrap();
            } else {
                match rng.gen_range(0..8) {
                    0 | 1 => {
                        let id = rng.gen_range(1..=n + 5);
                        index
                            .upsert(Record::Node(random_node(&mut rng, id, water)))
                            .unwrap();
                    }
                    2 => {
                        index.remove(Layer::Nodes, rng.gen_range(1..=n));
                    }
                    3 | 4 => {
                        let id = 20_000 + rng.gen_range(1..=2 * n + 20);
                        let mut p = random_pipe(&mut rng, id, water, n + 5);
                        if rng.gen_bool(0.1) {
                            p.kind = PipeKind::Drainage;
                        }
                        index.upsert(Record::Pipeline(p)).unwrap();
                    }
                    5 => {
                        index.remove(Layer::Pipelines, 20_000 + rng.gen_range(1..=2 * n));
                    }
                    6 => {
                        let id = rng.gen_range(1..=60);
                        let pipe = 20_000 + rng.gen_range(1..=2 * n + 20);
                        index
                            .upsert(Record::Sensor(sensor(id, pipe, Some(id % 5))))
                            .unwrap();
                    }
                    _ => {
                        index.remove(Layer::Sensors, rng.gen_range(1..=60));
                    }
                }
            }
            let gas_stats = networks.stats(gas);
            let kept = networks.get(&index, water).unwrap();
            if gas_edit {
                assert!(
                    Arc::ptr_eq(&kind_before, &kept),
                    "step {step}: a gas edit must leave the water network as it is"
                );
            }
            drop(kind_before);
            let fresh = Networks::default().get(&index, water).unwrap();
            assert_eq!(summary(&kept), summary(&fresh), "step {step}");
            kept.network.check_precomputed_segments().unwrap();
            let kept_gas = networks.get(&index, gas).unwrap();
            let fresh_gas = Networks::default().get(&index, gas).unwrap();
            assert_eq!(summary(&kept_gas), summary(&fresh_gas), "step {step} (gas)");
            if !gas_edit {
                assert_eq!(networks.stats(gas).updates, gas_stats.updates);
            }
            // Isolations agree with the fresh network's.
            let pipes: Vec<i64> = kept.network.pipes().iter().map(|p| p.id).collect();
            for p in pipes.choose_multiple(&mut rng, 3) {
                assert_eq!(
                    kept.network.isolate(&[*p], &Scenario::default()).unwrap(),
                    fresh.network.isolate(&[*p], &Scenario::default()).unwrap()
                );
            }
        }
        // A watched pipe deleted and put back, or turned into another kind and back, finds
        // its sensors again though they did not change.
        let watched: Vec<i64> = networks
            .get(&index, water)
            .unwrap()
            .watchers
            .keys()
            .copied()
            .take(5)
            .collect();
        assert!(!watched.is_empty());
        for (i, p) in watched.into_iter().enumerate() {
            let rec = index.get(Layer::Pipelines, p).unwrap();
            if i % 2 == 0 {
                index.remove(Layer::Pipelines, p);
            } else if let Record::Pipeline(pipe) = &*rec {
                index
                    .upsert(Record::Pipeline(Pipeline {
                        kind: PipeKind::Drainage,
                        ..pipe.clone()
                    }))
                    .unwrap();
            }
            let gone = networks.get(&index, water).unwrap();
            assert!(!gone.watchers.contains_key(&p));
            drop(gone);
            index.upsert((*rec).clone()).unwrap();
            let back = networks.get(&index, water).unwrap();
            let fresh = Networks::default().get(&index, water).unwrap();
            assert!(back.watchers.contains_key(&p));
            assert_eq!(summary(&back), summary(&fresh), "pipe {p} back");
        }
        assert_eq!(networks.stats(water).builds, 1, "never rebuilt whole");
        assert!(networks.stats(water).updates > 200);
        assert_eq!(networks.stats(gas).builds, 1);
        // A reload of the index cannot be followed record by record.
        index.load(lifeline_model::Dataset::default()).unwrap();
        assert!(networks
            .get(&index, water)
            .unwrap()
            .network
            .pipes()
            .is_empty());
        assert_eq!(networks.stats(water).builds, 2);
    }

    #[test]
    fn unplaceable_valves_and_loose_pipes_are_reported() {
        let nodes = vec![
            node(1, NodeType::Junction),
            node(2, NodeType::Valve),
            node(3, NodeType::Junction),
            node(4, NodeType::Junction),
        ];
        let pipes = vec![
            pipe(10, 1, 2),
            pipe(11, 2, 3),
            pipe(12, 2, 4),
            pipe(13, 4, 99),
        ];
        let (net, problems) = network_of(&nodes, &pipes).unwrap();
        assert_eq!(net.pipes().len(), 3);
        assert!(net.valves().is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("pipeline 13")));
        assert!(problems.iter().any(|p| p.contains("valve 2 joins 3 pipes")));
    }
}

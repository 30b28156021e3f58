//! Topology while importing (issue 15): the importer's bridge to `lifeline_trace`'s
//! builders, so a delivery that does not name its pipes' end nodes still arrives in the
//! store as a traceable network (nodes, and pipelines with `from_node`/`to_node`).
//!
//! - [`import_geometry`] (`lifeline import … --topology geometry`): the mapped pipelines
//!   (and an optional point layer of valves, sources, customers) are read like any import,
//!   projected to metres, snapped by [`lifeline_trace::from_geometry`] within a tolerance in
//!   metres, and written back in CGCS2000 lon/lat with the nodes the snapping made; what the
//!   snapping found (dangles, near-misses, crossings without a node, duplicates, points on
//!   no pipe, splits) comes back as a GeoJSON report an analyst can put on a map.
//! - [`import_inp`] (`lifeline import net.inp --kind water --source-crs …`): an EPANET file
//!   read by [`lifeline_trace::InpModel`], its coordinates reprojected with PROJ, its
//!   junctions, reservoirs and tanks as nodes and its pipes, pumps and control valves as
//!   pipelines, with an optional valve layer (WNTR's form) as valve nodes.
//!
//! Both write nodes and pipelines in one transaction ([`Store::bulk_load`] writes nodes
//! first, since pipelines name them). Ids are chosen here, above the largest ids the
//! store holds, because pipes must name their nodes before either is written.

use super::import::{prepare, FieldRule, ImportError, ImportOptions, Issue, Mapping, Outcome};
use super::import::{Report, Summary};
use super::infer::{match_columns, InferError};
use super::service::{ImportRequest, Progress};
use geo::{Coord, Geometry, LineString, Point};
use lifeline_model::crs::{CrsError, MetricCrs, Route};
use lifeline_model::node::{NetworkNode, NodeType, SourceKind, ValveCondition, ValvePosition};
use lifeline_model::{Actor, Bbox, Catalog, Dataset, Layer, Owner, PipeKind, Pipeline};
use lifeline_store::{Store, StoreError};
use lifeline_trace::inp::{InpError, InpLinkKind, InpModel, InpNodeKind, LayerValve, LinkStatus};
use lifeline_trace::topology::{GeometryReport, LinePipe, PointNode, Snapping, TopologyError};
use lifeline_trace::Id;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How far from its node a valve of an `.inp` valve layer is drawn on its link, in
/// metres (at most a tenth of the link): the stub between the node and the valve.
const STUB_M: f64 = 1.0;

/// Why a topology import could not run (record problems go to the reports instead).
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Reading or converting the pipes or points failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The point file's columns could not be read.
    #[error("{}: reading the point layer's columns", path.display())]
    Points {
        path: PathBuf,
        #[source]
        source: InferError,
    },
    /// The snapping tolerance is unusable.
    #[error("snapping: {0}")]
    Topology(#[from] TopologyError),
    /// A target layer other than pipelines.
    #[error("--topology geometry builds the pipelines' network: the target layer must be pipelines, not {0}")]
    Layer(Layer),
    /// Points of several kinds, or pipes of several kinds, and no `kind` for the points.
    #[error("the pipes are of several kinds ({0}); give the point layer a `kind` column")]
    PointKind(String),
    /// Projecting to metres, or back, failed.
    #[error("projecting to metres for snapping")]
    Crs(#[source] CrsError),
    /// `--strict` and a record was rejected.
    #[error("{what} rejected in strict mode: {reason}; nothing was written")]
    Strict { what: String, reason: String },
    /// An `.inp` file without `--source-crs`.
    #[error(
        "{}: an EPANET .inp file states no CRS; give --source-crs (an EPSG code or a PROJ \
         string, e.g. --source-crs EPSG:4545)",
        path.display()
    )]
    InpCrs { path: PathBuf },
    /// The `.inp` source CRS is unusable.
    #[error("--source-crs {crs}")]
    SourceCrs {
        crs: String,
        #[source]
        source: CrsError,
    },
    /// No owner for the `.inp` file's pipelines.
    #[error(
        "{}: pipelines need an owner: give --owner-id N (an owner in the store), or a \
         --mapping with an [owner] table",
        path.display()
    )]
    InpOwner { path: PathBuf },
    /// A file could not be read.
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A report could not be written.
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `.inp` text is malformed.
    #[error("{}", path.display())]
    Inp {
        path: PathBuf,
        #[source]
        source: InpError,
    },
    /// A line of the valve layer is malformed or names what the model does not have.
    #[error("{}: line {line}: {problem}", path.display())]
    ValveLayer {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that did the work panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// How `--topology geometry` snaps.
#[derive(Debug, Clone)]
pub struct GeometryOptions {
    /// The snapping tolerance in metres.
    pub snap_m: f64,
    /// Whether a node of pipe ends on another pipe's interior splits it (a tee).
    pub tees: bool,
    /// A point layer (valves, sources, customers, junctions) read by its column names.
    pub points: Option<PathBuf>,
}

/// What the snapping found, counted (the full lists are in the GeoJSON report).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TopologyCounts {
    /// Nodes written: from the point layer, and junctions made from pipe ends.
    pub nodes_from_points: usize,
    pub junctions_created: usize,
    /// Pipelines written with both end nodes.
    pub pipes_joined: usize,
    /// Pipelines written without end nodes (left out of the network: zero length after
    /// snapping).
    pub pipes_without_nodes: usize,
    /// Input pipes split by a point or tee on their interior.
    pub pipes_split: usize,
    pub dangles: usize,
    pub near_misses: usize,
    pub crossings: usize,
    /// Points left out: within the tolerance of another point.
    pub duplicate_nodes: usize,
    /// Points left out: within the tolerance of no pipe.
    pub points_off_pipe: usize,
    /// Valves that cannot tell which pipe they close (traced as junctions).
    pub misplaced_valves: usize,
}

/// What a `--topology geometry` import did.
#[derive(Debug)]
pub struct GeometryImport {
    /// The pipes' validation report and what was written (records: nodes + pipelines).
    pub summary: Summary,
    /// The point layer's validation report.
    pub points: Option<Report>,
    pub counts: TopologyCounts,
    /// The projected CRS the snapping measured in.
    pub metric_crs: String,
    /// The topology report as a GeoJSON FeatureCollection (EPSG:4490 lon/lat).
    pub report: Value,
    /// Nothing was written.
    pub dry_run: bool,
}

/// The largest pipeline and node ids in the store (0 when none), so new ids go above.
async fn max_ids(store: &dyn Store) -> Result<(i64, i64), StoreError> {
    let d = store.load_all().await?;
    let p = d.pipelines.iter().map(|p| p.id).max().unwrap_or(0);
    let n = d.nodes.iter().map(|n| n.id).max().unwrap_or(0);
    Ok((p, n))
}

/// Metres per degree of longitude and latitude at `lat` (a local scale for stubs of a
/// metre, where the ellipsoid's curvature does not matter).
fn metres_per_degree(lat: f64) -> (f64, f64) {
    (111_320.0 * lat.to_radians().cos(), 110_574.0)
}

/// The point layer's mapping: its columns named like the nodes' fields, in the pipes'
/// CRS (one delivery, one CRS), with `node_type` `valve` and the pipes' `kind` where it
/// has no such column.
fn points_mapping(
    path: &Path,
    pipes: &Mapping,
    pipes_crs: Option<String>,
    kind: Option<PipeKind>,
) -> Result<Mapping, NetworkError> {
    let mut m = match_columns(path, Layer::Nodes)
        .map_err(|source| NetworkError::Points {
            path: path.to_path_buf(),
            source,
        })?
        .mapping();
    // The CRS the pipes were read in (the file's, the mapping's or --s-srs), not the
    // point file's own: a GeoJSON always claims EPSG:4326, whatever it holds.
    m.source_crs = pipes_crs;
    m.pipeline = pipes.pipeline.clone();
    m.gcj02 = pipes.gcj02;
    let constant = |v: &str| FieldRule {
        from: None,
        value: Some(Value::String(v.to_string())),
        scale: None,
        map: BTreeMap::new(),
    };
    m.fields
        .entry("node_type".into())
        .or_insert_with(|| constant(NodeType::Valve.as_str()));
    if !m.fields.contains_key("kind") {
        if let Some(k) = kind {
            m.fields.insert("kind".into(), constant(k.as_str()));
        }
    }
    Ok(m)
}

/// Fails a strict import on its first rejected row.
fn strict_check(strict: bool, report: &Report, what: &str) -> Result<(), NetworkError> {
    match report
        .issues
        .iter()
        .find(|i| i.outcome == Outcome::Rejected)
    {
        Some(i) if strict => Err(NetworkError::Strict {
            what: format!("{what} row {}", i.row),
            reason: i.reason.clone(),
        }),
        _ => Ok(()),
    }
}

/// Imports `req.file`'s pipelines and gives them end nodes by snapping their geometry
/// (see the module documentation); without a store (a dry run), builds the topology and
/// its report and writes nothing.
pub async fn import_geometry(
    store: Option<&dyn Store>,
    req: ImportRequest,
    opts: GeometryOptions,
    actor: &Actor,
    mut progress: Progress,
) -> Result<GeometryImport, NetworkError> {
    if req.options.layer != Layer::Pipelines {
        return Err(NetworkError::Layer(req.options.layer));
    }
    let snapping = Snapping::new(opts.snap_m)?.with_tees(opts.tees);
    let (req, mut progress, pipes) = tokio::task::spawn_blocking(move || {
        let r = prepare(
            &req.file,
            &req.mapping,
            &req.options,
            Catalog::builtin(),
            &mut *progress,
        );
        (req, progress, r)
    })
    .await?;
    let mut pipes = pipes?;
    strict_check(req.strict, &pipes, "pipe")?;
    let mut kinds: Vec<PipeKind> = pipes.data.pipelines.iter().map(|p| p.kind).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    let points = match &opts.points {
        None => None,
        Some(path) => {
            let only_kind = kinds.first().copied().filter(|_| kinds.len() == 1);
            let mapping = points_mapping(path, &req.mapping, pipes.source_crs.clone(), only_kind)?;
            if !mapping.fields.contains_key("kind") && kinds.len() > 1 {
                return Err(NetworkError::PointKind(
                    kinds
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            let path = path.clone();
            let options = ImportOptions {
                layer: Layer::Nodes,
                source_crs: req.options.source_crs.clone(),
                gcj02: req.options.gcj02,
            };
            let (p, r) = tokio::task::spawn_blocking(move || {
                let r = prepare(
                    &path,
                    &mapping,
                    &options,
                    Catalog::builtin(),
                    &mut *progress,
                );
                (progress, r)
            })
            .await?;
            progress = p;
            let r = r?;
            strict_check(req.strict, &r, "point")?;
            Some(r)
        }
    };
    drop(progress);
    let (max_pipe, max_node) = match store {
        Some(s) => max_ids(s).await?,
        None => (0, 0),
    };
    let point_nodes = points.as_ref().map_or(Vec::new(), |r| r.data.nodes.clone());
    let records = std::mem::take(&mut pipes.data.pipelines);
    let built = tokio::task::spawn_blocking(move || {
        snap(records, point_nodes, &snapping, max_pipe, max_node)
    })
    .await??;
    // The mapping's `[owner]`, which `prepare` put with the records.
    let data = Dataset {
        owners: std::mem::take(&mut pipes.data.owners),
        nodes: built.nodes,
        pipelines: built.pipelines,
        ..Default::default()
    };
    let (written, version, commits) = match store {
        Some(s) => {
            let v = s.bulk_load(&data, actor).await?;
            (data.len(), Some(v), 1)
        }
        _ => (0, None, 0),
    };
    Ok(GeometryImport {
        summary: Summary {
            report: pipes,
            written,
            commits,
            resumed_after: 0,
            version,
            job: None,
        },
        points,
        counts: built.counts,
        metric_crs: built.metric_crs,
        report: built.report,
        dry_run: version.is_none(),
    })
}

/// The snapped records, ready to write, and what the snapping found.
struct Snapped {
    nodes: Vec<NetworkNode>,
    pipelines: Vec<Pipeline>,
    counts: TopologyCounts,
    metric_crs: String,
    report: Value,
}

/// Projects the pipes and points to metres, snaps them, and brings the result back to
/// lon/lat records with store ids: records with an id keep it, the others (and new pieces
/// and junctions) are numbered above `max_pipe`, `max_node` and every id given.
fn snap(
    mut records: Vec<Pipeline>,
    mut points: Vec<NetworkNode>,
    snapping: &Snapping,
    max_pipe: i64,
    max_node: i64,
) -> Result<Snapped, NetworkError> {
    let mut next_pipe = records
        .iter()
        .map(|p| p.id)
        .max()
        .unwrap_or(0)
        .max(max_pipe);
    for p in records.iter_mut().filter(|p| p.id <= 0) {
        next_pipe += 1;
        p.id = next_pipe;
    }
    let mut next_node = points.iter().map(|n| n.id).max().unwrap_or(0).max(max_node);
    for n in points.iter_mut().filter(|n| n.id <= 0) {
        next_node += 1;
        n.id = next_node;
    }
    let centre = records
        .iter()
        .filter_map(|p| Bbox::of(&p.geometry))
        .reduce(|a, b| a.union(&b))
        .map(|b| b.center())
        .unwrap_or((106.55, 29.56));
    let crs = MetricCrs::auto(centre.0, centre.1);
    let metric = |g: Geometry<f64>| crs.to_metric(&g).map_err(NetworkError::Crs);
    let mut lines = Vec::with_capacity(records.len());
    for p in &records {
        let Geometry::LineString(l) = metric(Geometry::LineString(p.geometry.clone()))? else {
            unreachable!("a projected line is a line")
        };
        lines.push(LinePipe {
            id: p.id,
            line: l.0.iter().map(|c| [c.x, c.y]).collect(),
        });
    }
    let mut pts = Vec::with_capacity(points.len());
    for n in &points {
        let (x, y) = crs
            .to_metric_xy(n.geometry.x(), n.geometry.y())
            .map_err(NetworkError::Crs)?;
        pts.push(PointNode {
            id: n.id,
            at: [x, y],
            kind: lifeline_trace::service::node_record(n).kind,
        });
    }
    let built = lifeline_trace::from_geometry(&lines, &pts, snapping)?;
    let lonlat = |xy: [f64; 2]| -> Result<Coord<f64>, NetworkError> {
        match crs
            .to_lonlat(&Geometry::Point(Point::new(xy[0], xy[1])))
            .map_err(NetworkError::Crs)?
        {
            Geometry::Point(p) => Ok(p.0),
            _ => unreachable!("a projected point is a point"),
        }
    };

    // Store ids for what the snapping numbered itself.
    let point_ix: HashMap<Id, usize> = points.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let mut node_id: HashMap<Id, i64> = HashMap::new();
    let mut node_at: HashMap<Id, Coord<f64>> = HashMap::new();
    let mut nodes = Vec::with_capacity(built.nodes.len());
    let kind_of_pipe: HashMap<Id, PipeKind> = records.iter().map(|p| (p.id, p.kind)).collect();
    // A junction made from pipe ends takes the kind of the first pipe that ends at it.
    let mut kind_at: HashMap<Id, PipeKind> = HashMap::new();
    for p in &built.pipes {
        if let Some(k) = kind_of_pipe.get(&p.split_from.unwrap_or(p.id)) {
            kind_at.entry(p.from).or_insert(*k);
            kind_at.entry(p.to).or_insert(*k);
        }
    }
    let mut counts = TopologyCounts::default();
    for n in &built.nodes {
        if n.created {
            next_node += 1;
            let at = lonlat(n.at)?;
            node_id.insert(n.id, next_node);
            node_at.insert(n.id, at);
            let kind = kind_at.get(&n.id).copied().unwrap_or(PipeKind::WaterSupply);
            nodes.push(NetworkNode::new(
                next_node,
                kind,
                NodeType::Junction,
                Point(at),
            ));
            counts.junctions_created += 1;
        } else {
            let rec = &points[point_ix[&n.id]];
            node_id.insert(n.id, rec.id);
            node_at.insert(n.id, rec.geometry.0);
            nodes.push(rec.clone());
            counts.nodes_from_points += 1;
        }
    }
    let by_id: HashMap<Id, usize> = records.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let mut pipe_id: HashMap<Id, i64> = HashMap::new();
    let mut pipelines = Vec::with_capacity(built.pipes.len());
    let mut placed = std::collections::HashSet::new();
    for p in &built.pipes {
        let original = p.split_from.unwrap_or(p.id);
        placed.insert(original);
        let rec = &records[by_id[&original]];
        let id = if p.id == original {
            p.id
        } else {
            next_pipe += 1;
            next_pipe
        };
        pipe_id.insert(p.id, id);
        // An unsplit pipe keeps its own vertices, only its ends move onto its nodes; a
        // piece is its projected line brought back.
        let mut line: Vec<Coord<f64>> = if p.split_from.is_none() {
            rec.geometry.0.clone()
        } else {
            p.line
                .iter()
                .map(|&xy| lonlat(xy))
                .collect::<Result<_, _>>()?
        };
        if let Some(first) = line.first_mut() {
            *first = node_at[&p.from];
        }
        if let Some(last) = line.last_mut() {
            *last = node_at[&p.to];
        }
        line.dedup();
        pipelines.push(Pipeline {
            id,
            from_node: Some(node_id[&p.from]),
            to_node: Some(node_id[&p.to]),
            geometry: LineString(line),
            ..rec.clone()
        });
        counts.pipes_joined += 1;
    }
    // Pipes the network left out are still the delivery's pipes: written without ends.
    for rec in records.iter().filter(|r| !placed.contains(&r.id)) {
        pipelines.push(Pipeline {
            from_node: None,
            to_node: None,
            ..rec.clone()
        });
        counts.pipes_without_nodes += 1;
    }
    // Each valve names the pipe it closes, so the stored network needs no guess.
    let valve_pipe: HashMap<Id, Id> = built
        .network
        .valves()
        .iter()
        .map(|v| (v.node, v.pipe))
        .collect();
    // Points keep their ids in the network, so a valve node's id is its network id.
    for n in nodes.iter_mut().filter(|n| n.node_type == NodeType::Valve) {
        if let Some(pipe) = valve_pipe.get(&n.id) {
            n.on_pipe_id = Some(pipe_id[pipe]);
        }
    }
    let r = &built.report;
    counts.pipes_split = r.splits.len();
    counts.dangles = r.dangles.len();
    counts.near_misses = r.near_misses.len();
    counts.crossings = r.crossings.len();
    counts.duplicate_nodes = r.duplicate_nodes.len();
    counts.points_off_pipe = r.points_off_pipe.len();
    counts.misplaced_valves = r.attributes.misplaced_valves.len();
    let point_at: HashMap<i64, Coord<f64>> = points.iter().map(|n| (n.id, n.geometry.0)).collect();
    let report = geojson_report(
        r,
        &|id| node_id.get(&id).copied().unwrap_or(id),
        &|id| pipe_id.get(&id).copied().unwrap_or(id),
        &lonlat,
        &point_at,
        &node_at,
    )?;
    Ok(Snapped {
        nodes,
        pipelines,
        counts,
        metric_crs: crs.code().to_string(),
        report,
    })
}

/// The topology report as GeoJSON (lon/lat): one feature per finding, its `problem` and
/// the store ids it concerns, so an analyst can map them.
fn geojson_report(
    r: &GeometryReport,
    node: &dyn Fn(Id) -> i64,
    pipe: &dyn Fn(Id) -> i64,
    lonlat: &dyn Fn([f64; 2]) -> Result<Coord<f64>, NetworkError>,
    point_at: &HashMap<i64, Coord<f64>>,
    node_at: &HashMap<Id, Coord<f64>>,
) -> Result<Value, NetworkError> {
    let mut features = Vec::new();
    let mut add = |at: Coord<f64>, props: Value| {
        features.push(json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [at.x, at.y]},
            "properties": props,
        }));
    };
    for d in &r.dangles {
        add(
            lonlat(d.at)?,
            json!({"problem": "dangle", "node": node(d.node), "pipe": pipe(d.pipe)}),
        );
    }
    let dangle_at: HashMap<Id, [f64; 2]> = r.dangles.iter().map(|d| (d.node, d.at)).collect();
    for m in &r.near_misses {
        let (near_kind, near_id) = match m.near {
            lifeline_trace::topology::NearTo::Node(n) => ("node", node(n)),
            lifeline_trace::topology::NearTo::Pipe(p) => ("pipe", pipe(p)),
        };
        if let Some(at) = dangle_at.get(&m.node) {
            add(
                lonlat(*at)?,
                json!({"problem": "near_miss", "node": node(m.node), "near": near_kind,
                       "near_id": near_id, "distance_m": m.distance}),
            );
        }
    }
    for c in &r.crossings {
        add(
            lonlat(c.at)?,
            json!({"problem": "crossing_without_node", "pipe": pipe(c.pipes[0]),
                   "other_pipe": pipe(c.pipes[1])}),
        );
    }
    for d in &r.duplicate_nodes {
        if let Some(at) = point_at.get(&d.node) {
            add(
                *at,
                json!({"problem": "duplicate_node", "node": d.node, "kept": d.of,
                       "distance_m": d.distance}),
            );
        }
    }
    for p in &r.points_off_pipe {
        if let Some(at) = point_at.get(p) {
            add(*at, json!({"problem": "point_off_pipe", "node": p}));
        }
    }
    for v in &r.attributes.misplaced_valves {
        if let Some(at) = node_at.get(&v.node) {
            add(
                *at,
                json!({"problem": "misplaced_valve", "node": node(v.node), "degree": v.degree}),
            );
        }
    }
    for s in &r.splits {
        for n in &s.at_nodes {
            if let Some(at) = node_at.get(n) {
                add(
                    *at,
                    json!({"problem": "split", "pipe": pipe(s.pipe), "node": node(*n),
                           "pieces": s.pieces.iter().map(|p| pipe(*p)).collect::<Vec<_>>()}),
                );
            }
        }
    }
    Ok(json!({
        "type": "FeatureCollection",
        "name": "topology_report",
        "features": features,
        "zero_length_pipes": r.zero_length.iter().map(|p| pipe(*p)).collect::<Vec<_>>(),
    }))
}

/// Writes a topology report (GeoJSON) to `path`.
pub fn write_topology_report(report: &Value, path: &Path) -> Result<(), NetworkError> {
    let text = serde_json::to_vec_pretty(report).expect("JSON values always encode");
    std::fs::write(path, text).map_err(|source| NetworkError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// What to import from an EPANET `.inp` file.
#[derive(Debug, Clone)]
pub struct InpRequest {
    pub file: PathBuf,
    /// The network the nodes and pipelines belong to (`--kind`, water supply for EPANET).
    pub kind: PipeKind,
    /// The CRS of `[COORDINATES]` and `[VERTICES]` (`--source-crs`): an `.inp` file
    /// states none, so it is required.
    pub source_crs: Option<String>,
    /// The owner of the pipelines (`--owner-id`), else `owner`'s id.
    pub owner_id: Option<i64>,
    /// An owner written with the network (a mapping's `[owner]`).
    pub owner: Option<Owner>,
    /// A valve layer in WNTR's form: CSV with `link` and `node` columns (a valve on that
    /// link at that end node).
    pub valve_layer: Option<PathBuf>,
    /// A rejected record fails the import.
    pub strict: bool,
}

/// What an `.inp` import wrote, by EPANET element.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InpCounts {
    pub junctions: usize,
    pub reservoirs: usize,
    pub tanks: usize,
    pub pipes: usize,
    pub pumps: usize,
    /// EPANET's control valves (PRV, PSV, …): links that conduct, as in the trace model.
    pub control_valves: usize,
    /// Valve nodes from the valve layer.
    pub layer_valves: usize,
    /// Normally closed valve nodes added for `CLOSED` links without a layer valve.
    pub closed_link_valves: usize,
    /// Short pipelines between a node and a valve drawn on its link (one per valve node).
    pub stubs: usize,
}

/// What an `.inp` import did.
#[derive(Debug)]
pub struct InpImport {
    /// Records read (nodes, then links), accepted and rejected with their reasons, and
    /// what was written.
    pub summary: Summary,
    pub counts: InpCounts,
    /// The file's unit system (diameters were converted to millimetres from it).
    pub units: lifeline_trace::Units,
    /// Store ids by EPANET name: nodes, and links (a link cut by valves: its middle piece).
    pub node_ids: BTreeMap<String, i64>,
    pub link_ids: BTreeMap<String, i64>,
    /// Nothing was written.
    pub dry_run: bool,
}

/// Reads a valve layer (CSV with a header naming `link` and `node`) against the model.
fn read_valve_layer(path: &Path, model: &InpModel) -> Result<Vec<LayerValve>, NetworkError> {
    let text = std::fs::read_to_string(path).map_err(|source| NetworkError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, problem: String| NetworkError::ValveLayer {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h.split(',').map(|c| c.trim().to_lowercase()).collect(),
        None => {
            return Err(bad(
                1,
                "empty file: expected a header with link,node".into(),
            ))
        }
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| bad(1, format!("no `{name}` column in the header")))
    };
    let (link_col, node_col) = (col("link")?, col("node")?);
    let mut out = Vec::new();
    for (i, l) in lines {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let (Some(link), Some(node)) = (f.get(link_col), f.get(node_col)) else {
            return Err(bad(i + 1, format!("expected {} columns", header.len())));
        };
        let Some(lk) = model.links.iter().find(|x| x.name == *link) else {
            return Err(bad(i + 1, format!("link {link:?} is not in the .inp file")));
        };
        if lk.from != *node && lk.to != *node {
            return Err(bad(
                i + 1,
                format!(
                    "node {node:?} is not an end of link {link:?} ({} to {})",
                    lk.from, lk.to
                ),
            ));
        }
        out.push(LayerValve {
            link: link.to_string(),
            node: node.to_string(),
        });
    }
    Ok(out)
}

/// The point `d` metres along `line` from its start, and the index of the vertex before
/// it. `line` is lon/lat; the distance uses the local scale of its first vertex.
fn along(line: &[Coord<f64>], d: f64) -> (Coord<f64>, usize) {
    let (kx, ky) = metres_per_degree(line[0].y);
    let mut left = d;
    for (k, w) in line.windows(2).enumerate() {
        let seg = ((w[1].x - w[0].x) * kx).hypot((w[1].y - w[0].y) * ky);
        if seg >= left && seg > 0.0 {
            let t = left / seg;
            let c = Coord {
                x: w[0].x + t * (w[1].x - w[0].x),
                y: w[0].y + t * (w[1].y - w[0].y),
            };
            return (c, k);
        }
        left -= seg;
    }
    let n = line.len();
    (line[n - 1], n - 2)
}

/// A line's length in metres (local scale).
fn length_m(line: &[Coord<f64>]) -> f64 {
    let (kx, ky) = metres_per_degree(line[0].y);
    line.windows(2)
        .map(|w| ((w[1].x - w[0].x) * kx).hypot((w[1].y - w[0].y) * ky))
        .sum()
}

/// Imports an EPANET file into `store` (see the module documentation); without a store
/// (a dry run), reads and converts it and writes nothing.
pub async fn import_inp(
    store: Option<&dyn Store>,
    req: InpRequest,
    actor: &Actor,
    progress: Progress,
) -> Result<InpImport, NetworkError> {
    let path = req.file.clone();
    let crs = req
        .source_crs
        .clone()
        .ok_or_else(|| NetworkError::InpCrs { path: path.clone() })?;
    let owner_id = req
        .owner_id
        .or(req.owner.as_ref().map(|o| o.id))
        .ok_or_else(|| NetworkError::InpOwner { path: path.clone() })?;
    if let Some(o) = &req.owner {
        o.validate()
            .map_err(|e| ImportError::Mapping(format!("[owner]: {e}")))?;
    }
    let text = std::fs::read_to_string(&path).map_err(|source| NetworkError::Read {
        path: path.clone(),
        source,
    })?;
    let model = InpModel::parse(&text, &crs).map_err(|source| NetworkError::Inp {
        path: path.clone(),
        source,
    })?;
    let layer = match &req.valve_layer {
        Some(p) => read_valve_layer(p, &model)?,
        None => Vec::new(),
    };
    let route = Route::for_crs(&crs);
    route.check().map_err(|source| NetworkError::SourceCrs {
        crs: crs.clone(),
        source,
    })?;
    let (max_pipe, max_node) = match store {
        Some(s) => max_ids(s).await?,
        None => (0, 0),
    };
    let (kind, file) = (req.kind, path.clone());
    let mut built = tokio::task::spawn_blocking(move || {
        InpBuild::new(
            &file, &crs, route, kind, owner_id, max_pipe, max_node, progress,
        )
        .run(&model, &layer)
    })
    .await?;
    if req.strict {
        if let Some(i) = built
            .report
            .issues
            .iter()
            .find(|i| i.outcome == Outcome::Rejected)
        {
            return Err(NetworkError::Strict {
                what: format!("record {}", i.row),
                reason: i.reason.clone(),
            });
        }
    }
    let data = Dataset {
        owners: req.owner.into_iter().collect(),
        nodes: std::mem::take(&mut built.report.data.nodes),
        pipelines: std::mem::take(&mut built.report.data.pipelines),
        ..Default::default()
    };
    let (written, version, commits) = match store {
        Some(s) => (data.len(), Some(s.bulk_load(&data, actor).await?), 1),
        None => (0, None, 0),
    };
    Ok(InpImport {
        summary: Summary {
            report: built.report,
            written,
            commits,
            resumed_after: 0,
            version,
            job: None,
        },
        counts: built.counts,
        units: built.units,
        node_ids: built.node_ids,
        link_ids: built.link_ids,
        dry_run: version.is_none(),
    })
}

/// An `.inp` model being turned into records.
struct InpBuild {
    route: Route,
    kind: PipeKind,
    owner_id: i64,
    next_pipe: i64,
    next_node: i64,
    report: Report,
    counts: InpCounts,
    units: lifeline_trace::Units,
    node_ids: BTreeMap<String, i64>,
    link_ids: BTreeMap<String, i64>,
    progress: Progress,
}

impl InpBuild {
    #[allow(clippy::too_many_arguments)]
    fn new(
        file: &Path,
        crs: &str,
        route: Route,
        kind: PipeKind,
        owner_id: i64,
        max_pipe: i64,
        max_node: i64,
        progress: Progress,
    ) -> Self {
        let operation = route.describe();
        InpBuild {
            route,
            kind,
            owner_id,
            next_pipe: max_pipe,
            next_node: max_node,
            report: Report {
                source: file.display().to_string(),
                source_layer: "EPANET".into(),
                source_crs: Some(crs.to_string()),
                operation,
                layer: Layer::Pipelines,
                read: 0,
                accepted: 0,
                rejected: 0,
                repaired: 0,
                issues: Vec::new(),
                data: Dataset::default(),
            },
            counts: InpCounts::default(),
            units: lifeline_trace::Units::Us,
            node_ids: BTreeMap::new(),
            link_ids: BTreeMap::new(),
            progress,
        }
    }

    fn issue(&mut self, outcome: Outcome, reason: String) {
        match outcome {
            Outcome::Rejected => self.report.rejected += 1,
            Outcome::Repaired => self.report.repaired += 1,
        }
        self.report.issues.push(Issue {
            row: self.report.read,
            fid: None,
            outcome,
            reason,
        });
    }

    fn node(&mut self, n: &lifeline_trace::InpNode) -> Result<(), String> {
        let what = match n.kind {
            InpNodeKind::Junction => "junction",
            InpNodeKind::Reservoir => "reservoir",
            InpNodeKind::Tank => "tank",
        };
        let Some([x, y]) = n.at else {
            return Err(format!(
                "{what} {:?} has no [COORDINATES] entry: it and its links are left out",
                n.name
            ));
        };
        let at = match self.route.apply(&Geometry::Point(Point::new(x, y))) {
            Ok(Geometry::Point(p)) => p,
            Ok(_) => unreachable!("a reprojected point is a point"),
            Err(e) => return Err(format!("{what} {:?}: reprojection failed: {e}", n.name)),
        };
        let (node_type, source_kind) = match n.kind {
            InpNodeKind::Junction => (NodeType::Junction, None),
            InpNodeKind::Reservoir => (NodeType::Source, Some(SourceKind::Reservoir)),
            InpNodeKind::Tank => (NodeType::Source, Some(SourceKind::Tank)),
        };
        let node = NetworkNode {
            code: Some(n.name.clone()),
            source_kind,
            ..NetworkNode::new(self.next_node + 1, self.kind, node_type, at)
        };
        node.validate()
            .map_err(|e| format!("{what} {:?}: {e}", n.name))?;
        self.next_node += 1;
        self.node_ids.insert(n.name.clone(), node.id);
        match n.kind {
            InpNodeKind::Junction => self.counts.junctions += 1,
            InpNodeKind::Reservoir => self.counts.reservoirs += 1,
            InpNodeKind::Tank => self.counts.tanks += 1,
        }
        self.report.data.nodes.push(node);
        Ok(())
    }

    fn link(
        &mut self,
        l: &lifeline_trace::InpLink,
        at: &HashMap<i64, Point<f64>>,
    ) -> Result<(), String> {
        let what = match &l.kind {
            InpLinkKind::Pipe { .. } => "pipe".to_string(),
            InpLinkKind::Pump => "pump".to_string(),
            InpLinkKind::Valve { valve_type } => format!("{valve_type} valve"),
        };
        let end = |name: &str, which: &str| {
            self.node_ids.get(name).copied().ok_or_else(|| {
                format!(
                    "{what} {:?}: its {which} node {name:?} was left out",
                    l.name
                )
            })
        };
        let (from, to) = (end(&l.from, "start")?, end(&l.to, "end")?);
        let raw: Vec<Coord<f64>> = l.vertices.iter().map(|&[x, y]| Coord { x, y }).collect();
        let mut line = vec![at[&from].0];
        if !raw.is_empty() {
            match self.route.apply(&Geometry::LineString(LineString(raw))) {
                Ok(Geometry::LineString(v)) => line.extend(v.0),
                Ok(_) => unreachable!("a reprojected line is a line"),
                Err(e) => return Err(format!("{what} {:?}: reprojection failed: {e}", l.name)),
            }
        }
        line.push(at[&to].0);
        let diameter_mm = match l.diameter {
            Some(d) if d > 0.0 => Some(self.units.diameter_mm(d)),
            _ => None,
        };
        let pipe = Pipeline {
            diameter_mm,
            from_node: Some(from),
            to_node: Some(to),
            ..Pipeline::new(
                self.next_pipe + 1,
                self.kind,
                self.owner_id,
                LineString(line),
            )
        };
        pipe.validate()
            .map_err(|e| format!("{what} {:?}: {e}", l.name))?;
        self.next_pipe += 1;
        self.link_ids.insert(l.name.clone(), pipe.id);
        match &l.kind {
            InpLinkKind::Pipe { .. } => self.counts.pipes += 1,
            InpLinkKind::Pump => self.counts.pumps += 1,
            InpLinkKind::Valve { .. } => self.counts.control_valves += 1,
        }
        self.report.data.pipelines.push(pipe);
        Ok(())
    }

    fn run(mut self, model: &InpModel, layer: &[LayerValve]) -> Self {
        self.units = model.units;
        let total = model.nodes.len() + model.links.len();
        for n in &model.nodes {
            self.report.read += 1;
            match self.node(n) {
                Ok(()) => self.report.accepted += 1,
                Err(reason) => self.issue(Outcome::Rejected, reason),
            }
            if self.report.read.is_multiple_of(1024) {
                (self.progress)(self.report.read, total);
            }
        }
        let at: HashMap<i64, Point<f64>> = self
            .report
            .data
            .nodes
            .iter()
            .map(|n| (n.id, n.geometry))
            .collect();
        for l in &model.links {
            self.report.read += 1;
            match self.link(l, &at) {
                Ok(()) => self.report.accepted += 1,
                Err(reason) => self.issue(Outcome::Rejected, reason),
            }
            if self.report.read.is_multiple_of(1024) {
                (self.progress)(self.report.read, total);
            }
        }
        self.valves(model, layer);
        (self.progress)(total, total);
        self
    }

    /// The valve layer and the closed links as valve nodes, each on a stub of its link
    /// next to its node (see [`InpBuild::cut`]).
    fn valves(&mut self, model: &InpModel, layer: &[LayerValve]) {
        // Per link: (node, closed, from the layer), in layer order as the trace reader
        // reads them: a CLOSED link closes its first layer valve, else gets one of its own
        // at its start node.
        let mut on: BTreeMap<&str, Vec<(&str, bool, bool)>> = BTreeMap::new();
        for v in layer {
            on.entry(v.link.as_str())
                .or_default()
                .push((v.node.as_str(), false, true));
        }
        for l in model
            .links
            .iter()
            .filter(|l| l.status == LinkStatus::Closed)
        {
            match on.get_mut(l.name.as_str()) {
                Some(vs) => vs[0].1 = true,
                None => {
                    on.insert(l.name.as_str(), vec![(l.from.as_str(), true, false)]);
                }
            }
        }
        for l in &model.links {
            let Some(vs) = on.get(l.name.as_str()) else {
                continue;
            };
            let Some(&pipe_id) = self.link_ids.get(&l.name) else {
                self.report.issues.push(Issue {
                    row: 0,
                    fid: None,
                    outcome: Outcome::Rejected,
                    reason: format!(
                        "{} valve(s) on link {:?} left out with their link",
                        vs.len(),
                        l.name
                    ),
                });
                continue;
            };
            let start: Vec<_> = vs.iter().filter(|v| v.0 == l.from).copied().collect();
            let end: Vec<_> = vs.iter().filter(|v| v.0 == l.to).copied().collect();
            for (side, vs) in [(false, start), (true, end)] {
                if let Some(&(node, closed, from_layer)) = vs.first() {
                    self.cut(pipe_id, side, &l.name, node, closed);
                    if from_layer {
                        self.counts.layer_valves += 1;
                    } else {
                        self.counts.closed_link_valves += 1;
                    }
                }
            }
        }
    }

    /// Cuts the pipeline `pipe_id` a metre (at most a tenth of its length) from its start
    /// (`at_end` false) or end, puts a valve node there acting on the pipeline (which
    /// keeps its id and its link's name), and joins the node to the valve by a stub with
    /// the pipeline's attributes. Closing the valve separates the link from the node, as
    /// a valve on that link at that node does in the trace model.
    fn cut(&mut self, pipe_id: i64, at_end: bool, link: &str, node: &str, closed: bool) {
        let pipes = &mut self.report.data.pipelines;
        let Some(ix) = pipes.iter().position(|p| p.id == pipe_id) else {
            return;
        };
        let mut line = pipes[ix].geometry.0.clone();
        if at_end {
            line.reverse();
        }
        let d = STUB_M.min(length_m(&line) / 10.0);
        let (c, k) = along(&line, d);
        let mut stub: Vec<Coord<f64>> = line[..=k].to_vec();
        stub.push(c);
        let mut rest = vec![c];
        rest.extend_from_slice(&line[k + 1..]);
        rest.dedup();
        stub.dedup();
        if at_end {
            stub.reverse();
            rest.reverse();
        }
        self.next_node += 1;
        self.next_pipe += 1;
        let valve = NetworkNode {
            code: Some(format!("{link}@{node}")),
            valve_position: closed.then_some(ValvePosition::Closed),
            valve_condition: Some(ValveCondition::Operable),
            on_pipe_id: Some(pipe_id),
            ..NetworkNode::new(self.next_node, self.kind, NodeType::Valve, Point(c))
        };
        let p = &mut pipes[ix];
        let node_id = if at_end { p.to_node } else { p.from_node };
        let stub = Pipeline {
            id: self.next_pipe,
            from_node: if at_end { Some(valve.id) } else { node_id },
            to_node: if at_end { node_id } else { Some(valve.id) },
            geometry: LineString(stub),
            ..p.clone()
        };
        if at_end {
            p.to_node = Some(valve.id);
        } else {
            p.from_node = Some(valve.id);
        }
        p.geometry = LineString(rest);
        pipes.push(stub);
        self.report.data.nodes.push(valve);
        self.counts.stubs += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stub_is_a_metre_along_the_line_or_a_tenth_of_it() {
        // 0.001° of latitude is about 110.6 m.
        let line = [
            Coord { x: 106.5, y: 29.5 },
            Coord {
                x: 106.5,
                y: 29.501,
            },
        ];
        let (c, k) = along(&line, 1.0);
        assert_eq!(k, 0);
        assert!(((c.y - 29.5) * 110_574.0 - 1.0).abs() < 1e-9);
        assert!((length_m(&line) - 110.574).abs() < 1e-9);
        // Past the first segment of a bent line.
        let bent = [
            line[0],
            line[1],
            Coord {
                x: 106.501,
                y: 29.501,
            },
        ];
        let (c, k) = along(&bent, 120.0);
        assert_eq!(k, 1);
        assert!(c.x > 106.5 && c.y == 29.501);
    }

    #[test]
    fn a_valve_layer_names_what_is_wrong_and_where() {
        let model = InpModel::parse(
            "[JUNCTIONS]\nJ1\nJ2\nJ3\n[PIPES]\nP1 J1 J2 1 1 1\n",
            "EPSG:4545",
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("lifeline-valves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let layer = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            read_valve_layer(&p, &model).map_err(|e| e.to_string())
        };
        let ok = layer("ok.csv", "valve,link,node\n0,P1,J2\n").unwrap();
        assert_eq!(
            ok,
            [LayerValve {
                link: "P1".into(),
                node: "J2".into()
            }]
        );
        let e = layer("nolink.csv", "valve,node\n0,J1\n").unwrap_err();
        assert!(e.ends_with("line 1: no `link` column in the header"), "{e}");
        let e = layer("unknown.csv", "link,node\nP1,J1\nP9,J1\n").unwrap_err();
        assert!(
            e.ends_with("line 3: link \"P9\" is not in the .inp file"),
            "{e}"
        );
        let e = layer("notend.csv", "link,node\nP1,J3\n").unwrap_err();
        assert!(
            e.contains("node \"J3\" is not an end of link \"P1\""),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

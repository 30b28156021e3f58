//! `lifeline import` when it builds the network's topology: `--topology geometry` (snap
//! geometry-only pipes, with an optional point layer) and EPANET `.inp` files. Both run
//! through [`lifeline::io::network`] with an indicatif bar, write the topology report when
//! asked, and print the issues and a summary of what was read, written and rejected.

use super::{open_store, progress_bar, ImportArgs, Output, SHOWN};
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::import::{Issue, Mapping, Report};
use lifeline::io::network::{self, GeometryOptions, InpCounts, InpRequest, TopologyCounts};
use lifeline::io::service::{self, ImportRequest};
use lifeline::model::Actor;
use std::fmt;
use std::path::Path;
use std::time::Instant;

/// The first issues, and how many more `--report` holds.
fn issues(f: &mut fmt::Formatter<'_>, all: &[&Issue]) -> fmt::Result {
    for i in all.iter().take(SHOWN) {
        writeln!(
            f,
            "row {:>6}{}: {:?}: {}",
            i.row,
            i.fid.map(|f| format!(" (fid {f})")).unwrap_or_default(),
            i.outcome,
            i.reason
        )?;
    }
    if all.len() > SHOWN {
        writeln!(
            f,
            "... {} more issues (use --report FILE for all)",
            all.len() - SHOWN
        )?;
    }
    Ok(())
}

fn read_line(f: &mut fmt::Formatter<'_>, what: &str, r: &Report) -> fmt::Result {
    writeln!(
        f,
        "{what} {}: read {} rows from layer '{}' ({}; {}), accepted {}, repaired {}, rejected {}",
        r.source,
        r.read,
        r.source_layer,
        r.source_crs.as_deref().unwrap_or("?"),
        r.operation,
        r.accepted,
        r.repaired,
        r.rejected
    )
}

/// What `import --topology geometry` prints.
#[derive(serde::Serialize)]
struct Snapped<'a> {
    pipes: &'a Report,
    points: Option<&'a Report>,
    /// The projected CRS the snapping measured in.
    metric_crs: &'a str,
    snap_m: f64,
    topology: &'a TopologyCounts,
    topology_report: Option<&'a Path>,
    written: usize,
    version: Option<i64>,
    dry_run: bool,
    seconds: f64,
}

impl fmt::Display for Snapped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut all: Vec<&Issue> = self.pipes.issues.iter().collect();
        if let Some(p) = self.points {
            all.extend(&p.issues);
        }
        issues(f, &all)?;
        read_line(f, "pipes", self.pipes)?;
        if let Some(p) = self.points {
            read_line(f, "points", p)?;
        }
        let t = self.topology;
        writeln!(
            f,
            "topology (snapped within {} m in {}): {} pipes joined ({} split), {} without end \
             nodes; {} nodes from points, {} junctions made; {} dangles, {} near-misses, {} \
             crossings without a node, {} duplicate points, {} points on no pipe, {} misplaced \
             valves{}",
            self.snap_m,
            self.metric_crs,
            t.pipes_joined,
            t.pipes_split,
            t.pipes_without_nodes,
            t.nodes_from_points,
            t.junctions_created,
            t.dangles,
            t.near_misses,
            t.crossings,
            t.duplicate_nodes,
            t.points_off_pipe,
            t.misplaced_valves,
            match self.topology_report {
                Some(p) => format!(" (report: {})", p.display()),
                None => " (--topology-report FILE maps them)".into(),
            }
        )?;
        if self.dry_run {
            write!(f, "dry run: nothing written")
        } else {
            write!(
                f,
                "wrote {} records (nodes and pipelines) in one transaction (version {}) in {:.1} s",
                self.written,
                self.version.unwrap_or(0),
                self.seconds
            )
        }
    }
}

/// `lifeline import FILE --topology geometry …`.
pub async fn run_geometry(
    store_args: &StoreArgs,
    a: &ImportArgs,
    request: ImportRequest,
    out: Output,
) -> Result<()> {
    let opts = GeometryOptions {
        snap_m: a.snap_m,
        tees: !a.no_tees,
        points: a.points.clone(),
    };
    let started = Instant::now();
    let (bar, progress) = progress_bar(out, "importing");
    let done = if a.dry_run {
        network::import_geometry(None, request, opts, &Actor::cli(), progress).await
    } else {
        let (store, _) = open_store(store_args).await?;
        network::import_geometry(Some(store.as_ref()), request, opts, &Actor::cli(), progress).await
    };
    bar.finish_and_clear();
    let done = done?;
    if let Some(p) = &a.report {
        service::write_report(&done.summary.report, p)?;
    }
    if let Some(p) = &a.topology_report {
        network::write_topology_report(&done.report, p)?;
    }
    out.result(&Snapped {
        pipes: &done.summary.report,
        points: done.points.as_ref(),
        metric_crs: &done.metric_crs,
        snap_m: a.snap_m,
        topology: &done.counts,
        topology_report: a.topology_report.as_deref(),
        written: done.summary.written,
        version: done.summary.version,
        dry_run: done.dry_run,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What importing an `.inp` file prints.
#[derive(serde::Serialize)]
struct Epanet<'a> {
    #[serde(flatten)]
    report: &'a Report,
    units: lifeline::trace::Units,
    written_by_element: &'a InpCounts,
    written: usize,
    version: Option<i64>,
    dry_run: bool,
    seconds: f64,
}

impl fmt::Display for Epanet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&Issue> = self.report.issues.iter().collect();
        issues(f, &all)?;
        read_line(f, "EPANET", self.report)?;
        let c = self.written_by_element;
        writeln!(
            f,
            "{} junctions, {} reservoirs, {} tanks as nodes; {} pipes, {} pumps, {} control \
             valves as pipelines (diameters from {}); {} valves from the valve layer and {} \
             for closed links as valve nodes, each on a stub",
            c.junctions,
            c.reservoirs,
            c.tanks,
            c.pipes,
            c.pumps,
            c.control_valves,
            match self.units {
                lifeline::trace::Units::Us => "inches",
                lifeline::trace::Units::Si => "millimetres",
            },
            c.layer_valves,
            c.closed_link_valves
        )?;
        if self.dry_run {
            write!(f, "dry run: nothing written")
        } else {
            write!(
                f,
                "wrote {} records (nodes and pipelines) in one transaction (version {}) in {:.1} s",
                self.written,
                self.version.unwrap_or(0),
                self.seconds
            )
        }
    }
}

/// `lifeline import NET.inp --kind water --source-crs … [--owner-id N]`.
pub async fn run_inp(
    store_args: &StoreArgs,
    a: &ImportArgs,
    mapping: Option<Mapping>,
    out: Output,
) -> Result<()> {
    if a.topology.is_some() || a.points.is_some() {
        anyhow::bail!(
            "an .inp file names its links' end nodes: --topology and --points do not apply"
        );
    }
    // Before the store is opened (and a GeoPackage created): the file cannot be placed.
    if a.s_srs.is_none() {
        return Err(network::NetworkError::InpCrs {
            path: a.file.clone(),
        }
        .into());
    }
    let Some(kind) = a.kind else {
        anyhow::bail!(
            "{}: give --kind (the network of the file's nodes and pipelines, e.g. --kind water)",
            a.file.display()
        );
    };
    let request = InpRequest {
        file: a.file.clone(),
        kind,
        source_crs: a.s_srs.clone(),
        owner_id: a.owner_id,
        owner: mapping.and_then(|m| m.owner),
        valve_layer: a.valve_layer.clone(),
        strict: a.strict,
    };
    let started = Instant::now();
    let (bar, progress) = progress_bar(out, "importing");
    let done = if a.dry_run {
        network::import_inp(None, request, &Actor::cli(), progress).await
    } else {
        let (store, _) = open_store(store_args).await?;
        network::import_inp(Some(store.as_ref()), request, &Actor::cli(), progress).await
    };
    bar.finish_and_clear();
    let done = done?;
    if let Some(p) = &a.report {
        service::write_report(&done.summary.report, p)?;
    }
    out.result(&Epanet {
        report: &done.summary.report,
        units: done.units,
        written_by_element: &done.counts,
        written: done.summary.written,
        version: done.summary.version,
        dry_run: done.dry_run,
        seconds: started.elapsed().as_secs_f64(),
    })
}

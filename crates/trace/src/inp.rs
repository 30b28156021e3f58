//! EPANET `.inp` files (issue 15), the format of water utilities' hydraulic models: it owns
//! reading the sections a trace needs from the text, and mapping EPANET's links onto the
//! trace model. No I/O: the caller reads the file and hands in its text.
//!
//! Read: `[JUNCTIONS]`, `[RESERVOIRS]`, `[TANKS]`, `[PIPES]` (status `OPEN`, `CLOSED` or
//! `CV`), `[PUMPS]`, `[VALVES]` (EPANET's control valves: PRV, PSV, PBV, FCV, TCV, GPV, PCV),
//! `[STATUS]`, `[COORDINATES]`, `[VERTICES]` and the flow units of `[OPTIONS]`. Every other
//! section is skipped. Of the hydraulic values only a link's length and diameter are kept
//! (as written, in the file's units: [`InpModel::units`] says which), for the importer to
//! store the diameter; curves, demands and the rest are not read, as no trace uses them.
//! Sections may come in any order, as EPANET allows. Names are case-sensitive, as in EPANET.
//! An error names the line number and the section.
//!
//! Coordinates are returned raw, in the file's units, with the source CRS the caller gives
//! (an `.inp` file states none); the importer reprojects them later.
//!
//! **Why not the `epanet-rs` crate** (0.2.3, MIT or Apache-2.0, edition 2024; a release
//! newer than the 0.2.2 first looked at appeared meanwhile, so it is maintained): it is a
//! hydraulic solver, and its reader takes a file path (I/O in a crate that has none) and
//! builds the solver's model. Its library pulls `faer` (dense and sparse linear algebra),
//! `rayon`, `clap`, `simplelog`, `time`, `rmp-serde`, `hashbrown` and `strum`, none of them
//! optional, to read nine sections of whitespace-separated text; its parse errors name
//! neither the line nor the section. A small section reader is less to carry.
//!
//! **Mapping to the trace model** ([`InpModel::network`]): every node is a node; reservoirs
//! and tanks are sources, junctions are junctions. Every link is a pipe: pumps and control
//! valves conduct (a trace asks what is joined, not which way water flows; a check valve
//! conducts too). A link whose status is `CLOSED` is a barrier: it gets a normally closed
//! valve at its start node (or, when the valve layer already has a valve on that link, the
//! first such valve becomes normally closed). Ids are positions: nodes numbered 0, 1, … in
//! the order junctions, reservoirs, tanks, each in file order; links likewise in the order
//! pipes, pumps, valves. [`InpNetwork`] keeps the names for each id.

use crate::{Id, Network, Node, NodeRole, Pipe, Position, TraceError, Valve};
use serde::Serialize;
use std::collections::HashMap;

/// A point as written in the file, in the caller's source CRS.
pub type RawXy = [f64; 2];

/// What an EPANET node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InpNodeKind {
    Junction,
    Reservoir,
    Tank,
}

/// A node of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InpNode {
    pub name: String,
    pub kind: InpNodeKind,
    /// From `[COORDINATES]`, if listed.
    pub at: Option<RawXy>,
}

/// What an EPANET link is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InpLinkKind {
    /// A pipe; `check_valve` when its status is `CV` (flow one way only).
    Pipe {
        check_valve: bool,
    },
    Pump,
    /// A control valve, with its EPANET type (PRV, PSV, PBV, FCV, TCV, GPV or PCV).
    Valve {
        valve_type: String,
    },
}

/// A link's initial status, from its own line or `[STATUS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    Open,
    Closed,
    /// A control valve that regulates (EPANET's default for valves).
    Active,
}

/// A link of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InpLink {
    pub name: String,
    pub kind: InpLinkKind,
    pub from: String,
    pub to: String,
    pub status: LinkStatus,
    /// From `[VERTICES]`, in order, between its end nodes.
    pub vertices: Vec<RawXy>,
    /// A pipe's length as written (feet or metres, see [`Units`]); none for pumps and
    /// valves.
    pub length: Option<f64>,
    /// A pipe's or valve's diameter as written (inches or millimetres, see [`Units`]);
    /// none for pumps.
    pub diameter: Option<f64>,
}

/// The unit system of a file, from the flow units of `[OPTIONS] Units`: CFS, GPM (the
/// default), MGD, IMGD and AFD are US customary (lengths in feet, diameters in inches);
/// LPS, LPM, MLD, CMH and CMD are SI (metres, millimetres).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    Us,
    Si,
}

impl Units {
    /// A diameter as written in the file, in millimetres.
    pub fn diameter_mm(self, d: f64) -> f64 {
        match self {
            Units::Us => d * 25.4,
            Units::Si => d,
        }
    }

    /// A length as written in the file, in metres.
    pub fn length_m(self, l: f64) -> f64 {
        match self {
            Units::Us => l * 0.3048,
            Units::Si => l,
        }
    }
}

/// The topology of an `.inp` file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InpModel {
    /// The source CRS the caller gave, untouched.
    pub crs: String,
    /// Junctions, reservoirs, tanks, each in file order.
    pub nodes: Vec<InpNode>,
    /// Pipes, pumps, valves, each in file order.
    pub links: Vec<InpLink>,
    /// The unit system of lengths and diameters (`[OPTIONS] Units`).
    pub units: Units,
}

/// Why an `.inp` text cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, [{section}]: {problem}")]
pub struct InpError {
    /// 1-based.
    pub line: usize,
    /// The section the line is in (empty before the first section).
    pub section: String,
    pub problem: InpProblem,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InpProblem {
    #[error("data before the first [SECTION]")]
    OutsideSection,
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{field} {value:?} is not a number")]
    NotANumber { field: &'static str, value: String },
    #[error("{what} {name:?} is defined twice")]
    Duplicate { what: &'static str, name: String },
    #[error("node {0:?} is not defined")]
    UnknownNode(String),
    #[error("link {0:?} is not defined")]
    UnknownLink(String),
    #[error("status {0:?} is not OPEN, CLOSED or CV")]
    PipeStatus(String),
    #[error("valve type {0:?} is not one of PRV, PSV, PBV, FCV, TCV, GPV, PCV")]
    ValveType(String),
    #[error("flow units {0:?} are not one of CFS, GPM, MGD, IMGD, AFD, LPS, LPM, MLD, CMH, CMD")]
    Units(String),
}

/// A valve of a valve layer on an `.inp` network (WNTR's form): on `link`, at its end `node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerValve {
    pub link: String,
    pub node: String,
}

/// Why a trace network cannot be built from a model and a valve layer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InpNetworkError {
    #[error("valve layer entry {index}: link {name:?} is not in the model")]
    UnknownLink { index: usize, name: String },
    #[error("valve layer entry {index}: node {name:?} is not in the model")]
    UnknownNode { index: usize, name: String },
    #[error("link {link:?} ends at node {node:?}, which is not in the model")]
    LinkEnd { link: String, node: String },
    #[error(transparent)]
    Network(#[from] TraceError),
}

/// A trace network built from an `.inp` model, with the name behind each id.
#[derive(Debug, Clone)]
pub struct InpNetwork {
    pub network: Network,
    /// Node names by id (the id is the position).
    pub node_names: Vec<String>,
    /// Link names by id (pipe id is the position).
    pub link_names: Vec<String>,
    /// Valve ids 0.. are the layer's entries in order; the ones after are the closed
    /// valves added for `CLOSED` links, named by their link.
    pub added_closed_valves: Vec<String>,
}

/// The sections read, in the order they are processed (nodes before the links that name
/// them, links before `[STATUS]` and `[VERTICES]`).
const SECTIONS: [&str; 10] = [
    "OPTIONS",
    "JUNCTIONS",
    "RESERVOIRS",
    "TANKS",
    "PIPES",
    "PUMPS",
    "VALVES",
    "STATUS",
    "COORDINATES",
    "VERTICES",
];

const VALVE_TYPES: [&str; 7] = ["PRV", "PSV", "PBV", "FCV", "TCV", "GPV", "PCV"];

/// A data line: its number, section and fields.
struct Line<'a> {
    number: usize,
    section: &'static str,
    fields: Vec<&'a str>,
}

impl Line<'_> {
    fn error(&self, problem: InpProblem) -> InpError {
        InpError {
            line: self.number,
            section: self.section.to_string(),
            problem,
        }
    }

    fn field(&self, i: usize, what: &'static str) -> Result<&str, InpError> {
        self.fields
            .get(i)
            .copied()
            .ok_or_else(|| self.error(InpProblem::Missing(what)))
    }

    fn number(&self, i: usize, what: &'static str) -> Result<f64, InpError> {
        let s = self.field(i, what)?;
        s.parse::<f64>().map_err(|_| {
            self.error(InpProblem::NotANumber {
                field: what,
                value: s.to_string(),
            })
        })
    }
}

impl InpModel {
    /// Reads the topology of an `.inp` text; `crs` is the source CRS of its coordinates,
    /// kept as given.
    pub fn parse(text: &str, crs: &str) -> Result<InpModel, InpError> {
        let mut by_section: HashMap<&'static str, Vec<Line>> = HashMap::new();
        // `None` before the first section; `Some(None)` in a section that is skipped.
        let mut current: Option<Option<&'static str>> = None;
        let mut current_name = String::new();
        for (i, raw) in text.lines().enumerate() {
            let content = raw.split(';').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            if let Some(rest) = content.strip_prefix('[') {
                let name = rest.split(']').next().unwrap_or("").trim().to_uppercase();
                current = Some(SECTIONS.iter().copied().find(|s| *s == name));
                current_name = name;
                continue;
            }
            match current {
                None => {
                    return Err(InpError {
                        line: i + 1,
                        section: current_name,
                        problem: InpProblem::OutsideSection,
                    })
                }
                Some(None) => {}
                Some(Some(section)) => by_section.entry(section).or_default().push(Line {
                    number: i + 1,
                    section,
                    fields: content.split_whitespace().collect(),
                }),
            }
        }
        let lines = |s: &str| by_section.get(s).map_or(&[][..], Vec::as_slice);

        let mut units = Units::Us;
        for l in lines("OPTIONS") {
            if !l.field(0, "option")?.eq_ignore_ascii_case("UNITS") {
                continue;
            }
            let u = l.field(1, "flow units")?.to_uppercase();
            units = match u.as_str() {
                "CFS" | "GPM" | "MGD" | "IMGD" | "AFD" => Units::Us,
                "LPS" | "LPM" | "MLD" | "CMH" | "CMD" => Units::Si,
                _ => return Err(l.error(InpProblem::Units(u))),
            };
        }

        let mut nodes: Vec<InpNode> = Vec::new();
        let mut node_ix: HashMap<String, usize> = HashMap::new();
        for (section, kind) in [
            ("JUNCTIONS", InpNodeKind::Junction),
            ("RESERVOIRS", InpNodeKind::Reservoir),
            ("TANKS", InpNodeKind::Tank),
        ] {
            for l in lines(section) {
                let name = l.field(0, "node name")?;
                if node_ix.insert(name.to_string(), nodes.len()).is_some() {
                    return Err(l.error(InpProblem::Duplicate {
                        what: "node",
                        name: name.to_string(),
                    }));
                }
                nodes.push(InpNode {
                    name: name.to_string(),
                    kind,
                    at: None,
                });
            }
        }

        let mut links: Vec<InpLink> = Vec::new();
        let mut link_ix: HashMap<String, usize> = HashMap::new();
        for section in ["PIPES", "PUMPS", "VALVES"] {
            for l in lines(section) {
                let name = l.field(0, "link name")?;
                let end = |i: usize, what: &'static str| -> Result<String, InpError> {
                    let n = l.field(i, what)?;
                    if node_ix.contains_key(n) {
                        Ok(n.to_string())
                    } else {
                        Err(l.error(InpProblem::UnknownNode(n.to_string())))
                    }
                };
                let (from, to) = (end(1, "start node")?, end(2, "end node")?);
                let (mut length, mut diameter) = (None, None);
                let (kind, status) = match section {
                    "PIPES" => {
                        length = Some(l.number(3, "length")?);
                        diameter = Some(l.number(4, "diameter")?);
                        // Length, diameter, roughness, minor loss, then the status.
                        // The minor loss may be left out, so the status can come 7th.
                        let status = match (l.fields.get(7), l.fields.get(6)) {
                            (Some(s), _) => *s,
                            (None, Some(s)) if s.parse::<f64>().is_err() => *s,
                            _ => "OPEN",
                        };
                        match status.to_uppercase().as_str() {
                            "OPEN" => (InpLinkKind::Pipe { check_valve: false }, LinkStatus::Open),
                            "CLOSED" => {
                                (InpLinkKind::Pipe { check_valve: false }, LinkStatus::Closed)
                            }
                            "CV" => (InpLinkKind::Pipe { check_valve: true }, LinkStatus::Open),
                            _ => return Err(l.error(InpProblem::PipeStatus(status.to_string()))),
                        }
                    }
                    "PUMPS" => (InpLinkKind::Pump, LinkStatus::Open),
                    _ => {
                        diameter = Some(l.number(3, "valve diameter")?);
                        let t = l.field(4, "valve type")?.to_uppercase();
                        if !VALVE_TYPES.contains(&t.as_str()) {
                            return Err(l.error(InpProblem::ValveType(t)));
                        }
                        (InpLinkKind::Valve { valve_type: t }, LinkStatus::Active)
                    }
                };
                if link_ix.insert(name.to_string(), links.len()).is_some() {
                    return Err(l.error(InpProblem::Duplicate {
                        what: "link",
                        name: name.to_string(),
                    }));
                }
                links.push(InpLink {
                    name: name.to_string(),
                    kind,
                    from,
                    to,
                    status,
                    vertices: Vec::new(),
                    length,
                    diameter,
                });
            }
        }

        for l in lines("STATUS") {
            let link = link_of(l, &link_ix)?;
            // A number is a pump speed or a valve setting: the link stays as it is.
            let status = match l.field(1, "status")?.to_uppercase().as_str() {
                "OPEN" => LinkStatus::Open,
                "CLOSED" => LinkStatus::Closed,
                "ACTIVE" => LinkStatus::Active,
                _ => continue,
            };
            links[link].status = status;
        }
        for l in lines("COORDINATES") {
            let name = l.field(0, "node name")?;
            let n = *node_ix
                .get(name)
                .ok_or_else(|| l.error(InpProblem::UnknownNode(name.to_string())))?;
            nodes[n].at = Some([l.number(1, "x")?, l.number(2, "y")?]);
        }
        for l in lines("VERTICES") {
            let link = link_of(l, &link_ix)?;
            let xy = [l.number(1, "x")?, l.number(2, "y")?];
            links[link].vertices.push(xy);
        }
        Ok(InpModel {
            crs: crs.to_string(),
            nodes,
            links,
            units,
        })
    }

    /// The trace network of this model with a valve layer, as the module documentation
    /// maps it.
    pub fn network(&self, layer: &[LayerValve]) -> Result<InpNetwork, InpNetworkError> {
        let node_id: HashMap<&str, Id> = self
            .nodes
            .iter()
            .zip(0..)
            .map(|(n, i)| (n.name.as_str(), i))
            .collect();
        let link_id: HashMap<&str, Id> = self
            .links
            .iter()
            .zip(0..)
            .map(|(l, i)| (l.name.as_str(), i))
            .collect();
        let nodes = self
            .nodes
            .iter()
            .zip(0..)
            .map(|(n, id)| Node {
                id,
                role: match n.kind {
                    InpNodeKind::Junction => NodeRole::Junction,
                    InpNodeKind::Reservoir | InpNodeKind::Tank => NodeRole::Source,
                },
            })
            .collect();
        // `parse` checks link ends, but the fields are public: check again, without panics.
        let end = |l: &InpLink, name: &str| {
            node_id
                .get(name)
                .copied()
                .ok_or_else(|| InpNetworkError::LinkEnd {
                    link: l.name.clone(),
                    node: name.to_string(),
                })
        };
        let pipes = self
            .links
            .iter()
            .zip(0..)
            .map(|(l, id)| {
                Ok(Pipe {
                    id,
                    from: end(l, &l.from)?,
                    to: end(l, &l.to)?,
                })
            })
            .collect::<Result<Vec<_>, InpNetworkError>>()?;
        let mut valves = Vec::with_capacity(layer.len());
        for (index, v) in layer.iter().enumerate() {
            let pipe =
                *link_id
                    .get(v.link.as_str())
                    .ok_or_else(|| InpNetworkError::UnknownLink {
                        index,
                        name: v.link.clone(),
                    })?;
            let node =
                *node_id
                    .get(v.node.as_str())
                    .ok_or_else(|| InpNetworkError::UnknownNode {
                        index,
                        name: v.node.clone(),
                    })?;
            valves.push(Valve {
                id: valves.len() as Id,
                pipe,
                node,
                position: Position::Open,
                operable: true,
            });
        }
        let mut added_closed_valves = Vec::new();
        for (l, pipe) in self.links.iter().zip(0..) {
            if l.status != LinkStatus::Closed {
                continue;
            }
            if let Some(v) = valves.iter_mut().find(|v| v.pipe == pipe) {
                v.position = Position::Closed;
                continue;
            }
            valves.push(Valve {
                id: valves.len() as Id,
                pipe,
                node: end(l, &l.from)?,
                position: Position::Closed,
                operable: true,
            });
            added_closed_valves.push(l.name.clone());
        }
        Ok(InpNetwork {
            network: Network::new(nodes, pipes, valves)?,
            node_names: self.nodes.iter().map(|n| n.name.clone()).collect(),
            link_names: self.links.iter().map(|l| l.name.clone()).collect(),
            added_closed_valves,
        })
    }
}

fn link_of(l: &Line, link_ix: &HashMap<String, usize>) -> Result<usize, InpError> {
    let name = l.field(0, "link name")?;
    link_ix
        .get(name)
        .copied()
        .ok_or_else(|| l.error(InpProblem::UnknownLink(name.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "\
[TITLE]
a small net ; with a comment
[JUNCTIONS]
;ID elev demand
 J1  10  1
 J2  10  1 ; trailing comment
[RESERVOIRS]
 R1  50
[TANKS]
 T1  40 1 0 5 10 0
[PIPES]
 P1  R1 J1 100 300 100 0 Open
 P2  J1 J2 100 300 100 0 CLOSED
 P3  J2 T1 100 300 100 0 CV
 P4  J1 T1 100 300 100 0
[PUMPS]
 U1  J1 J2 HEAD 1
[VALVES]
 V1  J2 T1 300 prv 40 0
[STATUS]
 U1  Closed
 V1  0.5
[COORDINATES]
 J1  1.5 2.5
 T1  -3 4e2
[VERTICES]
 P4  7 8
 P4  9 10
[END]
";

    #[test]
    fn reads_nodes_links_status_and_coordinates() {
        let m = InpModel::parse(SMALL, "EPSG:3089").unwrap();
        assert_eq!(m.crs, "EPSG:3089");
        let names: Vec<(&str, InpNodeKind)> =
            m.nodes.iter().map(|n| (n.name.as_str(), n.kind)).collect();
        assert_eq!(
            names,
            [
                ("J1", InpNodeKind::Junction),
                ("J2", InpNodeKind::Junction),
                ("R1", InpNodeKind::Reservoir),
                ("T1", InpNodeKind::Tank)
            ]
        );
        assert_eq!(m.nodes[0].at, Some([1.5, 2.5]));
        assert_eq!(m.nodes[3].at, Some([-3.0, 400.0]));
        assert_eq!(m.nodes[1].at, None);
        let links: Vec<(&str, &str, &str, LinkStatus)> = m
            .links
            .iter()
            .map(|l| (l.name.as_str(), l.from.as_str(), l.to.as_str(), l.status))
            .collect();
        assert_eq!(
            links,
            [
                ("P1", "R1", "J1", LinkStatus::Open),
                ("P2", "J1", "J2", LinkStatus::Closed),
                ("P3", "J2", "T1", LinkStatus::Open),
                ("P4", "J1", "T1", LinkStatus::Open),
                ("U1", "J1", "J2", LinkStatus::Closed),
                ("V1", "J2", "T1", LinkStatus::Active),
            ]
        );
        assert_eq!(m.links[2].kind, InpLinkKind::Pipe { check_valve: true });
        assert_eq!(
            m.links[5].kind,
            InpLinkKind::Valve {
                valve_type: "PRV".into()
            }
        );
        assert_eq!(m.links[3].vertices, [[7.0, 8.0], [9.0, 10.0]]);
    }

    #[test]
    fn lengths_and_diameters_in_the_units_of_the_file() {
        let m = InpModel::parse(SMALL, "").unwrap();
        // No [OPTIONS]: EPANET's default flow units are GPM, so inches and feet.
        assert_eq!(m.units, Units::Us);
        assert_eq!(
            (m.links[0].length, m.links[0].diameter),
            (Some(100.0), Some(300.0))
        );
        assert_eq!(m.links[4].diameter, None, "a pump has no diameter");
        assert_eq!(m.links[5].diameter, Some(300.0), "a valve has one");
        assert!((Units::Us.diameter_mm(12.0) - 304.8).abs() < 1e-9);
        assert!((Units::Us.length_m(100.0) - 30.48).abs() < 1e-12);
        let si = format!("[OPTIONS]\n Units  lps\n Headloss D-W\n{SMALL}");
        let m = InpModel::parse(&si, "").unwrap();
        assert_eq!(m.units, Units::Si);
        assert_eq!(Units::Si.diameter_mm(300.0), 300.0);
        let e = InpModel::parse("[OPTIONS]\nUNITS furlongs\n", "").unwrap_err();
        assert_eq!((e.line, e.section.as_str()), (2, "OPTIONS"));
        assert_eq!(e.problem, InpProblem::Units("FURLONGS".into()));
    }

    #[test]
    fn closed_links_are_barriers() {
        let m = InpModel::parse(SMALL, "").unwrap();
        let layer = [LayerValve {
            link: "U1".into(),
            node: "J2".into(),
        }];
        let n = m.network(&layer).unwrap();
        // U1 (closed, with a layer valve) makes that valve closed; P2 gets a closed valve.
        assert_eq!(n.added_closed_valves, ["P2"]);
        let v = n.network.valves();
        assert_eq!(v[0].position, Position::Closed);
        assert_eq!(
            (v[1].pipe, v[1].node, v[1].position),
            (1, 0, Position::Closed)
        );
        // J2 is still fed through the check valve and the control valve from T1.
        assert!(n.network.islands_without_source().is_empty());
    }

    #[test]
    fn errors_name_the_line_and_section() {
        let err = |text: &str| InpModel::parse(text, "").unwrap_err();
        let e = err("[JUNCTIONS]\nJ1 1\n[PIPES]\nP1 J1 J9 1 1 1 0\n");
        assert_eq!((e.line, e.section.as_str()), (4, "PIPES"));
        assert_eq!(e.problem, InpProblem::UnknownNode("J9".into()));
        assert_eq!(e.to_string(), "line 4, [PIPES]: node \"J9\" is not defined");
        let e = err("[JUNCTIONS]\nJ1 1\nJ1 2\n");
        assert_eq!(e.line, 3);
        assert!(matches!(e.problem, InpProblem::Duplicate { .. }));
        let e = err("[JUNCTIONS]\nJ1\n[COORDINATES]\nJ1 1 north\n");
        assert_eq!((e.line, e.section.as_str()), (4, "COORDINATES"));
        let e = err("J1 1\n");
        assert_eq!(e.problem, InpProblem::OutsideSection);
        let e = err("[JUNCTIONS]\nJ1\nJ2\n[VALVES]\nV J1 J2 100 XYZ 1\n");
        assert_eq!(e.problem, InpProblem::ValveType("XYZ".into()));
        let e = err("[JUNCTIONS]\nJ1\n[STATUS]\nP9 OPEN\n");
        assert_eq!(e.problem, InpProblem::UnknownLink("P9".into()));
        let e = err("[JUNCTIONS]\nJ1\nJ2\n[PIPES]\nP J1 J2 1 1 1 0 HALF\n");
        assert_eq!(e.problem, InpProblem::PipeStatus("HALF".into()));
    }

    #[test]
    fn an_unknown_layer_valve_is_refused() {
        let m = InpModel::parse(SMALL, "").unwrap();
        let layer = [LayerValve {
            link: "P9".into(),
            node: "J1".into(),
        }];
        assert!(matches!(
            m.network(&layer),
            Err(InpNetworkError::UnknownLink { index: 0, .. })
        ));
        // A model edited by hand after parsing: an error, not a panic.
        let mut m = m;
        m.links[0].to = "nowhere".into();
        assert!(matches!(
            m.network(&[]),
            Err(InpNetworkError::LinkEnd { .. })
        ));
    }
}

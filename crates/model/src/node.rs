//! The network's nodes (issue 15): junctions, valves, sources and customer connections,
//! the points a pipe's `from_node` and `to_node` name. One network per utility kind: a
//! node belongs to the network of its `kind`, as a pipe does.
//!
//! What a trace needs of each node lives here, with the rule that ties each attribute to
//! its node type (a customer count only on a customer connection, a valve state only on a
//! valve). How the nodes and pipes become a graph is the trace crate's business.

use super::{check_id, check_text, geom, ModelError, PipeKind};
use geo::Point;
use serde::{Deserialize, Serialize};

string_enum! {
    /// What a node is.
    pub enum NodeType {
        /// Where pipes meet, or a pipe ends, with nothing else there.
        Junction = "junction",
        /// A valve: closing it separates the pipes that meet at it.
        Valve = "valve",
        /// Where the product enters the network (see [`SourceKind`]).
        Source = "source",
        /// A customer connection (service point), serving [`NetworkNode::customers`].
        Customer = "customer",
    }
}

string_enum! {
    /// Sources by utility: water plant, reservoir, tank; gas gate station or regulator;
    /// substation or transformer; heat plant or circulation pump.
    pub enum SourceKind {
        WaterPlant = "water_plant",
        Reservoir = "reservoir",
        Tank = "tank",
        GateStation = "gate_station",
        Regulator = "regulator",
        Substation = "substation",
        Transformer = "transformer",
        HeatPlant = "heat_plant",
        CirculationPump = "circulation_pump",
    }
}

string_enum! {
    /// A valve's normal position.
    pub enum ValvePosition {
        Open = "open",
        /// Normally closed: a boundary between zones, never operated by a trace.
        Closed = "closed",
    }
}

string_enum! {
    /// Whether a valve can be operated in the field.
    pub enum ValveCondition {
        Operable = "operable",
        /// Broken: passes flow whatever is done to it.
        Broken = "broken",
        /// Sound but out of reach (paved over, under a building): as good as broken when
        /// it has to be closed now.
        Inaccessible = "inaccessible",
    }
}

/// One node of a utility network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkNode {
    /// Positive id; 0 (or absent) on insert lets the store assign one.
    #[serde(default)]
    pub id: i64,
    /// The utility network the node belongs to (the kinds of pipelines).
    pub kind: PipeKind,
    pub node_type: NodeType,
    /// The operator's asset code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sources only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_kind: Option<SourceKind>,
    /// Valves only; open when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valve_position: Option<ValvePosition>,
    /// Valves only; operable when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valve_condition: Option<ValveCondition>,
    /// Valves only: the pipe the valve closes, where more than two pipes meet at it. Not a
    /// foreign key (pipes name their nodes, so one would make a cycle); `lifeline check`
    /// reports a valve whose pipe does not end at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pipe_id: Option<i64>,
    /// Customer connections only: how many customers it serves (1 when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<i32>,
    /// CGCS2000 lon/lat.
    #[serde(with = "geom::point")]
    pub geometry: Point<f64>,
}

impl NetworkNode {
    /// A node with only the required fields set.
    pub fn new(id: i64, kind: PipeKind, node_type: NodeType, geometry: Point<f64>) -> Self {
        NetworkNode {
            id,
            kind,
            node_type,
            code: None,
            name: None,
            source_kind: None,
            valve_position: None,
            valve_condition: None,
            on_pipe_id: None,
            customers: None,
            geometry,
        }
    }

    /// Checks ids, texts, the point, and that each type-specific attribute sits on its type.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_id("id", self.id, true)?;
        check_text("code", &self.code, 64)?;
        check_text("name", &self.name, 200)?;
        let only = |field: &str, set: bool, ty: NodeType| {
            if set && self.node_type != ty {
                Err(ModelError::invalid(
                    field,
                    format!(
                        "only {ty} nodes have one, this node is a {}",
                        self.node_type
                    ),
                ))
            } else {
                Ok(())
            }
        };
        only("source_kind", self.source_kind.is_some(), NodeType::Source)?;
        only(
            "valve_position",
            self.valve_position.is_some(),
            NodeType::Valve,
        )?;
        only(
            "valve_condition",
            self.valve_condition.is_some(),
            NodeType::Valve,
        )?;
        only("on_pipe_id", self.on_pipe_id.is_some(), NodeType::Valve)?;
        only("customers", self.customers.is_some(), NodeType::Customer)?;
        if let Some(p) = self.on_pipe_id {
            check_id("on_pipe_id", p, false)?;
        }
        if let Some(c) = self.customers {
            if !(0..=1_000_000).contains(&c) {
                return Err(ModelError::invalid(
                    "customers",
                    format!("{c} is outside 0..1000000"),
                ));
            }
        }
        geom::check_point(&self.geometry)
    }

    /// A valve's position, open when not recorded.
    pub fn position(&self) -> ValvePosition {
        self.valve_position.unwrap_or(ValvePosition::Open)
    }

    /// Whether a valve can be operated now: recorded neither broken nor inaccessible.
    pub fn operable(&self) -> bool {
        matches!(
            self.valve_condition.unwrap_or(ValveCondition::Operable),
            ValveCondition::Operable
        )
    }

    /// The customers a node serves: its count on a customer connection (1 when not
    /// recorded), none elsewhere.
    pub fn customer_count(&self) -> u32 {
        match self.node_type {
            NodeType::Customer => self.customers.map_or(1, |c| c.max(0) as u32),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valve() -> serde_json::Value {
        serde_json::json!({
            "kind": "water_supply", "node_type": "valve", "valve_condition": "broken",
            "geometry": {"type": "Point", "coordinates": [106.5, 29.5]}
        })
    }

    #[test]
    fn a_valve_parses_with_its_defaults() {
        let n: NetworkNode = serde_json::from_value(valve()).unwrap();
        n.validate().unwrap();
        assert_eq!(n.position(), ValvePosition::Open);
        assert!(!n.operable());
        assert_eq!(n.customer_count(), 0);
    }

    #[test]
    fn an_attribute_of_another_type_is_named() {
        let mut v = valve();
        v["customers"] = 12.into();
        let n: NetworkNode = serde_json::from_value(v).unwrap();
        let e = n.validate().unwrap_err().to_string();
        assert!(
            e.contains("customers") && e.contains("customer nodes"),
            "{e}"
        );
        let mut v = valve();
        v["node_type"] = "pump".into();
        let e = serde_json::from_value::<NetworkNode>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pump") && e.contains("junction"), "{e}");
    }

    #[test]
    fn a_customer_counts_one_unless_told() {
        let mut n = NetworkNode::new(1, PipeKind::Gas, NodeType::Customer, (106.5, 29.5).into());
        assert_eq!(n.customer_count(), 1);
        n.customers = Some(40);
        n.validate().unwrap();
        assert_eq!(n.customer_count(), 40);
        n.customers = Some(-1);
        assert!(n.validate().is_err());
    }
}

//! Topology on small cases drawn by hand; each expected answer is read off the drawing.

use super::*;
use crate::{Position, Scenario};

fn junction(id: Id) -> NodeRecord {
    NodeRecord {
        id,
        kind: NodeKind::Junction,
    }
}

fn valve_node(id: Id, on_pipe: Option<Id>) -> NodeRecord {
    NodeRecord {
        id,
        kind: NodeKind::Valve(ValveNode {
            position: Position::Open,
            operable: true,
            on_pipe,
        }),
    }
}

fn pipe(id: Id, from: Id, to: Id) -> PipeRecord {
    PipeRecord { id, from, to }
}

fn source(id: Id) -> NodeRecord {
    NodeRecord {
        id,
        kind: NodeKind::Source,
    }
}

/// ```text
///   S1 --p1-- V2 --p2-- J3 --p3-- J4
///                       |
///                       p4
///                       |
///                       V5 (valve capping p4)
/// ```
#[test]
fn inline_and_end_valves_become_engine_valves() {
    let nodes = [
        source(1),
        valve_node(2, None),
        junction(3),
        junction(4),
        valve_node(5, None),
    ];
    let pipes = [pipe(1, 1, 2), pipe(2, 2, 3), pipe(3, 3, 4), pipe(4, 3, 5)];
    let t = from_attributes(&nodes, &pipes).unwrap();
    assert!(t.report.is_empty(), "{:?}", t.report);
    let valves: Vec<(Id, Id, Id)> = t
        .network
        .valves()
        .iter()
        .map(|v| (v.id, v.pipe, v.node))
        .collect();
    // The in-line valve acts on its lower pipe (p1), the end valve on its only pipe.
    assert_eq!(valves, [(2, 1, 2), (5, 4, 5)]);
    // Closing V2 cuts everything past it off the source: the in-line valve separates.
    let iso = t.network.isolate(&[3], &Scenario::default()).unwrap();
    assert_eq!(iso.valves_to_close, [2]);
    assert_eq!(iso.segment.pipes, [2, 3, 4]);
}

#[test]
fn a_valve_on_a_tee_needs_its_pipe() {
    // V1 with three pipes: misplaced unless it names one of them.
    let pipes = [pipe(1, 1, 2), pipe(2, 1, 3), pipe(3, 1, 4)];
    let ends = [junction(2), junction(3), junction(4)];
    let mut nodes = vec![valve_node(1, None)];
    nodes.extend(ends.iter().cloned());
    let t = from_attributes(&nodes, &pipes).unwrap();
    assert_eq!(
        t.report.misplaced_valves,
        [MisplacedValve {
            node: 1,
            degree: 3,
            on_pipe: None
        }]
    );
    assert!(t.network.valves().is_empty());

    nodes[0] = valve_node(1, Some(3));
    let t = from_attributes(&nodes, &pipes).unwrap();
    assert!(t.report.is_empty());
    assert_eq!(
        (t.network.valves()[0].pipe, t.network.valves()[0].node),
        (3, 1)
    );

    // A named pipe that does not end at the valve: misplaced.
    nodes[0] = valve_node(1, Some(9));
    let t = from_attributes(&nodes, &pipes).unwrap();
    assert_eq!(t.report.misplaced_valves[0].on_pipe, Some(9));

    // A valve on no pipe at all.
    let t = from_attributes(&[valve_node(7, None)], &[]).unwrap();
    assert_eq!(t.report.misplaced_valves[0].degree, 0);
}

#[test]
fn bad_records_are_reported_not_fatal() {
    let nodes = [junction(1), junction(2), junction(2), junction(3)];
    let pipes = [
        pipe(1, 1, 2),
        pipe(1, 2, 3),
        pipe(2, 2, 9),
        pipe(3, 3, 3),
        pipe(4, 2, 3),
    ];
    let t = from_attributes(&nodes, &pipes).unwrap();
    assert_eq!(t.report.duplicate_nodes, [2]);
    assert_eq!(t.report.duplicate_pipes, [1]);
    assert_eq!(t.report.unknown_nodes, [UnknownNode { pipe: 2, node: 9 }]);
    assert_eq!(t.report.self_loops, [3]);
    let ids: Vec<Id> = t.network.pipes().iter().map(|p| p.id).collect();
    assert_eq!(ids, [1, 3, 4]);
    assert_eq!(t.network.nodes().len(), 3);
}

fn line(id: Id, pts: &[[f64; 2]]) -> LinePipe {
    LinePipe {
        id,
        line: pts.to_vec(),
    }
}

fn point(id: Id, at: [f64; 2], kind: NodeKind) -> PointNode {
    PointNode { id, at, kind }
}

fn edges(g: &GeometryTopology) -> Vec<(Id, Id, Id)> {
    g.pipes.iter().map(|p| (p.id, p.from, p.to)).collect()
}

#[test]
fn ends_within_the_tolerance_snap_into_one_node() {
    let pipes = [
        line(10, &[[0.0, 0.0], [10.0, 0.0]]),
        line(11, &[[10.04, 0.03], [20.0, 0.0]]),
        line(12, &[[10.0, -0.02], [10.0, -10.0]]),
    ];
    let s = Snapping::new(0.1).unwrap();
    let g = from_geometry(&pipes, &[], &s).unwrap();
    // New junctions from 1 (no points), in the order of the first end of each.
    assert_eq!(edges(&g), [(10, 1, 2), (11, 2, 3), (12, 2, 4)]);
    let at = g.nodes.iter().find(|n| n.id == 2).unwrap().at;
    assert!((at[0] - (10.0 + 10.04 + 10.0) / 3.0).abs() < 1e-12);
    assert!((at[1] - (0.03 - 0.02) / 3.0).abs() < 1e-12);
    // Lines end at their nodes.
    assert_eq!(g.pipes[1].line[0], at);
    let dangles: Vec<Id> = g.report.dangles.iter().map(|d| d.node).collect();
    assert_eq!(dangles, [1, 3, 4]);
    assert!(g.report.near_misses.is_empty() && g.report.crossings.is_empty());
}

#[test]
fn the_same_input_in_any_order_gives_the_same_result() {
    let pipes = vec![
        line(3, &[[0.0, 0.0], [5.0, 0.0], [10.0, 0.0]]),
        line(1, &[[10.0, 0.0], [10.0, 10.0]]),
        line(2, &[[5.0, -5.0], [5.0, 5.0]]),
        line(4, &[[10.0, 10.0], [0.0, 10.0]]),
    ];
    let points = vec![
        point(5, [10.0, 10.0], NodeKind::Source),
        point(7, [2.0, 0.05], NodeKind::Customer { customers: 2 }),
    ];
    let s = Snapping::new(0.1).unwrap();
    let a = from_geometry(&pipes, &points, &s).unwrap();
    let mut rp = pipes.clone();
    rp.reverse();
    let mut rq = points.clone();
    rq.reverse();
    let b = from_geometry(&rp, &rq, &s).unwrap();
    assert_eq!(a.pipes, b.pipes);
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.report, b.report);
}

#[test]
fn a_valve_point_on_a_pipe_splits_it_and_becomes_a_valve() {
    // S at the start; a valve in the middle of pipe 1; a customer at the end of pipe 2.
    let pipes = [
        line(1, &[[0.0, 0.0], [4.0, 0.0], [10.0, 0.0]]),
        line(2, &[[10.0, 0.0], [20.0, 0.0]]),
    ];
    let points = [
        point(100, [0.0, 0.0], NodeKind::Source),
        point(
            101,
            [6.0, 0.04],
            NodeKind::Valve(ValveNode {
                position: Position::Open,
                operable: true,
                on_pipe: None,
            }),
        ),
        point(102, [20.0, 0.0], NodeKind::Customer { customers: 3 }),
    ];
    let g = from_geometry(&pipes, &points, &Snapping::new(0.1).unwrap()).unwrap();
    // Pipe 1 keeps its id on the piece at its start; the other piece is 3 (above 2).
    assert_eq!(edges(&g), [(1, 100, 101), (2, 103, 102), (3, 101, 103)]);
    assert_eq!(
        g.report.splits,
        [Split {
            pipe: 1,
            at_nodes: vec![101],
            pieces: vec![1, 3]
        }]
    );
    assert_eq!(g.pipes[0].line, [[0.0, 0.0], [4.0, 0.0], [6.0, 0.04]]);
    assert_eq!(g.pipes[2].split_from, Some(1));
    let v = &g.network.valves()[0];
    assert_eq!((v.id, v.pipe, v.node), (101, 1, 101));
    // Closing the valve cuts the customer off.
    let iso = g.network.isolate(&[2], &Scenario::default()).unwrap();
    assert_eq!(iso.valves_to_close, [101]);
    assert_eq!(iso.customers.count, 3);
    assert!(g.report.dangles.is_empty());
}

#[test]
fn a_tee_on_a_main_splits_the_main() {
    let pipes = [
        line(1, &[[0.0, 0.0], [10.0, 0.0]]),
        line(2, &[[5.0, 0.05], [5.0, 8.0]]),
    ];
    let g = from_geometry(&pipes, &[], &Snapping::new(0.1).unwrap()).unwrap();
    // Node 3 (start of pipe 2) lies on pipe 1 and splits it into 1 and 3.
    assert_eq!(edges(&g), [(1, 1, 3), (2, 3, 4), (3, 3, 2)]);
    assert_eq!(g.report.splits[0].at_nodes, [3]);
    assert!(g.report.crossings.is_empty());

    // Without tees the main stays whole, and the touch is reported as a crossing.
    let s = Snapping::new(0.1).unwrap().with_tees(false);
    let g = from_geometry(&pipes, &[], &s).unwrap();
    assert_eq!(edges(&g), [(1, 1, 2), (2, 3, 4)]);
    assert_eq!(g.report.crossings.len(), 1);
    assert_eq!(g.report.crossings[0].pipes, [1, 2]);
}

#[test]
fn the_report_lists_dangles_near_misses_crossings_and_stray_points() {
    let pipes = [
        line(1, &[[0.0, 0.0], [10.0, 0.0]]),
        // Crosses pipe 1 at (5, 0) with no node there.
        line(2, &[[5.0, -5.0], [5.0, 5.0]]),
        // Ends 0.5 m short of pipe 1's end: a near-miss (tolerance 0.1, so up to 1 m).
        line(3, &[[10.5, 0.0], [20.0, 0.0]]),
    ];
    let points = [
        point(50, [30.0, 30.0], NodeKind::Source),
        point(51, [20.0, 0.0], NodeKind::Customer { customers: 1 }),
        point(52, [20.05, 0.0], NodeKind::Customer { customers: 1 }),
    ];
    let g = from_geometry(&pipes, &points, &Snapping::new(0.1).unwrap()).unwrap();
    let r = &g.report;
    assert_eq!(r.points_off_pipe, [50]);
    assert_eq!(r.duplicate_nodes.len(), 1);
    assert_eq!(
        (r.duplicate_nodes[0].node, r.duplicate_nodes[0].of),
        (52, 51)
    );
    assert_eq!(
        r.crossings,
        [Crossing {
            pipes: [1, 2],
            at: [5.0, 0.0]
        }]
    );
    // Junctions 53.. : pipe 1's ends, pipe 2's ends, pipe 3's start.
    let dangles: Vec<(Id, Id)> = r.dangles.iter().map(|d| (d.node, d.pipe)).collect();
    assert_eq!(dangles, [(53, 1), (54, 1), (55, 2), (56, 2), (57, 3)]);
    let near: Vec<(Id, NearTo)> = r.near_misses.iter().map(|m| (m.node, m.near)).collect();
    // Each of the two ends is near the other, and near the other's pipe.
    assert_eq!(
        near,
        [
            (54, NearTo::Node(57)),
            (54, NearTo::Pipe(3)),
            (57, NearTo::Node(54)),
            (57, NearTo::Pipe(1))
        ]
    );
    assert!((r.near_misses[0].distance - 0.5).abs() < 1e-12);
    assert!(g.network.nodes().iter().all(|n| n.id != 50 && n.id != 52));
}

#[test]
fn zero_length_pipes_and_bad_records() {
    let pipes = [
        line(1, &[[0.0, 0.0], [10.0, 0.0]]),
        line(2, &[[10.0, 0.0], [10.05, 0.0]]),
        line(3, &[[1.0, 1.0]]),
        line(4, &[[1.0, f64::NAN], [2.0, 2.0]]),
        line(1, &[[5.0, 5.0], [6.0, 6.0]]),
    ];
    let points = [point(9, [f64::INFINITY, 0.0], NodeKind::Junction)];
    let g = from_geometry(&pipes, &points, &Snapping::new(0.1).unwrap()).unwrap();
    assert_eq!(g.report.zero_length, [2]);
    assert_eq!(g.report.bad_pipes, [3, 4]);
    assert_eq!(g.report.duplicate_pipe_ids, [1]);
    assert_eq!(g.report.bad_points, [9]);
    assert_eq!(edges(&g), [(1, 10, 11)]);
}

#[test]
fn bad_tolerances_are_refused() {
    assert_eq!(Snapping::new(0.0), Err(TopologyError::Tolerance(0.0)));
    assert!(Snapping::new(f64::NAN).is_err());
    assert!(Snapping::new(1.0)
        .unwrap()
        .with_near_miss_factor(0.5)
        .is_err());
    let err = from_geometry(
        &[line(i64::MAX, &[[0.0, 0.0], [1.0, 0.0]])],
        &[point(i64::MAX, [5.0, 5.0], NodeKind::Junction)],
        &Snapping::new(0.1).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err, TopologyError::IdSpace("node"));
}

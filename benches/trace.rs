//! Network traces on a generated preset (issue 15; a `harness = false` bench that prints
//! Markdown rows for BENCHMARKS.md). The preset (default `jiulongpo`; `city` for the whole
//! central city) is generated with its water, gas and heat networks and loaded into the
//! index, then:
//! - **build**: each kind's network built from the index with every valve segment
//!   precomputed (`Networks::get`, what the first trace pays), the precomputation alone
//!   (`Network::precompute_segments`), and the segments computed once without keeping them
//!   (`Network::segments`);
//! - **isolate**: `POST /trace/isolate`'s use case (`isolate_now`: start pipe, isolation,
//!   impact with lengths, sensors and grid cells) on random traceable pipes;
//! - **recompute**: the same with the first valve to close found broken;
//! - **if struck**: `if_struck`, what the excavation check adds per violated pipe;
//! - **engine**: the isolation alone on the precomputed segments and walking pipe by pipe;
//! - **edit**: one record changed in the index (a valve found broken or repaired, a pipe
//!   deleted or put back), then `Networks::get` updating the network and its segments in
//!   place; and an edit of the gas network followed by getting the water network.
//!
//! Latencies are per call on one thread: mean, p50, p99, max.
//! `cargo bench --bench trace -- [preset] [calls]`.

use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Layer, NodeType, PipeKind, Record, ValveCondition};
use lifeline::trace::service::{if_struck, isolate_now, Networks, TraceRequest, Tracer};
use lifeline::trace::Scenario;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn stats(mut d: Vec<Duration>) -> String {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let mean = d.iter().map(|x| ms(*x)).sum::<f64>() / d.len().max(1) as f64;
    let at = |q: f64| ms(d[((d.len() as f64 * q) as usize).min(d.len() - 1)]);
    format!(
        "{mean:.3} | {:.3} | {:.3} | {:.3}",
        at(0.5),
        at(0.99),
        ms(*d.last().unwrap())
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let preset = match args.first().map(String::as_str) {
        Some("city") => Preset::City,
        Some("demo") => Preset::Demo,
        _ => Preset::Jiulongpo,
    };
    let calls: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let t = Instant::now();
    let (data, _) = generate(&GenerateOptions {
        preset,
        seed: 42,
        progress: false,
    })
    .expect("generate");
    let gen = t.elapsed();
    let index = SpatialIndex::new(MetricCrs::auto(106.5, 29.5));
    let traceable: Vec<(i64, PipeKind)> = data
        .pipelines
        .iter()
        .filter(|p| p.from_node.is_some() && p.to_node.is_some())
        .map(|p| (p.id, p.kind))
        .collect();
    let (pipes, nodes) = (data.pipelines.len(), data.nodes.len());
    index.load(data).expect("load");
    println!(
        "{preset:?}: {pipes} pipes ({} traceable), {nodes} nodes; generated in {:.1} s",
        traceable.len(),
        gen.as_secs_f64()
    );
    let networks = Networks::default();
    println!("\n| step | kind | pipes | time |\n|---|---|---|---|");
    let mut all = Duration::ZERO;
    for kind in [PipeKind::WaterSupply, PipeKind::Gas, PipeKind::Heat] {
        let t = Instant::now();
        let built = networks.get(&index, kind).expect("network");
        let b = t.elapsed();
        all += b;
        let mut bare = built.network.clone();
        let t = Instant::now();
        bare.precompute_segments();
        let p = t.elapsed();
        drop(bare);
        let t = Instant::now();
        let seg = built.network.segments(&Scenario::default());
        let s = t.elapsed();
        let n = built.network.pipes().len();
        let segments = seg.pipes.iter().max().map_or(0, |m| m + 1);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| build network with every segment precomputed | {kind} | {n} | {:.0} ms |",
            ms(b)
        );
        println!(
            "| of which: precompute every segment ({}) | {kind} | {n} | {:.0} ms |",
            built.network.segment_count().unwrap_or(0),
            ms(p)
        );
        println!(
            "| `segments()` once, not kept ({segments}) | {kind} | {n} | {:.0} ms |",
            ms(s)
        );
    }
    println!(
        "| **all kinds: build and precompute every segment** | all | | {:.2} s |",
        all.as_secs_f64()
    );
    let who = Tracer::check(&lifeline::model::Actor::cli()).expect("the CLI traces");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut iso, mut re, mut struck) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..calls {
        let (pipe, _) = traceable[rng.gen_range(0..traceable.len())];
        let req = TraceRequest {
            pipes: Some(vec![pipe]),
            ..Default::default()
        };
        let t = Instant::now();
        let a = isolate_now(&who, &index, &networks, &req).expect("isolate");
        iso.push(t.elapsed());
        if let Some(v) = a.networks[0].isolation.valves_to_close.first() {
            let req = TraceRequest {
                broken_valves: vec![*v],
                ..req
            };
            let t = Instant::now();
            isolate_now(&who, &index, &networks, &req).expect("recompute");
            re.push(t.elapsed());
        }
        let t = Instant::now();
        std::hint::black_box(if_struck(&index, &networks, pipe));
        struck.push(t.elapsed());
    }
    // The engine alone, on the same pipes: precomputed segments against the walk.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let water = networks.get(&index, PipeKind::WaterSupply).expect("water");
    let water_pipes: Vec<i64> = water.network.pipes().iter().map(|p| p.id).collect();
    let (mut table, mut walk) = (Vec::new(), Vec::new());
    for _ in 0..calls.min(500) {
        let p = water_pipes[rng.gen_range(0..water_pipes.len())];
        let t = Instant::now();
        std::hint::black_box(
            water
                .network
                .isolate(&[p], &Scenario::default())
                .expect("iso"),
        );
        table.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(
            water
                .network
                .isolate_without_table(&[p], &Scenario::default())
                .expect("walk"),
        );
        walk.push(t.elapsed());
    }
    drop(water);

    // One edit, then the network and its segments updated in place. No trace holds the
    // network meanwhile, as between requests.
    let valves: Vec<i64> = index
        .all(Layer::Nodes)
        .iter()
        .filter_map(|r| match &**r {
            Record::Node(n)
                if n.kind == PipeKind::WaterSupply && n.node_type == NodeType::Valve =>
            {
                Some(n.id)
            }
            _ => None,
        })
        .collect();
    let (mut valve_edit, mut pipe_edit, mut other_kind) = (Vec::new(), Vec::new(), Vec::new());
    let gas_pipe = traceable
        .iter()
        .find(|(_, k)| *k == PipeKind::Gas)
        .map(|(id, _)| *id);
    let edits = calls.min(300);
    for _ in 0..edits {
        let v = valves[rng.gen_range(0..valves.len())];
        let Some(rec) = index.get(Layer::Nodes, v) else {
            continue;
        };
        let Record::Node(mut node) = (*rec).clone() else {
            continue;
        };
        node.valve_condition = match node.valve_condition {
            Some(ValveCondition::Broken) => Some(ValveCondition::Operable),
            _ => Some(ValveCondition::Broken),
        };
        index.upsert(Record::Node(node)).expect("upsert");
        let t = Instant::now();
        networks.get(&index, PipeKind::WaterSupply).expect("update");
        valve_edit.push(t.elapsed());

        let p = water_pipes[rng.gen_range(0..water_pipes.len())];
        if let Some(rec) = index.get(Layer::Pipelines, p) {
            index.remove(Layer::Pipelines, p);
            let t = Instant::now();
            networks.get(&index, PipeKind::WaterSupply).expect("update");
            pipe_edit.push(t.elapsed());
            index.upsert((*rec).clone()).expect("upsert");
            let t = Instant::now();
            networks.get(&index, PipeKind::WaterSupply).expect("update");
            pipe_edit.push(t.elapsed());
        }

        if let Some(g) = gas_pipe.and_then(|g| index.get(Layer::Pipelines, g)) {
            index.upsert((*g).clone()).expect("upsert");
            let t = Instant::now();
            networks.get(&index, PipeKind::WaterSupply).expect("water");
            other_kind.push(t.elapsed());
        }
    }
    let kept = networks.stats(PipeKind::WaterSupply);
    let water = networks.get(&index, PipeKind::WaterSupply).expect("water");
    water
        .network
        .check_precomputed_segments()
        .expect("segments kept exact");

    let count = |l: Layer| index.count(l);
    println!(
        "\n{calls} random traceable pipes ({} pipelines, {} sensors indexed); ms per call\n",
        count(Layer::Pipelines),
        count(Layer::Sensors)
    );
    println!("| call | mean | p50 | p99 | max |\n|---|---|---|---|---|");
    println!("| isolate (with impact) | {} |", stats(iso));
    println!("| recompute, first valve broken | {} |", stats(re));
    println!("| if struck | {} |", stats(struck));
    println!(
        "| engine isolate, water, precomputed segments | {} |",
        stats(table)
    );
    println!("| engine isolate, water, walking | {} |", stats(walk));
    println!(
        "| edit a water valve's condition, then update in place | {} |",
        stats(valve_edit)
    );
    println!(
        "| delete or restore a water pipe, then update in place | {} |",
        stats(pipe_edit)
    );
    println!(
        "| edit a gas pipe, then get the water network | {} |",
        stats(other_kind)
    );
    println!(
        "\nwater network kept: {} whole build(s), {} update(s) in place; segments checked exact afterwards",
        kept.builds, kept.updates
    );
}

//! Network traces on a generated preset (issue 15; a `harness = false` bench that prints
//! Markdown rows for BENCHMARKS.md). The preset (default `jiulongpo`; `city` for the whole
//! central city) is generated with its water, gas and heat networks and loaded into the
//! index, then:
//! - **build**: each kind's network built from the index (`Networks::get`, what the first
//!   trace after a change pays), and every valve segment of it (`Network::segments`);
//! - **isolate**: `POST /trace/isolate`'s use case (`isolate_now`: start pipe, isolation,
//!   impact with lengths, sensors and grid cells) on random traceable pipes;
//! - **recompute**: the same with the first valve to close found broken;
//! - **if struck**: `if_struck`, what the excavation check adds per violated pipe.
//!
//! Latencies are per call on one thread: mean, p50, p99, max.
//! `cargo bench --bench trace -- [preset] [calls]`.

use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Layer, PipeKind};
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
    for kind in [PipeKind::WaterSupply, PipeKind::Gas, PipeKind::Heat] {
        let t = Instant::now();
        let built = networks.get(&index, kind).expect("network");
        let b = t.elapsed();
        let t = Instant::now();
        let seg = built.network.segments(&Scenario::default());
        let s = t.elapsed();
        let n = built.network.pipes().len();
        let segments = seg.pipes.iter().max().map_or(0, |m| m + 1);
        println!(
            "| build network | {kind} | {n} | {:.0} ms |",
            b.as_secs_f64() * 1000.0
        );
        println!(
            "| every valve segment ({segments}) | {kind} | {n} | {:.0} ms |",
            s.as_secs_f64() * 1000.0
        );
    }
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
}

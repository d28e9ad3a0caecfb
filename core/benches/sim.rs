//! How fast the simulator runs: simulated messages delivered per wall-clock second.
//!
//! `cargo bench -p raftkv-core --bench sim`. Criterion reports the throughput in elements/s,
//! where one element is one delivered message (Raft and client messages alike).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raftkv_core::sim::{Cluster, Scenario, SimConfig, TraceMode, Workload};

/// Seeds per iteration of the randomized benchmark.
const SEEDS: u64 = 20;

fn randomized(trace: TraceMode) -> (Scenario, u64) {
    let scenario = Scenario {
        trace,
        ..Scenario::default()
    };
    let delivered = (0..SEEDS)
        .map(|s| match scenario.run(s) {
            Ok(r) => r.stats.delivered,
            Err(f) => panic!("seed {s} fails: {f}"),
        })
        .sum();
    (scenario, delivered)
}

/// A healthy five-node cluster with four busy clients for ten simulated seconds.
fn steady() -> Cluster {
    let mut cfg = SimConfig::new(7, 5);
    cfg.clients = 4;
    cfg.trace = TraceMode::Off;
    let mut c = match Cluster::new(cfg) {
        Ok(c) => c,
        Err(v) => panic!("{v}"),
    };
    for i in 0..4 {
        c.set_workload(
            i,
            Workload {
                ops: 1_000,
                think_max: 20,
                ..Workload::default()
            },
        );
    }
    c
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);

    for (name, mode) in [
        ("randomized_20_seeds_trace_off", TraceMode::Off),
        ("randomized_20_seeds_trace_full", TraceMode::Full),
    ] {
        let (scenario, delivered) = randomized(mode);
        g.throughput(Throughput::Elements(delivered));
        g.bench_function(name, |b| {
            b.iter(|| {
                for s in 0..SEEDS {
                    let r = scenario.run(s);
                    assert!(r.is_ok());
                }
            })
        });
    }

    let delivered = {
        let mut c = steady();
        let r = c.run_until(10_000);
        assert!(r.is_ok(), "{r:?}");
        c.stats().delivered
    };
    g.throughput(Throughput::Elements(delivered));
    g.bench_function("steady_5_nodes_4_clients_10s", |b| {
        b.iter(|| {
            let mut c = steady();
            let r = c.run_until(10_000);
            assert!(r.is_ok());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! `InstanceInfo` encoding for apps of 1, 10, 100 and 1000 instances.
//!
//! - `ours_encode`: `Snapshot::info` on a snapshot nobody asked yet, i.e. the hand-written
//!   encoder run once per published snapshot.
//! - `ours_cached`: the same call again, answered from the snapshot's cache (a `Bytes` clone);
//!   this is what every fetch and poll after the first pays.
//! - `serde_json`: `serde_json::to_vec` of equivalent `#[derive(Serialize)]` structs with the
//!   same field order, already built (the naive way, and a favourable one: no copying out).
//!
//! Both encoders produce byte-identical output, checked before measuring.

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use common::{NaiveInfo, NaiveInstance, NOW, ZONE};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use discovery::registry::instance::Instance;
use discovery::registry::snapshot::{Snapshot, Zone};

const ALL_STATUSES: u32 = 3;

fn fixtures(n: usize) -> (Vec<Zone>, NaiveInfo) {
    let regs: Vec<_> = (0..n).map(common::registration).collect();
    let zones = vec![Zone {
        name: ZONE.into(),
        instances: regs
            .iter()
            .map(|r| Arc::new(Instance::new(r, NOW, None)))
            .collect(),
    }];
    let naive = NaiveInfo {
        instances: BTreeMap::from([(
            ZONE.to_owned(),
            regs.iter()
                .map(|r| NaiveInstance::new(r, NOW, None))
                .collect(),
        )]),
        latest_timestamp: NOW,
    };
    (zones, naive)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_encode");
    for n in [1usize, 10, 100, 1000] {
        let (zones, naive) = fixtures(n);
        let fresh = || Snapshot::new(zones.clone(), NOW, None);
        let ours = fresh().info(None, ALL_STATUSES).unwrap();
        assert_eq!(
            std::str::from_utf8(&ours).unwrap(),
            serde_json::to_string(&naive).unwrap()
        );

        g.throughput(Throughput::Elements(n as u64));
        // The fresh snapshots are built, and dropped, outside the measurement; small batches
        // keep them in cache, as the serde_json input is.
        let batch = BatchSize::NumIterations(32);
        g.bench_with_input(BenchmarkId::new("ours_encode", n), &n, |b, _| {
            b.iter_batched_ref(fresh, |s| s.info(None, ALL_STATUSES), batch)
        });
        let cached = fresh();
        cached.info(None, ALL_STATUSES);
        g.bench_with_input(BenchmarkId::new("ours_cached", n), &n, |b, _| {
            b.iter(|| black_box(&cached).info(None, ALL_STATUSES))
        });
        g.bench_with_input(BenchmarkId::new("serde_json", n), &n, |b, _| {
            b.iter(|| serde_json::to_vec(black_box(&naive)).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);

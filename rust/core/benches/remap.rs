//! `InterruptRemapper::remap` of a remappable-format MSI: a hit (present
//! IRTE, requester id verified) and a block (requester id mismatch, fault
//! recorded; the log fills and then counts overflows).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod workloads;

fn remap(c: &mut Criterion) {
    let mut g = c.benchmark_group("remap");
    g.throughput(Throughput::Elements(1));
    let (mut r, msg) = workloads::remap_setup();
    g.bench_function("hit", |b| {
        b.iter(|| {
            black_box(workloads::remap_once(
                &mut r,
                black_box(workloads::REMAP_SID),
                black_box(&msg),
            ))
        });
    });
    g.bench_function("blocked_sid_mismatch", |b| {
        b.iter(|| {
            black_box(workloads::remap_once(
                &mut r,
                black_box(workloads::REMAP_SID + 1),
                black_box(&msg),
            ))
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = remap
}
criterion_main!(benches);

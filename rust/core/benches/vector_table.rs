//! `VectorTable` on an enabled 2048-entry table: fire an unmasked entry
//! (message sent), fire a masked entry (coalesced into its pending bit), and
//! fire + unmask (releasing the pending bit) + mask.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod workloads;

fn vector_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("vector_table");
    g.throughput(Throughput::Elements(1));
    let mut t = workloads::vt_setup(true);
    g.bench_function("fire_unmasked", |b| {
        b.iter(|| black_box(workloads::vt_fire(black_box(&mut t))));
    });
    let mut t = workloads::vt_setup(false);
    g.bench_function("fire_masked", |b| {
        b.iter(|| black_box(workloads::vt_fire(black_box(&mut t))));
    });
    let mut t = workloads::vt_setup(false);
    g.bench_function("fire_unmask_release_mask", |b| {
        b.iter(|| black_box(workloads::vt_fire_unmask_mask(black_box(&mut t))));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = vector_table
}
criterion_main!(benches);

//! VT-d `IrteTable` alloc + free of one block on a half-full 65,536-entry
//! table (lower half allocated), for block sizes 1, 4, 32 and 128
//! (the 128 case takes the multi-word search path).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

mod workloads;

fn irte(c: &mut Criterion) {
    let mut g = c.benchmark_group("irte_alloc_free_half_full");
    g.throughput(Throughput::Elements(1));
    for count in [1u32, 4, 32, 128] {
        let mut t = workloads::irte_half_full();
        g.bench_function(BenchmarkId::from_parameter(count), |b| {
            b.iter(|| black_box(workloads::irte_alloc_free(&mut t, black_box(count))));
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = irte
}
criterion_main!(benches);

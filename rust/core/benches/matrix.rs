//! `IrqMatrix` alloc + free pair (regular, not reserved) over every CPU of a
//! booted mainline x86 matrix, 1 / 64 / 512 CPUs, all online: `alloc` with the
//! all-CPUs mask (`matrix_alloc_free`), and `alloc_any` (`matrix_alloc_any_free`).
//! One iteration is one pair: read criterion's time per iteration as ns per pair.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

mod workloads;

fn matrix(c: &mut Criterion) {
    let mut g = c.benchmark_group("matrix_alloc_free");
    g.throughput(Throughput::Elements(1));
    for ncpus in [1u32, 64, 512] {
        let (mut m, mask) = workloads::matrix_setup(ncpus);
        g.bench_function(BenchmarkId::from_parameter(ncpus), |b| {
            b.iter(|| black_box(workloads::matrix_alloc_free(&mut m, black_box(&mask))));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("matrix_alloc_any_free");
    g.throughput(Throughput::Elements(1));
    for ncpus in [1u32, 64, 512] {
        let (mut m, _) = workloads::matrix_setup(ncpus);
        g.bench_function(BenchmarkId::from_parameter(ncpus), |b| {
            b.iter(|| black_box(workloads::matrix_alloc_any_free(black_box(&mut m))));
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = matrix
}
criterion_main!(benches);

//! Cross-thread delivery queue throughput: one producer thread pushes N
//! deliveries, the bench thread takes them, in the same run for our
//! `DeliveryQueue` (a lock-free SPSC ring, `rtrb`; `delivery_queue` pushes
//! chunks of 1,024 and takes batches of up to 1,024, `delivery_queue_consumer_batch`
//! batches the taking side only, `delivery_queue_item` neither), crossbeam's MPMC
//! `ArrayQueue` (what it replaced), and the alternatives not chosen: crossbeam
//! `SegQueue` and std's `sync_channel`. Bounded queues hold 4096 (the engine's default); criterion
//! reports items/s (thread spawn and join included, amortised over N).
//! A second group times push + pop on one thread (the engine's use).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod workloads;

const N: u64 = 200_000;

/// Items per same-thread push-then-pop round.
const BATCH: u64 = 1024;

/// One producer/consumer run of `n` items; returns the checksum.
type Workload = fn(u64) -> u64;

fn queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_spsc");
    g.throughput(Throughput::Elements(N));
    g.sample_size(50);
    let cases: [(&str, Workload); 6] = [
        ("delivery_queue", workloads::queue_delivery),
        (
            "delivery_queue_consumer_batch",
            workloads::queue_delivery_consumer_batch,
        ),
        ("delivery_queue_item", workloads::queue_delivery_item),
        ("crossbeam_array_queue", workloads::queue_array),
        ("crossbeam_seg_queue", workloads::queue_seg),
        ("std_sync_channel", workloads::queue_channel),
    ];
    let want = workloads::queue_expected(N);
    for (name, f) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let sum = f(black_box(N));
                assert_eq!(sum, want, "{name} lost items");
                sum
            });
        });
    }
    g.finish();

    // Same thread, push 1,024 then pop 1,024: what the single-threaded
    // engine pays per delivery.
    let mut g = c.benchmark_group("queue_same_thread");
    g.throughput(Throughput::Elements(BATCH));
    let want = workloads::queue_expected(BATCH);
    let mut q = workloads::DeliveryQueue::new(workloads::QUEUE_CAPACITY).expect("queue");
    g.bench_function("delivery_queue", |b| {
        b.iter(|| {
            assert_eq!(
                workloads::queue_local_delivery(&mut q, black_box(BATCH)),
                want
            );
        });
    });
    let q = crossbeam_queue::SegQueue::new();
    g.bench_function("crossbeam_seg_queue", |b| {
        b.iter(|| assert_eq!(workloads::queue_local_seg(&q, black_box(BATCH)), want));
    });
    g.finish();
}

criterion_group!(benches, queue);
criterion_main!(benches);

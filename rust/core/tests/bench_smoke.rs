//! Every criterion bench's workload, once, at a tiny size: the benches stay
//! compiled and correct in `cargo test` (they are timed only by `cargo bench`).

#[path = "../benches/workloads/mod.rs"]
mod workloads;

#[test]
fn matrix_pairs_leave_the_matrix_as_they_found_it() {
    for ncpus in [1u32, 64, 512] {
        let (mut m, mask) = workloads::matrix_setup(ncpus);
        let before = m.global_available();
        let first = workloads::matrix_alloc_free(&mut m, &mask);
        for _ in 0..10 {
            assert_eq!(workloads::matrix_alloc_free(&mut m, &mask), first);
        }
        assert_eq!(m.global_available(), before);
        // alloc_any is the same pair as alloc over the all-CPUs mask.
        for _ in 0..10 {
            assert_eq!(workloads::matrix_alloc_any_free(&mut m), first);
        }
        assert_eq!(m.global_available(), before);
    }
}

#[test]
fn irte_blocks_come_from_the_free_half() {
    let mut t = workloads::irte_half_full();
    assert_eq!(t.in_use(), 32_768);
    for count in [1u32, 4, 32, 128] {
        assert_eq!(workloads::irte_alloc_free(&mut t, count), 32_768);
    }
    assert_eq!(t.in_use(), 32_768);
}

#[test]
fn a_resize_of_the_models_frees_and_takes_back_the_same_resources() {
    let n = workloads::RESIZE_VECTORS;
    let mut m = workloads::resize_models_setup(32, n);
    let (vectors, irtes) = workloads::resize_models_held(&m);
    assert_eq!(irtes, n);
    for _ in 0..5 {
        let sum = workloads::resize_models_op(&mut m);
        assert!(sum > 0);
        // Same vectors and IRTEs held after every resize: nothing leaks.
        assert_eq!(workloads::resize_models_held(&m), (vectors, irtes));
    }
}

#[test]
fn vector_table_workloads() {
    let mut t = workloads::vt_setup(true);
    assert!(workloads::vt_fire(&mut t));
    let mut t = workloads::vt_setup(false);
    assert!(!workloads::vt_fire(&mut t));
    assert!(!workloads::vt_fire(&mut t));
    let mut t = workloads::vt_setup(false);
    for _ in 0..3 {
        assert_eq!(workloads::vt_fire_unmask_mask(&mut t), 1);
    }
}

#[test]
fn remap_hit_and_block() {
    let (mut r, msg) = workloads::remap_setup();
    assert!(workloads::remap_once(&mut r, workloads::REMAP_SID, &msg).is_some());
    assert!(workloads::remap_once(&mut r, workloads::REMAP_SID + 1, &msg).is_none());
}

#[test]
fn every_queue_delivers_every_item() {
    let n = 10_000;
    let want = workloads::queue_expected(n);
    assert_eq!(workloads::queue_delivery(n), want);
    assert_eq!(workloads::queue_delivery_consumer_batch(n), want);
    assert_eq!(workloads::queue_delivery_item(n), want);
    // A count that is not a multiple of the producer's chunk.
    let odd = workloads::QUEUE_CHUNK as u64 * 3 + 7;
    assert_eq!(
        workloads::queue_delivery(odd),
        workloads::queue_expected(odd)
    );
    assert_eq!(workloads::queue_array(n), want);
    assert_eq!(workloads::queue_seg(n), want);
    assert_eq!(workloads::queue_channel(n), want);
    let mut q = workloads::DeliveryQueue::new(workloads::QUEUE_CAPACITY).unwrap();
    let s = crossbeam_queue::SegQueue::new();
    for _ in 0..2 {
        assert_eq!(
            workloads::queue_local_delivery(&mut q, 1024),
            workloads::queue_expected(1024)
        );
        assert_eq!(
            workloads::queue_local_seg(&s, 1024),
            workloads::queue_expected(1024)
        );
    }
}

#[test]
fn storm_and_floor() {
    // The CLI's storm, smaller: 2 devices of 16 entries.
    let s = workloads::Storm {
        devices: 2,
        table: 16,
        ..workloads::Storm::default()
    };
    let resizes = 2 * workloads::storm_cycle_resizes(&s);
    let r = workloads::engine_run(workloads::storm_config(&s, resizes, 1));
    assert_eq!(r.stats.resizes, resizes);
    assert!(r.books.fired > 0);
    let lost = r.books.get(msixcore_core::books::Outcome::Lost) as f64;
    let want = s.closed_form_lost(resizes);
    assert!((lost - want).abs() < 4.0 * want.sqrt(), "{lost} vs {want}");
    // The floor loop counts about rate × window / period of its events.
    let n = 1_000_000;
    let lost = workloads::bare_loop(n, 1e7, 1e6, 5e4, 3) as f64;
    assert!((lost / n as f64 - 0.05).abs() < 0.005, "{lost}");
}

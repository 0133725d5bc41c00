//! The threaded embedding example (`rust/core/examples/embed_threads.rs`)
//! runs under `cargo test`: as users run it, and at other sizes with its
//! books checked here.

use msixcore_core::books::Outcome;

#[path = "../examples/embed_threads.rs"]
mod embed_threads;

use embed_threads::{run, Params};

#[test]
fn the_example_runs_as_users_run_it() {
    embed_threads::main().unwrap();
}

#[test]
fn every_fire_is_in_one_outcome_and_every_delivery_crossed_threads() {
    let p = Params {
        fires: 40_000,
        ..Params::default()
    };
    let first = run(&p).unwrap();
    let b = first.books;
    assert_eq!(b.fired, p.fires);
    assert_eq!(b.total(), b.fired, "conservation");
    // What the script did: one interrupt still latched for the vector
    // masked to the end; the torn-down vector's fires blocked (a sixteenth
    // of the second half), each a recorded fault; vector 3, masked for a
    // quarter of the run, merged all but one of its fires into its pending
    // bit, and vector 7 all but one of its last quarter's.
    assert_eq!(b.get(Outcome::Pending), 1);
    let blocked = b.get(Outcome::Blocked);
    assert!((1_000..1_500).contains(&blocked), "{blocked}");
    assert_eq!(first.faults, blocked);
    let coalesced = b.get(Outcome::Coalesced);
    assert!((1_000..1_500).contains(&coalesced), "{coalesced}");
    assert_eq!(b.get(Outcome::Lost) + b.get(Outcome::Intx), 0);
    // The queue's size and the threads' pace change nothing in the books:
    // a one-slot queue makes the device thread wait for the handler thread
    // at nearly every delivery.
    for queue_capacity in [1, 4] {
        let r = run(&Params {
            queue_capacity,
            ..p.clone()
        })
        .unwrap();
        assert_eq!(r.books, b, "capacity {queue_capacity}");
        assert_eq!(r.pushed, first.pushed, "capacity {queue_capacity}");
    }
    // Every delivery was pushed on the device thread and taken on the
    // handler thread, on its own CPU, in time order.
    let r = &first;
    assert_ne!(r.device_thread, r.handler_thread);
    assert_ne!(r.handler_thread, std::thread::current().id());
    assert_eq!(r.taken, r.pushed);
    assert_eq!(r.taken.iter().sum::<u64>(), b.get(Outcome::Delivered));
    assert!(
        r.taken.iter().filter(|&&n| n > 0).count() >= 2,
        "{:?}",
        r.taken
    );
    assert_eq!(r.misrouted, 0);
}

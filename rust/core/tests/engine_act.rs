//! Guest actions given at run time (`Engine::act`): the same run as the
//! program that holds them, and every refusal typed, changing nothing.

use msixcore_core::books::Outcome;
use msixcore_core::config::{
    Action, DeviceConfig, FailureMode, Mode, Phase, PolicyKind, SimConfig, SimConfigBuilder, Step,
};
use msixcore_core::engine::Engine;
use msixcore_core::Error;

/// A driver's life on an 8-entry device: probe, a masked stretch, a queue
/// torn down, a reset and a second probe.
fn life() -> Vec<Step> {
    let mut p = vec![
        Step::now(Action::Negotiate {
            minvec: 1,
            maxvec: 8,
        }),
        Step::now(Action::Enable),
    ];
    p.extend((0..6).map(|k| Step::after(200_000, Action::Unmask { entry: k })));
    p.extend([
        Step::after(
            1_000_000,
            Action::Phase {
                phase: Phase::Runtime,
            },
        ),
        Step::after(500_000, Action::Mask { entry: 2 }),
        Step::after(2_000_000, Action::Unmask { entry: 2 }),
        Step::after(1_000_000, Action::Free { entry: 5 }),
        Step::after(1_000_000, Action::Unmask { entry: 7 }),
        Step::after(1_000_000, Action::Wait),
        Step::after(1_000_000, Action::Reset),
        Step::now(Action::Enable),
        Step::after(300_000, Action::Unmask { entry: 0 }),
        Step::after(300_000, Action::Unmask { entry: 3 }),
        Step::after(1_000_000, Action::Disable),
    ]);
    p
}

fn config(policy: PolicyKind, mode: Mode, program: Vec<Step>) -> SimConfigBuilder {
    SimConfig::builder()
        .seed(11)
        .policy(policy)
        .mode(mode)
        .device(DeviceConfig::new(8).rate(20_000.0).program(program))
        .max_time_ns(40_000_000)
}

/// Give device 0 the steps of `program` one by one, each `delay_ns` after
/// the previous one completed, as its program would.
fn drive(e: &mut Engine, program: &[Step]) {
    let mut t = e.now_ns();
    for s in program {
        t += s.delay_ns;
        e.step_until(t).unwrap();
        t = e.act(0, s.action.clone()).unwrap();
    }
}

#[test]
fn acting_a_program_step_by_step_is_the_program_run() {
    for policy in [
        PolicyKind::Noresize,
        PolicyKind::Dynamic,
        PolicyKind::Hypercall,
    ] {
        for mode in [Mode::Event, Mode::Aggregated] {
            let by_program = Engine::new(config(policy, mode, life()).build().unwrap())
                .unwrap()
                .run()
                .unwrap();
            let mut e = Engine::new(config(policy, mode, Vec::new()).build().unwrap()).unwrap();
            drive(&mut e, &life());
            let by_act = e.run().unwrap();
            assert!(by_act.books.fired > 500, "{policy:?} {mode:?}");
            assert!(by_act.stats.resize_requests > 0, "{policy:?} {mode:?}");
            // Byte for byte: books by phase, every statistic, control events.
            assert_eq!(
                by_act.to_json().unwrap(),
                by_program.to_json().unwrap(),
                "{policy:?} {mode:?}"
            );
        }
    }
}

#[test]
fn an_action_changes_what_the_device_does() {
    let cfg = config(PolicyKind::Dynamic, Mode::Event, Vec::new())
        .service_ns(None)
        .build()
        .unwrap();
    let mut e = Engine::new(cfg).unwrap();
    let drained = |e: &mut Engine| -> Vec<u32> {
        (0..e.config().host.ncpus)
            .flat_map(|cpu| e.drain(cpu).unwrap())
            .map(|d| d.entry)
            .collect()
    };
    let t = e.act(0, Action::Enable).unwrap();
    e.step_until(t + 1_000_000).unwrap();
    assert_eq!(e.books().fired, 0, "nothing is live before an unmask");
    let t = e.act(0, Action::Unmask { entry: 3 }).unwrap();
    assert!(t > e.now_ns(), "a dynamic unmask takes host time");
    e.step_until(t + 2_000_000).unwrap();
    let seen = drained(&mut e);
    assert!(seen.len() > 10 && seen.iter().all(|&k| k == 3), "{seen:?}");
    // Masked by the guest: the device goes on firing, QEMU holds one.
    let t = e.act(0, Action::Mask { entry: 3 }).unwrap();
    e.step_until(t + 2_000_000).unwrap();
    drained(&mut e);
    let held = e.books();
    assert!(held.get(Outcome::Coalesced) > 10 && held.get(Outcome::Pending) == 1);
    let t = e.act(0, Action::Unmask { entry: 3 }).unwrap();
    e.step_until(t).unwrap();
    assert_eq!(e.books().get(Outcome::Pending), 0, "sent at the unmask");
    e.books().check().unwrap();
}

fn refused(r: Result<u64, Error>, why: &str) {
    match r {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains(why), "{msg}"),
        other => panic!("expected InvalidArgument({why}), got {other:?}"),
    }
}

#[test]
fn bad_actions_are_refused_and_change_nothing() {
    let cfg = config(PolicyKind::Noresize, Mode::Event, Vec::new())
        .build()
        .unwrap();
    let mut e = Engine::new(cfg).unwrap();
    let t = e.act(0, Action::Enable).unwrap();
    e.step_until(t).unwrap();
    let t = e.act(0, Action::Unmask { entry: 1 }).unwrap();
    assert!(t > e.now_ns(), "a NORESIZE resize takes host time");
    let before = (e.books(), e.now_ns());
    refused(
        e.act(0, Action::Unmask { entry: 2 }),
        "previous step completes",
    );
    refused(
        e.act(1, Action::Enable),
        "device 1 is past the run's 1 devices",
    );
    refused(
        e.act(0, Action::Mask { entry: 8 }),
        "entry 8 is past the table",
    );
    let bad = Action::Negotiate {
        minvec: 3,
        maxvec: 2,
    };
    refused(e.act(0, bad), "minvec");
    assert_eq!((e.books(), e.now_ns()), before);
    e.step_until(t).unwrap();
    e.act(0, Action::Unmask { entry: 2 }).unwrap();
    e.step_until(40_000_000).unwrap();
    refused(e.act(0, Action::Wait), "the run has finished");
}

#[test]
fn a_device_with_a_running_program_or_a_dead_vm_is_refused() {
    let cfg = config(PolicyKind::Noresize, Mode::Event, life())
        .build()
        .unwrap();
    let mut e = Engine::new(cfg).unwrap();
    refused(e.act(0, Action::Wait), "its program is still running");
    e.step_until(30_000_000).unwrap();
    // The program has ended: the embedding program takes over.
    let t = e.act(0, Action::Enable).unwrap();
    e.step_until(t).unwrap();
    e.act(0, Action::Unmask { entry: 4 }).unwrap();

    // Eight vectors do not fit four IRTEs: the resize fails and kills the VM.
    let cfg = config(PolicyKind::Noresize, Mode::Event, Vec::new())
        .with_host(|h| h.irte_entries = 4)
        .on_failure(FailureMode::Kill)
        .build()
        .unwrap();
    let mut e = Engine::new(cfg).unwrap();
    let t = e.act(0, Action::Enable).unwrap();
    e.step_until(t).unwrap();
    let t = e.act(0, Action::Unmask { entry: 7 }).unwrap();
    assert_eq!(t, e.now_ns(), "a kill completes at once");
    refused(e.act(0, Action::Enable), "its VM was killed");
    assert_eq!(e.run().unwrap().stats.guest_kills, 1);
}

#[test]
fn an_action_parses_from_a_program_steps_json() {
    let a = Action::from_json(r#"{"op": "unmask", "entry": 3}"#).unwrap();
    assert_eq!(a, Action::Unmask { entry: 3 });
    for (text, why) in [
        (
            r#"{"op": "unmsk", "entry": 3}"#,
            "action.op: unknown variant",
        ),
        (r#"{"op": "unmask"}"#, "missing field `entry`"),
        (r#"{"op": "unmask", "entry": -1}"#, "action"),
        (r#"{"op": "unmask", "entry": 1, "cpu": 2}"#, "unknown field"),
        ("[1]", "action"),
    ] {
        match Action::from_json(text) {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(why), "{text}: {msg}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

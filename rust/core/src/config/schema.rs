//! The schema as data, for the layers above (the Python package): every
//! enumeration's names, the limits, and the defaults, all read from the types
//! themselves so nothing is spelled twice.

use serde::Serialize;
use serde_json::{json, Value};

use super::{
    validation, Action, FailureMode, Grant, HandlerConfig, HostConfig, ImsStore, IommuKind, Mode,
    Phase, PolicyConfig, PolicyKind, Semantics, SpoofKind, TimingConfig,
};
use crate::books::Outcome;
use crate::remap::FaultReason;

fn names<T: Serialize>(all: &[T]) -> Value {
    all.iter()
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
        .collect()
}

/// The schema: `{"enums": {...}, "actions": {...}, "limits": {...},
/// "defaults": {...}}`.
pub fn schema() -> Value {
    let actions = [
        Action::Negotiate {
            minvec: 0,
            maxvec: 0,
        },
        Action::Enable,
        Action::Unmask { entry: 0 },
        Action::Mask { entry: 0 },
        Action::Free { entry: 0 },
        Action::Disable,
        Action::Reset,
        Action::Wait,
        Action::Phase {
            phase: Phase::Probe,
        },
    ];
    // Each action's op name and field names, from its serialised form.
    let actions: serde_json::Map<String, Value> = actions
        .iter()
        .filter_map(|a| match serde_json::to_value(a).ok()? {
            Value::Object(m) => {
                let op = m.get("op")?.as_str()?.to_string();
                let fields: Vec<Value> = m
                    .keys()
                    .filter(|k| *k != "op")
                    .map(|k| Value::from(k.as_str()))
                    .collect();
                Some((op, Value::Array(fields)))
            }
            _ => None,
        })
        .collect();
    json!({
        "enums": {
            "policies": PolicyKind::ALL.map(PolicyKind::name),
            "modes": names(&Mode::ALL),
            "semantics": names(&Semantics::ALL),
            "failure_modes": names(&FailureMode::ALL),
            "grants": names(&Grant::ALL),
            "ims_stores": names(&ImsStore::ALL),
            "iommus": names(&IommuKind::ALL),
            "outcomes": Outcome::ALL.map(Outcome::name),
            "phases": Phase::ALL.map(Phase::name),
            "spoof_kinds": SpoofKind::ALL.map(SpoofKind::name),
            "fault_reasons": FaultReason::ALL.map(FaultReason::as_str),
        },
        "actions": actions,
        "limits": {
            "max_devices": validation::MAX_DEVICES,
            "max_table_entries": validation::MAX_TABLE_ENTRIES,
            "max_rate": validation::MAX_RATE,
            "max_entries": validation::MAX_ENTRIES,
            "max_run_bytes": super::MAX_RUN_BYTES,
            "max_trace_events": crate::engine::MAX_TRACE_EVENTS,
        },
        "defaults": {
            "kernel": crate::versions::kernel::DEFAULT,
            "qemu": crate::versions::qemu::DEFAULT,
            "mode": Mode::default(),
            "host": HostConfig::default(),
            "policy": PolicyConfig::default(),
            "timing": TimingConfig::default(),
            "handler": HandlerConfig::default(),
            "stall_timeout_ns": super::default_stall_timeout(),
        },
    })
}

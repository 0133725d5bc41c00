//! Replays every golden trace of the real `kernel/irq/matrix.c` (tests/data/matrix_traces, see its
//! FORMAT.md) through `IrqMatrix` and compares every field of every record. Each `alloc` whose
//! mask is every possible CPU is also run as `alloc_any` on a copy, which must agree exactly.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use msixcore_core::{Error, IrqMatrix};
use serde_json::{json, Value};

fn trace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/matrix_traces")
}

fn state_json(m: &IrqMatrix) -> Value {
    let cpus: Vec<Value> = m
        .cpus()
        .iter()
        .map(|cm| {
            json!({
                "available": cm.available(),
                "allocated": cm.allocated(),
                "managed": cm.managed(),
                "managed_allocated": cm.managed_allocated(),
                "online": cm.online(),
                "initialized": cm.initialized(),
                "alloc_map": cm.alloc_map().to_vec(),
                "managed_map": cm.managed_map().to_vec(),
            })
        })
        .collect();
    json!({
        "matrix_bits": m.matrix_bits(),
        "alloc_start": m.alloc_start(),
        "alloc_end": m.alloc_end(),
        "alloc_size": m.alloc_size(),
        "global_available": m.global_available(),
        "global_reserved": m.global_reserved(),
        "total_allocated": m.total_allocated(),
        "online_maps": m.online_maps(),
        "systembits_inalloc": m.systembits_inalloc(),
        "system_map": m.system_map().to_vec(),
        "cpus": cpus,
    })
}

fn u32_arg(args: &Value, key: &str) -> u32 {
    let v = args[key]
        .as_u64()
        .unwrap_or_else(|| panic!("arg {key} missing in {args}"));
    u32::try_from(v).expect("u32 arg")
}

fn bool_arg(args: &Value, key: &str) -> bool {
    args[key]
        .as_bool()
        .unwrap_or_else(|| panic!("arg {key} missing in {args}"))
}

fn cpus_arg(args: &Value) -> Vec<u32> {
    args["cpus"]
        .as_array()
        .expect("cpus list")
        .iter()
        .map(|v| u32::try_from(v.as_u64().expect("cpu")).expect("u32 cpu"))
        .collect()
}

/// What one op produced, in the trace's vocabulary.
#[derive(Debug, PartialEq)]
struct Outcome {
    ret: Value,
    mapped_cpu: Value,
    warnings: Vec<String>,
    text: Value,
}

fn outcome_of_unit(r: msixcore_core::Result<()>, ret_ok: Value) -> Outcome {
    match r {
        Ok(()) => Outcome {
            ret: ret_ok,
            mapped_cpu: Value::Null,
            warnings: vec![],
            text: Value::Null,
        },
        Err(e) => outcome_of_err(e, Value::Null),
    }
}

fn outcome_of_err(e: Error, warn_ret: Value) -> Outcome {
    let (ret, warnings) = match e {
        Error::InvalidArgument(_) => (json!(-22), vec![]),
        Error::NoSpace(_) => (json!(-28), vec![]),
        Error::InvalidOperation { sites, .. } => (warn_ret, sites),
        other => panic!("unexpected error kind {other:?}"),
    };
    Outcome {
        ret,
        mapped_cpu: Value::Null,
        warnings,
        text: Value::Null,
    }
}

fn outcome_of_alloc(r: msixcore_core::Result<(u32, u32)>) -> Outcome {
    match r {
        Ok((cpu, bit)) => Outcome {
            ret: json!(bit),
            mapped_cpu: json!(cpu),
            warnings: vec![],
            text: Value::Null,
        },
        Err(e) => outcome_of_err(e, Value::Null),
    }
}

fn value_outcome(v: u32) -> Outcome {
    Outcome {
        ret: json!(v),
        mapped_cpu: Value::Null,
        warnings: vec![],
        text: Value::Null,
    }
}

fn apply(m: &mut IrqMatrix, op: &str, args: &Value) -> Outcome {
    match op {
        "online" => outcome_of_unit(m.online(u32_arg(args, "cpu")), Value::Null),
        "offline" => outcome_of_unit(m.offline(u32_arg(args, "cpu")), Value::Null),
        "assign_system" => outcome_of_unit(
            m.assign_system(
                u32_arg(args, "cpu"),
                u32_arg(args, "bit"),
                bool_arg(args, "replace"),
            ),
            Value::Null,
        ),
        "reserve_managed" => outcome_of_unit(m.reserve_managed(&cpus_arg(args)), json!(0)),
        "remove_managed" => outcome_of_unit(m.remove_managed(&cpus_arg(args)), Value::Null),
        "alloc_managed" => outcome_of_alloc(m.alloc_managed(&cpus_arg(args))),
        "assign" => outcome_of_unit(
            m.assign(u32_arg(args, "cpu"), u32_arg(args, "bit")),
            Value::Null,
        ),
        "reserve" => {
            m.reserve();
            outcome_of_unit(Ok(()), Value::Null)
        }
        "remove_reserved" => {
            m.remove_reserved();
            outcome_of_unit(Ok(()), Value::Null)
        }
        "alloc" => {
            let cpus = cpus_arg(args);
            let reserved = bool_arg(args, "reserved");
            // Over every possible CPU, alloc_any must do exactly what alloc does.
            let mut set = cpus.clone();
            set.sort_unstable();
            set.dedup();
            let any = set.iter().copied().eq(0..m.ncpus()).then(|| {
                let mut c = m.clone();
                let r = c.alloc_any(reserved);
                (c, r)
            });
            let r = m.alloc(&cpus, reserved);
            if let Some((c, r_any)) = any {
                assert_eq!(r_any, r, "alloc_any result");
                assert_eq!(&c, m, "alloc_any state");
            }
            outcome_of_alloc(r)
        }
        "free" => outcome_of_unit(
            m.free(
                u32_arg(args, "cpu"),
                u32_arg(args, "bit"),
                bool_arg(args, "managed"),
            ),
            Value::Null,
        ),
        "available" => {
            let cpu = u32_arg(args, "cpu");
            let down = bool_arg(args, "cpudown").then_some(cpu);
            value_outcome(m.available(down).expect("available"))
        }
        "reserved" => value_outcome(m.reserved()),
        "allocated" => value_outcome(m.allocated(u32_arg(args, "cpu")).expect("allocated")),
        "debug_show" => {
            let ind = i32::try_from(args["ind"].as_i64().expect("ind")).expect("i32 ind");
            Outcome {
                ret: Value::Null,
                mapped_cpu: Value::Null,
                warnings: vec![],
                text: json!(m.debug_show(ind).expect("debug_show")),
            }
        }
        other => panic!("unknown op {other}"),
    }
}

#[test]
fn replay_every_trace() {
    let mut files: Vec<PathBuf> = fs::read_dir(trace_dir())
        .expect("trace dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no traces found");
    let mut records = 0usize;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let reader = BufReader::new(GzDecoder::new(fs::File::open(path).expect("open")));
        let mut m: Option<IrqMatrix> = None;
        for (lineno, line) in reader.lines().enumerate() {
            let line = line.expect("read line");
            let rec: Value = serde_json::from_str(&line).expect("json");
            let op = rec["op"].as_str().expect("op");
            let args = &rec["args"];
            let ctx = format!("{name}:{lineno} seq={} op={op} args={args}", rec["seq"]);
            assert_eq!(rec["seq"].as_u64(), Some(lineno as u64), "{ctx}");
            assert_eq!(rec["bug"], json!(false), "{ctx}");
            if op == "init" {
                assert!(m.is_none(), "second init: {ctx}");
                m = Some(
                    IrqMatrix::new(
                        u32_arg(args, "matrix_bits"),
                        u32_arg(args, "alloc_start"),
                        u32_arg(args, "alloc_end"),
                        u32_arg(args, "ncpus"),
                    )
                    .expect("init"),
                );
            } else {
                let mm = m.as_mut().expect("init first");
                let before = mm.pr_warnings();
                let got = apply(mm, op, args);
                let want_warnings: Vec<String> = rec["warnings"]
                    .as_array()
                    .expect("warnings")
                    .iter()
                    .map(|w| w.as_str().expect("site").to_string())
                    .collect();
                assert_eq!(got.ret, rec["ret"], "ret: {ctx}");
                assert_eq!(got.mapped_cpu, rec["mapped_cpu"], "mapped_cpu: {ctx}");
                assert_eq!(got.warnings, want_warnings, "warnings: {ctx}");
                assert_eq!(
                    rec["warned"].as_bool(),
                    Some(!want_warnings.is_empty()),
                    "{ctx}"
                );
                let printed = mm.pr_warnings() - before;
                let want_pr = rec["pr_warn_msgs"].as_array().expect("pr_warn_msgs");
                assert_eq!(printed, want_pr.len() as u64, "pr_warn: {ctx}");
                for msg in want_pr {
                    assert_eq!(
                        msg.as_str(),
                        Some(msixcore_core::matrix::RESERVATION_EXCEEDS_MSG),
                        "{ctx}"
                    );
                }
                assert_eq!(got.text, rec["text"], "text: {ctx}");
            }
            let mm = m.as_ref().expect("init first");
            assert_eq!(state_json(mm), rec["state"], "state: {ctx}");
            records += 1;
        }
    }
    eprintln!("replayed {records} records from {} files", files.len());
    assert!(
        records >= 2309,
        "expected at least the sample's 2309 records, got {records}"
    );
}

"""Records, the terminal table and the deterministic JSON writer."""

from __future__ import annotations

import json
from pathlib import Path

from msixcore import SCENARIOS, make_record, results_json, run_config, storm_closed_form_lost
from msixcore.report import config_digest, format_table, write_json
from msixcore.simulation import OUTCOMES


def _record(seed: int = 1, policy: str = "noresize"):  # type: ignore[no-untyped-def]
    storm = SCENARIOS["storm"]
    params = storm.resolve({"devices": 2, "table": 8, "init": 2})
    config = storm.build(params, policy, seed, 64)
    result = run_config(config)
    closed = storm_closed_form_lost(params, 64)
    return make_record(
        "storm", policy, seed, params, result, closed_form_lost=closed, config=config
    )


def test_record_json_holds_the_required_fields() -> None:
    r = _record()
    doc = r.to_json()
    for key in ("scenario", "policy", "seed", "params", "resizes", "fired", "outcomes", "stats"):
        assert key in doc
    assert list(doc["outcomes"]) == list(OUTCOMES)
    assert doc["resizes"] == 64 and doc["closed_form_lost"] == r.closed_form_lost
    assert doc["params"]["gap"] == 0.001 and doc["params"]["semantics"] == "edge"
    lpm = doc["lost_per_million_resizes"]
    assert lpm["value"] == r.result.outcomes["lost"] * 1e6 / 64
    assert lpm["lower"] < lpm["value"] < lpm["upper"]
    assert len(doc["config_sha256"]) == 64


def test_json_is_deterministic(tmp_path: Path) -> None:
    a = results_json([_record(), _record(policy="dynamic")], {"command": "compare", "seed": 1})
    b = results_json([_record(), _record(policy="dynamic")], {"command": "compare", "seed": 1})
    assert a == b
    assert a.endswith("\n")
    doc = json.loads(a)
    assert [r["policy"] for r in doc["runs"]] == ["noresize", "dynamic"]
    assert "msixcore" in doc
    c = results_json([_record(seed=2), _record(policy="dynamic")], {"command": "compare"})
    assert c != a
    path = tmp_path / "out.json"
    write_json(path, a)
    assert path.read_bytes() == a.encode()


def test_config_digest_is_of_what_the_engine_runs() -> None:
    storm = SCENARIOS["storm"]
    config = storm.build(None, "noresize", 1, 64)
    reordered = dict(reversed(list(config.items())))
    assert config_digest(config) == config_digest(reordered)
    # A default written out is the same config as the default left out.
    explicit = {**config, "stall_timeout_ns": 30_000_000_000, "mode": "event"}
    assert config_digest(explicit) == config_digest(config)
    assert config_digest(config) != config_digest({**config, "seed": 2})


def test_table_has_a_row_per_record_and_the_closed_form_line() -> None:
    records = [_record(), _record(policy="upfront")]
    text = format_table(records)
    lines = text.splitlines()
    header = lines[0]
    for column in (
        "scenario",
        "policy",
        "resizes",
        "fired",
        "lost",
        "intx",
        "lost/M resizes",
        "failed",
        "blocked",
        "peak CPU vec",
        "peak IRTEs",
        "peak VM routes",
        "alloc fail",
        "kills",
        "stalls",
    ):
        assert column in header
    assert lines[2].startswith("storm") and "noresize" in lines[2]
    assert "upfront" in lines[3]
    assert any(line.startswith("storm/noresize: lost ") and "closed form" in line for line in lines)

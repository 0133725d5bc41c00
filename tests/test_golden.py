"""Golden outputs: results move only when a change means them to.

Each case is a CLI command whose ``--json`` output is committed under
``tests/golden/``. The run must reproduce the file byte for byte, except the
``msixcore`` version field. A change that is meant to move a result
regenerates the file in the same commit and says why::

    MSIXCORE_REGEN_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from msixcore.cli import main

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, list[str]] = {
    # The main job at its default seed.
    "compare.json": ["compare"],
    # The storm, per event and aggregated, at fixed seeds.
    "storm_event_s7.json": ["run", "storm", "--policy", "noresize", "--seed", "7",
                            "--resizes", "4096"],
    "storm_aggregated_s7.json": ["run", "storm", "--policy", "noresize", "--seed", "7",
                                 "--mode", "aggregated"],
    # Replications merged by the core.
    "storm_replications_s3.json": ["run", "storm", "--policy", "noresize", "--seed", "3",
                                   "--resizes", "1024", "--replications", "3"],
    "packing_norsv_qemu_replications.json": [
        "run", "host-packing:no-reservation", "--policy", "upfront", "--set", "on_failure=qemu",
        "--replications", "2",
    ],
}  # fmt: skip
# One run per failure mode that exhausts host CPU vectors (no reservation mode)
# and IRTEs (reservation mode).
for _mode in ("kill", "qemu", "fail_request"):
    for _variant, _tag in (("no-reservation", "norsv"), ("reservation", "rsv")):
        CASES[f"packing_{_tag}_upfront_{_mode}.json"] = [
            "run", f"host-packing:{_variant}", "--policy", "upfront", "--set",
            f"on_failure={_mode}",
        ]  # fmt: skip


def _without_version(text: str) -> str:
    doc = json.loads(text)
    doc.pop("msixcore", None)
    return json.dumps(doc, indent=2, sort_keys=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_output(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / name
    assert main([*CASES[name], "--json", str(out)]) == 0
    capsys.readouterr()
    got = out.read_text()
    path = GOLDEN / name
    if os.environ.get("MSIXCORE_REGEN_GOLDEN") == "1":
        path.write_text(got)
    want = path.read_text()
    assert _without_version(got) == _without_version(want), f"{name} moved"

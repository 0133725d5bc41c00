"""docs/defaults.md lists every engine default and every scenario parameter:
the doc is checked against the model, so a new field without a source fails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from msixcore.engine_config import DEFAULTS
from msixcore.scenarios import SCENARIOS

DOC = Path(__file__).resolve().parents[1] / "docs" / "defaults.md"
SHARED = "Parameters shared by the scenarios"


def _sections() -> dict[str, dict[str, str]]:
    """Each ``## `` section's table: first cell (backticks stripped) → default cell."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = out.setdefault(line[3:].strip(), {})
        elif line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            current[cells[0].strip("`")] = cells[1]
    return out


def _flat(d: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        if isinstance(v, Mapping):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_every_engine_default_is_listed_with_its_value() -> None:
    table = next(t for name, t in _sections().items() if name.startswith("Engine config"))
    fields = dict(_flat(DEFAULTS))
    assert set(table) == set(fields)
    for name, value in fields.items():
        assert table[name] == f"`{json.dumps(value)}`", name


def test_every_scenario_parameter_is_listed() -> None:
    sections = _sections()
    shared = set(sections[SHARED])
    for s in SCENARIOS.values():
        own = {p.name for p in s.params} - shared
        assert set(sections[s.name]) == own, s.name
        # Every shared parameter a scenario has is in the shared table.
        assert {p.name for p in s.params} & shared <= shared


def test_the_doc_names_no_parameter_that_does_not_exist() -> None:
    sections = _sections()
    every = {p.name for s in SCENARIOS.values() for p in s.params}
    assert set(sections[SHARED]) <= every
    assert not re.search(r"\]\((?!https?:)[^)]*\.\./", DOC.read_text(encoding="utf-8"))

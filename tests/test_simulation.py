"""run_config, run_replications and the engine result contract."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from msixcore import (
    SCENARIOS,
    AccountingError,
    InvalidArgument,
    RunResult,
    RunStats,
    _core,
    merge_results,
    run_config,
    run_replications,
)
from msixcore.simulation import OUTCOMES, PHASES, parse_result


def _storm(seed: int = 1, resizes: int = 64) -> dict[str, Any]:
    storm = SCENARIOS["storm"]
    return storm.build({"devices": 2, "table": 8, "init": 2}, "noresize", seed, resizes)


def _books(fired: int, **outcomes: int) -> str:
    real = json.loads(_core.run_simulation(json.dumps(_storm())))
    counts = dict.fromkeys(OUTCOMES, 0) | outcomes
    return json.dumps({"books": {"fired": fired, "outcomes": counts}, "stats": real["stats"]})


def test_result_round_trips_through_its_json() -> None:
    text = _core.run_simulation(json.dumps(_storm()))
    r = parse_result(text)
    assert isinstance(r, RunResult) and isinstance(r.stats, RunStats)
    assert list(r.outcomes) == list(OUTCOMES)
    assert r.fired == sum(r.outcomes.values()) > 0
    assert r.resizes == r.stats.resize_requests == 64
    # The typed form serialises back to the engine's JSON, key for key.
    assert json.dumps(r.to_json(), sort_keys=True) == json.dumps(json.loads(text), sort_keys=True)


def test_stats_fields_are_the_engines() -> None:
    raw = json.loads(_core.run_simulation(json.dumps(_storm())))["stats"]
    assert sorted(f.name for f in dataclasses.fields(RunStats)) == sorted(raw)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_books(11, lost=4, delivered=6), "books do not balance: fired 11 != sum of outcomes 10"),
        ("not json", "engine result: not JSON"),
        ("[]", "engine result: not an object"),
        ('{"stats": {}}', "engine result: missing books.outcomes"),
        (_books(0, bogus=0), "engine result: unknown outcome 'bogus'"),
        (_books(-1, lost=-1), "engine result: books.fired must be a count"),
        (
            json.dumps(
                {
                    "books": {"fired": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)},
                    "phases": {
                        p: {"resizes": 0, "fired": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)}
                        for p in PHASES
                    },
                    "stats": {},
                }
            ),
            "engine result: stats does not match its schema",
        ),
        (
            json.dumps({"books": {"fired": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)}}),
            "engine result: phases must be probe, runtime",
        ),
    ],
)
def test_bad_results_raise_accounting_error(text: str, message: str) -> None:
    with pytest.raises(AccountingError) as info:
        parse_result(text)
    assert str(info.value).startswith(message)


def test_run_config_refuses_a_bad_config() -> None:
    with pytest.raises(InvalidArgument, match="devices: at least one device"):
        run_config({"stop": {"max_time_ns": 1}, "devices": []})


def test_result_is_frozen() -> None:
    r = run_config(_storm())
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.fired = 3  # type: ignore[misc]


def test_replications_merge_in_the_core() -> None:
    """The merged result of run_replications is the core's merge of the
    single-seed runs, whatever the thread count."""
    seeds = [5, 6, 7]
    reps = run_replications(_storm(), seeds, threads=2)
    singles = [run_config({**_storm(), "seed": s}) for s in seeds]
    assert [r.seed for r in reps.runs] == seeds
    assert [r.fired for r in reps.runs] == [s.fired for s in singles]
    assert reps.merged == merge_results(singles)
    assert reps.merged == run_replications(_storm(), seeds, threads=1).merged
    m = reps.merged.stats
    assert m.resize_requests == sum(s.stats.resize_requests for s in singles)
    assert m.peak_usage.cpu_vectors == max(s.stats.peak_usage.cpu_vectors for s in singles)
    # Each replication is its own host: the merged final usage is the largest.
    assert m.final_usage.irtes == max(s.stats.final_usage.irtes for s in singles)

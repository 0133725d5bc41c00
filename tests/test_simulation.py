"""run_config and the engine result contract, with a fake engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msixcore import AccountingError, EngineUnavailable, RunResult, _core, run_config
from msixcore.simulation import OUTCOMES, engine_available, parse_result

CONFIG: dict[str, Any] = {"devices": [], "stop": {"max_time_ns": 1}}


def _books(fired: int, **outcomes: int) -> str:
    counts = dict.fromkeys(OUTCOMES, 0) | outcomes
    return json.dumps({"books": {"fired": fired, "outcomes": counts}, "stats": {"resizes": 3}})


def test_parse_result_keeps_outcome_order() -> None:
    r = parse_result(_books(10, lost=4, delivered=6))
    assert isinstance(r, RunResult)
    assert list(r.outcomes) == list(OUTCOMES)
    assert r.fired == 10 and r.outcomes["lost"] == 4 and r.stats == {"resizes": 3}
    assert r.resizes == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_books(11, lost=4, delivered=6), "books do not balance: fired 11 != sum of outcomes 10"),
        ("not json", "engine result: not JSON"),
        ("[]", "engine result: not an object"),
        ('{"stats": {}}', "engine result: missing books.outcomes"),
        (_books(0, bogus=0), "engine result: unknown outcome 'bogus'"),
        (_books(-1, lost=-1), "engine result: books.fired must be a count"),
    ],
)
def test_bad_results_raise_accounting_error(text: str, message: str) -> None:
    with pytest.raises(AccountingError) as info:
        parse_result(text)
    assert str(info.value).startswith(message)


def test_run_config_calls_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake(text: str) -> str:
        seen.append(text)
        return _books(5, delivered=5)

    monkeypatch.setattr(_core, "run_simulation", fake, raising=False)
    assert engine_available()
    r = run_config({"stop": {"max_time_ns": 1}, "devices": []})
    assert r.fired == 5
    # Sorted keys: the same config always crosses as the same text.
    assert seen == ['{"devices": [], "stop": {"max_time_ns": 1}}']


def test_run_config_checks_the_books(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_core, "run_simulation", lambda _t: _books(6, lost=5), raising=False)
    with pytest.raises(AccountingError, match="do not balance"):
        run_config(CONFIG)


def test_missing_engine_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_core, "run_simulation", raising=False)
    assert not engine_available()
    with pytest.raises(EngineUnavailable, match="no run_simulation"):
        run_config(CONFIG)


def test_result_is_frozen() -> None:
    r = parse_result(_books(0))
    with pytest.raises(AttributeError):
        r.fired = 3  # type: ignore[misc]

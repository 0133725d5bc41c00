"""Scenario files (TOML or JSON) and ``--set`` overrides.

A file either names a built-in scenario with parameter overrides::

    base = "storm"            # or "host-packing:no-reservation"
    policy = "noresize"       # optional; --policy overrides
    seed = 7                  # optional; --seed overrides
    resizes = 2048            # optional; --resizes overrides
    [params]
    devices = 4
    gap = "2ms"               # seconds, or a string with a unit

or gives a full engine config, under ``config`` (with optional ``name``,
``policy``, ``seed``, ``resizes``) or as the whole file (a JSON ``SimConfig``)::

    name = "my-host"
    [config]
    devices = [{ entries = 4, rate = 1000.0, program = [...] }]
    stop = { max_time_ns = 1_000_000_000 }

A file with only ``params`` (and optional policy/seed/resizes) applies to the
scenario named on the command line. Every error is one line naming the file
and the field: ``storm.toml: params.devices: must be ≥ 1, got 0``.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msixcore._core import InvalidArgument
from msixcore.engine_config import POLICIES
from msixcore.nesting import MAX_DEPTH, check_depth
from msixcore.scenarios import Scenario, get_scenario

__all__ = [
    "RunSpec",
    "apply_config_override",
    "load_file",
    "parse_assignment",
    "parse_spec",
    "read_document",
]

_SCENARIO_KEYS = ("base", "name", "description", "params", "policy", "seed", "resizes")
_CONFIG_KEYS = ("config", "name", "description", "policy", "seed", "resizes")
_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class RunSpec:
    """What a file asks to run: a scenario (``base``, optional variant and raw
    parameter overrides) or a full engine ``config``; plus optional policy,
    seed and resize target."""

    source: str
    name: str | None = None
    scenario: Scenario | None = None
    variant: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    policy: str | None = None
    seed: int | None = None
    resizes: int | None = None


def _fail(source: str, msg: str) -> InvalidArgument:
    return InvalidArgument(f"{source}: {msg}")


def _opt_int(doc: Mapping[str, Any], key: str, source: str, lo: int) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= _U64:
        raise _fail(source, f"{key}: must be an integer ≥ {lo}, got {value!r}")
    return value


def _opt_str(doc: Mapping[str, Any], key: str, source: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(source, f"{key}: must be a string, got {value!r}")
    return value


def parse_spec(doc: object, source: str) -> RunSpec:
    """Check a parsed file (a dict) and turn it into a :class:`RunSpec`."""
    check_depth(doc, source)
    if not isinstance(doc, Mapping):
        raise _fail(source, "must hold a table/object at the top level")
    if "base" in doc and "config" in doc:
        raise _fail(source, "base: give base (a built-in scenario) or config, not both")
    if "config" not in doc and "base" not in doc and "devices" in doc:
        # A full engine config: the engine validates it when it runs.
        return RunSpec(source=source, config=copy.deepcopy(dict(doc)))
    keys = _CONFIG_KEYS if "config" in doc else _SCENARIO_KEYS
    for key in doc:
        if key not in keys:
            raise _fail(source, f"{key}: unknown key (expected one of {', '.join(keys)})")
    policy = _opt_str(doc, "policy", source)
    if policy is not None and policy not in POLICIES:
        raise _fail(source, f"policy: unknown policy {policy!r} (known: {', '.join(POLICIES)})")
    name = _opt_str(doc, "name", source)
    _opt_str(doc, "description", source)
    seed = _opt_int(doc, "seed", source, 0)
    resizes = _opt_int(doc, "resizes", source, 1)
    if "config" in doc:
        if not isinstance(doc["config"], Mapping):
            raise _fail(source, "config: must be a table/object")
        return RunSpec(
            source=source,
            name=name,
            config=copy.deepcopy(dict(doc["config"])),
            policy=policy,
            seed=seed,
            resizes=resizes,
        )
    params = doc.get("params", {})
    if not isinstance(params, Mapping):
        raise _fail(source, "params: must be a table of parameter = value")
    scenario: Scenario | None = None
    variant: str | None = None
    base = _opt_str(doc, "base", source)
    if base is not None:
        try:
            scenario, variant = get_scenario(base)
            merged = {**(scenario.variant(variant) if variant else {}), **params}
            scenario.resolve(merged)
        except InvalidArgument as exc:
            msg = str(exc)
            where = msg if msg.startswith(("scenario", "variant")) else f"params.{msg}"
            raise _fail(source, where) from None
    return RunSpec(
        source=source,
        name=name,
        scenario=scenario,
        variant=variant,
        params=dict(params),
        policy=policy,
        seed=seed,
        resizes=resizes,
    )


def read_document(path: str | Path) -> object:
    """Read a ``.toml`` or ``.json`` file into Python values; every error is
    ``InvalidArgument`` with one line naming the file."""
    p = Path(path)
    source = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise _fail(source, "unknown file type (use .toml or .json)")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _fail(source, f"cannot read: {exc.strerror or exc}") from None
    kind = "TOML" if suffix == ".toml" else "JSON"
    try:
        doc = tomllib.loads(data.decode()) if suffix == ".toml" else json.loads(data)
    except UnicodeDecodeError:
        raise _fail(source, "not UTF-8 text") from None
    except RecursionError:
        raise _fail(source, f"invalid {kind}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _fail(source, f"invalid {kind}: {exc}") from None
    # Its depth is checked by the parser it goes to (parse_spec, parse_sweep_spec).
    return doc


def load_file(path: str | Path) -> RunSpec:
    """Read and check a ``.toml`` or ``.json`` scenario file."""
    return parse_spec(read_document(path), str(path))


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``key=value`` (from ``--set``); ``InvalidArgument`` if malformed."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidArgument(f"--set: expected key=value, got {text!r}")
    return key, value.strip()


_INDEX_RE = re.compile(r"\[(\d+)\]")


def _literal(value: str, where: str) -> object:
    try:
        parsed: object = json.loads(value)
    except RecursionError:
        raise InvalidArgument(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        return value
    check_depth(parsed, where)
    return parsed


def apply_config_override(config: dict[str, Any], key: str, value: str) -> None:
    """Set a dotted path of a full engine config from ``--set``:
    ``host.ncpus=16``, ``devices[0].rate=1000`` (values as JSON literals,
    else strings). The result is validated by the caller."""
    parts = _INDEX_RE.sub(r".\1", key).split(".")
    node: Any = config
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise InvalidArgument(f"{where}: no such list element")
            if last:
                node[int(part)] = _literal(value, where)
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = _literal(value, where)
            else:
                node = node.setdefault(part, {})
        else:
            raise InvalidArgument(f"{where}: cannot set a field inside a {type(node).__name__}")

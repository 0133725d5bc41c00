"""The package imports, exposes its error hierarchy, and the CLI runs."""

import subprocess
import sys

import pytest

import msixcore
from msixcore.cli import main


def test_error_hierarchy() -> None:
    assert issubclass(msixcore.InvalidArgument, msixcore.MsixError)
    assert issubclass(msixcore.InvalidArgument, ValueError)
    for exc in (msixcore.NoSpace, msixcore.InvalidOperation, msixcore.MmioError):
        assert issubclass(exc, msixcore.MsixError)
        assert not issubclass(exc, ValueError)


def test_cli_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert msixcore.__version__ in capsys.readouterr().out


def test_cli_unknown_command_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "msixcore", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def _public_members(obj: object) -> list[str]:
    return [n for n in dir(obj) if not n.startswith("_") and n not in ("args", "with_traceback")]


def test_every_public_name_has_a_runtime_docstring() -> None:
    """help() works: every exported class, function, method and property carries a doc."""
    from msixcore import _core

    missing = []
    for name in msixcore.__all__:
        obj = getattr(msixcore, name)
        if not isinstance(obj, type) and not callable(obj):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        # Members of the extension's classes (dataclass fields of the Python
        # layer are documented in their class docstrings).
        in_core = getattr(_core, name, None) is obj
        if in_core and isinstance(obj, type) and not issubclass(obj, BaseException):
            for attr in _public_members(obj):
                if not (getattr(obj, attr).__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_every_stub_name_has_a_docstring() -> None:
    """The hand-written stub documents every class, function, method and property."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(msixcore.__file__).parent / "_core.pyi").read_text())
    missing = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                dunder = node.name.startswith("__") and node.name != "__new__"
                if not dunder and ast.get_docstring(node) is None:
                    missing.append(prefix + node.name)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    assert missing == []


# The engine's JSON-level entry points: the typed Python layer wraps them
# (engine_config, simulation, scenarios, stats) instead of re-exporting them.
_WRAPPED = {
    "config_schema",
    "merge_run_results",
    "normalize_config",
    "platform_behaviours",
    "rate_per_million",
    "run_replications",
    "storm_closed_form_lost",
    "storm_config",
    "storm_defaults",
    "validate_config",
}


def test_all_matches_the_stub() -> None:
    """The package re-exports everything the extension's stub lists, except
    the JSON-level entry points the typed layer wraps."""
    from msixcore import _core

    assert set(_core.__all__) - _WRAPPED <= set(msixcore.__all__)
    for name in _core.__all__:
        assert hasattr(_core, name)
    # A name the package shares with the extension is either the same object
    # or its typed wrapper (never a different meaning).
    assert msixcore.run_replications is not _core.run_replications
    assert msixcore.run_replications.__module__ == "msixcore.simulation"

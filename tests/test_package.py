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

"""Long runs can be stopped (Ctrl-C, or `Simulation.cancel` from another
thread) and go on afterwards; a `Simulation` shared by threads takes calls in
turn."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import msixcore
from msixcore import _core
from msixcore.scenarios import SCENARIOS

_CLI = [sys.executable, "-m", "msixcore"]


def _storm(resizes: int) -> dict[str, Any]:
    return SCENARIOS["storm"].build({"devices": 4}, "noresize", 3, resizes)


def test_cancel_from_another_thread_stops_a_run_that_then_goes_on() -> None:
    cfg = json.dumps(_storm(20_000))
    whole = _core.run_simulation(cfg)
    sim = _core.Simulation(cfg)
    timer = threading.Timer(0.05, sim.cancel)
    timer.start()
    with pytest.raises(msixcore.InvalidOperation, match="interrupted: the run was cancelled"):
        sim.run()
    timer.join()
    assert not sim.finished and sim.now_ns > 0
    # Stopped where its state was whole: it goes on to the same result.
    assert sim.run() == whole


def test_a_simulation_shared_by_threads_takes_calls_in_turn() -> None:
    cfg = json.dumps(_storm(4_000))
    whole = _core.run_simulation(cfg)
    sim = _core.Simulation(cfg)
    errors: list[BaseException] = []
    step = 2_000_000  # ns

    def stepper(offset: int) -> None:
        try:
            t = offset
            while not sim.finished:
                sim.step_until(t)
                sim.books()
                t += 2 * step
        except BaseException as e:  # collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=stepper, args=(k * step,)) for k in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    # Interleaved stepping by two threads: the result of one run.
    assert sim.result() == whole


def test_ctrl_c_stops_a_cli_run_with_status_130() -> None:
    proc = subprocess.Popen(
        [*_CLI, "run", "storm", "--policy", "noresize", "--resizes", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "msixcore: error: interrupted", err


def test_ctrl_c_reaches_python_as_keyboard_interrupt() -> None:
    script = (
        "import json, signal, threading, os\n"
        "from msixcore import _core\n"
        "from msixcore.scenarios import SCENARIOS\n"
        "cfg = SCENARIOS['storm'].build({}, 'noresize', 1, 100_000_000)\n"
        "threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "try:\n"
        "    _core.run_simulation(json.dumps(cfg))\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "KeyboardInterrupt", proc.stderr


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.step_until(-1), "t_ns = -1 is out of range"),
        (lambda s: s.step_until(2**64), "t_ns = 18446744073709551616 is out of range"),
        (lambda s: s.step_until(True), "t_ns must be an int, not bool"),
        (lambda s: s.drain(-1), "cpu = -1 is out of range"),
        (lambda s: s.trace(from_ns=-5), "from_ns = -5 is out of range"),
    ],
)
def test_engine_arguments_are_range_checked(call: Any, message: str) -> None:
    sim = _core.Simulation(json.dumps(_storm(16)))
    with pytest.raises(msixcore.InvalidArgument, match=message):
        call(sim)


def test_replication_arguments_are_range_checked() -> None:
    cfg = json.dumps(_storm(16))
    with pytest.raises(msixcore.InvalidArgument, match=r"seeds\[\] = -1 is out of range"):
        _core.run_replications(cfg, [1, -1])
    with pytest.raises(msixcore.InvalidArgument, match="threads must be an int, not bool"):
        _core.run_replications(cfg, [1], threads=True)

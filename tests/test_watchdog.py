"""The watchdog between distributed-training processes: real processes on 127.0.0.1, killed for real.

Each process here is a small Python program that links its watchdog and then waits, standing in
for a training process (no TensorFlow, so the whole module takes seconds).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from ports import free_port
from train.watchdog import EXIT_PEER_STOPPED, Watchdog, WatchdogError

PROCESS = """
import sys, time
from train.watchdog import Watchdog
pid, n, port, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
dog = Watchdog.link("127.0.0.1", port, pid, n, join_timeout=30, silence=float(sys.argv[5]))
dog.trap_signals()
print("linked", flush=True)
if mode == "finish":
    time.sleep(0.5)
    dog.finish()
    time.sleep(1.5)  # a peer that exits after finishing is no failure
    print("finished", flush=True)
    sys.exit(0)
if mode == "fail":
    dog.abort("disk full", 2)
if mode == "mute":  # a frozen host: the process lives, its heartbeats stop
    links = list(dog._peers.values())  # keep the sockets open
    dog._peers.clear()
time.sleep(60)
"""

#: How long a peer may take to notice; the watchdog itself reacts within about a second.
BOUND_SECONDS = 10


def start_group(modes: list[str], silence: float = 60.0) -> list[subprocess.Popen]:
    port = free_port()
    group = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, str(i), str(len(modes)), str(port), mode, str(silence)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i, mode in enumerate(modes)
    ]
    for process in group:
        if process.stdout.readline() != "linked\n":  # ended already (stopped by a failing peer)
            process.wait(timeout=BOUND_SECONDS)
    return group


def finish(group: list[subprocess.Popen], timeout: float = BOUND_SECONDS) -> list[tuple[int, str]]:
    """(exit code, stderr) of each process; fails the test if one is still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for process in group:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
            results.append((process.returncode, process.stderr.read()))
    finally:
        for process in group:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def test_killed_worker_ends_the_coordinator_at_once():
    coordinator, worker = start_group(["wait", "wait"])
    worker.kill()
    started = time.monotonic()
    (code, err), _ = finish([coordinator, worker])
    assert time.monotonic() - started < BOUND_SECONDS
    assert code == EXIT_PEER_STOPPED
    assert err.strip().splitlines() == [
        "error: distributed training stopped: process 1 at 127.0.0.1 stopped without finishing "
        "(killed or crashed); ending process 0 too"
    ]


def test_killed_coordinator_ends_every_worker():
    group = start_group(["wait", "wait", "wait"])
    group[0].kill()
    results = finish(group)
    for pid, (code, err) in list(enumerate(results))[1:]:
        assert code == EXIT_PEER_STOPPED
        assert "process 0 (the coordinator) at 127.0.0.1:" in err and f"ending process {pid} too" in err


def test_sigterm_stops_that_process_and_then_the_others():
    """JAX traps SIGTERM in a training process; the watchdog's handler must still end it."""
    group = start_group(["wait", "wait", "wait"])
    group[2].send_signal(signal.SIGTERM)
    (code0, err0), (code1, err1), (code2, err2) = finish(group)
    assert code2 == 128 + signal.SIGTERM and "process 2 received SIGTERM; stopping" in err2
    assert code0 == code1 == EXIT_PEER_STOPPED
    assert err0.strip() == "error: distributed training stopped: process 2 received SIGTERM; ending process 0 too"
    assert err1.strip() == "error: distributed training stopped: process 2 received SIGTERM; ending process 1 too"


def test_a_failing_process_says_why_everywhere():
    group = start_group(["wait", "fail", "wait"])
    (code0, err0), (code1, _), (code2, err2) = finish(group)
    assert code1 == 2
    assert code0 == code2 == EXIT_PEER_STOPPED
    assert "process 1 failed: disk full; ending process 0 too" in err0
    assert "process 1 failed: disk full; ending process 2 too" in err2


def test_a_failing_coordinator_says_why_everywhere():
    group = start_group(["fail", "wait"])
    (code0, _), (code1, err1) = finish(group)
    assert (code0, code1) == (2, EXIT_PEER_STOPPED)
    assert err1.strip() == "error: distributed training stopped: process 0 failed: disk full; ending process 1 too"


def test_finishing_processes_exit_cleanly():
    results = finish(start_group(["finish", "finish"]))
    assert results == [(0, ""), (0, "")]


def test_silent_peer_is_taken_for_dead():
    coordinator, worker = start_group(["wait", "mute"], silence=2.0)
    [(code, err)] = finish([coordinator])
    worker.kill()
    worker.wait()
    assert code == EXIT_PEER_STOPPED
    assert "no sign of life from process 1 at 127.0.0.1 for 2 s" in err


def test_missing_worker_is_named_after_the_join_timeout():
    started = time.monotonic()
    with pytest.raises(WatchdogError, match=r"process\(es\) 1, 2 did not join within 1 s"):
        Watchdog.link("127.0.0.1", free_port(), 0, 3, join_timeout=1.0)
    assert time.monotonic() - started < 5


def test_unreachable_coordinator_is_named_after_the_join_timeout():
    port = free_port()
    with pytest.raises(WatchdogError, match=f"could not reach process 0's watchdog at 127.0.0.1:{port}"):
        Watchdog.link("127.0.0.1", port, 1, 2, join_timeout=1.0)

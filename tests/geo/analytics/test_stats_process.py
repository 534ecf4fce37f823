"""The statistics process: answers like the request would, and never outlives its server."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from geo.analytics import stats_process

SERVER = """
import os, sys, time
from geo.analytics import stats_process
if __name__ == "__main__":
    print(stats_process.submit(os.getpid)(), flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_computes_what_the_request_would():
    values = np.arange(10.0)
    assert stats_process.submit(np.cumsum, values)().tolist() == np.cumsum(values).tolist()
    assert stats_process.submit(os.getpid)() != os.getpid()


def test_worker_exits_when_its_server_is_killed(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)  # no exit handlers run
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        proc.kill()
        proc.wait(10)


def test_a_task_sent_right_after_the_idle_worker_was_killed_is_answered():
    before = stats_process.submit(os.getpid)()
    os.kill(before, signal.SIGKILL)
    # Sent before the pool has noticed: pebble gives the pool up; the wait tries a new one.
    assert stats_process.submit(np.cumsum, np.arange(3.0))().tolist() == [0.0, 1.0, 3.0]
    assert stats_process.submit(os.getpid)() != before

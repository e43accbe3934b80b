"""The crash tests' shared step: start a child process, SIGKILL it mid-work."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable


def kill_mid_work(
    child: subprocess.Popen[bytes], ready: Callable[[], bool], *, what: str, timeout_s: float
) -> None:
    """Wait until ``ready()`` (the child has done part of its work), then SIGKILL it; the
    child's stderr explains a child that died first, ``what`` one that made no progress."""
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, f"the child {what} made no progress"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

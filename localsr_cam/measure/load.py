"""A reproducible CPU load: N busy processes beside the pipeline (``bench --load N``).

Each process spins in pure Python, as a meeting app encoding video would keep a core
busy. They are started by :meth:`BusyLoad.start` (or ``with``) and killed by
:meth:`BusyLoad.stop`, which is safe to call twice and runs on errors and Ctrl-C when the
load is used as a context manager. Should this process die without stopping them
(``kill -9``), each one notices within milliseconds that its parent changed and exits.

They run in this process's session, so with the kernel's autogroup scheduling they share
one scheduling group with the pipeline's threads: the harder case, where every busy
thread counts as much as each of ours (another session would give the whole pipeline
half the machine).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 2.0

_SPIN = """\
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100000):
        pass
"""
"""The busy process: spin, checking every ~2 ms that the parent is still there."""


class BusyLoad:
    """``count`` busy processes; ``pids`` lists the running ones."""

    def __init__(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        self.count = count
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.poll() is None]

    def start(self) -> BusyLoad:
        try:
            for _ in range(self.count):
                self._processes.append(subprocess.Popen(
                    [sys.executable, "-S", "-c", _SPIN, str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
        except BaseException:
            self.stop()
            raise
        if self.count:
            log.info("CPU load: %d busy processes (pids %s)", self.count,
                     ", ".join(map(str, self.pids)))
        return self

    def stop(self) -> None:
        """Kill every busy process and reap it; safe to call twice."""
        processes, self._processes = self._processes, []
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("busy process %d did not exit", process.pid)

    def __enter__(self) -> BusyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

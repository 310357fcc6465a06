"""The busy-process load of ``bench --load``: it loads the CPU, and no process is left."""

from __future__ import annotations

import os
import time

import pytest

from localsr_cam.measure.load import BusyLoad


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def user_ticks(pid: int) -> int:
    """User CPU time of a process in clock ticks (Linux /proc)."""
    from pathlib import Path

    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11])


def test_busy_load_runs_busy_processes_and_stops_them():
    with BusyLoad(2) as load:
        pids = load.pids
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        deadline = time.perf_counter() + 5.0
        while not all(user_ticks(pid) for pid in pids) and time.perf_counter() < deadline:
            time.sleep(0.05)
        assert all(user_ticks(pid) > 0 for pid in pids)  # they use the CPU
    assert load.pids == [] and not any(alive(pid) for pid in pids)
    load.stop()  # safe twice


def test_busy_load_stops_on_an_error_and_on_ctrl_c():
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        load = BusyLoad(1)
        with pytest.raises(type(exc)), load:
            pids = load.pids
            raise exc
        assert not any(alive(pid) for pid in pids)


def test_a_busy_process_exits_when_its_parent_is_gone(tmp_path):
    import subprocess
    import sys

    script = ("import sys; from localsr_cam.measure.load import BusyLoad; "
              "load = BusyLoad(1).start(); print(load.pids[0], flush=True); "
              "import os; os._exit(0)")  # dies without stopping it
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "PYTHONPATH": os.getcwd()})
    pid = int(out.stdout.split()[0])
    deadline = time.perf_counter() + 5.0
    while alive(pid) and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_negative_load_is_refused():
    with pytest.raises(ValueError):
        BusyLoad(-1)


def test_bench_load_leaves_no_process_also_when_interrupted(monkeypatch, tmp_path):
    import json

    from localsr_cam.cli.main import main
    from localsr_cam.measure import bench

    started: list[int] = []
    original = BusyLoad.start

    def recording_start(self):
        original(self)
        started.extend(self.pids)
        return self

    monkeypatch.setattr(BusyLoad, "start", recording_start)
    out = tmp_path / "bench.json"
    assert main(["bench", "--mode", "bicubic", "--frames", "10", "--warmup", "2", "--input",
                       "96x54", "--no-progress", "--load", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["load"] == 2 and len(started) == 2
    assert isinstance(report["modes"]["bicubic"]["cpu_percent"], float)
    assert not any(alive(pid) for pid in started)

    started.clear()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run_mode", interrupted)
    assert main(["bench", "--mode", "bicubic", "--frames", "10", "--load", "1",
                 "--no-progress"]) == 130  # Ctrl-C
    assert len(started) == 1 and not any(alive(pid) for pid in started)


def test_bench_refuses_a_negative_load(capsys):
    from localsr_cam.cli.main import main

    assert main(["bench", "--load", "-1", "--no-progress"]) == 2
    assert "--load" in capsys.readouterr().err

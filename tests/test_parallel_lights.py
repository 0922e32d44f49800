"""Lights in parallel worker processes: the same bytes whatever the number of workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkflow.exceptions import ConfigError
from darkflow.pipeline import LocalExecutor, make_executor, run_night
from darkflow.pipeline.executors import MIN_PARALLEL_BYTES, auto_workers

# files of a work directory that hold its results (the registry and logs hold times and run ids)
RESULT_FILES = ("frame_report.csv", "masters.csv", "catalog.csv", "decisions.jsonl")


def _results(workdir: Path) -> dict[str, bytes]:
    out = {name: (workdir / name).read_bytes() for name in RESULT_FILES}
    for sub in ("artifacts", "calibrated", "nights", "qa"):
        for p in sorted((workdir / sub).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(workdir))] = p.read_bytes()
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_one_two_three_workers_give_identical_bytes(tiny_night, tmp_path):
    runs = {}
    for workers in (1, 2, 3):
        executor = LocalExecutor(workers=workers)
        result = run_night(tiny_night, workdir=tmp_path / f"w{workers}", executor=executor)
        assert result.lights_computed > 3
        runs[workers] = _results(tmp_path / f"w{workers}")
    assert runs[1].keys() == runs[2].keys() == runs[3].keys()
    for name in runs[1]:
        assert runs[2][name] == runs[1][name], name
        assert runs[3][name] == runs[1][name], name


@pytest.mark.integration
def test_two_workers_give_the_serial_bytes(tiny_run, tiny_night, tmp_path):
    """The default suite's version: the tiny night's default (serial) run against 2 workers."""
    serial, _, _ = tiny_run
    progress = []
    run_night(
        tiny_night,
        workdir=tmp_path / "w2",
        executor=LocalExecutor(workers=2),
        progress=lambda stage, done, total: progress.append((stage, done, total)),
    )
    a, b = _results(serial), _results(tmp_path / "w2")
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    lights = [p for p in progress if p[0] == "lights"]
    assert lights[0][1] == 0 and lights[-1][1] == lights[-1][2] > 0  # 0 .. all done


def test_how_many_workers():
    executor = LocalExecutor()
    small = [type("Spec", (), {"working_set_bytes": 1000})() for _ in range(8)]
    assert executor.n_workers(small, "lights") == 1  # a few small lights: not worth processes
    big = [type("Spec", (), {"working_set_bytes": MIN_PARALLEL_BYTES})() for _ in range(8)]
    assert executor.n_workers(big, "lights") == min(auto_workers(MIN_PARALLEL_BYTES), 8)
    assert executor.n_workers(big, "masters") == 1  # masters: one at a time, every core each
    assert LocalExecutor(workers=3).n_workers(small, "lights") == 3
    assert LocalExecutor(workers=3).n_workers(small[:2], "lights") == 2
    assert LocalExecutor(workers=1).n_workers(big, "lights") == 1
    # memory bounds the count: two lights' worth of memory for 16 cores gives 4 workers
    assert auto_workers(10, cpus=16, memory=80) == 4
    assert auto_workers(10**12, cpus=16, memory=1) == 1
    with pytest.raises(ConfigError):
        LocalExecutor(workers=-1)


def test_workers_mean_local_processes_unless_dask_is_asked_for():
    assert isinstance(make_executor(workers=2), LocalExecutor)
    assert make_executor(workers=2).workers == 2
    assert make_executor().workers is None


def _die(spec: int) -> int:
    """A light job whose worker process dies (killed, out of memory)."""
    import os

    if spec == 1:
        os._exit(9)
    return spec


def _square(spec: int) -> int:
    return spec * spec


def test_a_dead_worker_is_one_clear_error():
    from darkflow.exceptions import ExecutorError

    executor = LocalExecutor(workers=2)
    assert executor.map(_square, [1, 2, 3], stage="lights", progress=lambda *a: None) == [1, 4, 9]
    with pytest.raises(ExecutorError, match="worker process calibrating lights died"):
        executor.map(_die, [0, 1, 2], stage="lights", progress=lambda *a: None)


def test_warm_up_starts_the_server_the_lights_then_use():
    """The worker processes' server is started before the lights (its imports overlap the
    masters) only when the lights will run in parallel, and the lights' pool forks from it."""
    import multiprocessing
    from multiprocessing import forkserver

    big = [MIN_PARALLEL_BYTES] * 4
    assert LocalExecutor(workers=1).warm_up(big) is False
    assert LocalExecutor().warm_up([1000] * 4) is False  # a few small lights: serial
    assert LocalExecutor(workers=2).warm_up([1000]) is False  # one light
    executor = LocalExecutor(workers=2)
    if "forkserver" not in multiprocessing.get_all_start_methods():
        assert executor.warm_up(big) is False
        return
    assert executor.warm_up(big) is True
    server = forkserver._forkserver._forkserver_pid
    assert server is not None
    assert executor.map(_square, [1, 2, 3], stage="lights", progress=lambda *a: None) == [1, 4, 9]
    assert forkserver._forkserver._forkserver_pid == server

"""Failures of the machine under a run: a full disk (tmpfs), kill -9 at random points, Dask
clusters that vanish. Each ends with one clear message and, rerun, the bytes of an uninterrupted
run; nothing hangs. The cheap cases run by default, sweeps and clusters under ``slow``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # whole runs under a full disk, kill -9, lost schedulers

CLI = [sys.executable, "-m", "darkflow.cli"]


def _run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, check=False, **kw
    )


@pytest.fixture(scope="module")
def reference(tiny_night, tmp_path_factory) -> Path:
    """The tiny night calibrated in one uninterrupted CLI run."""
    work = tmp_path_factory.mktemp("reference") / "w"
    proc = _run("run", tiny_night, "-w", work, "-q")
    assert proc.returncode == 0, proc.stderr
    return work


def _outputs(work: Path) -> dict[str, bytes]:
    """The bytes a user keeps: calibrated lights, masters, and the report CSVs (with the work
    directory's own path and the cache column taken out)."""
    out = {}
    for sub in ("calibrated", "artifacts"):
        for path in sorted((work / sub).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                out[str(path.relative_to(work))] = path.read_bytes()
    for name in ("frame_report.csv", "masters.csv", "catalog.csv"):
        rows = list(csv.DictReader(io.StringIO((work / name).read_text(encoding="utf-8"))))
        for row in rows:
            row.pop("cached", None)
        text = json.dumps(rows, sort_keys=True).replace(str(work), "<W>")
        out[name] = text.encode()
    return out


@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs to fill a disk (needs root/CAP_SYS_ADMIN): {proc.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _check_full_disk_run(tiny_night: Path, mount: Path, size: str, reference: Path) -> None:
    with _tmpfs(mount, size):
        work = mount / "w"
        proc = _run("run", tiny_night, "-w", work, "-q")
        if proc.returncode == 0:  # the night fitted after all: nothing to check here
            return
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "disk full" in errors[0], proc.stderr
        for log in (work / "logs").glob("*.jsonl"):
            for line in log.read_text().splitlines():  # whole lines only
                json.loads(line)
        status = _run("status", work)
        if status.returncode == 0:
            assert "running" not in status.stdout.split("recent runs:")[-1], status.stdout
        # space comes back (copy what was finished to a roomy disk): the rerun completes and
        # equals an uninterrupted run
        roomy = mount.parent / f"roomy-{size}"
        shutil.copytree(work, roomy, symlinks=True)
    proc = _run("run", tiny_night, "-w", roomy, "-q")
    assert proc.returncode == 0, proc.stderr
    assert _outputs(roomy) == _outputs(reference)


def test_a_full_disk_stops_the_run_with_one_message(tiny_night, tmp_path, reference):
    _check_full_disk_run(tiny_night, tmp_path / "mnt", "600k", reference)


@pytest.mark.slow
@pytest.mark.parametrize("size", ["64k", "200k", "400k", "900k", "1400k", "1800k"])
def test_a_full_disk_at_every_stage(tiny_night, tmp_path, reference, size):
    _check_full_disk_run(tiny_night, tmp_path / "mnt", size, reference)


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_equals_an_uninterrupted_run(
    tiny_night, tmp_path, reference
):
    work = tmp_path / "w"
    rng = random.Random(2026)
    for _ in range(6):
        proc = subprocess.Popen(
            [*CLI, "run", str(tiny_night), "-w", str(work), "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 6.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    status = _run("status", work)
    assert status.returncode == 0, status.stderr
    # a run killed after it registered shows as interrupted (a kill during start-up leaves no
    # run at all); none stays "running"
    assert " running " not in status.stdout
    proc = _run("run", tiny_night, "-w", work, "-q")
    assert proc.returncode == 0, proc.stderr
    ours = _outputs(work)
    theirs = _outputs(reference)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted(tiny_night, tmp_path):
    work = tmp_path / "w"
    proc = subprocess.Popen(
        [*CLI, "run", str(tiny_night), "-w", str(work), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (work / "registry.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    status = _run("status", work)
    assert "interrupted" in status.stdout, status.stdout


# ----------------------------------------------------------------------------- Dask
@pytest.mark.slow
def test_a_scheduler_without_workers_is_a_clear_error():
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from darkflow.exceptions import ExecutorError
    from darkflow.pipeline import DaskExecutor

    with LocalCluster(n_workers=0, dashboard_address=None, processes=False) as cluster:
        with pytest.raises(ExecutorError, match="has no worker"):
            DaskExecutor(cluster.scheduler_address, timeout_s=2)


@pytest.mark.slow
def test_a_scheduler_lost_mid_run_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    import socket

    from darkflow.exceptions import ExecutorError
    from darkflow.pipeline import DaskExecutor

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli"]
    scheduler = subprocess.Popen(
        [
            *dask[:2],
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [
                *dask[:2],
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        executor = DaskExecutor(address, timeout_s=20)
        executor.timeout_s = 3  # reach it patiently, then lose it quickly
        t0 = time.monotonic()

        def kill_on_first_tick(stage, done, total):
            if scheduler.poll() is None and time.monotonic() - t0 > 1.0:
                scheduler.kill()

        with pytest.raises(ExecutorError, match="lost the Dask cluster"):
            executor.map(time.sleep, [0.5] * 40, stage="test", progress=kill_on_first_tick)
        executor.close()
    finally:
        for proc in (worker, scheduler):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

"""Shared fixtures: one simulated tiny night, calibrated once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    """Browser tests skip without Chromium locally, but CI must have it (.ci/run installs it)."""
    have_browser = any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))
    if have_browser or ON_CI:
        return
    skip = pytest.mark.skip(reason="needs Chromium (Debian package `chromium`)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_night(tmp_path_factory) -> Path:
    from darkflow.simulate import simulate_night

    out = tmp_path_factory.mktemp("night") / "data"
    simulate_night(out, preset="tiny", seed=7)
    return out


def benchmark_module(name: str):
    """A script of ``benchmarks/`` imported as a module (once per session)."""
    import importlib.util
    import sys

    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """(size, mtime_ns, first bytes) of every file below root: proves inputs are untouched."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            with open(path, "rb") as fh:
                out[str(path)] = (st.st_size, st.st_mtime_ns, fh.read(4096))
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_night, tmp_path_factory):
    """The tiny night calibrated by `run_night`; returns (workdir, result, input snapshot before)."""
    from darkflow.pipeline import run_night

    before = snapshot(tiny_night)
    workdir = tmp_path_factory.mktemp("work")
    result = run_night(tiny_night, workdir=workdir)
    return workdir, result, before

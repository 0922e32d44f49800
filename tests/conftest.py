"""Shared fixtures: one simulated tiny night, calibrated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# numba reads NUMBA_NUM_THREADS once, at import: the thread-count tests need at least two
# threads to compare even on a one-CPU machine (tests/helpers/threads.py checks it took effect)
if "NUMBA_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) < 2:
    os.environ["NUMBA_NUM_THREADS"] = "2"

# The same examples on every run and every machine: a failure seen once is seen again. A
# search for new failures: HYPOTHESIS_PROFILE=explore (random, more examples, no database).
settings.register_profile(
    "darkflow", derandomize=True, database=None, deadline=None, print_blob=True
)
settings.register_profile(
    "explore", derandomize=False, database=None, deadline=None, max_examples=2000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "darkflow"))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """A test on the calibrated tiny night (``tiny_run``) or driving a browser (a whole report)
    is an integration test, whether or not it says so."""
    for item in items:
        heavy = "browser" in item.keywords or "tiny_run" in getattr(item, "fixturenames", ())
        if heavy and "integration" not in item.keywords:
            item.add_marker(pytest.mark.integration)


def find_browser() -> str | None:
    """Path of headless Chromium (as :func:`helpers.browser.find_chromium` finds it), or None."""
    from helpers.browser import find_chromium

    from darkflow.exceptions import MissingDependencyError

    try:
        return find_chromium()
    except MissingDependencyError:
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Browser tests skip without Chromium on a developer's machine; on CI they fail instead,
    so a CI image without it cannot pass by skipping them (.ci/run installs it)."""
    if "browser" not in item.keywords or find_browser():
        return
    if ON_CI:
        pytest.fail(
            "CI must run the browser tests: headless Chromium not found "
            "(Debian package `chromium`; .ci/run installs it)",
            pytrace=False,
        )
    pytest.skip("needs headless Chromium (Debian package `chromium`)")


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

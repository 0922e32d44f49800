"""The command line picks numba's threading layer itself (OpenMP, then workqueue, TBB last)
unless the user chose one; results do not depend on it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers.integrity import camera_night, outputs

from darkflow._threads import PRIORITY, prefer_safe_threading_layer

KERNEL = (
    "import numba, numpy as np\n"
    "@numba.njit(parallel=True)\n"
    "def total(a):\n"
    "    s = 0.0\n"
    "    for i in numba.prange(a.size):\n"
    "        s += a[i]\n"
    "    return s\n"
    "total(np.ones(1000))\n"
    "print(numba.threading_layer())\n"
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    return {**env, **extra}


def test_the_users_choice_is_kept():
    assert prefer_safe_threading_layer(env := {}) and env == {
        "NUMBA_THREADING_LAYER_PRIORITY": PRIORITY
    }
    for key in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"):
        env = {key: "tbb"}
        assert not prefer_safe_threading_layer(env) and env == {key: "tbb"}


def test_cli_sets_the_priority_before_numba_runs(monkeypatch, tmp_path):
    from darkflow.cli import main

    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    monkeypatch.delenv("NUMBA_THREADING_LAYER_PRIORITY", raising=False)
    main(["status", str(tmp_path)])  # any command: an empty folder is an error, not a crash
    assert os.environ["NUMBA_THREADING_LAYER_PRIORITY"] == PRIORITY


def test_numba_takes_a_layer_other_than_tbb():
    code = "from darkflow._threads import prefer_safe_threading_layer as p; p()\n" + KERNEL
    out = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() in ("omp", "workqueue")
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_clean_env(NUMBA_THREADING_LAYER="workqueue"),
        check=True,
    )
    assert chosen.stdout.strip() == "workqueue"


@pytest.mark.integration
@pytest.mark.slow
def test_outputs_do_not_depend_on_the_threading_layer(tiny_night, tmp_path):
    night = camera_night(tiny_night, tmp_path / "night", "sgp_asi294mc")
    got = {}
    for layer in ("omp", "workqueue"):
        w = tmp_path / layer
        subprocess.run(
            [sys.executable, "-m", "darkflow.cli", "run", str(night), "-w", str(w), "-q"],
            env=_clean_env(NUMBA_THREADING_LAYER=layer),
            check=True,
            capture_output=True,
        )
        got[layer] = outputs(w)
    assert got["omp"] and got["omp"] == got["workqueue"]

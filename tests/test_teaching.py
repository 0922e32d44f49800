"""The teaching notebooks: well-formed, and executed with papermill on small parameters.

Every notebook writes the numbers it prints to ``results_path`` (JSON); the tests check that the
methodology they teach holds against the simulator's truth. The five notebooks run in two
parallel kernels (module-scoped fixture), each in a few seconds.
"""

from __future__ import annotations

import ast
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEACHING = ROOT / "notebooks" / "teaching"
NOTEBOOKS = sorted(TEACHING.glob("*.ipynb"))

# Small, fast parameters (the defaults are larger and take ~10 s each).
SMALL = {
    "01_why_darks": {"ny": 64, "nx": 96, "exposures_s": [30, 120, 300], "n_darks": 6},
    "02_robust_statistics": {"ny": 64, "nx": 96, "n_darks": 9, "n_list": [5, 10, 20]},
    "03_temperature_matching": {
        "ny": 64,
        "nx": 96,
        "n_darks": 6,
        "master_temps_c": [-15.0, -10.0, -5.0, 0.0, 5.0],
    },
    "04_scaling_limits": {
        "ny": 64,
        "nx": 96,
        "n_darks": 6,
        "light_exptimes_s": [60.0, 120.0, 480.0, 1800.0],
    },
    # 10 degrees: enough over-subtracted hot pixels on a small frame to pass the 1e-3 tail gate
    "05_verifying_calibration": {"ny": 96, "nx": 128, "n_darks": 12, "warm_by_c": 10.0},
}
ALLOWED_IMPORTS = {"darkflow", "numpy", "pandas", "holoviews", "json", "pathlib", "datetime"}


def _run(nb: Path, out_dir: Path) -> dict:
    import papermill as pm

    results = out_dir / f"{nb.stem}.json"
    params = {**SMALL.get(nb.stem, {}), "results_path": str(results)}
    from nbclient.exceptions import CellTimeoutError

    t0 = time.perf_counter()

    def run() -> None:
        pm.execute_notebook(
            str(nb),
            str(out_dir / nb.name),
            parameters=params,
            kernel_name="python3",
            progress_bar=False,
            request_save_on_cell_execute=False,  # the output holds BokehJS: save it once
            cwd=str(out_dir),
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
            execution_timeout=300,
        )

    # now and then ipykernel 7 leaves an execute request unread and the client waits for ever
    # (ipykernel#1554): a bounded wait per cell, then once more with a fresh kernel
    try:
        run()
    except CellTimeoutError:
        run()
    return {
        "results": json.loads(results.read_text()),
        "seconds": time.perf_counter() - t0,
        "output": out_dir / nb.name,
    }


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, dict]:
    # two notebooks at a time, each in its own process (papermill's kernel clients are not
    # meant to share a process between threads)
    out = tmp_path_factory.mktemp("teaching")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = {nb.stem: pool.submit(_run, nb, out) for nb in NOTEBOOKS}
        return {name: f.result() for name, f in futures.items()}


# ----------------------------------------------------------------------------- structure
def test_four_to_six_notebooks_with_small_parameters():
    assert 4 <= len(NOTEBOOKS) <= 6
    assert {nb.stem for nb in NOTEBOOKS} == set(SMALL)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        "outputs must be stripped"
    )
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0] is code[0]
    names = {
        t.id
        for node in ast.parse(params[0].source).body
        if isinstance(node, ast.Assign)
        for t in (node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets)
    }
    assert {"seed", "results_path"} <= names
    assert set(SMALL[path.stem]) <= names  # the test's parameters exist in the notebook
    # explains itself in markdown
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4
    # only darkflow's public API + numpy/pandas/holoviews (and the standard library for JSON)
    for cell in code:
        for node in ast.walk(ast.parse(cell.source)):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
                assert not any(a.name.startswith("_") for a in node.names), ast.unparse(node)
            for mod in mods:
                assert mod.split(".")[0] in ALLOWED_IMPORTS, mod
                assert not any(part.startswith("_") for part in mod.split(".")), mod
    assert "viz.setup_notebook()" in "".join(c.source for c in code)


# ----------------------------------------------------------------------------- execution
@pytest.mark.integration
def test_notebooks_run_quickly_and_cleanly(executed):
    for name, run in executed.items():
        assert run["seconds"] < 120, (name, run["seconds"])
        nb = nbformat.read(run["output"], as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                assert out.get("output_type") != "error", (name, out)
                assert out.get("name") != "stderr", (name, out.get("text"))  # no warnings
        assert all(math.isfinite(v) for v in run["results"].values()), name


@pytest.mark.integration
def test_notebooks_fetch_nothing_in_jupyterlab(executed):
    """No network at the observatory: the plots' BokehJS and panel stylesheets are inline."""
    from helpers.offline import displayed_outputs, remote_resources, text_of

    for name, run in executed.items():
        nb = nbformat.read(run["output"], as_version=4)
        html = [
            text_of(o["data"]["text/html"])
            for o in displayed_outputs(nb)
            if "text/html" in o.get("data", {})
        ]
        assert any('"name":"InlineStyleSheet"' in h for h in html), name  # plots, css inline
        assert remote_resources(nb) == {}, name


@pytest.mark.integration
def test_why_darks(executed):
    r = executed["01_why_darks"]["results"]
    assert r["dark_rate_measured_e_s"] == pytest.approx(r["dark_rate_truth_e_s"], rel=0.05)
    # bias only: the dark signal stays in the light; with a master it is gone
    assert r["bias_only_median_err_adu"] > 10 * abs(r["dark_median_err_adu"])
    assert abs(r["bias_only_hot_err_adu"]) > 10 * abs(r["dark_hot_err_adu"])
    assert abs(r["bias_only_glow_err_adu"]) > 10 * abs(r["dark_glow_err_adu"])
    # what is left is noise: close to the light's own (the master adds a little)
    assert 0.95 * r["ideal_noise_adu"] < r["dark_noise_adu"] < 1.25 * r["ideal_noise_adu"]
    assert r["bias_only_noise_adu"] > r["dark_noise_adu"]


@pytest.mark.integration
def test_robust_statistics(executed):
    r = executed["02_robust_statistics"]["results"]
    floor = r["floor_adu"]
    assert r["mean_rms_clean_adu"] == pytest.approx(floor, rel=0.08)  # optimal on clean pixels
    assert r["darkflow_rms_clean_adu"] < 1.1 * floor
    assert r["median_rms_clean_adu"] > 1.12 * r["darkflow_rms_clean_adu"]  # ~sqrt(pi/2) penalty
    assert r["mean_rms_hit_adu"] > 30 * r["darkflow_rms_hit_adu"]  # hits leak into the mean
    assert r["std_clip_rms_hit_adu"] > 3 * r["darkflow_rms_hit_adu"]  # outliers hide themselves
    assert r["darkflow_rms_hit_adu"] < 2 * r["darkflow_rms_clean_adu"]
    assert 1.1 < r["median_over_darkflow_at_max_n"] < 1.45
    assert r["darkflow_over_floor_at_max_n"] < 1.1


@pytest.mark.integration
def test_temperature_matching(executed):
    r = executed["03_temperature_matching"]["results"]
    assert r["doubling_fit_hot_c"] == pytest.approx(r["doubling_truth_c"], abs=0.6)
    # what a 5 degree mismatch costs: measured against the doubling law
    assert r["mismatch_colder_law"] == pytest.approx(1 - 2 ** (-5 / 6), rel=1e-6)
    assert r["mismatch_colder_measured"] == pytest.approx(r["mismatch_colder_law"], abs=0.08)
    assert r["mismatch_warmer_measured"] == pytest.approx(r["mismatch_warmer_law"], abs=0.12)
    # hot pixels stay in the light; the global noise ratio barely notices
    assert r["hot_error_sigma_colder"] > 3 * max(abs(r["hot_error_sigma_matched"]), 0.5)
    assert abs(r["noise_ratio_colder"] - r["noise_ratio_matched"]) < 0.1
    assert r["neg_tail_warmer"] > r["neg_tail_matched"]
    # the matcher picks the master at the light's temperature and gates the others
    assert r["chosen_master_temp_c"] == pytest.approx(-5.0)
    assert r["temperature_gate_c"] == pytest.approx(1.21, abs=0.01)
    assert r["n_candidates_lost_to_gate"] >= 4


@pytest.mark.integration
def test_scaling_limits(executed):
    r = executed["04_scaling_limits"]["results"]
    assert r["rms_scaled_f4_adu"] > 2 * r["rms_direct_f4_adu"]  # noise times f
    assert r["rms_scaled_f4_adu"] > 2.5 * r["rms_scaled_f1_adu"]
    assert r["n_pixels_beyond_knee"] > 0
    # linear scaling overshoots above the knee by what the truth says it must
    assert r["overshoot_truth_beyond_knee"] > 0.01
    assert r["median_rel_err_beyond_knee_scaled"] == pytest.approx(
        r["overshoot_truth_beyond_knee"], rel=0.15, abs=0.03
    )
    assert abs(r["median_rel_err_linear_bright_scaled"]) < 0.02  # fine below the knee
    assert r["temp_scaled_glow_rel_err"] > 1.0  # glow does not follow temperature
    assert abs(r["temp_scaled_hot_rel_err"]) < 0.1  # the law holds for the dark current
    assert abs(r["temp_scaled_hot_rel_err_td_minus_1"]) > 2 * abs(r["temp_scaled_hot_rel_err"])


@pytest.mark.integration
def test_verifying_calibration(executed):
    r = executed["05_verifying_calibration"]["results"]
    assert r["good_noise_ratio"] == pytest.approx(1.0, abs=0.08)
    assert r["good_true_sigma_adu"] == pytest.approx(r["good_predicted_sigma_adu"], rel=0.08)
    assert r["good_flagged"] == 0
    # few darks: really noisier, and predicted so
    assert r["few_true_sigma_adu"] > r["good_true_sigma_adu"]
    assert r["few_predicted_sigma_adu"] > r["good_predicted_sigma_adu"]
    assert r["few_noise_ratio"] == pytest.approx(1.0, abs=0.08)
    # too warm: caught by the negative tail
    assert r["warm_neg_tail"] > 1e-3 and r["warm_flagged"] == 1
    # an incomplete noise model is caught
    assert r["no_shot_noise_ratio"] > 1.5 and r["no_shot_flagged"] == 1
    # fixed pattern: present in a raw bias and without a master, gone with one
    assert r["fpn_column_raw_bias"] > 5
    assert r["fpn_column_no_master"] > 3 * r["fpn_column_good"]
    assert r["fpn_column_good"] < 2

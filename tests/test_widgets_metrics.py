"""The explorer's acceptance gates are the pipeline's (darkflow.verify.assess_master), re-run
with other clipping settings: same hold-out split, previous master, master bias and settings."""

from __future__ import annotations

import dataclasses
import math
import shutil

import pytest

from darkflow.config import Config, VerifyConfig
from darkflow.exceptions import DarkflowError, InsufficientFramesError
from darkflow.report.results import Workdir

pytestmark = pytest.mark.integration  # on a calibrated night

GATE_COLUMNS = [  # gate values masters.csv records, by the name the acceptance table uses
    "holdout_width_ratio",
    "holdout_shift_sigma",
    "holdout_outlier_frac",
    "high_reject_excess",
    "noise_inflation",
    "master_variance_ratio",
    "gain_deviation",
    "bias_column_ratio",
    "dark_scale_change",
    "level_shift_sigma",
    "column_change_ratio",
    "hot_overlap",
]


@pytest.fixture(scope="module")
def wd(tiny_run) -> Workdir:
    return Workdir(tiny_run[0])


@pytest.fixture(scope="module")
def holdout_wd(tiny_night, tmp_path_factory) -> Workdir:
    """The tiny night run with ``min_train_frames = 2``: its 3-dark masters hold one dark out."""
    from darkflow.pipeline import run_night

    work = tmp_path_factory.mktemp("work_holdout")
    run_night(
        tiny_night, workdir=work, config=Config.from_dict({"verify": {"min_train_frames": 2}})
    )
    return Workdir(work)


@pytest.fixture(scope="module")
def clipped_master(wd) -> tuple[str, str, str]:
    """(night, session, master id): the used dark master (>= 3 darks) with the most cosmics."""
    used = wd.frame_report.dropna(subset=["master_id"])
    m = wd.masters
    m = m[m["master_id"].isin(used["master_id"]) & (m["kind"] == "dark") & (m["n_frames"] >= 3)]
    best = m.sort_values(["high_reject_excess", "master_id"], ascending=[False, True]).iloc[0]
    row = used[used["master_id"] == best["master_id"]].iloc[0]
    return row["night"], row["session"], best["master_id"]


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _check_reproduces(wd: Workdir) -> int:
    """Every master's acceptance with its own settings equals what masters.csv records."""
    from darkflow_widgets.metrics import acceptance, assess_acceptance

    n_holdout = 0
    for _, row in wd.masters.iterrows():
        if row["status"] not in ("verified", "low_confidence"):
            continue
        res = assess_acceptance(row["master_id"], wd)
        assert res.verify_source == "registry"
        assert (res.status, res.confidence) == (row["status"], row["confidence"]), row["master_id"]
        assert ";".join(res.reasons) == row["reasons"]
        assert res.bias_id == _str(row["bias_master_id"])
        assert res.previous_id == _str(row["previous_master_id"])
        table = acceptance(row["master_id"], wd).set_index("metric")
        assert table.attrs == {"status": row["status"], "confidence": row["confidence"]}
        assert table.loc["overall", "result"] == row["status"]
        assert table.loc["overall", "confidence"] == row["confidence"]
        for name in GATE_COLUMNS:
            recorded = _num(row[name])
            if name in table.index and recorded is not None:
                assert table.loc[name, "value"] == pytest.approx(recorded, abs=2e-6), name
        n_holdout += len(res.held) > 0
    return n_holdout


def _str(v) -> str | None:
    return v if isinstance(v, str) and v else None


# ----------------------------------------------------------------------------- (a) real gate
def test_acceptance_reproduces_the_pipeline(wd):
    """Own settings: the status, confidence, reasons and gate values of masters.csv."""
    assert _check_reproduces(wd) == 0  # the tiny night's sets are too small to hold one out


def test_acceptance_reproduces_the_holdout_split(holdout_wd):
    """With hold-out frames (and [verify] settings read back from the run): the same numbers."""
    from darkflow_widgets.metrics import assess_acceptance

    assert _check_reproduces(holdout_wd) >= 3
    row = holdout_wd.masters.query("n_frames == 3").iloc[0]
    res = assess_acceptance(row["master_id"], holdout_wd)
    assert (len(res.train), len(res.held)) == (2, 1)
    assert res.value("holdout_width_ratio") == pytest.approx(row["holdout_width_ratio"], abs=2e-6)
    # the default [verify] settings hold nothing out of three darks: another (wrong) answer
    default = assess_acceptance(row["master_id"], holdout_wd, verify_config=VerifyConfig())
    assert default.held == () and default.verify_source == "given"


def test_acceptance_is_cached_and_registered(wd, clipped_master, monkeypatch):
    import darkflow.master
    from darkflow_widgets.metrics import (
        GATE_NAMES,
        MetricContext,
        assess_acceptance,
        compute_metrics,
    )

    master_id = clipped_master[2]
    first = assess_acceptance(master_id, wd)

    def no_combine(*args, **kwargs):
        raise AssertionError("combined again")

    monkeypatch.setattr(darkflow.master, "combine_files", no_combine)
    assert assess_acceptance(master_id, wd) is first
    # the explorer's metric registry holds the gates: same values, no new combine
    master = wd.load_master(master_id)
    table = compute_metrics(master, MetricContext.for_master(wd, master_id, max_lights=0))
    values = table.set_index("metric")["value"]
    assert GATE_NAMES <= set(values.index)
    assert values["high_reject_excess"] == first.value("high_reject_excess")
    assert values["acceptance_confidence"] == first.confidence
    # without a work directory the gates are simply not available
    alone = compute_metrics(master, names=["high_reject_excess", "min_n_used"])
    assert math.isnan(alone["value"].iloc[0]) and alone["value"].iloc[1] >= 1


# ----------------------------------------------------------------------------- (b) settings
def test_clipping_settings_move_the_gates(wd, clipped_master):
    from darkflow_widgets.data import combine_config_of
    from darkflow_widgets.metrics import assess_acceptance

    master_id = clipped_master[2]
    own = combine_config_of(wd.load_master(master_id))
    base = assess_acceptance(master_id, wd)
    assert base.value("high_reject_excess") > 0
    # no clipping: nothing is rejected (high or low); the master's noise is a plain mean's
    plain = assess_acceptance(master_id, wd, dataclasses.replace(own, max_iters=0))
    assert plain.value("high_reject_excess") == 0
    # tighter high clipping rejects more values high than low
    tight = assess_acceptance(master_id, wd, dataclasses.replace(own, sigma_high=1.5))
    assert tight.value("high_reject_excess") > base.value("high_reject_excess")
    assert tight.combine_config.sigma_high == 1.5 and base.combine_config == own


def test_rerun_panel_shows_both_acceptances(wd, clipped_master):
    from darkflow_widgets import Explorer
    from darkflow_widgets.metrics import assess_acceptance

    night, session, master_id = clipped_master
    explorer = Explorer(wd, night=night, session=session, max_lights=1)
    explorer.masters_panel.master.value = master_id
    row = wd.masters.set_index("master_id").loc[master_id]
    gates = explorer.masters_panel.tables["acceptance gates"].set_index("metric")
    assert gates.loc["overall", "result"] == row["status"]
    assert gates.loc["overall", "confidence"] == row["confidence"]
    assert f"acceptance {row['status']}" in explorer.masters_panel.status.value

    panel = explorer.rerun_panel
    assert panel.master.value == master_id
    name = "acceptance gates: original vs re-run"
    panel.max_iters.value = 0  # no clipping
    panel.button.click()
    assert panel.error is None, panel.error
    t = panel.tables[name].set_index("metric")
    assert list(t.columns) == [
        "tolerance",
        "original",
        "rerun",
        "change",
        "confidence_original",
        "confidence_rerun",
        "status",
    ]
    assert t.loc["high_reject_excess", "original"] == pytest.approx(row["high_reject_excess"])
    assert t.loc["high_reject_excess", "rerun"] == 0 and t.loc["high_reject_excess", "change"] < 0
    before, after = panel.acceptance
    assert t.loc["overall", "original"] == before.confidence == row["confidence"]
    assert t.loc["overall", "rerun"] == after.confidence
    assert t.loc["overall", "status"] == f"{row['status']} → {after.status}"
    # the clipping counts are recorded; the transients are judged on the frames themselves
    assert t.loc["high_reject_excess", "status"] == "unavailable → unavailable"
    assert name in panel.table_area.value
    assert f"→ {after.status}" in panel.status.value
    # the gates table is not repeated in the other metrics table
    assert "high_reject_excess" not in set(
        panel.tables["acceptance metrics: original vs re-run"]["metric"]
    )

    panel.max_iters.value, panel.sigma_high.value = 5, 1.5  # tighter clipping: the table follows
    panel.button.click()
    t2 = panel.tables[name].set_index("metric")
    rerun = t2.loc["high_reject_excess", "rerun"]
    assert rerun > t2.loc["high_reject_excess", "original"] and rerun != 0
    assert f"{rerun:.4g}" in panel.table_area.value
    expected = assess_acceptance(master_id, wd, panel.config)
    assert rerun == expected.value("high_reject_excess")
    assert t2.loc["overall", "rerun"] == expected.confidence


# ----------------------------------------------------------------------------- (c) no hold-out
def test_too_few_darks_say_the_holdout_is_unavailable(wd):
    from darkflow_widgets.data import master_inputs
    from darkflow_widgets.metrics import acceptance

    row = wd.masters.query("kind == 'dark' and n_frames == 2").iloc[0]
    table = acceptance(row["master_id"], wd).set_index("metric")
    hold = table.loc["holdout_width_ratio"]
    assert hold["result"] == "unavailable" and hold["reason"] == "holdout_unavailable"
    assert math.isnan(hold["value"]) and "No held-out darks" in hold["detail"]
    # too few frames is an advisory (no rejection possible: an expected error), not a fault
    assert table.loc["n_frames", "result"] == "advisory"
    assert table.loc["n_frames", "reason"] == "too_few_frames"
    assert table.loc["overall", "result"] == row["status"]
    assert "too_few_frames" in table.loc["overall", "reason"]

    # a bare list of darks, down to one: no crash, the same clear row
    one = acceptance(master_inputs(wd, row["master_id"])[:1], wd).set_index("metric")
    assert one.loc["holdout_width_ratio", "result"] == "unavailable"
    assert one.loc["n_frames", "result"] == "advisory"


def test_missing_inputs_are_a_clear_error(wd, clipped_master, monkeypatch):
    import darkflow_widgets.workdir as workdir
    from darkflow_widgets.explorer import MasterPanel
    from darkflow_widgets.metrics import acceptance, clear_acceptance_cache

    def gone(wd, master_id):
        raise InsufficientFramesError(f"master {master_id}: none of its input darks can be found")

    clear_acceptance_cache()
    monkeypatch.setattr(workdir, "master_inputs", gone)
    try:
        with pytest.raises(DarkflowError, match="input darks"):
            acceptance(clipped_master[2], wd)
        panel = MasterPanel(wd, max_lights=0)
        panel.set_masters(wd.masters[wd.masters["master_id"] == clipped_master[2]])
        assert panel.error is None  # the rest of the panel still shows
        gates = panel.tables["acceptance gates"]
        assert gates["result"].tolist() == ["unavailable"]
        assert "input darks" in gates["detail"].iloc[0]
    finally:
        clear_acceptance_cache()


def test_acceptance_arguments(wd, clipped_master):
    from darkflow_widgets.metrics import assess_acceptance

    with pytest.raises(DarkflowError, match="no input frames"):
        assess_acceptance([], wd)
    master_id = clipped_master[2]
    res = assess_acceptance(master_id, wd, previous=None, bias=None)
    assert res.bias_id is None and "master_variance_ratio" not in set(res.table["metric"])


def test_without_recorded_columns_the_pipeline_rule_picks_bias_and_previous(wd, tmp_path):
    """Older masters.csv (no previous/bias columns): the pipeline's rule on masters.csv."""
    from darkflow_widgets.metrics import assess_acceptance

    darks = wd.masters.query("kind == 'dark'")
    pair = darks[darks.duplicated("config_signature", keep=False)].sort_values("master_id")
    assert len(pair) >= 2, "the tiny night has two dark masters of one configuration"
    new, old = pair["master_id"].iloc[0], pair["master_id"].iloc[1]
    masters = wd.masters.drop(columns=["previous_master_id", "bias_master_id"])
    # pretend `old` was verified on the night before: it is then `new`'s previous master
    masters.loc[masters["master_id"] == old, ["night", "status"]] = ["2000-01-01", "verified"]
    for name in ("frame_report.csv", "catalog.csv"):
        shutil.copy(wd.path / name, tmp_path / name)
    masters.to_csv(tmp_path / "masters.csv", index=False)  # as an older run wrote it
    res = assess_acceptance(new, Workdir(tmp_path))
    assert res.verify_source == "defaults"  # no registry in the copy
    recorded = wd.masters.set_index("master_id").loc[new]
    assert res.bias_id == recorded["bias_master_id"] and res.previous_id == old
    names = set(res.table["metric"])
    assert {"level_shift_sigma", "low_freq_change_sigma"} <= names  # compared with `old`
    assert "no_previous_master" not in res.reasons

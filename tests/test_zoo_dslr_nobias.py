"""A clean warm-DSLR night without a bias, EGAIN or temperatures (zoo night dslr-3294934761):
every light ends calibrated. Before, the lights' predicted noise counted the dark current's
shot noise twice on half the pixels (``light_variance_low`` on 5 of 20) and the banding gate
took the unknown temperature's allowed scale error for a column pattern (``light_banding``)."""

from __future__ import annotations

import dataclasses

import pandas as pd

from darkflow.config import Config
from darkflow.pipeline import run_night
from darkflow.simulate.zoo import sample_zoo, zoo_night

NAME = "dslr-3294934761"


def test_clean_warm_dslr_night_without_bias_is_calibrated(tmp_path):
    params = next(p for p in sample_zoo(200, 0) if p.name == NAME)
    zoo_night(tmp_path / "data", params=params)
    config = Config()
    config = dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, workers=1))
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=config)
    frames = pd.read_csv(tmp_path / "work" / "frame_report.csv")
    assert len(frames) == 20
    reasons = ";".join(frames["reasons"].fillna(""))
    assert "light_variance_low" not in reasons
    assert "light_banding" not in reasons
    assert (frames["status"] == "calibrated").all(), frames[["status", "reasons"]]

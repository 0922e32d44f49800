"""The hold-out assessment judges the master of the set, combined once.

``combine_files_with_training`` (public API) runs the clipping kernel over the training frames
of the rows the master gates analyse, in the pass that combines the whole set: those rows must
equal, bit for bit, a combine of the training frames alone (whatever the band height), and the
master of the set must keep its bytes. The assessment itself no longer needs that training
master: it judges the master of every input over the analysed band and combines nothing more.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers.darks import PLANE_ATTRS, make_frames, planes_bytes, write_darks

from darkflow.config import CombineConfig, VerifyConfig
from darkflow.master import combine_files, combine_files_with_training
from darkflow.verify import analysis_rows, assess_master_set, band_master, split_set

SHAPE = (300, 64)  # 19 200 pixels: a central band of 156 rows is analysed
VERIFY = VerifyConfig(max_analysis_pixels=10_000)


def _float_darks(tmp, n=10):
    frames, *_ = make_frames(n, SHAPE, seed=3)
    paths = []
    for k in range(n):
        path = tmp / f"f{k:02d}.fits"
        fits.PrimaryHDU(frames[k].astype(np.float32)).writeto(path)
        paths.append(str(path))
    return paths


@pytest.fixture(params=["uint16", "float32"])
def darks(request, tmp_path):
    if request.param == "float32":
        return _float_darks(tmp_path)
    return [str(p) for p in write_darks(tmp_path, n=10, shape=SHAPE, seed=2).paths]


def _rows(shape):
    return analysis_rows(shape, VERIFY)


@pytest.mark.parametrize("band_rows", [None, 7, 64, 300])
def test_training_band_equals_a_combine_of_the_training_frames(darks, band_rows):
    config = CombineConfig()
    train, held = split_set(darks, VERIFY)
    assert held and len(train) >= 3
    master, trained = combine_files_with_training(
        darks, train, _rows, config=config, band_rows=band_rows, allow_few=True
    )
    assert planes_bytes(master) == planes_bytes(combine_files(darks, config=config))
    rows = _rows(SHAPE)
    assert 0 < rows.start and rows.stop < SHAPE[0]  # a band, not the whole frame
    expected = band_master(combine_files(train, config=config), rows)
    assert trained is not None and trained.shape == (rows.stop - rows.start, SHAPE[1])
    assert trained.provenance["rows"] == [rows.start, rows.stop]
    assert trained.provenance["full_rows"] == SHAPE[0]
    assert trained.meta.n_frames == len(train)
    for attr in PLANE_ATTRS:
        got, want = getattr(trained, attr), getattr(expected, attr)
        assert (got is None) == (want is None), attr
        if got is not None:
            np.testing.assert_array_equal(got, want, err_msg=attr)
    for key in ("frame_levels", "frame_spreads", "hot_thresholds", "noise", "params"):
        assert trained.provenance[key] == expected.provenance[key], key


def test_the_master_of_every_input_is_judged_over_the_analysed_band(darks):
    config = CombineConfig()
    train, held = split_set(darks, VERIFY)
    master = combine_files(darks, config=config)
    judged = assess_master_set(darks, master=master, combine_config=config, config=VERIFY)
    rows = _rows(master.shape)
    assert judged.train == tuple(train) and judged.held == tuple(held)
    assert judged.judged.provenance["rows"] == [rows.start, rows.stop]
    assert judged.judged.meta.n_frames == len(darks)
    band = band_master(master, rows)
    for attr in PLANE_ATTRS:
        got, want = getattr(judged.judged, attr), getattr(band, attr)
        if got is not None:
            np.testing.assert_array_equal(got, want, err_msg=attr)
    assert judged.assessment.values["holdout_n"] == len(held)
    assert judged.assessment.values["train_n"] == len(train)


def test_the_set_is_combined_once(darks, monkeypatch):
    """Without a master at hand the assessment combines every input once, not the training
    frames besides; with one it combines nothing."""
    import darkflow.master

    config = CombineConfig()
    calls = []
    real = darkflow.master.combine_files

    def counting(paths, **kw):
        calls.append(list(paths))
        return real(paths, **kw)

    monkeypatch.setattr(darkflow.master, "combine_files", counting)
    master = real(darks, config=config)
    with_master = assess_master_set(darks, master=master, combine_config=config, config=VERIFY)
    assert calls == []
    without = assess_master_set(darks, master=None, combine_config=config, config=VERIFY)
    assert calls == [list(darks)]
    assert with_master.assessment.to_dict() == without.assessment.to_dict()


def test_no_training_frames_no_band(darks):
    master, trained = combine_files_with_training(darks, (), _rows, config=CombineConfig())
    assert trained is None
    assert planes_bytes(master) == planes_bytes(combine_files(darks))

"""Bias-subtracted masters and the incremental update (merge vs rebuild)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers.darks import header, planes_bytes, write_darks

from darkflow.config import MASTER_PLANE_KEYS, CombineConfig, OutputConfig
from darkflow.exceptions import ConfigError, IncompatibleFramesError
from darkflow.master import (
    combine_arrays,
    combine_files,
    make_dark_current_master,
    merge_masters,
    read_master,
    update_master,
    write_master,
)
from darkflow.model import FrameType

SHAPE = (30, 34)


def bias_headers(n):
    return [header(imagetyp="Bias Frame", exptime=0.0) for _ in range(n)]


def dark_headers(n, temp=-10.0, exptime=60.0, start=0):
    return [
        header(
            temp=temp, exptime=exptime, date_obs=f"2024-03-0{1 + start // 60}T02:{k % 60:02d}:00"
        )
        for k in range(start, start + n)
    ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    biases = write_darks(
        root / "bias", 7, SHAPE, seed=10, dark=0.0, n_hot=0, headers=bias_headers(7), saturate=False
    )
    same = {"saturate": False, "truth_seed": 11}
    darks_a = write_darks(root / "a", 8, SHAPE, seed=11, headers=dark_headers(8), **same)
    darks_b = write_darks(root / "b", 6, SHAPE, seed=12, headers=dark_headers(6, start=8), **same)
    warm = write_darks(root / "warm", 6, SHAPE, seed=13, headers=dark_headers(6, temp=-4.0), **same)
    return {"bias": biases, "a": darks_a, "b": darks_b, "warm": warm, "root": root}


def test_dark_current_master_with_propagated_uncertainty(lab, tmp_path):
    bias = combine_files(lab["bias"].paths)
    dark = combine_files(lab["a"].paths)
    dc = make_dark_current_master(dark, bias)
    assert bias.meta.frame_kind == FrameType.BIAS
    assert dc.meta.bias_subtracted and not dc.meta.includes_bias and dc.meta.bias_exptime_s == 0.0
    np.testing.assert_array_equal(
        dc.data, (dark.data.astype(np.float64) - bias.data).astype(np.float32)
    )
    want = np.sqrt(
        dark.uncertainty.astype(np.float64) ** 2 + bias.uncertainty.astype(np.float64) ** 2
    )
    np.testing.assert_array_equal(dc.uncertainty, want.astype(np.float32))
    assert dc.n_used is dark.n_used and "bias" in dc.provenance
    assert abs(np.median(dc.data - (lab["a"].truth - 500.0))) < 0.5  # dark current only
    np.testing.assert_array_equal(dark.data, combine_files(lab["a"].paths).data)  # input untouched
    # the same through combine_files(bias=path), reading the bias from disk (written losslessly:
    # the default [output] quantises its uncertainty, which the dark's then carries)
    full = OutputConfig(**dict.fromkeys(MASTER_PLANE_KEYS, "full"))
    bias_path = write_master(bias, tmp_path / "bias.fits", output=full)
    dc2 = combine_files(lab["a"].paths, bias=bias_path)
    assert planes_bytes(dc2) == planes_bytes(dc)
    assert dc2.provenance["bias"]["path"] == str(bias_path)
    r = read_master(write_master(dc2, tmp_path / "dc.fits"))
    assert r.meta.bias_subtracted and r.meta.bias_exptime_s == 0.0


def test_short_darks_as_bias_proxy(lab):
    dark = combine_files(lab["a"].paths)
    short = combine_arrays(lab["bias"].frames, meta=replace(dark.meta, exptime_s=5.0))
    dc = make_dark_current_master(dark, short)
    assert dc.meta.bias_exptime_s == 5.0 and dc.provenance["bias"]["proxy"] is True
    with pytest.raises(IncompatibleFramesError, match="shorter"):
        make_dark_current_master(short, dark)


def test_bias_mismatch_errors(lab):
    dark = combine_files(lab["a"].paths)
    bias = combine_files(lab["bias"].paths)
    small = combine_arrays(np.zeros((3, 5, 5), np.uint16))
    with pytest.raises(IncompatibleFramesError, match="shape"):
        make_dark_current_master(dark, small)
    with pytest.raises(IncompatibleFramesError, match="includes the bias"):
        make_dark_current_master(make_dark_current_master(dark, bias), bias)


def test_merge_of_consistent_frames(lab):
    a = combine_files(lab["a"].paths)
    merged = update_master(a, lab["b"].paths)
    rebuilt = combine_files([*lab["a"].paths, *lab["b"].paths])
    assert merged.provenance["update"] == "merged"
    assert all(g["ok"] for g in merged.provenance["update_gates"].values())
    assert merged.meta.n_frames == 14 and len(merged.provenance["inputs"]) == 14
    np.testing.assert_array_equal(merged.n_used.astype(int) + merged.n_low + merged.n_high, 14)
    # pixels without any clipping: the merge is the plain mean of all values (float rounding)
    same = (merged.n_used == 14) & (rebuilt.n_used == 14)
    assert same.mean() > 0.8
    np.testing.assert_allclose(merged.data[same], rebuilt.data[same], rtol=0, atol=2e-4)
    np.testing.assert_allclose(merged.uncertainty[same], rebuilt.uncertainty[same], rtol=1e-4)
    # everywhere: consistent within the noise (clip decisions differ only at a few pixels)
    z = (merged.data - rebuilt.data) / rebuilt.uncertainty
    assert np.percentile(np.abs(z), 95) < 0.5 and np.abs(z).max() < 5 and abs(z.mean()) < 0.1
    assert merged.meta.date_start_utc < merged.meta.date_end_utc


def test_temperature_change_forces_rebuild(lab):
    a = combine_files(lab["a"].paths)
    out = update_master(a, lab["warm"].paths)
    assert (
        out.provenance["update"] == "rebuilt" and "temperature" in out.provenance["update_reason"]
    )
    assert out.provenance["update_gates"]["temperature"]["ok"] is False
    fresh = combine_files([*lab["a"].paths, *lab["warm"].paths])
    assert planes_bytes(out) == planes_bytes(fresh)


def test_offset_gate_catches_changed_level(lab, tmp_path):
    a = combine_files(lab["a"].paths)
    ds = write_darks(
        tmp_path,
        6,
        SHAPE,
        seed=12,
        headers=dark_headers(6, start=8),
        saturate=False,
        truth_seed=11,
        bias=520.0,
    )
    out = update_master(a, ds.paths)  # the bias level moved by 20 ADU between the sessions
    assert out.provenance["update"] == "rebuilt"
    assert not out.provenance["update_gates"]["offset"]["ok"]


def test_parameter_change_forces_rebuild_and_needs_inputs(lab):
    a = combine_files(lab["a"].paths)
    out = update_master(a, lab["b"].paths, config=CombineConfig(sigma_high=4.0))
    assert out.provenance["update"] == "rebuilt" and "params" in out.provenance["update_reason"]
    arrays = combine_arrays(lab["a"].frames.astype(np.uint16), egain=1.0)
    with pytest.raises(IncompatibleFramesError, match="records no input"):
        update_master(arrays, lab["warm"].paths)


def test_update_of_bias_subtracted_master_reuses_its_bias(lab, tmp_path):
    bias_path = write_master(combine_files(lab["bias"].paths), tmp_path / "b.fits")
    a = combine_files(lab["a"].paths, bias=bias_path)
    merged = update_master(a, lab["b"].paths)
    assert merged.provenance["update"] == "merged" and merged.meta.bias_subtracted
    no_record = replace(a, provenance={k: v for k, v in a.provenance.items() if k != "bias"})
    with pytest.raises(ConfigError, match="bias"):
        update_master(no_record, lab["b"].paths)


def test_merge_masters_shape_check():
    x = combine_arrays(np.ones((3, 4, 4), np.uint16))
    y = combine_arrays(np.ones((3, 5, 4), np.uint16))
    with pytest.raises(IncompatibleFramesError):
        merge_masters(x, y)

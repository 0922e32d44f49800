"""Photon transfer on pairs of lights (darkflow.subtract.lightpair) and its EGAIN gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from darkflow.model import GainEstimate
from darkflow.subtract.lightpair import (
    MIN_TILES,
    SYSTEMATIC_REL,
    _cfa_tiles,
    check_header_gain,
    gain_from_light_pairs,
    pair_tiles,
)

READ_SD = 6.0  # ADU
DARK_E = 40.0  # dark current in a light (e-): its shot noise is in R, not in the sky level


def _scene(shape, rng, *, nebula: bool, stars: int):
    """Noiseless sky rate (e-) as a function of a dither shift, and the fixed PRNU map."""
    ny, nx = shape
    blobs = [
        (rng.uniform(0, ny), rng.uniform(0, nx), rng.uniform(25, 60), rng.uniform(500, 3000))
        for _ in range(8 if nebula else 0)
    ]
    sy, sx = rng.uniform(5, ny - 5, stars), rng.uniform(5, nx - 5, stars)
    flux = 10 ** rng.uniform(3.5, 5.5, stars)

    def render(sky_e: float, dy: float, dx: float, transparency: float, gradient: float):
        yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
        rate = sky_e * (1.0 + gradient * (xx / nx - 0.5))
        for y0, x0, s, a in blobs:
            rate += a * np.exp(-((yy - y0 - dy) ** 2 + (xx - x0 - dx) ** 2) / (2 * s * s))
        for y0, x0, f in zip(sy, sx, flux, strict=True):
            r2 = (yy - y0 - dy) ** 2 + (xx - x0 - dx) ** 2
            rate += f / (2 * math.pi * 1.5**2) * np.exp(-r2 / (2 * 1.5**2))
        return rate * transparency

    return render


def _lights(
    seed: int,
    *,
    gain: float = 1.7,
    shape=(192, 192),
    n: int = 2,
    sky_e: float = 3000.0,
    prnu: float = 0.02,
    nebula: bool = True,
    stars: int = 30,
    bayer: bool = False,
    model_sd: float = 0.0,
):
    """``n`` dark-subtracted lights (ADU) of one session: PRNU, a nebula, stars, dithers of a
    few pixels, transparency and a growing gradient; on a Bayer sensor each colour phase has
    its own response. The same (noisy, when ``model_sd``) dark model is subtracted from all."""
    rng = np.random.default_rng(seed)
    render = _scene(shape, rng, nebula=nebula, stars=stars)
    response = 1.0 + prnu * rng.standard_normal(shape)
    if bayer:
        phase = np.ones(shape)
        phase[0::2, 0::2], phase[1::2, 1::2] = 0.45, 0.75  # R, B against G = 1
        response = response * phase
    model_error = model_sd * rng.standard_normal(shape)
    frames = []
    for i in range(n):
        sky = render(
            sky_e,
            rng.uniform(-3, 3),
            rng.uniform(-3, 3),
            rng.uniform(0.85, 1.0),
            0.2 * (1 + 0.5 * i / max(n - 1, 1)),
        )
        electrons = rng.poisson(sky * response + DARK_E).astype(np.float64)
        adu = electrons / gain + READ_SD * rng.standard_normal(shape)
        frames.append(adu - DARK_E / gain - model_error)
    return frames


def _read_variance(gain: float) -> float:
    return READ_SD**2 + DARK_E / gain**2  # the dark current's shot noise in ADU²


def _estimate(frames, gain, *, bayer=False, model_sd=0.0, systematic_rel=SYSTEMATIC_REL):
    tiles = [
        pair_tiles(
            frames[i],
            frames[i + 1],
            read_variance=_read_variance(gain),
            model_variance=model_sd**2,
            cfa=bayer,
        )
        for i in range(0, len(frames) - 1, 2)
    ]
    return gain_from_light_pairs(tiles, systematic_rel=systematic_rel)


@pytest.mark.parametrize(
    ("label", "kwargs"),
    [
        ("prnu_nebula_dither", {}),
        ("faint_nebula_no_prnu", {"prnu": 0.0, "sky_e": 800.0}),
        ("bayer", {"bayer": True}),
        ("noisy_model", {"model_sd": 8.0}),
        ("low_gain", {"gain": 0.6}),
    ],
)
def test_pair_gain_recovers_the_truth_within_its_uncertainty(label, kwargs):
    gain = kwargs.get("gain", 1.7)
    est, why, tiles = _estimate(
        _lights(11, n=4, **kwargs),
        gain,
        bayer=kwargs.get("bayer", False),
        model_sd=kwargs.get("model_sd", 0.0),
    )
    assert est is not None, why
    assert tiles >= 36
    assert est.rel_sigma < 0.03, est
    assert abs(est.value - gain) < 3.5 * est.sigma, (label, est)


@pytest.mark.parametrize("nebula", [False, True])
def test_pair_gain_pulls_have_unit_width(nebula):
    """Over seeds the pulls (estimate - truth) / sigma are centred with a width near 1: the
    jackknife states the estimate's spread (PRNU 2 %, stars, different sky levels, a growing
    gradient); with a bright dithered nebula the stated systematic covers the small bias."""
    pulls = []
    for seed in range(24):
        frames = _lights(100 + seed, shape=(160, 160), nebula=nebula)
        est, why, _ = _estimate(frames, 1.7, systematic_rel=SYSTEMATIC_REL if nebula else 0.0)
        assert est is not None, why
        pulls.append((est.value - 1.7) / est.sigma)
    pulls = np.array(pulls)
    assert abs(float(np.mean(pulls))) < 0.75, pulls
    assert 0.5 < float(np.std(pulls, ddof=1)) < 1.5, pulls


def test_the_gate_false_alarm_rate_is_the_stated_one():
    """Clean seeded pairs (no nebula: no systematic) gated at p = 0.05 against an exact header
    (no stated header uncertainty): the number flagged is consistent with Binomial(n, p)
    (two-sided 1e-3); the test fails for a gate too loose or too strict."""
    p, n = 0.05, 160
    flagged = 0
    for seed in range(n):
        frames = _lights(1000 + seed, shape=(128, 128), stars=10, nebula=False)
        est, why, tiles = _estimate(frames, 1.7, systematic_rel=0.0)
        header = GainEstimate(1.7, 0.0, "header", 1)
        check = check_header_gain(header, est, tiles, false_alarm=p, not_measured=why)
        assert check.measured, check
        flagged += check.failed
    lo, hi = binom.ppf(0.0005, n, p), binom.isf(0.0005, n, p)
    assert lo <= flagged <= hi, (flagged, lo, hi)


def test_the_gate_flags_a_wrong_header_gain():
    est, why, tiles = _estimate(_lights(7, n=4), 1.7)
    for factor in (1.6, 1 / 1.6):
        header = GainEstimate(1.7 * factor, 1.7 * factor * 0.05, "header", 1)
        check = check_header_gain(header, est, tiles, false_alarm=1e-4, not_measured=why)
        assert check.measured and check.failed, check
    right = GainEstimate(1.7, 1.7 * 0.05, "header", 1)
    check = check_header_gain(right, est, tiles, false_alarm=1e-4, not_measured=why)
    assert check.measured and not check.failed, check


def test_not_measured_cases():
    header = GainEstimate(1.7, 0.085, "header", 1)
    # a sky too faint for its shot noise to dominate the difference
    faint = _lights(3, sky_e=5.0, nebula=False, prnu=0.0)
    est, why, tiles = _estimate(faint, 1.7)
    assert est is None and why == "sky_too_faint"
    check = check_header_gain(header, est, tiles, false_alarm=1e-3, not_measured=why)
    assert not check.measured and not check.failed and check.reason == "sky_too_faint"
    # a frame too small for enough tiles
    small = _lights(3, shape=(64, 64))
    est, why, _ = _estimate(small, 1.7)
    assert est is None and why == "too_few_tiles"
    # no pair at all (one light), and no header gain to check
    est, why, tiles = gain_from_light_pairs([])
    assert est is None and why == "too_few_tiles"
    good, _, n_tiles = _estimate(_lights(5), 1.7)
    check = check_header_gain(None, good, n_tiles, false_alarm=1e-3)
    assert not check.measured and check.reason == "no_header_gain"
    # frames of different shapes give no tiles
    assert pair_tiles(np.ones((64, 64)), np.ones((32, 32)), read_variance=1.0).signal.size == 0


def test_small_crowded_colour_pairs_are_measured_with_smaller_tiles():
    """A 96x96 Bayer pair crowded with stars keeps too few 16-pixel tiles free of sources;
    tiles sized down to the usable area measure it, the pulls centred with unit width."""
    pulls, retried = [], 0
    for seed in range(12):
        a, b = _lights(500 + seed, shape=(96, 96), bayer=True, nebula=False)
        retried += _cfa_tiles(a, b, 16, _read_variance(1.7), 0.0).signal.size < MIN_TILES
        est, _why, _ = _estimate([a, b], 1.7, bayer=True)
        if est is not None:
            pulls.append((est.value - 1.7) / est.sigma)
    assert retried >= 8  # most pairs keep fewer than MIN_TILES tiles of 16 px per colour
    assert len(pulls) >= 10
    assert abs(np.mean(pulls)) < 0.8 and 0.5 < np.std(pulls) < 1.5, pulls


def _rows(tmp_path, frames, *, egain, pedestal=100.0, source="header"):
    from astropy.io import fits

    rows = []
    for i, f in enumerate(frames):
        out = tmp_path / f"cal_{i}.fits"
        hdu = fits.PrimaryHDU((f + pedestal).astype(np.float32))
        hdu.header["DFPEDEST"] = pedestal
        hdu.writeto(out)
        rows.append(
            {
                "path": f"/in/light_{i}.fits",
                "output_path": out.name,
                "status": "calibrated",
                "reasons": "",
                "night": "2026-06-05",
                "session": "",
                "config_signature": "cfg",
                "exptime_s": 300.0,
                "master_id": "m1",
                "scale_mode": "exact",
                "scale_factor": 1.0,
                "egain_e_per_adu": egain,
                "egain_source": source,
                "date_obs_utc": f"2026-06-05T20:{10 + 5 * (len(frames) - i):02d}:00",
                "read_dark_variance_adu2": _read_variance(1.7),
                "model_variance_adu2": 0.0,
            }
        )
    return rows


@pytest.mark.parametrize(("egain", "flagged"), [(1.7, False), (1.7 * 1.8, True)])
def test_session_check_degrades_lights_of_a_wrong_header(tmp_path, egain, flagged):
    from darkflow.pipeline.lightpairs import check_light_pairs
    from darkflow.triage import rank_causes

    rows = _rows(tmp_path, _lights(21, n=4), egain=egain)
    n = check_light_pairs(
        rows,
        workdir=tmp_path,
        false_alarm=1e-4,
        header_rel_sigma=0.05,
        top_cause=lambda r: str(rank_causes(r)[0][0]),
    )
    assert n == int(flagged)
    for row in rows:
        assert abs(row["pair_gain_e_per_adu"] - 1.7) < 4 * row["pair_gain_sigma"], row
        assert row["pair_gain_check"] == ("fail" if flagged else "pass")
        assert row["status"] == ("degraded" if flagged else "calibrated")
        assert row["pair_gain_saturated_tiles"] == 0
        assert ("egain_pair_mismatch" in row["reasons"]) is flagged
        if flagged:
            assert row["top_cause"] == "noise_model"


def test_session_check_not_measured_changes_nothing(tmp_path):
    from darkflow.pipeline.lightpairs import check_light_pairs

    cases = []
    for name, frames, source, why in (
        ("one", _lights(22, n=1), "header", "one_light"),
        ("estimated", _lights(23, n=2), "light", "no_header_gain"),
        ("faint", _lights(24, n=2, sky_e=5.0, nebula=False, prnu=0.0), "header", "sky_too_faint"),
    ):
        (tmp_path / name).mkdir()
        cases.append(
            (tmp_path / name, _rows(tmp_path / name, frames, egain=3.0, source=source), why)
        )
    for workdir, rows, why in cases:
        n = check_light_pairs(
            rows, workdir=workdir, false_alarm=1e-4, header_rel_sigma=0.05, top_cause=str
        )
        assert n == 0
        for row in rows:
            assert row["pair_gain_check"] == f"not_measured:{why}", row
            assert row["status"] == "calibrated" and row["reasons"] == ""


def test_the_registry_status_follows_the_session_verdict(tmp_path):
    """A light degraded by the pair check is counted degraded by ``darkflow status`` too, and
    goes back to its own verdict when a later run's check passes."""
    import hashlib
    from types import SimpleNamespace

    from darkflow.io.hashing import short
    from darkflow.pipeline.run import _sync_pair_verdicts
    from darkflow.registry import Registry

    rows = _rows(tmp_path, _lights(25, n=2), egain=1.7)
    keys = {r["path"]: hashlib.sha256(r["path"].encode()).hexdigest() for r in rows}
    plan = SimpleNamespace(
        lights=[SimpleNamespace(meta=SimpleNamespace(path=p), key=k) for p, k in keys.items()]
    )
    with Registry(tmp_path) as reg:
        for row in rows:
            reg.put_artifact(
                key=keys[row["path"]],
                id=short(keys[row["path"]]),
                kind="calibrated_light",
                status="calibrated",
                path=tmp_path / row["output_path"],
                provenance={},
            )
        rows[0]["status"], rows[0]["pair_gain_check"] = "degraded", "fail"
        _sync_pair_verdicts(reg, plan, rows)
        assert [reg.get(keys[r["path"]]).status for r in rows] == ["degraded", "calibrated"]
        history = reg.get(keys[rows[0]["path"]]).provenance["status_history"]
        assert history[-1]["reason"] == "light-pair gain check: fail"
        rows[0]["status"], rows[0]["pair_gain_check"] = "calibrated", "pass"
        _sync_pair_verdicts(reg, plan, rows)
        assert [reg.get(keys[r["path"]]).status for r in rows] == ["calibrated", "calibrated"]


def test_pairs_stop_once_the_gain_is_known_well_enough(tmp_path):
    """More pairs only where the gate needs them: the stop looks at the uncertainty alone."""
    from darkflow.pipeline.lightpairs import MAX_PAIRS, _measure

    rows = _rows(tmp_path, _lights(26, n=2 * MAX_PAIRS), egain=1.7)
    every, _, tiles_all, _ = _measure(tmp_path, rows)
    first, _, tiles_one, _ = _measure(tmp_path, rows, enough_rel=1.0)
    assert every.n == 2 * MAX_PAIRS and first.n == 2
    assert tiles_one < tiles_all and first.sigma > every.sigma
    # a stop the pooled estimate never reaches measures every pair
    assert _measure(tmp_path, rows, enough_rel=every.sigma / every.value / 2)[0].n == every.n

"""Bias per night: sets split by set-point and at level jumps, every master and light takes the
bias of its own set-point and night nearest in time, a borrowed bias carries its level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from scipy.stats import binom

from darkflow.config import Config
from darkflow.model import FrameMeta, FrameType, MasterMeta
from darkflow.pipeline import run_night
from darkflow.pipeline.plan import BiasChoice, choose_bias
from darkflow.pipeline.sets import (
    BIAS_LEVEL_JUMP,
    FrameSet,
    build_frame_sets,
    find_level_jump,
    split_level_jumps,
)
from darkflow.registry import Registry

T0 = datetime(2026, 2, 10, 20, 0, tzinfo=UTC)
SIG = "testcam_b1x1_g100_o50_rm-default_48x64"


# ----------------------------------------------------------------------------- choice
def _bias(key, night, *, hours=0.0, set_temp=-10.0, verified=True, n=20) -> BiasChoice:
    start = T0 + timedelta(days=int(night[-1]) - 1, hours=hours)
    meta = MasterMeta(
        config_signature=SIG,
        instrument="cam",
        exptime_s=0.0,
        temp_c=set_temp,
        set_temp_c=set_temp,
        n_frames=n,
        date_start_utc=start,
        date_end_utc=start + timedelta(minutes=5),
        frame_kind=FrameType.BIAS,
    )
    return BiasChoice(key, None, night, meta, verified)


def _choose(candidates, night, *, hours=1.0, set_temp=-10.0):
    when = T0 + timedelta(days=int(night[-1]) - 1, hours=hours)
    b = choose_bias(candidates, night=night, set_temp_c=set_temp, temp_c=set_temp, when=when)
    return None if b is None else b.key


def test_each_frame_takes_its_nights_bias_nearest_in_time():
    biases = [_bias("n1", "n1"), _bias("n3", "n3"), _bias("n3-late", "n3", hours=9.0)]
    assert _choose(biases, "n1") == "n1"  # never the latest night's for every frame
    assert _choose(biases, "n3", hours=1.0) == "n3"
    assert _choose(biases, "n3", hours=8.0) == "n3-late"  # nearest in time within the night
    assert _choose(biases, "n2", hours=-6.0) == "n1"  # no bias that night: the nearest in time
    assert _choose(biases, "n2", hours=23.5) == "n3"
    # the set-point comes first: the bias level moves with the sensor temperature
    warm = [_bias("n1-m5", "n1", set_temp=-5.0), _bias("n2-m10", "n2")]
    assert _choose(warm, "n1") == "n2-m10"
    assert _choose(warm, "n1", set_temp=-5.0) == "n1-m5"
    # a verified bias of the night beats a flagged one; a flagged one beats another night's
    flagged = [_bias("bad", "n1", verified=False), _bias("good", "n1", hours=5.0)]
    assert _choose(flagged, "n1") == "good"
    assert _choose([_bias("bad", "n1", verified=False), _bias("n2", "n2")], "n1") == "bad"
    assert choose_bias([], night="n1", set_temp_c=None, temp_c=None, when=None) is None


# ----------------------------------------------------------------------------- sets
def _meta(i, *, kind=FrameType.BIAS, set_temp=-10.0, minutes=None, path=None) -> FrameMeta:
    return FrameMeta(
        path=path or f"/n/bias_{set_temp:g}_{i:02d}.fits",
        frame_type=kind,
        exptime_s=0.0,
        ccd_temp_c=set_temp,
        set_temp_c=set_temp,
        gain_setting=100,
        offset=50,
        instrument="cam",
        shape=(48, 64),
        date_obs_utc=T0 + timedelta(minutes=i if minutes is None else minutes),
    )


def test_bias_sets_are_split_by_set_point():
    metas = [_meta(i, set_temp=t) for t in (-10.0, -5.0) for i in range(10)]
    sets = build_frame_sets([("n1", m) for m in metas], Config())
    biases = [s for s in sets if s.kind == FrameType.BIAS]
    assert sorted((s.set_temp_c, len(s.metas)) for s in biases) == [(-10.0, 10), (-5.0, 10)]


def _fset(n) -> FrameSet:
    return FrameSet(FrameType.BIAS, SIG, "cam", "n1", 0.0, -10.0, tuple(_meta(i) for i in range(n)))


def test_a_level_jump_splits_the_set_in_time_order():
    rng = np.random.default_rng(1)
    fset = _fset(16)
    levels = 1000.0 + rng.normal(0.0, 0.2, 16)
    levels[8:] += 15.0  # the second half jumps 15 ADU (the real CCD)
    order = np.random.default_rng(2).permutation(16)  # levels come in the set's path order
    shuffled = FrameSet(
        fset.kind, SIG, "cam", "n1", 0.0, -10.0, tuple(fset.metas[i] for i in order)
    )
    parts = split_level_jumps(shuffled, [levels[i] for i in order], 7.0, false_alarm=1e-4)
    assert len(parts) == 2 and all(p.notes == (BIAS_LEVEL_JUMP,) for p in parts)
    firsts = sorted(min(m.date_obs_utc for m in p.metas) for p in parts)
    assert [len(p.metas) for p in sorted(parts, key=lambda p: p.metas[0].path)] == [8, 8]
    assert firsts[1] - firsts[0] == timedelta(minutes=8)
    assert parts[0].identity != parts[1].identity != fset.identity  # two masters
    jump = find_level_jump(levels, 7.0, false_alarm=1e-4)
    assert jump.at == 8 and jump.delta == pytest.approx(15.0, abs=0.5) and jump.significant


def test_drift_within_the_noise_and_a_lone_odd_frame_are_no_jump():
    # the STL-1001E at -10 °C: a slow 1 ADU drift, jitter 0.15 ADU, read noise 7.4 ADU
    drift = [991.31, 991.37, 991.65, 992.04, 992.05, 992.09, 992.03, 992.22, 992.04, 991.97]
    jump = find_level_jump(drift, 7.4, false_alarm=1e-4)
    assert not jump.significant and jump.mixing_error < jump.material
    assert split_level_jumps(_fset(10), drift, 7.4, false_alarm=1e-4) == [_fset(10)]
    # the 0 °C series: its first frame 3.9 ADU high moves a 10-frame master by 0.4 ADU only
    first = [1003.84, 1000.15, 1000.18, 999.81, 999.92, 999.86, 999.86, 1000.12, 999.97, 999.97]
    assert split_level_jumps(_fset(10), first, 7.4, false_alarm=1e-4) == [_fset(10)]
    # a lone frame 40 ADU off cannot be split off (a master of one frame): flagged, kept whole
    odd = [1000.0 + 0.1 * (i % 3) for i in range(10)]
    odd[0] += 40.0
    parts = split_level_jumps(_fset(10), odd, 7.4, false_alarm=1e-4)
    assert len(parts) == 1 and parts[0].notes == (BIAS_LEVEL_JUMP,)
    assert len(parts[0].metas) == 10
    assert find_level_jump([1.0, 2.0, 3.0], 1.0, false_alarm=1e-4) is None  # too few frames


def test_level_jump_false_alarms_stay_within_their_rate():
    """Series without a jump (white jitter, sets of 5-40 frames): at a false-alarm probability
    of 1 %, the number of sets whose significance test fires stays within the binomial bound."""
    rng = np.random.default_rng(7)
    alpha, trials, fired = 0.01, 400, 0
    for _ in range(trials):
        n = int(rng.integers(5, 41))
        levels = 1000.0 + rng.normal(0.0, rng.uniform(0.05, 2.0), n)
        jump = find_level_jump(levels, 0.0, false_alarm=alpha)  # no materiality: the test only
        fired += jump.z > jump.threshold
    assert fired <= binom.ppf(1 - 1e-3, trials, alpha)


# ----------------------------------------------------------------------------- pipeline
class _Camera:
    """A small CCD written as N.I.N.A. would: hot pixels, a bias level per night."""

    shape = (48, 64)

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.rate = np.exp(rng.normal(np.log(0.05), 0.2, self.shape))  # ADU/s, normal pixels
        hot = rng.random(self.shape) < 0.01
        self.rate[hot] = np.exp(rng.uniform(np.log(2.0), np.log(20.0), hot.sum()))
        self.pattern = rng.normal(0.0, 2.0, self.shape)
        self.rng = np.random.default_rng(seed + 1)

    def write(
        self, path: Path, kind: str, exptime: float, when: datetime, level: float, sky: float = 0.0
    ) -> None:
        data = level + self.pattern + self.rate * exptime + sky * exptime
        data = data + self.rng.normal(0.0, 4.0, self.shape)
        data = data + self.rng.normal(0.0, 1.0, self.shape) * np.sqrt(np.maximum(data - level, 0))
        h = fits.Header()
        h["IMAGETYP"] = kind
        h["EXPTIME"] = exptime
        h["DATE-OBS"] = when.strftime("%Y-%m-%dT%H:%M:%S.%f")
        h["XBINNING"], h["YBINNING"], h["GAIN"], h["OFFSET"] = 1, 1, 100, 50
        h["EGAIN"] = 1.0
        h["INSTRUME"] = "Test CCD"
        h["SET-TEMP"], h["CCD-TEMP"] = -10.0, -10.0
        h["SWCREATE"] = "N.I.N.A. 3.1.2.9001 (x64)"
        path.parent.mkdir(parents=True, exist_ok=True)
        out = np.clip(np.round(data), 0, 65535).astype(np.uint16)
        fits.PrimaryHDU(out, h).writeto(path)


NIGHTS = {  # night -> (bias level, biases taken?)
    "2026-02-10": (1000.0, True),
    "2026-02-11": (1008.0, False),
    "2026-02-12": (994.0, True),
}


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory) -> tuple[Path, Path]:
    """Three nights, the bias level moving between them; no biases on the second."""
    cam = _Camera()
    root = tmp_path_factory.mktemp("three") / "data"
    for k, (night, (level, with_bias)) in enumerate(NIGHTS.items()):
        start = datetime.fromisoformat(night).replace(hour=20, tzinfo=UTC)
        for i in range(5):
            cam.write(
                root / night / f"light_{i}.fits",
                "LIGHT",
                120.0,
                start + timedelta(minutes=3 * i),
                level,
                sky=0.2,
            )
        for i in range(8):
            cam.write(
                root / night / f"dark60_{i}.fits",
                "DARK",
                60.0,
                start + timedelta(hours=1, minutes=2 * i),
                level,
            )
            if k == 0:
                cam.write(
                    root / night / f"dark120_{i}.fits",
                    "DARK",
                    120.0,
                    start + timedelta(hours=1.5, minutes=3 * i),
                    level,
                )
        if with_bias:
            for i in range(10):
                cam.write(
                    root / night / f"bias_{i}.fits",
                    "BIAS",
                    0.0,
                    start + timedelta(hours=2, seconds=10 * i),
                    level,
                )
    work = root.parent / "work"
    run_night(root, workdir=work)
    return root, work


@pytest.mark.integration
def test_every_master_and_light_uses_the_bias_of_its_night(three_nights):
    _, work = three_nights
    masters = pd.read_csv(work / "masters.csv", dtype={"night": str})
    bias_night = {r.master_id: r.night for r in masters.itertuples() if r.kind == "bias"}
    assert sorted(bias_night.values()) == ["2026-02-10", "2026-02-12"]
    with Registry(work) as reg:
        for r in masters.itertuples():
            if r.kind != "dark":
                continue
            used = reg.get_by_id(r.master_id).record["bias_master_id"]
            if r.night != "2026-02-11":  # assessed with its own night's bias
                assert bias_night[used] == r.night
    frames = pd.read_csv(work / "frame_report.csv", dtype={"night": str})
    for r in frames.itertuples():
        if r.night != "2026-02-11":
            assert bias_night[r.bias_master_id] == r.night, r.path
            assert "bias_other_night" not in str(r.reasons)
    # night 2 has no bias: the nearest night's is used, its level difference stated
    second = frames[frames["night"] == "2026-02-11"]
    assert len(second) == 5 and (second["status"] != "quarantined").all()
    for r in second.itertuples():
        # whichever model (night 1's 120 s master, or night 2's 60 s one scaled by 2), the
        # light's level is night 2's: the borrowed bias's 8 ADU difference is carried
        assert "bias_other_night" in r.reasons
        assert r.dark_level_sigma_adu == pytest.approx(1008.0 - 1000.0, abs=2.0)


def test_the_light_key_names_its_biases():
    from darkflow.matching import MatchDecision
    from darkflow.model import ScaleMode
    from darkflow.pipeline.plan import light_key

    decision = MatchDecision("/l.fits", SIG, "m", ScaleMode.EXPOSURE, 2.0, 0.9)
    recipe = (("m", "key-m", Path("/m.fits"), "verified"),)

    def key(**kw):
        args = dict(
            recipe=recipe, bias="bias-n1", decision=decision, index_fingerprint="f", config=Config()
        )
        return light_key("hash", **{**args, **kw})

    base = key()
    assert key() == base
    assert key(bias="bias-n3") != base  # another bias: another light
    assert key(master_biases={}) == base and key(bias_level_sigma_adu=0.0) == base
    assert key(master_biases={"m": "bias-n2"}) != base  # a master keeps another bias
    assert key(bias_level_sigma_adu=6.0) != base  # a borrowed bias carries its level

"""Light temperatures from the session (missing, noisy, outlier readings) and thermal groups."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from darkflow.config import MatchingConfig
from darkflow.model import FrameMeta, FrameType
from darkflow.thermal import SessionContext, session_context, thermal_groups

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def frame(i, temp, *, minutes=5.0, set_temp=-10.0, kind=FrameType.LIGHT):
    return FrameMeta(
        path=f"/s/f{i:03d}.fits",
        frame_type=kind,
        exptime_s=120.0,
        ccd_temp_c=temp,
        set_temp_c=set_temp,
        date_obs_utc=T0 + i * minutes * M,
        instrument="Cam",
        shape=(10, 10),
    )


def curve(i):  # an uncooled night: a curved cooling with the ambient air
    h = i * 5 / 60
    return 16.0 - 0.8 * h - 0.4 * h * h


def test_estimates_follow_the_session():
    frames = [frame(i, round(curve(i), 1)) for i in range(40)]
    frames[10] = replace(frames[10], ccd_temp_c=None)
    frames[20] = replace(frames[20], ccd_temp_c=40.0)
    ctx = session_context(frames)
    assert ctx.outliers == {frames[20].path} and ctx.fit_usable and ctx.set_temp_c == -10.0
    cfg = MatchingConfig()
    e = ctx.estimate(frames[10], cfg)
    assert (e.source, e.note) == ("session_fit", "missing_reading")
    assert e.temp_c == pytest.approx(curve(10), abs=0.1)
    e = ctx.estimate(frames[20], cfg)
    assert e.note == "reading_outlier" and e.temp_c == pytest.approx(curve(20), abs=0.1)
    e = ctx.estimate(frames[3], cfg)
    assert e.source == "header" and e.temp_c == frames[3].ccd_temp_c and e.sigma_c >= 0.2


def test_noisy_readings_are_smoothed():
    rng = np.random.default_rng(4)
    frames = [frame(i, round(curve(i) + rng.normal(0, 0.8), 1)) for i in range(45)]
    ctx = session_context(frames)
    errors_fit, errors_reading = [], []
    for i, f in enumerate(frames):
        e = ctx.estimate(f, MatchingConfig())
        assert e.note == "noisy_readings"
        errors_fit.append(e.temp_c - curve(i))
        errors_reading.append(f.ccd_temp_c - curve(i))
    assert np.std(errors_fit) < 0.5 * np.std(errors_reading)
    assert abs(np.mean(errors_fit)) < 0.15


def test_fallbacks_without_readings():
    lonely = frame(0, None)
    e = SessionContext().estimate(lonely)
    assert e.source == "setpoint" and e.temp_c == -10.0 and e.sigma_c == 1.5
    e = SessionContext().estimate(replace(lonely, set_temp_c=None))
    assert e.source == "none" and not e.known
    e = session_context([lonely]).estimate(lonely)
    assert e.source == "setpoint"
    far = frame(500, None)  # hours after the last reading: no extrapolation of the fit
    ctx = session_context([frame(i, -10.0 + 0.01 * i) for i in range(10)])
    assert ctx.estimate(far).source == "setpoint"


def test_thermal_groups_split_by_gap_setpoint_and_drift():
    dusk = [frame(i, -10.0 + 0.05 * i, minutes=2) for i in range(10)]  # steady: one group
    drift = [frame(100 + i, -10.0 + 0.4 * i, minutes=2) for i in range(12)]  # 4.4 °C: split
    other_set = [frame(200 + i, -15.0, minutes=2, set_temp=-15.0) for i in range(3)]
    groups = thermal_groups(dusk + drift + other_set, gate_c=1.2, max_gap_h=1.0)
    sizes = [len(g) for g in groups]
    assert sizes[0] == 10 and sum(sizes) == 25 and sizes[-1] == 3
    drift_groups = groups[1:-1]
    assert len(drift_groups) == 3  # ceil(3.6 / 1.2): span of the running median, in time order
    spans = [max(f.ccd_temp_c for f in g) - min(f.ccd_temp_c for f in g) for g in drift_groups]
    assert max(spans) <= 1.2 + 1e-9
    rng = np.random.default_rng(1)
    noisy = [frame(i, round(-10.0 + rng.normal(0, 0.8), 1), minutes=2) for i in range(12)]
    assert len(thermal_groups(noisy, gate_c=1.2)) == 1  # noisy readings never split a set
    mixed = [frame(i, None if i % 3 == 0 else -10.0, minutes=2) for i in range(9)]
    assert sorted(len(g) for g in thermal_groups(mixed, gate_c=1.2)) == [3, 6]
    assert thermal_groups([], gate_c=1.2) == []

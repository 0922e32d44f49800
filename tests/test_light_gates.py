"""The light gates know their own noise: false alarms on clean lights at the stated probability.

Clean simulated nights (``conftest_lights``: exact darks, mono and every Bayer pattern, with and
without EGAIN, with and without stars, several sizes) are calibrated by ``calibrate_light`` with
``verify.gate_false_alarm = 0.05``, a probability high enough that the failures of each gate
can be counted. Each gate's failures must stay within a binomial bound of its stated
probability (a gate may be conservative: counts and exact tails fail less often). The same
gates' deviates, judged at the default ``1e-4``, must leave the lights calibrated.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from conftest_lights import NightSpec, clean_night
from scipy.stats import binom

from darkflow.model import LightStatus
from darkflow.verify import GateStatus, Metric, z_threshold

P = 0.05  # the gates' false-alarm probability in these runs
BOUND = 1e-3  # a count this unlikely under the stated probability fails the test


def _fails_at(metric: Metric, p: float) -> bool:
    """Would ``metric`` (a measured gate) fail at false-alarm probability ``p``?"""
    if metric.z is None or metric.threshold is None:
        return metric.failed
    side = metric.limit.split(" ", 1)[0]
    if side == "|z|":
        return abs(metric.z) > z_threshold(p, sides=2) * _materiality_factor(metric)
    if side == "-z":
        return -metric.z > z_threshold(p, sides=1) * _materiality_factor(metric)
    return metric.z > z_threshold(p, sides=1) * _materiality_factor(metric)


def _materiality_factor(metric: Metric) -> float:
    return 1.0  # no light gate has a materiality


def _max_failures(n: int, p: float) -> int:
    """The largest failure count not rejected at BOUND for ``n`` trials at probability ``p``."""
    k = 0
    while binom.sf(k, n, p) >= BOUND:  # P(X > k)
        k += 1
    return k


def _run(specs: list[NightSpec]):
    tried: Counter = Counter()
    failed: Counter = Counter()
    strict: Counter = Counter()
    statuses: Counter = Counter()
    for spec in specs:
        for light in clean_night(spec, false_alarm=P):
            check = light.first_check  # before any response
            default_fail = False
            for m in check.metrics:
                if m.status == GateStatus.NOT_MEASURED or m.z is None or m.name in _DERIVED:
                    continue
                tried[m.name] += 1
                if m.failed:
                    failed[m.name] += 1
                if _fails_at(m, 1e-4):
                    strict[m.name] += 1
                    default_fail = True
            statuses["degraded@1e-4" if default_fail else "clean@1e-4"] += 1
            statuses[str(light.status)] += 1
    return tried, failed, strict, statuses


def _assert_bounds(tried: Counter, failed: Counter, strict: Counter, statuses: Counter) -> None:
    assert tried["log_variance_ratio"] and tried["column_ratio"] and tried["hole_count"]
    for name, n in tried.items():
        assert failed[name] <= _max_failures(n, P), (name, failed[name], n, dict(failed))
        assert strict[name] <= _max_failures(n, 1e-4), (name, strict[name], n)
    # at the default probability (about 15 gates per light) nearly every clean light is clean
    n_lights = statuses["clean@1e-4"] + statuses["degraded@1e-4"]
    assert statuses["degraded@1e-4"] <= _max_failures(n_lights, 15 * 1e-4), dict(statuses)
    assert statuses[str(LightStatus.QUARANTINED)] == 0, dict(statuses)


PATTERNS = (None, "RGGB", "GRBG", "GBRG", "BGGR")
# follow-ups of a failing dark-scale gate (what the failure means), not gates of their own
_DERIVED = frozenset({"dark_signal_fraction", "harmful_subtraction"})


def test_clean_lights_fail_each_gate_at_most_at_its_stated_rate():
    specs = [
        NightSpec(seed=10 * i + j, pattern=pattern, egain_known=bool(j % 2), stars=j < 2,
                  shape=((96, 128), (128, 96))[i % 2], n_lights=2)  # fmt: skip
        for i, pattern in enumerate(PATTERNS)
        for j in range(4)
    ]
    _assert_bounds(*_run(specs))


@pytest.mark.slow
@pytest.mark.parametrize("pattern", PATTERNS)
def test_clean_lights_false_alarms_many_sizes(pattern):
    rng = np.random.default_rng(abs(hash(pattern or "mono")) % 2**32)
    specs = []
    for k, shape in enumerate(((160, 200), (256, 256), (384, 512), (512, 384), (1024, 1024))):
        for egain in (True, False):
            for stars in (True, False):
                specs.append(NightSpec(seed=int(rng.integers(1 << 30)), shape=shape,
                                       pattern=pattern, egain_known=egain, stars=stars,
                                       n_darks=int(rng.integers(3, 25)),
                                       n_lights=1 if k == 4 else 3))  # fmt: skip
    _assert_bounds(*_run(specs))


@pytest.mark.slow
def test_clean_ccd_and_dslr_lights():
    specs = [
        NightSpec(seed=s, camera=camera, pattern=pattern, egain_known=bool(s % 2),
                  shape=(256, 320), n_lights=3)  # fmt: skip
        for s in range(6)
        for camera, pattern in (("sbig-stf-8300m", None), ("canon-eos-6d", "RGGB"))
    ]
    _assert_bounds(*_run(specs))


def test_the_binomial_bound_is_what_it_says():
    assert _max_failures(40, 0.05) >= 6  # mean 2; P(X > 6) < 1e-3 only from 7 on
    assert binom.sf(_max_failures(40, 0.05), 40, 0.05) < BOUND
    assert _max_failures(40, 1e-4) == 1
    assert math.isclose(z_threshold(1e-4), 3.8906, rel_tol=1e-4)

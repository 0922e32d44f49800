"""Each master gate's false-alarm rate on simulated clean masters, against its stated probability.

A gate states the probability ``p`` (``verify.gate_false_alarm``) with which it fails a clean
master. Run at ``p = 0.05`` on 40 seeded clean masters per case, each gate's failure count must
be compatible with Binomial(measured, 0.05) (below its 99.9 % quantile: a gate whose null were
too narrow fails far more often), and at the default ``p = 1e-4`` no clean master fails at all.
Detection: each gate still sees the fault it is for (``test_verify_master.py`` has the
synthetic faults; ``benchmarks/bench_faults.py`` the simulated nights).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.masters import assess_clean_sets
from scipy.stats import binom

from darkflow.config import VerifyConfig
from darkflow.model import MasterStatus
from darkflow.verify import VerifyReason

P_TEST = 0.05


def _check_rates(tally, p: float) -> None:
    assert tally.measured, "no gate measured"
    for name, n in tally.measured.items():
        bound = binom.isf(0.001, n, p)
        assert tally.failed[name] <= bound, (
            f"{name}: {tally.failed[name]} of {n} clean masters failed at p={p}"
        )


CASES_FAST = [
    ("zwo-asi2600mm-pro", 10, 128, {}),  # cooled CMOS, glow, row banding
    ("zwo-asi2600mm-pro", 8, 128, {"adc_bits": 12}),  # saved in steps of 16 ADU
    ("sbig-stf-8300m", 5, 128, {}),  # CCD: hot columns, higher read noise, 4 training frames
]
CASES_SLOW = [
    ("zwo-asi2600mm-pro", 4, 128),  # 3 training frames, 1 held out
    ("zwo-asi533mc-pro", 3, 128),  # nothing held out: no hold-out gates
    ("zwo-asi294mc-pro", 5, 192),  # strong amp glow
    ("canon-eos-6d", 10, 128),  # DSLR
    ("zwo-asi2600mm-pro", 20, 256),
    ("sbig-stf-8300m", 12, 384),
]


@pytest.mark.parametrize(("camera", "n", "size", "changes"), CASES_FAST)
def test_clean_masters_fail_each_gate_at_its_stated_rate(camera, n, size, changes):
    tally = assess_clean_sets(
        camera, n, size, 40, config=VerifyConfig(gate_false_alarm=P_TEST), **changes
    )
    _check_rates(tally, P_TEST)
    # the hold-out, noise-model and stability gates were all exercised
    assert {
        "holdout_width_ratio",
        "master_variance_ratio",
        "dark_scale_change",
        "transient_excess",
    } <= set(tally.measured)


@pytest.mark.slow
@pytest.mark.parametrize(("camera", "n", "size"), CASES_SLOW)
def test_clean_masters_fail_each_gate_at_its_stated_rate_slow(camera, n, size):
    tally = assess_clean_sets(camera, n, size, 40, config=VerifyConfig(gate_false_alarm=P_TEST))
    _check_rates(tally, P_TEST)


@pytest.mark.parametrize(
    ("camera", "n", "size"),
    [("canon-eos-6d", 3, 128), pytest.param("zwo-asi2600mm-pro", 6, 256, marks=pytest.mark.slow)],
)
def test_no_clean_master_fails_at_the_default_false_alarm_rate(camera, n, size):
    tally = assess_clean_sets(camera, n, size, 40, config=VerifyConfig(), seed0=100)
    assert sum(tally.failed.values()) == 0, dict(tally.failed)
    assert all(a.status == MasterStatus.VERIFIED for a in tally.assessments)


def _heavy_cosmics(frames, rng):
    out = []
    for f in frames:
        f = f.astype(np.float32)
        hit = rng.random(f.shape) < 0.01
        f[hit] += rng.uniform(2000.0, 20000.0, int(hit.sum())).astype(np.float32)
        out.append(f)
    return out


def _one_frame_shifted(frames, rng):
    return [*frames[:-1], frames[-1].astype(np.float32) + 40.0]  # the held-out frame


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (_heavy_cosmics, VerifyReason.HIGH_REJECTIONS),
        (_one_frame_shifted, VerifyReason.HOLDOUT_SHIFT),
    ],
    ids=["cosmics", "held_out_shift"],
)
def test_simulated_faults_are_detected(fault, reason):
    tally = assess_clean_sets("zwo-asi2600mm-pro", 10, 128, 5, config=VerifyConfig(), fault=fault)
    assert all(reason in a.reasons for a in tally.assessments), [
        a.reasons for a in tally.assessments
    ]


def test_coarse_steps_and_few_frames_raise_no_gate():
    """A 14-bit ADC scaled to 16 bits (steps of 4 ADU) with a read noise under one step, three
    darks: the combine's temporal noise, the bias-column and hold-out nulls and the transient
    events all see the lattice as the noise it is (a pixel whose three values agree sits on
    the lattice with no variance of its own; the gates' curves and selections must not read
    that as the noise of its level)."""
    tally = assess_clean_sets(
        "zwo-asi2600mm-pro",
        3,
        128,
        12,
        config=VerifyConfig(),
        seed0=200,
        adc_bits=14,
        read_noise_e=0.4,
        dark_current_e_per_s=0.002,
    )
    assert sum(tally.failed.values()) == 0, dict(tally.failed)


def test_flickering_pixels_are_no_transients():
    """Random-telegraph pixels "on" in 40 % of the frames sit above the clipped master again
    and again: a property of the pixel, not a one-sided transient (a clean bias set of a
    colour CMOS was failed by ``transient_excess``: zoo seed 4 ``colour_cmos-2273265005``)."""
    tally = assess_clean_sets(
        "zwo-asi533mc-pro",
        24,
        128,
        10,
        config=VerifyConfig(),
        exptime=1.0,
        flicker_pixels=12,
        flicker_amp_e=300.0,
    )
    assert tally.measured["transient_excess"] == 10
    assert tally.failed["transient_excess"] == 0, dict(tally.failed)

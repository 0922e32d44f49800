"""Seeded clean (and faulty) master sets from the simulator's sensor physics, for the gates'
false-alarm and detection tests: a camera preset, a frame count, a size.

Each trial draws a sensor (its own hot pixels, glow, bias pattern), ``n`` darks of which 20 %
are held out (as the pipeline's split: never fewer than 3 to combine), a previous master of 12
darks of the same sensor and a master bias of 15 frames, and judges the training master with
:func:`darkflow.verify.assess_master` as :func:`darkflow.verify.assess_master_set` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from darkflow.config import VerifyConfig
from darkflow.master import combine_arrays
from darkflow.model import FrameType, MasterMeta
from darkflow.simulate.physics import expose, make_sensor_truth
from darkflow.simulate.sensors import SENSOR_PRESETS
from darkflow.verify import MasterAssessment, assess_master


@dataclass
class GateTally:
    """Per gate: how often it was measured and how often it failed."""

    measured: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    assessments: list[MasterAssessment] = field(default_factory=list)


def _meta(model, exptime: float, n: int, kind=FrameType.DARK) -> MasterMeta:
    return MasterMeta(
        config_signature="sim",
        instrument="sim",
        exptime_s=exptime,
        temp_c=-10.0 if kind == FrameType.DARK else None,
        set_temp_c=-10.0,
        n_frames=n,
        egain_e_per_adu=model.egain_e_per_adu,
        frame_kind=kind,
    )


def assess_clean_sets(
    camera: str,
    n: int,
    size: int,
    trials: int,
    *,
    config: VerifyConfig,
    exptime: float = 300.0,
    seed0: int = 0,
    fault: Callable[[list[np.ndarray], np.random.Generator], list[np.ndarray]] | None = None,
    **changes,
) -> GateTally:
    """Judge ``trials`` seeded masters; ``fault`` (frames, rng) -> frames alters the darks;
    ``changes`` alter the camera preset (e.g. ``adc_bits=12``)."""
    model = SENSOR_PRESETS[camera].replace(ny=size, nx=size, **changes)
    tally = GateTally()
    for trial in range(trials):
        seed = seed0 + trial
        rng = np.random.default_rng(seed)
        truth = make_sensor_truth(model, np.random.default_rng(10_000 + seed))
        frames = [expose(truth, "dark", exptime, -10.0, rng) for _ in range(n)]
        if fault is not None:
            frames = fault(frames, rng)
        hold = max(1, round(0.2 * n)) if n - max(1, round(0.2 * n)) >= 3 else 0
        train, held = frames[: n - hold], frames[n - hold :]
        master = combine_arrays(train, meta=_meta(model, exptime, len(train)), allow_few=True)
        prev_frames = [expose(truth, "dark", exptime, -10.0, rng) for _ in range(12)]
        previous = combine_arrays(prev_frames, meta=_meta(model, exptime, 12), allow_few=True)
        bias_frames = [expose(truth, "bias", 0.0, -10.0, rng) for _ in range(15)]
        bias = combine_arrays(
            bias_frames, meta=_meta(model, 0.0, 15, FrameType.BIAS), allow_few=True
        )
        a = assess_master(
            master,
            holdout=held or None,
            training=train if len(train) >= 2 else None,
            previous=previous,
            bias=bias,
            config=config,
        )
        tally.assessments.append(a)
        for m in a.metrics:
            if m.value is None or m.confidence is None or m.advisory:
                continue
            tally.measured[m.name] += 1
            tally.failed[m.name] += int(m.failed)
    return tally

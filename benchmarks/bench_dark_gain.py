"""Photon transfer on dark masters with their master bias (``gain_from_darks``) against the truth.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_dark_gain.py --n 40

Each case: one simulated sensor (``darkflow.simulate.sensors.SENSOR_PRESETS``: every other case
an uncooled one, the others the cooled ones in turn), ``n``
darks of one exposure while the sensor temperature moves by ``drift`` °C over the sequence
(0 for cooled cameras at their set-point; 0, 0.5, 1 or 2 °C for an uncooled one: warming as
a DSLR does), combined with :func:`darkflow.master.combine_arrays`, and 15 biases. The pull
``(estimate - truth) / sigma`` of :func:`darkflow.calibrate.gain_from_darks` per case; the
summary gives the pulls' mean and standard deviation per camera kind and drift (an honest
estimator: mean 0, sd 1). Seeded: the same cases on every run, so two versions of the code
compare case by case (run the other from ``git archive``).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np


def run_case(i: int) -> tuple[str, float, float | None, float, float]:
    """The ``i``-th case: (camera, drift, pull or None, estimate, truth)."""
    from darkflow.calibrate import gain_from_darks
    from darkflow.master import combine_arrays
    from darkflow.model import FrameType, MasterMeta
    from darkflow.simulate.physics import expose, make_sensor_truth
    from darkflow.simulate.sensors import SENSOR_PRESETS

    rng = np.random.default_rng(1000 + i)
    cooled = sorted(k for k, m in SENSOR_PRESETS.items() if m.cooled)
    uncooled = sorted(k for k, m in SENSOR_PRESETS.items() if not m.cooled)
    pool = uncooled if i % 2 == 0 else cooled  # half the cases uncooled
    name = pool[(i // 2) % len(pool)]
    model = SENSOR_PRESETS[name].replace(ny=160, nx=192)
    n = int(rng.choice([5, 8, 13, 20]))
    exptime = float(rng.choice([30.0, 60.0, 120.0, 300.0]))
    start = float(rng.uniform(-10.0, 10.0)) if model.cooled else float(rng.uniform(0.0, 15.0))
    drift = 0.0 if model.cooled else float(rng.choice([0.0, 0.5, 1.0, 2.0]))
    truth = make_sensor_truth(model, np.random.default_rng(i + 7))
    temps = start + np.linspace(0.0, drift, n)
    frames = [expose(truth, "dark", exptime, float(t), rng) for t in temps]
    biases = [expose(truth, "bias", 0.0, start, rng) for _ in range(15)]
    kw = dict(
        config_signature="s", instrument="s", egain_e_per_adu=None, temp_c=None, set_temp_c=None
    )
    dark, bias = (
        combine_arrays(
            stack,
            meta=MasterMeta(**kw, exptime_s=t, n_frames=len(stack), frame_kind=kind),
            allow_few=True,
        )
        for stack, t, kind in ((frames, exptime, FrameType.DARK), (biases, 0.0, FrameType.BIAS))
    )
    est = gain_from_darks(dark, clip_sigma=3.0, bias=bias)
    g = float(model.egain_e_per_adu)
    if est is None:
        return name, drift, None, float("nan"), g
    return name, drift, (est.value - g) / est.sigma, est.value, g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="cases")
    parser.add_argument("-v", "--verbose", action="store_true", help="every case")
    args = parser.parse_args()
    from darkflow.simulate.sensors import SENSOR_PRESETS

    groups: dict[tuple[str, float], list[float]] = defaultdict(list)
    every = []
    for i in range(args.n):
        name, drift, pull, value, truth = run_case(i)
        if args.verbose:
            shown = "none" if pull is None else f"{pull:+.2f}"
            print(f"{i:3d} {name:20s} drift {drift:3.1f}  {value:.3f} vs {truth:.3f}  pull {shown}")
        if pull is not None:
            kind = "cooled" if SENSOR_PRESETS[name].cooled else "uncooled"
            groups[(kind, drift)].append(pull)
            every.append(pull)
    print(f"{'kind':10s} {'drift':>5s} {'n':>3s} {'mean':>6s} {'sd':>5s} {'max|p|':>6s}")
    for (kind, drift), p in sorted(groups.items()):
        a = np.array(p)
        sd = float(np.std(a, ddof=1)) if a.size > 1 else float("nan")
        print(
            f"{kind:10s} {drift:5.1f} {a.size:3d} {a.mean():+6.2f} {sd:5.2f} {np.abs(a).max():6.2f}"
        )
    a = np.array(every)
    print(
        f"{'all':10s} {'':5s} {a.size:3d} {a.mean():+6.2f} {np.std(a, ddof=1):5.2f} {np.abs(a).max():6.2f}"
    )


if __name__ == "__main__":
    main()

"""The light's own gain (``gain_from_light``) against the truth on clean zoo nights without EGAIN.

    .venv/bin/python benchmarks/bench_light_gain.py --cache /work/tmp/lg-calls --n 90
    .venv/bin/python benchmarks/bench_light_gain.py --cache /work/tmp/lg-calls --replay -v

Every call the pipeline makes to :func:`darkflow.subtract.gain.gain_from_light` (as
``darkflow.calibrate`` calls it: the dark-subtracted light, its noise floor, ``cfa``,
``read_variance_sigma``) is recorded, one pickle per night in ``--cache`` with the camera's true
e-/ADU (``params.camera.egain_e_per_adu``, of the saved values). ``--replay`` runs the current
``gain_from_light`` on the recorded calls (seconds, no pipeline): the pulls ``(estimate -
truth) / sigma`` per light, mono and colour apart, and with ``-v`` per night with the floor the
tiles imply (``median(V - L / g_true)``) against the floor the pipeline gave.

Nights: the first ``--n`` clean nights without EGAIN of ``sample_zoo(400, 0)``, run in the driver
process (``pipeline.workers = 1``: the recorder lives in this process; a night whose run still
spawns processes, large frames, records no call: colour_cmos-1002724213 of the issue is one).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np


def record(cache: Path, start: int, stop: int, tmp: str | None) -> None:
    """Run the nights ``[start, stop)`` and pickle their ``gain_from_light`` calls."""
    import darkflow.subtract.gain as gain
    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    nights = [p for p in sample_zoo(400, 0) if p.clean and p.egain == "absent"][start:stop]
    original = gain.gain_from_light
    calls: list = []

    def recorder(calibrated, read_variance, **kw):
        saved = {k: np.asarray(v, np.float32) if k == "model" else v for k, v in kw.items()}
        calls.append((np.asarray(calibrated, np.float32).copy(), float(read_variance), saved))
        return original(calibrated, read_variance, **kw)

    gain.gain_from_light = recorder
    config = Config()
    config = dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, workers=1))
    cache.mkdir(parents=True, exist_ok=True)
    for params in nights:
        out = cache / f"{params.name}.pkl"
        if out.exists():
            continue
        calls.clear()
        work = Path(tempfile.mkdtemp(prefix=f"lg-{params.name}-", dir=tmp))
        try:
            zoo_night(work / "data", params=params)
            run_night(work / "data", workdir=work / "work", config=config)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        night = {
            "name": params.name,
            "family": params.family,
            "truth": params.camera.egain_e_per_adu,
            "calls": list(calls),
        }
        out.write_bytes(pickle.dumps(night))
        print(params.name, len(calls), flush=True)


def replay(cache: Path, verbose: bool, drop: tuple[str, ...] = ()) -> None:
    """Pulls of the current ``gain_from_light`` on the recorded calls (without the recorded
    keywords ``drop``: the same lights as an older call saw them)."""
    from darkflow.subtract.gain import gain_from_light

    rows = []
    for path in sorted(cache.glob("*.pkl")):
        night = pickle.loads(path.read_bytes())
        seen = set()
        for data, floor, kw in night["calls"]:
            key = (data.shape, data.tobytes()[:4096], floor)
            if key in seen:  # the re-check of a light on the same model
                continue
            seen.add(key)
            kw = {k: v for k, v in kw.items() if k not in drop}
            est = gain_from_light(data.astype(np.float64), floor, **kw)
            if est is None:
                continue
            truth = night["truth"]
            rows.append(
                (night["name"], bool(kw.get("cfa")), (est.value - truth) / est.sigma,
                 est.sigma / truth, est.value / truth - 1.0)
            )  # fmt: skip
    print(f"{len({r[0] for r in rows})} nights, {len(rows)} lights")
    for label, sel in (
        ("mono", [r for r in rows if not r[1]]),
        ("colour", [r for r in rows if r[1]]),
    ):
        if not sel:
            continue
        pull, rel, err = (np.array([r[k] for r in sel]) for k in (2, 3, 4))
        print(
            f"{label:7s} lights {pull.size:4d} nights {len({r[0] for r in sel}):3d}  pull mean "
            f"{pull.mean():+.2f} sd {pull.std():.2f} max|pull| {np.abs(pull).max():.2f}  median "
            f"sigma/g {np.median(rel):.4f}  median error {np.median(err):+.4f}"
        )
    if verbose:
        by = defaultdict(list)
        for r in rows:
            by[r[0]].append(r)
        for name, sel in sorted(by.items()):
            pull = np.array([r[2] for r in sel])
            print(
                f"  {name:30s} lights {pull.size:3d} pull mean {pull.mean():+.2f} worst "
                f"{pull[np.argmax(np.abs(pull))]:+.2f} error {np.median([r[4] for r in sel]):+.4f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="pickles of the recorded calls")
    parser.add_argument("--n", type=int, default=90, help="clean nights without EGAIN to run")
    parser.add_argument("--start", type=int, default=0, help="first night (split runs)")
    parser.add_argument("--tmp", default=None, help="where the nights are simulated")
    parser.add_argument("--replay", action="store_true", help="only replay the recorded calls")
    parser.add_argument("-v", "--verbose", action="store_true", help="per night")
    parser.add_argument(
        "--drop",
        nargs="*",
        default=(),
        help="recorded keywords left out of the replay (e.g. model model_variance: as before)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if not args.replay:
        record(args.cache, args.start, args.start + args.n, args.tmp)
    replay(args.cache, args.verbose, tuple(args.drop))
    return 0


if __name__ == "__main__":
    sys.exit(main())

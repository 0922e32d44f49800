"""Exposure laws and the per-pixel linear model: error against the truth, verdicts before/after.

Three parts (each skipped with a message when its inputs are missing):

* **linearity verdicts on linear cameras** — simulated masters (``helpers/laws.py``, ``Stack``:
  the simulator's sensor maps, combine-like noise, temperature readings off by their stated
  0.2 °C) of a CCD and two CMOS cameras with 2, 3 and 6 exposure bins; the fraction of
  verdicts that are not ``proportional`` with the exposure-law test of this tree and with the
  fixed-tolerance test it replaced (the ``scaling.py`` of ``--before``, a git revision);
* **dark models against the truth** — for the same cameras, lights at exposures without a
  master: RMS error (all pixels, and the hot pixels) of the subtracted model against the true
  dark for the nearest master as is, the nearest master scaled (by the bias, or around its
  median level without one), the per-pixel two-point model, and darkflow's own decision
  (``match_light`` + ``dark_model_for``), with the spread of darkflow's pulls (error over its
  stated sigma: 1 when the stated error is right);
* **real frames** (``DARKFLOW_REAL_DATA``, see docs/real-data.md) — dark ladders of the
  STL-1001E and the ST-402's 240/360/1200 s darks: held-out darks (true signal zero) against
  the same models, scored by the hot-pixel residual of ``realscores``; and the linearity
  verdict of the ladders before/after.

    .venv/bin/python benchmarks/bench_laws.py [--trials 40] [--before 5588250] [--no-write]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from helpers.laws import T0, Stack  # noqa: E402

from darkflow.config import Config, ScalingConfig  # noqa: E402
from darkflow.matching import MasterEntry, build_index, match_light  # noqa: E402
from darkflow.matching._pairs import fit_coefficients  # noqa: E402
from darkflow.model import FrameMeta, FrameType  # noqa: E402
from darkflow.subtract import dark_model_for  # noqa: E402
from darkflow.thermal import default_law  # noqa: E402

SECTION = "## Exposure laws and the per-pixel model (`bench_laws.py`)"
LAW = default_law(6.0, 1.0)
CAMERAS = ("sbig-stf-8300m", "zwo-asi294mc-pro", "zwo-asi2600mm-pro")
GRIDS = (
    ((30.0, 60.0, 300.0), 10),
    ((300.0, 900.0), 5),
    ((10.0, 20.0, 30.0, 60.0, 150.0, 300.0), 1),
)


def _old_scaling(rev: str):
    """The ``darkflow/exposure/laws.py`` of git revision ``rev`` as a module (None if unavailable)."""
    try:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:darkflow/exposure/laws.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_scaling.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_scaling", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_scaling"] = module
    spec.loader.exec_module(module)
    return module


def _verdict(scaling, masters, bias, *, alpha=None):
    ordered = sorted(masters, key=lambda m: -m.meta.exptime_s)
    ref = scaling.choose_reference(ordered[0], bias, ScalingConfig())
    sums = [scaling.summarize_master(m, bias, ref, master_id=str(i)) for i, m in enumerate(ordered)]
    kw = {"false_alarm": alpha} if alpha is not None else {}
    return scaling.measure_linearity(
        "s", sums, LAW, ScalingConfig(), bias_available=bias is not None, temp_window_c=1.2, **kw
    )


def linearity_part(trials: int, old) -> list[str]:
    import darkflow.exposure.laws as new

    alpha = Config().verify.gate_false_alarm
    rows = [
        "| camera | bins (s) | frames | trials | not proportional: before | after |",
        "|---|---|---:|---:|---:|---:|",
    ]
    tot_b = tot_a = tot = 0
    for key in CAMERAS:
        for exposures, n in GRIDS:
            before, after = Counter(), Counter()
            for seed in range(trials):
                stack = Stack(key, (96, 128), seed=seed)
                bias = stack.bias()
                masters = [stack.master(t, -10.0, n) for t in exposures]
                after[str(_verdict(new, masters, bias, alpha=alpha).status)] += 1
                if old is not None:
                    before[str(_verdict(old, masters, bias).status)] += 1
            nb = trials - before["proportional"] if old is not None else None
            na = trials - after["proportional"]
            tot += trials
            tot_a += na
            tot_b += nb or 0
            rows.append(
                f"| {key} | {'/'.join(f'{t:g}' for t in exposures)} | {n} | {trials} | "
                f"{'-' if nb is None else f'{nb} ({_top(before)})'} | "
                f"{na} ({_top(after)}) |"
            )
    rows.append(f"| **all** | | | {tot} | {tot_b if old is not None else '-'} | {tot_a} |")
    return rows


def _top(c: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common() if k != "proportional") or "-"


# ----------------------------------------------------------------------------- models
def _light(shape, exptime: float) -> FrameMeta:
    return FrameMeta(
        path=f"/l{exptime:g}.fits",
        frame_type=FrameType.LIGHT,
        exptime_s=exptime,
        ccd_temp_c=-10.0,
        set_temp_c=-10.0,
        instrument="Stack",
        shape=shape,
        date_obs_utc=T0,
    )


SCENARIOS = (  # name, darks (s), with bias, lights (s)
    ("no bias: 300/900 s darks", (300.0, 900.0), False, (600.0, 1200.0)),
    ("bias: 60/300 s darks", (60.0, 300.0), True, (600.0,)),
    ("bias: 30 s darks only", (30.0,), True, (60.0, 120.0)),
)


def _errors(model, truth, hot) -> tuple[float, float]:
    d = np.asarray(model, float) - truth
    return float(np.sqrt(np.mean(d**2))), float(np.sqrt(np.mean(d[hot] ** 2)))


def models_part(trials: int) -> list[str]:
    rows = [
        "| camera | darks | light (s) | nearest master: all / hot | scaled | two-point | "
        "darkflow (mode) | darkflow pull sd |",
        "|---|---|---:|---|---|---|---|---:|",
    ]
    for key in CAMERAS[:2]:
        for name, darks, with_bias, lights in SCENARIOS:
            acc: dict[float, dict[str, list]] = {t: {} for t in lights}
            for seed in range(trials):
                shape = (96, 128)
                sig = _light(shape, 1.0).config_signature
                stack = Stack(key, shape, seed=100 + seed, signature=sig)
                masters = {f"m{t:g}": stack.master(t, -10.0, 11) for t in darks}
                bias = stack.bias() if with_bias else None
                index = build_index(
                    [MasterEntry(k, m.meta, scalable=with_bias) for k, m in masters.items()],
                    load_master=masters.__getitem__,
                    biases={sig: bias} if bias is not None else {},
                    config=Config(),
                )
                dc = stack.truth.dark_current_e_per_s
                hot = dc > 20 * np.median(dc)
                for t in lights:
                    truth = stack.true_dark(t, -10.0)
                    near = min(darks, key=lambda d, t=t: abs(np.log(d / t)))
                    m = masters[f"m{near:g}"].data.astype(float)
                    base = bias.data.astype(float) if bias is not None else float(np.median(m))
                    out = acc[t]
                    out.setdefault("raw", []).append(_errors(m, truth, hot))
                    out.setdefault("scaled", []).append(
                        _errors(base + (m - base) * t / near, truth, hot)
                    )
                    if len(darks) >= 2:
                        u = [float(np.median(masters[f"m{d:g}"].uncertainty)) for d in darks]
                        c = fit_coefficients(darks, u, t)
                        fit = sum(
                            ck * masters[f"m{d:g}"].data.astype(float)
                            for ck, d in zip(c, darks, strict=True)
                        )
                        out.setdefault("fit", []).append(_errors(fit, truth, hot))
                    d = match_light(_light(shape, t), index, Config())
                    if d.matched:
                        model = dark_model_for(
                            d, load_master=masters.__getitem__, bias=bias, index=index
                        )
                        out.setdefault("darkflow", []).append(_errors(model.data, truth, hot))
                        pulls = (model.data - truth) / np.sqrt(model.variance)
                        out.setdefault("pull", []).append(float(np.std(pulls)))
                        out.setdefault("mode", []).append(str(d.scale_mode))
                    else:
                        out.setdefault("mode", []).append("none: quarantined")
            for t, out in acc.items():

                def cell(k, out=out):
                    if k not in out:
                        return "-"
                    a = np.median(np.array(out[k]), axis=0)
                    return f"{a[0]:.2f} / {a[1]:.1f}"

                modes = Counter(out["mode"]).most_common(1)[0][0]
                pull = f"{np.median(out['pull']):.2f}" if out.get("pull") else "-"
                rows.append(
                    f"| {key} | {name} | {t:g} | {cell('raw')} | {cell('scaled')} | "
                    f"{cell('fit')} | {cell('darkflow')} ({modes}) | {pull} |"
                )
    return rows


# ----------------------------------------------------------------------------- real frames
def _realdata():
    try:
        import realdata
        import realscores
    except ImportError:
        return None, None
    return realdata, realscores


def _frames(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


def _combine(paths, *, dark: bool = False):
    """A master of ``paths``; ``dark``: held-out darks relabelled as lights count as darks."""
    from astropy.io import fits

    from darkflow.ingest.headers.rules import normalise
    from darkflow.master import combine_files

    metas = [normalise(fits.getheader(p), p).meta for p in paths]
    if dark:
        metas = [m.replace(frame_type=FrameType.DARK) for m in metas]
    return combine_files([str(p) for p in paths], allow_few=True, metas=metas)


def _read(path: Path) -> np.ndarray:
    from darkflow.io.fits import read_image

    return read_image(path, dtype="float32")[0].astype(float)


def real_part(old) -> list[str]:
    rd, sc = _realdata()
    if rd is None or rd.load_manifest("ast443-stl1001e") is None:
        return [
            "Real frames not extracted (`benchmarks/realdata.py extract`, "
            "`DARKFLOW_REAL_DATA`): skipped."
        ]
    rows = [
        "| camera, held-out darks | masters | bias | held-out frames | hot px | "
        "hot residual RMS (p90), ADU: raw light | nearest master | scaled | two-point |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    stl = rd.set_dir("ast443-stl1001e") / "input" / "2017-09-08"
    ylo = rd.set_dir("ylo-stl1001e-holdout") / "input" / "2019-09-06"
    st402 = rd.set_dir("ast443-st402-spectra") / "input" / "2017-10-18"
    cases = [
        (
            "ST-402 360 s",
            "240 s x5 + 1200 s x5",
            None,
            {
                240.0: _frames(st402, "L2-dark-hg-240.*"),
                1200.0: _frames(st402, "L2-dark-neon-1200.*"),
            },
            360.0,
            _frames(st402, "L2-dark-flat-360.*"),
        ),
        (
            "STL-1001E (ylo, 0 °C) 60-150 s",
            "30 s x8 + 300 s x1",
            _frames(ylo, "bias_series_0c.*"),
            {
                30.0: _frames(ylo, "dark_10series_0c_0m30s.*")[:8],
                300.0: _frames(ylo, "dark_series_0c_5m.*"),
            },
            None,
            [
                p
                for s in ("1m.", "1m30s.", "2m.", "2m30s.")
                for p in _frames(ylo, f"dark_series_0c_{s}*")
            ],
        ),
        (
            "STL-1001E (AST443, -5 °C) 150 s",
            "60 s x8 + 300 s x1",
            _frames(stl, "biases-Neg5-*"),
            {
                60.0: _frames(stl, "darks-expos1-Neg5-*")[:8],
                300.0: _frames(stl, "darks-expos300s-Neg5-*"),
            },
            None,
            _frames(stl, "darks-expos150s-Neg5-*"),
        ),
    ]
    for name, label, bias_paths, dark_sets, _, held in cases:
        if not held or any(not v for v in dark_sets.values()):
            continue
        bias = _combine(bias_paths).data.astype(float) if bias_paths else None
        masters = {t: _combine(p, dark=True) for t, p in dark_sets.items()}
        hot = sc.stable_hot_pixels([_read(p) for p in next(iter(dark_sets.values()))])
        scores: dict[str, list[float]] = {}
        for path in held:
            light = _read(path)
            t = rd_exptime(path)
            near = min(masters, key=lambda d, t=t: abs(np.log(d / t)))
            m = masters[near].data.astype(float)
            base = bias if bias is not None else float(np.median(m))
            times = sorted(masters)
            u = [float(np.median(masters[d].uncertainty)) for d in times]
            c = fit_coefficients(times, u, t)
            fit = sum(ck * masters[d].data.astype(float) for ck, d in zip(c, times, strict=True))
            pixels = hot & sc.quiet_pixels(light, hot)
            for key, model in (
                ("light", None),
                ("raw", m),
                ("scaled", base + (m - base) * t / near),
                ("fit", fit),
            ):
                image = light if model is None else light - model
                res = sc.hot_pixel_residual(image, pixels)
                scores.setdefault(key, []).append((res.rms, res.p90))
        med = {k: np.median(np.array(v), axis=0) for k, v in scores.items()}
        cells = " | ".join(
            f"{med[k][0]:.1f} ({med[k][1]:.1f})" for k in ("light", "raw", "scaled", "fit")
        )
        rows.append(
            f"| {name} | {label} | {'yes' if bias is not None else 'no'} | {len(held)} | "
            f"{int(hot.sum())} | {cells} |"
        )
    rows += [
        "",
        "Linearity verdict of the real dark ladders (every single dark a master, the "
        "set-point's bias; before: the merged biases of the night, as the old pipeline "
        "built them):",
        "",
        "| ladder | bins | before | after (populations: p-value) |",
        "|---|---|---|---|",
    ]
    ladders = [
        (
            "STL-1001E -5 °C (AST443)",
            _frames(stl, "darks-expos*s-Neg5-*"),
            _frames(stl, "biases-Neg5-*"),
            _frames(stl, "bias*"),
        ),
        (
            "STL-1001E -10 °C (AST443)",
            _frames(stl, "darks-expos*s-Neg10-*"),
            _frames(stl, "bias-Neg10-*"),
            _frames(stl, "bias*"),
        ),
        (
            "STL-1001E 0 °C (ylo)",
            _frames(ylo, "dark_series_0c_*"),
            _frames(ylo, "bias_series_0c.*"),
            _frames(ylo, "bias_*"),
        ),
    ]
    cfg = Config()
    for name, darks, bias_paths, merged_paths in ladders:
        masters = [_combine([p], dark=True) for p in darks]
        bias = _combine(bias_paths)
        sig = masters[0].meta.config_signature
        entries = [MasterEntry(f"m{i}", m.meta) for i, m in enumerate(masters)]
        lookup = {f"m{i}": m for i, m in enumerate(masters)}
        index = build_index(entries, load_master=lookup.__getitem__, biases={sig: bias}, config=cfg)
        lin = index.linearity[sig]
        pops = ", ".join(
            f"{p.name} {p.p_value:.2g}"
            for p in lin.populations
            if p.role == "verdict" and p.p_value is not None
        )
        before = "-"
        if old is not None:
            from darkflow.matching import temperature_gate_c

            merged = _combine(merged_paths)
            ordered = sorted(masters, key=lambda m: -m.meta.exptime_s)
            ref = old.choose_reference(ordered[0], merged, cfg.scaling)
            sums = [
                old.summarize_master(m, merged, ref, master_id=str(i))
                for i, m in enumerate(ordered)
            ]
            r = old.measure_linearity(
                sig,
                sums,
                LAW,
                cfg.scaling,
                bias_available=True,
                temp_window_c=temperature_gate_c(0.15, 6.0),
            )
            before = f"{r.status} (deviation {r.deviation:.3f})"
        rows.append(
            f"| {name} | {'/'.join(f'{t:g}' for t in lin.exposures_s)} | {before} | "
            f"{lin.status} ({pops}) |"
        )
    return rows


def rd_exptime(path: Path) -> float:
    from astropy.io import fits

    return float(fits.getheader(path)["EXPTIME"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--before", default="5588250", help="git revision of the old test")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if "DARKFLOW_REAL_DATA" not in os.environ and Path("/work/shared/realdata").exists():
        os.environ["DARKFLOW_REAL_DATA"] = "/work/shared/realdata"
    load0 = os.getloadavg()
    t0 = time.monotonic()
    old = _old_scaling(args.before)
    parts = [
        SECTION,
        "",
        f"### Linearity verdicts on simulated linear cameras ({args.trials} seeds each, "
        f"96x128, at `verify.gate_false_alarm` = {Config().verify.gate_false_alarm:g}; "
        f"before: the fixed 5 % tolerance of `{args.before}`)",
        "",
        *linearity_part(args.trials, old),
        "",
        f"### Dark models against the truth ({max(args.trials // 4, 3)} seeds, median RMS "
        "error in ADU over all pixels / over the hot pixels)",
        "",
        *models_part(max(args.trials // 4, 3)),
        "",
        "### Real frames: held-out darks (true signal zero)",
        "",
        *real_part(old),
        "",
    ]
    seconds = time.monotonic() - t0
    parts.append(
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s on "
        f"{platform.machine()}, Python {platform.python_version()}; load average "
        f"before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f} (shared machine). "
        f"Command: `.venv/bin/python benchmarks/bench_laws.py --trials "
        f"{args.trials}`."
    )
    text = "\n".join(parts)
    print(text)
    if not args.no_write:
        from bench_matching import write_results

        write_results(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

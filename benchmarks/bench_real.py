"""Real frames: darkflow's verdicts and residuals against ccdproc and Siril on public CCD data.

    export DARKFLOW_REAL_DATA=/work/shared/realdata      # the cache of benchmarks/realdata.py
    .venv/bin/python benchmarks/bench_real.py             # every set; prints the tables
    .venv/bin/python benchmarks/bench_real.py --sets ylo-st402-autodark --no-siril
    .venv/bin/python benchmarks/bench_real.py --write     # also the section of RESULTS.md

For every set of :data:`realdata.SETS` (extracted on the fly from a fetched snapshot, or skipped
with the ``fetch`` to run): ``darkflow.pipeline.run_night`` on the set's input tree, then the same
frames through two baselines, chosen per light as their users would (same binning and shape,
nearest SET-TEMP, then the dark exposure equal to the light's or else the nearest; the bias of
the nearest SET-TEMP):

* **ccdproc**: master bias and darks with ``ccdproc.combine`` (average, 3-sigma clipping around
  the median with ``mad_std``), darks bias-subtracted before the combine; lights
  ``subtract_bias`` then ``subtract_dark`` (``exposure_time='EXPTIME'``, ``scale=True`` when the
  exposures differ and a bias exists; without bias the nearest dark unscaled);
* **Siril** (``siril-cli`` 1.0): ``convert``, ``stack ... rej s 3 3 -nonorm`` (median for 2
  frames, the file itself for 1), ``preprocess -dark=``; when the exposures differ and a bias
  exists, the darks are bias-subtracted before the stack and the light gets ``-bias= -opt``
  (Siril's noise-minimising dark scale, searched in 0..2). Siril 1.0 turns on its cosmetic
  correction whenever a dark is given: the master dark's deviant pixels are replaced by their
  neighbours in the output.

Scores per light (``realscores``' functions): residual of the *stable hot pixels* (hot in every
dark of the largest dark stack of the light's configuration and set-point, the same pixels for
every tool) against the 8-neighbour median, where the raw light's neighbourhood is quiet (no
star or line) and the light is below 59000 ADU: RMS and 90th percentile of the absolute value,
also on the raw light; the fraction of the expected hot-pixel dark signal the raw light holds
(``dark_signal_fraction``: ~1 for a raw light, ~0 for one dark-subtracted before it was saved);
background noise (robust sigma of the neighbour-median residual); the median level of lights
whose truth is zero (held-out darks); the answer-key difference (``+ pedestal``) where the capture
program left its own dark-subtracted copy; and darkflow minus ccdproc pixel by pixel.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import realdata as rd
import realscores as sc

from darkflow.config import Config
from darkflow.io.atomic import atomic_write
from darkflow.pipeline import run_night
from darkflow.triage import TRIAGE_TABLE, Severity

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Real frames (`bench_real.py`)"

# Extra darkflow runs with a non-default configuration, reported beside the default run.
VARIANTS: dict[str, dict[str, dict[str, str]]] = {
    # the QSI biases are isolated (no INSTRUME, no DATE-OBS); EGAIN='High' is an unknown gain
    "mdm-qsi583": {"use_isolated=all": {"use_isolated": "all"}},
}


# ----------------------------------------------------------------------------- frames
@dataclasses.dataclass(frozen=True)
class Info:
    path: Path
    role: rd.Role
    exptime: float
    set_temp: float
    ccd_temp: float
    key: tuple[int, int, int, int]  # xbin, ybin, naxis1, naxis2


def _info(path: Path, role: rd.Role) -> Info:
    h = fits.getheader(path)
    set_temp = h.get("SET-TEMP", h.get("CCD-TEMP", math.nan))
    return Info(
        path,
        role,
        float(h.get("EXPTIME", h.get("EXPOSURE", 0.0))),
        float(set_temp),
        float(h.get("CCD-TEMP", math.nan)),
        (int(h.get("XBINNING", 1)), int(h.get("YBINNING", 1)), h["NAXIS1"], h["NAXIS2"]),
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """The calibration frames a ccdproc or Siril user would pick for one light."""

    light: Info
    darks: tuple[Path, ...]
    dark_exptime: float
    biases: tuple[Path, ...]

    @property
    def exact(self) -> bool:
        return math.isclose(self.dark_exptime, self.light.exptime, rel_tol=1e-6)

    @property
    def scaled(self) -> bool:
        return not self.exact and bool(self.biases)


def _nearest_temp(cands: list[Info], temp: float) -> list[Info]:
    if not cands:
        return []
    best = min(abs(c.set_temp - temp) for c in cands)
    return [c for c in cands if abs(c.set_temp - temp) <= best + 0.25]


def baseline_plans(frames: list[Info]) -> list[Plan]:
    plans = []
    for light in (f for f in frames if f.role is rd.Role.LIGHT):
        same = [f for f in frames if f.key == light.key]
        darks = _nearest_temp([f for f in same if f.role is rd.Role.DARK], light.set_temp)
        biases = _nearest_temp([f for f in same if f.role is rd.Role.BIAS], light.set_temp)
        if not darks:
            plans.append(Plan(light, (), math.nan, tuple(b.path for b in biases)))
            continue
        exp = min(
            {d.exptime for d in darks}, key=lambda e: (abs(e - light.exptime), -e)
        )  # the nearest exposure; on a tie the longer (more dark signal)
        chosen = tuple(d.path for d in darks if d.exptime == exp)
        plans.append(Plan(light, chosen, exp, tuple(b.path for b in biases)))
    return plans


def _date_obs(path: Path) -> str:
    return str(fits.getheader(path).get("DATE-OBS", ""))


def reference_darks(light: Info, frames: list[Info]) -> tuple[Path, ...]:
    """The largest dark stack of the light's configuration and nearest set-point.

    Its stable hot pixels are the camera's, whatever dark each tool subtracts (ties: the longer
    exposure, whose hot pixels stand further above the noise).
    """
    darks = _nearest_temp(
        [f for f in frames if f.key == light.key and f.role is rd.Role.DARK], light.set_temp
    )
    by_exp: dict[float, list[Path]] = {}
    for d in darks:
        by_exp.setdefault(d.exptime, []).append(d.path)
    if not by_exp:
        return ()
    best = max(by_exp, key=lambda e: (len(by_exp[e]), e))
    return tuple(by_exp[best])


def read_adu(path: Path) -> np.ndarray:
    with fits.open(path, memmap=False) as hdul:
        return np.asarray(hdul[0].data, dtype=np.float64)


# ----------------------------------------------------------------------------- darkflow
@dataclasses.dataclass
class DarkflowRun:
    lights: pd.DataFrame  # frame_report.csv
    masters: pd.DataFrame  # masters.csv
    seconds: float
    error: str = ""


def run_darkflow(rs: rd.RealSet, workdir: Path, overrides: dict[str, str]) -> DarkflowRun:
    shutil.rmtree(workdir, ignore_errors=True)
    config = Config()
    if overrides:
        config = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, **overrides))
    t0 = time.perf_counter()
    try:
        result = run_night(rd.set_dir(rs) / "input", workdir=workdir, config=config)
    except Exception as err:  # a crash is a result here: report it, go on with the others
        return DarkflowRun(pd.DataFrame(), pd.DataFrame(), time.perf_counter() - t0, repr(err))
    seconds = time.perf_counter() - t0
    lights = pd.read_csv(result.frame_report)
    if "output_path" in lights:  # recorded relative to the work directory (it may be moved)
        lights["output_path"] = [
            str(workdir / p) if isinstance(p, str) else p for p in lights["output_path"]
        ]
    return DarkflowRun(lights, pd.read_csv(result.masters_csv), seconds)


# ----------------------------------------------------------------------------- ccdproc
def _ccd(path: Path):
    from astropy.nddata import CCDData

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ccd = CCDData.read(path, unit="adu")
    # as float: ccdproc keeps uint16 data, and uint16 - uint16 wraps around below zero
    ccd.data = ccd.data.astype(np.float64)
    return ccd


def _combine(frames: list):
    import ccdproc
    from astropy.stats import mad_std

    if len(frames) == 1:
        return frames[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ccdproc.combine(
            frames,
            method="average",
            sigma_clip=True,
            sigma_clip_low_thresh=3,
            sigma_clip_high_thresh=3,
            sigma_clip_func=np.ma.median,
            sigma_clip_dev_func=mad_std,
            mem_limit=1e9,
        )


def run_ccdproc(plans: list[Plan]) -> dict[Path, np.ndarray]:
    import astropy.units as u
    import ccdproc

    biases: dict[tuple[Path, ...], object] = {}
    darks: dict[tuple[tuple[Path, ...], tuple[Path, ...]], object] = {}
    out = {}
    for plan in plans:
        if not plan.darks:
            continue
        bias = None
        if plan.biases:
            if plan.biases not in biases:
                biases[plan.biases] = _combine([_ccd(p) for p in plan.biases])
            bias = biases[plan.biases]
        key = (plan.darks, plan.biases)
        if key not in darks:
            frames = [_ccd(p) for p in plan.darks]
            if bias is not None:
                frames = [ccdproc.subtract_bias(f, bias) for f in frames]
            darks[key] = _combine(frames)
        light = _ccd(plan.light.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bias is not None:
                light = ccdproc.subtract_bias(light, bias)
            cal = ccdproc.subtract_dark(
                light,
                darks[key],
                exposure_time="EXPTIME",
                exposure_unit=u.s,
                scale=plan.scaled,
            )
        out[plan.light.path] = np.asarray(cal.data, dtype=np.float64)
    return out


# ----------------------------------------------------------------------------- Siril
def _siril_master(
    files: tuple[Path, ...], name: str, work: Path, lines: list[str], bias: str = ""
) -> str:
    """Script lines that build a master from ``files``; returns the path to pass to preprocess.

    With ``bias`` the frames are bias-subtracted before stacking: Siril's ``-opt`` scales the
    master dark as given, so it must not contain the bias.
    """
    if len(files) == 1 and not bias:
        return str(files[0].resolve())
    src = work / f"{name}_in"
    src.mkdir(parents=True)
    # Siril 1.0 does not make a sequence of one image: a lone frame goes in twice
    for i, p in enumerate(files * 2 if len(files) == 1 else files, 1):
        (src / f"f{i:04d}.fit").symlink_to(p.resolve())
    seq = f"{name}_"  # Siril names the sequence of "x_00001.fit"... files "x_"
    lines += [f"cd {src}", f"convert {seq} -out={work / 'proc'}", f"cd {work / 'proc'}"]
    if bias:
        lines.append(f"preprocess {seq} -bias={bias}")
        seq = f"pp_{seq}"
    how = "rej s 3 3" if len(files) >= 3 else "med"
    lines.append(f"stack {seq} {how} -nonorm -out={name}_master")
    return str(work / "proc" / f"{name}_master.fit")


def run_siril(plans: list[Plan], work: Path) -> tuple[dict[Path, np.ndarray], str]:
    """Calibrated lights by Siril (ADU), and an error text if the script failed."""
    exe = shutil.which("siril-cli")
    if exe is None:
        return {}, "siril-cli not installed"
    shutil.rmtree(work, ignore_errors=True)
    (work / "proc").mkdir(parents=True)
    lines = ["requires 1.0.0"]
    masters: dict[tuple, str] = {}
    outputs: dict[Path, Path] = {}
    groups: dict[tuple, list[Plan]] = {}
    for plan in (p for p in plans if p.darks):
        groups.setdefault((plan.darks, plan.biases, plan.scaled), []).append(plan)
    for k, ((darks, biases, scaled), members) in enumerate(groups.items()):
        if scaled and biases not in masters:
            masters[biases] = _siril_master(biases, f"bias{len(masters):03d}", work, lines)
        if (darks, scaled) not in masters:
            masters[darks, scaled] = _siril_master(
                darks, f"dark{len(masters):03d}", work, lines, masters[biases] if scaled else ""
            )
        src = work / f"light{k:03d}_in"
        src.mkdir()
        # Siril 1.0 does not make a sequence of one image: a lone light goes in twice
        for j, plan in enumerate(members * 2 if len(members) == 1 else members, 1):
            (src / f"l{j:04d}.fit").symlink_to(plan.light.path.resolve())
        seq = f"light{k:03d}_"  # Siril names the sequence of "x_00001.fit"... files "x_"
        opts = f"-dark={masters[darks, scaled]}" + (
            f" -bias={masters[biases]} -opt" if scaled else ""
        )
        lines += [
            f"cd {src}",
            f"convert {seq} -out={work / 'proc'}",
            f"cd {work / 'proc'}",
            f"preprocess {seq} {opts}",
        ]
        for j, plan in enumerate(members, 1):  # convert keeps the order of the file names
            outputs[plan.light.path] = work / "proc" / f"pp_{seq}{j:05d}.fit"
    script = work / "calibrate.ssf"
    script.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [exe, "-s", str(script), "-d", str(work)], capture_output=True, text=True, check=False
    )
    (work / "siril.log").write_text(proc.stdout + proc.stderr)
    error = (
        "" if proc.returncode == 0 else f"siril-cli exit {proc.returncode} (see {work}/siril.log)"
    )
    out = {}
    for light, path in outputs.items():
        if path.exists():
            with fits.open(path, memmap=False) as hdul:
                if hdul[0].header.get("DATE-OBS", "")[:19] != _date_obs(light)[:19]:
                    raise RuntimeError(f"Siril output {path} is not the calibrated {light}")
                data = np.asarray(hdul[0].data, dtype=np.float64)
                # Siril saves 32-bit float normalised to [0, 1] (16-bit ADU / 65535)
                out[light] = data * 65535.0 if hdul[0].header["BITPIX"] < 0 else data
    return out, error


# ----------------------------------------------------------------------------- scoring
@dataclasses.dataclass
class Scores:
    hot: sc.HotResidual | None = None
    noise: float = math.nan
    level: float = math.nan
    answer: sc.Difference | None = None


def score(
    image: np.ndarray | None, hot: np.ndarray, case: rd.LightCase, pedestal: float, raw: np.ndarray
) -> Scores:
    if image is None:
        return Scores()
    s = Scores(sc.hot_pixel_residual(image, hot), sc.background_noise(image, hot))
    if case.truth_zero:
        s.level = float(np.nanmedian(image))
    if case.answer is not None:
        s.answer = sc.answer_key_difference(
            image, read_adu(case.answer), pedestal=pedestal, raw=raw
        )
    return s


def _darkflow_image(row: pd.Series | None) -> np.ndarray | None:
    if row is None or not isinstance(row.get("output_path"), str):
        return None
    return read_adu(Path(row["output_path"]))


def _f(x: float, nd: int = 2) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def _hot(h: sc.HotResidual | None) -> str:
    return "" if h is None or not h.n else f"{h.rms:.1f} ({h.p90:.1f})"


def _short(text: object, width: int = 90) -> str:
    s = "" if not isinstance(text, str) else text
    return s if len(s) <= width else s[: width - 1] + "…"


TOOLS = ("darkflow", "ccdproc", "siril")


@dataclasses.dataclass
class Baselines:
    """The set's frames, the baselines' choices and their calibrated lights (ADU)."""

    infos: list[Info]
    plans: list[Plan]
    ccdproc: dict[Path, np.ndarray]
    siril: dict[Path, np.ndarray]
    note: str  # timings and errors


def run_baselines(rs: rd.RealSet, work: Path, args: argparse.Namespace) -> Baselines:
    root = rd.set_dir(rs)
    infos = [
        _info(p, f.role)
        for f, p in ((f, root / f.rel_path) for f in rs.frames)
        if f.role is not rd.Role.ANSWER
    ]
    cases = {c.path: c for c in rd.light_cases(rs)}
    plans = [p for p in baseline_plans(infos) if not cases[p.light.path].precalibrated]
    t0 = time.perf_counter()
    ccd = run_ccdproc(plans) if args.ccdproc else {}
    t_ccd = time.perf_counter() - t0
    t0 = time.perf_counter()
    sir, sir_err = run_siril(plans, work / rs.name / "siril") if args.siril else ({}, "")
    t_sir = time.perf_counter() - t0
    note = (
        (f"; ccdproc {t_ccd:.1f} s" if ccd else "")
        + (f"; Siril {t_sir:.1f} s" if sir else "")
        + (f"; **Siril: {sir_err}**" if sir_err else "")
    )
    return Baselines(infos, plans, ccd, sir, note)


def report_run(
    rs: rd.RealSet, label: str, df: DarkflowRun, base: Baselines
) -> tuple[list[str], dict[str, object]]:
    """Markdown lines for one darkflow run of one set, and numbers for the summary."""
    infos, plans, ccd, sir = base.infos, base.plans, base.ccdproc, base.siril
    rows = {}
    if not df.lights.empty:
        rows = {Path(r["path"]): r for _, r in df.lights.iterrows()}
    hot_cache: dict[tuple[Path, ...], tuple[np.ndarray, np.ndarray, float]] = {}
    plan_of = {p.light.path: p for p in plans}
    lines = [f"### {label}", "", f"{rs.summary}. Camera: {rs.camera}.", ""]
    status = Counter(str(r.get("status")) for r in rows.values())
    lines.append(
        f"darkflow ({df.seconds:.1f} s): {len(rows)} lights: {status['calibrated']} calibrated, "
        f"{status['degraded']} degraded, {status['quarantined']} quarantined"
        + (f"; **run failed: {df.error}**" if df.error else "")
        + base.note
        + "."
    )
    if not df.masters.empty:
        lines += [
            "",
            "| master | frames | status | confidence | reasons |",
            "|---|---:|---|---:|---|",
        ]
        for _, m in df.masters.sort_values(["kind", "exptime_s", "temp_c"]).iterrows():
            lines.append(
                f"| {m['kind']} {m['exptime_s']:g} s @ {m['temp_c']:.1f} °C | {m['n_frames']} | "
                f"{m['status']} | {_f(m['confidence'])} | {_short(m.get('reasons'))} |"
            )
    verdict = [
        "",
        "| light | exp s | T °C | exact dark | truth 0 | status | conf | reasons | top cause |",
        "|---|---:|---:|---|---|---|---:|---|---|",
    ]
    resid = [
        "",
        "| light | baseline dark | hot px (darks) | dark in light | hot RMS (p90) raw | darkflow | ccdproc | Siril | "
        "noise darkflow | ccdproc | Siril | level (truth 0) d / c / S | darkflow − ccdproc med / RMS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    answer = [
        "",
        "| light | answer key: darkflow med / RMS | ccdproc | Siril |",
        "|---|---|---|---|",
    ]
    summary: dict[str, object] = {
        "label": label,
        "status": status,
        "exact": [0, 0],
        "hot": [],
        "output": 0,
        "reasons": Counter(),
        "notes": Counter(),
    }
    for case in rd.light_cases(rs):
        row = rows.get(case.path)
        info = next(i for i in infos if i.path == case.path)
        name = case.path.name
        st = str(row["status"]) if row is not None else "(not reported)"
        verdict.append(
            f"| {name} | {info.exptime:g} | {_f(info.ccd_temp, 1)} | {'yes' if case.exact_dark else ''} "
            f"| {'yes' if case.truth_zero else ''} | {st}"
            + (" (pre-calibrated)" if case.precalibrated else "")
            + (" (no dark signal)" if case.no_dark_signal else "")
            + f" | {_f(row['confidence'] if row is not None else math.nan)} "
            f"| {_short(row.get('reasons') if row is not None else '')} "
            f"| {row.get('top_cause') if row is not None and isinstance(row.get('top_cause'), str) else ''} |"
        )
        if row is not None and isinstance(row.get("output_path"), str):
            summary["output"] += 1
        if case.exact_dark and not case.precalibrated:
            summary["exact"][1] += 1
            codes = _codes(row.get("reasons") if row is not None else None)
            flags = [c for c in codes if _severity(c) != Severity.INFO]
            # a flag is a warning or an error; notes (a check not measured, a temperature read
            # from the session's fit) ask nothing of the user and are listed apart
            summary["exact"][0] += int(st == "calibrated" and not flags)
            summary["reasons"].update(flags)
            summary["notes"].update(c for c in codes if c not in flags)
        plan = plan_of.get(case.path)
        if plan is None or not plan.darks:
            continue
        ref = reference_darks(info, infos)
        if ref not in hot_cache:
            darks = [read_adu(p) for p in ref]
            stable = sc.stable_hot_pixels(darks) & (
                np.max(darks, axis=0) < sc.SATURATION_ADU
            )  # a pixel saturated in a dark has no dark model to check
            ref_exp = next(i.exptime for i in infos if i.path == ref[0])
            hot_cache[ref] = (stable, sc.excess(np.mean(darks, axis=0)), ref_exp)
        stable, ref_excess, ref_exp = hot_cache[ref]
        raw = read_adu(case.path)
        hot = sc.scored_hot_pixels(stable, raw)
        in_light = sc.dark_signal_fraction(raw, ref_excess * info.exptime / ref_exp, hot)
        images = {
            "darkflow": _darkflow_image(row),
            "ccdproc": ccd.get(case.path),
            "siril": sir.get(case.path),
        }
        by_tool = {t: score(images[t], hot, case, rs.pedestal, raw) for t in TOOLS}
        raw_hot = sc.hot_pixel_residual(raw, hot)
        diff = (
            sc.image_difference(images["darkflow"], images["ccdproc"])
            if images["darkflow"] is not None and images["ccdproc"] is not None
            else None
        )
        base = f"{plan.dark_exptime:g} s x{len(plan.darks)}" + (
            " scaled" if plan.scaled else "" if plan.exact else " as is"
        )
        resid.append(
            f"| {name} | {base} | {raw_hot.n} ({len(ref)}) | {_f(in_light)} | {_hot(raw_hot)} | "
            + " | ".join(_hot(by_tool[t].hot) for t in TOOLS)
            + " | "
            + " | ".join(_f(by_tool[t].noise) for t in TOOLS)
            + " | "
            + (" / ".join(_f(by_tool[t].level) for t in TOOLS) if case.truth_zero else "")
            + " | "
            + (f"{_f(diff.median, 3)} / {_f(diff.rms, 3)}" if diff else "")
            + " |"
        )
        if case.answer is not None:
            answer.append(
                f"| {name} | "
                + " | ".join(
                    f"{_f(by_tool[t].answer.median, 3)} / {_f(by_tool[t].answer.rms, 3)}"
                    if by_tool[t].answer
                    else ""
                    for t in TOOLS
                )
                + " |"
            )
        if by_tool["darkflow"].hot and by_tool["ccdproc"].hot:
            summary["hot"].append((by_tool["darkflow"].hot.rms, by_tool["ccdproc"].hot.rms))
    lines += verdict + resid + (answer if len(answer) > 4 else []) + [""]
    return lines, summary


def _codes(reasons: object) -> list[str]:
    """The reason codes of a ``frame_report.csv`` cell (``;``-separated, empty when NaN)."""
    if not isinstance(reasons, str):
        return []
    return [c.strip() for c in reasons.split(";") if c.strip()]


def _severity(code: str) -> Severity:
    """A code's triage severity (an unknown code counts as a warning)."""
    rule = TRIAGE_TABLE.get(code)
    return rule.severity if rule is not None else Severity.WARNING


def _summary(summaries: list[dict[str, object]]) -> list[str]:
    out = [
        "#### Summary",
        "",
        "| set (run) | calibrated / degraded / quarantined | with output | "
        "exact-dark lights calibrated without a flag | their flags (count) | their notes "
        "(count) | hot RMS darkflow ≤ ccdproc | median hot RMS darkflow / ccdproc |",
        "|---|---|---:|---|---|---|---|---|",
    ]
    for s in summaries:
        st = s["status"]
        hot = s["hot"]
        better = sum(d <= c for d, c in hot)
        ratio = np.median([d / c for d, c in hot if c > 0]) if hot else math.nan
        out.append(
            f"| {s['label']} | {st['calibrated']} / {st['degraded']} / {st['quarantined']} | "
            f"{s['output']} | {s['exact'][0]} / {s['exact'][1]} | "
            + ", ".join(f"{r} ({n})" for r, n in s["reasons"].most_common(4))
            + " | "
            + ", ".join(f"{r} ({n})" for r, n in s["notes"].most_common(4))
            + f" | {better} / {len(hot)} | {_f(ratio)} |"
        )
    return [*out, ""]


def write_results(text: str, path: Path = RESULTS) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others alone."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", re.S)
    block = f"{SECTION}\n\n{text.strip()}\n"
    new = (
        pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + f"\n\n{block}"
    )
    with atomic_write(path) as fh:
        fh.write(new)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=[], help="set names (default: all)")
    parser.add_argument("--cache", help=f"the realdata cache (default ${rd.ENV_CACHE})")
    parser.add_argument("--mirrors", nargs="*", default=[], help="where fetched snapshots are")
    parser.add_argument("--work", help="work directories (default <cache>/work)")
    parser.add_argument("--no-ccdproc", dest="ccdproc", action="store_false")
    parser.add_argument("--no-siril", dest="siril", action="store_false")
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args(argv)
    if args.cache:
        os.environ[rd.ENV_CACHE] = str(Path(args.cache).expanduser().absolute())
    load_before = os.getloadavg()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    body: list[str] = []
    summaries = []
    skipped = []
    for name in args.sets or list(rd.SETS):
        rs = rd.SETS[name]
        try:
            rd.ensure_set(rs, mirrors=args.mirrors)
        except rd.MissingSnapshot as err:
            skipped.append(f"- {name}: skipped: {err}")
            print(skipped[-1], flush=True)
            continue
        work = Path(args.work).expanduser() if args.work else rd.cache_root() / "work"
        base = run_baselines(rs, work, args)
        runs = [(rs.name, "darkflow", {})] + [
            (f"{rs.name} (darkflow {label})", f"darkflow-{label.replace('=', '-')}", ov)
            for label, ov in VARIANTS.get(name, {}).items()
        ]
        for label, sub, overrides in runs:
            df = run_darkflow(rs, work / rs.name / sub, overrides)
            lines, summary = report_run(rs, label, df, base)
            print("\n".join(lines), flush=True)
            body += lines
            summaries.append(summary)
    wall = time.perf_counter() - t0
    cmd = "DARKFLOW_REAL_DATA=... .venv/bin/python benchmarks/bench_real.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"
    )
    head = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC in {wall:.0f} s on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average before "
        f"{' '.join(f'{x:.2f}' for x in load_before)}, after "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine). Command: `{cmd.strip()}`. "
        "Sets and scores: `docs/real-data.md`; darkflow at its default configuration unless the "
        "run's name says otherwise.",
        "",
        *_summary(summaries),
        *skipped,
    ]
    text = "\n".join(head + body)
    print("\n".join(head))
    if args.write:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

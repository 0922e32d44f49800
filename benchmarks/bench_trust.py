"""Trust benchmark: can the verdicts be believed on any camera? (the camera zoo).

Usage::

    .venv/bin/python benchmarks/bench_trust.py                  # 200 zoo nights + scenarios
    .venv/bin/python benchmarks/bench_trust.py --quick          # ~20 nights, small scenarios
    .venv/bin/python benchmarks/bench_trust.py --n 50 --families colour_cmos dslr --write
    .venv/bin/python benchmarks/bench_trust.py --json scores.json   # per-night scores

Every night is drawn by :func:`darkflow.simulate.zoo.sample_zoo` (families in turn, ~30 % with
one injected fault), written with its ``zoo_truth.json`` into a temporary directory, run
through :func:`darkflow.pipeline.run_night` in-process (fresh work directory, default
configuration) and scored against the truth, then deleted. Nights run in parallel processes
(``--jobs``, 2 by default); each night is seeded on its own, so the scores do not depend on
the order or the number of processes.

**Clean nights** (no fault): lights *quarantined* although a usable dark model exists;
lights *degraded* although an exact or provably scalable dark exists (truth ``provable``: the
right verdict is ``calibrated``); masters (dark and bias) ``low_confidence`` or
``quarantined``; and, per reason code, how often it fired (share of lights and of masters
carrying it) and how many false flags it was part of. **Faulty nights**: *detected* when the
faulted master is not ``verified`` or a light calibrated with it is not ``calibrated``;
*right cause* when :func:`darkflow.triage.rank_night_causes` over the reasons of those
masters and lights puts the expected cause first (each light symptom weighed by the share of
the affected lights that carry it). Beside these raw rates, the same rates among the faults
that *matter*: a fault that changes the affected lights' typical pixel by less than
:data:`MATTERS_SIGMA` of their own noise (the truth's ``effect_sigma``, from
:func:`darkflow.simulate._zoo_truth.fault_effect_adu`) cannot be seen on them and need not be.

:func:`score_night` only needs the truth and the two CSV tables, so the scoring is tested
without running the pipeline (``tests/test_zoo_bench.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from darkflow.simulate.zoo import FAMILIES, SCENARIOS, ZooParams, sample_zoo, zoo_params
from darkflow.triage import TRIAGE_TABLE, rank_night_causes

SECTION = "## Trust: verdicts on the camera zoo (`bench_trust.py`)"
RESULTS = Path(__file__).with_name("RESULTS.md")
QUICK_SCENARIOS = ("osc-rggb-384", "osc-rggb-256-no-egain", "spectra-120")
_FLAGGED_MASTER = ("low_confidence", "quarantined")


# ----------------------------------------------------------------------------- scoring
@dataclass
class NightScore:
    """The score of one zoo night (counts of lights and masters, reasons, fault outcome)."""

    name: str
    family: str
    clean: bool
    description: str = ""
    fault: str | None = None
    expected_cause: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    n_lights: int = 0
    n_usable: int = 0  # lights with a usable (or provable) dark model
    n_provable: int = 0  # lights with an exact or provably scalable dark model
    statuses: dict[str, int] = field(default_factory=dict)  # every light
    quarantined_usable: int = 0
    degraded_provable: int = 0
    missing_lights: int = 0  # in the truth, absent from the frame report
    no_model_with_output: int = 0  # lights without a dark model that were not quarantined
    n_masters: int = 0
    masters_flagged: int = 0
    masters_flagged_by_kind: dict[str, int] = field(default_factory=dict)
    light_reasons: dict[str, int] = field(default_factory=dict)  # lights carrying each code
    master_reasons: dict[str, int] = field(default_factory=dict)  # masters carrying each code
    flag_reasons: dict[str, int] = field(default_factory=dict)  # codes on false flags
    detected: bool | None = None
    top_cause: str | None = None
    right_cause: bool | None = None
    # a fault the headers record (``*_recorded``) that the pipeline took into account: no
    # affected light used the faulted master (another configuration), or every one that did
    # had the recorded quantity modelled and its hot pixels measured on the model's scale
    handled: bool | None = None
    handled_how: str | None = None
    causes: list[tuple[str, float]] = field(default_factory=list)
    # the fault's change of an affected light's typical pixel in units of its noise (truth);
    # None: not a level effect (cosmic rays the combine rejects, a wrong EGAIN) or unknown
    effect_sigma: float | None = None
    level_effect: bool | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def false_flags(self) -> int:
        return self.quarantined_usable + self.degraded_provable + self.masters_flagged


def _codes(text: Any) -> list[str]:
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(c.strip() for c in text.split(";") if c.strip()))


def _rel(path: str, root: Path | None) -> str:
    """The path of a frame relative to the zoo tree (``night-<k>/...``)."""
    text = str(path).replace("\\", "/")
    if root is not None:
        prefix = str(root).replace("\\", "/").rstrip("/") + "/"
        if text.startswith(prefix):
            return text[len(prefix) :]
    match = re.search(r"(?:^|/)(night-\d+/.*)$", text)
    return match.group(1) if match else text


def _size_bucket(shape: list[int]) -> str:
    n = shape[0] * shape[1]
    return "<=256x256" if n <= 256 * 256 else ("<=512x768" if n <= 512 * 768 else "large")


def _darks_bucket(n: int) -> str:
    return "3-5 darks" if n <= 5 else ("6-15 darks" if n <= 15 else "16-40 darks")


def attributes(truth: dict[str, Any]) -> dict[str, str]:
    """What a night is, for the breakdown tables: camera, colour, EGAIN, biases, grid, size."""
    p = truth["params"]
    cam = p["camera"]
    return {
        "camera": cam["kind"],
        "colour": cam.get("bayer_pattern") or "mono",
        "egain": p["egain"],
        "bias": "bias" if any(n["n_bias"] for n in p["nights"]) else "no bias",
        "grid": p.get("grid", ""),
        "size": _size_bucket(cam["shape"]),
        "darks": _darks_bucket(int(p["n_darks"])),
        "scene": p["scene"],
        "program": p["program"],
        "nights": "1 night" if len(p["nights"]) == 1 else "several nights",
    }


def _match_masters(truth_master: dict[str, Any], masters: pd.DataFrame) -> pd.DataFrame:
    """Pipeline masters built from the frames of one truth master (kind, night, exposure)."""
    if masters.empty:
        return masters
    same = (masters["kind"].astype(str) == truth_master["kind"]) & (
        masters["night"].astype(str) == str(truth_master["night"])
    )
    if truth_master["kind"] == "dark":
        same &= (masters["exptime_s"].astype(float) - float(truth_master["exptime_s"])).abs() < 1e-3
    return masters[same]


def score_night(
    truth: dict[str, Any],
    frames: pd.DataFrame,
    masters: pd.DataFrame,
    *,
    root: Path | None = None,
    seconds: float = 0.0,
) -> NightScore:
    """Score a pipeline run (``frame_report.csv``, ``masters.csv``) against a zoo truth.

    ``root`` is the zoo tree the pipeline ran on (frame paths are made relative to it; without
    it the ``night-<k>/...`` tail of each path is used).
    """
    fault = truth.get("fault")
    score = NightScore(
        name=truth["name"],
        family=truth["family"],
        clean=bool(truth["clean"]),
        description=truth.get("description", ""),
        fault=fault["kind"] if fault else None,
        expected_cause=fault["expected_cause"] if fault else None,
        attributes=attributes(truth),
        seconds=seconds,
    )
    rows = {_rel(r["path"], root): r for r in frames.to_dict("records")}
    statuses: Counter = Counter()
    light_reasons: Counter = Counter()
    flag_reasons: Counter = Counter()
    affected_rows = []
    for light in truth["lights"]:
        score.n_lights += 1
        score.n_usable += bool(light["usable"])
        score.n_provable += bool(light["provable"])
        row = rows.get(light["path"])
        if row is None:
            score.missing_lights += 1
            continue
        status = str(row["status"])
        codes = _codes(row.get("reasons"))
        statuses[status] += 1
        light_reasons.update(codes)
        if light["affected_by_fault"]:
            affected_rows.append((status, codes, row))
            continue
        false_flag = (light["usable"] and status == "quarantined") or (
            light["provable"] and status == "degraded"
        )
        score.quarantined_usable += bool(light["usable"] and status == "quarantined")
        score.degraded_provable += bool(light["provable"] and status == "degraded")
        score.no_model_with_output += bool(not light["usable"] and status != "quarantined")
        if false_flag and score.clean:
            flag_reasons.update(codes)
    master_reasons: Counter = Counter()
    flagged_kind: Counter = Counter()
    for m in masters.to_dict("records"):
        codes = _codes(m.get("reasons"))
        master_reasons.update(codes)
        score.n_masters += 1
        if str(m["status"]) in _FLAGGED_MASTER:
            score.masters_flagged += 1
            flagged_kind[str(m["kind"])] += 1
            if score.clean:
                flag_reasons.update(codes)
    if fault is not None:
        _score_fault(score, truth, masters, affected_rows)
    score.statuses = dict(statuses)
    score.light_reasons = dict(light_reasons)
    score.master_reasons = dict(master_reasons)
    score.flag_reasons = dict(flag_reasons)
    score.masters_flagged_by_kind = dict(flagged_kind)
    return score


def _score_fault(score: NightScore, truth, masters: pd.DataFrame, affected_rows) -> None:
    target = truth["fault"]["target"]
    if target["kind"] == "all":
        hit = masters
    else:
        tm = next((m for m in truth["masters"] if m["id"] == target["id"]), None)
        hit = _match_masters(tm, masters) if tm is not None else masters.iloc[0:0]
    master_reasons: list[list[str]] = []
    flagged = False
    for m in hit.to_dict("records"):
        master_reasons.append(_codes(m.get("reasons")))
        flagged |= str(m["status"]) != "verified"
    light_reasons: list[list[str]] = []
    for status, codes, _row in affected_rows:
        light_reasons.append(codes)
        flagged |= status != "calibrated"
    # the night's ranking: a symptom weighs by the share of the affected lights carrying it
    ranked = [
        (str(c), round(float(w), 3))
        for c, w in rank_night_causes(light_reasons, master_reasons)
        if w > 0
    ]
    score.effect_sigma = truth["fault"].get("effect_sigma")
    score.level_effect = truth["fault"].get("level_effect")
    score.detected = flagged
    score.causes = ranked[:3]
    score.top_cause = ranked[0][0] if ranked else None
    score.right_cause = flagged and score.top_cause == score.expected_cause
    if str(truth["fault"]["kind"]).endswith("_recorded"):
        score.handled_how = handled_how(truth["fault"]["kind"], hit, affected_rows)
        score.handled = score.handled_how is not None


#: reasons saying a light's hot pixels are off the model's scale (or were not measured)
_SCALE_TROUBLE = frozenset(
    {
        "dark_overscaled",
        "dark_underscaled",
        "dark_rescaled",
        "harmful_subtraction",
        "no_dark_signal",
        "dark_scale_unmeasured",
    }
)


def _ids(value: Any) -> set[str]:
    return {str(value)} if isinstance(value, str) and value else set()


def handled_how(kind: str, hit: pd.DataFrame, affected_rows) -> str | None:
    """How the pipeline took a fault that the headers record into account, or ``None``.

    ``avoided``: no affected light was calibrated with a faulted master (a dark set whose
    header shows another gain is another configuration, and is not used for these lights).
    ``compensated``: the recorded temperature was modelled (``temperature_scaled``) on every
    affected light that used a faulted master, each calibrated with its hot-pixel scale
    measured and on the model's. The truth's effect size assumes the master is used as it is,
    so these nights count as missed by ``detected`` although the verdicts are right.
    """
    faulted = set(hit["master_id"].astype(str)) if "master_id" in hit else set()
    if not faulted or not affected_rows:
        return None
    users = []
    for status, codes, row in affected_rows:
        used = _ids(row.get("master_id")) | _ids(row.get("secondary_master_id"))
        if used & faulted:
            users.append((status, codes, row))
    if not users:
        return "avoided"
    if kind.startswith("warm_darks") and all(
        status == "calibrated" and "temperature_scaled" in codes and not _SCALE_TROUBLE & set(codes)
        for status, codes, _ in users
    ):
        return "compensated"
    return None


# ----------------------------------------------------------------------------- running
def run_one(params: ZooParams, base: str | None = None) -> NightScore:
    """Write one zoo night, run the pipeline on it, score it, delete it."""
    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import zoo_night

    tmp = Path(tempfile.mkdtemp(prefix=f"zoo-{params.name}-", dir=base))
    t0 = time.perf_counter()
    try:
        night = zoo_night(tmp / "data", params=params)
        run_night(tmp / "data", workdir=tmp / "work", config=Config())
        frames = pd.read_csv(tmp / "work" / "frame_report.csv")
        masters = pd.read_csv(tmp / "work" / "masters.csv", dtype={"night": str})
    except Exception as err:  # a crash is a result too: recorded against the night
        return NightScore(
            name=params.name,
            family=params.family,
            clean=params.clean,
            description=params.description,
            fault=params.fault,
            seconds=time.perf_counter() - t0,
            error=f"{type(err).__name__}: {err}",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return score_night(
        night.truth, frames, masters, root=tmp / "data", seconds=time.perf_counter() - t0
    )


def _worker_init() -> None:
    logging.disable(logging.WARNING)  # the pipeline's warnings are the scores' business


def _cost(p: ZooParams) -> float:
    frames = sum(
        (len(n.light_exposures) * p.n_lights + len(n.dark_exposures) * p.n_darks + n.n_bias)
        for n in p.nights
    )
    return frames * p.shape[0] * p.shape[1]


def run_all(
    nights: list[ZooParams], *, jobs: int = 2, base: str | None = None, progress: bool = True
) -> list[NightScore]:
    """Score every night, ``jobs`` processes at a time; results in the order of ``nights``."""
    order = sorted(range(len(nights)), key=lambda i: -_cost(nights[i]))  # big ones first
    out: list[NightScore | None] = [None] * len(nights)
    if jobs <= 1:
        _worker_init()
        for done, i in enumerate(order, start=1):
            out[i] = run_one(nights[i], base)
            _tick(progress, done, len(nights), out[i])
        return [s for s in out if s is not None]
    ctx = multiprocessing.get_context("spawn")
    # spawned workers import this module by name, with the parent's sys.path: let them find it
    # when it was loaded from its file (as the tests do), not only when it runs as a script
    here = str(Path(__file__).resolve().parent)
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(run_one, nights[i], base): i for i in order}
            for done, fut in enumerate(as_completed(futures), start=1):
                i = futures[fut]
                out[i] = fut.result()
                _tick(progress, done, len(nights), out[i])
    finally:
        if added:
            sys.path.remove(here)
    return [s for s in out if s is not None]


def _tick(progress: bool, done: int, total: int, s: NightScore | None) -> None:
    if progress and s is not None:
        st = s.statuses
        flag = s.error or (
            f"fault {s.fault}: detected={s.detected} top={s.top_cause}"
            if s.fault
            else f"false flags {s.false_flags}"
        )
        print(
            f"[{done}/{total}] {s.name:28s} {s.seconds:5.1f}s C/D/Q "
            f"{st.get('calibrated', 0)}/{st.get('degraded', 0)}/{st.get('quarantined', 0)} "
            f"{flag}",
            file=sys.stderr,
            flush=True,
        )


# ----------------------------------------------------------------------------- summaries
def _pct(num: int, den: int) -> str:
    return f"{num}/{den} ({100.0 * num / den:.0f}%)" if den else "-"


def _top(counter: Counter, k: int = 3) -> str:
    return ", ".join(f"`{c}` {n}" for c, n in counter.most_common(k)) or "-"


def clean_table(scores: list[NightScore], key) -> list[str]:
    """Clean nights grouped by ``key(score)``: false quarantines, degradations, master flags."""
    groups: dict[str, list[NightScore]] = {}
    for s in scores:
        if s.clean and s.error is None:
            groups.setdefault(key(s), []).append(s)
    lines = [
        "| group | nights | lights | quarantined (usable model) | degraded (provable model) "
        "| masters flagged | top reasons of the false flags |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in sorted(groups):
        g = groups[name]
        reasons = Counter()
        for s in g:
            reasons.update(s.flag_reasons)
        lines.append(
            f"| {name} | {len(g)} | {sum(s.n_lights for s in g)} | "
            f"{_pct(sum(s.quarantined_usable for s in g), sum(s.n_usable for s in g))} | "
            f"{_pct(sum(s.degraded_provable for s in g), sum(s.n_provable for s in g))} | "
            f"{_pct(sum(s.masters_flagged for s in g), sum(s.n_masters for s in g))} | "
            f"{_top(reasons)} |"
        )
    return lines


MATTERS_SIGMA = 1.0
"""A level fault *matters* when it changes an affected light's typical pixel by at least this
many of the light's own noise sigmas (below, no check on the lights can see it and no user
would); faults that are not level effects (cosmic rays, a wrong EGAIN) always count."""


def matters(s: NightScore) -> bool:
    """The fault changes the affected lights by >= MATTERS_SIGMA of their noise (or is not a
    level effect, or its size is unknown)."""
    return not s.level_effect or s.effect_sigma is None or s.effect_sigma >= MATTERS_SIGMA


def _median(values: list[float]) -> str:
    values = sorted(v for v in values if v is not None)
    if not values:
        return "-"
    n = len(values)
    mid = values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
    return f"{mid:.2g}"


def fault_table(scores: list[NightScore], key) -> list[str]:
    """Faulty nights grouped by ``key(score)``: detection, right top cause, what came first."""
    groups: dict[str, list[NightScore]] = {}
    for s in scores:
        if not s.clean and s.error is None:
            groups.setdefault(key(s), []).append(s)
    lines = [
        "| group | nights | detected | right top cause | effect (median, sigma) | matters "
        "(>= 1 sigma) | detected (matters) | right top cause (matters) | top causes seen |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in sorted(groups):
        g = groups[name]
        m = [s for s in g if matters(s)]
        seen = Counter(s.top_cause or "none" for s in g)
        lines.append(
            f"| {name} | {len(g)} | {_pct(sum(bool(s.detected) for s in g), len(g))} | "
            f"{_pct(sum(bool(s.right_cause) for s in g), len(g))} | "
            f"{_median([s.effect_sigma for s in g])} | {len(m)} | "
            f"{_pct(sum(bool(s.detected) for s in m), len(m))} | "
            f"{_pct(sum(bool(s.right_cause) for s in m), len(m))} | "
            f"{', '.join(f'{c} {n}' for c, n in seen.most_common(3))} |"
        )
    return lines


def reason_table(scores: list[NightScore]) -> list[str]:
    """Per reason code on clean nights: share of lights/masters carrying it, false flags."""
    clean = [s for s in scores if s.clean and s.error is None]
    n_lights = sum(sum(s.statuses.values()) for s in clean)
    n_masters = sum(s.n_masters for s in clean)
    lights, masters, flags = Counter(), Counter(), Counter()
    for s in clean:
        lights.update(s.light_reasons)
        masters.update(s.master_reasons)
        flags.update(s.flag_reasons)
    codes = sorted(set(lights) | set(masters), key=lambda c: (-(lights[c] + masters[c]), c))
    lines = [
        "| reason | severity | lights carrying it | masters carrying it | in false flags |",
        "|---|---|---:|---:|---:|",
    ]
    for c in codes:
        rule = TRIAGE_TABLE.get(c)
        sev = str(rule.severity) if rule else "?"
        lines.append(
            f"| `{c}` | {sev} | {_pct(lights[c], n_lights)} | {_pct(masters[c], n_masters)} | "
            f"{flags[c]} |"
        )
    return lines


def scenario_table(scores: list[NightScore]) -> list[str]:
    lines = [
        "| scenario | lights C/D/Q | quarantined (usable) | degraded (provable) | masters "
        "flagged | reasons (lights / masters) | fault: detected, top cause |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for s in scores:
        st = s.statuses
        fault = "-" if s.clean else f"{s.detected}, {s.top_cause} (expected {s.expected_cause})"
        lines.append(
            f"| `{s.family}` | {st.get('calibrated', 0)}/{st.get('degraded', 0)}/"
            f"{st.get('quarantined', 0)} | {_pct(s.quarantined_usable, s.n_usable)} | "
            f"{_pct(s.degraded_provable, s.n_provable)} | {_pct(s.masters_flagged, s.n_masters)}"
            f" | {_top(Counter(s.light_reasons), 4)} / {_top(Counter(s.master_reasons), 3)} | "
            f"{s.error or fault} |"
        )
    return lines


def summary(scores: list[NightScore], scenario_scores: list[NightScore]) -> str:
    """The markdown report: totals, per family, per fault, per attribute, per reason."""
    ok = [s for s in scores if s.error is None]
    clean = [s for s in ok if s.clean]
    faulty = [s for s in ok if not s.clean]
    errors = [s for s in scores + scenario_scores if s.error]
    q = sum(s.quarantined_usable for s in clean)
    nu = sum(s.n_usable for s in clean)
    d = sum(s.degraded_provable for s in clean)
    npv = sum(s.n_provable for s in clean)
    mf = sum(s.masters_flagged for s in clean)
    nm = sum(s.n_masters for s in clean)
    det = sum(bool(s.detected) for s in faulty)
    right = sum(bool(s.right_cause) for s in faulty)
    big = [s for s in faulty if matters(s)]
    det_big = sum(bool(s.detected) for s in big)
    right_big = sum(bool(s.right_cause) for s in big)
    handled = [s for s in faulty if s.handled and not s.detected]
    how = Counter(s.handled_how for s in handled)
    seen = det + len(handled)
    out = [
        f"**Clean nights ({len(clean)}):** lights quarantined although a usable dark model "
        f"exists {_pct(q, nu)} (target 0); lights degraded although an exact or provably "
        f"scalable dark exists {_pct(d, npv)} (target <= 1%); masters low_confidence or "
        f"quarantined {_pct(mf, nm)} (target 0). **Faulty nights ({len(faulty)}):** detected "
        f"{_pct(det, len(faulty))} (target >= 95%), right top cause {_pct(right, len(faulty))} "
        f"(target >= 90%). Faults that matter ({len(big)} nights: the fault changes the "
        f"affected lights by >= {MATTERS_SIGMA:g} sigma of their noise, or is not a level "
        f"effect): detected {_pct(det_big, len(big))}, right top cause "
        f"{_pct(right_big, len(big))}. Recorded faults (`*_recorded`) the pipeline took into "
        f"account without a flag: {len(handled)}"
        + (f" ({', '.join(f'{k} {n}' for k, n in sorted(how.items()))})" if how else "")
        + f"; detected or handled {_pct(seen, len(faulty))}."
        + (f" Runs that failed: {len(errors)}." if errors else ""),
        "",
        "How to read: the truth (`zoo_truth.json`) says per light which dark model exists "
        "(`provable`: exact, exact on another night with biases, or interpolated between two "
        "exposures where linearity can be shown, with a bias or three exposures; `usable`: also "
        "interpolated between only two exposures without a bias, extrapolated, scaled with "
        "biases, uncorrected level or thermally scaled). Nights with 3-5 darks count as clean. "
        "A fault the headers record is "
        "*handled* when no affected light used the faulted master (darks of another recorded "
        "gain are another configuration) or the recorded temperature was modelled and the "
        "light's hot pixels measured on the model's scale (`handled_how`). A fault is *detected* when "
        "the faulted master or a light using it is flagged, whatever the reason, so detection "
        "is only meaningful together with the right top cause while clean nights still carry "
        "false flags. *Effect*: what the fault changes in an affected light, in units of "
        "that light's noise (sky, dark current, read noise and the master's own): the faulted "
        "master's error times its weight in the light's dark model, on the typical pixel (for "
        "warm darks and another gain the median hot pixel's when larger; `darkflow.simulate."
        "_zoo_truth.fault_effect_sigma`, median over the affected lights). A uniform offset that "
        "keeps the background positive cannot be told from sky without a bias of its night, "
        "whatever its size.",
        "",
        "### Clean nights per family",
        "",
        *clean_table(ok, lambda s: s.family),
        "",
        "### Faulty nights per family",
        "",
        *fault_table(ok, lambda s: s.family),
        "",
        "### Faulty nights per fault",
        "",
        *fault_table(ok, lambda s: f"{s.fault} (expect {s.expected_cause})"),
        "",
        "### Clean nights by what the night is",
        "",
    ]
    for attr in (
        "camera",
        "colour",
        "egain",
        "bias",
        "grid",
        "size",
        "darks",
        "scene",
        "program",
        "nights",
    ):
        rows = clean_table(ok, lambda s, a=attr: f"{a}: {s.attributes.get(a, '?')}")
        out += rows if attr == "camera" else rows[2:]
    out += [
        "",
        "### Gates on clean nights: how often each reason fired",
        "",
        "Share of the clean nights' lights (and masters) whose reasons include the code, and "
        "how many false flags (a quarantined light with a usable model, a degraded light with "
        "a provable model, a flagged master) carried it. Severity from `darkflow.triage`.",
        "",
        *reason_table(ok),
    ]
    if scenario_scores:
        out += [
            "",
            "### Named scenarios (`darkflow.simulate.zoo.SCENARIOS`)",
            "",
            *scenario_table(scenario_scores),
        ]
    if errors:
        out += ["", "### Failed runs", ""]
        out += [f"- `{s.name}`: {s.error}" for s in errors]
    return "\n".join(out)


def write_section(text: str, path: Path = RESULTS, section: str = SECTION) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others alone."""
    from darkflow.io.atomic import atomic_write

    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"{re.escape(section)}\n.*?(?=\n## |\Z)", re.S)
    block = f"{section}\n\n{text.strip()}\n"
    new = (
        pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block
    )
    with atomic_write(path) as fh:
        fh.write(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="randomized zoo nights (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="~20 nights, small scenarios only")
    parser.add_argument("--families", nargs="*", choices=FAMILIES, default=None)
    parser.add_argument("--fault-probability", type=float, default=0.3)
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--no-scenarios", action="store_true", help="skip the named scenarios")
    parser.add_argument("--json", type=Path, help="write every night's score to this file")
    parser.add_argument("--tmp", help="directory for the temporary nights (default: system)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument(
        "--only",
        nargs="*",
        metavar="NAME",
        help="run only these zoo nights of the sample (names as in the table)",
    )
    parser.add_argument(
        "--faulty",
        action="store_true",
        help="run only the sample's nights with a fault (to study causes)",
    )
    args = parser.parse_args(argv)
    n = 20 if args.quick and args.n == 200 else args.n
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one core per night: --jobs sets the load
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    nights = sample_zoo(
        n, args.seed, families=args.families, fault_probability=args.fault_probability
    )
    if args.only:
        nights = [p for p in nights if p.name in set(args.only)]
    if args.faulty:
        nights = [p for p in nights if not p.clean]
    if args.write and (args.only or args.faulty):
        parser.error("--write records whole samples only (not with --only or --faulty)")
    names = () if args.no_scenarios else (QUICK_SCENARIOS if args.quick else tuple(SCENARIOS))
    scenarios = [zoo_params(name, args.seed) for name in names]
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    scores = run_all(nights + scenarios, jobs=args.jobs, base=args.tmp)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    zoo_scores, scenario_scores = scores[: len(nights)], scores[len(nights) :]
    command = "benchmarks/bench_trust.py " + " ".join(argv if argv is not None else sys.argv[1:])
    head = (
        f"{len(nights)} randomized zoo nights (`sample_zoo({n}, seed={args.seed})`, families "
        f"{', '.join(args.families or FAMILIES)}; {sum(not p.clean for p in nights)} with a "
        f"fault) and {len(scenarios)} named scenarios through `run_night` (default config, a "
        f"fresh work directory each). Measured {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{wall / 60:.1f} min wall with {args.jobs} processes on {os.cpu_count()} shared cores "
        f"({platform.machine()}, Python {platform.python_version()}); load average "
        f"{load0[0]:.2f} before, {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f} after. "
        f"Command: `{command.strip()}`."
    )
    text = head + "\n\n" + summary(zoo_scores, scenario_scores)
    print(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in scores], indent=1, default=str))
    if args.write:
        write_section(text)
    return 0


def scores_from_json(path: Path) -> list[NightScore]:
    """Per-night scores saved with ``--json`` (to re-tabulate without re-running)."""
    return [NightScore(**d) for d in json.loads(Path(path).read_text())]


if __name__ == "__main__":
    raise SystemExit(main())

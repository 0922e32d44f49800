"""Matching benchmark: darkflow's dark model vs three simple strategies, against the truth.

For each scenario night (``darkflow.simulate.presets.SCENARIOS``: a drifting cooler, a warm
night where the set-point is not reached, lights at exposures with no exact dark, an uncooled
camera) the benchmark runs the stage functions directly::

    simulate → scan → masters (combine_files, darks split by thermal_groups) → build_index
             → session_context → match_light → dark_model_for

and, for every light, the RMS error (ADU, all pixels) of the subtracted dark model against the
true dark signal ``Truth.true_dark_adu(camera, exptime, true_temp)`` at the light's TRUE
(exposure-mean) temperature. The same is done for three baselines:

* ``banzai``   — exact exposure only (within 1 %), the master nearest in time (BANZAI);
                 a light without an exact-exposure master is not dark-calibrated (bias only);
* ``wbpp``     — masters made per (exposure, SET-TEMP keyword) from all darks of the night, the
                 closest exposure with an exact keyword match, subtracted as is (PixInsight
                 WBPP without dark optimisation);
* ``one``      — one master for the whole night: all darks of the most common dark exposure,
                 subtracted as is from every light.

darkflow must have the lowest median error on every scenario and never choose a dark outside
the hard constraints (same configuration, exposure ratio within ``max_exptime_ratio``, usable
master); the benchmark exits with status 1 otherwise. It prints a markdown table and writes it
to ``benchmarks/RESULTS.md`` under its own section.

    .venv/bin/python benchmarks/bench_matching.py [--seed 1] [--workdir DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import collections
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from darkflow.config import Config
from darkflow.ingest.catalog import meta_from_row, scan
from darkflow.master import combine_files
from darkflow.matching import (
    MasterEntry,
    build_index,
    match_light,
    temperature_gate_c,
)
from darkflow.model import FrameType, MasterStatus
from darkflow.simulate import load_truth, simulate_night
from darkflow.simulate.presets import SCENARIOS
from darkflow.subtract import dark_model_for
from darkflow.thermal import session_context, thermal_groups

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Matching: dark model vs truth (`bench_matching.py`)"
STRATEGIES = ("darkflow", "banzai", "wbpp", "one")


def _cluster_exposures(metas, rel_tol):
    groups = []
    for m in sorted(metas, key=lambda m: (m.exptime_s, m.path)):
        if groups and abs(m.exptime_s - groups[-1][0].exptime_s) <= rel_tol * m.exptime_s:
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def _combine(metas, config):
    paths = [m.path for m in metas]
    return combine_files(paths, config=config.combine, allow_few=True, metas=list(metas))


def _rms(a):
    return float(np.sqrt(np.nanmean(np.square(a, dtype=np.float64))))


def run_scenario(name: str, root: Path, seed: int, config: Config) -> dict:
    data = root / name
    if data.exists():
        shutil.rmtree(data)
    t0 = time.monotonic()
    simulate_night(data, preset=name, seed=seed)
    truth = load_truth(data)
    catalog = scan(data)
    rows = [r for r in catalog.to_dict("records") if r["status"] == "eligible"]
    metas = [meta_from_row(r) for r in rows]
    lights = [m for m in metas if m.frame_type == FrameType.LIGHT]
    darks = [m for m in metas if m.frame_type == FrameType.DARK]
    bias_frames = [m for m in metas if m.frame_type == FrameType.BIAS]
    mcfg = config.matching
    gate = temperature_gate_c(mcfg.max_dark_mismatch, mcfg.doubling_temp_c)

    # --- masters (darkflow and BANZAI use the same per-block, per-temperature masters)
    masters, entries = {}, []
    by_sig = collections.defaultdict(list)
    for m in darks:
        by_sig[m.config_signature].append(m)
    for sig, group in sorted(by_sig.items()):
        for exp_group in _cluster_exposures(group, mcfg.exptime_rel_tol):
            for k, members in enumerate(
                thermal_groups(exp_group, gate_c=gate, max_gap_h=mcfg.thermal_group_gap_h)
            ):
                master = _combine(members, config)
                mid = f"{sig[:24]}:{master.meta.exptime_s:g}s:{k}"
                few = len(members) < config.combine.min_frames
                masters[mid] = master
                entries.append(
                    MasterEntry(
                        mid,
                        master.meta,
                        status=MasterStatus.LOW_CONFIDENCE if few else MasterStatus.VERIFIED,
                        confidence=0.5 if few else 1.0,
                    )
                )
    biases = {}
    for sig in {m.config_signature for m in bias_frames}:
        biases[sig] = _combine([m for m in bias_frames if m.config_signature == sig], config)
    # --- WBPP and one-master masters: all darks of an exposure and SET-TEMP keyword merged
    wbpp = collections.defaultdict(list)  # sig -> [(exptime, set_temp, master)]
    for sig, group in sorted(by_sig.items()):
        for exp_group in _cluster_exposures(group, mcfg.exptime_rel_tol):
            keyed = collections.defaultdict(list)
            for m in exp_group:
                keyed[None if m.set_temp_c is None else round(m.set_temp_c, 1)].append(m)
            for key, members in sorted(keyed.items(), key=lambda kv: str(kv[0])):
                wbpp[sig].append((members[0].exptime_s, key, _combine(members, config)))
    one = {}
    for sig, items in wbpp.items():
        one[sig] = max(items, key=lambda it: (it[2].meta.n_frames, it[0]))[2]
    t_masters = time.monotonic() - t0

    t1 = time.monotonic()
    index = build_index(entries, load_master=masters.__getitem__, biases=biases, config=config)
    contexts = {}
    for sig in {m.config_signature for m in lights}:
        contexts[sig] = session_context([m for m in lights if m.config_signature == sig])
    entry_by_id = {e.master_id: e for e in entries}

    errors = {s: [] for s in STRATEGIES}
    signal = []
    uncal = collections.Counter()
    modes = collections.Counter()
    violations = []
    for light in sorted(lights, key=lambda m: m.date_obs_utc):
        row = truth.frame(light.path)
        true_dark = truth.true_dark_adu(row["camera"], row["exptime_s"], row["true_temp_c"])
        sig = light.config_signature
        bias = biases.get(sig)
        base = bias.data if bias is not None else np.zeros_like(true_dark)
        signal.append(_rms(true_dark - truth.bias_adu(row["camera"])))
        # darkflow
        d = match_light(light, index, config, session_context=contexts.get(sig))
        if d.matched:
            model = dark_model_for(d, load_master=masters.__getitem__, bias=bias, index=index)
            errors["darkflow"].append(_rms(model.data - true_dark))
            modes[str(d.scale_mode)] += 1
            for mid in d.master_ids:
                e = entry_by_id[mid]
                ratio = light.exptime_s / e.meta.exptime_s
                if (
                    e.meta.config_signature != sig
                    or not 1 / mcfg.max_exptime_ratio <= ratio <= mcfg.max_exptime_ratio
                    or e.status in (MasterStatus.QUARANTINED, MasterStatus.SUPERSEDED)
                ):
                    violations.append((light.path, mid))
        else:
            errors["darkflow"].append(_rms(base - true_dark))
            uncal["darkflow"] += 1
            modes["quarantined"] += 1
        # BANZAI: exact exposure, nearest in time
        exact = [
            e
            for e in entries
            if e.meta.config_signature == sig
            and abs(e.meta.exptime_s - light.exptime_s) <= 0.01 * light.exptime_s
        ]
        if exact:
            e = min(exact, key=lambda e: abs((e.mid_time - light.date_obs_utc).total_seconds()))
            errors["banzai"].append(_rms(masters[e.master_id].data - true_dark))
        else:
            errors["banzai"].append(_rms(base - true_dark))
            uncal["banzai"] += 1
        # WBPP: exact keyword match, closest exposure (ties: the longer), as is
        key = None if light.set_temp_c is None else round(light.set_temp_c, 1)
        same = [it for it in wbpp.get(sig, []) if it[1] == key]
        if same:
            it = min(same, key=lambda it: (abs(it[0] - light.exptime_s), -it[0]))
            errors["wbpp"].append(_rms(it[2].data - true_dark))
        else:
            errors["wbpp"].append(_rms(base - true_dark))
            uncal["wbpp"] += 1
        # one master for the whole night
        if sig in one:
            errors["one"].append(_rms(one[sig].data - true_dark))
        else:
            errors["one"].append(_rms(base - true_dark))
            uncal["one"] += 1
    t_match = time.monotonic() - t1
    law = next(iter(index.laws.values()), None)
    lin = next(iter(index.linearity.values()), None)
    sensor = truth.sensor(truth.frames["camera"].iloc[0])
    return {
        "name": name,
        "n_lights": len(lights),
        "n_masters": len(entries),
        "errors": {k: np.array(v) for k, v in errors.items()},
        "signal": float(np.median(signal)),
        "uncal": uncal,
        "modes": modes,
        "violations": violations,
        "law": law,
        "true_td": sensor.doubling_temp_c,
        "linearity": lin.status if lin else None,
        "seconds": (t_masters, t_match),
    }


def _fmt(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def table(results: list[dict]) -> str:
    lines = [
        "| scenario | lights | strategy | median RMS err (ADU) | mean | p90 | vs darkflow "
        "| median err / dark signal | not dark-calibrated |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ref = float(np.median(r["errors"]["darkflow"]))
        for s in STRATEGIES:
            e = r["errors"][s]
            med = float(np.median(e))
            name = f"**{s}**" if s == "darkflow" else s
            lines.append(
                f"| {r['name']} | {r['n_lights']} | {name} | {_fmt(med)} | {_fmt(float(e.mean()))} "
                f"| {_fmt(float(np.percentile(e, 90)))} | {med / ref:.2f}x "
                f"| {100 * med / r['signal']:.1f}% | {r['uncal'].get(s, 0)} |"
            )
    return "\n".join(lines)


def details(results: list[dict]) -> str:
    out = []
    for r in results:
        law = r["law"]
        law_txt = (
            f"law {law.source} T_d={law.doubling_temp_c:.2f}±{law.sigma_doubling_c:.2f} °C "
            f"(truth {r['true_td']:g}, supports scaling: {law.supports_scaling})"
            if law
            else "no law"
        )
        modes = ", ".join(f"{k} {v}" for k, v in sorted(r["modes"].items()))
        out.append(
            f"- **{r['name']}**: {r['n_masters']} masters; {law_txt}; exposure law "
            f"{r['linearity']}; darkflow modes: {modes}; hard-constraint violations: "
            f"{len(r['violations'])}; RMS true dark signal (bias removed) {r['signal']:.1f} ADU; "
            f"{r['seconds'][0]:.1f} s simulate+masters, {r['seconds'][1]:.1f} s index+match+models."
        )
    return "\n".join(out)


def write_results(text: str, section: str = SECTION) -> None:
    """Replace (or append) ``section`` of ``RESULTS.md`` with ``text``."""
    existing = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = existing.find(section)
    if start < 0:
        updated = existing.rstrip("\n") + "\n\n" + text + "\n"
    else:
        nxt = existing.find("\n## ", start + len(section))
        end = len(existing) if nxt < 0 else nxt + 1
        updated = existing[:start] + text + "\n" + ("\n" + existing[end:] if nxt >= 0 else "")
    from darkflow.io.atomic import atomic_write

    with atomic_write(RESULTS) as fh:
        fh.write(updated)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    config = Config()
    load_before = (
        Path("/proc/loadavg").read_text().split()[:3]
        if Path("/proc/loadavg").exists()
        else ["?"] * 3
    )
    with tempfile.TemporaryDirectory(prefix="darkflow-bench-matching-") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        results = [run_scenario(n, root, args.seed, config) for n in (args.scenario or SCENARIOS)]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    ok = True
    verdicts = []
    for r in results:
        med = {s: float(np.median(r["errors"][s])) for s in STRATEGIES}
        best = all(med["darkflow"] < med[s] for s in STRATEGIES if s != "darkflow")
        ok &= best and not r["violations"]
        verdicts.append(
            f"{r['name']}: {'darkflow lowest' if best else 'darkflow NOT lowest'}"
            f", {len(r['violations'])} constraint violations"
        )
    text = "\n".join(
        [
            SECTION,
            "",
            f"Scenario nights `{', '.join(r['name'] for r in results)}` "
            f"(`darkflow.simulate.presets`, seed {args.seed}, 128x192 frames). Per light: RMS over all "
            "pixels of (subtracted dark model - true dark signal at the light's true exposure-mean "
            "temperature), ADU. Baselines: `banzai` exact exposure, nearest in time (no exact "
            "exposure: bias only); `wbpp` masters per exposure and SET-TEMP keyword from all the "
            "night's darks, closest exposure, as is; `one` one master (all darks of the most common "
            "dark exposure) for every light. darkflow and banzai use the same masters (darks split "
            "by time gaps and temperature with `thermal_groups`).",
            "",
            table(results),
            "",
            details(results),
            "",
            "Verdict: " + "; ".join(verdicts) + ".",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
            f"Python {platform.python_version()}; load before {' '.join(load_before)}, after: "
            f"`{uptime}` (shared machine, timings indicative only).",
        ]
    )
    print(text)
    if not args.no_write:
        write_results(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

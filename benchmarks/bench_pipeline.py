"""Pipeline DAG benchmark: first run, no-change rerun, one-new-dark rerun, Dask with 2 workers.

    .venv/bin/python benchmarks/bench_pipeline.py [--preset night] [--seed 5] [--keep]

Simulates a night of several sessions (default: the ``night`` preset, 1000x1500 frames), runs
``darkflow.pipeline.run_night`` in this process four times and prints a markdown table; with
``--write`` the table goes into ``benchmarks/RESULTS.md`` under "Pipeline DAG". Targets: the
no-change rerun under 5% of the first run's time with zero masters rebuilt; the Dask run's outputs
byte-identical to the in-process run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from darkflow.pipeline import DaskExecutor, run_night  # noqa: E402
from darkflow.registry import Registry  # noqa: E402
from darkflow.simulate import simulate_night  # noqa: E402

SECTION = "## Pipeline DAG (`bench_pipeline.py`)"


def outputs(workdir: Path) -> dict[str, bytes]:
    out = {}
    for sub in ("artifacts", "calibrated"):
        for p in sorted((workdir / sub).rglob("*.fits")):
            out[str(p.relative_to(workdir))] = p.read_bytes()
    return out


def add_dark(workdir: Path) -> Path:
    """A new dark in the set of the master most lights use (fresh noise, new content hash)."""
    import pandas as pd

    report = pd.read_csv(workdir / "frame_report.csv")
    used = report["master_id"].value_counts().index[0]
    with Registry(workdir) as reg:
        src = Path(reg.get_by_id(used).provenance["inputs"][0]["path"])
    with fits.open(src) as hdul:
        data = hdul[0].data.astype(np.int32)
        header = hdul[0].header.copy()
    rng = np.random.default_rng(1)
    data = np.clip(data + rng.integers(-3, 4, data.shape), 0, 65535).astype(np.uint16)
    new = src.with_name(f"{src.stem}_bench_extra{src.suffix}")
    fits.PrimaryHDU(data, header).writeto(new)
    return new


def timed(label, fn):
    t0 = time.perf_counter()
    result = fn()
    return label, time.perf_counter() - t0, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="night")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write the table to RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="darkflow-bench-pipeline-"))
    try:
        data = tmp / "data"
        t0 = time.perf_counter()
        manifest = simulate_night(data, preset=args.preset, seed=args.seed)
        sim_s = time.perf_counter() - t0
        n_files = len(manifest.paths)
        first_frame = fits.getheader(manifest.paths[0])
        shape = (first_frame["NAXIS2"], first_frame["NAXIS1"])
        local, dask_dir = tmp / "local", tmp / "dask"

        rows = []
        label, t_first, first = timed(
            "first run (in-process)", lambda: run_night(data, workdir=local)
        )
        rows.append((label, t_first, first))
        label, t, again = timed("no-change rerun", lambda: run_night(data, workdir=local))
        rows.append((label, t, again))
        snapshot = outputs(local)
        extra = add_dark(local)
        label, t, one = timed("one new dark", lambda: run_night(data, workdir=local))
        rows.append((label, t, one))
        extra.unlink()  # back to the original night for the Dask comparison

        executor = DaskExecutor(workers=args.workers)
        try:
            label, t, dask = timed(
                f"first run, Dask LocalCluster ({args.workers} workers)",
                lambda: run_night(data, workdir=dask_dir, executor=executor),
            )
        finally:
            executor.close()
        rows.append((label, t, dask))
        identical = outputs(dask_dir) == snapshot

        lines = [
            SECTION,
            "",
            f"Night: preset `{args.preset}` seed {args.seed}, {n_files} files"
            + (f" of {shape[0]}x{shape[1]}" if shape else "")
            + f" (simulated in {sim_s:.1f} s). In-process `run_night` timings (imports and numba "
            "compilation warm).",
            "",
            "| run | wall s | vs first run | masters built | masters reused | lights computed | lights reused |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label, t, r in rows:
            lines.append(
                f"| {label} | {t:.2f} | {100 * t / t_first:.1f}% | {r.masters_built} | "
                f"{r.masters_reused} | {r.lights_computed} | {r.lights_reused} |"
            )
        no_change = rows[1]
        lines += [
            "",
            f"- No-change rerun: {100 * no_change[1] / t_first:.1f}% of the first run "
            f"(target < 5%), {no_change[2].masters_built} masters rebuilt (target 0).",
            f"- One new dark: {one.masters_built} master rebuilt, {one.lights_computed} lights "
            "recomputed (the lights that use it), everything else reused.",
            f"- Dask outputs byte-identical to the in-process run: **{identical}** "
            f"({len(snapshot)} FITS artifacts compared).",
            f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at the end.",
        ]
        table = "\n".join(lines) + "\n"
        print(table)
        if args.write:
            write_section(ROOT / "benchmarks" / "RESULTS.md", table)
        return 0 if identical and no_change[2].masters_built == 0 else 1
    finally:
        if args.keep:
            print(f"data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def write_section(path: Path, table: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + table + (text[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + table
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: a year of nights, the cost of a run grows with what is new, not with the archive.

    .venv/bin/python benchmarks/bench_archive.py [--nights 24 96] [--big] [--dir DIR]
        [--repeat K] [--add-only]

For each N (24 and 96 by default; 365 with ``--big``) it simulates an archive of N small nights
(96x96 frames, 10 biases + 10 darks + 10 lights a night, one cooled camera whose fixed pattern
is the same every night, seeded) plus one more night, then times whole processes (wall time and
peak RSS of each, from ``wait4``):

* start-up: ``python -c "import darkflow.cli, darkflow.pipeline"`` (what every run pays);
* ``darkflow run ARCHIVE -w W``: the first run, the no-change rerun, and a rerun forced through
  the pipeline (``run_night(force=True)``: scan, plan and every job found cached);
* ``darkflow nightly ARCHIVE -w WN --no-reports``: the first pass and the no-change pass;
* adding the extra night: ``darkflow run NIGHT -w W`` into a copy of the archive's work
  directory vs into an empty one (``--repeat K``: K times, interleaved, each into a fresh copy
  synced to disk first; the medians are reported), and ``darkflow nightly`` after the night is
  put into the archive;
* ``darkflow status W`` and ``darkflow quarantine W``.

Prints a markdown table (paste it into ``benchmarks/RESULTS.md`` with the machine load) and the
work directory's size per night. Data and work directories go to a temporary folder (``--dir``
keeps them; W is left as the archive's work directory, so ``--add-only --dir`` measures the
adding of the night again, without simulating or calibrating the archive).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = dt.date(2026, 1, 1)


def night_spec(index: int, frames: int = 10):
    """One night of the archive: the demo's cooled mono camera, 10 biases, 10 darks, 10 lights.

    The seed is the same every night (the camera keeps its hot pixels and glow) and the session
    name carries the night's index (each night's frames have their own noise)."""
    from darkflow.simulate import get_preset
    from darkflow.simulate.presets import ZWO_BIAS_S
    from darkflow.simulate.spec import Block

    demo = get_preset("demo")
    session = demo.sessions[0].replace(
        name=f"nina_{index:04d}",
        blocks=(
            Block("bias", ZWO_BIAS_S, frames),
            Block("dark", 120.0, frames),
            Block("light", 120.0, frames, filter="L"),
        ),
        broken=(),
    )
    return demo.replace(sessions=(session,))


def night_date(index: int) -> str:
    return (START + dt.timedelta(days=index)).isoformat()


def simulate_archive(
    root: Path, nights: range | list[int], *, shape=(96, 96), seed=2026, frames: int = 10
) -> Path:
    """Write the nights ``nights`` (indices) under ``root/<YYYY-MM-DD>/...``; returns ``root``.

    ``frames`` biases, darks and lights a night; another ``seed`` is another camera."""
    from darkflow.simulate import simulate_night

    root.mkdir(parents=True, exist_ok=True)
    for i in nights:
        tmp = root.parent / f".{root.name}-{i}"
        simulate_night(
            tmp,
            night_spec(i, frames),
            seed=seed,
            date=night_date(i),
            shape=shape,
            write_sky_truth=False,
            overwrite=True,
        )
        for item in tmp.iterdir():
            if not item.name.startswith("_"):  # the ground truth is not an input
                shutil.move(str(item), root / item.name)
        shutil.rmtree(tmp)
    return root


ENV = dict(os.environ)


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit status of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        print(f"  ! {' '.join(cmd)} exited {proc.returncode}: {err[-500:]}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


ADD_ARCHIVE = "add one night: run NIGHT -w W (archive of N)"
ADD_EMPTY = "add one night: run NIGHT -w EMPTY"


def add_night(base: Path, night: Path, repeat: int, measure) -> None:
    """``darkflow run NIGHT`` into a copy of the archive's work directory and into an empty
    one, ``repeat`` times, interleaved (the machine's load drifts); each copy is synced to
    disk before the run (its writeback must not land in the measured run's fsyncs)."""
    darkflow = [sys.executable, "-m", "darkflow.cli"]
    w = base / "w"
    for i in range(repeat):
        for label, dest in ((ADD_ARCHIVE, base / "w-add"), (ADD_EMPTY, base / "w-empty")):
            shutil.rmtree(dest, ignore_errors=True)
            if dest.name == "w-add":
                shutil.copytree(w, dest, symlinks=True)
            os.sync()
            measure(
                f"{label} #{i + 1}" if repeat > 1 else label,
                [*darkflow, "run", str(night), "-w", str(dest), "-q"],
            )
    shutil.rmtree(base / "w-add", ignore_errors=True)


def bench(n: int, base: Path, nightly: bool, repeat: int = 1, add_only: bool = False):
    py = sys.executable
    darkflow = [py, "-m", "darkflow.cli"]
    archive, extra = base / "archive", base / "extra"
    w, wn, empty_n = base / "w", base / "wn", base / "wn-empty"
    rows = []

    def measure(label, cmd):
        wall, rss, _ = timed(cmd)
        rows.append((label, wall, rss))
        print(
            f"  {label}: {wall:.2f} s, {rss:.0f} MB, load {os.getloadavg()[0]:.2f}", file=sys.stderr
        )
        return wall

    night = extra / night_date(n)
    if add_only:
        if not (w / "registry.sqlite").is_file() or not night.is_dir():
            raise SystemExit(
                f"--add-only: no archive work directory in {base} (run once with --dir)"
            )
        add_night(base, night, repeat, measure)
        return rows
    t0 = time.perf_counter()
    simulate_archive(archive, range(n))
    simulate_archive(extra, [n])
    print(f"N={n}: simulated {n} + 1 nights in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    measure(
        "start-up (import darkflow.cli, darkflow.pipeline)",
        [py, "-c", "import darkflow.cli, darkflow.pipeline"],
    )
    measure("run ARCHIVE: first run", [*darkflow, "run", str(archive), "-w", str(w), "-q"])
    measure("run ARCHIVE: no-change rerun", [*darkflow, "run", str(archive), "-w", str(w), "-q"])
    measure(
        "run ARCHIVE: rerun through the pipeline (force; every job cached)",
        [
            py,
            "-c",
            "from darkflow._threads import prefer_safe_threading_layer as p; p(); "
            "from darkflow.pipeline import run_night; "
            f"run_night({str(archive)!r}, workdir={str(w)!r}, force=True)",
        ],
    )
    measure("status W", [*darkflow, "status", str(w)])
    measure("quarantine W", [*darkflow, "quarantine", str(w)])
    add_night(base, night, repeat, measure)
    size = du(w)
    if nightly:
        nightly_cmd = [*darkflow, "nightly", str(archive), "-w", str(wn), "--no-reports", "-q"]
        measure("nightly ARCHIVE --no-reports: first pass", nightly_cmd)
        measure("nightly ARCHIVE --no-reports: no-change pass", nightly_cmd)
        shutil.copytree(night, archive / night.name)
        measure("add one night: nightly ARCHIVE (archive of N)", nightly_cmd)
        measure(
            "add one night: nightly NIGHT -w EMPTY",
            [*darkflow, "nightly", str(night), "-w", str(empty_n), "--no-reports", "-q"],
        )
    rows.append(("work directory size per night (MB)", size / n / 1e6, float("nan")))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nights", type=int, nargs="+", default=[24, 96])
    p.add_argument("--big", action="store_true", help="N = 365 (a year of nights)")
    p.add_argument("--no-nightly", action="store_true", help="skip the nightly passes")
    p.add_argument("--dir", type=Path, help="keep data and work directories here")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="add the night K times to the archive and to an empty work directory, "
        "interleaved (medians reported)",
    )
    p.add_argument(
        "--add-only",
        action="store_true",
        help="with --dir of an earlier run: only the adding of the night",
    )
    p.add_argument(
        "--threading-layer",
        help="NUMBA_THREADING_LAYER of the measured processes "
        "(default: darkflow's choice, OpenMP then workqueue, see darkflow._threads)",
    )
    args = p.parse_args(argv)
    if args.threading_layer:
        ENV["NUMBA_THREADING_LAYER"] = args.threading_layer
    sizes = [365] if args.big else args.nights
    load = os.getloadavg()
    print(
        f"# bench_archive: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )
    print(f"command: {' '.join(sys.argv)}\n")
    if args.add_only and args.dir is None:
        p.error("--add-only needs --dir")
    for n in sizes:
        if args.dir is not None:
            base = args.dir / f"N{n}"
            if not args.add_only:
                shutil.rmtree(base, ignore_errors=True)
            rows = bench(n, base, not args.no_nightly, args.repeat, args.add_only)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                rows = bench(n, Path(tmp), not args.no_nightly, args.repeat)
        print(
            f"## N = {n} nights ({30 * n} files), load at end "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
        )
        print("| step | wall (s) | peak RSS (MB) |")
        print("|---|---:|---:|")
        for label, t, rss in rows:
            print(f"| {label} | {t:.2f} | {'' if rss != rss else f'{rss:.0f}'} |")
        if not args.add_only:
            first = next(t for label, t, _ in rows if label.endswith("first run"))
            rerun = next(t for label, t, _ in rows if label.endswith("no-change rerun"))
            print(
                f"\nno-change rerun: {rerun:.2f} s = {100 * (rerun - rows[0][1]) / first:.1f}% "
                f"of the first run beyond start-up (target <= 5%)"
            )
        a = statistics.median(t for label, t, _ in rows if label.startswith(ADD_ARCHIVE))
        b = statistics.median(t for label, t, _ in rows if label.startswith(ADD_EMPTY))
        print(
            f"adding one night ({args.repeat} time(s), medians): {a:.2f} s into the archive vs "
            f"{b:.2f} s into an empty work directory: {100 * (a / b - 1):+.0f}% "
            f"(target within 20%)\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A whole night, end to end: ``darkflow run`` against Siril, a ccdproc loop and the IO floor.

Usage::

    .venv/bin/python benchmarks/bench_night.py                   # 2048x2048 and 4096x4096, 3 reps
    .venv/bin/python benchmarks/bench_night.py --sizes 2048 --reps 5 --tools darkflow,siril
    .venv/bin/python benchmarks/bench_night.py --big             # also 6388x9576 (61 Mpixel)
    .venv/bin/python benchmarks/bench_night.py --profile         # + where darkflow's time goes
    .venv/bin/python benchmarks/bench_night.py --write           # the section of RESULTS.md

The night (``darkflow.simulate``, seed 7): one N.I.N.A. session of a cooled CMOS camera, N darks
of 120 s then N lights of 120 s at the same set-point, no bias (16 + 16 at 2048x2048, 20 + 20 at
4096x4096 and 6388x9576), uint16 FITS. Frames are simulated once into ``--data`` (default
``$TMPDIR/darkflow-bench-night``, reused while the seed and sizes match; never committed).

Every tool runs as a whole process (start-up, imports and all) on the same files, each repetition
into a fresh output directory, interleaved (A B C D, A B C D, ...) so a change of the machine's
load hits every tool alike; after one untimed warm-up of each (page cache, numba cache). Reported:
the median and range of the wall time, the peak RSS (``ru_maxrss`` of the process from
``os.wait4``; with worker processes, also the peak of the summed RSS of the process tree,
sampled every 0.1 s), the bytes the tool wrote, and the load: the 1-minute load average and the CPU the
*other* processes used while the tool ran (busy time of the machine from ``/proc/stat`` minus the
tool's own CPU time, in cores).

* ``darkflow``: ``darkflow run NIGHT --workdir FRESH`` (every check on; extra arguments with
  ``--darkflow-args``); ``darkflow-wN`` variants with ``--darkflow-workers``;
  ``darkflow-before`` with ``--baseline DIR``: the same command with the darkflow package of
  another source tree (e.g. ``git archive main | tar -x -C DIR``) first on ``PYTHONPATH``, so a
  change is measured against its baseline in the same interleaved run.
* ``siril``: ``siril-cli -s script``: ``convert`` the darks, ``stack ... rej s 3 3 -nonorm``
  (sigma clipping at 3/3), ``convert`` the lights, ``preprocess -dark=master`` (Siril's default
  32-bit float output).
* ``ccdproc``: ``ccdproc.combine(dark files, method='average', sigma_clip=True, 3/3, median
  centre, mad_std)``, then per light ``CCDData.read``, ``subtract_dark(exposure_time='EXPTIME')``
  and ``write`` (float32, as darkflow and Siril write).
* ``floor``: read every input file's bytes, then write one float32 FITS of the frame's size per
  light and one for the master, each atomically with fsync as darkflow writes: the least any
  calibration must read and write.

``--profile`` runs ``darkflow run --workers 1`` once more in a fresh process with a timer
around each stage (lights one after the other in that process, so each is timed) (scan, hashing, master combine, master write, master assessment, planning and
index, per-light read, dark model, subtraction, checks, light write, CSV/night reports) and
prints where the time goes (each stage's own time: a stage called inside another is not counted
twice; with parallel lights, the per-light stages are summed over workers), plus ``darkflow
report`` (HTML) on the result.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## A whole night (`bench_night.py`)"
SEED = 7
EXPTIME_S = 120.0
# frames of darks and of lights per size
COUNTS = {2048: 16, 4096: 20, 6388: 20}
SHAPES = {2048: (2048, 2048), 4096: (4096, 4096), 6388: (6388, 9576)}
TOOLS = ("darkflow", "siril", "ccdproc", "floor")


# ----------------------------------------------------------------------------- the night
def night_spec(shape: tuple[int, int], n: int):
    from darkflow.simulate import Block, Program, get_preset

    demo = get_preset("demo")
    base = next(s for s in demo.sessions if s.name == "nina_asi2600mm")
    session = base.replace(
        name="bench_night",
        program=Program.NINA,
        blocks=(Block("dark", EXPTIME_S, n), Block("light", EXPTIME_S, n, filter="L")),
        broken=(),
    )
    camera = demo.cameras[base.camera].replace(ny=shape[0], nx=shape[1])
    return demo.replace(
        name=f"bench-night-{shape[0]}x{shape[1]}",
        cameras={base.camera: camera},
        sessions=(session,),
        write_sky_truth=False,
        description="bench_night: one session, darks then lights, no bias",
    )


def simulate(data: Path, size: int) -> dict:
    """The night of ``size`` in ``data`` (simulated once, in a child process: this process stays
    small, since a forked child starts with its parent's resident memory in its peak RSS)."""
    shape, n = SHAPES[size], COUNTS[size]
    done = data / f"{shape[0]}x{shape[1]}-{n}-seed{SEED}" / "files.json"
    if not done.exists():
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                "simulate",
                str(data),
                str(size),
            ],
            check=True,
        )
    return json.loads(done.read_text())


def simulate_child(data: Path, size: int) -> int:
    from astropy.io import fits

    from darkflow.simulate import simulate_night

    shape, n = SHAPES[size], COUNTS[size]
    root = data / f"{shape[0]}x{shape[1]}-{n}-seed{SEED}"
    done = root / "files.json"

    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    manifest = simulate_night(root / "sim", preset=night_spec(shape, n), seed=SEED)
    darks, lights = [], []
    for p in manifest.paths:
        kind = str(fits.getheader(p).get("IMAGETYP", "")).lower()
        (darks if "dark" in kind else lights if "light" in kind else []).append(str(p))
    files = {
        "night": str(manifest.night_dir),
        "darks": sorted(darks),
        "lights": sorted(lights),
        "shape": list(shape),
        "simulated_s": round(time.perf_counter() - t0, 1),
    }
    done.write_text(json.dumps(files, indent=1))
    return 0


# ----------------------------------------------------------------------------- measuring
def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _tree_rss(root: int) -> int:
    """Summed resident memory (bytes) of a process and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: the parent's pid
        rss[pid] = int(fields[21]) * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


class _TreeSampler(threading.Thread):
    """Peak of the summed RSS of a process tree (worker processes included), every 0.1 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            self.peak = max(self.peak, _tree_rss(self.pid))

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def measure(
    cmd: list[str],
    *,
    log: Path,
    out: Path,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float | None = None,
) -> dict:
    """Run ``cmd`` as a whole process: wall time, peak RSS, CPU, others' load, bytes written."""
    cwd = cwd or log.parent  # not the source tree: a kernel started there would import it
    load0 = os.getloadavg()[0]
    busy0 = _busy_seconds()
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        tree = sampler.stop()
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, (_busy_seconds() - busy0 - cpu) / wall)
    return {
        "wall_s": wall,
        "rss_mb": usage.ru_maxrss / 1024,
        "tree_mb": tree / 2**20,
        "cpu_s": cpu,
        "others_cores": others,
        "load1": (load0 + os.getloadavg()[0]) / 2,
        "rc": proc.returncode,
        "bytes": _dir_bytes(out) if out.exists() else 0,
    }


# ----------------------------------------------------------------------------- the tools
def _venv_bin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.exists() else name


def darkflow_cmd(files: dict, out: Path, extra: list[str]) -> tuple[list[str], Path]:
    return [_venv_bin("darkflow"), "run", files["night"], "--workdir", str(out), *extra], out


def siril_cmd(files: dict, out: Path) -> tuple[list[str], Path]:
    """A Siril 1.0 script: convert + sigma-clipped stack of the darks, convert + preprocess."""
    for kind in ("darks", "lights"):
        src = out / f"{kind}_in"
        src.mkdir(parents=True)
        for i, p in enumerate(files[kind], 1):
            (src / f"f{i:04d}.fit").symlink_to(p)
    proc = out / "proc"
    lines = [
        "requires 1.0.0",
        f"cd {out / 'darks_in'}",
        f"convert dark_ -out={proc}",
        f"cd {proc}",
        "stack dark_ rej s 3 3 -nonorm -out=master_dark",
        f"cd {out / 'lights_in'}",
        f"convert light_ -out={proc}",
        f"cd {proc}",
        "preprocess light_ -dark=master_dark",
    ]
    script = out / "night.ssf"
    script.write_text("\n".join(lines) + "\n")
    return [shutil.which("siril-cli") or "siril-cli", "-s", str(script), "-d", str(out)], proc


def child_cmd(tool: str, files: dict, out: Path) -> tuple[list[str], Path]:
    listing = out / "files.json"
    out.mkdir(parents=True)
    listing.write_text(json.dumps(files))
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        tool,
        str(listing),
        str(out / "result"),
    ], out / "result"


def run_ccdproc(files: dict, out: Path) -> None:
    import warnings

    import astropy.units as u
    import ccdproc
    import numpy as np
    from astropy.nddata import CCDData
    from astropy.stats import mad_std

    out.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        master = ccdproc.combine(
            files["darks"],
            method="average",
            sigma_clip=True,
            sigma_clip_low_thresh=3,
            sigma_clip_high_thresh=3,
            sigma_clip_func=np.ma.median,
            sigma_clip_dev_func=mad_std,
            mem_limit=1e9,
            unit="adu",
        )
        master.data = master.data.astype(np.float32)
        master.write(out / "master_dark.fits")
        for p in files["lights"]:
            light = CCDData.read(p, unit="adu")
            cal = ccdproc.subtract_dark(light, master, exposure_time="EXPTIME", exposure_unit=u.s)
            cal.data = cal.data.astype(np.float32)
            cal.write(out / f"cal_{Path(p).name}")


def run_floor(files: dict, out: Path) -> None:
    """Read every input, write one float32 frame per light and the master (atomic, fsync)."""
    import numpy as np
    from astropy.io import fits

    from darkflow.io.atomic import atomic_path

    out.mkdir(parents=True)
    for p in files["darks"] + files["lights"]:
        with open(p, "rb") as fh:
            fh.read()
    plane = np.zeros(files["shape"], np.float32)
    for name in ["master_dark.fits"] + [f"cal_{Path(p).name}" for p in files["lights"]]:
        with atomic_path(out / name) as tmp:
            fits.PrimaryHDU(plane).writeto(tmp)


def child(tool: str, listing: Path, out: Path) -> int:
    files = json.loads(listing.read_text())
    {"ccdproc": run_ccdproc, "floor": run_floor}[tool](files, out)
    return 0


# ----------------------------------------------------------------------------- the profile
# (module, attribute, stage): each timed call's own time goes to its stage; a call inside another
# timed call counts for the inner one only. Targets renamed by later work are skipped (listed).
STAGES = (
    ("darkflow.pipeline.run", "_scan", "scan (headers, catalog)"),
    ("darkflow.io.hashing", "file_hash", "hashing"),
    ("darkflow.registry:Registry", "content_hash", "hashing"),
    ("darkflow.master", "combine_files", "master combine"),
    # with the hold-out training master of the analysed rows in the same pass
    ("darkflow.master", "combine_files_with_training", "master combine"),
    ("darkflow.master", "write_master", "master write"),
    ("darkflow.pipeline.jobs", "_assess", "master assessment"),
    ("darkflow.pipeline.run", "plan_masters", "planning (masters)"),
    ("darkflow.pipeline.run", "plan_lights", "planning (index, matching)"),
    ("darkflow.io.fits", "read_image", "light read"),
    ("darkflow.pipeline.jobs", "_load", "master read (per light)"),
    ("darkflow.subtract", "dark_model_for", "dark model"),
    ("darkflow.subtract", "subtract_dark", "subtract + uncertainty"),
    ("darkflow.verify", "check_light", "light checks"),
    ("darkflow.calibrate", "calibrate_light", "calibrate (other)"),
    ("darkflow.io.fits", "write_image", "light write"),
    ("darkflow.io.fits", "write_calibrated", "light write"),
    ("darkflow.subtract", "uncertainty_cards", "light write"),
    ("darkflow.master", "read_master_hashed", "master read (after write, cached)"),
    ("darkflow.pipeline.run", "_write_reports", "reports (CSV, nights/)"),
    ("darkflow.pipeline.run", "_execute_lights", "lights (executor, registry)"),
    ("darkflow.pipeline.run", "_execute_masters", "masters (executor, registry)"),
)
# A generic IO call made inside one of these stages belongs to that stage (a master's planes are
# written by write_image, the assessment reads its frames).
BELONGS = {
    "light write": ("master write", "light write"),
    "master read (after write, cached)": ("master write",),
    "light read": ("master assessment", "master combine"),
}


class StageTimer:
    """Exclusive time per stage (per thread: parallel lights are summed over workers)."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.missing: list[str] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def wrap(self, fn, stage: str):
        timer = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            stack = getattr(timer._local, "stack", None)
            if stack is None:
                stack = timer._local.stack = []
            if stack and stack[-1][0] in BELONGS.get(stage, ()):
                return fn(*args, **kwargs)
            now = time.perf_counter()
            if stack:  # pause the enclosing stage
                outer, since = stack[-1]
                timer._add(outer, now - since, 0)
            stack.append([stage, now])
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                _, since = stack.pop()
                timer._add(stage, end - since, 1)
                if stack:
                    stack[-1][1] = end

        return timed

    def _add(self, stage: str, seconds: float, calls: int) -> None:
        with self._lock:
            self.totals[stage] = self.totals.get(stage, 0.0) + seconds
            self.calls[stage] = self.calls.get(stage, 0) + calls

    def install(self) -> None:
        import importlib

        for module, attr, stage in STAGES:
            owner_name, cls = module.split(":") if ":" in module else (module, "")
            try:
                owner = importlib.import_module(owner_name)
                if cls:
                    owner = getattr(owner, cls)
                fn = getattr(owner, attr)
            except (ImportError, AttributeError):
                self.missing.append(f"{module}.{attr}")
                continue
            wrapped = self.wrap(fn, stage)
            setattr(owner, attr, wrapped)
            # names imported at module level elsewhere (``from darkflow.io.hashing import file_hash``)
            for mod in list(sys.modules.values()):
                if getattr(mod, "__name__", "").startswith("darkflow") and mod is not owner:
                    if getattr(mod, attr, None) is fn:
                        setattr(mod, attr, wrapped)


def profile_child(files: dict, out: Path, extra: list[str]) -> int:
    """Run the night in this process with stage timers; print JSON on the last line."""
    t0 = time.perf_counter()
    import darkflow.cli  # the CLI's imports, as `darkflow run` pays them
    import darkflow.pipeline
    import darkflow.pipeline.jobs
    import darkflow.pipeline.lights
    import darkflow.pipeline.run
    import darkflow.verify  # noqa: F401

    timer = StageTimer()
    timer.install()
    t_import = time.perf_counter() - t0
    from darkflow.cli import main

    t1 = time.perf_counter()
    # lights in this process, so that their stages are timed (the run's parallel wall time is
    # the table's); a --workers in the extra arguments wins
    workers = [] if "--workers" in extra else ["--workers", "1"]
    rc = main(["run", files["night"], "--workdir", str(out), *workers, *extra])
    wall = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "imports_s": t_import,
                "run_s": wall,
                "rc": rc,
                "totals": timer.totals,
                "calls": timer.calls,
                "missing": timer.missing,
            }
        )
    )
    return 0


def profile(files: dict, work: Path, extra: list[str], env: dict | None = None) -> dict:
    out = work / "profile"
    shutil.rmtree(out, ignore_errors=True)
    listing = work / "profile-files.json"
    listing.write_text(json.dumps(files))
    log = work / "profile.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "profile",
        str(listing),
        str(out),
        *(["--darkflow-args", " ".join(extra)] if extra else []),
    ]
    m = measure(cmd, log=log, out=out, env=env)
    lines = log.read_text().strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"profile failed, see {log}") from None
    result["wall_s"] = m["wall_s"]
    html = work / "profile-reports"
    m = measure(
        [_venv_bin("darkflow"), "report", str(out), "--output", str(html)],
        log=work / "profile-report.log",
        out=html,
        env=env,
    )
    result["report_s"] = m["wall_s"]
    result["report_rc"] = m["rc"]
    result["report_pages"] = len(list(html.rglob("*.html"))) if html.exists() else 0
    result["workdir_bytes"] = _dir_bytes(out)
    masters = list((out / "artifacts").rglob("*.fits"))
    lights = list((out / "calibrated").rglob("*.fits"))
    result["master_bytes"] = [p.stat().st_size for p in masters]
    result["light_bytes"] = statistics.median([p.stat().st_size for p in lights]) if lights else 0
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(html, ignore_errors=True)
    return result


# ----------------------------------------------------------------------------- the benchmark
def bench_size(size: int, args, data: Path, work: Path) -> dict:
    files = simulate(data, size)
    n_dark, n_light = len(files["darks"]), len(files["lights"])
    in_bytes = sum(os.path.getsize(p) for p in files["darks"] + files["lights"])
    print(
        f"{size}: {n_dark} darks + {n_light} lights of {files['shape']} "
        f"({in_bytes / 1e6:.0f} MB) in {files['night']}",
        flush=True,
    )
    extra = args.darkflow_args.split() if args.darkflow_args else []
    tools = list(args.tools)
    variants = {t: [] for t in tools}
    for w in args.darkflow_workers:
        variants[f"darkflow-w{w}"] = ["--workers", str(w)]
        tools.append(f"darkflow-w{w}")
    envs: dict[str, dict] = {}
    if args.baseline:
        tools.insert(0, "darkflow-before")
        envs["darkflow-before"] = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}

    def command(tool: str, out: Path):
        if tool in ("darkflow", "darkflow-before"):
            return darkflow_cmd(files, out, extra)
        if tool.startswith("darkflow-w"):
            return darkflow_cmd(files, out, [*extra, *variants[tool]])
        if tool == "siril":
            return siril_cmd(files, out)
        return child_cmd(tool, files, out)

    runs: dict[str, list[dict]] = {t: [] for t in tools}
    for rep in range(-1 if args.warmup else 0, args.reps):  # rep -1: the untimed warm-up
        for tool in tools:
            out = work / f"{size}-{tool}-{rep + 1}"
            shutil.rmtree(out, ignore_errors=True)
            if tool == "siril":
                out.mkdir(parents=True)
            cmd, written = command(tool, out)
            timeout = args.timeout if tool == "ccdproc" else None
            m = measure(
                cmd,
                log=work / f"{size}-{tool}.log",
                out=written,
                timeout=timeout,
                env=envs.get(tool),
            )
            if m["rc"] != 0:
                print(f"  {tool} failed (exit {m['rc']}), see {work / f'{size}-{tool}.log'}")
            if rep >= 0:
                runs[tool].append(m)
                print(
                    f"  rep {rep + 1} {tool:<12} {m['wall_s']:7.2f} s  {m['rss_mb']:7.0f} MB  "
                    f"others {m['others_cores']:.2f} cores",
                    flush=True,
                )
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
    result = {"size": size, "files": files, "in_bytes": in_bytes, "runs": runs}
    if args.profile:
        if args.baseline:
            result["profile_before"] = profile(files, work, extra, env=envs["darkflow-before"])
        if "darkflow" in tools:
            result["profile"] = profile(files, work, extra)
    return result


def _ratio(walls: dict, tool: str, base: str) -> str:
    return f"{walls[tool] / walls[base]:.2f}x" if walls.get(base, 0) > 0 else ""


def _median(values):
    return statistics.median(values) if values else float("nan")


def table(results: list[dict], args) -> str:
    lines = [
        SECTION,
        "",
        f"One session: N darks then N lights of {EXPTIME_S:.0f} s (cooled CMOS, N.I.N.A. "
        f"style, seed {SEED}, no bias), uint16 FITS in the page cache. Whole processes, "
        f"interleaved, {args.reps} repetitions after "
        f"{'one warm-up' if args.warmup else 'no warm-up (caches warm from earlier runs)'}; "
        "median wall time (range), "
        "peak RSS, bytes written; load: 1-minute load average and the cores other processes "
        "used meanwhile (median over the repetitions).",
        "",
        "| night | tool | wall s (median) | range | vs Siril | vs floor | peak RSS MB | "
        "tree RSS MB | CPU s | written MB | load avg | others' cores | ok |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        shape = r["files"]["shape"]
        night = f"{len(r['files']['darks'])} + {len(r['files']['lights'])}, {shape[0]}x{shape[1]}"
        walls = {t: _median([m["wall_s"] for m in ms]) for t, ms in r["runs"].items()}
        for tool, ms in r["runs"].items():
            if not ms:
                continue
            w = [m["wall_s"] for m in ms]
            lines.append(
                f"| {night} | {tool} | {walls[tool]:.2f} | {min(w):.2f}-{max(w):.2f} | "
                f"{_ratio(walls, tool, 'siril')} | {_ratio(walls, tool, 'floor')} | "
                f"{_median([m['rss_mb'] for m in ms]):.0f} | "
                f"{_median([m.get('tree_mb', 0) for m in ms]):.0f} | "
                f"{_median([m['cpu_s'] for m in ms]):.1f} | "
                f"{_median([m['bytes'] for m in ms]) / 1e6:.0f} | "
                f"{_median([m['load1'] for m in ms]):.2f} | "
                f"{_median([m['others_cores'] for m in ms]):.2f} | "
                f"{'yes' if all(m['rc'] == 0 for m in ms) else 'FAILED'} |"
            )
    for r in results:
        if r.get("profile") or r.get("profile_before"):
            lines += profile_table(r)
    lines += [
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Siril "
        f"{_siril_version()}; command: `.venv/bin/python benchmarks/bench_night.py "
        f"{' '.join(sys.argv[1:])}`.",
    ]
    return "\n".join(lines) + "\n"


def profile_table(r: dict) -> list[str]:
    """Where darkflow's time goes, with the baseline's column when there is one."""
    shape = r["files"]["shape"]
    runs = [
        (name, r[key])
        for name, key in (("before", "profile_before"), ("after", "profile"))
        if r.get(key)
    ]
    head = " | ".join(f"{name} s | share" for name, _ in runs) if len(runs) > 1 else "s | share"
    lines = [
        "",
        f"**Where darkflow's time goes** ({shape[0]}x{shape[1]}, one in-process run with a timer "
        "per stage; a stage's own time, calls inside another timed stage counted there; parallel "
        "lights summed over workers): "
        + "; ".join(
            f"{name}: run {p['run_s']:.1f} s + imports {p['imports_s']:.1f} s "
            f"(whole process {p['wall_s']:.1f} s)"
            for name, p in runs
        ),
        "",
        f"| stage | {head} | calls |",
        "|---|" + "---:|---:|" * len(runs) + "---:|",
    ]
    stages = sorted(
        {s for _, p in runs for s in p["totals"]}, key=lambda s: -runs[-1][1]["totals"].get(s, 0.0)
    )
    for stage in [*stages, None]:
        cells = []
        for _, p in runs:
            total = p["run_s"]
            if stage is None:
                sec = total - sum(p["totals"].values())
            else:
                sec = p["totals"].get(stage, 0.0)
            cells.append(f"{sec:.2f} | {100 * sec / total:.0f}%")
        calls = "" if stage is None else runs[-1][1]["calls"].get(stage, 0)
        lines.append(
            f"| {stage or 'other (registry, events, glue)'} | {' | '.join(cells)} | {calls} |"
        )
    lines.append("")
    for name, p in runs:
        lines.append(
            f"- {name}: `darkflow report` (HTML) on that work directory {p['report_s']:.1f} s for "
            f"{p['report_pages']} page(s) (exit {p['report_rc']}); work directory "
            f"{p['workdir_bytes'] / 1e6:.0f} MB; master(s) "
            + ", ".join(f"{b / 1e6:.1f} MB" for b in p["master_bytes"])
            + f"; one calibrated light {p['light_bytes'] / 1e6:.1f} MB (median)."
        )
        if p.get("missing"):
            lines.append(f"- {name}: stages not found (renamed?): {', '.join(p['missing'])}.")
    return lines


@functools.lru_cache(maxsize=1)
def _siril_version() -> str:
    try:
        out = subprocess.run(
            ["siril-cli", "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return out.strip().split()[-1] if out.strip() else "?"


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (bench_trust's writer, shared)."""
    sys.path.insert(0, str(HERE))
    from bench_trust import write_section as write_results

    write_results(text.split("\n", 1)[1], RESULTS, SECTION)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["--child", "simulate"]:
        return simulate_child(Path(argv[2]), int(argv[3]))
    if argv[:1] == ["--child"]:
        tool, listing, out = argv[1], Path(argv[2]), Path(argv[3])
        if tool == "profile":
            extra = argv[5].split() if argv[4:5] == ["--darkflow-args"] else []
            return profile_child(json.loads(listing.read_text()), out, extra)
        return child(tool, listing, out)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2048,4096", help="comma list of 2048, 4096, 6388")
    p.add_argument("--big", action="store_true", help="also 6388x9576")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="no untimed warm-up round (page cache and numba cache already warm)",
    )
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--darkflow-args", default="", help="extra arguments of `darkflow run`")
    p.add_argument("--darkflow-workers", default="", help="also darkflow with --workers N,...")
    p.add_argument("--baseline", type=Path, help="source tree of darkflow-before")
    p.add_argument("--profile", action="store_true", help="per-stage profile of darkflow")
    p.add_argument("--timeout", type=float, default=1800.0, help="ccdproc time limit (s)")
    p.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "darkflow-bench-night"
    )
    p.add_argument("--keep", action="store_true", help="keep the tools' outputs")
    p.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([6388] if args.big else [])
    args.tools = [t for t in args.tools.split(",") if t]
    args.darkflow_workers = [int(w) for w in args.darkflow_workers.split(",") if w]
    if "siril" in args.tools and not shutil.which("siril-cli"):
        print("siril-cli not installed (Debian package siril): Siril left out")
        args.tools.remove("siril")
    work = args.data / "runs"
    work.mkdir(parents=True, exist_ok=True)
    results = [bench_size(size, args, args.data, work) for size in sizes]
    text = table(results, args)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

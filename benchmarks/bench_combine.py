"""Master-dark combine benchmark: darkflow vs the IO floor, numpy, astropy and ccdproc.

Usage::

    .venv/bin/python benchmarks/bench_combine.py            # 2048x2048 and 6388x9576, 20 frames
    .venv/bin/python benchmarks/bench_combine.py --quick    # 2048x2048 only
    .venv/bin/python benchmarks/bench_combine.py --sizes 1024x1024 --frames 10 --no-write

Frames are generated here with known truth (bias + dark current with a hot-pixel tail + shot
noise + read noise + single-pixel cosmic rays + a few saturated pixels, stored as unsigned
16-bit FITS) into ``benchmarks/data/`` (git-ignored; deleted afterwards unless ``--keep-data``).
Every method runs in a fresh subprocess on the same files; the time is the wall time of the
operation (imports and numba cache loading excluded, the same for every method), the peak RSS
is the child's ``ru_maxrss`` from ``os.wait4``. Methods:

* ``io-floor``: read the raw bytes of every file into memory (no decoding),
* ``np.mean``: load the stack with astropy, then ``np.mean(stack, axis=0)`` (time of the mean),
* ``astropy``: ``sigma_clip(stack, axis=0, sigma=3, maxiters=5, cenfunc='median',
  stdfunc='mad_std')`` on a float32 stack, then the masked mean (time of clip + mean),
* ``ccdproc``: ``ccdproc.combine(files, method='average', sigma_clip=True, ...)`` with a median
  centre and ``mad_std`` at 3/3 sigma (``--ccdproc-timeout`` ends it: reported as ``> limit``),
* ``darkflow``: ``combine_files(files)`` with the default noise-model clipping and
  ``--memory-limit``, and ``darkflow-mad`` (MAD scale, the astropy/ccdproc settings),
* ``darkflow-cli``: the whole ``python -m darkflow.master ... -o master.fits`` process
  (start-up, combine, atomic write).

Accuracy (vs the truth): RMS error of the master on clean pixels over the statistical floor
(per-pixel read + shot + quantisation noise / sqrt(N)), the fraction of injected cosmic-ray
values rejected (n_high covers every hit of the pixel), the worst relative error on stable hot
pixels, and the agreement of darkflow's MAD clipping with astropy's ``sigma_clip`` on a
dithered (tie-free) crop.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "RESULTS.md"
SECTION = "## Master-dark combine (`bench_combine.py`)"

BIAS_ADU = 800.0
EGAIN = 0.8  # e-/ADU
READ_NOISE_E = 3.5
EXPTIME = 300.0
DARK_E_PER_S = 0.003
HOT_FRACTION = 2e-4
CR_FRACTION = 1e-4  # pixels hit per frame
N_SATURATED = 64


# --------------------------------------------------------------------------- data
def generate(root: Path, ny: int, nx: int, n: int, seed: int = 2024) -> Path:
    """Write ``n`` uint16 dark frames of ``ny × nx`` with truth into ``root`` (reused if present)."""
    from astropy.io import fits

    root.mkdir(parents=True, exist_ok=True)
    done = root / "truth.npz"
    if done.exists():
        return root
    rng = np.random.default_rng(seed)
    npx = ny * nx
    dc_e = rng.exponential(DARK_E_PER_S * EXPTIME, npx)  # electrons per exposure
    n_hot = int(HOT_FRACTION * npx)
    hot = rng.choice(npx, n_hot, replace=False)
    dc_e[hot] = 10 ** rng.uniform(2.0, 4.3, n_hot)  # 100 .. 20000 e-: stable hot pixels
    sat = rng.choice(np.setdiff1d(np.arange(npx), hot), N_SATURATED, replace=False)
    truth = (BIAS_ADU + dc_e / EGAIN).astype(np.float64)
    cr_idx, cr_frame = [], []
    for k in range(n):
        frng = np.random.default_rng([seed, k])
        signal_e = frng.poisson(dc_e).astype(np.float64)
        n_cr = int(CR_FRACTION * npx)
        idx = frng.choice(npx, n_cr, replace=False)
        signal_e[idx] += frng.uniform(300.0, 20000.0, n_cr)  # single-pixel hits
        adu = BIAS_ADU + signal_e / EGAIN + frng.normal(0.0, READ_NOISE_E / EGAIN, npx)
        adu[sat] = 70000.0
        frame = np.clip(np.round(adu), 0, 65535).astype(np.uint16).reshape(ny, nx)
        h = fits.Header()
        h["IMAGETYP"] = "Dark Frame"
        h["EXPTIME"] = EXPTIME
        h["CCD-TEMP"] = -10.0
        h["EGAIN"] = EGAIN
        h["GAIN"] = 100
        h["INSTRUME"] = "BenchCam IMX"
        fits.PrimaryHDU(frame, h).writeto(root / f"dark_{k:03d}.fits", overwrite=True)
        cr_idx.append(idx)
        cr_frame.append(np.full(n_cr, k))
        del signal_e, adu, frame
    np.savez(
        root / "truth_tmp.npz",
        truth=truth.astype(np.float32).reshape(ny, nx),
        var=(READ_NOISE_E**2 + dc_e) / EGAIN**2 + 1 / 12,  # per-frame variance (ADU^2)
        hot=hot,
        sat=sat,
        cr_idx=np.concatenate(cr_idx),
        cr_frame=np.concatenate(cr_frame),
    )
    os.replace(root / "truth_tmp.npz", done)
    return root


def files_of(root: Path) -> list[str]:
    return sorted(str(p) for p in root.glob("dark_*.fits"))


# --------------------------------------------------------------------------- accuracy
def accuracy(root: Path, master: np.ndarray, n_high: np.ndarray | None, n: int) -> dict:
    t = np.load(root / "truth.npz")
    truth = t["truth"].ravel().astype(np.float64)
    m = np.asarray(master, dtype=np.float64).ravel()
    npx = truth.size
    clean = np.ones(npx, bool)
    clean[t["hot"]] = False
    clean[t["sat"]] = False
    clean[t["cr_idx"]] = False
    floor = math.sqrt(np.mean(t["var"][clean]) / n)
    rms = math.sqrt(np.mean((m[clean] - truth[clean]) ** 2))
    out = {"rms_over_floor": rms / floor, "floor_adu": floor}
    usable = np.ones(npx, bool)
    usable[t["sat"]] = False  # every pixel with a truth: cosmic-ray hits included
    floor_all = math.sqrt(np.mean(t["var"][usable]) / n)
    out["rms_all_over_floor"] = math.sqrt(np.mean((m[usable] - truth[usable]) ** 2)) / floor_all
    hot = t["hot"]
    hot = hot[np.isin(hot, t["cr_idx"], invert=True)]
    signal = truth[hot] - BIAS_ADU
    rel = (m[hot] - truth[hot]) / signal
    # the 1% target is meaningful where the statistical error is well below 1%: hot pixels
    # whose standard error of the mean is < 0.2 % of their dark signal (5 sigma < 1%)
    bright = np.sqrt(t["var"][hot] / n) / signal < 0.01 / 5
    out["hot_n_bright"] = int(bright.sum())
    out["hot_max_rel_err"] = float(np.max(np.abs(rel[bright]))) if bright.any() else math.nan
    out["hot_within_1pct"] = (
        float(np.mean(np.abs(rel[bright]) <= 0.01)) if bright.any() else math.nan
    )
    out["hot_bias"] = float(np.median(rel))  # signed: clipping must not bias hot pixels
    if n_high is not None:
        hits = np.bincount(t["cr_idx"], minlength=npx)
        hit = hits > 0
        hit[t["sat"]] = False
        out["cr_rejected"] = float((n_high.ravel()[hit] >= hits[hit]).mean())
    return out


# --------------------------------------------------------------------------- children
def _peak_mb() -> float:
    """Peak RSS of this process so far (taken right after the timed operation)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def child(method: str, root: Path, opts: dict) -> None:
    files = files_of(root)
    n = len(files)
    if method == "io-floor":
        sizes = [os.path.getsize(f) for f in files]
        t0 = time.perf_counter()
        bufs = []
        for f, s in zip(files, sizes, strict=True):
            buf = np.empty(s, np.uint8)
            with open(f, "rb", buffering=0) as fh:
                fh.readinto(memoryview(buf))
            bufs.append(buf)
        _report({"seconds": time.perf_counter() - t0, "op_peak_mb": _peak_mb()})
        return
    if method == "io-stream":  # pure read bandwidth: every file through one reused buffer
        sizes = [os.path.getsize(f) for f in files]
        buf = np.zeros(max(sizes), np.uint8)  # touched before the clock starts
        t0 = time.perf_counter()
        for f, s in zip(files, sizes, strict=True):
            with open(f, "rb", buffering=0) as fh:
                fh.readinto(memoryview(buf)[:s])
        _report({"seconds": time.perf_counter() - t0, "op_peak_mb": _peak_mb()})
        return
    if method in ("np.mean", "astropy"):
        from astropy.io import fits

        first = fits.getdata(files[0])
        stack = np.empty((n, *first.shape), np.float32 if method == "astropy" else np.uint16)
        for k, f in enumerate(files):
            stack[k] = fits.getdata(f)
        if method == "np.mean":
            t0 = time.perf_counter()
            master = np.mean(stack, axis=0)
            res = {"seconds": time.perf_counter() - t0, "op_peak_mb": _peak_mb()}
            del stack
            _report({**res, **accuracy(root, master, None, n)})
            return
        from astropy.stats import sigma_clip

        t0 = time.perf_counter()
        clipped = sigma_clip(
            stack,
            sigma=3,
            maxiters=5,
            cenfunc="median",
            stdfunc="mad_std",
            axis=0,
            masked=False,
            copy=False,
        )
        master = np.empty(first.shape, np.float64)
        for r0 in range(0, first.shape[0], 256):  # masked mean in row chunks (bounded memory)
            master[r0 : r0 + 256] = np.nanmean(clipped[:, r0 : r0 + 256], axis=0)
        res = {"seconds": time.perf_counter() - t0, "op_peak_mb": _peak_mb()}
        t = np.load(root / "truth.npz")
        keep = np.isin(t["cr_idx"], t["sat"], invert=True)
        gone = np.isnan(clipped.reshape(n, -1)[t["cr_frame"][keep], t["cr_idx"][keep]])
        res["cr_rejected"] = float(gone.mean())
        del clipped, stack
        _report({**res, **accuracy(root, master, None, n)})
        return
    if method == "ccdproc":
        import warnings

        import ccdproc
        from astropy.stats import mad_std

        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        ccd = ccdproc.combine(
            files,
            method="average",
            sigma_clip=True,
            sigma_clip_low_thresh=3,
            sigma_clip_high_thresh=3,
            sigma_clip_func=np.ma.median,
            sigma_clip_dev_func=mad_std,
            mem_limit=opts["ccdproc_mem_limit"],
            unit="adu",
        )
        res = {"seconds": time.perf_counter() - t0, "op_peak_mb": _peak_mb()}
        _report({**res, **accuracy(root, np.asarray(ccd.data), None, n)})
        return
    if method.startswith("darkflow"):
        from darkflow.config import CombineConfig
        from darkflow.master import combine_files

        scale = "mad" if method == "darkflow-mad" else "noise"
        config = CombineConfig(memory_limit=opts["memory_limit"], scale=scale)
        _warmup(root.parent / "_warmup", config)
        t0 = time.perf_counter()
        m = combine_files(files, config=config)
        res = {"seconds": time.perf_counter() - t0, "op_peak_mb": _peak_mb()}
        res.update(
            band_rows=m.provenance["execution"]["band_rows"],
            n_bands=m.provenance["execution"]["n_bands"],
        )
        res.update(accuracy(root, m.data, m.n_high, n))
        if opts.get("agree") and scale == "mad":
            res.update(agreement(files))
        _report(res)
        return
    raise SystemExit(f"unknown method {method}")


def _warmup(warm: Path, config) -> None:
    """Load the cached numba kernels once (same signatures as the real run)."""
    from astropy.io import fits

    from darkflow.master import combine_files

    warm.mkdir(exist_ok=True)
    paths = []
    for k in range(3):
        p = warm / f"w{k}.fits"
        if not p.exists():
            fits.PrimaryHDU(np.full((8, 8), 100 + k, np.uint16)).writeto(p)
        paths.append(p)
    combine_files(paths, config=config)


def agreement(files: list[str], size: int = 256) -> dict:
    """darkflow (MAD scale) vs astropy sigma_clip on a dithered, tie-free crop."""
    from astropy.io import fits
    from astropy.stats import sigma_clip

    from darkflow import stats as K

    rng = np.random.default_rng(0)
    crop = np.stack([fits.getdata(f)[:size, :size].astype(np.float64) for f in files])
    crop += rng.uniform(-0.5, 0.5, crop.shape)  # break the ties of integer data
    clipped = sigma_clip(crop, sigma=3, maxiters=5, cenfunc="median", stdfunc="mad_std", axis=0)
    out = K.empty_planes((size, size))
    K.combine_band(crop, out, hot_thr=np.full(len(files), np.inf), mode=K.MODE_MAD, max_iters=5)
    same_mask = out["n_used"] == (~clipped.mask).sum(axis=0)
    diff = np.abs(out["mean"] - clipped.mean(axis=0).filled(np.nan))
    return {
        "astropy_same_mask": float(same_mask.mean()),
        "astropy_max_mean_diff": float(np.nanmax(diff)),
    }


# --------------------------------------------------------------------------- parent
def run_child(method: str, root: Path, opts: dict, timeout: float | None) -> dict:
    if method == "darkflow-cli":
        _warm_cli(root)
        cmd = [
            sys.executable,
            "-m",
            "darkflow.master",
            *files_of(root),
            "-o",
            str(root / "cli_master.fits"),
            "--memory-limit",
            opts["memory_limit"],
            "-q",
        ]
    else:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            method,
            "--dir",
            str(root),
            "--opts",
            json.dumps(opts),
        ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent
    )
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if timeout is not None and time.perf_counter() - t0 > timeout:
            os.kill(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.communicate()
    result = {"method": method, "peak_rss_mb": usage.ru_maxrss / 1024, "process_seconds": wall}
    if timed_out:
        result.update(seconds=None, timed_out=True, limit=timeout)
        return result
    if proc.returncode != 0:
        result.update(seconds=None, error=(err.strip().splitlines() or ["?"])[-1])
        return result
    if method == "darkflow-cli":
        result["seconds"] = wall
        return result
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    result.update(json.loads(line[7:]))
    result["process_peak_mb"] = result["peak_rss_mb"]  # includes the accuracy check afterwards
    result["peak_rss_mb"] = result.pop("op_peak_mb")
    return result


def _warm_cli(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", "import darkflow.master"],
        check=True,
        cwd=HERE.parent,
        capture_output=True,
    )


def fmt_time(r: dict) -> str:
    if r.get("timed_out"):
        return f"> {r['limit']:.0f}"
    if r.get("seconds") is None:
        return "failed"
    return f"{r['seconds']:.2f}"


def table(results: dict, args) -> str:
    lines = [
        "| size | method | wall s | peak RSS MB | time / darkflow | RSS / darkflow | RMS err / floor (clean px) | RMS err / floor (all px) | CR rejected | hot max rel err (bright) | hot median bias |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, rows in results.items():
        ref = next((r for r in rows if r["method"] == "darkflow"), None)
        for r in rows:
            t = fmt_time(r)
            tr = (
                f"{r['seconds'] / ref['seconds']:.2f}"
                if ref and ref.get("seconds") and r.get("seconds")
                else (f"> {r['limit'] / ref['seconds']:.0f}" if r.get("timed_out") and ref else "")
            )
            mr = f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}" if ref else ""
            acc = [
                f"{r['rms_over_floor']:.3f}" if "rms_over_floor" in r else "",
                f"{r['rms_all_over_floor']:.3f}" if "rms_all_over_floor" in r else "",
                f"{100 * r['cr_rejected']:.3f}%" if "cr_rejected" in r else "",
                f"{100 * r['hot_max_rel_err']:.2f}% (n={r['hot_n_bright']})"
                if "hot_max_rel_err" in r
                else "",
                f"{100 * r['hot_bias']:+.3f}%" if "hot_bias" in r else "",
            ]
            lines.append(
                f"| {size} | {r['method']} | {t} | {r['peak_rss_mb']:.0f} | {tr} | {mr} | "
                + " | ".join(acc)
                + " |"
            )
    return "\n".join(lines)


def summary(results: dict, args) -> str:
    out = []
    for size, rows in results.items():
        by = {r["method"]: r for r in rows}
        df, io, cc = by.get("darkflow"), by.get("io-floor"), by.get("ccdproc")
        ny, nx = (int(v) for v in size.split("x"))
        if df and df.get("seconds"):
            budget = _size_mb(args.memory_limit) + 3 * 4 * ny * nx / 2**20
            parts = [
                f"**{size}**: darkflow {df['seconds']:.2f}s, {df['band_rows']}-row bands x {df['n_bands']}"
            ]
            if io and io.get("seconds"):
                parts.append(f"{df['seconds'] / io['seconds']:.2f}x the IO floor (target <= 2)")
            st = by.get("io-stream")
            if st and st.get("seconds"):
                parts.append(f"{df['seconds'] / st['seconds']:.2f}x the read-bandwidth floor")
            if "hot_within_1pct" in df:
                parts.append(
                    f"{100 * df['hot_within_1pct']:.2f}% of {df['hot_n_bright']} measurable hot "
                    "pixels within 1%"
                )
            if cc and cc.get("seconds"):
                parts.append(
                    f"ccdproc/darkflow {cc['seconds'] / df['seconds']:.0f}x (target >= 20)"
                )
            elif cc and cc.get("timed_out"):
                parts.append(f"ccdproc > {cc['limit'] / df['seconds']:.0f}x (stopped at the limit)")
            parts.append(
                f"peak RSS {df['peak_rss_mb']:.0f} MB vs budget {args.memory_limit} + 3 planes = {budget:.0f} MB"
            )
            dm = by.get("darkflow-mad")
            if dm and "astropy_same_mask" in dm:
                parts.append(
                    f"MAD clipping vs astropy sigma_clip (dithered {256}x{256} crop): "
                    f"{100 * dm['astropy_same_mask']:.2f}% same kept count, "
                    f"max |mean diff| {dm['astropy_max_mean_diff']:.1e} ADU"
                )
            out.append("- " + "; ".join(parts))
    return "\n".join(out)


def _size_mb(text: str) -> float:
    sys.path.insert(0, str(HERE.parent))
    from darkflow.config import parse_size

    return parse_size(text) / 2**20


def write_results(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION in old:
        start = old.index(SECTION)
        nxt = old.find("\n## ", start + len(SECTION))
        old = old[:start].rstrip() + ("\n\n" + old[nxt + 1 :] if nxt != -1 else "\n")
    RESULTS.write_text(old.rstrip() + "\n\n" + text.rstrip() + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2048x2048 only")
    p.add_argument("--sizes", default="2048x2048,6388x9576")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--memory-limit", default="1GB")
    p.add_argument(
        "--methods",
        default="io-floor,io-stream,np.mean,astropy,ccdproc,darkflow,darkflow-mad,darkflow-cli",
    )
    p.add_argument(
        "--ccdproc-timeout", type=float, default=900.0, help="seconds (default %(default)s)"
    )
    p.add_argument("--ccdproc-mem-limit", type=float, default=4e9, help="ccdproc mem_limit bytes")
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--keep-data", action="store_true")
    p.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--opts", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--generate", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.generate:
        ny, nx = (int(v) for v in args.generate.split("x"))
        generate(args.dir, ny, nx, args.frames)
        return 0
    if args.child:
        child(args.child, args.dir, json.loads(args.opts))
        return 0
    sizes = ["2048x2048"] if args.quick else args.sizes.split(",")
    methods = args.methods.split(",")
    opts = {
        "memory_limit": args.memory_limit,
        "ccdproc_mem_limit": args.ccdproc_mem_limit,
        "agree": True,
    }
    results: dict[str, list[dict]] = {}
    load = os.getloadavg()
    try:
        for size in sizes:
            ny, nx = (int(v) for v in size.split("x"))
            root = args.data_dir / f"{size}_{args.frames}"
            t0 = time.perf_counter()
            # in a child: the parent stays small, so forked children do not inherit its RSS
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--generate",
                    size,
                    "--frames",
                    str(args.frames),
                    "--dir",
                    str(root),
                ],
                check=True,
            )
            print(f"[{size}] data ready ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
            rows = []
            for method in methods:
                timeout = args.ccdproc_timeout if method == "ccdproc" else None
                r = run_child(method, root, opts, timeout)
                print(
                    f"[{size}] {method}: {fmt_time(r)} s, {r['peak_rss_mb']:.0f} MB {r.get('error', '')}",
                    file=sys.stderr,
                )
                rows.append(r)
            results[size] = rows
            if not args.keep_data:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if not args.keep_data:
            shutil.rmtree(args.data_dir / "_warmup", ignore_errors=True)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = "\n".join(
        [
            SECTION,
            "",
            f"{args.frames} uint16 frames per size, warm page cache, 2 shared cores; memory limit "
            f"{args.memory_limit}; ccdproc mem_limit {args.ccdproc_mem_limit:.0e} B, timeout "
            f"{args.ccdproc_timeout:.0f} s. Load before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"after: `{uptime}`.",
            "",
            table(results, args),
            "",
            summary(results, args),
            "",
            "Times are the operation only (fresh process per method, imports and numba cache "
            "excluded); `darkflow-cli` is the whole process (start-up + combine + atomic write). "
            "np.mean and astropy times exclude loading the stack (see io-floor for that). Peak "
            "RSS: the child's `ru_maxrss` right after the timed operation (stack loading "
            "included, the accuracy check afterwards excluded); `darkflow-cli`: whole process. "
            "Hot-pixel error: max over the stable hot pixels whose statistical error is < 0.2 % "
            "(n = how many), and the median signed error over all hot pixels. io-floor reads "
            "every file into fresh memory (page allocation included, slow on this VM); "
            "io-stream reads them through one reused buffer (pure read bandwidth).",
        ]
    )
    print(text)
    if not args.no_write:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

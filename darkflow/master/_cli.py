"""``darkflow combine FILE... -o master.fits``: the command-line face of the combine."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from darkflow.config import (
    MASTER_PLANE_KEYS,
    CombineConfig,
    OutputConfig,
    parse_size,
)
from darkflow.config_args import add_combine_arguments, temperature_tolerance_c
from darkflow.exceptions import DarkflowError, IncompatibleFramesError, OutputError

__all__ = [
    "add_combine_arguments",
    "build_parser",
    "check_combine_inputs",
    "main_combine",
    "run_combine",
    "temperature_tolerance_c",
]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str = "darkflow combine") -> argparse.ArgumentParser:
    """The argument parser of ``darkflow combine`` run on its own (``python -m darkflow.master``)."""
    p = _Parser(
        prog=prog,
        description="Combine dark (or bias) frames into a robust master, streaming row bands.",
    )
    add_combine_arguments(p)
    return p


def main_combine(argv: Sequence[str] | None = None) -> int:
    """Run ``darkflow combine``; return the exit code (0 ok, 2 bad input or options).

    Expected errors (unreadable or incompatible frames, too few frames, bad options, output not
    writable) print one line on stderr; there is no traceback.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    return run_combine(args, prog=parser.prog)


def check_combine_inputs(
    files: Sequence[str], *, allow_duplicates: bool = False, allow_mixed: bool = False
) -> None:
    """Refuse a set that is not one master's worth of frames, naming the frames.

    Raises :class:`IncompatibleFramesError` for a file given twice or two files of identical
    content (unless ``allow_duplicates``), and for different set-points or a sensor temperature
    further than :func:`temperature_tolerance_c` from the median (unless ``allow_mixed``).
    Files that cannot be read are left to the combine, which names them.
    """
    from darkflow.ingest.catalog import scan
    from darkflow.io.hashing import file_hash

    paths = [Path(f) for f in files]
    if not allow_duplicates:
        seen: dict[str, Path] = {}
        dup: list[tuple[str, str]] = []
        for path in paths:
            try:
                key = file_hash(path)
            except OSError:
                continue
            if key not in seen:
                seen[key] = path
            elif os.path.realpath(path) == os.path.realpath(seen[key]):
                dup.append((str(path), "the same file again"))
            else:
                dup.append((str(path), f"the same bytes as {seen[key]}"))
        if dup:
            raise IncompatibleFramesError(
                f"{len(dup)} duplicate frame(s) among {len(paths)} (--allow-duplicates keeps them)",
                dup,
            )
    if allow_mixed:
        return
    cat = scan([p for p in paths if p.is_file()], workers=1)
    if cat.empty:
        return
    names = [str(p) for p in cat["path"]]
    sets = Counter(round(float(v), 1) for v in cat["set_temp_c"] if pd.notna(v))
    if len(sets) > 1:
        counts = ", ".join(f"{n} at {v:g} °C" for v, n in sorted(sets.items()))
        raise IncompatibleFramesError(
            f"frames of {len(sets)} set-points ({counts}): one master is one set-point; combine "
            "each set on its own (--allow-mixed-temperature combines them anyway)"
        )
    temps = pd.to_numeric(cat["ccd_temp_c"], errors="coerce")
    if temps.notna().sum() >= 2:
        median, tol = float(temps.median()), temperature_tolerance_c()
        far = [
            (name, f"sensor {t:.1f} °C, median {median:.1f} °C")
            for name, t in zip(names, temps, strict=True)
            if pd.notna(t) and abs(t - median) > tol
        ]
        if far:
            raise IncompatibleFramesError(
                f"sensor temperatures {temps.min():.1f} to {temps.max():.1f} °C: {len(far)} frame(s)"
                f" more than {tol:.1f} °C from the median (--allow-mixed-temperature combines "
                "them anyway)",
                far,
            )


def run_combine(args: argparse.Namespace, *, prog: str = "darkflow combine") -> int:
    """Combine ``args.files`` into ``args.output`` as the command line asked; the exit code."""
    from darkflow.master._combine import combine_files
    from darkflow.master._fitsio import write_master

    try:
        parse_size(args.memory_limit)
        out_path = Path(args.output)
        if out_path.exists() and not args.overwrite:
            raise OutputError(f"{out_path} exists (--overwrite replaces it)")
        if any(Path(f).resolve() == out_path.resolve() for f in args.files):
            raise OutputError(f"{out_path} is one of the input frames")
        check_combine_inputs(
            args.files,
            allow_duplicates=args.allow_duplicates,
            allow_mixed=args.allow_mixed_temperature,
        )
        config = CombineConfig(
            sigma_low=args.sigma_low,
            sigma_high=args.sigma_high,
            max_iters=args.max_iters,
            scale=args.scale,
            memory_limit=args.memory_limit,
        )
        t0 = time.perf_counter()
        master = combine_files(args.files, config=config, bias=args.bias, allow_few=args.allow_few)
        planes = (
            OutputConfig(**dict.fromkeys(MASTER_PLANE_KEYS, args.planes)) if args.planes else None
        )
        out = write_master(master, args.output, output=planes)
    except DarkflowError as err:
        print(f"{prog}: error: {err}".splitlines()[0] + _more(err), file=sys.stderr)
        return 2
    if not args.quiet:
        st, m = master.stats, master.meta

        def num(key: str) -> str:
            value = st.get(key)
            return "n/a" if value is None else f"{value:.2f}"

        print(
            f"{out}: {m.frame_kind} master of {m.n_frames} frames, "
            f"{master.shape[1]}x{master.shape[0]}, exptime {m.exptime_s:g}s, "
            f"median {num('median')} ADU, noise {num('noise_adu')} ADU, "
            f"clipped {st.get('clipped_fraction', 0):.3%}, {st.get('n_hot_stable')} stable hot, "
            f"{st.get('n_saturated')} saturated, {time.perf_counter() - t0:.2f}s"
        )
    return 0


def _more(err: Exception) -> str:
    odd = getattr(err, "odd_frames", None)
    if odd:
        names = ", ".join(f"{p} ({why})" for p, why in odd[:5])
        return f": {names}" + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
    return ""

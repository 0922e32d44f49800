"""``darkflow combine FILE... -o master.fits``: the command-line face of the combine."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from darkflow.config import MASTER_PLANE_KEYS, PLANE_MODES, CombineConfig, OutputConfig, parse_size
from darkflow.exceptions import DarkflowError

__all__ = ["build_parser", "main_combine"]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str = "darkflow combine") -> argparse.ArgumentParser:
    """The argument parser of ``darkflow combine`` (the maintainer's CLI may reuse it)."""
    p = _Parser(
        prog=prog,
        description="Combine dark (or bias) frames into a robust master, streaming row bands.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="input FITS frames")
    p.add_argument("-o", "--output", required=True, help="output master FITS file")
    d = CombineConfig()
    p.add_argument(
        "--memory-limit", default=d.memory_limit, help="e.g. 64MB, 1GB (default %(default)s)"
    )
    p.add_argument("--sigma-low", type=float, default=d.sigma_low, help="default %(default)s")
    p.add_argument("--sigma-high", type=float, default=d.sigma_high, help="default %(default)s")
    p.add_argument("--max-iters", type=int, default=d.max_iters, help="default %(default)s")
    p.add_argument(
        "--scale", choices=("noise", "mad", "std"), default=d.scale, help="default %(default)s"
    )
    p.add_argument("--bias", metavar="MASTER_BIAS", help="subtract this master bias")
    p.add_argument(
        "--planes", choices=PLANE_MODES, default=None,
        help="how the uncertainty, count, persistence and saturation planes are written "
        "(default: as [output] defaults: compressed; docs/master.md)",
    )  # fmt: skip
    p.add_argument(
        "--allow-few", action="store_true", help=f"allow fewer than {d.min_frames} frames"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def main_combine(argv: Sequence[str] | None = None) -> int:
    """Run ``darkflow combine``; return the exit code (0 ok, 2 bad input or options).

    Expected errors (unreadable or incompatible frames, too few frames, bad options, output not
    writable) print one line on stderr; there is no traceback.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    from darkflow.master._combine import combine_files
    from darkflow.master._fitsio import write_master

    try:
        parse_size(args.memory_limit)
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
        print(f"{parser.prog}: error: {err}".splitlines()[0] + _more(err), file=sys.stderr)
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

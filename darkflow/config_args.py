"""The options of ``darkflow combine``, kept apart from the combine itself: the CLI builds its
one parser without importing the master engine (astropy, numba kernels, pandas), so commands
that need none of it (``status``, ``quarantine``) start fast."""

from __future__ import annotations

import argparse
import math

from darkflow.config import PLANE_MODES, CombineConfig, MatchingConfig

__all__ = ["add_combine_arguments", "temperature_tolerance_c"]


def temperature_tolerance_c(matching: MatchingConfig | None = None) -> float:
    """Largest distance of a frame's sensor temperature from the set's median for one master.

    The dark-current mismatch the matching gate accepts (``max_dark_mismatch`` at the doubling
    temperature) plus three standard deviations of one temperature reading.
    """
    m = matching or MatchingConfig()
    return m.doubling_temp_c * math.log2(1 + m.max_dark_mismatch) + 3 * m.temp_reading_sigma_c


def add_combine_arguments(p: argparse.ArgumentParser, *, quiet: bool = True) -> None:
    """The options of ``darkflow combine`` (``quiet=False`` where the caller has a global -q)."""
    p.add_argument("files", nargs="+", metavar="FILE", help="input FITS frames")
    p.add_argument("-o", "--output", required=True, help="output master FITS file")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
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
        "--planes",
        choices=PLANE_MODES,
        default=None,
        help="how the uncertainty, count, persistence and saturation planes are written "
        "(default: as [output] defaults: compressed; docs/master.md)",
    )
    p.add_argument(
        "--allow-few", action="store_true", help=f"allow fewer than {d.min_frames} frames"
    )
    p.add_argument(
        "--allow-mixed-temperature",
        action="store_true",
        help="combine frames of different set-points, or sensor temperatures further from their "
        f"median than {temperature_tolerance_c():.1f} °C (refused by default: their dark current "
        "differs by more than the matching gate accepts)",
    )
    p.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="combine even when a file is given twice or two files have the same content "
        "(refused by default: a repeated frame is counted as independent evidence)",
    )
    if quiet:
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

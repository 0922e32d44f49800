"""Command-line face of the simulator.

The maintainer's ``darkflow simulate OUT --preset NAME --seed N [--overwrite]`` calls
:func:`cli_simulate`; ``python -m darkflow.simulate`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from darkflow.exceptions import DarkflowError

__all__ = ["build_parser", "cli_simulate", "main"]


def cli_simulate(
    out: str | Path,
    preset: str = "demo",
    seed: int = 0,
    overwrite: bool = False,
    *,
    write_sky_truth: bool | None = None,
    quiet: bool = False,
) -> int:
    """Simulate a night for the command line; return the process exit code.

    Prints a one-screen summary on stdout (unless ``quiet``) and errors on stderr.

    Returns
    -------
    int
        0 on success, 2 when the request is invalid or the output cannot be written.
    """
    from darkflow.simulate.night import simulate_night

    overrides = {} if write_sky_truth is None else {"write_sky_truth": write_sky_truth}
    started = time.perf_counter()
    try:
        manifest = simulate_night(out, preset, seed, overwrite=overwrite, **overrides)
    except DarkflowError as err:
        print(f"darkflow simulate: error: {err}", file=sys.stderr)
        return 2
    if not quiet:
        print(manifest.summary())
        print(f"({time.perf_counter() - started:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m darkflow.simulate``."""
    from darkflow.simulate.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="python -m darkflow.simulate",
        description="Write a simulated night of FITS frames with its ground truth.",
    )
    parser.add_argument("out", help="output directory (missing, empty or a previous simulation)")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a previous simulation")
    parser.add_argument(
        "--no-sky-truth", action="store_true", help="do not write the noiseless sky of lights"
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m darkflow.simulate``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return cli_simulate(
        args.out,
        args.preset,
        args.seed,
        args.overwrite,
        write_sky_truth=False if args.no_sky_truth else None,
        quiet=args.quiet,
    )

"""``python -m darkflow.ingest.catalog DIR... [--format table|csv|json]`` (also
``python -m darkflow.catalog``): the catalog of FITS headers on standard output, as
``darkflow scan`` prints it, without the ``darkflow`` command's configuration handling."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import pandas as pd

from darkflow.exceptions import DarkflowError
from darkflow.ingest._formats import format_catalog

__all__ = ["main"]


def main(argv: Sequence[str] | None, scan: Callable[..., pd.DataFrame]) -> int:
    """Parse ``argv``, catalog the inputs with ``scan`` (the catalog's own, passed in by
    :func:`darkflow.ingest.catalog.main` so that this module sits beside it, not above it) and
    print them; returns the exit code (2 on a darkflow error, named on standard error)."""
    parser = argparse.ArgumentParser(
        prog="python -m darkflow.catalog", description="Scan FITS headers and print the catalog."
    )
    parser.add_argument("inputs", nargs="+", help="FITS files or directories")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--workers", type=int, default=None, help="reader threads")
    args = parser.parse_args(argv)
    try:
        df = scan(args.inputs, workers=args.workers)
        sys.stdout.write(format_catalog(df, args.format))
    except DarkflowError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    return 0

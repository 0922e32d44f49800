"""The ``darkflow`` command line.

Each subcommand is a thin handler over the public API. Heavy modules (numba kernels, holoviews,
papermill) are imported inside the handlers, so ``darkflow --help`` and ``darkflow scan`` start
fast. Logging is configured here and nowhere in the library.

Exit statuses (the README lists them too): 0 done; 1 done, but a night or a report failed
(``nightly``, ``report``); 2 error: bad arguments, input or configuration, a full disk, an
unreachable or lost Dask cluster (one line on stderr says which; nothing is lost); 3 done, but
some lights were quarantined (``run``/``nightly --strict``); 130 interrupted (Ctrl-C); 143
terminated (SIGTERM). A run that stops early is recorded ``failed`` or ``interrupted``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from darkflow._version import __version__
from darkflow.exceptions import DarkflowError

__all__ = ["build_parser", "main"]

log = logging.getLogger("darkflow")

Handler = Callable[[argparse.Namespace], int]


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * verbosity
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("darkflow")
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.DEBUG))
    root.propagate = False


def _load_config(args: argparse.Namespace):
    from darkflow.config import Config

    return Config.load(getattr(args, "config", None))


# ----------------------------------------------------------------------------- handlers
def _cmd_simulate(args: argparse.Namespace) -> int:
    from darkflow.simulate import simulate_night

    manifest = simulate_night(
        args.out, preset=args.preset, seed=args.seed, overwrite=args.overwrite
    )
    print(manifest.summary())
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from darkflow.catalog import format_catalog, scan

    catalog = scan(args.inputs, config=_load_config(args).ingest)
    sys.stdout.write(format_catalog(catalog, args.format))
    return 0


def _cmd_combine(args: argparse.Namespace) -> int:
    from darkflow.master import main_combine

    return main_combine(args.combine_argv)


#: exit status of ``run``/``nightly --strict`` when the run completed but quarantined lights
EXIT_QUARANTINED = 3


def _executor(args: argparse.Namespace, config):
    from darkflow.pipeline import make_executor

    timeout = getattr(args, "dask_timeout", None) or config.pipeline.dask_timeout_s
    return make_executor(
        config.pipeline.executor,
        scheduler=args.scheduler or config.pipeline.scheduler,
        workers=args.workers or config.pipeline.workers or None,
        timeout_s=timeout,
    )


def _strict_status(args: argparse.Namespace, quarantined: int) -> int:
    if args.strict and quarantined:
        print(f"--strict: {quarantined} light(s) quarantined", file=sys.stderr)
        return EXIT_QUARANTINED
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from darkflow.model import LightStatus
    from darkflow.pipeline import run_night
    from darkflow.progress import ConsoleProgress

    config = _load_config(args)
    if args.memory_limit:
        config = config.with_overrides(combine={"memory_limit": args.memory_limit})
    executor = _executor(args, config)
    try:
        result = run_night(
            args.inputs,
            workdir=args.workdir,
            config=config,
            progress=None if args.quiet else ConsoleProgress(sys.stderr),
            executor=executor,
        )
    finally:
        executor.close()
    print(result.summary())
    return _strict_status(args, result.lights[LightStatus.QUARANTINED])


def _cmd_nightly(args: argparse.Namespace) -> int:
    from darkflow.model import LightStatus
    from darkflow.nightly import run_nightly
    from darkflow.progress import ConsoleProgress

    config = _load_config(args)
    executor = _executor(args, config)
    try:
        result = run_nightly(
            args.input_root,
            workdir=args.workdir,
            reports=args.reports,
            config=config,
            progress=None if args.quiet else ConsoleProgress(sys.stderr),
            executor=executor,
            workers=args.report_workers,
            force=args.force,
            nights=args.night,
            write_reports=not args.no_reports,
        )
    finally:
        executor.close()
    print(result.summary())
    print(f"\nOpen {result.index} in a browser (works offline).")
    if not result.ok:
        return 1
    runs = [r for r in result.runs.values() if not isinstance(r, str)]
    return _strict_status(args, sum(r.lights[LightStatus.QUARANTINED] for r in runs))


def _cmd_plan(args: argparse.Namespace) -> int:
    from darkflow.pipeline import plan_night

    config = _load_config(args)
    plan = plan_night(args.inputs, workdir=args.workdir, config=config)
    sys.stdout.write(plan.format(args.format, config))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from darkflow.status import format_status

    sys.stdout.write(format_status(args.workdir, fmt=args.format))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from darkflow.integrity import format_verify, verify_workdir

    report = verify_workdir(args.workdir, repair=not args.dry_run)
    sys.stdout.write(format_verify(report, args.format))
    return report.exit_status


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from darkflow.quarantine import format_queue, quarantine_queue

    queue = quarantine_queue(args.workdir, night=args.night, include_degraded=args.degraded)
    sys.stdout.write(format_queue(queue, fmt=args.format))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from darkflow.progress import ConsoleProgress
    from darkflow.report import build_reports

    reports = build_reports(
        args.workdir, output=args.output, sessions=args.session, workers=args.workers,
        force=args.force, progress=None if args.quiet else ConsoleProgress(sys.stderr),
    )  # fmt: skip
    print(reports.summary())
    if reports.index is not None:
        print(f"\nOpen {reports.index} in a browser (works offline).")
    return 0 if all(s["ok"] for s in reports.sessions) else 1


# ----------------------------------------------------------------------------- parser
def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="run jobs on this Dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=int,
                   help="calibrate lights in N parallel processes (default: one per core; same "
                        "bytes whatever N); with [pipeline] executor = 'dask': a local Dask "
                        "cluster of N workers")  # fmt: skip
    p.add_argument("--dask-timeout", type=float, metavar="S",
                   help="seconds to reach the Dask scheduler and for a worker to join, and "
                        "without scheduler or workers mid-run, before an error "
                        "(default: [pipeline] dask_timeout_s, 30)")  # fmt: skip
    p.add_argument("--strict", action="store_true",
                   help=f"exit with status {EXIT_QUARANTINED} when the run completed but some "
                        "lights were quarantined")  # fmt: skip


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's timeout, `kill`) ends the run like Ctrl-C: recorded, not left
    ``running``."""
    raise SystemExit(128 + signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darkflow",
        description="Automated, measurable, auditable dark-frame calibration.",
    )
    parser.add_argument("--version", action="version", version=f"darkflow {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = add("simulate", _cmd_simulate, "write a simulated night of FITS frames with ground truth")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--preset", default="demo", help="night preset (tiny, demo, night, ...)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous simulation in OUT")

    p = add("scan", _cmd_scan, "read FITS headers and print the catalog")
    p.add_argument("inputs", nargs="+", type=Path, help="files or directories (recursive)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--config", type=Path, help="darkflow TOML configuration")

    p = add(
        "combine",
        _cmd_combine,
        "combine darks (or biases) into a master: darkflow combine FILE... -o master.fits",
    )
    p.add_argument("combine_argv", nargs=argparse.REMAINDER, help="see darkflow combine --help")

    p = add("run", _cmd_run, "calibrate a night: scan, masters, match, subtract, reports")
    p.add_argument("inputs", nargs="+", type=Path, help="files or directories of a night")
    p.add_argument("--workdir", "-w", type=Path, required=True, help="work directory")
    p.add_argument("--config", type=Path, help="darkflow TOML configuration")
    p.add_argument("--memory-limit", help="memory budget of the master combine, e.g. 1GB")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _add_run_options(p)

    p = add(
        "nightly",
        _cmd_nightly,
        "calibrate every night under INPUT_ROOT and write the nightly HTML reports",
    )
    p.add_argument("input_root", type=Path,
                   help="a camera folder, a night folder or an archive of nights: nights come "
                   "from the frames' dates; only new or changed nights are calibrated")  # fmt: skip
    p.add_argument("--workdir", "-w", type=Path, required=True, help="work directory")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="report directory")
    p.add_argument("--config", type=Path, help="darkflow TOML configuration")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _add_run_options(p)
    p.add_argument("--report-workers", type=int, default=2, help="notebooks run in parallel")
    p.add_argument("--force", action="store_true",
                   help="calibrate the nights again even when nothing changed (cached jobs are "
                   "still reused; `darkflow verify` checks artifacts)")  # fmt: skip
    p.add_argument(
        "--no-reports",
        action="store_true",
        help="calibrate only (and write the index); a later pass builds the reports",
    )
    p.add_argument(
        "--night",
        action="append",
        metavar="YYYY-MM-DD",
        help="only this night (repeatable; default: every night under INPUT_ROOT)",
    )

    p = add("plan", _cmd_plan, "print the deterministic job plan (keys, inputs, cached or not)")
    p.add_argument("inputs", nargs="+", type=Path, help="files or directories of a night")
    p.add_argument("--workdir", "-w", type=Path, required=True, help="work directory")
    p.add_argument("--config", type=Path, help="darkflow TOML configuration")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = add("status", _cmd_status, "summarise the registry of a work directory")
    p.add_argument("workdir", type=Path)
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = add("verify", _cmd_verify,
            "re-hash every artifact of a work directory against its registry; set aside and "
            "forget the damaged ones (the next run rebuilds them). Exit status: 0 intact, "
            "1 problems found, 2 error")  # fmt: skip
    p.add_argument("workdir", type=Path)
    p.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = add("quarantine", _cmd_quarantine,
            "list the lights and masters that could not be calibrated well, with causes, "
            "the triage checklist and acquisition advisories")  # fmt: skip
    p.add_argument("workdir", type=Path)
    p.add_argument("--night", help="only this night (default: every night of the work directory)")
    p.add_argument("--degraded", action="store_true", help="include the degraded lights")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = add("report", _cmd_report, "write the HTML reports of a work directory")
    p.add_argument("workdir", type=Path)
    p.add_argument("--output", "-o", type=Path, default=Path("reports"), help="report directory")
    p.add_argument("--session", action="append", help="only this session (repeatable)")
    p.add_argument("--workers", type=int, default=2, help="pages rendered in parallel")
    p.add_argument("--force", action="store_true",
                   help="render every page, also those whose inputs did not change")  # fmt: skip
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from darkflow._threads import prefer_safe_threading_layer

    prefer_safe_threading_layer()  # before numba is imported: TBB can spin at exit
    argv = list(sys.argv[1:] if argv is None else argv)
    # `combine` owns its own option parser (darkflow.master.main_combine); pass everything through.
    if argv and argv[0] == "combine":
        argv = ["combine", "--", *argv[1:]] if "--" not in argv[1:2] else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "combine_argv", None) and args.combine_argv[:1] == ["--"]:
        args.combine_argv = args.combine_argv[1:]
    _configure_logging(args.verbose)
    from darkflow.io.paths import ERRORS

    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print as \xNN
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ERRORS)
    previous = None
    if args.command in ("run", "nightly") and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args)
    except DarkflowError as err:
        print(f"darkflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the environment (permissions, a vanished directory): one line
        print(f"darkflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from darkflow.io.atomic import is_disk_full

        if not is_disk_full(err):  # SQLite's "database or disk is full" is not an OSError
            raise
        print(f"darkflow {args.command}: error: disk full: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

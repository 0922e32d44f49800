"""The ``darkflow`` command line.

Each subcommand is a thin handler over the public API. Heavy modules (numba kernels, holoviews,
papermill) are imported inside the handlers, so ``darkflow --help`` and ``darkflow scan`` start
fast. Logging is configured here and nowhere in the library.

Global options (``-v``, ``-q``, ``--progress``) are accepted before or after the subcommand.
Bad input is found before any work starts and reported in one line with exit status 2.

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
from darkflow.exceptions import ConfigError, DarkflowError

__all__ = ["build_parser", "main"]

log = logging.getLogger("darkflow")

Handler = Callable[[argparse.Namespace], int]


def _configure_logging(verbosity: int) -> None:
    level = min(logging.WARNING - 10 * verbosity, logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("darkflow")
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.DEBUG))
    root.propagate = False


def _load_config(args: argparse.Namespace):
    from darkflow.config import Config

    return Config.load(getattr(args, "config", None))


def _progress(args: argparse.Namespace):
    """The progress display the options ask for, or None (``-q``, ``--progress never``)."""
    from darkflow.pipeline.progress import ConsoleProgress

    if args.quiet or args.progress == "never":
        return None
    return ConsoleProgress(
        sys.stderr, summary_only=args.progress == "auto" and not sys.stderr.isatty()
    )


def _check_workdir(path: Path, *, option: str = "--workdir", must_exist: bool = False) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a directory")
    if must_exist and not path.exists():
        raise ConfigError(f"{path} does not exist")


def _check_inputs(paths: Sequence[Path], *, frames_only: bool) -> None:
    """Every input exists; with ``frames_only``, a file must be a FITS frame."""
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{path} does not exist")
        if frames_only and path.is_file() and not _is_fits(path):
            raise ConfigError(f"{path} is neither a FITS frame nor a folder of frames")


def _is_fits(path: Path) -> bool:
    import gzip

    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
        if head[:2] == b"\x1f\x8b":  # a gzipped FITS file
            with gzip.open(path, "rb") as fh:
                head = fh.read(9)
    except OSError:
        return True  # unreadable: the scan records why
    return head == b"SIMPLE  ="


# ----------------------------------------------------------------------------- handlers
def _cmd_simulate(args: argparse.Namespace) -> int:
    from darkflow.simulate import simulate_night

    manifest = simulate_night(
        args.out, preset=args.preset, seed=args.seed, overwrite=args.overwrite
    )
    print(manifest.summary())
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from darkflow.ingest.catalog import format_catalog, scan

    _check_inputs(args.inputs, frames_only=False)
    catalog = scan(args.inputs, config=_load_config(args).ingest)
    sys.stdout.write(format_catalog(catalog, args.format))
    return 0


def _cmd_combine(args: argparse.Namespace) -> int:
    from darkflow.master._cli import run_combine

    return run_combine(args)


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

    _check_workdir(args.workdir)
    _check_inputs(args.inputs, frames_only=True)
    config = _load_config(args)
    if args.memory_limit:
        config = config.with_overrides(combine={"memory_limit": args.memory_limit})
    executor = _executor(args, config)
    try:
        result = run_night(
            args.inputs,
            workdir=args.workdir,
            config=config,
            progress=_progress(args),
            executor=executor,
        )
    finally:
        executor.close()
    print(result.summary())
    return _strict_status(args, result.lights[LightStatus.QUARANTINED])


def _cmd_nightly(args: argparse.Namespace) -> int:
    from darkflow.model import LightStatus
    from darkflow.report.nightly import run_nightly

    _check_workdir(args.workdir)
    _check_workdir(args.reports, option="--reports")
    _check_inputs([args.input_root], frames_only=True)
    config = _load_config(args)
    executor = _executor(args, config)
    try:
        result = run_nightly(
            args.input_root,
            workdir=args.workdir,
            reports=args.reports,
            config=config,
            progress=_progress(args),
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

    _check_workdir(args.workdir)
    _check_inputs(args.inputs, frames_only=True)
    config = _load_config(args)
    plan = plan_night(args.inputs, workdir=args.workdir, config=config)
    sys.stdout.write(plan.format(args.format, config))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from darkflow.report.status import format_status

    _check_workdir(args.workdir, option="work directory", must_exist=True)
    sys.stdout.write(format_status(args.workdir, fmt=args.format))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from darkflow.registry.integrity import format_verify, verify_workdir

    _check_workdir(args.workdir, option="work directory", must_exist=True)
    report = verify_workdir(args.workdir, repair=not args.dry_run)
    sys.stdout.write(format_verify(report, args.format))
    return report.exit_status


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from darkflow.report.quarantine import format_queue, quarantine_queue

    _check_workdir(args.workdir, option="work directory", must_exist=True)
    queue = quarantine_queue(args.workdir, night=args.night, include_degraded=args.degraded)
    sys.stdout.write(format_queue(queue, fmt=args.format))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from darkflow.report import build_reports

    _check_workdir(args.workdir, option="work directory", must_exist=True)
    _check_workdir(args.output, option="--output")
    if args.session:
        _check_sessions(args.workdir, args.session)
    reports = build_reports(
        args.workdir,
        output=args.output,
        sessions=args.session,
        workers=args.workers,
        force=args.force,
        progress=_progress(args),
    )
    print(reports.summary())
    if reports.index is not None:
        print(f"\nOpen {reports.index} in a browser (works offline).")
    return 0 if all(s["ok"] for s in reports.sessions) else 1


def _check_sessions(workdir: Path, wanted: Sequence[str]) -> None:
    """Each ``--session`` names a session (or ``night/session``) of the work directory."""
    from darkflow.report.results import Workdir

    known = Workdir(workdir).sessions()
    names = {s for _, s in known} | {f"{n}/{s}" for n, s in known}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        listed = ", ".join(f"{n}/{s}" for n, s in known) or "none"
        raise ConfigError(
            f"no session {', '.join(map(repr, unknown))} in {workdir}; sessions: {listed}"
        )


def _cmd_config(args: argparse.Namespace) -> int:
    from darkflow.config_defaults import format_defaults

    if args.defaults:
        sys.stdout.write(format_defaults())
        return 0
    config = _load_config(args)  # the effective configuration: validated, defaults filled in
    sys.stdout.write(_as_toml(config.to_dict()))
    return 0


def _as_toml(sections: dict) -> str:
    from darkflow.config_defaults import _toml_value

    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            lines.append(
                f"# {key} =  (unset)" if value is None else f"{key} = {_toml_value(value)}"
            )
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- parser
def _count(text: str) -> int:
    """A count of things that must be at least one (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _global_options(*, after: bool) -> argparse.ArgumentParser:
    """-v/-q/--progress, accepted before the subcommand and after it.

    After the subcommand they go to other attributes (``argparse`` would otherwise let the
    subcommand's defaults overwrite what was given before it); :func:`main` adds them up.
    """
    g = argparse.ArgumentParser(add_help=False)
    sfx = "_after" if after else ""
    opts = g.add_argument_group("global options (before or after the command)")
    opts.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest="verbose" + sfx,
        help="more log output (-vv: debug)",
    )
    opts.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        dest="quiet" + sfx,
        help="no progress output (-qq: errors only)",
    )
    opts.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default=argparse.SUPPRESS if after else "auto",
        dest="progress",
        help="progress lines: 'auto' (default) updates one line per stage on a "
        "terminal and prints one line per finished stage otherwise (a pipe, a log "
        "file); 'always' also prints every 10%% to a pipe; 'never'",
    )
    return g


class _Parser(argparse.ArgumentParser):
    """argparse whose errors end with a pointer to --help (status 2, one line)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="run jobs on this Dask scheduler (tcp://host:8786)")
    p.add_argument(
        "--workers",
        type=_count,
        help="calibrate lights in N parallel processes (default: one per core; same "
        "bytes whatever N); with [pipeline] executor = 'dask': a local Dask "
        "cluster of N workers",
    )
    p.add_argument(
        "--dask-timeout",
        type=_seconds,
        metavar="S",
        help="seconds to reach the Dask scheduler and for a worker to join, and "
        "without scheduler or workers mid-run, before an error "
        "(default: [pipeline] dask_timeout_s, 30)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit with status {EXIT_QUARANTINED} when the run completed but some "
        "lights were quarantined",
    )


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's timeout, `kill`) ends the run like Ctrl-C: recorded, not left
    ``running``."""
    raise SystemExit(128 + signum)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``darkflow`` command, every subcommand included."""
    parser = _Parser(
        prog="darkflow",
        description="Automated, measurable, auditable dark-frame calibration.",
        parents=[_global_options(after=False)],
    )
    parser.add_argument("--version", action="version", version=f"darkflow {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    after = _global_options(after=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[after])
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
    from darkflow.config_args import add_combine_arguments

    add_combine_arguments(p, quiet=False)

    p = add(
        "run",
        _cmd_run,
        "calibrate a night: scan, build masters, match, subtract, check; writes the "
        "calibrated frames and frame_report.csv, masters.csv, catalog.csv in the work "
        "directory (HTML reports: `darkflow report` or `darkflow nightly`)",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="files or directories of a night")
    p.add_argument("--workdir", "-w", type=Path, required=True, help="work directory")
    p.add_argument("--config", type=Path, help="darkflow TOML configuration")
    p.add_argument("--memory-limit", help="memory budget of the master combine, e.g. 1GB")
    _add_run_options(p)

    p = add(
        "nightly",
        _cmd_nightly,
        "calibrate every night under INPUT_ROOT and write the nightly HTML reports",
    )
    p.add_argument(
        "input_root",
        type=Path,
        help="a camera folder, a night folder or an archive of nights: nights come "
        "from the frames' dates; only new or changed nights are calibrated",
    )
    p.add_argument("--workdir", "-w", type=Path, required=True, help="work directory")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="report directory")
    p.add_argument("--config", type=Path, help="darkflow TOML configuration")
    _add_run_options(p)
    p.add_argument("--report-workers", type=_count, default=2, help="notebooks run in parallel")
    p.add_argument(
        "--force",
        action="store_true",
        help="calibrate the nights again even when nothing changed (cached jobs are "
        "still reused; `darkflow verify` checks artifacts)",
    )
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

    p = add(
        "verify",
        _cmd_verify,
        "re-hash every artifact of a work directory against its registry; set aside and "
        "forget the damaged ones (the next run rebuilds them). Exit status: 0 intact, "
        "1 problems found, 2 error",
    )
    p.add_argument("workdir", type=Path)
    p.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = add(
        "quarantine",
        _cmd_quarantine,
        "list the lights and masters that could not be calibrated well, with causes, "
        "the triage checklist and acquisition advisories",
    )
    p.add_argument("workdir", type=Path)
    p.add_argument("--night", help="only this night (default: every night of the work directory)")
    p.add_argument("--degraded", action="store_true", help="include the degraded lights")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = add("report", _cmd_report, "write the HTML reports of a work directory")
    p.add_argument("workdir", type=Path)
    p.add_argument("--output", "-o", type=Path, default=Path("reports"), help="report directory")
    p.add_argument("--session", action="append", help="only this session (repeatable)")
    p.add_argument("--workers", type=_count, default=2, help="pages rendered in parallel")
    p.add_argument(
        "--force",
        action="store_true",
        help="render every page, also those whose inputs did not change",
    )

    p = add(
        "config",
        _cmd_config,
        "print the configuration: every key with its default and what it means "
        "(--defaults), or the effective configuration of --config FILE",
    )
    p.add_argument(
        "--defaults",
        action="store_true",
        help="every key with its default value and a comment, as a darkflow.toml "
        "(docs/darkflow.example.toml)",
    )
    p.add_argument("--config", type=Path, help="darkflow TOML configuration to check and show")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``darkflow`` command with ``argv`` (default: the process arguments); return its exit
    status."""
    from darkflow._threads import prefer_safe_threading_layer

    prefer_safe_threading_layer()  # before numba is imported: TBB can spin at exit
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose += args.verbose_after
    args.quiet += args.quiet_after
    _configure_logging(args.verbose - max(args.quiet - 1, 0))
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

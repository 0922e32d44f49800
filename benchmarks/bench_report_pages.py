"""CPU seconds per report page, per notebook cell, in one warm process (no kernel).

Usage::

    python benchmarks/bench_report_pages.py WORKDIR [--night N] [--out DIR] [--repeat 1]

Renders every session page of ``WORKDIR`` (and each night's overview) the way a report
worker does (:func:`darkflow.report.render_page`, forced), after one warm-up page that pays
the imports, and prints the CPU seconds (``time.process_time``) of each code cell, of the
export and of the whole page, plus the page's size. Also prints the load of the machine.
The pages go to ``--out`` (a temporary folder by default), never to a reports folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--night")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from darkflow.report import SESSION_NOTEBOOK, _render, _worker_start, notebook_path, render_page
    from darkflow.report.results import Workdir

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-pages-"))
    wd = Workdir(args.workdir)
    sessions = [(n, s) for n, s in wd.sessions() if args.night in (None, n)]
    source = notebook_path(SESSION_NOTEBOOK)
    print(f"load before: {os.getloadavg()[0]:.2f}")
    _worker_start()  # as a report worker starts: imports, shell, templates

    # per-cell CPU time: wrap the shell's run_cell
    shell = _render.report_shell()
    cell_times: list[float] = []
    original = shell.run_cell

    def timed(*a, **k):
        t0 = time.process_time()
        try:
            return original(*a, **k)
        finally:
            cell_times.append(time.process_time() - t0)

    shell.run_cell = timed

    def page(night: str, session: str) -> tuple[float, float, list[float], int]:
        html = out / night / f"{session}.html"
        parameters = {
            "workdir": str(Path(args.workdir).resolve()),
            "night": night,
            "session": session,
            "output": str(html.resolve()),
        }
        cell_times.clear()
        c0, w0 = time.process_time(), time.perf_counter()
        result = render_page(
            source,
            html,
            parameters,
            title=f"{night} {session}",
            keep_notebook=out / night / f"{session}.ipynb",
        )
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        assert result.ok, result.error
        return cpu, wall, list(cell_times), html.stat().st_size

    page(*sessions[0])  # warm-up: imports, templates, numba caches
    for _ in range(args.repeat):
        for night, session in sessions:
            cpu, wall, cells, size = page(night, session)
            detail = " ".join(f"{c:.2f}" for c in cells)
            print(
                f"{session:<40} cpu {cpu:5.2f} s  wall {wall:5.2f} s  "
                f"{size / 1e6:5.2f} MB  cells: {detail}"
            )
    print(f"load after: {os.getloadavg()[0]:.2f}; pages in {out}")


if __name__ == "__main__":
    main()

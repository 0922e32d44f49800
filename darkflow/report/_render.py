"""Run a report notebook without a kernel: its code cells in an IPython shell of this process.

The notebooks stay the single source of each report (a reader can open and run them in
JupyterLab); here their code runs in an in-process :class:`ReportShell` that records what each
cell displays (display data, the value of its last expression, printed text, an error) as
notebook outputs, exactly the outputs a kernel would send, so nbconvert exports the same page.
No kernel is started, and holoviews, bokeh and panel are imported once for every page a process
renders; each page gets a fresh namespace.

Parameters are injected the way papermill does it: a cell tagged ``injected-parameters`` after
the cell tagged ``parameters``. A cell that raises stops the notebook; the executed part is kept,
the error is the failing cell's output and a first cell says where it failed.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NotebookError", "report_shell", "run_notebook"]


class NotebookError(Exception):
    """A cell of a report notebook raised: ``ename``, ``evalue`` like papermill's error."""

    def __init__(self, ename: str, evalue: str, cell: int):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.cell = ename, evalue, cell


def _shell_classes():
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from nbformat.v4 import new_output

    class _Publisher(DisplayPublisher):
        """``display(...)``: a display_data output of the running cell."""

        outputs: list | None = None

        def publish(
            self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs
        ):
            if self.outputs is None or update:  # a static page shows each output once
                return
            self.outputs.append(
                new_output("display_data", data=dict(data), metadata=dict(metadata or {}))
            )

        def clear_output(self, wait=False):
            if self.outputs is not None:
                self.outputs.clear()

    class _Hook(DisplayHook):
        """The value of a cell's last expression: its execute_result output."""

        outputs: list | None = None

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            if self.outputs is not None:
                self.outputs.append(
                    new_output(
                        "execute_result",
                        data=dict(format_dict),
                        metadata=dict(md_dict or {}),
                        execution_count=self.prompt_count,
                    )
                )

        def finish_displayhook(self):
            pass

    class ReportShell(InteractiveShell):
        """An IPython shell that records outputs instead of printing them (no terminal)."""

        display_pub_class = _Publisher
        displayhook_class = _Hook
        error: tuple[str, str, list[str]] | None = None

        def _showtraceback(self, etype, evalue, stb):
            self.error = (etype.__name__, str(evalue), list(stb))

    return ReportShell


_SHELL: Any = None


def report_shell():
    """The process's report shell (created on first use; IPython allows one shell per process).

    Raises
    ------
    RuntimeError
        This process already runs another IPython shell (a Jupyter kernel): render the reports
        in a worker process instead (:func:`darkflow.report.build_reports` does).
    """
    global _SHELL
    if _SHELL is None:
        from IPython import get_ipython
        from traitlets.config import Config

        if get_ipython() is not None:
            raise RuntimeError("an IPython shell already runs in this process")
        cls = _shell_classes()
        config = Config()
        config.HistoryManager.enabled = False
        # no output cache (Out, _, __): a page never reads it, and with it every page's fresh
        # namespace (``reset``) began with a full garbage collection (~0.3 s of CPU a page)
        config.InteractiveShell.cache_size = 0
        config.InteractiveShell.colors = "NoColor"
        config.InteractiveShell.xmode = "Context"
        _SHELL = cls.instance(config=config)
    return _SHELL


class _Stream(io.TextIOBase):
    """sys.stdout / sys.stderr of a running cell: stream outputs, consecutive text merged."""

    def __init__(self, name: str, outputs: list):
        self.name, self.outputs = name, outputs

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from nbformat.v4 import new_output

        if not text:
            return 0
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last.get("output_type") == "stream" and last.name == self.name:
            last.text += text
        else:
            self.outputs.append(new_output("stream", name=self.name, text=text))
        return len(text)


def _inject(nb, parameters: Mapping[str, Any]) -> None:
    """Papermill's convention: a cell tagged ``injected-parameters`` after ``parameters``."""
    from nbformat.v4 import new_code_cell

    lines = ["# Parameters"] + [f"{k} = {v!r}" for k, v in parameters.items()]
    cell = new_code_cell("\n".join(lines) + "\n")
    cell.metadata["tags"] = ["injected-parameters"]
    at = next(
        (i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 0
    )
    nb.cells.insert(at, cell)


def run_notebook(
    source: str | Path, parameters: Mapping[str, Any], *, cwd: str | Path | None = None
) -> tuple[Any, NotebookError | None]:
    """Execute ``source`` with ``parameters`` in the report shell; return (notebook, error).

    The notebook comes back with every executed cell's outputs (what a kernel would have sent);
    ``error`` is ``None``, or the first cell's error (later cells are not run).
    """
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_output

    shell = report_shell()
    nb = nbformat.read(str(source), as_version=4)
    _inject(nb, parameters)
    shell.reset(new_session=False)  # a fresh namespace per page
    shell.execution_count = 1
    error: NotebookError | None = None
    old_cwd = Path.cwd()
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            import os

            os.chdir(cwd)
            stack.callback(os.chdir, old_cwd)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            outputs: list = []
            shell.display_pub.outputs = shell.displayhook.outputs = outputs
            shell.error = None
            try:
                with (
                    contextlib.redirect_stdout(_Stream("stdout", outputs)),
                    contextlib.redirect_stderr(_Stream("stderr", outputs)),
                ):
                    count = shell.execution_count
                    shell.run_cell(cell.source, store_history=True)
            finally:
                shell.display_pub.outputs = shell.displayhook.outputs = None
            cell.outputs = outputs
            cell.execution_count = count
            if shell.error is not None:
                ename, evalue, stb = shell.error
                outputs.append(new_output("error", ename=ename, evalue=evalue, traceback=stb))
                error = NotebookError(ename, evalue, index)
                break
    if error is not None:  # as papermill: say at the top where it failed
        note = new_markdown_cell(
            f'<span style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; '
            f'font-size:2em;">An Exception was encountered at cell {error.cell}: '
            f"{error.ename}.</span>"
        )
        note.metadata["tags"] = ["papermill-error-cell-tag"]
        nb.cells.insert(0, note)
    sys.stdout.flush()
    return nb, error

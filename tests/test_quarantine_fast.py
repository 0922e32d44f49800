"""`darkflow quarantine W` without pandas, scipy or the pipeline: the same text, read fast."""

import subprocess
import sys
from pathlib import Path

from darkflow import triage
from darkflow.report.quarantine import format_queue, quarantine_queue


def test_reason_table_is_current():
    path = Path(triage.__file__).with_name("_table.py")
    assert path.read_text(encoding="utf-8") == triage.reason_table_source(), (
        "darkflow/triage/_table.py is stale: run "
        "python -c 'import darkflow.triage as t; t.write_reason_table()'"
    )
    assert set(triage._table_texts()) == set(triage.reason_texts())


def test_a_stale_table_is_not_used(monkeypatch):
    from darkflow.triage import _table as _reason_table

    monkeypatch.setattr(_reason_table, "FINGERPRINT", "0" * 16)
    assert triage._table_texts() is None
    monkeypatch.setattr(_reason_table, "TEXTS", {})
    triage._reason_texts.cache_clear()
    try:
        assert triage._description("no_candidate") == triage.reason_texts()["no_candidate"]
    finally:
        triage._reason_texts.cache_clear()


def test_quarantine_imports_no_heavy_module(tiny_run):
    workdir, _, _ = tiny_run
    code = (
        "import sys, io, contextlib\n"
        "from darkflow.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['quarantine', {str(workdir)!r}]) == 0\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pandas', 'scipy', 'astropy')\n"
        "         or m.startswith(('darkflow.matching._index', 'darkflow.matching._match',\n"
        "                          'darkflow.exposure.laws', 'darkflow.pipeline', 'darkflow.verify'))]\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_table_from_text_rows_equals_the_table_from_typed_rows(tiny_run):
    """The table is printed from the files' text; the typed tables (set back into the queue)
    give the same text."""
    workdir, _, _ = tiny_run
    for degraded in (False, True):
        queue = quarantine_queue(workdir, include_degraded=degraded)
        text = format_queue(queue)
        again = quarantine_queue(workdir, include_degraded=degraded)
        again.lights, again.masters = queue.lights.copy(), queue.masters.copy()
        assert format_queue(again) == text

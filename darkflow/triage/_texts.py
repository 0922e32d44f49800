"""The one-line description of every reason code: from the generated ``_table.py`` while it is
current (``darkflow quarantine`` then imports no stage), else from the reason enums.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable


def reason_texts() -> dict[str, str]:
    """Every reason code darkflow can attach, with its one-line description."""
    return dict(_imported_reason_texts())


@functools.cache
def _reason_texts() -> dict[str, str]:
    """From the generated table while the files defining the codes are those it was made from
    (importing them pulls in pandas, scipy and the pipeline: most of ``darkflow quarantine``'s
    time), else from the enums themselves."""
    table = _table_texts()
    return table if table is not None else _imported_reason_texts()


@functools.cache
def _imported_reason_texts() -> dict[str, str]:
    # the stages below that define reason enums, imported here (not at the top) because they
    # pull in pandas, scipy and astropy, which ``darkflow quarantine`` does without; the order
    # is the order their enums are defined in, which decides the few codes two stages share
    import darkflow.ingest.headers.reasons
    import darkflow.matching._records
    import darkflow.triage.reasons
    import darkflow.verify._metrics  # noqa: F401
    from darkflow.model import ReasonCode

    out: dict[str, str] = {}
    pending = list(ReasonCode.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for member in cls:
            out.setdefault(str(member), member.description)
    return dict(sorted(out.items()))


def _sources_fingerprint(files: Iterable[str]) -> str | None:
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent  # darkflow/: FILES are relative to it
    h = hashlib.sha256()
    for name in files:
        try:
            h.update(name.encode() + b"\0" + (root / name).read_bytes())
        except OSError:
            return None
    return h.hexdigest()[:16]


def _table_texts() -> dict[str, str] | None:
    try:
        from darkflow.triage import _table as table
    except ImportError:
        return None
    if _sources_fingerprint(table.FILES) != table.FINGERPRINT:
        return None
    return dict(table.TEXTS)


def reason_table_source() -> str:
    """The text of ``darkflow/triage/_table.py`` for the code as it is now."""
    import inspect
    import json
    import subprocess
    import sys
    from pathlib import Path

    from darkflow.model import ReasonCode

    # in a new process importing what ``darkflow quarantine`` imported before it read the
    # table: a few codes have one description per stage (``invalid_exposure``, ``unreadable``,
    # ``output_failed``) and which one wins depends on the order the enums were defined in
    code = (
        "import json, sys, darkflow.matching, darkflow.report.results, darkflow.triage as t; "
        "json.dump(t._imported_reason_texts(), sys.stdout)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    texts = json.loads(out.stdout)
    _imported_reason_texts()
    root = Path(__file__).resolve().parent.parent
    files: set[str] = set()
    pending = list(ReasonCode.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        files.add(Path(inspect.getsourcefile(cls) or "").resolve().relative_to(root).as_posix())
    ordered = tuple(sorted(files))
    lines = [
        '"""Every reason code and its description, for ``darkflow.triage`` without importing the',
        "modules that define them. Generated: regenerate with",
        "``python -c 'import darkflow.triage as t; t.write_reason_table()'``; used only while",
        '``FINGERPRINT`` matches the files ``FILES``."""',
        "",
        "# fmt: off",
        f"FILES = {ordered!r}",
        f"FINGERPRINT = {_sources_fingerprint(ordered)!r}",
        "TEXTS = {",
        *(f"    {k!r}: {v!r}," for k, v in texts.items()),
        "}",
        "",
    ]
    return "\n".join(lines)


def write_reason_table() -> None:
    """(Re)write ``darkflow/triage/_table.py`` from the reason enums."""
    from pathlib import Path

    from darkflow.io.atomic import atomic_path

    path = Path(__file__).resolve().parent / "_table.py"
    with atomic_path(path) as tmp:
        tmp.write_text(reason_table_source(), encoding="utf-8")


def _description(code: str) -> str:
    texts = _reason_texts()
    if code not in texts:  # a code the generated table does not know: ask the enums
        texts = _imported_reason_texts()
    return texts.get(code, "")

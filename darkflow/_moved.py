"""Old import paths of the modules that moved into the stage packages.

``import darkflow.catalog`` (and ``from darkflow.catalog import ...``, and
``python -m darkflow.catalog``) still work and give the very module object that lives at its new
home, so code written against the old layout, monkeypatching included, behaves as before. The
table is the only place that knows the old names; nothing in darkflow, its tests, notebooks or
benchmarks uses them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["MOVED", "install"]

MOVED: dict[str, str] = {
    "darkflow.hashing": "darkflow.io.hashing",
    "darkflow.cfa": "darkflow.stats.cfa",
    "darkflow._keywords": "darkflow.ingest._keywords",
    "darkflow.headers": "darkflow.ingest.headers",
    "darkflow.catalog": "darkflow.ingest.catalog",
    "darkflow.scaling": "darkflow.exposure.laws",
    "darkflow.gain": "darkflow.subtract.gain",
    "darkflow.photometry": "darkflow.verify.photometry",
    "darkflow.viz_extra": "darkflow.viz.extra",
    "darkflow.master_args": "darkflow.config_args",
    "darkflow.progress": "darkflow.pipeline.progress",
    "darkflow.events": "darkflow.registry.events",
    "darkflow.integrity": "darkflow.registry.integrity",
    "darkflow._render": "darkflow.report._render",
    "darkflow._page_inputs": "darkflow.report._page_inputs",
    "darkflow.results": "darkflow.report.results",
    "darkflow.nightly": "darkflow.report.nightly",
    "darkflow.status": "darkflow.report.status",
    "darkflow.quarantine": "darkflow.report.quarantine",
    "darkflow._reason_table": "darkflow.triage._table",
    "darkflow.pipeline.reasons": "darkflow.triage.reasons",
}
"""Old module (or package) name -> new name; a package's submodules follow it."""


def _target(name: str) -> str | None:
    """The new name of old module ``name``, or None when it did not move."""
    head, tail = name, ""
    while head:
        new = MOVED.get(head)
        if new is not None:
            return new + tail
        head, _, last = head.rpartition(".")
        tail = f".{last}{tail}"
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the module already imported under its new name."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import machinery stamped the old name's spec on the module: give it back its own
        module.__spec__ = self._spec

    def get_code(self, fullname: str):
        """The code of the new module, for ``python -m <old name>`` (runpy)."""
        spec = importlib.util.find_spec(self.target)
        return spec.loader.get_code(self.target)

    def is_package(self, fullname: str) -> bool:
        spec = importlib.util.find_spec(self.target)
        return spec.submodule_search_locations is not None


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of moved modules (first on ``sys.meta_path``, so the path finder
    never loads a second copy of a moved module under an old package's ``__path__``)."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("darkflow."):
            return None
        new = _target(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder of old names first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())

"""ipywidgets explorers for JupyterLab, built on darkflow's public API and the work directory.

ipywidgets is imported lazily: ``import widgets`` works without it, and using an explorer without
it gives a clear :class:`darkflow.exceptions.MissingDependencyError`.

In a notebook::

    from widgets import Explorer
    Explorer("demo/work", session="zwo-asi2600mm-pro")

Layers: :mod:`widgets.data` prepares (pandas/numpy, no ipywidgets: re-run a master, compare two
masters, inspect a light), :mod:`widgets.metrics` holds the pluggable acceptance metrics,
:mod:`darkflow.viz` / :mod:`darkflow.viz_extra` make the holoviews elements and
:mod:`widgets.explorer` shows them (``Explorer`` and its panels ``MasterPanel``, ``RerunPanel``,
``ComparePanel``, ``LightPanel``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Explorer": "widgets.explorer",
    "MasterPanel": "widgets.explorer",
    "RerunPanel": "widgets.explorer",
    "ComparePanel": "widgets.explorer",
    "LightPanel": "widgets.explorer",
    "compare_masters": "widgets.data",
    "inspect_light": "widgets.data",
    "rerun_master": "widgets.data",
    "register_metric": "widgets.metrics",
    "compute_metrics": "widgets.metrics",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

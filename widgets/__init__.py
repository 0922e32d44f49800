"""ipywidgets explorers for JupyterLab, built on darkflow's public API and the work directory.

The folder is ``widgets/`` in the repository (the design card's layout) but the package installs as
``darkflow_widgets`` (a top-level ``widgets`` would collide with other distributions); import it by
that name everywhere, also in the source tree and the tests. Inside the package, imports are relative,
so the code does not depend on the name it is imported under.

ipywidgets is imported lazily: ``import darkflow_widgets`` works without it, and using an explorer without
it gives a clear :class:`darkflow.exceptions.MissingDependencyError`.

In a notebook::

    from darkflow_widgets import Explorer
    Explorer("demo/work", session="zwo-asi2600mm-pro")

Layers: :mod:`darkflow_widgets.data` prepares (pandas/numpy, no ipywidgets: re-run a master, compare two
masters, inspect a light), :mod:`darkflow_widgets.metrics` holds the pluggable acceptance metrics,
:mod:`darkflow.viz` / :mod:`darkflow.viz.extra` make the holoviews elements and
:mod:`darkflow_widgets.explorer` shows them (``Explorer`` and its panels ``MasterPanel``, ``RerunPanel``,
``ComparePanel``, ``LightPanel``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Explorer": ".explorer",
    "MasterPanel": ".explorer",
    "RerunPanel": ".explorer",
    "ComparePanel": ".explorer",
    "LightPanel": ".explorer",
    "compare_masters": ".data",
    "inspect_light": ".data",
    "rerun_master": ".data",
    "register_metric": ".metrics",
    "compute_metrics": ".metrics",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

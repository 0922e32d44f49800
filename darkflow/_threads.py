"""numba's threading layer for darkflow's command line.

numba takes the first layer it can load from ``NUMBA_THREADING_LAYER_PRIORITY`` (default
``tbb omp workqueue``). With a system TBB (Debian's ``libtbb``) it takes TBB, and on a loaded
machine a process can then spin in TBB's finalisation for minutes after its work is done
(``sched_yield`` in ``tbb::finalize``, numba issue 10556). The command line therefore prefers
OpenMP, then numba's own workqueue, TBB last, unless the user chose a layer
(``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY`` set). Outputs do not depend on
the layer: the kernels' results are deterministic whatever the threads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["PRIORITY", "prefer_safe_threading_layer"]

#: the order darkflow's command line asks numba to try its threading layers in
PRIORITY = "omp workqueue tbb"


def prefer_safe_threading_layer(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``NUMBA_THREADING_LAYER_PRIORITY`` to :data:`PRIORITY` unless the user chose a layer.

    Set in the environment, so worker processes (started afterwards) inherit it; when numba is
    already imported its configuration is updated too (it takes effect if no parallel kernel
    has run yet). Returns whether the priority was set.
    """
    env = os.environ if environ is None else environ
    if "NUMBA_THREADING_LAYER" in env or "NUMBA_THREADING_LAYER_PRIORITY" in env:
        return False
    env["NUMBA_THREADING_LAYER_PRIORITY"] = PRIORITY
    config = getattr(sys.modules.get("numba"), "config", None)
    if environ is None and config is not None and hasattr(config, "THREADING_LAYER_PRIORITY"):
        config.THREADING_LAYER_PRIORITY = PRIORITY.split()
    return True

"""Exposure laws: how a master's dark signal scales with exposure time.

``laws``: per-pixel-population linearity (hot, warm, glow) measured over the masters of a
configuration (``_linearity``), the glow model (``_glow``), the hot-pixel reference and the
per-master summaries (``_reference``) on the smooth-level image tools (``_grid``), and the
scale / interpolate / reject decision they support; every name is importable from ``laws``. Matching (:mod:`darkflow.matching`) consults them; the dark model
(:mod:`darkflow.subtract`) applies them.
"""

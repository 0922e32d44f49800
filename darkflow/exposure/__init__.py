"""Exposure laws: how a master's dark signal scales with exposure time.

``laws``: per-pixel-population linearity (hot, warm, glow) measured over the masters of a
configuration, the glow model, the hot-pixel reference, and the scale / interpolate / reject
decision they support. Matching (:mod:`darkflow.matching`) consults them; the dark model
(:mod:`darkflow.subtract`) applies them.
"""

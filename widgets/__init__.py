"""ipywidgets explorers for JupyterLab, built on darkflow's public API and the work directory.

ipywidgets is imported lazily: ``import widgets`` works without it, and using an explorer without
it gives a clear :class:`darkflow.exceptions.MissingDependencyError`.
"""

__all__: list[str] = []

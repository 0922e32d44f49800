"""Names of a package imported on first use (PEP 562), so that importing the package, or one of
its light modules, does not pay for the heavy ones (astropy, numba kernels, scipy) until a
caller needs them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any], listed: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps each lazy name to its
    submodule (relative to ``package``, or an absolute ``darkflow.`` name for a name the package
    re-exports from a lower package); a name once loaded is kept in ``namespace`` (the
    package's globals). ``listed``: further names ``dir()`` shows (``__all__``)."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            home = homes[name]
            module = home if home.startswith("darkflow.") else f"{package}.{home}"
            value = getattr(importlib.import_module(module), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes, *listed})

    return __getattr__, __dir__

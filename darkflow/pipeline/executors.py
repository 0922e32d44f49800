"""Where jobs run: in this process (default) or on a Dask distributed cluster.

Both return results in the order of the specs. Outputs do not depend on the executor: a job's
bytes depend only on its inputs and configuration (the master kernels are deterministic for any
thread count), and every result is registered by the driver in plan order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from darkflow.exceptions import ConfigError, MissingDependencyError

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "make_executor"]

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")
ProgressFn = Callable[[str, int, int], None]


class Executor(Protocol):
    name: str

    def map(
        self, fn: Callable[[S], R], specs: Sequence[S], *, stage: str, progress: ProgressFn
    ) -> list[R]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Run jobs one after the other in this process (the numba kernels use all cores)."""

    name = "local"

    def map(self, fn, specs, *, stage, progress):
        results = []
        for i, spec in enumerate(specs):
            progress(stage, i, len(specs))
            results.append(fn(spec))
        progress(stage, len(specs), len(specs))
        return results

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LocalExecutor()"


class DaskExecutor:
    """Run jobs on Dask: an existing scheduler (``address``) or a local cluster of ``workers``."""

    name = "dask"

    def __init__(self, address: str | None = None, *, workers: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise MissingDependencyError("distributed", "the Dask executor") from err
        self._cluster = None
        if address:
            self.client = Client(address, timeout="30s")
        else:
            self._cluster = LocalCluster(
                n_workers=workers or 2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self._cluster)
        self.address = address or self._cluster.scheduler_address

    def map(self, fn, specs, *, stage, progress):
        from distributed import as_completed

        if not specs:
            return []
        futures = self.client.map(fn, list(specs), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        done = 0
        progress(stage, 0, len(futures))
        for future in as_completed(futures):
            results[index[future.key]] = future.result()
            done += 1
            progress(stage, done, len(futures))
        return results

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r})"


def make_executor(kind: str = "local", *, scheduler: str | None = None, workers: int | None = None):
    """``local`` or ``dask`` (with a scheduler address or a number of local workers)."""
    if scheduler or kind == "dask" or (workers and workers > 1):
        return DaskExecutor(scheduler, workers=workers)
    if kind != "local":
        raise ConfigError(f"unknown executor {kind!r} (local or dask)")
    return LocalExecutor()

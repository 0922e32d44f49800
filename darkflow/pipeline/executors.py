"""Where jobs run: in this process (default) or on a Dask distributed cluster.

Both return results in the order of the specs. Outputs do not depend on the executor: a job's
bytes depend only on its inputs and configuration (the master kernels are deterministic for any
thread count), and every result is registered by the driver in plan order.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from darkflow.exceptions import ConfigError, ExecutorError, MissingDependencyError

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


def _cancelled_errors() -> tuple[type[BaseException], ...]:
    import asyncio
    import concurrent.futures

    return (asyncio.CancelledError, concurrent.futures.CancelledError)


_CANCELLED = _cancelled_errors()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


class DaskExecutor:
    """Run jobs on Dask: an existing scheduler (``address``) or a local cluster of ``workers``.

    Failures of the cluster are :class:`~darkflow.exceptions.ExecutorError` with one clear
    message, within ``timeout_s``: a scheduler that cannot be reached, one that no worker joins,
    a scheduler lost mid-run, every worker gone. A job's own exception (e.g. a full disk) is
    raised as it is. Finished jobs are kept (their artifacts are written); a rerun continues.
    """

    name = "dask"

    def __init__(
        self, address: str | None = None, *, workers: int | None = None, timeout_s: float = 30.0
    ):
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise MissingDependencyError("distributed", "the Dask executor") from err
        self.timeout_s = float(timeout_s)
        self._cluster = None
        self.client = None
        if address:
            try:
                self.client = Client(address, timeout=f"{self.timeout_s}s")
            except (OSError, TimeoutError) as err:
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {address} within {self.timeout_s:g} s "
                    f"({type(err).__name__}: {err}); check the address and that the scheduler "
                    "runs, or run without --scheduler"
                ) from err
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
        try:
            self.client.wait_for_workers(1, timeout=self.timeout_s)
        except (OSError, TimeoutError) as err:
            self.close()
            raise ExecutorError(
                f"the Dask scheduler at {self.address} has no worker (none joined within "
                f"{self.timeout_s:g} s); start workers (`dask worker {self.address}`) or run "
                "without --scheduler"
            ) from err

    def _lost(self, why: str) -> ExecutorError:
        return ExecutorError(
            f"lost the Dask cluster at {self.address} mid-run ({why}); the jobs already finished "
            "are kept: run again (locally, or once the scheduler and workers are back)"
        )

    def _n_workers(self) -> int | None:
        """Workers the client knows of; ``None`` when the scheduler does not answer."""
        if self.client.status != "running":
            return None
        try:
            info = self.client.scheduler_info()
        except (OSError, TimeoutError):
            return None
        return len(info.get("workers", {}))

    def map(self, fn, specs, *, stage, progress):
        from distributed import wait

        if not specs:
            return []
        try:
            futures = self.client.map(fn, list(specs), pure=False)
        except (OSError, TimeoutError) as err:
            raise self._lost(f"{type(err).__name__}: {err}") from err
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        pending = set(futures)
        progress(stage, 0, len(futures))
        poll = min(1.0, self.timeout_s)
        stalled_since: float | None = None
        try:
            while pending:
                try:
                    done, pending = wait(pending, timeout=poll, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
                except (OSError, *_CANCELLED) as err:
                    raise self._lost(_first_line(err)) from err
                for future in done:
                    if future.status == "cancelled":
                        raise self._lost("its jobs were cancelled")
                    try:
                        results[index[future.key]] = future.result()  # a job's error: as is
                    except _CANCELLED as err:
                        raise self._lost(_first_line(err)) from err
                progress(stage, len(futures) - len(pending), len(futures))
                if done or not pending:
                    stalled_since = None
                    continue
                # nothing finished: a long job is fine, a cluster without workers is not
                if self._n_workers():
                    stalled_since = None
                elif stalled_since is None:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > self.timeout_s:
                    state = "no scheduler" if self.client.status != "running" else "no worker"
                    raise self._lost(f"{state} for {self.timeout_s:g} s")
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.cancel(list(pending))
            raise
        return results

    def close(self) -> None:
        # a lost scheduler must not turn closing into a second error or a hang
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=self.timeout_s)
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=self.timeout_s)

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r})"


def make_executor(
    kind: str = "local",
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    timeout_s: float = 30.0,
):
    """``local`` or ``dask`` (with a scheduler address or a number of local workers)."""
    if scheduler or kind == "dask" or (workers and workers > 1):
        return DaskExecutor(scheduler, workers=workers, timeout_s=timeout_s)
    if kind != "local":
        raise ConfigError(f"unknown executor {kind!r} (local or dask)")
    return LocalExecutor()

"""Where jobs run: on this machine (default) or on a Dask distributed cluster.

Both return results in the order of the specs. Outputs do not depend on the executor or on the
number of workers: a job's bytes depend only on its inputs and configuration (the kernels are
deterministic for any thread count), and every result is registered by the driver in plan order.

The local executor runs the lights of a night in parallel worker processes (one light per
process at a time, as many processes as cores, fewer when the machine's free memory would not
hold that many lights) and everything else, the masters included, one job after the other in
this process, where the combine kernels already use every core and stay within the memory limit.
Processes rather than threads: the light checks hold the GIL in places, and Python's warning
filters (``warnings.catch_warnings``) are process-global, so threads could garble each other's.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar

from darkflow.exceptions import ConfigError, ExecutorError, MissingDependencyError

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "auto_workers", "make_executor"]

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")
ProgressFn = Callable[[str, int, int], None]


class Executor(Protocol):
    """What runs the jobs of a stage: in this process, in local worker processes, or on Dask."""

    name: str

    def map(
        self, fn: Callable[[S], R], specs: Sequence[S], *, stage: str, progress: ProgressFn
    ) -> list[R]:
        """``fn`` applied to every spec, results in the specs' order; ``progress`` is told of each one
        done."""

    def close(self) -> None:
        """Release the workers."""


#: stages the local executor runs in parallel processes (masters: one at a time, each combine
#: already uses every core within the memory limit)
PARALLEL_STAGES = ("lights",)
#: share of the machine's available memory the parallel light jobs may take together
MEMORY_SHARE = 0.5
#: below this much work (summed working sets of a stage's jobs, ~8 Mpixel of lights) starting
#: worker processes costs more than it saves: the stage runs in this process (``workers=None``)
MIN_PARALLEL_BYTES = 640_000_000
#: modules the worker processes start with (forked from a server that imported them once); the
#: light checks' scipy modules are imported inside functions, which every worker paid again
_PRELOAD = (
    "darkflow.pipeline.jobs",
    "darkflow.calibrate",
    "darkflow.verify",
    "darkflow.subtract",
    "darkflow.master",
    "darkflow.io.fits",
    "scipy.special",
    "scipy.spatial",
)


def available_memory() -> int | None:
    """Bytes of memory the machine can give without swapping (``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def auto_workers(job_bytes: int = 0, *, cpus: int | None = None, memory: int | None = None) -> int:
    """Worker processes for parallel jobs: one per core, no more than ``MEMORY_SHARE`` of the
    available memory holds (``job_bytes`` each), at least one."""
    cpus = cpus or os.cpu_count() or 1
    n = cpus
    memory = available_memory() if memory is None else memory
    if job_bytes > 0 and memory:
        n = min(n, int(MEMORY_SHARE * memory // job_bytes))
    return max(1, n)


def _worker_start(level: int, handlers: bool, numba_threads: int) -> None:
    """Each worker logs like the driver (to stderr) and shares the cores with the others; a
    Ctrl-C is the driver's to handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("darkflow")
        root.handlers[:] = [handler]
        root.propagate = False
    logging.getLogger("darkflow").setLevel(level)
    try:
        import numba

        numba.set_num_threads(max(1, min(numba_threads, numba.config.NUMBA_NUM_THREADS)))
    except (ImportError, ValueError):
        pass


def _pool_context():
    """``forkserver`` where there is one: workers fork from a clean server process that imported
    the job modules once (no fork of a driver with threads running); else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(_PRELOAD))
        return ctx
    return multiprocessing.get_context("spawn")


class LocalExecutor:
    """Jobs on this machine: lights in ``workers`` parallel processes, the rest in this process.

    Parameters
    ----------
    workers
        Worker processes for the lights; ``None`` or 0: one per core, fewer when the available
        memory would not hold that many lights at once (:func:`auto_workers`), none for a few
        small lights (:data:`MIN_PARALLEL_BYTES`); 1: every job in this process, one after the
        other.
    """

    name = "local"

    def __init__(self, workers: int | None = None):
        if workers is not None and workers < 0:
            raise ConfigError(f"workers must be >= 0, got {workers}")
        self.workers = workers or None

    def n_workers(self, specs: Sequence[Any], stage: str) -> int:
        """How many processes run ``specs`` of ``stage`` (1: in this process)."""
        if stage not in PARALLEL_STAGES or len(specs) < 2:
            return 1
        if self.workers is not None:
            return min(self.workers, len(specs))
        sizes = [int(getattr(s, "working_set_bytes", 0) or 0) for s in specs]
        if sum(sizes) < MIN_PARALLEL_BYTES:
            return 1
        return min(auto_workers(max(sizes)), len(specs))

    def warm_up(self, working_sets: Sequence[int], *, stage: str = "lights") -> bool:
        """Start the worker processes' server now when ``stage`` will run jobs of these working
        sets (bytes) in parallel: its imports (darkflow, scipy: about 2 s of one core) then
        overlap the work before that stage (the masters) instead of delaying its first job.
        The jobs' results do not depend on it. True when a server was started or is running."""
        sized = [SimpleNamespace(working_set_bytes=int(b)) for b in working_sets]
        if self.n_workers(sized, stage) <= 1:
            return False
        ctx = _pool_context()
        if ctx.get_start_method() != "forkserver":
            return False
        from multiprocessing import forkserver

        forkserver.ensure_running()
        return True

    def map(self, fn, specs, *, stage, progress):
        """``fn`` applied to every spec in worker processes when the stage runs in parallel, else in
        order here; results in the specs' order."""
        n = self.n_workers(specs, stage)
        if n <= 1:
            results = []
            for i, spec in enumerate(specs):
                progress(stage, i, len(specs))
                results.append(fn(spec))
            progress(stage, len(specs), len(specs))
            return results
        return self._map_parallel(fn, list(specs), n, stage=stage, progress=progress)

    def _map_parallel(self, fn, specs, n, *, stage, progress):
        log.debug("%s: %d jobs in %d worker processes", stage, len(specs), n)
        logger = logging.getLogger("darkflow")
        cpus = os.cpu_count() or 1
        pool = ProcessPoolExecutor(
            max_workers=n,
            mp_context=_pool_context(),
            initializer=_worker_start,
            initargs=(logger.getEffectiveLevel(), bool(logger.handlers), max(1, cpus // n)),
        )
        results: list[Any] = [None] * len(specs)
        try:
            futures: dict[Future, int] = {pool.submit(fn, s): i for i, s in enumerate(specs)}
            pending = set(futures)
            progress(stage, 0, len(specs))
            while pending:
                done, pending = wait_futures(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        results[futures[future]] = future.result()  # a job's error: as is
                    except BrokenProcessPool as err:
                        raise ExecutorError(
                            f"a worker process calibrating lights died ({err}); out of memory? "
                            "Run again with fewer workers (--workers 1: none)"
                        ) from err
                progress(stage, len(specs) - len(pending), len(specs))
        except BaseException:
            # interrupted, or a job raised: no worker goes on writing after this run ended
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()
            raise
        pool.shutdown(wait=True)
        return results

    def close(self) -> None:
        """Nothing to release: the pool lives only during :meth:`map`."""
        pass

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers or 'auto'})"


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
        """``fn`` applied to every spec on the Dask cluster; results in the specs' order (a lost
        cluster is an :class:`ExecutorError`)."""
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
        """Close the client and the local cluster, without raising or hanging on a lost scheduler."""
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
    """``local`` (lights in ``workers`` processes, default one per core) or ``dask`` (with a
    scheduler address, or a local cluster of ``workers``)."""
    if scheduler or kind == "dask":
        return DaskExecutor(scheduler, workers=workers, timeout_s=timeout_s)
    if kind != "local":
        raise ConfigError(f"unknown executor {kind!r} (local or dask)")
    return LocalExecutor(workers=workers)

"""One frame's hold-out residual in one pass (the master hold-out gates): numba kernels and
their numpy twins.

:func:`darkflow.verify._holdout.frame_residual` needs, for every valid pixel of a frame's
band, the residual against the training mean ``r = x - P``, its normalised ``plain = r / a``
(``a = sqrt(1 +- 1/n)``) and ``u = plain / s`` (``s`` the noise-by-level curve), and then
counts the 8-connected events of outlying pixels. numpy builds each of those as a full-band
temporary and gathers the valid pixels with boolean indexing; here:

* :func:`compact_residuals` makes one pass and writes ``plain``, ``u`` and ``r`` of the valid
  pixels only, in raster order (what ``plain[ok]`` gives), with the count of valid pixels per
  row, so a strip of rows is a slice;
* :func:`outlier_events` makes one pass that marks the three kinds of event pixels and counts
  their 8-connected groups by a flood fill (``scipy.ndimage.label``'s count).

Same operations in the same float32 order as numpy (NEP 50: Python scalars take the array's
dtype), so the twins give the same values bit for bit (tests/test_residual_kernels.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "compact_residuals",
    "compact_residuals_reference",
    "outlier_events",
    "outlier_events_reference",
]


@nb.njit(cache=True, nogil=True)
def _scale_of(n_mean, held):  # pragma: no cover (numba)
    """``a = sqrt(1 + 1/n)`` (held out) or ``sqrt(max(1 - 1/n, 1e-6))`` (training), float32,
    ``n = max(n_mean, 2)`` as numpy computes it."""
    nv = n_mean
    if nv < 2:
        nv = 2
    n = np.float32(nv)
    one = np.float32(1.0)
    if held:
        return np.sqrt(one + one / n)
    t = one - one / n
    if t < np.float32(1e-6):
        t = np.float32(1e-6)
    return np.sqrt(t)


@nb.njit(cache=True, nogil=True)
def _compact(x, mean, scale, n_mean, valid, held, plain, u, resid, rows):  # pragma: no cover
    k = 0
    for y in range(x.shape[0]):
        start = k
        for i in range(x.shape[1]):
            xv = x[y, i]
            if not (valid[y, i] and np.isfinite(xv)):
                continue
            a = _scale_of(n_mean[y, i], held)
            r = xv - mean[y, i]
            p = r / a
            plain[k] = p
            u[k] = p / scale[y, i]
            resid[k] = r
            k += 1
        rows[y] = k - start
    return k


@nb.njit(cache=True, nogil=True)
def _mark(
    x,
    mean,
    scale,
    n_mean,
    valid,
    held,
    master,
    with_master,
    t_out,
    t_up,
    t_down,
    flags,
    event_scale,
):
    # pragma: no cover (numba); bits 1: outlier (u > t_out), 2: above the master, 4: below
    counts = np.zeros(3, np.int64)
    for y in range(x.shape[0]):
        for i in range(x.shape[1]):
            xv = x[y, i]
            if not (valid[y, i] and np.isfinite(xv)):
                continue
            a = _scale_of(n_mean[y, i], held)
            s = scale[y, i]
            f = np.uint8(0)
            if (xv - mean[y, i]) / a / s > t_out:
                f |= np.uint8(1)
                counts[0] += 1
            if with_master:
                v = (xv - master[y, i]) / (a * event_scale[y, i])
                if v > t_up:
                    f |= np.uint8(2)
                    counts[1] += 1
                if v < t_down:
                    f |= np.uint8(4)
                    counts[2] += 1
            flags[y, i] = f
    return counts


@nb.njit(cache=True, nogil=True)
def _groups(flags, bit, size):  # pragma: no cover (numba)
    """8-connected groups of the pixels with ``bit`` set (``size`` of them); ``bit << 3``
    marks a pixel seen."""
    if size == 0:
        return 0
    ny, nx = flags.shape
    seen = np.uint8(bit << 3)
    stack = np.empty(size, np.int64)
    groups = 0
    for y0 in range(ny):
        for x0 in range(nx):
            if (flags[y0, x0] & bit) == 0 or (flags[y0, x0] & seen) != 0:
                continue
            groups += 1
            flags[y0, x0] |= seen
            top = 0
            stack[top] = y0 * nx + x0
            top += 1
            while top > 0:
                top -= 1
                y = stack[top] // nx
                x = stack[top] % nx
                for yy in range(max(y - 1, 0), min(y + 2, ny)):
                    for xx in range(max(x - 1, 0), min(x + 2, nx)):
                        f = flags[yy, xx]
                        if (f & bit) != 0 and (f & seen) == 0:
                            flags[yy, xx] = f | seen
                            stack[top] = yy * nx + xx
                            top += 1
    return groups


def _fast(x, mean, scale, n_mean, valid, master) -> bool:
    arrays = (x, mean, scale) + (() if master is None else (master,))
    return (
        all(a.dtype == np.float32 and a.ndim == 2 and a.shape == x.shape for a in arrays)
        and valid.dtype == np.bool_
        and valid.shape == x.shape
        and n_mean.shape == x.shape
        and n_mean.dtype.kind in "iu"
    )


def compact_residuals(
    x: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_mean: np.ndarray,
    valid: np.ndarray,
    *,
    held: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``plain``, ``u`` and ``r`` of the valid pixels (``valid`` and ``x`` finite), raster
    order, and the count of valid pixels per row (int64). Equal to
    :func:`compact_residuals_reference`; float32 inputs, integer ``n_mean`` (others: the
    twin)."""
    if not _fast(x, mean, scale, n_mean, valid, None):
        return compact_residuals_reference(x, mean, scale, n_mean, valid, held=held)
    size = x.size
    plain = np.empty(size, np.float32)
    u = np.empty(size, np.float32)
    resid = np.empty(size, np.float32)
    rows = np.empty(x.shape[0], np.int64)
    k = _compact(x, mean, scale, n_mean, valid, bool(held), plain, u, resid, rows)
    return plain[:k], u[:k], resid[:k], rows


def _scale_reference(n_mean: np.ndarray, held: bool) -> np.ndarray:
    """numpy twin of ``_scale_of`` (float32)."""
    n = np.maximum(n_mean, 2).astype(np.float32)
    return np.sqrt(1.0 + 1.0 / n) if held else np.sqrt(np.maximum(1.0 - 1.0 / n, 1e-6))


def compact_residuals_reference(
    x: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_mean: np.ndarray,
    valid: np.ndarray,
    *,
    held: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """numpy twin of :func:`compact_residuals` (the former full-band temporaries)."""
    ok = valid & np.isfinite(x)
    a = _scale_reference(n_mean, held)
    resid = x - mean
    plain = resid / a
    u = plain / scale
    rows = np.count_nonzero(ok, axis=1).astype(np.int64)
    return plain[ok], u[ok], resid[ok], rows


def outlier_events(
    x: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_mean: np.ndarray,
    valid: np.ndarray,
    *,
    held: bool,
    t_out: float,
    master: np.ndarray | None = None,
    t_up: float = np.inf,
    t_down: float = -np.inf,
    event_scale: np.ndarray | None = None,
    where: list | None = None,
) -> tuple[int, int, int]:
    """8-connected events of valid pixels with ``u > t_out`` and, with the clipped
    ``master``, with ``v = (x - master) / (a e)`` above ``t_up`` and below ``t_down``, ``e``
    the ``event_scale`` (default ``scale``; thresholds compared in float32, as numpy compares
    a float32 array with a Python float). ``where``: a list that receives the flat indices of
    the pixels above and of those below the master (two int64 arrays). Equal to
    :func:`outlier_events_reference`."""
    es = scale if event_scale is None else event_scale
    if not (
        _fast(x, mean, scale, n_mean, valid, master)
        and es.dtype == np.float32
        and es.shape == x.shape
    ):
        return outlier_events_reference(
            x,
            mean,
            scale,
            n_mean,
            valid,
            held=held,
            t_out=t_out,
            master=master,
            t_up=t_up,
            t_down=t_down,
            event_scale=event_scale,
            where=where,
        )
    flags = np.zeros(x.shape, np.uint8)
    with_master = master is not None
    counts = _mark(
        x,
        mean,
        scale,
        n_mean,
        valid,
        bool(held),
        master if with_master else x,
        with_master,
        np.float32(t_out),
        np.float32(t_up),
        np.float32(t_down),
        flags,
        es,
    )
    if where is not None:
        where += [
            np.flatnonzero(flags & np.uint8(bit)) if counts[j] else np.empty(0, np.int64)
            for j, bit in ((1, 2), (2, 4))
        ]
    return tuple(int(_groups(flags, 1 << j, int(counts[j]))) for j in range(3))  # type: ignore[return-value]


def outlier_events_reference(
    x: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_mean: np.ndarray,
    valid: np.ndarray,
    *,
    held: bool,
    t_out: float,
    master: np.ndarray | None = None,
    t_up: float = np.inf,
    t_down: float = -np.inf,
    event_scale: np.ndarray | None = None,
    where: list | None = None,
) -> tuple[int, int, int]:
    """numpy twin of :func:`outlier_events` (full-band masks, ``scipy.ndimage.label``)."""
    from scipy.ndimage import label

    def events(mask: np.ndarray) -> int:
        if not mask.any():
            return 0
        return int(label(mask, structure=np.ones((3, 3), dtype=bool))[1])

    ok = valid & np.isfinite(x)
    a = _scale_reference(n_mean, held)
    u = (x - mean) / a / scale
    out = events(ok & (u > t_out))
    if master is None:
        if where is not None:
            where += [np.empty(0, np.int64), np.empty(0, np.int64)]
        return out, 0, 0
    v = (x - master) / (a * (scale if event_scale is None else event_scale))
    above, below = ok & (v > t_up), ok & (v < t_down)
    if where is not None:
        where += [np.flatnonzero(above), np.flatnonzero(below)]
    return out, events(above), events(below)

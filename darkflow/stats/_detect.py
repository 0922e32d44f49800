"""The front of star detection (:func:`darkflow.verify.photometry.detect_stars`) as one numba
kernel, with its numpy/scipy twin.

From an image, its background and its noise (2-D maps), :func:`detection_maps` gives the
residual ``image - background`` (0 where the image is not finite), its 3x3 box mean (edges
repeated) and the detection mask ``box / (sigma / 3) > threshold``. The twin computes them as
the detection did (float64 conversions, ``np.where``, ``scipy.ndimage.uniform_filter``,
four full-frame temporaries); the kernel makes the same floating-point operations in the same
order: scipy's box filter is separable (rows of the first axis, then of the second) and each
line is a running sum, ``s[0] = x[-1] + x[0] + x[1]`` summed from 0, then
``s[i] = s[i-1] + (x[i+1] - x[i-2])`` (``x`` extended by its edge values), each output
``s[i] / 3``, which the kernel repeats, so the maps are equal bit for bit (tests/test_detect_kernel.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["detection_maps", "detection_maps_reference"]


# numpy's error model: a zero sigma divides to inf or NaN as numpy does, without raising
@nb.njit(cache=True, nogil=True, error_model="numpy")
def _detection_maps(image, background, sigma, threshold, resid, box, det):  # pragma: no cover
    ny, nx = image.shape
    n_finite = 0
    for y in range(ny):
        for x in range(nx):
            v = np.float64(image[y, x])
            if np.isfinite(v):
                resid[y, x] = v - np.float64(background[y, x])
                n_finite += 1
            else:
                resid[y, x] = 0.0
    # along the first axis: a running sum per column (the columns advanced together), each
    # output the running sum over 3; one row of it at a time (``row``), then along the second
    # axis and the threshold for that row (no full-frame temporary)
    run = np.empty(nx, np.float64)
    row = np.empty(nx, np.float64)
    for y in range(ny):
        if y == 0:
            for x in range(nx):
                a = resid[0, x]
                t = 0.0
                t += a
                t += a
                t += resid[min(1, ny - 1), x]
                run[x] = t
                row[x] = t / 3.0
        else:
            hi = min(y + 1, ny - 1)
            lo = max(y - 2, 0)
            for x in range(nx):
                run[x] += resid[hi, x] - resid[lo, x]
                row[x] = run[x] / 3.0
        a = row[0]
        t = 0.0
        t += a
        t += a
        t += row[min(1, nx - 1)]
        box[y, 0] = t / 3.0
        for x in range(1, nx):
            t += row[min(x + 1, nx - 1)] - row[max(x - 2, 0)]
            box[y, x] = t / 3.0
        for x in range(nx):
            det[y, x] = box[y, x] / (np.float64(sigma[y, x]) / 3.0) > threshold
    return n_finite


def detection_maps(
    image: np.ndarray, background: np.ndarray, sigma: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(resid, box, det, n_finite)``: the residual (float64), its 3x3 box mean, the
    detection mask and the number of finite pixels of ``image``. 2-D ``image``, ``background``
    and ``sigma`` of one shape (float32 or float64); anything else goes to
    :func:`detection_maps_reference`, which gives the same arrays."""
    arrays = (image, background, sigma)
    if not (
        all(isinstance(a, np.ndarray) and a.ndim == 2 for a in arrays)
        and image.shape == background.shape == sigma.shape
        and all(a.dtype in (np.float32, np.float64) for a in arrays)
        and image.size > 0
    ):
        return detection_maps_reference(image, background, sigma, threshold)
    resid = np.empty(image.shape, np.float64)
    box = np.empty(image.shape, np.float64)
    det = np.empty(image.shape, np.bool_)
    n = _detection_maps(image, background, sigma, float(threshold), resid, box, det)
    return resid, box, det, int(n)


def detection_maps_reference(
    image: np.ndarray,
    background: np.ndarray | float,
    sigma: np.ndarray | float,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """numpy/scipy twin of :func:`detection_maps` (the detection's former code)."""
    from scipy import ndimage

    img = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(img)
    resid = np.where(finite, img - background, 0.0)
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), img.shape)
    box = ndimage.uniform_filter(resid, size=3, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        det = box / (sig / 3.0) > threshold
    return resid, box, det, int(np.count_nonzero(finite))

"""Star detection (darkflow.verify.photometry.detect_stars) against a plain scipy version of
the same rules (find_objects, argmax per region, a full maximum filter): the same stars."""

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from darkflow.verify.photometry import Star, detect_stars


def _former(img, background, sigma, raw, saturation, border=12, isolation_px=12.0):
    img = np.asarray(img, dtype=np.float64)
    resid = np.where(np.isfinite(img), img - background, 0.0)
    sig = np.asarray(sigma, dtype=np.float64)
    box = ndimage.uniform_filter(resid, size=3, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        det = box / (sig / 3.0) > 5.0
    labels, _ = ndimage.label(det)
    sizes = np.bincount(labels.ravel())
    ny, nx = img.shape
    cands = []
    for lab, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or sizes[lab] < 5:
            continue
        region = labels[sl] == lab
        iy, ix = np.unravel_index(np.argmax(np.where(region, box[sl], -np.inf)), region.shape)
        py, px = sl[0].start + iy, sl[1].start + ix
        if not (border <= py < ny - border and border <= px < nx - border):
            continue
        if saturation is not None:
            vals = raw[sl][region]
            vals = vals[np.isfinite(vals)]
            if vals.size and vals.max() >= saturation:
                continue
        signal = float(box[py, px] * 9.0)
        peak = float(resid[py, px])
        if not signal > 0 or peak >= 0.5 * signal:
            continue
        cands.append(Star(float(py), float(px), peak, signal, int(sizes[lab])))
    if not cands:
        return []
    peaks = det & (box == ndimage.maximum_filter(box, 5, mode="nearest"))
    tree = cKDTree(np.argwhere(peaks).astype(np.float64))
    near = tree.query_ball_point(
        [(s.y, s.x) for s in cands], r=np.nextafter(isolation_px, 0.0), return_length=True
    )
    stars = [s for s, k in zip(cands, near, strict=True) if k <= 1]
    stars.sort(key=lambda s: -s.signal)
    return stars[:200]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("saturation", [None, 3000.0])
def test_detect_stars_matches_the_plain_rules(seed, saturation):
    rng = np.random.default_rng(seed)
    shape = (300, 340)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    bg = (100.0 + 0.05 * xx).astype(np.float32)
    img = bg + rng.normal(0.0, 5.0, shape)
    for _ in range(120):  # stars, some near the border, some blended, some saturated
        y0, x0 = rng.uniform(-5, shape[0] + 5), rng.uniform(-5, shape[1] + 5)
        img += (
            rng.uniform(100, 4e4)
            / (2 * math.pi * 2.0)
            * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 4.0)
        )
    hot = rng.random(shape) < 0.002  # single hot pixels
    img[hot] += 2000.0
    img[rng.random(shape) < 0.001] = np.nan
    img = img.astype(np.float32)
    sigma = np.full(shape, 5.0, np.float32)
    raw = np.minimum(img, 3500.0)
    got = detect_stars(img, background=bg, sigma=sigma, raw=raw, saturation=saturation)
    want = _former(img, bg, sigma, raw, saturation)
    assert got == want
    assert len(got) >= 10

"""Colour-filter-array (Bayer) views of a raw frame: its four colour phases, names, superpixels.

A one-shot-colour sensor puts a 2x2 cell of colour filters over its pixels (``RGGB``, ``GRBG``,
``GBRG``, ``BGGR``). Every statistic that depends on the scene or on the channel response
(background level, noise, residuals against neighbours, banding, spectra, tails) must compare a
pixel only with pixels of its own colour: a red pixel under a green-dominated sky sits far below
its green neighbours, and a neighbour median that mixes colours turns that into false "holes",
false banding and a false noise excess.

The four *phases* ``(dy, dx)`` in ``((0, 0), (0, 1), (1, 0), (1, 1))`` are the sub-lattices
``a[dy::2, dx::2]`` of the stored array: one colour each. The statistics work on the phases
themselves, so they are right whatever colour each phase is; the names (``R``, ``G1``, ``G2``,
``B``) only label what the reports show. ``FrameMeta.bayer_pattern`` is the colour pattern of the
stored array's first 2x2 cell (ingestion applies ``XBAYROFF``/``YBAYROFF`` and ``ROWORDER``, see
``docs/colour.md``). The dark current itself is per pixel: subtracting a dark needs no
debayering, and nothing here changes the calibrated pixels.

Stars are measured on *superpixel luminance*: the sum of each 2x2 cell (:func:`superpixel`), one
value per cell holding all four colours, so a star's profile is smooth whatever its colour.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

__all__ = [
    "PHASES",
    "channel_names",
    "is_cfa",
    "merge_planes",
    "per_plane",
    "planes",
    "superpixel",
    "superpixel_any",
    "upsample_superpixel",
]

PHASES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))
"""The four colour phases ``(dy, dx)`` of a 2x2 colour cell, in raster order."""

_PATTERN = re.compile(r"^[RGB]{4}$")


def is_cfa(pattern: str | None) -> bool:
    """Whether ``pattern`` names a 2x2 Bayer cell (``RGGB`` and the like)."""
    return bool(pattern) and bool(_PATTERN.match(str(pattern).upper()))


def channel_names(pattern: str) -> tuple[str, str, str, str]:
    """Names of the four phases (:data:`PHASES` order) for a pattern: ``RGGB`` -> ``R, G1, G2, B``.

    The two greens are ``G1`` (the first in raster order) and ``G2``.
    """
    if not is_cfa(pattern):
        raise ValueError(f"not a Bayer pattern: {pattern!r}")
    names, greens = [], 0
    for c in pattern.upper():
        if c == "G":
            greens += 1
            names.append(f"G{greens}")
        else:
            names.append(c)
    return tuple(names)  # type: ignore[return-value]


def planes(a: np.ndarray) -> list[np.ndarray]:
    """The four phase views ``a[dy::2, dx::2]`` (no copy), in :data:`PHASES` order."""
    return [a[dy::2, dx::2] for dy, dx in PHASES]


def merge_planes(parts: list[np.ndarray], shape: tuple[int, int], dtype=None) -> np.ndarray:
    """Interleave four phase arrays (as :func:`planes` cuts them) back into one ``shape`` array."""
    dtype = dtype if dtype is not None else np.result_type(*parts)
    out = np.empty(shape, dtype=dtype)
    for (dy, dx), p in zip(PHASES, parts, strict=True):
        out[dy::2, dx::2] = p
    return out


def per_plane(fn: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
    """``fn`` applied to each phase of ``arrays`` (contiguous copies), merged back to full size.

    ``fn`` takes one plane of each array and returns an array of the plane's shape.
    """
    shape = arrays[0].shape
    parts = [
        np.asarray(fn(*(np.ascontiguousarray(a[dy::2, dx::2]) for a in arrays)))
        for dy, dx in PHASES
    ]
    return merge_planes(parts, shape)


def _even(a: np.ndarray) -> np.ndarray:
    ny, nx = a.shape
    return a[: ny - ny % 2, : nx - nx % 2]


def superpixel(a: np.ndarray) -> np.ndarray:
    """Sum of every whole 2x2 cell, ``(ny // 2, nx // 2)``, float64 (NaN propagates)."""
    e = _even(np.asarray(a, dtype=np.float64))
    return e[0::2, 0::2] + e[0::2, 1::2] + e[1::2, 0::2] + e[1::2, 1::2]


def superpixel_any(mask: np.ndarray) -> np.ndarray:
    """A cell is set when any of its four pixels is (boolean, ``(ny // 2, nx // 2)``)."""
    e = _even(np.asarray(mask, dtype=bool))
    return e[0::2, 0::2] | e[0::2, 1::2] | e[1::2, 0::2] | e[1::2, 1::2]


def upsample_superpixel(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each cell's value on its four pixels, cut or padded (edge values) to ``shape``."""
    up = np.repeat(np.repeat(np.asarray(cells), 2, axis=0), 2, axis=1)
    ny, nx = shape
    pad = ((0, max(ny - up.shape[0], 0)), (0, max(nx - up.shape[1], 0)))
    if pad[0][1] or pad[1][1]:
        up = np.pad(up, pad, mode="edge")
    return up[:ny, :nx]

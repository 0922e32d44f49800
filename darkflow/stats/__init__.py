"""Robust per-pixel statistics: numba kernels, each with a plain-numpy reference implementation.

The kernels take plain arrays and scalars only (no FITS, no config objects). Every kernel is
serial and ``nogil`` (``cache=True, fastmath=False``) over a range of independent items;
``_common.in_threads`` runs the ranges in threads (numba's thread count), so no kernel pays
numba's parallel lowering at its first compile. Each output pixel is computed by one thread
from its own inputs in a fixed order, so the results are bit-identical for any band height and
any thread count. Tests compare each kernel with its ``*_reference`` twin.

Combine of one band (``combine_band``)
--------------------------------------
For every pixel, the values of the ``n`` frames are gathered; non-finite (and integer BLANK)
values are invalid: they get the largest sort key, sort last and are never counted. The values
are sorted once with a Batcher odd-even merge sorting network applied to a block of pixels at
a time (every comparator is a vector min/max across pixels). Raw 16-bit FITS data are sorted
as unsigned integer keys ``stored + 32768`` (order-preserving; the value is ``key + BZERO -
32768`` exactly) and read in place from the memory-mapped files.

Sigma clipping then works on the sorted values: the kept set is always a contiguous range
``s[lo:hi]``, so the median is a lookup, the MAD a short merge walk outwards from the median,
and each iteration only moves ``lo`` up and ``hi`` down. Per iteration: centre = median of the
kept values; scale =

* ``MODE_MAD``: ``MAD_TO_STD`` × MAD (astropy ``mad_std``),
* ``MODE_STD``: standard deviation (ddof=0) of the kept values (astropy ``std``),
* ``MODE_NOISE``: ``sqrt(sig0_sq + max(median - level0, 0) * inv_gain)``, the noise model
  (temporal noise at the typical level plus the pixel's own shot noise in ADU),
* ``MODE_NOISE_MAD``: ``max(sqrt(sig0_sq), MAD_TO_STD × MAD)`` with the MAD of the first
  iteration, kept fixed (noise model without a known gain: the pixel's own spread stands in
  for its shot noise; freezing it avoids the shrinking-MAD cascade of small stacks);

values below ``median - sigma_low*scale`` or above ``median + sigma_high*scale`` are clipped
until nothing changes or ``max_iters`` iterations ran; as in astropy's ``sigma_clip`` the final
kept set is every valid value inside the bounds of the last iteration (degenerate bounds —
zero scale between two distinct middle values — keep the previous range).

Outputs: clipped mean (float64 sums of ``value - shift``, shift = the middle kept value, in
ascending order), standard error ``sqrt(var_ddof1 / n_used)`` (for ``n_used == 1`` the model
noise ``sqrt(sig0_sq + max(mean - level0, 0) * inv_gain)``, NaN if ``sig0_sq`` is NaN), counts
used/low/high, the fraction of valid frames in which the value exceeds that frame's hot
threshold, and a flag for pixels whose every valid value is at or above ``sat_level``. A pixel
without valid values gets NaN mean and uncertainty and zero counts.

Each output pixel is computed by one thread from its own values in a fixed order, so results
are bit-identical for any band height and thread count.

Robust sigma
------------
:func:`mad_std` (``MAD_TO_STD`` × median absolute deviation) and :func:`robust_std` (the same
over the finite values) are darkflow's one robust standard deviation; kernels import
``MAD_TO_STD``.

The numba kernels (``combine_band``, ``decode_be16``, ``sort_columns``) are imported on first
use, so importing this package (e.g. for :func:`mad_std`) does not load numba.
"""

from typing import Any

from darkflow.stats._common import (
    MAD_TO_STD,
    MODE_MAD,
    MODE_NOISE,
    MODE_NOISE_MAD,
    MODE_STD,
    PLANES,
    block_width,
    empty_planes,
    raw16_exact,
    sorting_network,
)
from darkflow.stats._reference import (
    combine_band_reference,
    decode_be16_reference,
    sort_columns_reference,
)
from darkflow.stats._robust import mad_std, median, nanmedian, robust_std

__all__ = [
    "MAD_TO_STD",
    "MODE_MAD",
    "MODE_NOISE",
    "MODE_NOISE_MAD",
    "MODE_STD",
    "PLANES",
    "block_width",
    "combine_band",
    "combine_band_reference",
    "decode_be16",
    "decode_be16_reference",
    "empty_planes",
    "mad_std",
    "median",
    "nanmedian",
    "raw16_exact",
    "robust_std",
    "sort_columns",
    "sort_columns_reference",
    "sorting_network",
]

_KERNELS = ("combine_band", "decode_be16", "sort_columns")


def __getattr__(name: str) -> Any:
    if name in _KERNELS:
        from darkflow.stats import _numba

        value = getattr(_numba, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

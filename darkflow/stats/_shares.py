"""The variance gate's noise shares (what the predicted variance of each background pixel is
made of) as one numba pass, with its numpy twin.

Per background pixel with a positive predicted variance ``u²``: the shares of the shot noise
``max(u² - read - m, 0) / u²``, of the read noise ``min(read / u², 1)``, of the master's
variance ``m / u²``, of the common (frame-level and scale) part ``min(sys / u², 0.9)`` and,
with a gain, of the sky's response non-uniformity ``(prnu shot gain)² / u²``. The gate takes
the median of each. numpy computed them with boolean gathers and some fifteen temporaries of
the background's size; the kernel gathers the pixels in raster order and makes the same
float64 operations in the same order, so every share is bit-identical and so are the medians
(tests/test_share_kernel.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from darkflow.stats._tails import nan_to_num64

__all__ = ["noise_shares", "noise_shares_reference"]


@nb.njit(cache=True, nogil=True)
def _noise_shares(
    u,
    valid,
    model_var,
    signal,
    use_signal,
    read,
    common_var,
    scale_rel,
    prnu,
    gain,
    use_gain,
    out,
    systematic,
    use_systematic,
):  # pragma: no cover
    ny, nx = u.shape
    n = 0
    for y in range(ny):
        for x in range(nx):
            if not valid[y, x]:
                continue
            uu = np.float64(u[y, x])
            u2 = uu * uu
            if not u2 > 0:
                continue
            mv = np.float64(model_var[y, x])
            shot = (u2 - read) - mv
            if not (shot >= 0.0 or math.isnan(shot)):
                shot = 0.0
            out[0, n] = shot / u2
            r = read / u2
            if not (r <= 1.0 or math.isnan(r)):
                r = 1.0
            out[1, n] = r
            sys = common_var
            if use_systematic:
                sv = np.float64(systematic[y, x])
                sys = sys + sv
                mv = mv - sv
                if not (mv >= 0.0 or math.isnan(mv)):
                    mv = 0.0
            elif use_signal:
                t = scale_rel * nan_to_num64(np.float64(signal[y, x]))
                sys = sys + t * t
            out[2, n] = mv / u2
            s = sys / u2
            if not (s <= 0.9 or math.isnan(s)):
                s = 0.9
            out[3, n] = s
            if use_gain:
                p = prnu * (shot * gain)
                out[4, n] = (p * p) / u2
            n += 1
    return n


def noise_shares(
    u: np.ndarray,
    valid: np.ndarray,
    model_var: np.ndarray,
    *,
    read_var: float,
    common_var: float,
    dark_signal: np.ndarray | None = None,
    scale_rel_sigma: float = 0.0,
    prnu: float = 0.0,
    gain: float | None = None,
    systematic_var: np.ndarray | None = None,
) -> np.ndarray:
    """The shares of every background pixel with ``u² > 0``, raster order: rows shot, read,
    master, common and (with a ``gain``) response non-uniformity; float64 of shape ``(4 or 5,
    n)``. The scale part of the common share: the model's ``systematic_var`` when given (then
    taken out of the master's share, not of the shot noise's), else ``(scale_rel_sigma x
    dark_signal)²`` when ``dark_signal`` is given and ``scale_rel_sigma > 0``. Equal to
    :func:`noise_shares_reference`."""
    arrays = [u, valid, model_var] + ([dark_signal] if dark_signal is not None else [])
    arrays += [systematic_var] if systematic_var is not None else []
    if not (u.ndim == 2 and all(isinstance(a, np.ndarray) and a.shape == u.shape for a in arrays)):
        return noise_shares_reference(
            u,
            valid,
            model_var,
            read_var=read_var,
            common_var=common_var,
            dark_signal=dark_signal,
            scale_rel_sigma=scale_rel_sigma,
            prnu=prnu,
            gain=gain,
            systematic_var=systematic_var,
        )
    rows = 5 if gain is not None else 4
    out = np.empty((rows, int(np.count_nonzero(valid))), np.float64)
    use_signal = dark_signal is not None and scale_rel_sigma > 0
    signal = dark_signal if use_signal else np.zeros((0, 0), np.float32)
    n = _noise_shares(
        u,
        np.asarray(valid, np.bool_),
        model_var,
        signal,
        use_signal,
        float(read_var),
        float(common_var),
        float(scale_rel_sigma),
        float(prnu),
        float(gain) if gain is not None else 0.0,
        gain is not None,
        out,
        systematic_var if systematic_var is not None else np.zeros((0, 0), np.float32),
        systematic_var is not None,
    )
    return out[:, :n]


def noise_shares_reference(
    u: np.ndarray,
    valid: np.ndarray,
    model_var: np.ndarray,
    *,
    read_var: float,
    common_var: float,
    dark_signal: np.ndarray | None = None,
    scale_rel_sigma: float = 0.0,
    prnu: float = 0.0,
    gain: float | None = None,
    systematic_var: np.ndarray | None = None,
) -> np.ndarray:
    """numpy twin of :func:`noise_shares` (the variance gate's former code)."""
    u2 = np.square(u[valid], dtype=np.float64)
    ok = u2 > 0
    u2 = u2[ok]
    mvar = np.asarray(model_var[valid], dtype=np.float64)[ok]
    read = read_var
    shot = np.maximum(u2 - read - mvar, 0.0)
    systematic = np.full(u2.shape, common_var, dtype=np.float64)
    if systematic_var is not None:
        sys_var = np.asarray(systematic_var[valid], dtype=np.float64)[ok]
        systematic += sys_var
        mvar = np.maximum(mvar - sys_var, 0.0)
    rows = [shot / u2, np.minimum(read / u2, 1.0), mvar / u2]
    if systematic_var is None and dark_signal is not None and scale_rel_sigma > 0:
        sv = np.asarray(dark_signal[valid], dtype=np.float64)[ok]
        systematic += np.square(scale_rel_sigma * np.nan_to_num(sv))
    rows.append(np.minimum(systematic / u2, 0.9))
    if gain is not None:
        signal = shot * gain  # ADU of signal behind the shot noise
        rows.append(np.square(prnu * signal) / u2)
    return np.array(rows, dtype=np.float64).reshape(len(rows), u2.size)

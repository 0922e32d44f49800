"""Incremental update of a master: merge new frames when the quality gates allow, else rebuild.

Merge semantics
---------------
The planes of a master are per-pixel sufficient statistics of its kept values: ``data`` is the
clipped mean ``m``, ``n_used`` the count ``n`` and ``uncertainty`` the standard error ``u``, so
the sum of squared deviations is ``M2 = u² n (n - 1)``. The new frames are combined on their
own (same kernels, same configuration, same bias), then merged per pixel with the parallel
update of Chan et al.::

    n = nA + nB
    m = (nA mA + nB mB) / n
    M2 = M2A + M2B + (mB - mA)² nA nB / n
    u = sqrt(M2 / (n - 1) / n)        (n > 1; with n == 1 the single side's uncertainty)

``n_low``/``n_high`` add up, the hot persistence is the valid-frame-weighted mean, and a pixel
stays flagged saturated only if it was saturated in both. For a pixel without outliers this is
exactly the mean of all kept values; the only difference to a rebuild of A∪B is that outliers
were judged against each batch's own median (consistent within the noise).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from darkflow.config import CombineConfig
from darkflow.exceptions import IncompatibleFramesError
from darkflow.io.jsonsafe import to_jsonable
from darkflow.master._bias import bias_for_update
from darkflow.master._combine import Progress, combine_files, master_from_planes
from darkflow.master._engine import summary_stats
from darkflow.model import FrameMeta, MasterDark, MasterMeta
from darkflow.stats import mad_std

__all__ = ["merge_gates", "merge_masters", "update_master"]

log = logging.getLogger(__name__)

_PARAM_KEYS = (
    "sigma_low",
    "sigma_high",
    "max_iters",
    "scale",
    "hot_sigma",
    "read_noise_e",
    "saturation_adu",
)
_MAX_Z_SAMPLES = 1_000_000


def _gate(ok: bool, value: Any, limit: Any, why: str) -> dict[str, Any]:
    return {"ok": bool(ok), "value": value, "limit": limit, "why": why}


def _z_sample(a: MasterDark, b: MasterDark) -> np.ndarray:
    step = max(1, a.data.size // _MAX_Z_SAMPLES)
    da = a.data.ravel()[::step].astype(np.float64)
    db = b.data.ravel()[::step].astype(np.float64)
    ua = a.uncertainty.ravel()[::step].astype(np.float64)
    ub = b.uncertainty.ravel()[::step].astype(np.float64)
    ok = np.isfinite(da) & np.isfinite(db) & (ua > 0) & (ub > 0) & np.isfinite(ua + ub)
    for sat in (a.saturated, b.saturated):
        if sat is not None:
            ok &= ~sat.ravel()[::step]
    return (db[ok] - da[ok]) / np.sqrt(ua[ok] ** 2 + ub[ok] ** 2)


def merge_gates(
    existing: MasterDark, new: MasterDark, config: CombineConfig
) -> dict[str, dict[str, Any]]:
    """Quality gates for merging ``new`` into ``existing``; each ``{"ok", "value", "limit", "why"}``."""
    em, nm = existing.meta, new.meta
    gates: dict[str, dict[str, Any]] = {}
    gates["kind"] = _gate(
        em.frame_kind == nm.frame_kind, str(nm.frame_kind), str(em.frame_kind), "frame kind differs"
    )
    gates["config"] = _gate(
        em.config_signature == nm.config_signature,
        nm.config_signature,
        em.config_signature,
        "sensor configuration differs",
    )
    gates["shape"] = _gate(
        existing.shape == new.shape, list(new.shape), list(existing.shape), "shape differs"
    )
    gates["bias"] = _gate(
        em.bias_subtracted == nm.bias_subtracted,
        nm.bias_subtracted,
        em.bias_subtracted,
        "bias handling differs",
    )
    old_params = {k: existing.provenance.get("params", {}).get(k) for k in _PARAM_KEYS}
    new_params = {k: asdict(config).get(k) for k in _PARAM_KEYS}
    gates["params"] = _gate(
        old_params == new_params, new_params, old_params, "combine parameters differ"
    )
    ea, na = em.exptime_s, nm.exptime_s
    same_exp = (math.isnan(ea) and math.isnan(na)) or abs(ea - na) <= 0.01 * max(abs(ea), abs(na))
    gates["exptime"] = _gate(same_exp, na, ea, "exposure differs by more than 1%")
    if em.temp_c is None or nm.temp_c is None:
        gates["temperature"] = _gate(True, nm.temp_c, em.temp_c, "temperature unknown: not gated")
    else:
        dt = abs(nm.temp_c - em.temp_c)
        gates["temperature"] = _gate(
            dt <= config.merge_temp_tol_c, dt, config.merge_temp_tol_c, "temperature differs"
        )
    if gates["shape"]["ok"]:
        z = _z_sample(existing, new)
        if z.size:
            med = float(np.median(z))
            spread = mad_std(z, center=med)
        else:
            med, spread = math.nan, math.nan
        gates["offset"] = _gate(
            z.size > 0 and abs(med) <= config.merge_max_z_offset,
            med,
            config.merge_max_z_offset,
            "new frames are offset from the master (median z)",
        )
        gates["spread"] = _gate(
            z.size > 0 and spread <= config.merge_max_z_spread,
            spread,
            config.merge_max_z_spread,
            "per-pixel residuals exceed the noise (robust std of z)",
        )
    return to_jsonable(gates)


def _meta_union(a: MasterMeta, b: MasterMeta) -> MasterMeta:
    na, nb = a.n_frames, b.n_frames

    def wmean(x, y):
        if x is None or y is None:
            return x if y is None else y
        return (x * na + y * nb) / (na + nb)

    def pick(f, x, y):
        got = [v for v in (x, y) if v is not None]
        return f(got) if got else None

    return dataclasses.replace(
        a,
        n_frames=na + nb,
        exptime_s=wmean(a.exptime_s, b.exptime_s),
        temp_c=wmean(a.temp_c, b.temp_c),
        temp_min_c=pick(min, a.temp_min_c, b.temp_min_c),
        temp_max_c=pick(max, a.temp_max_c, b.temp_max_c),
        date_start_utc=pick(min, a.date_start_utc, b.date_start_utc),
        date_end_utc=pick(max, a.date_end_utc, b.date_end_utc),
    )


def merge_masters(a: MasterDark, b: MasterDark) -> MasterDark:
    """Merge two masters of the same pixels by their sufficient statistics (no gates checked)."""
    if a.shape != b.shape:
        raise IncompatibleFramesError(f"cannot merge masters of shapes {a.shape} and {b.shape}")
    na = a.n_used.astype(np.int64)
    nb = b.n_used.astype(np.int64)
    n = na + nb
    if n.max(initial=0) > np.iinfo(np.uint16).max:
        raise IncompatibleFramesError("merged master would exceed 65535 frames per pixel")
    ma = np.where(na > 0, a.data, 0.0).astype(np.float64)
    mb = np.where(nb > 0, b.data, 0.0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, (na * ma + nb * mb) / n, np.nan)
        m2a = np.where(na > 1, a.uncertainty.astype(np.float64) ** 2 * na * (na - 1), 0.0)
        m2b = np.where(nb > 1, b.uncertainty.astype(np.float64) ** 2 * nb * (nb - 1), 0.0)
        m2 = m2a + m2b + (mb - ma) ** 2 * na * nb / np.maximum(n, 1)
        unc = np.sqrt(m2 / (n - 1) / n)
    unc = np.where(
        n > 1, unc, np.where(na == 1, a.uncertainty, np.where(nb == 1, b.uncertainty, np.nan))
    )
    va = na + a.n_low + a.n_high
    vb = nb + b.n_low + b.n_high
    v = va + vb
    with np.errstate(invalid="ignore", divide="ignore"):
        hot = np.where(v > 0, (a.hot_persistence * va + b.hot_persistence * vb) / v, 0.0)
    if a.saturated is not None and b.saturated is not None:
        sat = a.saturated & b.saturated
    else:
        sat = a.saturated if a.saturated is not None else b.saturated
    planes = {
        "mean": mean.astype(np.float32),
        "uncertainty": unc.astype(np.float32),
        "n_used": n.astype(np.uint16),
        "n_low": (a.n_low.astype(np.int64) + b.n_low).astype(np.uint16),
        "n_high": (a.n_high.astype(np.int64) + b.n_high).astype(np.uint16),
        "hot": hot.astype(np.float32),
        "saturated": sat if sat is not None else np.zeros(a.shape, bool),
    }
    meta = _meta_union(a.meta, b.meta)
    stats = {**a.stats, **summary_stats(planes, meta.n_frames)}
    prov = {
        **a.provenance,
        "inputs": [*a.provenance.get("inputs", []), *b.provenance.get("inputs", [])],
        "history": [
            *a.provenance.get("history", []),
            f"merged {b.meta.n_frames} new frames (total {meta.n_frames})",
        ],
    }
    return master_from_planes(planes, meta, saturated=sat, stats=stats, provenance=prov)


def update_master(
    existing: MasterDark,
    new_paths: Sequence[str | os.PathLike[str]],
    *,
    config: CombineConfig | None = None,
    bias: MasterDark | str | os.PathLike[str] | None = None,
    allow_few: bool = False,
    metas: Sequence[FrameMeta] | None = None,
    progress: Progress | None = None,
    band_rows: int | None = None,
) -> MasterDark:
    """Add new frames to an existing master: merge when the gates allow, otherwise rebuild.

    The new frames are combined on their own and compared with ``existing``
    (:func:`merge_gates`: same kind, configuration, shape, bias handling and combine
    parameters, exposure within 1%, temperature within ``config.merge_temp_tol_c``, and the
    per-pixel residual ``z = (new - old) / sqrt(u_old² + u_new²)`` centred (|median| ≤
    ``merge_max_z_offset``) and no wider than the noise (robust std ≤ ``merge_max_z_spread``)).
    If every gate passes the two are merged (module docstring); otherwise all inputs, old
    (from ``existing.provenance["inputs"]``) and new, are combined again. The result records
    ``provenance["update"] = "merged" | "rebuilt"``, ``update_reason`` and ``update_gates``.

    Parameters
    ----------
    existing
        The current master (e.g. from :func:`~darkflow.master.read_master`); not modified.
    new_paths
        The new FITS files.
    config
        Combine settings (must match the existing master's to merge).
    bias
        Bias for a bias-subtracted ``existing`` (default: the bias file it records).
    allow_few, progress, band_rows
        As in :func:`~darkflow.master.combine_files`.
    metas
        Normalised headers of ``new_paths``; a rebuild reads the headers of all files itself.

    Raises
    ------
    IncompatibleFramesError
        A rebuild is needed but ``existing`` records no input files.
    """
    config = config or CombineConfig()
    new_paths = [str(p) for p in new_paths]
    bias_master = bias_for_update(existing, bias)
    new = combine_files(
        new_paths,
        config=config,
        bias=bias_master,
        allow_few=allow_few,
        metas=metas,
        frame_kind=existing.meta.frame_kind,
        progress=progress,
        band_rows=band_rows,
    )
    gates = merge_gates(existing, new, config)
    failed = [name for name, g in gates.items() if not g["ok"]]
    if not failed:
        result = merge_masters(existing, new)
        mode, reason = "merged", "all quality gates passed"
    else:
        reason = "; ".join(f"{name}: {gates[name]['why']}" for name in failed)
        old_paths = [i.get("path") for i in existing.provenance.get("inputs", []) if i.get("path")]
        if not old_paths:
            raise IncompatibleFramesError(
                f"cannot merge ({reason}) and cannot rebuild: the existing master records no "
                "input files"
            )
        log.info("rebuilding master from %d files: %s", len(old_paths) + len(new_paths), reason)
        all_paths = list(dict.fromkeys([*old_paths, *new_paths]))
        result = combine_files(
            all_paths,
            config=config,
            bias=bias_master,
            allow_few=allow_few,
            frame_kind=existing.meta.frame_kind,
            progress=progress,
            band_rows=band_rows,
        )
        mode = "rebuilt"
    prov = {
        **result.provenance,
        "update": mode,
        "update_reason": reason,
        "update_gates": gates,
        "history": [*result.provenance.get("history", []), f"update: {mode} ({reason})"],
    }
    return dataclasses.replace(result, provenance=to_jsonable(prov))

"""The header's EGAIN checked by photon transfer on pairs of calibrated lights, per session.

Once a night's lights are calibrated, the lights of one session, configuration, exposure and
dark model (master, scale) are taken in a stable order (``DATE-OBS``, then the file name) and
paired one after the other (1-2, 3-4, ...: independent pairs, at most :data:`MAX_PAIRS`, fewer
once the gain is known to a third of the header's stated trust; a
light whose sky level differs from the next one's by more than :data:`MAX_LEVEL_RATIO` gives
way to the following one). Each
pair's difference gives per-tile photon-transfer sums (:func:`darkflow.subtract.lightpair.
pair_tiles`, on the calibrated pixels less their pedestal: the same model subtracted from both,
so the difference is the raw lights' difference and the model's noise cancels); the session's
tiles together give its gain with a jackknife uncertainty over the tiles.

The gate compares the header's EGAIN (with its stated trust, ``verify.header_gain_rel_sigma``)
with that gain: ``z = |ln(g_hdr / g_pair)| / sigma``, two-sided at ``verify.gate_false_alarm``
for the whole run, shared among the sessions tested (Bonferroni): the probability that any
session of the run is flagged when every header is right is at most ``gate_false_alarm``. A
flagged session's lights get ``egain_pair_mismatch`` and, when calibrated, become ``degraded``
(their shot-noise uncertainty comes from the wrong gain). Where no measurement is possible (a
single light, no header gain, a sky too faint for its shot noise to dominate the difference,
too few tiles) the frame report says why in ``pair_gain_check`` and nothing changes.

The calibrated files are not rewritten: their uncertainty planes keep the header's gain, and
the frame report states the measured one. The registry's status of a light follows the verdict
(``darkflow.pipeline.run._sync_pair_verdicts``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkflow.model import GainEstimate, LightStatus

__all__ = ["DELIVERED", "MAX_LEVEL_RATIO", "PAIR_COLUMNS", "check_light_pairs"]

log = logging.getLogger(__name__)

MAX_LEVEL_RATIO = 1.5
"""Two lights pair when their sky levels are within this factor: the level scaling cancels a
fixed pattern that follows the level, not a change of the scene's make-up (moonlight)."""

MAX_PAIRS = 4
"""Pairs measured per session (the first in order): four pairs of even a 256x256 frame give
the gain to ~1 %, and reading every light of a long session again would cost more than it
tells."""

PAIR_COLUMNS = [
    "pair_gain_e_per_adu",
    "pair_gain_sigma",
    "pair_gain_z",
    "pair_gain_check",
    "pair_gain_saturated_tiles",
]
"""Frame-report columns of the check: the session's light-pair gain, its 1-sigma uncertainty,
the gate's statistic, ``pass``, ``fail`` or ``not_measured:<reason>``, and the tiles left out
for their raw level's nearness to the clip."""

DELIVERED = (str(LightStatus.CALIBRATED), str(LightStatus.DEGRADED))
"""Statuses of a light with an output: the ones the check reads (and the registry follows)."""


def _session_key(row: dict[str, Any]) -> tuple:
    return (
        str(row.get("night") or ""),
        str(row.get("session") or ""),
        str(row.get("config_signature") or ""),
        float(row.get("exptime_s") or 0.0),
        str(row.get("master_id") or ""),
        str(row.get("secondary_master_id") or ""),
        str(row.get("scale_mode") or ""),
        str(row.get("scale_factor")),
        str(row.get("egain_e_per_adu")),
    )


def _order(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row.get("date_obs_utc") or ""), Path(str(row["path"])).name)


def _read_sky(workdir: Path, row: dict[str, Any]) -> tuple[np.ndarray, float | None] | None:
    """The calibrated light less its pedestal and the raw clip level on its scale (the raw
    light's saturation less the dark model's median level, ``None`` when either is unknown);
    ``None`` when unreadable."""
    from darkflow.exceptions import DarkflowError
    from darkflow.io.fits import read_image

    try:
        data, header = read_image(workdir / str(row["output_path"]), dtype="float32")
    except (DarkflowError, OSError) as err:
        log.warning("light-pair gain: %s: %s", row["path"], err)
        return None
    dark = header.get("DFDKMED")
    sat = _raw_saturation(Path(str(row["path"])))
    clip = None if sat is None or dark is None else sat - float(dark)
    return data.astype(np.float64) - float(header.get("DFPEDEST", 0.0) or 0.0), clip


def _raw_saturation(path: Path) -> float | None:
    """The raw light's clip level: its header's ``SATURATE`` or ``DATAMAX``, else the largest
    value its integer storage holds (``BITPIX`` with ``BZERO``); ``None`` for floating-point
    data without either keyword, or a header that cannot be read (a header-only read that
    never raises)."""
    from darkflow.io.fastheader import read_header_info

    info = read_header_info(path, keys=frozenset({"SATURATE", "DATAMAX"}))
    if info.header is None or info.error is not None:
        return None
    for key in ("SATURATE", "DATAMAX"):
        value = _number(info.header, key)
        if value is not None and value > 0:
            return value
    try:
        dtype = np.dtype(info.dtype or "")
    except TypeError:
        return None
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else None


def _number(row: dict[str, Any], key: str) -> float | None:
    try:
        value = float(row.get(key))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _measure(workdir: Path, rows: Sequence[dict[str, Any]], enough_rel: float = 0.0):
    """The session's light-pair gain: ``(estimate, not-measured reason, tiles, tiles left out
    near the clip)``.

    Pairs are added until the estimate's relative uncertainty is at most ``enough_rel`` (or
    :data:`MAX_PAIRS` are measured): the gate's spread is this uncertainty and the header's
    stated trust in quadrature, and a third of the latter adds less than 6 % to it. The stop
    depends on the uncertainty only, never on the gain's value, so the test keeps its size.
    """
    from darkflow.stats.cfa import is_cfa
    from darkflow.subtract.lightpair import gain_from_light_pairs, pair_tiles

    if len(rows) < 2:
        return None, "one_light", 0, 0
    floors = [_number(r, "read_dark_variance_adu2") for r in rows]
    if any(f is None for f in floors):
        return None, "no_noise_floor", 0, 0
    tiles = []
    prev: tuple[dict[str, Any], np.ndarray, float, float | None] | None = None
    for row, floor in zip(rows, floors, strict=True):
        if len(tiles) >= MAX_PAIRS:
            break
        read = _read_sky(workdir, row)
        if read is None:
            continue
        sky, clip = read
        level = float(np.nanmean(sky))  # a median sits on the lattice of coarse ADC steps
        if prev is not None:
            p_row, p_sky, p_level, p_clip = prev
            if (
                level > 0
                and p_level > 0
                and max(level, p_level) / min(level, p_level) <= (MAX_LEVEL_RATIO)
            ):
                tiles.append(
                    pair_tiles(
                        p_sky,
                        sky,
                        read_variance=0.5
                        * (
                            float(_number(p_row, "read_dark_variance_adu2") or 0)
                            + float(floor or 0.0)
                        ),
                        model_variance=float(_number(row, "model_variance_adu2") or 0.0),
                        cfa=is_cfa(row.get("bayer_pattern") or None),
                        clip=None if clip is None or p_clip is None else min(clip, p_clip),
                    )
                )
                prev = None
                est = gain_from_light_pairs(tiles)[0]
                if est is not None and est.sigma <= enough_rel * est.value:
                    break
                continue
        prev = (row, sky, level, clip)
    if not tiles:
        return None, "no_pair_of_close_sky_levels", 0, 0
    return (*gain_from_light_pairs(tiles), sum(t.saturated for t in tiles))


def check_light_pairs(
    rows: Sequence[dict[str, Any]],
    *,
    workdir: Path,
    false_alarm: float,
    header_rel_sigma: float,
    top_cause: Callable[[str], str | None],
) -> int:
    """Measure each session's light-pair gain, gate the header's EGAIN, update ``rows`` in
    place (the :data:`PAIR_COLUMNS`, the reason, the status and the top cause of flagged
    lights). Returns the number of sessions flagged."""
    from darkflow.pipeline.records import reasons_text
    from darkflow.subtract.lightpair import check_header_gain
    from darkflow.triage.reasons import LightReason

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if str(row.get("status")) in DELIVERED and row.get("output_path"):
            groups.setdefault(_session_key(row), []).append(row)
    measured = {}
    for key in sorted(groups, key=str):
        members = sorted(groups[key], key=_order)
        head = members[0]
        egain = _number(head, "egain_e_per_adu")
        header = None
        if head.get("egain_source") == "header" and egain:
            header = GainEstimate(egain, egain * header_rel_sigma, "header", 1)
        if header is None:
            measured[key] = (None, "no_header_gain", 0, None, None)
            continue
        est, why, n_tiles, saturated = _measure(workdir, members, header_rel_sigma / 3.0)
        measured[key] = (est, why, n_tiles, header, saturated)
    tested = sum(1 for est, *_ in measured.values() if est is not None)
    p = false_alarm / max(tested, 1)
    flagged = 0
    for key, (est, why, n_tiles, header, saturated) in measured.items():
        check = check_header_gain(header, est, n_tiles, false_alarm=p, not_measured=why)
        text = (
            ("fail" if check.failed else "pass")
            if check.measured
            else (f"not_measured:{check.reason}")
        )
        flagged += bool(check.failed)
        for row in groups[key]:
            row["pair_gain_e_per_adu"] = None if est is None else round(est.value, 4)
            row["pair_gain_sigma"] = None if est is None else round(est.sigma, 4)
            row["pair_gain_z"] = check.z
            row["pair_gain_check"] = text
            row["pair_gain_saturated_tiles"] = saturated
            if not check.failed:
                continue
            row["reasons"] = reasons_text(
                [row.get("reasons") or "", LightReason.EGAIN_PAIR_MISMATCH]
            )
            if str(row["status"]) == str(LightStatus.CALIBRATED):
                row["status"] = LightStatus.DEGRADED
            row["top_cause"] = top_cause([row["reasons"]])
    return flagged

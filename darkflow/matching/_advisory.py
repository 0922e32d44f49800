"""Acquisition advisories: which darks to take when no dark model passes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from darkflow.config import MatchingConfig
from darkflow.matching._records import temperature_gate_c
from darkflow.model import FrameMeta
from darkflow.thermal import TempEstimate

__all__ = ["acquisition_advisory", "merge_advisories"]


def acquisition_advisory(
    light: FrameMeta,
    config: MatchingConfig | None = None,
    *,
    temp: TempEstimate | None = None,
    doubling_temp_c: float | None = None,
) -> dict[str, Any]:
    """Which darks to take so that lights like this one can be calibrated."""
    cfg = config or MatchingConfig()
    td = doubling_temp_c or cfg.doubling_temp_c
    temp_c = temp.temp_c if temp is not None and temp.known else light.ccd_temp_c
    target = light.set_temp_c if light.set_temp_c is not None else temp_c
    if temp_c is not None and light.set_temp_c is not None and abs(temp_c - light.set_temp_c) > 1:
        target = temp_c  # the set-point was not reached: match the real temperature
    n = cfg.advisory_n_frames
    where = (
        f", sensor at {target:.1f} °C"
        if target is not None
        else ", at the same ambient temperature as the lights"
    )
    return {
        "config_signature": light.config_signature,
        "instrument": light.instrument,
        "exptime_s": light.exptime_s,
        "gain_setting": light.gain_setting,
        "offset": light.offset,
        "binning": f"{light.xbin}x{light.ybin}",
        "temp_c": None if target is None else round(float(target), 1),
        "temp_tolerance_c": round(temperature_gate_c(cfg.max_dark_mismatch, td), 2),
        "n_frames": n,
        "text": (
            f"Take {n} darks with {light.instrument or 'this camera'} at "
            f"{light.exptime_s:g} s{_setting('gain', light.gain_setting)}"
            f"{_setting('offset', light.offset)}, binning {light.xbin}x{light.ybin}{where}."
            if light.exptime_s
            else "Fix the light's exposure time (EXPTIME) first."
        ),
    }


def _setting(name: str, value: object) -> str:
    if value is None:
        return ""
    return f", {name} {value:g}" if isinstance(value, float) else f", {name} {value}"


def merge_advisories(advisories: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One advisory per (configuration, exposure, temperature within the tolerance).

    Each merged advisory counts the lights it covers (``n_lights``); the order is stable.
    """
    merged: list[dict[str, Any]] = []
    for adv in advisories:
        if not adv:
            continue
        for m in merged:
            same_t = (m["temp_c"] is None and adv["temp_c"] is None) or (
                m["temp_c"] is not None
                and adv["temp_c"] is not None
                and abs(m["temp_c"] - adv["temp_c"]) <= m["temp_tolerance_c"]
            )
            if (
                m["config_signature"] == adv["config_signature"]
                and m["exptime_s"] == adv["exptime_s"]
                and same_t
            ):
                m["n_lights"] += 1
                break
        else:
            merged.append({**adv, "n_lights": 1})
    return merged

"""What a correct pipeline should conclude on a zoo night (``zoo_truth.json``).

Built from the planned frames of the night *as designed* (without the injected fault), so the
expectation does not depend on what the fault did to the headers. Every dark exposure of a night
is one dark *source* (a master a pipeline would build); a light's dark model is classified by
what the sources of its configuration offer, in this order:

``exact``
    darks of the light's exposure, on its night, within :data:`TEMP_TOLERANCE_C`.
``exact_other_night``
    the same on another night, both nights with biases (the bias level is corrected).
``interpolated``
    darks at two exposures bracketing the light's, on its night (a per-pixel intercept and rate
    need no bias) or on nights whose bias level is known (biases on both nights), where the
    data can show the dark signal linear in exposure: biases on the light's night (the rate
    through the bias is tested on two exposures) or three or more exposures (a line is tested
    on three points).

These three are *provable*: the right verdict is ``calibrated``. Then, *usable* (``calibrated``
or ``degraded`` with an expected error are both right):

``interpolated_unproven``
    bracketing darks at only two exposures and no bias: two points always fit a line, so no
    data can show the interpolation right (a pipeline states its expected error instead).

``extrapolated``
    two or more exposures (on the light's night, or bias-corrected) that do not bracket it.
``scaled``
    one exposure, with biases on its night and the light's (dark signal scaled by exposure).
``uncorrected``
    a model from another night (the light's exposure, or two exposures) without biases to
    correct the level: a few ADU off.
``thermal_scaled``
    one of the above exists only with darks outside the temperature tolerance.

``none``: nothing usable; the right verdict is ``quarantined``. A light whose sources include
the faulted dark set is ``affected_by_fault``: anything but a silent ``calibrated`` is right.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from darkflow._version import __version__
from darkflow.exceptions import ConfigError

__all__ = [
    "DARK_FAULTS",
    "LEVEL_FAULTS",
    "PROVABLE",
    "TEMP_TOLERANCE_C",
    "TRUTH_FILE",
    "USABLE",
    "build_truth",
    "fault_effect_adu",
    "fault_effect_sigma",
    "fault_weight",
    "light_sigma_adu",
    "load_zoo_truth",
]

TRUTH_FILE = "zoo_truth.json"
FORMAT_VERSION = 1
TEMP_TOLERANCE_C = 0.5  # dark current changes by 2**(0.5/6) - 1 = 6 % at most
PROVABLE = ("exact", "exact_other_night", "interpolated")
USABLE = ("interpolated_unproven", "uncorrected", "extrapolated", "scaled", "thermal_scaled")
DARK_FAULTS = (
    "wrong_gain",
    "wrong_gain_recorded",
    "warm_darks",
    "warm_darks_recorded",
    "light_leak",
    "cosmic_rays",
    "bias_drift",
    "readout_mode",
)


def _source_id(night: int, exptime_s: float) -> str:
    return f"night-{night + 1}/dark/{exptime_s:g}s"


def _sources(params, clean_plans) -> list[dict[str, Any]]:
    out = []
    for k, plan in enumerate(clean_plans):
        groups: dict[float, list] = {}
        for f in plan.frames:
            if f.kind == "dark":
                groups.setdefault(f.exptime_s, []).append(f)
        for t, frames in sorted(groups.items()):
            faulty = (
                params.fault in DARK_FAULTS
                and k == params.fault_night
                and t == params.fault_exposure
            )
            out.append(
                {
                    "id": _source_id(k, t),
                    "kind": "dark",
                    "night_index": k,
                    "night": plan.spec.date,
                    "exptime_s": t,
                    "set_temp_c": frames[0].set_temp_c,
                    "temp_c": round(float(np.mean([f.true_temp_c for f in frames])), 3),
                    "n_frames": len(frames),
                    "gain_setting": frames[0].gain_setting,
                    "clean": not faulty,
                    "fault": params.fault if faulty else None,
                }
            )
    return out


def _bias_sets(params, clean_plans) -> list[dict[str, Any]]:
    out = []
    for k, plan in enumerate(clean_plans):
        n = sum(f.kind == "bias" for f in plan.frames)
        if n:
            jump = params.fault == "bias_jump" and k == params.fault_night
            out.append(
                {
                    "id": f"night-{k + 1}/bias",
                    "kind": "bias",
                    "night_index": k,
                    "night": plan.spec.date,
                    "exptime_s": next(f.exptime_s for f in plan.frames if f.kind == "bias"),
                    "n_frames": n,
                    "clean": not jump,
                    "fault": "bias_jump" if jump else None,
                }
            )
    return out


def _model(
    night: int, t: float, sources: list[dict], bias_nights: set[int]
) -> tuple[str, list[str]] | None:
    def corrected(s: dict) -> bool:
        return s["night_index"] == night or (
            s["night_index"] in bias_nights and night in bias_nights
        )

    same = [s for s in sources if s["night_index"] == night and s["exptime_s"] == t]
    if same:
        return "exact", [s["id"] for s in same]
    other = [s for s in sources if s["exptime_s"] == t and corrected(s)]
    if other:
        return "exact_other_night", [other[0]["id"]]
    ok = [s for s in sources if corrected(s)]
    below = sorted((s for s in ok if s["exptime_s"] < t), key=lambda s: (-s["exptime_s"], s["id"]))
    above = sorted((s for s in ok if s["exptime_s"] > t), key=lambda s: (s["exptime_s"], s["id"]))
    if below and above:
        used = [below[0]["id"], above[0]["id"]]
        shown = night in bias_nights or len({s["exptime_s"] for s in ok}) >= 3
        return ("interpolated" if shown else "interpolated_unproven"), used
    nearest = sorted(ok, key=lambda s: (abs(s["exptime_s"] - t), s["id"]))
    exposures = list(dict.fromkeys(s["exptime_s"] for s in nearest))
    if len(exposures) >= 2:
        used = [next(s for s in nearest if s["exptime_s"] == e) for e in exposures[:2]]
        return "extrapolated", [s["id"] for s in used]
    if nearest and night in bias_nights:
        return "scaled", [nearest[0]["id"]]
    for s in sorted(sources, key=lambda s: s["id"]):  # a model of another night, level unknown
        twin = [
            o
            for o in sources
            if o["night_index"] == s["night_index"] and o["exptime_s"] != s["exptime_s"]
        ]
        if s["exptime_s"] == t or twin:
            return "uncorrected", [s["id"], *(o["id"] for o in twin[:1] if s["exptime_s"] != t)]
    return None


def classify_light(
    night: int, exptime_s: float, temp_c: float, sources: list[dict], bias_nights: set[int]
) -> tuple[str, list[str]]:
    """The dark model category of one light and the sources it uses (see the module doc)."""
    near = [s for s in sources if abs(s["temp_c"] - temp_c) <= TEMP_TOLERANCE_C]
    found = _model(night, float(exptime_s), near, bias_nights)
    if found is not None:
        return found
    found = _model(night, float(exptime_s), sources, bias_nights)
    if found is not None:
        return "thermal_scaled", found[1]
    return "none", []


_PATTERN_ADU = 3.0  # ReadoutModeChange's default column pattern rms (ADU)
LEVEL_FAULTS = (
    "bias_drift",
    "bias_jump",
    "readout_mode",
    "light_leak",
    "warm_darks",
    "warm_darks_recorded",
    "wrong_gain",
    "wrong_gain_recorded",
)
"""Faults that change the calibrated lights' pixel values (``fault_effect`` gives their size);
``cosmic_rays`` (hits the combine rejects) and ``wrong_egain`` (pixels untouched, only the
stated uncertainty wrong) are not level effects."""


def light_sigma_adu(params, exptime_s: float, temp_c: float, *, hot: bool = False) -> float:
    """The noise of a calibrated light's typical background pixel (ADU): sky (with the nebula's
    peak in a nebula-filled field), dark current and read noise of the light, plus the master's own noise (``n_darks`` frames); ``hot``: of the
    median hot pixel."""
    cam = params.camera
    dark_e = cam.dark_current_e_per_s * cam.dark_scale(temp_c) * exptime_s
    dark_e *= cam.hot_factor if hot else 1.0
    sky = params.sky.background_e_per_s
    if params.scene == "nebula":  # a nebula-filled field: the nebula is the background
        sky += params.sky.nebula_e_per_s
    sky_e = sky * exptime_s
    n = max(int(params.n_darks), 1)
    var_e = sky_e + dark_e + cam.read_noise_e**2 + (dark_e + cam.read_noise_e**2) / n
    return math.sqrt(var_e) / cam.egain_e_per_adu


def fault_effect_sigma(
    params, exptime_s: float, temp_c: float, *, weight: float | None = None
) -> float | None:
    """:func:`fault_effect_adu` in units of the light's noise; for faults that scale the dark
    signal (warm darks, another gain) the larger of the typical pixel's and the median hot
    pixel's (where they show: over- or under-subtracted hot pixels)."""
    typical = fault_effect_adu(params, exptime_s, temp_c, weight=weight)
    if typical is None:
        return None
    ratio = typical / light_sigma_adu(params, exptime_s, temp_c)
    if params.fault.startswith(("warm_darks", "wrong_gain")):
        hot = fault_effect_adu(params, exptime_s, temp_c, hot=True, weight=weight) or 0.0
        ratio = max(ratio, hot / light_sigma_adu(params, exptime_s, temp_c, hot=True))
    return ratio


def fault_effect_adu(
    params, exptime_s: float, temp_c: float, *, hot: bool = False, weight: float | None = None
) -> float | None:
    """What the injected fault changes in a typical pixel of a light (``exptime_s``,
    ``temp_c``) calibrated with the faulted master (ADU); ``None`` for faults that are not
    level effects.

    The faulted master is off by ``e_D`` at its own exposure ``t_D``: a bias offset as it is
    (``bias_drift``; ``readout_mode``: its offset and column pattern), a signal in the darks
    (stray light, the extra dark current of warmer darks, the dark signal read at another
    gain) as its electrons at ``t_D``. The light gets ``weight x e_D``: the weight of the
    faulted master in the light's dark model (1 at the same exposure, ``t_L / t_D`` scaled with
    a bias, the two-point weight ``(t_o - t_L) / (t_o - t_D)`` with a master at ``t_o``);
    default ``t_L / t_D``. ``bias_jump``: half the jump (the master bias sits between the two
    levels). Hot pixels are hit much harder than the typical pixel by warm darks and another
    gain (``hot``: the median hot pixel's).
    """
    kind, mag, cam = params.fault, float(params.fault_magnitude or 0.0), params.camera
    if kind not in LEVEL_FAULTS:
        return None
    if kind == "bias_jump":
        return abs(mag) / 2.0
    t_d = float(params.fault_exposure or exptime_s)
    w = abs(exptime_s / t_d if weight is None else weight)
    dark_e = cam.dark_current_e_per_s * cam.dark_scale(temp_c) * t_d
    dark_e *= cam.hot_factor if hot else 1.0
    if kind == "bias_drift":
        return w * abs(mag)
    if kind == "readout_mode":
        return w * math.hypot(mag, _PATTERN_ADU)
    if kind == "light_leak":
        rate = max(mag, 10.0 / t_d)  # as _zoo_spec injects it
        return w * rate * t_d / cam.egain_e_per_adu
    if kind.startswith("warm_darks"):
        return w * (2.0 ** (mag / cam.doubling_temp_c) - 1.0) * dark_e / cam.egain_e_per_adu
    k = cam.egain_e_per_adu / cam.at_gain(mag).egain_e_per_adu  # ADU per e- ratio
    return w * abs(k - 1.0) * dark_e / cam.egain_e_per_adu


def fault_weight(exptime_s: float, used: list[str], sources: list[dict]) -> float:
    """The weight of the faulted master in a light's dark model (see :func:`fault_effect_adu`):
    0 when the model does not use it."""
    by_id = {s["id"]: s for s in sources}
    models = [by_id[i] for i in used if i in by_id]
    bad = [s for s in models if not s["clean"]]
    if not bad:
        return 0.0
    t_d = float(bad[0]["exptime_s"])
    if t_d == exptime_s:
        return 1.0
    other = [s for s in models if s["clean"] and float(s["exptime_s"]) != t_d]
    if other:
        t_o = float(other[0]["exptime_s"])
        return (t_o - exptime_s) / (t_o - t_d)
    return exptime_s / t_d


def _expected(category: str, affected: bool) -> list[str]:
    if affected:
        return ["degraded", "quarantined"]
    if category in PROVABLE:
        return ["calibrated"]
    if category in USABLE:
        return ["calibrated", "degraded"]
    return ["quarantined"]


def build_truth(params, plans, clean_plans, *, expected_cause: dict[str, str]) -> dict[str, Any]:
    """The ``zoo_truth.json`` content of a zoo night (``plans``: as written, one per night)."""
    sources = _sources(params, clean_plans)
    biases = _bias_sets(params, clean_plans)
    bias_nights = {b["night_index"] for b in biases}
    faulty = {s["id"] for s in sources if not s["clean"]}
    lights = []
    for k, (plan, clean) in enumerate(zip(plans, clean_plans, strict=True)):
        written = {(f.session, f.block, f.index): f for f in plan.frames}
        for f in clean.frames:
            if f.kind != "light":
                continue
            category, used = classify_light(k, f.exptime_s, f.true_temp_c, sources, bias_nights)
            affected = bool(faulty & set(used))
            if params.fault == "wrong_egain" or (
                params.fault == "bias_jump" and k == params.fault_night
            ):
                affected = True
            path = f"night-{k + 1}/{written[(f.session, f.block, f.index)].relpath}"
            sigma = light_sigma_adu(params, f.exptime_s, f.true_temp_c)
            effect = ratio = None
            if affected:
                w = fault_weight(f.exptime_s, used, sources) if faulty & set(used) else None
                effect = fault_effect_adu(params, f.exptime_s, f.true_temp_c, weight=w)
                ratio = fault_effect_sigma(params, f.exptime_s, f.true_temp_c, weight=w)
            lights.append(
                {
                    "path": path,
                    "night_index": k,
                    "night": plan.spec.date,
                    "exptime_s": f.exptime_s,
                    "temp_c": round(f.true_temp_c, 3),
                    "scene": params.scene,
                    "dark_model": category,
                    "sources": used,
                    "provable": category in PROVABLE,
                    "usable": category in PROVABLE or category in USABLE,
                    "affected_by_fault": affected,
                    "expected_status": _expected(category, affected),
                    "noise_adu": round(sigma, 4),
                    "fault_effect_adu": None if effect is None else round(effect, 4),
                    "fault_effect_sigma": None if ratio is None else round(ratio, 4),
                }
            )
    cam = params.camera
    header_egain = {
        "present": cam.egain_e_per_adu,
        "absent": None,
        "wrong": cam.egain_e_per_adu * params.egain_factor,
    }[params.egain]
    fault = None
    if params.fault is not None:
        target: dict[str, Any] = {"kind": "all"}
        if params.fault in DARK_FAULTS:
            target = {
                "kind": "dark",
                "id": _source_id(params.fault_night, float(params.fault_exposure)),
                "night": params.nights[params.fault_night].date,
                "exptime_s": params.fault_exposure,
            }
        elif params.fault == "bias_jump":
            target = {
                "kind": "bias",
                "id": f"night-{params.fault_night + 1}/bias",
                "night": params.nights[params.fault_night].date,
            }
        codes = sorted(
            {c for plan in plans for f in plan.frames for c in f.faults} - {"egain_keyword"}
        )
        if params.fault == "wrong_egain":
            codes = ["egain_keyword"]
        effects = [
            light["fault_effect_sigma"]
            for light in lights
            if light["fault_effect_sigma"] is not None
        ]
        fault = {
            "kind": params.fault,
            # the fault's change of an affected light's pixels in units of their noise
            # (fault_effect_sigma, median over the affected lights; None: not a level effect)
            "effect_sigma": round(float(np.median(effects)), 4) if effects else None,
            "level_effect": params.fault in LEVEL_FAULTS,
            "codes": codes,
            "magnitude": params.fault_magnitude,
            "target": target,
            "expected_cause": expected_cause[params.fault],
        }
    categories: dict[str, int] = {}
    for light in lights:
        categories[light["dark_model"]] = categories.get(light["dark_model"], 0) + 1
    return {
        "generator": "darkflow.simulate.zoo",
        "format_version": FORMAT_VERSION,
        "darkflow_version": __version__,
        "family": params.family,
        "seed": params.seed,
        "name": params.name,
        "description": params.description,
        "clean": params.fault is None,
        "params": params.to_dict(),
        "nights": [
            {
                "dir": f"night-{k + 1}",
                "date": plan.spec.date,
                "bias_offset_adu": params.nights[k].bias_offset_adu,
                "n_files": len(plan.frames),
            }
            for k, plan in enumerate(plans)
        ],
        "egain": {
            "header": params.egain,
            "true_e_per_adu": cam.egain_e_per_adu,
            "header_e_per_adu": header_egain,
        },
        "bayer_pattern": cam.bayer_pattern,
        "stored_bayer_pattern": cam.stored_bayer_pattern,
        "fault": fault,
        "masters": [*biases, *sources],
        "lights": lights,
        "dark_models": dict(sorted(categories.items())),
        "temp_tolerance_c": TEMP_TOLERANCE_C,
    }


def load_zoo_truth(root: str | Path) -> dict[str, Any]:
    """Read ``zoo_truth.json`` of a zoo night (``root``: the tree or the file itself)."""
    path = Path(root)
    if path.is_dir():
        path = path / TRUTH_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the zoo truth {path}: {err}") from err
    if data.get("generator") != "darkflow.simulate.zoo":
        raise ConfigError(f"{path} is not a zoo truth file")
    return data

"""The dark model of a light: the recipe of masters, bias and glow with its variance (the formulas
are in :mod:`darkflow.subtract`).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from darkflow.exceptions import CalibrationError
from darkflow.model import MasterDark, ScaleMode
from darkflow.stats._robust import nanmedian as _nanmedian

if TYPE_CHECKING:
    from darkflow.matching import CalibrationIndex, MatchDecision


FLAG_SATURATED = 1  # saturated in a master used by the model
FLAG_NONLINEAR = 2  # predicted dark signal above the measured linear range (not trusted)
FLAG_GLOW = 4  # amp-glow region (glow kept out of the temperature scaling)
FLAG_LIMITED = 8  # dark signal capped by the conservative alternative (left under-corrected)


@dataclass(frozen=True, eq=False)
class DarkModel:
    """The dark signal (bias included) expected in a light, with its variance.

    ``flags`` (uint8, optional) marks pixels with :data:`FLAG_SATURATED`,
    :data:`FLAG_NONLINEAR`, :data:`FLAG_GLOW`, :data:`FLAG_LIMITED`; ``dark_signal`` is the model minus the bias
    (when a bias was used); ``weights`` the recipe weights of ``master_ids``.
    ``systematic_variance`` (float32, optional): the part of ``variance`` that is the
    recipe's stated scale uncertainty (temperature, exposure, non-linearity) times the dark
    pattern: one error of scale for the whole light, not noise of its pixels.
    """

    data: np.ndarray  # float32, ADU, bias included
    variance: np.ndarray  # float32, ADU^2
    scale_mode: ScaleMode
    scale_factor: float
    master_ids: tuple[str, ...]
    flags: np.ndarray | None = None
    dark_signal: np.ndarray | None = None
    weights: tuple[float, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    systematic_variance: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"<DarkModel {self.scale_mode} x{self.scale_factor:.4g} masters={self.master_ids} "
            f"shape={self.data.shape}>"
        )


@dataclass(frozen=True)
class _Term:
    master: MasterDark
    weight: float
    exposure_factor: float
    temp_factor: float
    glow: np.ndarray | None = None
    bias: MasterDark | None = None  # the master's own bias (its night), when not the model's


# master -> the median of its data (float32), the same for every light of the master
_MASTER_LEVEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _master_level(master: MasterDark) -> np.float32:
    level = _MASTER_LEVEL.get(master)
    if level is None:
        level = _MASTER_LEVEL[master] = np.float32(
            _nanmedian(np.asarray(master.data, dtype=np.float32))
        )
    return level


def _linear_model(
    terms: Sequence[_Term],
    bias: MasterDark | None,
    *,
    scale_mode: ScaleMode,
    scale_factor: float,
    master_ids: tuple[str, ...],
    dark_rel_sigma: float = 0.0,
    exposure_rel_sigma: float = 0.0,
    nonlinear_above_adu: float | None = None,
    level_sigma_adu: float = 0.0,
    bias_level_sigma_adu: float = 0.0,
) -> DarkModel:
    """The recipe of the module docstring, evaluated (float32, inputs untouched).

    Each bias-holding master loses its own bias (``_Term.bias``, the model's ``bias`` when
    not given) and the model gains ``bias`` once: a master of another night keeps the level
    of its own night out of the light's. Coefficients of one bias object add up, so a single
    bias with weights summing to one cancels (a plain interpolation needs no bias).
    ``level_sigma_adu`` and ``bias_level_sigma_adu`` (the level uncertainty of biases
    borrowed from other nights, their coefficients included) are a *uniform* error, the same
    for every pixel: stated in ``notes["level_sigma_adu"]``, not added to the per-pixel
    variance (which the light's checks compare with the pixel-to-pixel scatter).
    """
    recent = _recent_key(terms, bias)
    base = RECENT.get(*recent) if recent is not None else None
    if base is None:
        base = _linear_base(terms, bias, scale_mode)
        if recent is not None:
            RECENT.put(*recent, base)
    level_var = float(level_sigma_adu) ** 2 + float(bias_level_sigma_adu) ** 2
    scaled = any(abs(t.exposure_factor - 1.0) > 1e-9 for t in terms)
    # the planes below are the same for every light of the recipe and its stated uncertainties
    spread_key = None
    if recent is not None:
        scalars = (float(dark_rel_sigma), float(exposure_rel_sigma), nonlinear_above_adu, scaled)
        spread_key = ("dark_model_spread", recent[0][1], scalars), recent[1]
        spread = RECENT.get(*spread_key)
    if spread_key is None or spread is None:
        spread = _spread(base, dark_rel_sigma, exposure_rel_sigma, nonlinear_above_adu, scaled)
        if spread_key is not None:
            RECENT.put(*spread_key, spread)
    return DarkModel(
        base.data,
        spread.variance,
        scale_mode,
        float(scale_factor),
        master_ids,
        flags=spread.flags,
        dark_signal=base.signal,
        weights=tuple(float(t.weight) for t in terms),
        notes={
            "bias_coefficient": base.bias_coefficient,
            "needs_bias": base.needs_bias,
            "level_sigma_adu": math.sqrt(level_var),
        },
        systematic_variance=spread.systematic,
    )


@dataclass(frozen=True, eq=False)
class _Spread:
    """A recipe's variance with its stated scale uncertainties (:func:`_spread`)."""

    variance: np.ndarray
    systematic: np.ndarray | None
    flags: np.ndarray


def _spread(
    base: _Base,
    dark_rel_sigma: float,
    exposure_rel_sigma: float,
    nonlinear_above_adu: float | None,
    scaled: bool,
) -> _Spread:
    """The variance of :func:`_linear_model`'s model: the base's plus the stated scale
    uncertainties' parts (also kept apart, ``systematic``), and its flags."""
    dark = base.dark
    above = base.signal if base.signal is not None else dark
    # the stated scale uncertainty times the dark pattern: in the variance (the pixel's
    # error budget), and kept apart (one scale error for the whole light, not pixel noise)
    flags = base.flags
    parts = []
    if dark_rel_sigma:
        parts.append(np.square(np.float32(dark_rel_sigma) * dark))
    if exposure_rel_sigma:
        parts.append(np.square(np.float32(exposure_rel_sigma) * above))
    if nonlinear_above_adu is not None and scaled:
        nonlinear = above > np.float32(nonlinear_above_adu)
        flags = flags | np.where(nonlinear, FLAG_NONLINEAR, 0).astype(np.uint8)
        parts.append(np.where(nonlinear, np.square(np.float32(0.1) * above), 0).astype(np.float32))
    var, systematic = base.variance, None
    if parts:
        var, systematic = var.copy(), np.zeros(var.shape, np.float32)
        for part in parts:  # added one by one, in this order: the variance's bytes as before
            var += part
            systematic += part
    return _Spread(var, systematic, flags)


@dataclass(frozen=True, eq=False)
class _Base:
    """A recipe evaluated without its stated scale uncertainties (:func:`_linear_base`)."""

    data: np.ndarray
    variance: np.ndarray
    dark: np.ndarray  # the masters' dark signal (their own bias, or their level, out)
    flags: np.ndarray
    signal: np.ndarray | None  # data - bias
    bias_coefficient: float
    needs_bias: bool


def _linear_base(terms: Sequence[_Term], bias: MasterDark | None, scale_mode: ScaleMode) -> _Base:
    """The planes of :func:`_linear_model` that do not depend on the stated scale
    uncertainties: the same for every light of one recipe (kept in :data:`RECENT`)."""
    shape = terms[0].master.data.shape
    for t in terms:
        if t.master.data.shape != shape:
            raise CalibrationError(
                f"masters of one model differ in shape: {t.master.data.shape} != {shape}"
            )
    a = [t.weight * t.exposure_factor * t.temp_factor for t in terms]
    g = [t.weight * t.exposure_factor * (1.0 - t.temp_factor) for t in terms]
    beta = [1.0 if t.master.meta.includes_bias else 0.0 for t in terms]
    uses: dict[int | None, list] = {}  # bias object -> [bias, coefficient]

    def use(obj: MasterDark | None, c: float) -> None:
        key = None if obj is None else id(obj)
        if key in uses:
            uses[key][1] += c
        else:
            uses[key] = [obj, c]

    use(bias, 1.0)
    own_bias = []
    for t, ak, bk in zip(terms, a, beta, strict=True):
        own = t.bias if (t.bias is not None and bias is not None) else bias
        own_bias.append(own)
        if bk:
            use(own, -ak)
    c_b = uses[None if bias is None else id(bias)][1]
    needs_bias = any(
        abs(c) > 1e-9 for key, (_, c) in uses.items() if key is not None or bias is None
    ) or any(abs(x) > 1e-9 for x in g)
    if bias is None and (abs(c_b) > 1e-9 or any(abs(x) > 1e-9 for x in g)):
        raise CalibrationError(
            f"scale mode {scale_mode} needs a master bias of the configuration "
            "(bias/dark separation), none was given"
        )
    for obj, _ in uses.values():
        if obj is not None and obj.data.shape != shape:
            raise CalibrationError(f"master bias shape {obj.data.shape} != master shape {shape}")
    b = np.asarray(bias.data, dtype=np.float32) if bias is not None else None
    model = np.zeros(shape, np.float32)
    var = np.zeros(shape, np.float32)
    dark = np.zeros(shape, np.float32)
    flags = np.zeros(shape, np.uint8)
    for t, ak, gk, bk, own in zip(terms, a, g, beta, own_bias, strict=True):
        m = np.asarray(t.master.data, dtype=np.float32)
        model += np.float32(ak) * m
        var += np.float32(ak * ak) * np.square(t.master.uncertainty, dtype=np.float32)
        if own is not None:
            cur = m - np.float32(bk) * np.asarray(own.data, dtype=np.float32)
        else:
            cur = m - _master_level(t.master)  # no bias: the structure above the level
        if t.glow is not None:
            cur = cur - t.glow
            flags |= np.where(t.glow > 0, FLAG_GLOW, 0).astype(np.uint8)
            if gk:
                model += np.float32(gk) * t.glow
        dark += np.float32(ak) * cur
        if t.master.saturated is not None:
            flags |= np.where(t.master.saturated.astype(bool), FLAG_SATURATED, 0).astype(np.uint8)
    for obj, c in uses.values():
        if obj is None or abs(c) <= 1e-12:
            continue
        model += np.float32(c) * np.asarray(obj.data, dtype=np.float32)
        var += np.float32(c * c) * np.square(obj.uncertainty, dtype=np.float32)
    signal = model - b if b is not None else None
    return _Base(model, var, dark, flags, signal, c_b, needs_bias)


class _Recent:
    """The last result of each function that uses it (one entry per ``key[0]``), for the next
    light with the same inputs: the lights of a night mostly share one master, bias, recipe and
    gain. Its masters and arrays (``objects``) are held weakly and compared by identity (a
    master read again is another object: computed anew), its scalars (``key``) by value. The
    result is shared, so its arrays are made read-only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple] = {}

    def get(self, key: tuple, objects: tuple):
        with self._lock:
            entry = self._entries.get(key[0])
        if entry is None or entry[0] != key or len(entry[1]) != len(objects):
            return None
        for ref, obj in zip(entry[1], objects, strict=True):
            if (ref() if ref is not None else None) is not obj:
                return None
        return entry[2]

    def put(self, key: tuple, objects: tuple, value: Any) -> Any:
        for plane in value.__dict__.values() if hasattr(value, "__dict__") else (value,):
            if isinstance(plane, np.ndarray):
                plane.flags.writeable = False
        refs = tuple(None if o is None else weakref.ref(o) for o in objects)
        with self._lock:
            self._entries[key[0]] = (key, refs, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


RECENT = _Recent()


def _recent_key(terms: Sequence[_Term], bias: MasterDark | None):
    """``(key, objects)`` of a recipe's :class:`_Base` for :data:`RECENT`; ``None`` with a
    glow map (measured per call, not compared here)."""
    if any(t.glow is not None for t in terms):
        return None
    scalars = tuple((t.weight, t.exposure_factor, t.temp_factor) for t in terms)
    return ("dark_model_base", scalars), (bias, *(x for t in terms for x in (t.master, t.bias)))


_MEDIANS: dict[int, tuple] = {}  # id(array) -> (weakref to it, its median)
_MEDIANS_KEPT = 8


def plane_median(plane: np.ndarray) -> Any:
    """The median of a dark model's plane (:func:`darkflow.stats._robust.median`), computed once
    per array object: the lights of one recipe share the model's planes (:data:`RECENT`)
    and each asks for their medians (the header's ``DFDKMED`` and ``DFDKSIG``). The value and
    type of ``median(plane)``."""
    from darkflow.stats._robust import median

    entry = _MEDIANS.get(id(plane))
    if entry is not None and entry[0]() is plane:
        return entry[1]
    value = median(plane)
    try:
        ref = weakref.ref(plane)
    except TypeError:  # not an ndarray (a scalar, a list): nothing to keep
        return value
    if len(_MEDIANS) >= _MEDIANS_KEPT:
        _MEDIANS.pop(next(iter(_MEDIANS)), None)
    _MEDIANS[id(plane)] = (ref, value)
    return value


def build_dark_model(
    master: MasterDark,
    *,
    scale_mode: ScaleMode,
    scale_factor: float = 1.0,
    bias: MasterDark | None = None,
    master_id: str = "",
    temp_factor: float = 1.0,
    glow: np.ndarray | None = None,
) -> DarkModel:
    """The dark signal (bias included) expected in a light, from one master (and a master bias).

    ``scale_factor`` is the exposure factor for ``exposure`` and ``exposure+temperature``;
    ``temp_factor`` the dark-current factor for ``temperature`` and ``exposure+temperature``
    (for ``temperature`` alone ``scale_factor`` is taken as the temperature factor when
    ``temp_factor`` is left at 1). ``glow`` (ADU, bias removed) is kept out of the temperature
    scaling; without it the whole dark signal is scaled. Two-master modes need
    :func:`dark_model_for`.
    """
    if scale_mode in (ScaleMode.NONE, ScaleMode.UNSCALED):
        f_e, f_t = 1.0, 1.0
    elif scale_mode == ScaleMode.EXPOSURE:
        f_e, f_t = float(scale_factor), 1.0
    elif scale_mode == ScaleMode.TEMPERATURE:
        f_e, f_t = 1.0, float(temp_factor if temp_factor != 1.0 else scale_factor)
    elif scale_mode == ScaleMode.EXPOSURE_TEMPERATURE:
        f_e, f_t = float(scale_factor), float(temp_factor)
    else:
        raise CalibrationError(
            f"scale mode {scale_mode} combines two masters: use darkflow.subtract.dark_model_for"
        )
    if scale_mode != ScaleMode.NONE and scale_mode != ScaleMode.UNSCALED and bias is None:
        raise CalibrationError(f"{scale_mode} scaling needs a master bias (bias/dark separation)")
    model = _linear_model(
        [_Term(master, 1.0, f_e, f_t, glow if f_t != 1.0 else None)],
        bias,
        scale_mode=scale_mode,
        scale_factor=f_e * f_t,
        master_ids=(master_id,),
    )
    return model


def dark_model_for(
    decision: MatchDecision,
    *,
    load_master: Callable[[str], MasterDark],
    bias: MasterDark | None,
    index: CalibrationIndex,
    master_biases: Mapping[str, MasterDark | None] | None = None,
    bias_level_sigma_adu: float = 0.0,
) -> DarkModel:
    """The dark model of a :class:`~darkflow.matching.MatchDecision`, for every scale mode.

    Parameters
    ----------
    decision
        A matched decision (``decision.matched``); its ``terms`` give the recipe.
    load_master
        ``master_id -> MasterDark`` (each master of the recipe is loaded once).
    bias
        The configuration's master bias (the one the index was built with), or ``None``:
        recipes that scale the dark current or the glow need it.
    index
        The calibration index (glow model and exposure-law limits of the configuration).
    master_biases
        ``master_id -> bias`` of each master's own night, when it is not ``bias`` (the
        light's): the master's dark signal is measured against its own bias, the light's bias
        is added once.
    bias_level_sigma_adu
        The uniform level uncertainty (ADU) of the model from biases borrowed from other
        nights (their level differences times their coefficients in the recipe).

    Returns
    -------
    DarkModel
        ``data`` and ``variance`` per the module docstring, ``flags``, ``dark_signal``.

    Raises
    ------
    CalibrationError
        The decision is unmatched, the recipe needs a bias and none is given, or shapes differ.
    """
    from darkflow.exposure.laws import glow_map
    from darkflow.matching import ModelTerm

    if not decision.matched or decision.scale_mode is None:
        raise CalibrationError(f"{decision.light_path}: no master was matched, no dark model")
    terms = decision.terms or (
        ModelTerm(decision.master_id, 1.0, decision.exposure_factor, decision.temp_factor),
    )
    sig = decision.config_signature
    glow_model = index.glow.get(sig)
    block = getattr(index, "block_px", 16)
    lin = index.linearity.get(sig)
    built = []
    loaded: dict[str, MasterDark] = {}
    for term in terms:
        if term.master_id not in loaded:
            loaded[term.master_id] = load_master(term.master_id)
        master = loaded[term.master_id]
        own = (master_biases or {}).get(term.master_id)
        if own is not None and own.data.shape != master.data.shape:
            own = None
        glow = None
        if abs(term.temp_factor - 1.0) > 1e-9 and bias is not None:
            glow = glow_map(
                master,
                own if own is not None else bias,
                glow_model=glow_model,
                bias_exptime_s=index.bias_exptime(sig),
                block=block,
            )
        built.append(_Term(master, term.weight, term.exposure_factor, term.temp_factor, glow, own))
    model = _linear_model(
        built,
        bias,
        scale_mode=decision.scale_mode,
        scale_factor=decision.scale_factor,
        master_ids=tuple(t.master_id for t in terms),
        dark_rel_sigma=decision.dark_rel_sigma,
        exposure_rel_sigma=decision.exposure_rel_sigma,
        nonlinear_above_adu=lin.nonlinear_above_adu if lin is not None else None,
        level_sigma_adu=getattr(decision, "level_sigma_adu", 0.0),
        bias_level_sigma_adu=bias_level_sigma_adu,
    )
    model.notes.update(
        glow="model" if glow_model is not None else "measured",
        confidence=decision.confidence,
    )
    return model

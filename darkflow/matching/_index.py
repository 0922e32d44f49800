"""The calibration index: masters by configuration, with their thermal and exposure laws."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol, TypeVar

import numpy as np

from darkflow.config import Config, MatchingConfig
from darkflow.exceptions import DarkflowError
from darkflow.exposure.laws import (
    GlowModel,
    LinearityReport,
    MasterSummary,
    Reference,
    choose_reference,
    fit_glow_model,
    measure_linearity,
    summarize_master,
)
from darkflow.matching._records import MasterEntry, temperature_gate_c
from darkflow.model import FrameType, MasterDark, MasterStatus
from darkflow.stats import mad_std
from darkflow.thermal import (
    DarkCurrentLaw,
    ThermalProfileStore,
    default_law,
    fit_dark_current_law,
)

__all__ = ["BiasInfo", "CalibrationIndex", "IndexMemo", "LazyMaster", "build_index"]

log = logging.getLogger(__name__)

MIN_HOT_FOR_LAW = 10
SETPOINT_TOL_C = 1.0


@dataclass(frozen=True)
class BiasInfo:
    """The master bias of a configuration as matching needs it."""

    exptime_s: float  # 0 for a true bias, > 0 for short darks used as a bias proxy
    noise_adu: float  # median uncertainty of the master bias
    proxy: bool = False


@dataclass
class CalibrationIndex:
    """Masters keyed by configuration signature, with per-configuration laws.

    ``CalibrationIndex.from_entries`` builds a *metadata-only* index (single-master decisions:
    none/exposure/unscaled, configured default law); :func:`build_index` reads each master once
    and adds the fitted dark-current laws, glow models, linearity reports and per-master
    summaries that multi-master decisions (interpolations, temperature scaling) need.
    """

    entries: dict[str, list[MasterEntry]] = field(default_factory=dict)
    laws: dict[str, DarkCurrentLaw] = field(default_factory=dict)
    linearity: dict[str, LinearityReport] = field(default_factory=dict)
    glow: dict[str, GlowModel] = field(default_factory=dict)
    summaries: dict[str, MasterSummary] = field(default_factory=dict)
    biases: dict[str, BiasInfo] = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by master id
    unusable: set[str] = field(default_factory=set)  # master ids that could not be read
    multi_master: bool = False
    block_px: int = 16  # block size of the smooth-level maps (scaling.block_px)
    master_bias: dict[str, str] = field(default_factory=dict)  # master id -> its bias's id
    bias_levels: dict[str, float] = field(default_factory=dict)  # bias id -> median level

    @classmethod
    def from_entries(cls, entries: Iterable[MasterEntry]) -> CalibrationIndex:
        index = cls()
        index.extend(entries)
        return index

    def add(self, entry: MasterEntry) -> None:
        self.extend([entry])

    def extend(self, entries: Iterable[MasterEntry]) -> None:
        """Add entries, each configuration's sorted once (as adding them one by one would)."""
        touched = set()
        for entry in entries:
            self.entries.setdefault(entry.meta.config_signature, []).append(entry)
            touched.add(entry.meta.config_signature)
        for sig in touched:
            self.entries[sig].sort(
                key=lambda e: (e.meta.exptime_s, e.meta.temp_c or 0.0, e.master_id)
            )

    def for_config(self, signature: str) -> Sequence[MasterEntry]:
        return self.entries.get(signature, ())

    def entry(self, master_id: str) -> MasterEntry | None:
        for bucket in self.entries.values():
            for e in bucket:
                if e.master_id == master_id:
                    return e
        return None

    def law_for(self, signature: str, config: MatchingConfig | None = None) -> DarkCurrentLaw:
        """The configuration's law, or the configured default."""
        cfg = config or MatchingConfig()
        return self.laws.get(signature) or default_law(
            cfg.doubling_temp_c, cfg.doubling_temp_sigma_c
        )

    def has_bias(self, signature: str) -> bool:
        """A master bias exists for the configuration (metadata-only index: ``scalable``)."""
        if signature in self.biases:
            return True
        return any(e.scalable for e in self.entries.get(signature, ()))

    def bias_exptime(self, signature: str) -> float:
        info = self.biases.get(signature)
        return info.exptime_s if info else 0.0

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())

    def __repr__(self) -> str:
        return (
            f"<CalibrationIndex masters={len(self)} configs={len(self.entries)} "
            f"laws={sum(law.source == 'fitted' for law in self.laws.values())} fitted "
            f"multi_master={self.multi_master}>"
        )


def _frame_level_sd(master: MasterDark | None) -> float | None:
    """Frame-to-frame scatter of a master's input levels (ADU), from its provenance."""
    if master is None or not isinstance(master.provenance, dict):
        return None
    levels = master.provenance.get("frame_levels")
    if levels is None:
        return None
    values = np.asarray(levels, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return None
    # the standard deviation, not a MAD: frame levels of integer data are quantised medians,
    # whose MAD is often 0
    return float(np.std(values, ddof=1))


def level_jitter(master: MasterDark, bias: MasterDark | None) -> float:
    """1-sigma of the bias level under a bias-subtracted master (ADU).

    Both averages carry the frame-to-frame jitter of the bias level ``s``: the bias master
    ``s / sqrt(n_bias)``, the dark master ``s / sqrt(n_dark)``; ``s`` from the bias frames'
    levels (else the dark frames', which add their dark signal's own scatter: an upper bound);
    0 when neither has three frames.
    """
    if bias is None or not master.meta.includes_bias:
        return 0.0
    jitter = _frame_level_sd(bias)
    if jitter is None:
        jitter = _frame_level_sd(master)
    if jitter is None:
        return 0.0
    n_b, n_d = max(bias.meta.n_frames, 1), max(master.meta.n_frames, 1)
    return jitter * math.sqrt(1.0 / n_b + 1.0 / n_d)


_T = TypeVar("_T")


class IndexMemo(Protocol):
    """Where :func:`build_index` keeps what it measured on each master's pixels between builds.

    ``recall(kind, parts, compute)`` returns what ``compute()`` returned for the same ``kind``
    and ``parts`` (content keys of the masters involved, their ids), calling it only when
    nothing is kept. A memo's own context (configuration, code version) is its business.
    """

    def recall(self, kind: str, parts: tuple[str, ...], compute: Callable[[], _T]) -> _T: ...


@dataclass(eq=False)
class LazyMaster:
    """A master (a bias here) read on first use; ``key`` names its content for an
    :class:`IndexMemo`, so a memo that knows it never has it read."""

    key: str
    loader: Callable[[], MasterDark]
    _master: MasterDark | None = field(default=None, repr=False)

    def get(self) -> MasterDark:
        if self._master is None:
            self._master = self.loader()
        return self._master


def _resolve(master: MasterDark | LazyMaster | None) -> MasterDark | None:
    return master.get() if isinstance(master, LazyMaster) else master


def _content_key(master: Any) -> str | None:
    return master.key if isinstance(master, LazyMaster) else None


def bias_info(bias: MasterDark) -> BiasInfo:
    """What matching keeps of a configuration's master bias (its exposure and noise)."""
    bias_t = float(bias.meta.exptime_s) if math.isfinite(bias.meta.exptime_s) else 0.0
    unc = bias.uncertainty[np.isfinite(bias.uncertainty)]
    return BiasInfo(
        exptime_s=bias_t,
        noise_adu=float(np.median(unc)) if unc.size else 0.0,
        proxy=bias.meta.frame_kind != FrameType.BIAS,
    )


def _bias_info_of(bias: MasterDark | LazyMaster) -> BiasInfo:
    return bias_info(_resolve(bias))


def _usable(entry: MasterEntry) -> bool:
    t = entry.meta.exptime_s
    return (
        entry.status not in (MasterStatus.QUARANTINED, MasterStatus.SUPERSEDED)
        and t is not None
        and math.isfinite(t)
        and t > 0
    )


def _expected_signal(entry: MasterEntry, doubling_c: float) -> float:
    temp = entry.meta.temp_c if entry.meta.temp_c is not None else 0.0
    return entry.meta.exptime_s * 2.0 ** (temp / doubling_c)


def _law_points(summaries: Sequence[MasterSummary]):
    """(T, ln level ratio to the reference, sigma) of masters with hot pixels and a temperature."""
    ref = next(
        (
            s
            for s in summaries
            if s.temp_c is not None
            and s.hot_values is not None
            and s.hot_values.size >= MIN_HOT_FOR_LAW
        ),
        None,
    )
    if ref is None:
        return [], [], []
    temps, ys, sigmas = [], [], []
    for s in summaries:
        if s.temp_c is None or s.hot_values is None or s.hot_values.size != ref.hot_values.size:
            continue
        with np.errstate(all="ignore"):
            ratio = s.hot_values / ref.hot_values
        ok = np.isfinite(ratio) & (ref.hot_values > 0)
        if ok.sum() < MIN_HOT_FOR_LAW:
            continue
        ratio = ratio[ok]
        med = float(np.median(ratio))
        if not med > 0:
            continue
        mad = mad_std(ratio, center=med)
        temps.append(float(s.temp_c))
        ys.append(math.log(med) - math.log(s.exptime_s / ref.exptime_s))
        sigmas.append(max(1.2533 * mad / math.sqrt(ratio.size) / med, 1e-4))
    return temps, ys, sigmas


class _Measure:
    """One master's measurements, its pixels (and its bias's) read on first need."""

    def __init__(
        self,
        master_id: str,
        load_master: Callable[[str], MasterDark],
        own_bias: MasterDark | LazyMaster | None,
    ):
        self.master_id, self.load_master, self.own_bias = master_id, load_master, own_bias
        self._read: tuple[MasterDark, MasterDark | None] | None = None

    def _pixels(self) -> tuple[MasterDark, MasterDark | None]:
        if self._read is None:  # the master is loaded once even when it is also the reference
            master = self.load_master(self.master_id)
            own = _resolve(self.own_bias)
            use_bias = own if own is not None and own.data.shape == master.data.shape else None
            self._read = master, use_bias
        return self._read

    def reference(self, scfg) -> Reference:
        master, use_bias = self._pixels()
        return choose_reference(master, use_bias, scfg, master_id=self.master_id)

    def summary(self, reference: Reference) -> tuple[MasterSummary, float]:
        """The summary (with its pixel vectors; no level sigma) and the level jitter."""
        master, use_bias = self._pixels()
        summary = summarize_master(master, use_bias, reference, master_id=self.master_id)
        return summary, level_jitter(master, use_bias)


def build_index(
    entries: Sequence[MasterEntry],
    *,
    load_master: Callable[[str], MasterDark],
    biases: Mapping[str, MasterDark],
    config: Config,
    thermal_profiles: ThermalProfileStore | None = None,
    master_biases: Mapping[str, MasterDark | None] | None = None,
    level_sigmas: Mapping[str, float] | None = None,
    memo: IndexMemo | None = None,
    master_keys: Mapping[str, str] | None = None,
) -> CalibrationIndex:
    """Build the calibration index with per-configuration laws, reading each master once.

    Parameters
    ----------
    entries
        The dark masters (entries of kind BIAS are ignored; biases come in ``biases``).
    load_master
        ``master_id -> MasterDark``; called at most once per master. A master that cannot be
        loaded (a :class:`~darkflow.exceptions.DarkflowError` or ``OSError``) is recorded in
        ``index.unusable`` with a note, never raised.
    biases
        ``config_signature -> master bias`` (a :class:`LazyMaster` or not; may be empty): the
        dark signal, the glow and the exposure law are measured with the bias removed.
    master_biases
        ``master_id -> master bias`` (or ``None``): the bias of each master's own night and
        set-point, used instead of ``biases`` for the masters it names (a multi-night library
        measured with one bias would show the nights' bias drift as non-linearity).
    level_sigmas
        ``master_id -> ADU``: an extra uncertainty of the bias level under a master (its bias
        is another night's: the measured or assumed level difference; ``inf`` when unknown,
        which keeps the master out of the normal-pixel exposure law).
    config
        The full configuration (``matching`` and ``scaling`` sections).
    thermal_profiles
        Optional store: a law fitted on earlier sessions is used when this index cannot fit
        one that supports scaling. Nothing is written to the store here.
    memo, master_keys
        Optional: what is measured on a master's pixels (its summary with the pixel vectors
        the laws, glow and linearity are fitted on, its level jitter, the reference pixel sets,
        a bias's noise) is recalled from ``memo`` under the content keys of the masters
        involved (``master_keys``: master id -> content key; biases as :class:`LazyMaster`),
        so only masters the memo does not know are read. The index is the same either way.
        A master without a content key, or a bias that is not lazy, is always measured.

    Returns
    -------
    CalibrationIndex
        With ``laws``, ``glow``, ``linearity``, ``summaries``, ``biases`` and ``notes`` filled
        and ``multi_master=True``.
    """
    mcfg, scfg = config.matching, config.scaling

    def recall(kind: str, parts: tuple[str | None, ...], compute: Callable[[], _T]) -> _T:
        if memo is None or any(p is None for p in parts):
            return compute()
        return memo.recall(kind, parts, compute)  # type: ignore[arg-type]

    index = CalibrationIndex(multi_master=True, block_px=scfg.block_px)
    index.extend(e for e in entries if e.meta.frame_kind != FrameType.BIAS)
    gate = temperature_gate_c(mcfg.max_dark_mismatch, mcfg.doubling_temp_c)
    for sig, bucket in index.entries.items():
        bias = biases.get(sig)
        if bias is None and master_biases:
            own = [master_biases.get(e.master_id) for e in bucket]
            bias = next((b for b in own if b is not None), None)
        bias_t = 0.0
        if bias is not None:
            info = recall("bias_info", (_content_key(bias),), partial(_bias_info_of, bias))
            index.biases[sig] = info
            bias_t = info.exptime_s
        for e in bucket:
            notes = []
            m = e.meta
            if not _usable(e) and not (m.exptime_s is not None and m.exptime_s > 0):
                notes.append("invalid_exposure")
            if m.temp_c is not None and m.set_temp_c is not None:
                if abs(m.temp_c - m.set_temp_c) > SETPOINT_TOL_C:
                    notes.append("setpoint_not_reached")
            if m.temp_min_c is not None and m.temp_max_c is not None:
                if m.temp_max_c - m.temp_min_c > gate:
                    notes.append("temperature_spread")
            if notes:
                index.notes[e.master_id] = tuple(notes)
        order = sorted(
            (e for e in bucket if _usable(e)),
            key=lambda e: (-_expected_signal(e, mcfg.doubling_temp_c), e.master_id),
        )
        reference: Reference | None = None
        ref_parts: tuple[str | None, ...] = ()
        summaries: list[MasterSummary] = []
        for e in order:
            try:
                own = bias
                if master_biases is not None and e.master_id in master_biases:
                    own = master_biases[e.master_id]
                measure = _Measure(e.master_id, load_master, own)
                mkey = (master_keys or {}).get(e.master_id)
                parts = (e.master_id, mkey, "-" if own is None else _content_key(own))
                if reference is None:
                    reference = recall("reference", parts, partial(measure.reference, scfg))
                    ref_parts = parts
                summary, jitter = recall(
                    "summary", (*parts, *ref_parts), partial(measure.summary, reference)
                )
                extra = (level_sigmas or {}).get(e.master_id, 0.0)
                summaries.append(replace(summary, level_sigma_adu=math.hypot(jitter, extra)))
            except (DarkflowError, OSError) as err:
                log.warning("master %s left out of the index: %s", e.master_id, err)
                index.unusable.add(e.master_id)
                index.notes[e.master_id] = (*index.notes.get(e.master_id, ()), f"unusable: {err}")
        temps, ys, sigmas = _law_points(summaries)
        law = fit_dark_current_law(
            temps,
            ys,
            sigmas,
            default_doubling_c=mcfg.doubling_temp_c,
            default_sigma_c=mcfg.doubling_temp_sigma_c,
            temp_sigma_c=mcfg.temp_reading_sigma_c,
            min_span_c=mcfg.law_min_span_c,
            max_rel_sigma=mcfg.law_max_rel_sigma,
            max_rms_c=mcfg.law_max_rms_c,
        )
        if not law.supports_scaling and thermal_profiles is not None:
            stored = thermal_profiles.law(sig)
            if stored is not None and stored.supports_scaling:
                law = replace(stored, reasons=("stored_law", *law.reasons))
        index.laws[sig] = law
        if reference is not None and bias is not None:
            glow = fit_glow_model(summaries, law, reference, bias_exptime_s=bias_t)
            if glow is not None:
                index.glow[sig] = glow
        index.linearity[sig] = measure_linearity(
            sig,
            summaries,
            law,
            scfg,
            bias_available=bias is not None,
            bias_exptime_s=bias_t,
            exptime_rel_tol=mcfg.exptime_rel_tol,
            temp_window_c=temperature_gate_c(mcfg.max_dark_mismatch, law.doubling_temp_c),
            false_alarm=config.verify.gate_false_alarm,
            temp_sigma_c=mcfg.temp_reading_sigma_c,
            unknown_temp_sigma_c=mcfg.setpoint_sigma_c,
        )
        for s in summaries:  # keep the scalars, drop the pixel vectors
            index.summaries[s.master_id] = replace(s, grid=None, hot_values=None, warm_values=None)
        log.info(
            "index %s: %d masters, law %s Td=%.2f±%.2f, linearity %s",
            sig,
            len(bucket),
            law.source,
            law.doubling_temp_c,
            law.sigma_doubling_c,
            index.linearity[sig].status,
        )
    return index

"""Masters of one configuration judged against each other once all are built.

Each master's own assessment (:func:`darkflow.verify.assess_master`) sees its set alone, or the
previous verified master of an earlier night. Stray light or a moved bias level in one dark
set of the night adds a level that the set's own noise, hot pixels and hold-out frames all
agree with. Two masters of one configuration at one temperature, each less its own night's
bias, must scale with exposure pixel by pixel (:func:`darkflow.verify._crossset.
exposure_pair_excess`): the one holding the excess is marked ``low_confidence`` with
``exposure_excess_patterned`` (a pattern across the frame: stray light) or
``exposure_excess_uniform`` (a uniform level: the bias moved), or, when a scale of the dark
signal, read on the hot pixels, leaves neither, ``exposure_excess_gain`` (the hot pixels'
photon transfer differs by that scale: another gain), ``exposure_excess_thermal`` (it agrees:
a sensor warmer than its header says) or ``exposure_excess_scaled`` (not told apart:
:mod:`darkflow.verify._gainpair`). Masters without a temperature
(an uncooled camera) are compared twice, with their dark current's scale read on the hot pixels
and with the exposures' ratio (:func:`darkflow.verify._uncooled.uncooled_pair_excess`): an
excess beyond both, in one direction, is a verdict of its own; the hot-pixel comparison alone
only names the cause on a master its own gates already made ``low_confidence``. A night
without its own bias has its dark masters of one configuration compared in pairs of
different exposures for a planar gradient (``dark_gradient``,
:func:`darkflow.verify._gradient.pair_gradient_gate`): the set holding the stray light is
marked, or both when that is not decidable.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from typing import Any

from darkflow.model import FrameType, MasterStatus

__all__ = ["cross_check_masters", "load_master", "load_masters"]

log = logging.getLogger(__name__)

_JUDGED = (str(MasterStatus.VERIFIED), str(MasterStatus.LOW_CONFIDENCE))


def load_master(registry, key: str, cache: dict[str, Any]):
    """The master (or bias) of registry key ``key``, read once into ``cache`` and checked
    against its recorded content hash; ``None`` when the registry has no file for it."""
    from darkflow.master import read_master

    if key not in cache:
        row = registry.get(key)
        if row is None or row.path is None:
            cache[key] = None
        else:
            path = registry.workdir / row.path
            cache[key] = read_master(path, content_hash=row.content_hash)
    return cache[key]


def load_masters(registry, keys, cache: dict[str, Any], what: str) -> tuple | None:
    """The masters of these registry keys (:func:`load_master`), or ``None`` when one is
    missing or unreadable (logged with ``what``: an unreadable master is the repair pass's
    business)."""
    try:
        loaded = tuple(load_master(registry, key, cache) for key in keys)
    except Exception as err:
        log.warning("%s: %s", what, err)
        return None
    return None if any(m is None for m in loaded) else loaded


def cross_check_masters(jobs, registry, config, *, failed: Mapping[str, Any] = ()) -> int:
    """Pair the dark masters of each configuration (verified or low_confidence) that have a
    bias of their own night; mark the one holding an excess. Returns how many were marked."""
    from darkflow.verify._gainpair import GAIN, THERMAL
    from darkflow.verify._metrics import VerifyReason
    from darkflow.verify._uncooled import uncooled_pair_excess

    scale_codes = {GAIN: VerifyReason.EXCESS_GAIN, THERMAL: VerifyReason.EXCESS_THERMAL}

    by_sig: dict[str, list] = {}
    for job in jobs:
        if job.fset.kind != FrameType.DARK or job.key in failed or not job.bias_key:
            continue
        if not job.bias_own_night:
            continue
        row = registry.get(job.key)
        # a master already low_confidence still takes part: the comparison adds the cause
        if row is None or row.status not in _JUDGED:
            continue
        by_sig.setdefault(job.fset.config_signature, []).append(job)
    cache: dict[str, Any] = {}
    marked: dict[str, tuple[str, str]] = {}
    p = config.verify.gate_false_alarm
    for sig in sorted(by_sig):
        # pairs in a fixed order of exposure (then key): a verdict must not depend on the
        # cache keys' order, which changes with every version
        group = sorted(by_sig[sig], key=lambda j: (j.fset.exptime_s or 0.0, j.key))
        for a, b in itertools.combinations(group, 2):
            keys = (a.key, b.key, a.bias_key, b.bias_key)
            loaded = load_masters(registry, keys, cache, f"cross-check of {sig}")
            if loaded is None:
                continue
            ma, mb, ba, bb = loaded
            if a.bias_key == b.bias_key:
                bb = ba
            r = uncooled_pair_excess(
                ma, mb, ba, bb, false_alarm=p, doubling_c=config.matching.doubling_temp_c
            )
            if not (r.measured and r.failed):
                continue
            holder, other = (a, b) if r.level > 0 else (b, a)
            if (
                r.thermal_fitted
                and not r.verdict
                and registry.get(holder.key).status != MasterStatus.LOW_CONFIDENCE
            ):
                # the scale read on the hot pixels alone (no temperature): the cause of a
                # failure the master's own gates found; a verdict only when the exposures'
                # ratio fails too, in the same direction (darkflow.verify._uncooled)
                continue
            if r.scaled:  # the excess follows the dark signal's own pattern: gain or temperature
                code = scale_codes.get(r.scale_cause, VerifyReason.EXCESS_SCALED)
            elif r.structured:
                code = VerifyReason.EXCESS_PATTERNED
            else:
                code = VerifyReason.EXCESS_UNIFORM
            marked.setdefault(holder.key, (str(code), other.master_id))
    _pair_gradients(jobs, registry, config, failed, cache, marked)
    for key, (code, other) in sorted(marked.items()):
        row = registry.get(key)
        record = dict(row.record or {})
        reasons = list(dict.fromkeys([code, *record.get("reasons", [])]))
        record["reasons"] = reasons
        record["cross_check"] = {"reason": code, "against": other}
        registry.refresh(key, record=record)
        registry.set_status(key, str(MasterStatus.LOW_CONFIDENCE), reason=code)
        for job in jobs:
            if job.key == key:
                job.row = registry.get(key)
    return len(marked)


def _pair_gradients(jobs, registry, config, failed, cache, marked) -> None:
    """``dark_gradient`` where a night has no bias of its own: on the difference of two of its
    masters of one configuration at different exposures
    (:func:`darkflow.verify._gradient.pair_gradient_gate`); marks the set holding the stray
    light, or both when that is not decidable."""
    from darkflow.verify._gradient import pair_gradient_gate

    by_night: dict[tuple[str, str], list] = {}
    for job in jobs:
        if job.fset.kind != FrameType.DARK or job.key in failed:
            continue
        if job.bias_key and job.bias_own_night:  # the master's own gate measured it
            continue
        row = registry.get(job.key)
        if row is None or row.status not in _JUDGED:
            continue
        by_night.setdefault((job.fset.config_signature, job.fset.night), []).append(job)
    for sig in sorted(by_night):
        group = sorted(by_night[sig], key=lambda j: (j.fset.exptime_s or 0.0, j.key))
        for short, long in itertools.combinations(group, 2):
            loaded = load_masters(registry, (short.key, long.key), cache, f"gradient of {sig}")
            if loaded is None:
                continue
            ms, ml = loaded
            r = pair_gradient_gate(ml, ms, config.verify)
            if not r.metric.failed:
                continue
            log.info("dark_gradient of %s (%s set): %s", sig, r.holder, r.metric.detail)
            code = str(r.metric.reason)
            if r.holder in ("long", "pair"):
                marked.setdefault(long.key, (code, short.master_id))
            if r.holder in ("short", "pair"):
                marked.setdefault(short.key, (code, long.master_id))

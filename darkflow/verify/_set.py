"""The acceptance of a master from its input frames: hold-out split, gates.

:func:`assess_master_set` is the one place that decides how a master is judged; the pipeline's
master job and the explorer (``darkflow_widgets.metrics``) both call it, so their verdicts agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from darkflow.config import CombineConfig, MatchingConfig, VerifyConfig
from darkflow.model import FrameMeta, GainEstimate, MasterDark, MasterStatus
from darkflow.verify._fpn import row_window
from darkflow.verify._master import MasterAssessment, assess_master, holdout_split

__all__ = [
    "MasterSetAssessment",
    "analysis_rows",
    "assess_master_set",
    "band_master",
    "master_verdict",
    "split_set",
]

# the reason code of a set smaller than combine.min_frames (darkflow.pipeline.MasterReason)
TOO_FEW_FRAMES = "too_few_frames"


def master_verdict(
    assessment: MasterAssessment | None, *, n_frames: int, min_frames: int
) -> tuple[MasterStatus, float, tuple[str, ...]]:
    """Final status, confidence (4 decimals) and reasons of a master from its assessment.

    Fewer than ``min_frames`` inputs put the advisory ``too_few_frames`` first: no outlier
    rejection was possible, so a cosmic ray or a flickering pixel of a dark stays in the master
    (the lights' hole and residual checks see whether it matters), and the master's noise adds
    ``1/N`` of a frame's variance to every light (recorded as ``noise_inflation``). That is an
    expected error, not evidence of a fault: the status and confidence are the gates'. Without
    an assessment the master counts as verified.
    """
    if assessment is None:
        status, confidence, reasons = MasterStatus.VERIFIED, 1.0, []
    else:
        status, confidence = assessment.status, float(assessment.confidence)
        reasons = [str(r) for r in assessment.reasons]
    if n_frames < min_frames:
        reasons.insert(0, TOO_FEW_FRAMES)
    return status, round(float(confidence), 4), tuple(dict.fromkeys(reasons))


@dataclass(frozen=True, eq=False)
class MasterSetAssessment:
    """The verdict on a master from its inputs (see :func:`assess_master_set`).

    ``status``, ``confidence`` and ``reasons`` are final (:func:`master_verdict`);
    ``assessment`` holds the gates; ``judged`` is the master that was judged (the master of
    every input, over the analysed band when frames were held out); ``previous`` and ``bias``
    are what the gates used
    (``None`` when absent or of another shape).
    """

    status: MasterStatus
    confidence: float
    reasons: tuple[str, ...]
    assessment: MasterAssessment
    train: tuple[str, ...]
    held: tuple[str, ...]
    judged: MasterDark = field(repr=False)
    previous: MasterDark | None = field(default=None, repr=False)
    bias: MasterDark | None = field(default=None, repr=False)


def assess_master_set(
    paths: Sequence[str],
    *,
    master: MasterDark | Callable[[], MasterDark | None] | None,
    combine_config: CombineConfig,
    config: VerifyConfig,
    keys: Sequence[str] | None = None,
    metas: Mapping[str, FrameMeta] | None = None,
    previous: MasterDark | None = None,
    bias: MasterDark | None = None,
    previous_bias: MasterDark | None = None,
    gain: GainEstimate | None = None,
    trained: MasterDark | None = None,
    bias_own_night: bool = True,
    previous_level_known: bool = True,
    dark_law: MatchingConfig | None = None,
) -> MasterSetAssessment:
    """Judge the master of ``paths``: hold-out split, :func:`assess_master`.

    The frames are split by :func:`holdout_split` (``config.holdout_fraction``, seed 0,
    ``config.min_train_frames``, keyed by ``keys``). The master of all inputs is judged; when
    frames are held out, over the analysed band of rows (:func:`analysis_rows`), and the
    held-out frames against the training frames (both read lazily, one at a time, only that
    band): each frame's residual from the plain mean of the training frames, held-out and
    training frames measured alike (``darkflow.verify._holdout``), so no master of the
    training frames is combined. ``previous`` and ``bias`` of another shape than the master
    are left out.

    Parameters
    ----------
    paths
        The master's input frames.
    master
        The master of all inputs with ``combine_config`` (or a function returning it, or
        ``None``). Without one it is combined here.
    combine_config
        Combine settings of the training master (and ``min_frames`` of :func:`master_verdict`).
    config
        Hold-out settings and tolerance bands.
    keys
        Content hashes of ``paths``: the split then does not depend on where the files are.
    metas
        Normalised headers by path (used for the combine when every training frame has one).
    previous, bias
        The previous verified master and the master bias of the configuration.
    previous_bias
        The master bias of ``previous``'s night (default: ``bias``).
    gain
        e-/ADU of the noise-model gates (default: the header's EGAIN, else photon transfer).
    trained
        Accepted for compatibility and not used: the master of all inputs is judged (a
        master of the training frames used to be, see docs/verification.md).
    bias_own_night, previous_level_known
        Whether ``bias`` is of the master's night and ``previous`` has its own night's bias
        (:func:`assess_master`: level gates are not measured across an unknown bias drift).
    dark_law
        ``[matching]``: the dark-current law (``doubling_temp_c`` +- ``doubling_temp_sigma_c``)
        and ``temp_reading_sigma_c`` that scale ``previous`` to this master's temperature
        (their defaults when ``None``).

    Raises
    ------
    DarkflowError
        The frames cannot be read or combined.
    """
    from darkflow.master import combine_files

    paths = [str(p) for p in paths]
    train, held = split_set(paths, config, keys)

    def combine(frames: Sequence[str]) -> MasterDark:
        known = [metas[p] for p in frames if p in metas] if metas is not None else []
        return combine_files(
            list(frames),
            config=combine_config,
            allow_few=True,
            metas=known if len(known) == len(frames) else None,
        )

    # the master of all inputs is judged (over the analysed band when frames are held out):
    # the hold-out residuals compare each frame with the plain mean of the training frames,
    # which needs no master of the training frames (the master is combined once)
    judged = master() if callable(master) else master
    if judged is None:
        judged = combine(paths)
    if held:
        judged = band_master(judged, analysis_rows(judged.shape, config))

    band = judged.provenance.get("rows") if held else None
    if band is not None:  # rows of the full frames; ``local``: the same rows of the band
        rows = slice(int(band[0]), int(band[1]))
        local = slice(0, rows.stop - rows.start)
    else:
        rows = local = row_window(judged.data.shape, config.max_analysis_pixels)

    def fit(other: MasterDark | None) -> MasterDark | None:
        if other is None or other.shape[1] != judged.shape[1]:
            return None
        if band is None:
            return other if other.shape == judged.shape else None
        return band_master(other, rows) if other.shape[0] >= rows.stop else None

    previous, bias, previous_bias = fit(previous), fit(bias), fit(previous_bias)
    assessment = assess_master(
        judged,
        holdout=_band_reader(held, rows) if held else None,
        training=_band_reader(train, rows) if len(train) >= 2 else None,
        previous=previous,
        bias=bias,
        previous_bias=previous_bias,
        gain=gain,
        config=config,
        holdout_rows=local,
        bias_own_night=bias_own_night,
        previous_level_known=previous_level_known,
        dark_law=dark_law,
    )
    status, confidence, reasons = master_verdict(
        assessment, n_frames=len(paths), min_frames=combine_config.min_frames
    )
    return MasterSetAssessment(
        status,
        confidence,
        reasons,
        assessment,
        tuple(train),
        tuple(held),
        judged,
        previous,
        bias,
    )


def split_set(
    paths: Sequence[str], config: VerifyConfig, keys: Sequence[str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The training and held-out frames of a master's inputs, as :func:`assess_master_set`
    splits them (:func:`holdout_split` with seed 0, keyed by the content hashes ``keys``)."""
    return holdout_split(
        [str(p) for p in paths],
        config.holdout_fraction,
        seed=0,
        min_train=config.min_train_frames,
        keys=list(keys) if keys else None,
    )


def analysis_rows(shape: tuple[int, int], config: VerifyConfig) -> slice:
    """The band of rows a master's gates analyse (a central band of big frames)."""
    return row_window(tuple(shape), config.max_analysis_pixels)


def band_master(master: MasterDark, rows: slice) -> MasterDark:
    """A full-frame ``master`` restricted to a band of rows (views); its provenance records
    the band (``rows``: ``[start, stop]``; ``full_rows``: the frame's height).

    A band master is judged as the full master would be over that band; the gates that count
    values over the whole master (``n_hot_stable``, the clipping counts of
    ``high_reject_excess``) count them in the band.
    """
    import dataclasses

    from darkflow.verify._master import _crop

    prov = {
        **(master.provenance or {}),
        "rows": [rows.start, rows.stop],
        "full_rows": master.shape[0],
    }
    return dataclasses.replace(_crop(master, rows), provenance=prov)


def _band_reader(paths: Sequence[str], rows: slice) -> Callable[[], Iterator[np.ndarray]]:
    """Frames read lazily, one at a time, only the analysed band of rows."""

    def frames() -> Iterator[np.ndarray]:
        from darkflow.io.bands import FrameSource

        for path in paths:
            with FrameSource(path) as src:
                out = np.empty((rows.stop - rows.start, src.shape[1]), dtype=np.float32)
                src.read_rows(rows.start, rows.stop, out)
            yield out

    return frames

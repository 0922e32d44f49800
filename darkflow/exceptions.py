"""The one exception and warning hierarchy of darkflow.

Every error darkflow raises on purpose derives from :class:`DarkflowError`, so callers can catch
the whole family, and each subclass also derives from the closest builtin (``ValueError``,
``OSError`` ...) so generic handlers keep working. Errors are chained with ``raise ... from err``.
Only the batch runner catches broadly, and it records the failure against the frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence

__all__ = [
    "ArtifactCorruptError",
    "CalibrationError",
    "ConfigError",
    "DarkflowError",
    "DarkflowWarning",
    "DiskFullError",
    "ExecutorError",
    "FitsReadError",
    "HeaderError",
    "IncompatibleFramesError",
    "InsufficientFramesError",
    "MissingDependencyError",
    "OutputError",
    "RegistryError",
    "odd_frames",
]


class DarkflowError(Exception):
    """Base class of every error darkflow raises on purpose."""


class ConfigError(DarkflowError, ValueError):
    """A configuration value, file or command-line option is invalid."""


class FitsReadError(DarkflowError, OSError):
    """A file cannot be read as a FITS image (missing, unreadable, truncated, corrupt, not FITS)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ArtifactCorruptError(FitsReadError):
    """An artifact's bytes differ from the content hash recorded when it was written.

    ``expected`` is the recorded hash, ``found`` the hash of the bytes read. The artifact must
    not be used; the pipeline rebuilds it (``darkflow verify`` finds every such file).
    """

    def __init__(self, path: str, expected: str, found: str):
        super().__init__(
            path,
            f"content hash {found[:16]} differs from the recorded {expected[:16]} "
            "(the file was changed after darkflow wrote it)",
        )
        self.expected = expected
        self.found = found


class HeaderError(DarkflowError, ValueError):
    """A header lacks a required keyword or holds an inconsistent value."""


class IncompatibleFramesError(DarkflowError, ValueError):
    """Frames that must agree (shape, dtype, binning, configuration) do not.

    ``odd_frames`` names the frames that differ from the others (:func:`odd_frames`), with what
    differs.
    """

    def __init__(self, message: str, odd_frames: Iterable[tuple[str, str]] = ()):
        self.odd_frames = list(odd_frames)
        detail = "".join(f"\n  {path}: {why}" for path, why in self.odd_frames)
        super().__init__(message + detail)


def odd_frames(
    names: Sequence[str],
    values: Sequence[Hashable],
    what: str,
    same: Callable[[object, object], bool] = lambda a, b: a == b,
) -> list[tuple[str, str]]:
    """The frames whose ``what`` differs from the most common value, each with the reason.

    A value held by more than half of the frames is "the majority"; without one (a 3-3 split, or
    three values among five frames) no side is called right: every frame off the most common value
    is named, and the reason counts each value.
    """
    counts = Counter(values)
    (common, n_common), *others = counts.most_common()
    if all(same(value, common) for value in values):
        return []
    if 2 * n_common > len(values):
        note = f"majority {common!r}"
    else:
        note = "no majority: " + ", ".join(f"{n} x {v!r}" for v, n in counts.most_common())
    if others and others[0][1] == n_common:  # a tie: name every frame, no side is the reference
        return [
            (name, f"{what}={value!r} ({note})") for name, value in zip(names, values, strict=True)
        ]
    return [
        (name, f"{what}={value!r} ({note})")
        for name, value in zip(names, values, strict=True)
        if not same(value, common)
    ]


class InsufficientFramesError(DarkflowError, ValueError):
    """Too few frames to build a statistic (e.g. fewer than 3 darks for a clipped master)."""


class CalibrationError(DarkflowError, RuntimeError):
    """A frame cannot be calibrated (no usable master, incompatible master, failed check)."""


class OutputError(DarkflowError, OSError):
    """An output cannot be written (read-only directory, full disk, ...). Nothing partial is left."""


class DiskFullError(OutputError):
    """The work directory's file system is full (or over quota): the run stops at once, marked
    failed; what was finished is kept and a rerun continues from it."""


class ExecutorError(DarkflowError, RuntimeError):
    """The executor cannot run jobs: a Dask scheduler unreachable, lost, or without workers."""


class RegistryError(DarkflowError, RuntimeError):
    """The artifact registry is inconsistent or cannot be opened."""


class MissingDependencyError(DarkflowError, ImportError):
    """An optional dependency needed for this feature is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None):
        hint = f"pip install 'darkflow[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package {package!r}, which is not installed: {hint}")
        self.package = package


class DarkflowWarning(UserWarning):
    """Base class of darkflow's warnings."""

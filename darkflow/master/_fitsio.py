"""Master FITS files: primary HDU = master (float32), named extensions for the other planes.

Layout (see ``docs/master.md``)::

    HDU 0  PRIMARY  float32  clipped mean; header = metadata, parameters, summary, provenance
    HDU 1  UNCERT   float32  standard error of the mean
    HDU 2  NUSED    uint16   frames kept per pixel
    HDU 3  NLOW     uint16   frames clipped below
    HDU 4  NHIGH    uint16   frames clipped above
    HDU 5  HOTPERS  float32  fraction of valid frames in which the pixel was high
    HDU 6  SATUR    uint8    1 where every valid frame was saturated (only when known)

The primary image is always written in full. Each other plane is written as configured in
``[output]`` (:class:`~darkflow.config.OutputConfig`): ``full``, ``compressed`` (a tile-compressed
HDU of the same name; lossless, except the uncertainty, which is quantised; a compressed
``HOTPERS`` holds the count of frames in which the pixel was high, ``uint16``, divided by
``NUSED + NLOW + NHIGH`` when read) or ``scalar`` (no HDU; :func:`read_master` rebuilds an
approximate plane from header values, see :data:`SCALAR_RULES`). ``DFPLxxxx`` cards say how
each plane was written, and a master read from a file says it in
``provenance["planes"]`` (``{"uncertainty": "compressed", ...}``).

The primary header carries readable cards (IMAGETYP, EXPTIME, CCD-TEMP, NCOMBINE, the clipping
parameters, summary statistics, one ``DFINnnnn`` card per input with its size and fingerprint,
HISTORY) and ``DFMETA``, a JSON long string (CONTINUE cards) holding ``MasterMeta``, ``stats``
and ``provenance`` exactly, which :func:`read_master` uses for the round trip.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.config import MASTER_PLANE_KEYS, OutputConfig
from darkflow.exceptions import ArtifactCorruptError, FitsReadError
from darkflow.io.atomic import atomic_path
from darkflow.io.hashing import HashingReader
from darkflow.io.jsonsafe import to_jsonable
from darkflow.io.paths import file_identity
from darkflow.io.planes import plane_hdu, plane_mode_of
from darkflow.model import FrameType, MasterDark, MasterMeta

__all__ = [
    "SCALAR_RULES",
    "NotAMasterError",
    "as_written",
    "output_of",
    "read_master",
    "read_master_hashed",
    "write_master",
]

FORMAT_VERSION = 2  # 2: planes full, compressed or scalar ([output]); 1: every plane full
_PLANES = (
    ("UNCERT", "uncertainty", np.float32, "standard error of the master (ADU)"),
    ("NUSED", "n_used", np.uint16, "frames kept per pixel"),
    ("NLOW", "n_low", np.uint16, "frames clipped below per pixel"),
    ("NHIGH", "n_high", np.uint16, "frames clipped above per pixel"),
    ("HOTPERS", "hot_persistence", np.float32, "fraction of frames with the pixel high"),
)
_SATUR_COMMENT = "1 where the pixel was saturated in every valid frame"
# header card saying how each plane was written
_MODE_CARDS = {
    "uncertainty": "DFPLUNC",
    "n_used": "DFPLNUSE",
    "n_low": "DFPLNLOW",
    "n_high": "DFPLNHIG",
    "hot_persistence": "DFPLHOT",
    "saturated": "DFPLSAT",
}
_HOT_COUNT = "count"  # DFENCODE of a HOTPERS plane holding counts of frames

#: How :func:`read_master` rebuilds a plane written as ``scalar`` (the header values named).
SCALAR_RULES = {
    "uncertainty": "sqrt((DFUNV0 + max(master - DFMEDIAN, 0) / EGAIN) / n_used): the shot "
    "noise of the dark signal above the median level when EGAIN is known, and DFUNV0 chosen so "
    "that the frame's mean per-frame variance (the read noise the noise model takes from a "
    "master) is kept; photon transfer on it would be circular, so darkflow does not estimate "
    "the gain from such a master",
    "n_used": "DFNUSED (the median frames kept) everywhere",
    "n_low": "zero everywhere; DFNLOWT is the total",
    "n_high": "zero everywhere; DFNHIGHT is the total",
    "hot_persistence": "1 where the master is above DFMEDIAN + HOTSIGMA x NOISEADU, else 0",
    "saturated": "master >= SATLEVEL - 0.5 (none when DFNSAT is 0)",
}


class NotAMasterError(FitsReadError):
    """The file is a readable FITS image but not a darkflow master (no DFMETA / planes)."""


def _ascii(text: Any, limit: int = 68) -> str:
    return str(text).encode("ascii", "replace").decode("ascii")[:limit]


def _meta_to_json(meta: MasterMeta) -> dict[str, Any]:
    out = asdict(meta)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, FrameType):
            out[key] = value.value
    return to_jsonable(out)


def _meta_from_json(data: dict[str, Any]) -> MasterMeta:
    known = {f.name for f in fields(MasterMeta)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for key in ("date_start_utc", "date_end_utc"):
        if kwargs.get(key):
            kwargs[key] = datetime.fromisoformat(kwargs[key])
    kwargs["frame_kind"] = FrameType(kwargs.get("frame_kind", "dark"))
    if kwargs.get("exptime_s") is None:
        kwargs["exptime_s"] = math.nan
    return MasterMeta(**kwargs)


def _set(header: fits.Header, key: str, value: Any, comment: str = "") -> None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return
    if isinstance(value, str):
        value = _ascii(value)
    header[key] = (value, comment)


def _header(master: MasterDark) -> fits.Header:
    m, st = master.meta, master.stats
    # how the combine ran (band height, memory budget, time) is not part of the artifact
    prov = {k: v for k, v in master.provenance.items() if k != "execution"}
    h = fits.Header()
    kind = "Master Bias" if m.frame_kind == FrameType.BIAS else "Master Dark"
    _set(h, "IMAGETYP", kind, "darkflow master")
    _set(h, "EXPTIME", m.exptime_s, "[s] exposure of the combined frames")
    _set(h, "CCD-TEMP", m.temp_c, "[C] mean sensor temperature of the inputs")
    _set(h, "SET-TEMP", m.set_temp_c, "[C] cooler set point")
    _set(h, "TEMPMIN", m.temp_min_c, "[C] lowest input temperature")
    _set(h, "TEMPMAX", m.temp_max_c, "[C] highest input temperature")
    _set(h, "INSTRUME", m.instrument)
    _set(h, "EGAIN", m.egain_e_per_adu, "[e-/ADU]")
    _set(h, "GAIN", m.gain_setting, "camera gain setting")
    _set(h, "OFFSET", m.offset, "camera offset setting")
    _set(h, "READOUTM", m.readout_mode)
    _set(h, "NCOMBINE", m.n_frames, "frames combined")
    _set(h, "DATE-OBS", m.date_start_utc.isoformat() if m.date_start_utc else None, "first input")
    _set(h, "DATE-END", m.date_end_utc.isoformat() if m.date_end_utc else None, "last input")
    _set(h, "DFSIG", m.config_signature, "darkflow sensor configuration signature")
    _set(h, "DFBIASSB", m.bias_subtracted, "a master bias was subtracted")
    _set(h, "DFINCBIA", m.includes_bias, "the master includes the bias level")
    _set(h, "DFBIASEX", m.bias_exptime_s, "[s] exposure of the subtracted bias")
    _set(h, "DFVERS", __version__, "darkflow version")
    _set(h, "DFALGO", ALGORITHM_VERSION, "darkflow algorithm version")
    _set(h, "DFFORMAT", FORMAT_VERSION, "darkflow master file layout version")
    params = prov.get("params", {})
    noise = prov.get("noise", {})
    _set(h, "CLIPLO", params.get("sigma_low"), "low clipping threshold (sigma)")
    _set(h, "CLIPHI", params.get("sigma_high"), "high clipping threshold (sigma)")
    _set(h, "CLIPITER", params.get("max_iters"), "maximum clipping iterations")
    _set(h, "CLIPSCAL", noise.get("scale", params.get("scale")), "clipping scale")
    _set(h, "HOTSIGMA", params.get("hot_sigma"), "hot threshold over frame level (sigma)")
    _set(h, "NOISEADU", noise.get("sig0_adu"), "[ADU] temporal noise at the typical level")
    _set(h, "SATLEVEL", prov.get("sat_level"), "[ADU] saturation level")
    _set(h, "DFMEDIAN", st.get("median"), "[ADU] median of the master")
    _set(h, "DFRSTD", st.get("robust_std"), "[ADU] robust spatial std of the master")
    _set(h, "DFMUNC", st.get("median_uncertainty"), "[ADU] median uncertainty")
    _set(h, "DFCLIPFR", st.get("clipped_fraction"), "fraction of values clipped")
    _set(h, "DFNHOT", st.get("n_hot_stable"), "pixels high in >= 90% of frames")
    _set(h, "DFNSAT", st.get("n_saturated"), "pixels saturated in every frame")
    _set(h, "DFNEMPTY", st.get("n_empty"), "pixels without any valid value")
    for i, item in enumerate(prov.get("inputs", [])[:9999], start=1):
        size = item.get("size")
        _set(h, f"DFIN{i:04d}", item.get("name"), f"{size} bytes fp {item.get('fingerprint')}")
    for line in prov.get("history", []):
        h.add_history(_ascii(line, 1000))
    blob = {"format": FORMAT_VERSION, "meta": _meta_to_json(m), "stats": st, "provenance": prov}
    h["DFMETA"] = (json.dumps(to_jsonable(blob), ensure_ascii=True, sort_keys=True), "")
    return h


def write_master(
    master: MasterDark, path: str | os.PathLike[str], *, output: OutputConfig | None = None
) -> Path:
    """Write ``master`` to ``path`` atomically; return the path.

    ``output`` says how each auxiliary plane is written (default: ``OutputConfig()``, see the
    module docstring); the primary image is always written in full.
    """

    modes = (output or OutputConfig()).master_planes()
    quantize = (output or OutputConfig()).quantize_level
    planes = {
        attr: np.ascontiguousarray(getattr(master, attr), dtype=dt) for _, attr, dt, _ in _PLANES
    }
    header = _header(master)
    _plane_cards(header, master, planes, modes, quantize)
    hdus: list[Any] = [
        fits.PrimaryHDU(data=np.ascontiguousarray(master.data, dtype=np.float32), header=header)
    ]
    counts_stored = all(modes[a] != "scalar" for a in ("n_used", "n_low", "n_high"))
    for name, attr, _, comment in _PLANES:
        eh = fits.Header()
        eh["COMMENT"] = comment
        data, lossless = planes[attr], attr != "uncertainty"
        if attr == "hot_persistence" and modes[attr] == "compressed" and counts_stored:
            from darkflow.master._hotkernel import hot_counts  # numba: loaded when needed

            counts = hot_counts(
                planes["hot_persistence"], planes["n_used"], planes["n_low"], planes["n_high"]
            )
            if counts is not None:  # exact: stored as integers, which compress far better
                data = counts
                eh["DFENCODE"] = (_HOT_COUNT, "frames high; / (NUSED + NLOW + NHIGH) when read")
        hdu = plane_hdu(
            data, name, modes[attr], header=eh, quantize_level=quantize, lossless=lossless
        )
        if hdu is not None:
            hdus.append(hdu)
    if master.saturated is not None:
        eh = fits.Header()
        eh["COMMENT"] = _SATUR_COMMENT
        hdu = plane_hdu(master.saturated.astype(np.uint8), "SATUR", modes["saturated"], header=eh)
        if hdu is not None:
            hdus.append(hdu)
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, output_verify="silentfix", checksum=False)
    return path


def _trimmed_mean(values: np.ndarray) -> float:
    """Mean of the lowest 99.5% (darkflow.subtract.read_variance's trimming)."""
    values = np.sort(values)
    return float(np.mean(values[: max(1, int(values.size * 0.995))]))


def _level(master: MasterDark) -> float:
    """The typical level of a master (``DFMEDIAN``), as the reader takes it."""
    median = master.stats.get("median")
    return float(median) if median is not None else float(np.nanmedian(master.data))


def _excess_shot(data: np.ndarray, level: float, gain: float | None) -> np.ndarray:
    """Per-frame shot-noise variance of the dark signal above the typical level (ADU²)."""
    if not gain or gain <= 0:
        return np.zeros(data.shape, np.float64)
    with np.errstate(invalid="ignore"):
        return np.maximum(data.astype(np.float64) - level, 0.0) / gain


def _hot_counts_reference(planes: dict[str, np.ndarray]) -> np.ndarray | None:
    """The hot-persistence plane as integer counts, if that reproduces it bit for bit (numpy
    twin of :func:`darkflow.master._hotkernel.hot_counts`)."""
    valid = (planes["n_used"].astype(np.int32) + planes["n_low"] + planes["n_high"]).astype(
        np.float64
    )
    hot = planes["hot_persistence"]
    counts = np.rint(hot.astype(np.float64) * valid)
    if counts.max(initial=0) > np.iinfo(np.uint16).max or counts.min(initial=0) < 0:
        return None
    counts = counts.astype(np.uint16)
    if not np.array_equal(_hot_from_counts(counts, valid), hot):
        return None
    return counts


def _hot_from_counts(counts: np.ndarray, valid: np.ndarray) -> np.ndarray:
    # the combine's own formula: count / float64(valid frames), stored as float32 (numpy twin
    # of darkflow.master._hotkernel.hot_from_counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid > 0, counts / valid, 0.0).astype(np.float32)


def _plane_cards(header: fits.Header, master: MasterDark, planes, modes, quantize) -> None:
    """How each plane was written, and the values a reader rebuilds ``scalar`` planes from."""
    for attr, key in _MODE_CARDS.items():
        if attr == "saturated" and master.saturated is None:
            continue
        _set(header, key, modes[attr], f"{attr}: full, compressed or scalar")
    if modes["uncertainty"] == "compressed":
        _set(header, "DFQLEVEL", quantize, "UNCERT quantised to its scatter / DFQLEVEL")
    n_used = planes["n_used"]
    n_typ = float(np.median(n_used)) if n_used.size else 0.0
    if modes["uncertainty"] == "scalar":
        # chosen so that the rebuilt plane keeps the mean per-frame variance of the frame (top
        # 0.5% left out): what the noise model takes from a master as its read noise
        # (darkflow.subtract.read_variance)
        var = np.square(planes["uncertainty"], dtype=np.float64) * n_used
        excess = _excess_shot(master.data, _level(master), master.meta.egain_e_per_adu)
        ok = np.isfinite(var) & (n_used >= 2)
        # adding a constant keeps the order, so the rebuilt plane's trimmed mean is exactly
        # DFUNV0 + the trimmed mean of the excess
        v0 = _trimmed_mean(var[ok]) - _trimmed_mean(excess[ok]) if ok.any() else math.nan
        _set(header, "DFUNV0", v0, "[adu2] per-frame variance less excess shot noise")
    if modes["n_used"] == "scalar":
        _set(header, "DFNUSED", round(n_typ), "median frames kept per pixel")
    if modes["n_low"] == "scalar":
        _set(header, "DFNLOWT", int(planes["n_low"].sum(dtype=np.int64)), "values clipped below")
    if modes["n_high"] == "scalar":
        _set(header, "DFNHIGHT", int(planes["n_high"].sum(dtype=np.int64)), "values clipped above")
    if modes["saturated"] == "scalar" and master.saturated is not None:
        _set(
            header,
            "DFNSAT",
            int(np.count_nonzero(master.saturated)),
            "pixels saturated in every frame",
        )


def output_of(master: MasterDark) -> OutputConfig:
    """The ``[output]`` settings a master read from a file was written with (defaults for the
    planes of a master that was never written)."""
    planes = master.provenance.get("planes") or {}
    modes = {k: v for k, v in planes.items() if k in MASTER_PLANE_KEYS}
    level = master.provenance.get("quantize_level", OutputConfig.quantize_level)
    return OutputConfig(**modes, quantize_level=level)


def as_written(master: MasterDark, output: OutputConfig | None = None) -> MasterDark:
    """``master`` as a file written with ``output`` gives it back (quantised, rebuilt planes):
    what a freshly combined master is compared with when the other one was read from a file."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="darkflow-master-") as tmp:
        return read_master(write_master(master, Path(tmp) / "master.fits", output=output))


def _native(array: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("="))


def read_master(path: str | os.PathLike[str], *, content_hash: str | None = None) -> MasterDark:
    """Read a master written by :func:`write_master` (planes, ``MasterMeta``, stats, provenance).

    With ``content_hash`` (recorded when the master was written) the bytes are verified as they
    are read, in one pass over the file.

    Raises
    ------
    FitsReadError
        The file cannot be read; :class:`NotAMasterError` (a subclass) when it is a FITS image
        but not a darkflow master; :class:`~darkflow.exceptions.ArtifactCorruptError` (a
        subclass) when its bytes differ from ``content_hash``.
    """
    return read_master_hashed(path, content_hash=content_hash)[0]


def read_master_hashed(
    path: str | os.PathLike[str], *, content_hash: str | None = None
) -> tuple[MasterDark, str]:
    """:func:`read_master` that also returns the content hash of the bytes it read."""
    path = Path(path)
    try:
        reader = HashingReader(path)
    except FileNotFoundError as err:
        raise FitsReadError(str(path), "file not found") from err
    except OSError as err:
        raise FitsReadError(str(path), f"unreadable master ({err})") from err
    try:
        with reader:
            master = _read_planes(path, reader)
            found = reader.hexdigest()
    except FitsReadError as err:
        _check_hash(path, content_hash, reader, err)
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        failure = FitsReadError(str(path), f"unreadable master ({err})")
        _check_hash(path, content_hash, reader, failure)
        raise failure from err
    if content_hash is not None and found != content_hash:
        raise ArtifactCorruptError(str(path), content_hash, found)
    return master, found


# masters read (and verified) in this process, by file identity and recorded hash, a few kept
_READ: OrderedDict[tuple, MasterDark] = OrderedDict()
_READ_SIZE = 4
_READ_LOCK = threading.Lock()


def _identity(path: str | os.PathLike[str], content_hash: str | None) -> tuple | None:
    ident = file_identity(path)
    return None if ident is None else (content_hash, *ident)


def read_master_cached(
    path: str | os.PathLike[str], *, content_hash: str | None = None
) -> MasterDark:
    """:func:`read_master`, once per process: a few masters are kept (least recently used
    dropped) under the file's identity (size, mtime, inode) and the hash it was verified
    against; a file replaced or rewritten since is read and verified again. The planes are
    shared: callers never write to them."""
    key = _identity(path, content_hash)
    with _READ_LOCK:
        if key in _READ:
            _READ.move_to_end(key)
            return _READ[key]
    master = read_master(path, content_hash=content_hash)
    if key is not None:
        remember_master(path, content_hash, master, identity=key)
    return master


def remember_master(
    path: str | os.PathLike[str],
    content_hash: str | None,
    master: MasterDark,
    *,
    identity: tuple | None = None,
) -> None:
    """Keep ``master``, just read from ``path`` and hashed to ``content_hash`` (the bytes it was
    read from), for :func:`read_master_cached`."""
    key = identity or _identity(path, content_hash)
    if key is None:
        return
    with _READ_LOCK:
        _READ[key] = master
        _READ.move_to_end(key)
        while len(_READ) > _READ_SIZE:
            _READ.popitem(last=False)


def forget_masters() -> None:
    """Drop the masters :func:`read_master_cached` keeps (their memory goes back)."""
    with _READ_LOCK:
        _READ.clear()


def _check_hash(path: Path, expected: str | None, reader: HashingReader, err: Exception) -> None:
    """A master that fails to parse and is not the recorded bytes is corrupt, not unreadable."""
    if expected is None:
        return
    try:
        found = reader.hexdigest()  # complete: closing the reader hashed what was left
    except OSError:
        return
    if found != expected:
        raise ArtifactCorruptError(str(path), expected, found) from err


def _read_planes(path: Path, reader: HashingReader) -> MasterDark:
    # HDUs are visited in file order, each one's data right after its header, so the file is
    # read (and hashed) once from start to end
    arrays: dict[str, np.ndarray] = {}
    stored: dict[str, str] = {}
    hot_encoding = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        with fits.open(reader, memmap=False, lazy_load_hdus=True) as hdul:
            for i, hdu in enumerate(hdul):
                if i == 0:
                    header = hdu.header.copy()
                    if "DFMETA" not in header:
                        raise NotAMasterError(str(path), "not a darkflow master (no DFMETA card)")
                    blob = json.loads(header["DFMETA"])
                if hdu.data is not None:
                    name = hdu.name if i else "PRIMARY"
                    arrays[name] = hdu.data
                    stored[name] = plane_mode_of(hdu)
                    if name == "HOTPERS":
                        hot_encoding = hdu.header.get("DFENCODE")
            if "PRIMARY" not in arrays:
                raise FitsReadError(str(path), "master planes missing: PRIMARY")
            data = _native(arrays["PRIMARY"], np.float32)
            modes = {attr: header.get(_MODE_CARDS[attr], "full") for attr in _MODE_CARDS}
            missing = [
                name for name, attr, *_ in _PLANES if name not in arrays and modes[attr] != "scalar"
            ]
            if missing:
                raise FitsReadError(str(path), f"master planes missing: {missing}")
            planes = {
                attr: _native(
                    arrays[name],
                    np.uint16 if name == "HOTPERS" and hot_encoding == _HOT_COUNT else dt,
                )
                for name, attr, dt, _ in _PLANES
                if name in arrays
            }
            saturated = arrays["SATUR"].astype(bool) if "SATUR" in arrays else None
    try:
        meta = _meta_from_json(blob["meta"])
    except (KeyError, TypeError, ValueError) as err:
        raise FitsReadError(str(path), f"corrupt DFMETA card ({err})") from err
    _rebuild(planes, data, header, meta)
    if hot_encoding == _HOT_COUNT:
        from darkflow.master._hotkernel import hot_from_counts  # numba: loaded when needed

        planes["hot_persistence"] = hot_from_counts(
            planes["hot_persistence"], planes["n_used"], planes["n_low"], planes["n_high"]
        )
    if saturated is None and modes["saturated"] == "scalar" and "DFPLSAT" in header:
        saturated = _rebuild_saturated(data, header)
    provenance = dict(blob.get("provenance", {}))
    provenance["planes"] = {}
    if "DFQLEVEL" in header:
        provenance["quantize_level"] = float(header["DFQLEVEL"])
    for name, attr in (*((n, a) for n, a, *_ in _PLANES), ("SATUR", "saturated")):
        if name in stored:
            provenance["planes"][attr] = stored[name]
        elif modes[attr] == "scalar" and (attr != "saturated" or saturated is not None):
            provenance["planes"][attr] = "scalar"
    return MasterDark(
        data=data,
        meta=meta,
        saturated=saturated,
        stats=dict(blob.get("stats", {})),
        provenance=provenance,
        **planes,
    )


def _rebuild(
    planes: dict[str, np.ndarray], data: np.ndarray, header: fits.Header, meta: MasterMeta
) -> None:
    """Approximate planes for the ones written as ``scalar`` (:data:`SCALAR_RULES`)."""
    shape = data.shape
    if "n_used" not in planes:
        n = int(header.get("DFNUSED", meta.n_frames))
        planes["n_used"] = np.full(shape, n, np.uint16)
    for attr in ("n_low", "n_high"):
        if attr not in planes:
            planes[attr] = np.zeros(shape, np.uint16)
    # the median only when the header does not hold it (a full-frame median: ~0.2 s per read)
    level = float(header["DFMEDIAN"] if "DFMEDIAN" in header else np.nanmedian(data))
    if "uncertainty" not in planes:
        var = float(header.get("DFUNV0", math.nan)) + _excess_shot(
            data, level, meta.egain_e_per_adu
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            unc = np.sqrt(var / np.maximum(planes["n_used"], 1))
        planes["uncertainty"] = unc.astype(np.float32)
    if "hot_persistence" not in planes:
        noise = header.get("NOISEADU")
        hot_sigma = header.get("HOTSIGMA")
        hot = np.zeros(shape, np.float32)
        if noise is not None and hot_sigma is not None:
            with np.errstate(invalid="ignore"):
                hot[data > level + float(hot_sigma) * float(noise)] = 1.0
        planes["hot_persistence"] = hot


def _rebuild_saturated(data: np.ndarray, header: fits.Header) -> np.ndarray:
    level = header.get("SATLEVEL")
    if level is None or header.get("DFNSAT", 1) == 0:
        return np.zeros(data.shape, bool)
    with np.errstate(invalid="ignore"):
        return data >= float(level) - 0.5

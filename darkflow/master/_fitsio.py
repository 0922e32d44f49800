"""Master FITS files: primary HDU = master (float32), named extensions for the other planes.

Layout (see ``docs/master.md``)::

    HDU 0  PRIMARY  float32  clipped mean; header = metadata, parameters, summary, provenance
    HDU 1  UNCERT   float32  standard error of the mean
    HDU 2  NUSED    uint16   frames kept per pixel
    HDU 3  NLOW     uint16   frames clipped below
    HDU 4  NHIGH    uint16   frames clipped above
    HDU 5  HOTPERS  float32  fraction of valid frames in which the pixel was high
    HDU 6  SATUR    uint8    1 where every valid frame was saturated (only when known)

The primary header carries readable cards (IMAGETYP, EXPTIME, CCD-TEMP, NCOMBINE, the clipping
parameters, summary statistics, one ``DFINnnnn`` card per input with its size and fingerprint,
HISTORY) and ``DFMETA``, a JSON long string (CONTINUE cards) holding ``MasterMeta``, ``stats``
and ``provenance`` exactly, which :func:`read_master` uses for the round trip.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.exceptions import ArtifactCorruptError, FitsReadError
from darkflow.hashing import HashingReader
from darkflow.io.fits import write_image
from darkflow.master._combine import _clean
from darkflow.model import FrameType, MasterDark, MasterMeta

__all__ = ["NotAMasterError", "read_master", "read_master_hashed", "write_master"]

FORMAT_VERSION = 1
_PLANES = (
    ("UNCERT", "uncertainty", np.float32, "standard error of the master (ADU)"),
    ("NUSED", "n_used", np.uint16, "frames kept per pixel"),
    ("NLOW", "n_low", np.uint16, "frames clipped below per pixel"),
    ("NHIGH", "n_high", np.uint16, "frames clipped above per pixel"),
    ("HOTPERS", "hot_persistence", np.float32, "fraction of frames with the pixel high"),
)


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
    return _clean(out)


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
    h["DFMETA"] = (json.dumps(_clean(blob), ensure_ascii=True, sort_keys=True), "")
    return h


def write_master(master: MasterDark, path: str | os.PathLike[str]) -> Path:
    """Write ``master`` to ``path`` atomically (layout in the module docstring); return the path."""
    planes = [
        (name, np.ascontiguousarray(getattr(master, attr), dtype=dt))
        for name, attr, dt, _ in _PLANES
    ]
    ext_headers = {}
    for name, _, _, comment in _PLANES:
        eh = fits.Header()
        eh["COMMENT"] = comment
        ext_headers[name] = eh
    if master.saturated is not None:
        planes.append(("SATUR", master.saturated.astype(np.uint8)))
        eh = fits.Header()
        eh["COMMENT"] = "1 where the pixel was saturated in every valid frame"
        ext_headers["SATUR"] = eh
    data = np.ascontiguousarray(master.data, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        return write_image(
            path, data, _header(master), extensions=planes, extension_headers=ext_headers
        )


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        with fits.open(reader, memmap=False, lazy_load_hdus=True) as hdul:
            for i, hdu in enumerate(hdul):
                if i == 0:
                    header = hdu.header
                    if "DFMETA" not in header:
                        raise NotAMasterError(str(path), "not a darkflow master (no DFMETA card)")
                    blob = json.loads(header["DFMETA"])
                if hdu.data is not None:
                    arrays[hdu.name if i else "PRIMARY"] = hdu.data
            missing = [name for name, *_ in _PLANES if name not in arrays]
            if missing or "PRIMARY" not in arrays:
                raise FitsReadError(str(path), f"master planes missing: {missing or 'PRIMARY'}")
            planes = {attr: _native(arrays[name], dt) for name, attr, dt, _ in _PLANES}
            data = _native(arrays["PRIMARY"], np.float32)
            saturated = arrays["SATUR"].astype(bool) if "SATUR" in arrays else None
    try:
        meta = _meta_from_json(blob["meta"])
    except (KeyError, TypeError, ValueError) as err:
        raise FitsReadError(str(path), f"corrupt DFMETA card ({err})") from err
    provenance = dict(blob.get("provenance", {}))
    return MasterDark(
        data=data,
        meta=meta,
        saturated=saturated,
        stats=dict(blob.get("stats", {})),
        provenance=provenance,
        **planes,
    )

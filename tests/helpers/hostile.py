"""A generator of hostile inputs: files a real observatory disk holds beside good frames.

:func:`make_hostile_night` writes one small camera night (the N.I.N.A. camera of the ``tiny``
simulated night: darks, biases, lights) and, beside it, one bad input per :class:`Case`: broken
files, odd file kinds, broken headers, odd data, odd names, and a second camera whose dark set
cannot be combined. Each case states what darkflow must make of it: the catalog status and the
reason code of its row (scan), and for lights the frame-report status and reason (run).

Nothing here is a fixture of its own: tests call it with a directory of theirs.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0

LIGHTS = "M 31/LIGHT"
DARKS = "Calibration/DARK"


@dataclass
class Case:
    """One hostile input and what darkflow must make of it.

    ``status``: the allowed catalog statuses (``None``: any). ``reason``: a reason code the
    catalog row must carry (``None``: no particular one). ``light``: the frame-report
    statuses allowed for it when it is a light (``None``: not checked), and ``light_reason``
    a code its frame-report row must carry. ``row``: whether the file gets a catalog row at all.
    """

    name: str
    path: Path
    status: frozenset[str] | None = None
    reason: str | None = None
    light: frozenset[str] | None = None
    light_reason: str | None = None
    row: bool = True
    notes: str = ""


REJECTED = frozenset({"rejected"})
ISOLATED = frozenset({"isolated"})
ELIGIBLE = frozenset({"eligible"})
QUARANTINED = frozenset({"quarantined"})
DELIVERED = frozenset({"calibrated", "degraded"})


@dataclass
class HostileNight:
    root: Path  # the input tree (give it to scan / run)
    cases: list[Case] = field(default_factory=list)
    good_lights: list[Path] = field(default_factory=list)

    def by_name(self) -> dict[str, Case]:
        return {c.name: c for c in self.cases}


def _template(source: Path) -> tuple[fits.Header, np.ndarray]:
    with fits.open(source) as hdul:
        return hdul[0].header.copy(), np.array(hdul[0].data)


def make_hostile_night(tiny_night: Path, out: Path) -> HostileNight:
    """Write the hostile night below ``out`` from the simulated ``tiny_night``; return it."""
    camera = Path(tiny_night) / "2026-11-23" / "nina_asi2600mm"
    root = Path(out)
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(camera, root, symlinks=True)
    lights = sorted((root / LIGHTS).glob("*.fits"))
    truncated = lights[0]  # the simulator breaks the first light of this camera
    good = lights[1]
    header, data = _template(good)
    night = HostileNight(root, good_lights=lights[1:])
    cases = night.cases
    seq = [0]

    def fresh(hdr: fits.Header) -> fits.Header:
        """A unique DATE-OBS a few seconds after the good lights: no two cases share bytes."""
        seq[0] += 1
        hdr = hdr.copy()
        if "DATE-OBS" in hdr:
            hdr["DATE-OBS"] = f"2026-11-23T16:50:{seq[0] % 60:02d}.{seq[0]:06d}"
        return hdr

    def light(
        name: str,
        filename: str | bytes,
        *,
        edit: dict | None = None,
        remove: tuple[str, ...] = (),
        pixels: np.ndarray | None = None,
        folder: str = LIGHTS,
        **expect,
    ) -> Path:
        hdr = fresh(header)
        for key in remove:
            hdr.remove(key, ignore_missing=True, remove_all=True)
        for key, value in (edit or {}).items():
            hdr[key] = value
        base = os.fsencode(root / folder)
        target = os.path.join(base, filename if isinstance(filename, bytes) else filename.encode())
        os.makedirs(os.path.dirname(target), exist_ok=True)
        arr = data if pixels is None else pixels
        hdu = fits.PrimaryHDU(arr, hdr)
        if arr.dtype != np.uint16:
            for key in ("BZERO", "BSCALE"):
                hdu.header.remove(key, ignore_missing=True)
        with open(target, "wb") as fh:
            hdu.writeto(fh)
        path = Path(os.fsdecode(target))
        cases.append(Case(name, path, **expect))
        return path

    def raw(name: str, filename: str, content: bytes | Callable[[Path], None], **expect) -> Path:
        path = root / "misc" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        cases.append(Case(name, path, **expect))
        return path

    good_bytes = good.read_bytes()
    hdr_len = good_bytes.index(b"END" + b" " * 77) // 2880 * 2880 + 2880

    # ---------------------------------------------------------------- broken files
    raw("empty", "empty.fits", b"", status=REJECTED, reason="empty_file")
    raw("header_cut", "header_cut.fits", good_bytes[:1000], status=REJECTED, reason="truncated")
    raw(
        "data_cut",
        "data_cut.fits",
        good_bytes[: hdr_len + 100],
        status=REJECTED,
        reason="truncated",
    )
    raw("no_end_card", "no_end.fits", good_bytes[:2880], status=REJECTED, reason="truncated")
    raw(
        "text_file",
        "notes.fits",
        b"observing log: clouds at 23h\n" * 10,
        status=REJECTED,
        reason="not_fits",
    )
    raw(
        "random_bytes",
        "noise.fits",
        np.random.default_rng(1).bytes(5760),
        status=REJECTED,
        reason="not_fits",
    )
    raw(
        "png_named_fit",
        "image.fit",
        b"\x89PNG\r\n\x1a\n" + b"\0" * 3000,
        status=REJECTED,
        reason="not_fits",
    )
    raw(
        "simple_false",
        "simple_f.fits",
        good_bytes.replace(b"SIMPLE  =                    T", b"SIMPLE  =                    F", 1),
        status=REJECTED,
        reason="not_fits",
    )
    raw(
        "corrupt_gzip",
        "corrupt.fits.gz",
        b"\x1f\x8b\x08\x00" + b"\xff" * 400,
        status=REJECTED,
        reason="not_fits",
    )
    raw("truncated_gzip", "cut.fits.gz", gzip.compress(good_bytes)[:600], status=REJECTED)
    raw("bintable_only", "table.fits", _bintable_only(), status=REJECTED, reason="no_image")
    raw(
        "primary_no_data",
        "nodata.fits",
        _image_bytes(None, header),
        status=REJECTED,
        reason="no_image",
    )
    raw(
        "cube_rgb",
        "rgb.fits",
        _image_bytes(np.zeros((3, 8, 8), np.uint16), header),
        status=REJECTED,
        reason="not_2d",
    )
    raw(
        "vector_1d",
        "vector.fits",
        _image_bytes(np.zeros(64, np.uint16), header),
        status=REJECTED,
        reason="not_2d",
    )
    raw(
        "bitpix_17",
        "bitpix17.fits",
        good_bytes.replace(b"BITPIX  =                   16", b"BITPIX  =                   17", 1),
        status=REJECTED,
    )
    raw(
        "naxis_negative",
        "naxis_neg.fits",
        good_bytes.replace(b"NAXIS1  =                   64", b"NAXIS1  =                  -64", 1),
        status=REJECTED,
    )
    raw(
        "naxis_text",
        "naxis_text.fits",
        good_bytes.replace(b"NAXIS1  =                   64", b"NAXIS1  = 'sixty-four'        ", 1),
        status=REJECTED,
    )
    raw(
        "trailing_garbage",
        "trailing.fits",
        _with_date(good_bytes, 1) + b"\0" * 5000,
        status=ELIGIBLE,
    )

    # ---------------------------------------------------------------- not regular files
    misc = root / "misc"
    (misc / "folder.fits").mkdir()
    cases.append(Case("directory_named_fits", misc / "folder.fits", REJECTED, "not_regular_file"))
    (misc / "nested.fits" / "inner").mkdir(parents=True)
    cases.append(
        Case("directory_tree_named_fits", misc / "nested.fits", REJECTED, "not_regular_file")
    )
    if hasattr(os, "mkfifo"):
        os.mkfifo(misc / "pipe.fits")
        cases.append(Case("fifo", misc / "pipe.fits", REJECTED, "not_regular_file"))
    with contextlib.suppress(OSError):
        _unix_socket(misc, "socket.fits")
        cases.append(Case("socket", misc / "socket.fits", REJECTED, "not_regular_file"))
    if os.path.exists(os.devnull):
        os.symlink(os.devnull, misc / "devnull.fits")
        cases.append(Case("link_to_device", misc / "devnull.fits", REJECTED, "not_regular_file"))
    os.symlink(misc / "gone.fits", misc / "dangling.fits")
    cases.append(Case("dangling_symlink", misc / "dangling.fits", REJECTED, "unreadable"))
    os.symlink("loop_b.fits", misc / "loop_a.fits")
    os.symlink("loop_a.fits", misc / "loop_b.fits")
    cases.append(Case("symlink_loop_a", misc / "loop_a.fits", REJECTED, "unreadable"))
    cases.append(Case("symlink_loop_b", misc / "loop_b.fits", REJECTED, "unreadable"))
    os.symlink("self.fits", misc / "self.fits")
    cases.append(Case("symlink_self", misc / "self.fits", REJECTED, "unreadable"))
    os.symlink(good, misc / "link_to_light.fits")
    cases.append(Case("symlink_to_light", misc / "link_to_light.fits", REJECTED, "duplicate"))
    shutil.copy(good, misc / "copy_of_light.fits")
    cases.append(Case("byte_copy", misc / "copy_of_light.fits", REJECTED, "duplicate"))
    locked = raw(
        "permission_denied",
        "locked.fits",
        _with_date(good_bytes, 2),
        status=None if ROOT_USER else REJECTED,
        reason=None if ROOT_USER else "unreadable",
        notes="root reads it anyway",
    )
    locked.chmod(0)
    (misc / "unlistable").mkdir()
    (misc / "unlistable" / "hidden_light.fits").write_bytes(_with_date(good_bytes, 3))
    (misc / "unlistable").chmod(0)
    if not ROOT_USER:  # root lists it; anyone else must get a warning, not a crash
        cases.append(
            Case("unlistable_dir_content", misc / "unlistable" / "hidden_light.fits", row=False)
        )

    # ---------------------------------------------------------------- compressed, but fine
    gz = root / LIGHTS / "compressed_light.fits.gz"
    gz.write_bytes(gzip.compress(_with_date(good_bytes, 4), mtime=0))
    cases.append(Case("gzip_light", gz, ELIGIBLE, light=DELIVERED))
    fz = root / LIGHTS / "tile_compressed_light.fits.fz"
    _tile_compressed(fresh(header), data, fz)
    cases.append(Case("fz_light", fz, ELIGIBLE, light=DELIVERED))

    # ---------------------------------------------------------------- broken headers
    light(
        "no_exptime",
        "no_exptime.fits",
        remove=("EXPTIME", "EXPOSURE"),
        status=REJECTED,
        reason="missing_exposure",
        light=QUARANTINED,
    )
    light(
        "exptime_nan_text",
        "exptime_nan.fits",
        edit={"EXPTIME": "NaN", "EXPOSURE": "NaN"},
        status=REJECTED,
        reason="invalid_exposure",
        light=QUARANTINED,
    )
    light(
        "exptime_negative",
        "exptime_neg.fits",
        edit={"EXPTIME": -60.0, "EXPOSURE": -60.0},
        status=REJECTED,
        reason="invalid_exposure",
    )
    light(
        "exptime_text",
        "exptime_text.fits",
        edit={"EXPTIME": "sixty", "EXPOSURE": "sixty"},
        status=REJECTED,
        reason="invalid_exposure",
    )
    light("exptime_unset", "exptime_unset.fits", status=REJECTED, reason="missing_exposure")
    for key in ("EXPTIME", "EXPOSURE"):  # the ASCOM "unset" value overflows a double
        _set_card(cases[-1].path, key, "-1.79769313486232E+308")
    light(
        "exposure_disagrees",
        "exp_disagree.fits",
        edit={"EXPOSURE": 120.0},
        status=REJECTED,
        reason="inconsistent_keys",
    )
    light(
        "imagetyp_missing",
        "no_type.fits",
        remove=("IMAGETYP",),
        status=ISOLATED,
        reason="frame_type_inferred",
    )
    light(
        "imagetyp_unknown",
        "odd_type.fits",
        edit={"IMAGETYP": "Weird"},
        folder="misc",
        status=ISOLATED,
        reason="unknown_frame_type",
    )
    light(
        "frame_disagrees",
        "frame_disagree.fits",
        edit={"FRAME": "Dark"},
        status=REJECTED,
        reason="inconsistent_keys",
    )
    light(
        "no_temperature",
        "no_temp.fits",
        remove=("CCD-TEMP",),
        status=ISOLATED,
        reason="missing_temperature",
    )
    light(
        "temperature_sentinel", "temp_sentinel.fits", status=ISOLATED, reason="missing_temperature"
    )
    _set_card(cases[-1].path, "CCD-TEMP", "-1.79769313486232E+308")
    light(
        "temperature_impossible",
        "temp_500.fits",
        edit={"CCD-TEMP": 500.0},
        status=ISOLATED,
        reason="invalid_value",
    )
    light(
        "no_instrument",
        "no_instrume.fits",
        remove=("INSTRUME",),
        status=ISOLATED,
        reason="missing_instrument",
    )
    light(
        "no_date",
        "no_date.fits",
        remove=("DATE-OBS", "DATE-LOC"),
        status=ISOLATED,
        reason="missing_date",
    )
    light(
        "date_garbage", "date_garbage.fits", edit={"DATE-OBS": "yesterday evening"}, status=ISOLATED
    )
    light(
        "date_1926",
        "date_1926.fits",
        edit={"DATE-OBS": "1926-11-22T20:00:00", "DATE-LOC": "1926-11-22T21:00:00"},
    )
    light(
        "mjd_disagrees",
        "mjd_disagree.fits",
        edit={"MJD-OBS": 50000.0},
        status=ISOLATED,
        reason="inconsistent_time",
    )
    light(
        "binning_zero", "bin0.fits", edit={"XBINNING": 0}, status=REJECTED, reason="invalid_binning"
    )
    light(
        "binning_disagrees",
        "bin_disagree.fits",
        edit={"CCDXBIN": 2},
        status=REJECTED,
        reason="inconsistent_keys",
    )
    light(
        "offset_disagrees",
        "offset_disagree.fits",
        edit={"BLKLEVEL": 10},
        status=REJECTED,
        reason="inconsistent_keys",
    )
    light(
        "already_calibrated",
        "calstat.fits",
        edit={"CALSTAT": "BD"},
        status=ISOLATED,
        reason="already_calibrated",
        light=QUARANTINED,
    )
    light("stacked", "stack.fits", edit={"STACKCNT": 12}, status=ISOLATED, reason="stacked")
    light(
        "huge_header",
        "huge_header.fits",
        edit={f"HIERARCH HOSTILE PAD{i:05d}": "x" * 40 for i in range(6000)},
        status=ELIGIBLE,
    )
    light("non_ascii_header_text", "latin1_header.fits", edit={"OBSERVER": "Zoe"}, status=ELIGIBLE)
    _poke(cases[-1].path, b"Zoe", b"Z\xf6e")  # a byte astropy would refuse to write
    light("gain_nan_text", "gain_nan.fits", edit={"GAIN": "NaN"})
    light("pedestal", "pedestal.fits", edit={"PEDESTAL": 100}, status=ELIGIBLE)

    # ---------------------------------------------------------------- odd data
    f32 = data.astype(np.float32)
    light(
        "all_nan",
        "all_nan.fits",
        pixels=np.full_like(f32, np.nan),
        status=ELIGIBLE,
        light=QUARANTINED,
        light_reason="no_finite_pixels",
    )
    light(
        "all_inf",
        "all_inf.fits",
        pixels=np.full_like(f32, np.inf),
        status=ELIGIBLE,
        light=QUARANTINED,
        light_reason="no_finite_pixels",
    )
    some_nan = f32.copy()
    some_nan[:5] = np.nan
    light(
        "some_nan",
        "some_nan.fits",
        pixels=some_nan,
        status=ELIGIBLE,
        light=DELIVERED | QUARANTINED,
        light_reason="nonfinite_pixels",
    )
    light(
        "all_zero",
        "all_zero.fits",
        pixels=np.zeros_like(data),
        status=ELIGIBLE,
        light=DELIVERED | QUARANTINED,
    )
    light(
        "saturated",
        "saturated.fits",
        pixels=np.full_like(data, 65535),
        status=ELIGIBLE,
        light=DELIVERED | QUARANTINED,
    )
    light("float32_light", "float32.fits", pixels=f32, status=ELIGIBLE, light=DELIVERED)
    light(
        "float64_light",
        "float64.fits",
        pixels=data.astype(np.float64),
        status=ELIGIBLE,
        light=DELIVERED,
    )
    light(
        "int16_signed",
        "int16.fits",
        pixels=(data.astype(np.int32) - 32768).astype(np.int16),
        status=ELIGIBLE,
        light=DELIVERED | QUARANTINED,
    )
    light(
        "int32_light", "int32.fits", pixels=data.astype(np.int32), status=ELIGIBLE, light=DELIVERED
    )
    light(
        "uint8_light",
        "uint8.fits",
        pixels=(data // 256).astype(np.uint8),
        status=ELIGIBLE,
        light=DELIVERED | QUARANTINED,
    )
    light(
        "bscale_2",
        "bscale2.fits",
        pixels=(data // 2).astype(np.int16),
        edit={},
        status=ELIGIBLE,
        light=DELIVERED | QUARANTINED,
    )
    _set_scaling(cases[-1].path, bscale=2, bzero=0)
    light(
        "wrong_shape",
        "wrong_shape.fits",
        pixels=data[:40, :50].copy(),
        status=ELIGIBLE,
        light=QUARANTINED,
    )

    # ---------------------------------------------------------------- odd names
    light("non_ascii_name", "M31 Andromède_0002.fits", status=ELIGIBLE, light=DELIVERED)
    light("invalid_utf8_name", b"bad\xff\xfe name_0003.fits", status=ELIGIBLE, light=DELIVERED)
    light("csv_hostile_name", 'a,b;"c" d.fits', status=ELIGIBLE, light=DELIVERED)
    light("newline_name", "line\nbreak.fits", status=ELIGIBLE, light=DELIVERED)
    light("long_name", "L" * 240 + ".fits", status=ELIGIBLE, light=DELIVERED)
    light("upper_extension", "SHOUTING.FITS", status=ELIGIBLE, light=DELIVERED)
    light("fts_extension", "old_style.fts", status=ELIGIBLE, light=DELIVERED)
    light("emoji_name", "M31 \U0001f30c.fits", status=ELIGIBLE, light=DELIVERED)
    light("wrong_extension", "light.txt", row=False, notes="not a FITS name: not scanned")
    light("hidden_file", ".hidden.fits", row=False, notes="hidden files are skipped")

    # ---------------------------------------------------------------- a dark set in two dtypes
    dark_hdr, dark = _template(sorted((root / DARKS).glob("*.fits"))[0])
    dark_hdr = fresh(dark_hdr)
    dark_hdr["DATE-OBS"] = "2026-11-23T16:41:30.000000"
    hdu = fits.PrimaryHDU(dark.astype(np.float32), dark_hdr)
    for key in ("BZERO", "BSCALE"):
        hdu.header.remove(key, ignore_missing=True)
    hdu.writeto(root / DARKS / "float32_dark.fits")
    cases.append(Case("float32_dark_in_uint16_set", root / DARKS / "float32_dark.fits", ELIGIBLE))

    # ---------------------------------------------------------------- a set that cannot combine
    # a second camera whose darks disagree on e-/ADU: its master fails, its light says why
    other = root / "camera_b"
    for i, src in enumerate(sorted((root / DARKS).glob("*_60.00s_000[123].fits"))):
        hdr, pix = _template(src)
        hdr["INSTRUME"] = "Hostile Cam B"
        if i == 2:
            hdr["EGAIN"] = 2.5
        other.mkdir(exist_ok=True)
        fits.PrimaryHDU(pix, hdr).writeto(other / f"dark_{i}.fits")
    hdr = fresh(header)
    hdr["INSTRUME"] = "Hostile Cam B"
    fits.PrimaryHDU(data, hdr).writeto(other / "light_b.fits")
    cases.append(
        Case(
            "light_of_inconsistent_set",
            other / "light_b.fits",
            ELIGIBLE,
            light=QUARANTINED,
            light_reason="master_failed",
        )
    )
    cases.append(Case("dark_with_other_egain", other / "dark_2.fits", ELIGIBLE))
    cases.append(
        Case("simulator_truncated_light", truncated, REJECTED, "truncated", light=QUARANTINED)
    )
    return night


# ----------------------------------------------------------------------------- writers
def _image_bytes(arr: np.ndarray | None, header: fits.Header) -> bytes:
    """A primary HDU of ``arr`` (``None``: header only) with the template's other keywords."""
    import io

    hdr = header.copy()
    for key in ("NAXIS1", "NAXIS2", "BZERO", "BSCALE"):
        hdr.remove(key, ignore_missing=True)
    buf = io.BytesIO()
    fits.PrimaryHDU(arr, hdr).writeto(buf)
    return buf.getvalue()


def _bintable_only() -> bytes:
    import io

    buf = io.BytesIO()
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.ones(4))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buf)
    return buf.getvalue()


def _tile_compressed(header: fits.Header, data: np.ndarray, path: Path) -> None:
    hdr = header.copy()
    for key in ("BZERO", "BSCALE"):
        hdr.remove(key, ignore_missing=True)
    comp = fits.CompImageHDU(data, hdr, compression_type="RICE_1")
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)


def _with_date(content: bytes, k: int) -> bytes:
    """The same light with another DATE-OBS second (so it is not a byte duplicate)."""
    start = content.index(b"DATE-OBS= '") + 11
    stamp = f"2026-11-23T16:5{k % 10}:00.000000".encode()
    return content[:start] + stamp + content[start + len(stamp) :]


def _set_card(path: Path, key: str, value_text: str) -> None:
    """Replace the card of ``key`` with a raw value text (values astropy will not write)."""
    content = bytearray(path.read_bytes())
    start = content.index(f"{key:<8}=".encode())
    content[start : start + 80] = f"{key:<8}= {value_text:>20}".ljust(80).encode()
    path.write_bytes(bytes(content))


def _poke(path: Path, old: bytes, new: bytes) -> None:
    content = path.read_bytes()
    path.write_bytes(content.replace(old, new, 1))


def _set_scaling(path: Path, *, bscale: int, bzero: int) -> None:
    """Rewrite BSCALE/BZERO cards in place (astropy would rescale the data instead)."""
    content = bytearray(path.read_bytes())
    end = content.index(b"END" + b" " * 77)
    cards = [bytes(content[i : i + 80]) for i in range(0, end, 80)]
    cards = [c for c in cards if not c.startswith((b"BSCALE  =", b"BZERO   ="))]
    cards += [
        f"BSCALE  = {bscale:>20d}".ljust(80).encode(),
        f"BZERO   = {bzero:>20d}".ljust(80).encode(),
    ]
    header = b"".join(cards) + b"END".ljust(80)
    header += b" " * (-len(header) % 2880)
    data_start = (end // 2880 + 1) * 2880
    path.write_bytes(header + bytes(content[data_start:]))


def _unix_socket(folder: Path, name: str) -> None:
    """A UNIX socket file (bound relative to the folder: socket paths are short)."""
    here = os.getcwd()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.chdir(folder)
        sock.bind(name)
    finally:
        os.chdir(here)
        sock.close()

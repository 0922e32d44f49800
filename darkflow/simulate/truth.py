"""Ground truth of a simulated night: writing it beside the frames and loading it back.

Layout (all under ``OUT/_truth/``, which holds the empty marker ``.darkflow-ignore`` so the
scanner skips it)::

    manifest.json                    generator, preset, seed, darkflow version, full spec
    frames.csv                       one row per written file (see FRAME_COLUMNS)
    <camera>/sensor.json             every SensorModel parameter (+ derived values)
    <camera>/dark_current_e_per_s.fits   float32, at the reference temperature
    <camera>/amp_glow_e_per_s.fits   float32
    <camera>/bias_adu.fits           float32 noiseless bias frame (fixed pattern included)
    <camera>/hot_pixels.csv          y, x, dark_current_e_per_s (at the reference temperature)
    <camera>/flicker_pixels.csv      y, x, amp_e, p_on
    <camera>/defect_columns.csv      x, y_start, factor
    <camera>/sky/<session>__<stem>.fits  float32 noiseless sky + stars (e-) of each light

``<camera>`` is the camera key of the night spec (a slug such as ``zwo-asi2600mm-pro``).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkflow._version import __version__
from darkflow.exceptions import ConfigError
from darkflow.io.atomic import atomic_write
from darkflow.io.fits import read_image, write_image
from darkflow.simulate.physics import SensorTruth
from darkflow.simulate.sensors import SensorModel
from darkflow.simulate.spec import Breakage, NightSpec

__all__ = ["FRAME_COLUMNS", "Truth", "TruthWriter", "load_truth", "read_manifest"]

log = logging.getLogger(__name__)

TRUTH_DIR = "_truth"
IGNORE_MARKER = ".darkflow-ignore"
GENERATOR = "darkflow.simulate"
FORMAT_VERSION = 1

FRAME_COLUMNS = (
    "path",  # relative to OUT, '/'-separated
    "camera",  # camera key (truth sub-directory)
    "program",
    "session",
    "kind",  # light | dark | bias | flat
    "exptime_s",
    "true_temp_c",  # mean true sensor temperature over the exposure
    "measured_temp_c",  # value written in the header (empty when none is written)
    "set_temp_c",  # cooler set-point (empty for uncooled cameras)
    "date_obs_utc",  # true exposure start, ISO 8601, UTC
    "n_cosmic_pixels",
    "broken",  # empty or a Breakage code
    "already_calibrated",
    "block",
    "index",
    "target",
    "filter",
    "xbin",
    "gain_setting",
    "offset_setting",
    "ambient_c",
    "faults",  # ';'-separated fault codes
    "sky_path",  # relative to OUT; empty when not written
)

_NUMERIC = (
    "exptime_s",
    "true_temp_c",
    "measured_temp_c",
    "set_temp_c",
    "gain_setting",
    "offset_setting",
    "ambient_c",
)
_INTEGER = ("n_cosmic_pixels", "block", "index", "xbin")
_NO_READING = (Breakage.MISSING_TEMPERATURE, Breakage.TEMPERATURE_SENTINEL)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


class TruthWriter:
    """Write the truth of a night while its frames are being written (used by simulate_night)."""

    def __init__(
        self,
        out: Path,
        spec: NightSpec,
        preset: str,
        seed: int,
        session_folders: list[str],
        *,
        fsync: bool = False,
    ):
        self.out = Path(out)
        self.root = self.out / TRUTH_DIR
        self.spec = spec
        self.preset = preset
        self.seed = seed
        self.session_folders = session_folders
        self.fsync = fsync
        self.rows: list[dict[str, Any]] = []

    def _write(self, rel: str, blob: bytes) -> None:
        with atomic_write(self.root / rel, "wb", fsync=self.fsync) as fh:
            fh.write(blob)

    def _manifest(self, complete: bool) -> dict[str, Any]:
        return {
            "generator": GENERATOR,
            "format_version": FORMAT_VERSION,
            "darkflow_version": __version__,
            "preset": self.preset,
            "seed": self.seed,
            "night_date": self.spec.date,
            "complete": complete,
            "n_files": len(self.rows),
            "session_folders": self.session_folders,
            "cameras": sorted({s.camera for s in self.spec.sessions}),
            "spec": self.spec.to_dict(),
        }

    def start(self) -> None:
        """Create ``_truth`` with its ignore marker and an incomplete manifest."""
        self._write(IGNORE_MARKER, b"")
        self._write("manifest.json", _json_bytes(self._manifest(complete=False)))

    def add_frame(self, rendered: Any) -> None:
        """Record one written frame (and its noiseless sky for lights)."""
        p = rendered.plan
        sky_rel = ""
        if rendered.sky_e is not None and self.spec.write_sky_truth:
            stem = Path(p.relpath).stem
            sky_rel = f"{TRUTH_DIR}/{p.camera}/sky/{p.session}__{stem}.fits"
            write_image(self.out / sky_rel, rendered.sky_e.astype(np.float32))
        measured = None if p.breakage in _NO_READING else p.measured_temp_c
        self.rows.append(
            {
                "path": p.relpath,
                "camera": p.camera,
                "program": str(p.program),
                "session": p.session,
                "kind": p.kind,
                "exptime_s": p.exptime_s,
                "true_temp_c": round(p.true_temp_c, 4),
                "measured_temp_c": measured,
                "set_temp_c": p.set_temp_c,
                "date_obs_utc": p.start_utc.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                "n_cosmic_pixels": rendered.n_cosmic_pixels,
                "broken": str(p.breakage) if p.breakage else "",
                "already_calibrated": bool(p.calibrated),
                "block": p.block,
                "index": p.index,
                "target": p.target or "",
                "filter": p.filter or "",
                "xbin": p.xbin,
                "gain_setting": p.gain_setting,
                "offset_setting": p.offset_setting,
                "ambient_c": round(p.ambient_c, 3),
                "faults": ";".join(p.faults),
                "sky_path": sky_rel,
            }
        )

    def _write_camera(self, key: str, truth: SensorTruth) -> None:
        base = self.root / key
        self._write(f"{key}/sensor.json", _json_bytes(truth.model.to_dict()))
        write_image(base / "dark_current_e_per_s.fits", truth.dark_current_e_per_s)
        write_image(base / "amp_glow_e_per_s.fits", truth.amp_glow_e_per_s)
        write_image(base / "bias_adu.fits", truth.bias_adu)
        hy, hx = truth.hot_pixels.T if len(truth.hot_pixels) else (np.zeros(0, int),) * 2
        hot = pd.DataFrame(
            {"y": hy, "x": hx, "dark_current_e_per_s": truth.dark_current_e_per_s[hy, hx]}
        )
        fy, fx = truth.flicker_yx.T if len(truth.flicker_yx) else (np.zeros(0, int),) * 2
        flicker = pd.DataFrame(
            {"y": fy, "x": fx, "amp_e": truth.flicker_amp_e, "p_on": truth.flicker_p_on}
        )
        dx, dy = truth.defect_columns.T if len(truth.defect_columns) else (np.zeros(0, int),) * 2
        defects = pd.DataFrame({"x": dx, "y_start": dy, "factor": truth.model.column_defect_factor})
        for name, df in (
            ("hot_pixels.csv", hot),
            ("flicker_pixels.csv", flicker),
            ("defect_columns.csv", defects),
        ):
            self._write(f"{key}/{name}", _csv_bytes(df))

    def finish(self, cameras: dict[str, SensorTruth]) -> None:
        """Write the per-camera truth, ``frames.csv`` and the completed manifest."""
        for key in sorted(cameras):
            self._write_camera(key, cameras[key])
        frames = pd.DataFrame(self.rows, columns=list(FRAME_COLUMNS))
        self._write("frames.csv", _csv_bytes(frames))
        self._write("manifest.json", _json_bytes(self._manifest(complete=True)))


def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------------- loading
def _truth_root(root: str | Path) -> Path:
    root = Path(root)
    if root.name == TRUTH_DIR:
        return root
    return root / TRUTH_DIR


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The manifest of the simulation in ``root`` (OUT or OUT/_truth), or ``None``."""
    path = _truth_root(root) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != GENERATOR:
        return None
    return data


@dataclass(eq=False)
class Truth:
    """Loaded ground truth of a simulated night (see :func:`load_truth`).

    Attributes
    ----------
    out_dir
        The simulation output directory (paths in ``frames`` are relative to it).
    manifest
        Contents of ``manifest.json`` (preset, seed, darkflow version, full spec).
    frames
        ``frames.csv`` as a DataFrame: numeric columns are floats (NaN where empty),
        ``date_obs_utc`` is timezone-aware UTC, ``already_calibrated`` is boolean.
    """

    out_dir: Path
    manifest: dict[str, Any]
    frames: pd.DataFrame
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @property
    def truth_dir(self) -> Path:
        """The directory of the ground-truth files."""
        return self.out_dir / TRUTH_DIR

    @property
    def cameras(self) -> list[str]:
        """The cameras with a recorded sensor model, sorted."""
        return sorted(p.name for p in self.truth_dir.iterdir() if (p / "sensor.json").is_file())

    def _camera_key(self, camera: str) -> str:
        from darkflow.model import slug

        for key in (camera, slug(camera)):
            if (self.truth_dir / key / "sensor.json").is_file():
                return key
        for key in self.cameras:  # a sensor name such as "ZWO ASI2600MM Pro"
            data = json.loads((self.truth_dir / key / "sensor.json").read_text("utf-8"))
            if slug(data.get("name", "")) == slug(camera):
                return key
        raise KeyError(f"no camera {camera!r} in {self.truth_dir}; known: {self.cameras}")

    def sensor(self, camera: str) -> SensorModel:
        """The :class:`SensorModel` of a camera (key, slug or sensor name)."""
        key = self._camera_key(camera)
        if ("sensor", key) not in self._cache:
            data = json.loads((self.truth_dir / key / "sensor.json").read_text("utf-8"))
            self._cache[("sensor", key)] = SensorModel.from_dict(data)
        return self._cache[("sensor", key)]

    def _map(self, camera: str, name: str) -> np.ndarray:
        key = self._camera_key(camera)
        if (name, key) not in self._cache:
            data, _ = read_image(self.truth_dir / key / f"{name}.fits")
            self._cache[(name, key)] = data.astype(np.float32)
        return self._cache[(name, key)]

    def dark_current(self, camera: str, temp_c: float | None = None) -> np.ndarray:
        """Dark current (e-/s) at ``temp_c`` (the reference temperature by default)."""
        ref = self._map(camera, "dark_current_e_per_s").astype(np.float64)
        if temp_c is None:
            return ref
        return ref * self.sensor(camera).dark_scale(temp_c)

    def amp_glow(self, camera: str) -> np.ndarray:
        """Amp-glow rate map (e-/s)."""
        return self._map(camera, "amp_glow_e_per_s").astype(np.float64)

    def bias_adu(self, camera: str) -> np.ndarray:
        """Noiseless bias frame (ADU)."""
        return self._map(camera, "bias_adu").astype(np.float64)

    def true_dark_adu(self, camera: str, exptime_s: float, temp_c: float) -> np.ndarray:
        """Expected noiseless dark frame in ADU, before clipping.

        ``bias + (dark_current(T) * t + amp_glow * t) / egain`` with ``T`` the true sensor
        temperature (``frames.true_temp_c``). Cosmic rays, flickering pixels, banding and noise
        average out of it; the non-linearity near full well is not applied.
        """
        model = self.sensor(camera)
        electrons = (self.dark_current(camera, temp_c) + self.amp_glow(camera)) * float(exptime_s)
        return self.bias_adu(camera) + electrons / model.egain_e_per_adu

    def hot_pixels(self, camera: str) -> pd.DataFrame:
        """Hot-pixel population: ``y``, ``x``, ``dark_current_e_per_s`` (reference temperature)."""
        return pd.read_csv(self.truth_dir / self._camera_key(camera) / "hot_pixels.csv")

    def flicker_pixels(self, camera: str) -> pd.DataFrame:
        """Random-telegraph pixels: ``y``, ``x``, ``amp_e``, ``p_on``."""
        return pd.read_csv(self.truth_dir / self._camera_key(camera) / "flicker_pixels.csv")

    def defect_columns(self, camera: str) -> pd.DataFrame:
        """Hot columns: ``x``, ``y_start``, ``factor``."""
        return pd.read_csv(self.truth_dir / self._camera_key(camera) / "defect_columns.csv")

    def frame(self, path: str | Path) -> pd.Series:
        """The ``frames.csv`` row of a file (absolute, or relative to the output directory)."""
        rel = self._rel(path)
        rows = self.frames[self.frames["path"] == rel]
        if rows.empty:
            raise KeyError(f"{path} is not a simulated frame of {self.out_dir}")
        return rows.iloc[0]

    def sky_e(self, path: str | Path) -> np.ndarray:
        """Noiseless sky + stars (e-) of a light frame."""
        row = self.frame(path)
        if not row["sky_path"]:
            raise KeyError(f"no sky truth for {path} (not a light, or write_sky_truth=False)")
        data, _ = read_image(self.out_dir / row["sky_path"])
        return data.astype(np.float64)

    def _rel(self, path: str | Path) -> str:
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.out_dir.resolve())
            except ValueError:
                return p.as_posix()
        return p.as_posix()

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"<Truth {m.get('preset')!r} seed={m.get('seed')} night={m.get('night_date')} "
            f"frames={len(self.frames)} cameras={m.get('cameras')}>"
        )


def load_truth(root: str | Path) -> Truth:
    """Load the ground truth written by :func:`darkflow.simulate.simulate_night`.

    Parameters
    ----------
    root
        The simulation output directory (or its ``_truth`` sub-directory).

    Raises
    ------
    ConfigError
        ``root`` holds no complete simulation truth.
    """
    troot = _truth_root(root)
    manifest = read_manifest(troot)
    if manifest is None:
        raise ConfigError(f"{root} holds no darkflow simulation truth ({troot}/manifest.json)")
    if not manifest.get("complete"):
        raise ConfigError(f"the simulation in {root} is incomplete (interrupted run?)")
    try:
        frames = pd.read_csv(troot / "frames.csv", keep_default_na=False, dtype=str)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {troot / 'frames.csv'}: {err}") from err
    for col in _NUMERIC:
        frames[col] = pd.to_numeric(frames[col].replace("", np.nan), errors="coerce")
    for col in _INTEGER:
        frames[col] = frames[col].astype(np.int64)
    frames["already_calibrated"] = frames["already_calibrated"].str.lower() == "true"
    frames["date_obs_utc"] = pd.to_datetime(frames["date_obs_utc"], utc=True)
    return Truth(troot.parent, manifest, frames)

"""Plan, render and write a simulated night.

:func:`plan_night` turns a :class:`~darkflow.simulate.spec.NightSpec` into one
:class:`~darkflow.simulate.spec.FramePlan` per file (times, temperatures, paths, breakages,
faults) without drawing a pixel; :func:`render_frame` draws the pixels and the header of one
planned frame; :func:`simulate_night` does both for a preset and writes frames and truth.

Randomness is keyed, never sequential: every random stream is seeded from
``SeedSequence([seed, purpose, crc32(name), ...])`` (camera maps per camera, cooler per
session, pixels and sky per frame), so a frame's bytes do not depend on which frames were
generated before it or in what order.
"""

from __future__ import annotations

import io
import logging
import shutil
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from darkflow.exceptions import ConfigError, OutputError
from darkflow.io.atomic import atomic_write
from darkflow.simulate.physics import SensorTruth, expose_detailed, make_sensor_truth
from darkflow.simulate.sensors import SensorModel
from darkflow.simulate.sky import ColourFilter, TargetField, make_target_field, render_sky
from darkflow.simulate.spec import Breakage, FramePlan, NightSpec, SessionSpec
from darkflow.simulate.styles import StyleContext, get_style
from darkflow.simulate.thermal import ThermalTrace, simulate_thermal
from darkflow.simulate.truth import TRUTH_DIR, TruthWriter, read_manifest

__all__ = [
    "NightManifest",
    "NightPlan",
    "RenderedFrame",
    "SessionManifest",
    "iter_rendered",
    "keyed_rng",
    "plan_night",
    "render_frame",
    "sensor_truth",
    "simulate_night",
    "write_frame",
]

log = logging.getLogger(__name__)

# purposes of the keyed random streams
_CAMERA, _THERMAL, _TIMING, _FIELD, _FRAME, _SKY, _FAULT = range(1, 8)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def keyed_rng(seed: int, purpose: int, *parts: int | str) -> np.random.Generator:
    """A generator seeded by ``(seed, purpose, parts...)``; strings enter through CRC-32."""
    key = [int(seed) & 0xFFFFFFFF, purpose] + [
        _crc(p) if isinstance(p, str) else int(p) & 0xFFFFFFFF for p in parts
    ]
    return np.random.default_rng(np.random.SeedSequence(key))


def _round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


_DEFAULT_INTERVAL_S = {  # dead time after a frame: download (+ dither for lights)
    "cmos": {"light": 8.0, "dark": 2.0, "bias": 1.0, "flat": 2.0},
    "ccd": {"light": 16.0, "dark": 10.0, "bias": 9.0, "flat": 10.0},
    "dslr": {"light": 6.0, "dark": 3.0, "bias": 2.0, "flat": 3.0},
}


@dataclass(frozen=True, eq=False)
class NightPlan:
    """All frames of a night, planned (no pixels yet), with the cooler traces."""

    spec: NightSpec
    seed: int
    frames: tuple[FramePlan, ...]
    traces: dict[str, ThermalTrace]
    block_starts: dict[tuple[str, int], datetime]

    def session(self, name: str) -> SessionSpec:
        """The session spec of name ``name`` (:class:`KeyError` when there is none)."""
        for s in self.spec.sessions:
            if s.name == name:
                return s
        raise KeyError(name)


def _plan_session(
    night: NightSpec, session: SessionSpec, seed: int
) -> tuple[list[FramePlan], ThermalTrace, dict[tuple[str, int], datetime]]:
    sensor = night.cameras[session.camera]
    site = session.site or night.site
    style = get_style(session.program)
    local0 = datetime.strptime(night.date, "%Y-%m-%d") + timedelta(hours=session.start_h)
    utc0 = local0 - timedelta(hours=site.utc_offset_h)
    rng_t = keyed_rng(seed, _TIMING, session.name)
    cooled = sensor.cooled and session.set_temp_c is not None
    current = session.set_temp_c if sensor.cooled else None
    setpoints: list[tuple[float, float | None]] = [(0.0, current)]
    t = session.cooldown_s if cooled else 60.0
    timing: list[tuple[int, int, float, float | None]] = []
    block_t0: dict[int, float] = {}
    for bi, block in enumerate(session.blocks):
        t += block.gap_before_s
        bset = block.set_temp_c if block.set_temp_c is not None else session.set_temp_c
        if not sensor.cooled:
            bset = None
        if sensor.cooled and bset != current:
            setpoints.append((t, bset))
            current = bset
            t += block.settle_s if block.settle_s is not None else 300.0
        elif block.settle_s:
            t += block.settle_s
        interval = (
            block.interval_s
            if block.interval_s is not None
            else _DEFAULT_INTERVAL_S[str(sensor.kind)][block.kind]
        )
        for i in range(block.count):
            start = t + float(rng_t.uniform(0.0, 0.9))
            block_t0.setdefault(bi, start)
            timing.append((bi, i, start, bset))
            t = start + block.exptime_s + interval * float(rng_t.uniform(0.9, 1.1))
    trace = simulate_thermal(
        sensor,
        session.ambient,
        setpoints,
        t + 60.0,
        keyed_rng(seed, _THERMAL, session.name),
        drift_c_per_h=session.cooler_drift_c_per_h,
    )
    broken = {(b.block, b.index): b.breakage for b in session.broken}
    calibrated = set(session.calibrated_lights)
    counters: dict[str, int] = {}
    block_starts = {(session.name, bi): utc0 + timedelta(seconds=t0) for bi, t0 in block_t0.items()}
    plans = []
    for bi, i, start, bset in timing:
        block = session.blocks[bi]
        counters[block.kind] = counters.get(block.kind, 0) + 1
        measured = None
        if sensor.cooled:
            measured = _round_to(trace.sensor_at(start), sensor.temp_resolution_c)
        breakage = broken.get((bi, i))
        plan = FramePlan(
            session=session.name,
            camera=session.camera,
            program=session.program,
            block=bi,
            index=i,
            number=counters[block.kind],
            kind=block.kind,
            exptime_s=float(block.exptime_s),
            start_utc=utc0 + timedelta(seconds=start),
            t_session_s=start,
            true_temp_c=trace.sensor_mean(start, start + block.exptime_s),
            measured_temp_c=measured,
            set_temp_c=bset,
            ambient_c=trace.ambient_at(start),
            target=(block.target or session.target) if block.kind == "light" else None,
            filter=block.filter
            if block.filter is not None or block.kind != "light"
            else session.filter,
            xbin=2 if breakage is Breakage.BINNED_FRAME else block.xbin,
            progress=i / max(block.count - 1, 1),
            gain_setting=sensor.gain_setting,
            offset_setting=sensor.offset_setting,
            breakage=breakage,
            calibrated=(bi, i) in calibrated,
            seed_key=(seed, _crc(session.name), bi, i),
        )
        codes = []
        for fault in session.faults:
            if fault.applies(plan):
                plan = fault.plan(plan)
                codes.append(fault.code)
        plan = plan.replace(faults=tuple(codes))
        ctx = StyleContext(plan, session, sensor, site, block_starts[(session.name, bi)])
        rel = f"{night.date}/{session.name}/{style.relpath(ctx)}"
        plans.append(plan.replace(relpath=rel))
    return plans, trace, block_starts


def plan_night(spec: NightSpec, seed: int = 0) -> NightPlan:
    """Plan every frame of ``spec`` (times, temperatures, paths) without drawing pixels."""
    frames: list[FramePlan] = []
    traces: dict[str, ThermalTrace] = {}
    starts: dict[tuple[str, int], datetime] = {}
    for session in spec.sessions:
        plans, trace, bstarts = _plan_session(spec, session, seed)
        frames += plans
        traces[session.name] = trace
        starts.update(bstarts)
    paths = [f.relpath for f in frames]
    if len(set(paths)) != len(paths):
        dup = sorted({p for p in paths if paths.count(p) > 1})
        raise ConfigError(f"the night spec writes several frames to the same path: {dup[:5]}")
    return NightPlan(spec, int(seed), tuple(frames), traces, starts)


@dataclass(eq=False)
class _Caches:
    spec: NightSpec
    seed: int
    cameras: dict[str, SensorTruth] = field(default_factory=dict)
    fields: dict[tuple[Any, ...], TargetField] = field(default_factory=dict)
    filters: dict[str, ColourFilter | None] = field(default_factory=dict)

    def camera(self, key: str) -> SensorTruth:
        if key not in self.cameras:
            model = self.spec.cameras[key]
            self.cameras[key] = make_sensor_truth(model, keyed_rng(self.seed, _CAMERA, key))
        return self.cameras[key]

    def colour_filter(self, key: str) -> ColourFilter | None:
        """The filter array a colour camera images the sky through (``None``: colour-blind)."""
        if key not in self.filters:
            model = self.spec.cameras[key]
            cfa = None
            if model.bayer_pattern and model.cfa_response is not None:
                cfa = ColourFilter(model.cfa_channels(), model.cfa_response)
            self.filters[key] = cfa
        return self.filters[key]

    def target_field(self, session: SessionSpec, target: str) -> TargetField:
        model = self.spec.cameras[session.camera]
        key = (session.camera, target, session.sky)
        if key not in self.fields:
            rng = keyed_rng(self.seed, _FIELD, session.camera, target)
            self.fields[key] = make_target_field(model.shape, session.sky, rng)
        return self.fields[key]


def sensor_truth(spec: NightSpec, seed: int, camera: str) -> SensorTruth:
    """The fixed maps of a camera of ``spec`` exactly as :func:`simulate_night` draws them."""
    if camera not in spec.cameras:
        raise ConfigError(f"no camera {camera!r} in the spec; known: {sorted(spec.cameras)}")
    return _Caches(spec, int(seed)).camera(camera)


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    """Pixels and header of one planned frame, with the noiseless sky it saw (lights)."""

    plan: FramePlan
    data: np.ndarray
    header: fits.Header
    n_cosmic_pixels: int
    sky_e: np.ndarray | None


def _bin(data: np.ndarray, factor: int, model: SensorModel) -> np.ndarray:
    """Software binning (average of ``factor x factor`` pixels), as capture programs do."""
    ny, nx = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    blocks = data[:ny, :nx].astype(np.float64).reshape(ny // factor, factor, nx // factor, factor)
    return np.clip(np.rint(blocks.mean(axis=(1, 3))), 0, model.saturation_adu).astype(np.uint16)


def render_frame(plan: NightPlan, frame: FramePlan, caches: _Caches | None = None) -> RenderedFrame:
    """Draw the pixels and header of one planned frame (deterministic for the frame)."""
    caches = caches or _Caches(plan.spec, plan.seed)
    session = plan.session(frame.session)
    site = session.site or plan.spec.site
    truth = caches.camera(frame.camera)
    model = truth.model
    seed = plan.seed
    sky = None
    if frame.kind == "light":
        target = frame.target or session.target
        sky = render_sky(
            caches.target_field(session, target),
            frame.exptime_s,
            keyed_rng(seed, _SKY, frame.session, frame.block, frame.index),
            progress=frame.progress,
            cfa=caches.colour_filter(frame.camera),
        )
    signal = sky
    for fault in session.faults:
        if fault.code in frame.faults:
            extra = fault.electrons(
                frame, model.shape, keyed_rng(seed, _FAULT, frame.session, frame.block, frame.index)
            )
            if extra is not None:
                signal = extra if signal is None else signal + extra
    rng = keyed_rng(seed, _FRAME, frame.session, frame.block, frame.index)
    kind = frame.kind
    exposure = expose_detailed(truth, kind, frame.exptime_s, frame.true_temp_c, rng, signal)
    data: np.ndarray = exposure.data
    if frame.calibrated:  # MaxIm-style calibration: minus bias and dark, +100 pedestal
        dark = truth.true_dark_adu(frame.exptime_s, frame.true_temp_c)
        data = np.clip(np.rint(data - dark + 100.0), 0, 65535).astype(np.uint16)
    if frame.xbin > 1:  # a binned block, or the binned_2x2_in_1x1_set breakage
        data = _bin(data, frame.xbin, model)
    if frame.breakage is Breakage.NAN_DATA:
        data = data.astype(np.float32)
        ny, nx = data.shape
        data[ny // 3 : ny // 3 + 3, :] = np.nan  # a few dropped rows
        data[:, nx // 2] = np.nan  # and a dead column
    ctx = StyleContext(frame, session, model, site, plan.block_starts[(frame.session, frame.block)])
    header = get_style(session.program).header(ctx)
    for fault in session.faults:
        if fault.code in frame.faults:
            header = fault.header(header, frame)
    return RenderedFrame(frame, data, header, exposure.n_cosmic_pixels, sky)


def _fits_bytes(data: np.ndarray, header: fits.Header) -> bytes:
    buf = io.BytesIO()
    hdu = fits.PrimaryHDU(data=data, header=header)
    fits.HDUList([hdu]).writeto(buf, output_verify="silentfix", checksum=False)
    return buf.getvalue()


def write_frame(path: Path, rendered: RenderedFrame, *, fsync: bool = False) -> None:
    """Write a rendered frame atomically; a ``truncated`` breakage cuts the data unit."""
    blob = _fits_bytes(rendered.data, rendered.header)
    if rendered.plan.breakage is Breakage.TRUNCATED:
        header_len = len(blob) - _padded(rendered.data.nbytes)
        blob = blob[: header_len + int(rendered.data.nbytes * 0.6) + 17]
    with atomic_write(path, "wb", fsync=fsync) as fh:
        fh.write(blob)


def _padded(nbytes: int) -> int:
    return ((nbytes + 2879) // 2880) * 2880


# ---------------------------------------------------------------------- manifest + writing
@dataclass(frozen=True)
class SessionManifest:
    """What one session wrote."""

    name: str
    camera: str
    program: str
    folder: str  # relative to the output directory
    n_files: int
    first_utc: datetime | None
    last_utc: datetime | None


@dataclass(frozen=True, eq=False)
class NightManifest:
    """What :func:`simulate_night` wrote.

    ``paths`` are absolute paths of the frames, in planning order; ``truth_dir`` holds the
    ground truth (load it with :func:`darkflow.simulate.load_truth`).
    """

    out_dir: Path
    preset: str
    seed: int
    night_date: str
    sessions: tuple[SessionManifest, ...]
    paths: tuple[Path, ...]
    truth_dir: Path
    spec: NightSpec

    @property
    def night_dir(self) -> Path:
        """The directory of the night's frames."""
        return self.out_dir / self.night_date

    @property
    def n_files(self) -> int:
        """The number of files written."""
        return len(self.paths)

    def summary(self) -> str:
        """A few lines for the console: the night, one line per session, the truth directory."""
        lines = [
            f"Simulated night {self.night_date} (preset {self.preset!r}, seed {self.seed}): "
            f"{self.n_files} files in {self.out_dir}"
        ]
        for s in self.sessions:
            lines.append(f"  {s.folder:<40} {s.program:<9} {s.camera:<20} {s.n_files:>4} files")
        lines.append(f"Ground truth: {self.truth_dir}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<NightManifest {self.preset!r} seed={self.seed} night={self.night_date} "
            f"sessions={len(self.sessions)} files={len(self.paths)} out={self.out_dir}>"
        )


def _prepare_out_dir(out: Path, spec: NightSpec, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return
    manifest = read_manifest(out)
    if manifest is None:
        raise ConfigError(
            f"refusing to write a simulation into {out}: the directory is not empty and does "
            "not hold a previous simulation (no _truth/manifest.json)"
        )
    if not overwrite:
        raise ConfigError(
            f"{out} already holds a simulation ({manifest.get('preset')!r}, seed "
            f"{manifest.get('seed')}); pass overwrite=True (--overwrite) to replace it"
        )
    for folder in manifest.get("session_folders", []):
        _remove_tree(out, out / folder)
    _remove_tree(out, out / TRUTH_DIR)
    for night in {manifest.get("night_date"), spec.date}:
        if night and (out / night).is_dir() and not any((out / night).iterdir()):
            (out / night).rmdir()


def _remove_tree(root: Path, path: Path) -> None:
    resolved = path.resolve()
    if root.resolve() not in resolved.parents:  # never leave the output directory
        raise ConfigError(f"refusing to delete {path}: outside {root}")
    if path.is_dir():
        try:
            shutil.rmtree(path)
        except OSError as err:
            raise OutputError(f"cannot remove previous simulation output {path}: {err}") from err


def _resolve_spec(preset: str | NightSpec, overrides: dict[str, Any]) -> tuple[str, NightSpec]:
    from darkflow.simulate.presets import get_preset

    if isinstance(preset, NightSpec):
        name, spec = preset.name, preset
    else:
        name, spec = str(preset), get_preset(str(preset))
    overrides = dict(overrides)
    shape = overrides.pop("shape", None)
    known = set(NightSpec.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(
            f"unknown override(s) {sorted(unknown)}; known: shape, {', '.join(sorted(known))}"
        )
    if overrides:
        spec = spec.replace(**overrides)
    if shape is not None:
        try:
            ny, nx = (int(v) for v in shape)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"shape must be (ny, nx), got {shape!r}") from err
        spec = spec.with_shape(ny, nx)
    return name, spec


def simulate_night(
    out_dir: str | Path,
    preset: str | NightSpec = "demo",
    seed: int = 0,
    *,
    overwrite: bool = False,
    fsync: bool = False,
    **overrides: Any,
) -> NightManifest:
    """Simulate a night of FITS frames with their ground truth.

    Parameters
    ----------
    out_dir
        Output directory. It must be missing, empty, or hold a previous simulation (which is
        replaced only with ``overwrite=True``). Nothing outside it is touched. Frames go to
        ``out_dir/<night YYYY-MM-DD>/<session>/...``, truth to ``out_dir/_truth/``.
    preset
        Name of a preset in :data:`darkflow.simulate.PRESETS` (``"tiny"``, ``"demo"``,
        ``"night"``) or a :class:`NightSpec`.
    seed
        Seed of every random stream; the same seed writes identical bytes.
    overwrite
        Replace a previous simulation in ``out_dir``.
    fsync
        fsync every file (atomic renames are always used; fsync only adds durability).
    **overrides
        Replace fields of the :class:`NightSpec` (``write_sky_truth=False``, ``date=...``,
        ``sessions=...``) or resize every camera with ``shape=(ny, nx)``.

    Returns
    -------
    NightManifest
        What was written.

    Raises
    ------
    ConfigError
        Unknown preset or override, invalid spec, or an ``out_dir`` that may not be written.
    OutputError
        A file cannot be written.
    """
    name, spec = _resolve_spec(preset, overrides)
    out = Path(out_dir)
    plan = plan_night(spec, seed)
    _prepare_out_dir(out, spec, overwrite)
    folders = [f"{spec.date}/{s.name}" for s in spec.sessions]
    writer = TruthWriter(out, spec, name, int(seed), folders, fsync=fsync)
    writer.start()
    caches = _Caches(spec, int(seed))
    paths = []
    for frame in plan.frames:
        rendered = render_frame(plan, frame, caches)
        path = out / frame.relpath
        write_frame(path, rendered, fsync=fsync)
        writer.add_frame(rendered)
        paths.append(path)
    writer.finish(caches.cameras)
    sessions = []
    for s in spec.sessions:
        own = [f for f in plan.frames if f.session == s.name]
        sessions.append(
            SessionManifest(
                name=s.name,
                camera=s.camera,
                program=str(s.program),
                folder=f"{spec.date}/{s.name}",
                n_files=len(own),
                first_utc=min((f.start_utc for f in own), default=None),
                last_utc=max((f.start_utc for f in own), default=None),
            )
        )
    log.info(
        "simulated night %s (%s, seed %d): %d files in %s", spec.date, name, seed, len(paths), out
    )
    return NightManifest(
        out_dir=out,
        preset=name,
        seed=int(seed),
        night_date=spec.date,
        sessions=tuple(sessions),
        paths=tuple(paths),
        truth_dir=out / TRUTH_DIR,
        spec=spec,
    )


def iter_rendered(
    plan: NightPlan, frames: Iterable[FramePlan] | None = None
) -> Iterable[RenderedFrame]:
    """Render planned frames one by one (all by default) without writing them."""
    caches = _Caches(plan.spec, plan.seed)
    for frame in plan.frames if frames is None else frames:
        yield render_frame(plan, frame, caches)

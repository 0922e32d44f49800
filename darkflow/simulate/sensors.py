"""Sensor models: the fixed properties of a simulated camera.

A :class:`SensorModel` is a frozen description of one camera (one physical sensor) as the
simulator uses it: geometry, gain, bias, read noise, dark current and its temperature law, amp
glow, fixed-pattern noise, cosmic-ray rate, flickering pixels, saturation, non-linearity and the
cooler. :data:`SENSOR_PRESETS` holds realistic presets for the three families darkflow meets:

* cooled CMOS (Sony IMX571/IMX294/IMX533-like ZWO cameras): set-point cooling, a gain *setting*
  with its e-/ADU, an offset setting giving the bias level, amp glow in one corner;
* cooled CCD (KAF-8300-like SBIG STF-8300M): higher dark current and read noise, no gain
  setting, full well ~25.5 ke- with a roll-off in the last ~15 %, a couple of defect columns;
* uncooled DSLR (Canon EOS 6D-like): ISO instead of gain, no temperature keyword, sensor
  temperature follows ambient plus self-heating, 14-bit data written unscaled.

Numbers are "realistic but visible": dark currents are a few times higher than the best
datasheets so that small, short simulated frames still show the effects the pipeline must
handle. Every number is a field, so a test or a scenario can change it with
``dataclasses.replace`` (or :meth:`SensorModel.replace`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from darkflow.exceptions import ConfigError
from darkflow.simulate._serial import OMIT_AT_DEFAULT, omitted

__all__ = ["SENSOR_PRESETS", "SensorKind", "SensorModel", "get_sensor"]


class SensorKind(StrEnum):
    """Family of a simulated sensor."""

    CMOS = "cmos"
    CCD = "ccd"
    DSLR = "dslr"


@dataclass(frozen=True)
class SensorModel:
    """Frozen description of one simulated camera.

    All electron quantities are per pixel. ``egain_e_per_adu`` is the e-/ADU of the *saved*
    values (what calibration needs); when ``adc_bits < 16`` and ``scale_to_16bit`` is true the
    camera multiplies ADC codes by ``2**(16 - adc_bits)`` before saving, as ZWO cameras do, so
    the ADC-level gain is :attr:`egain_adc_e_per_adu`.

    Dark current per pixel is ``D0(y, x) * 2**((T - ref_temp_c) / doubling_temp_c)`` e-/s,
    where ``D0`` is log-normal around ``dark_current_e_per_s`` with a hot-pixel tail of
    fraction ``hot_fraction`` whose median is ``hot_factor`` times higher. Amp glow is a radial
    e-/s map peaking at ``amp_glow_e_per_s`` in ``amp_glow_corner``; it grows linearly with
    exposure and does not depend on temperature.

    Colour sensors: ``bayer_pattern`` is what the header's ``BAYERPAT`` says and
    ``bayer_offset`` the ``(XBAYROFF, YBAYROFF)`` written with it; the pattern of the stored
    array starts at that offset (:attr:`stored_bayer_pattern`, read as darkflow's ingestion and
    Siril read it). With ``cfa_response`` set, the sky is imaged through the colour filter array:
    the ``(R, G, B)`` factors multiply the photo-electrons of each colour's pixels (the sky rates
    of :class:`~darkflow.simulate.SkySpec` are those of a green pixel, so G is usually 1), on top
    of the colour of each source. ``None`` keeps the colour-blind sky of truth format 1 (every
    pixel sees the same sky, as the ``demo`` night does). Darks and biases see no light, so
    neither field changes them.
    """

    name: str
    kind: SensorKind = SensorKind.CMOS
    ny: int = 200
    nx: int = 300
    pixel_size_um: float = 3.76
    serial: str = "0000000000000000"
    bayer_pattern: str | None = None  # "RGGB" for colour sensors, None for mono
    readout_mode: str | None = None
    # --- conversion
    adc_bits: int = 16
    scale_to_16bit: bool = True  # ADC codes multiplied by 2**(16-adc_bits) before saving
    gain_setting: float | None = 100.0  # camera gain setting; ISO for DSLRs; None for CCDs
    gain_reference: float | None = None  # gain setting at which egain/read noise are given
    egain_e_per_adu: float = 0.25  # e-/ADU of the saved values
    offset_setting: float | None = 50.0  # camera offset setting (None: not settable)
    bias_adu: float = 500.0  # mean bias level of the saved values (offset * k for ZWO)
    read_noise_e: float = 1.5
    full_well_e: float = 50_000.0
    nonlinearity_start: float = 1.0  # fraction of full well where the response rolls off
    # --- dark current
    dark_current_e_per_s: float = 0.02  # median of normal pixels at ref_temp_c
    dark_sigma_log: float = 0.25  # log-normal width of normal pixels
    ref_temp_c: float = 0.0
    doubling_temp_c: float = 6.0
    hot_fraction: float = 0.003
    hot_factor: float = 60.0  # median hot pixel / median normal pixel
    hot_sigma_log: float = 0.6
    column_defects: int = 0  # hot columns (CCD), dark current x column_defect_factor
    column_defect_factor: float = 4.0
    # --- amp glow
    amp_glow_e_per_s: float = 0.0  # peak, in the corner
    amp_glow_corner: str = "top-right"  # top-left | top-right | bottom-left | bottom-right
    amp_glow_scale: float = 0.12  # e-folding radius as a fraction of the diagonal
    # --- fixed pattern and per-frame noise (ADU of the saved values)
    column_pattern_adu: float = 1.0  # std of fixed column offsets
    pixel_pattern_adu: float = 0.5  # std of the fixed per-pixel bias pattern
    row_banding_adu: float = 0.6  # std of per-frame random row offsets
    # --- transients
    cosmic_rate_per_cm2_s: float = 5.0  # ~300x sea level so small frames show hits
    cosmic_readout_s: float = 2.0  # extra exposure to cosmics during readout (bias frames)
    flicker_pixels: int = 4  # random-telegraph pixels
    flicker_amp_e: float = 40.0
    flicker_p_on: float = 0.4
    bias_exptime_s: float = 0.0
    # --- cooler / thermal
    cooled: bool = True
    max_delta_c: float = 35.0  # the cooler reaches at most this far below ambient
    cooler_tau_s: float = 150.0  # first-order time constant of the regulated temperature
    regulation_noise_c: float = 0.04  # random walk (Ornstein-Uhlenbeck) amplitude
    ambient_coupling: float = 0.03  # set-point error per degree of ambient change
    temp_resolution_c: float = 0.1  # the camera reports temperatures rounded to this
    self_heating_c: float = 0.0  # uncooled sensors: warming over a continuous sequence
    self_heating_tau_s: float = 1800.0
    electronics_warm_c: float = 2.0  # sensor above ambient when the cooler is off
    # --- colour filter array (added after truth format 1: written to the truth only when set)
    cfa_response: tuple[float, float, float] | None = field(
        default=None, metadata=OMIT_AT_DEFAULT
    )  # R, G, B pixel response to the same light; None: colour-blind sky
    bayer_offset: tuple[int, int] = field(default=(0, 0), metadata=OMIT_AT_DEFAULT)  # X, Y

    def __post_init__(self) -> None:
        # JSON gives lists; keep tuples so models compare and hash the same after a round trip
        if self.cfa_response is not None:
            object.__setattr__(self, "cfa_response", tuple(float(v) for v in self.cfa_response))
        object.__setattr__(self, "bayer_offset", tuple(int(v) for v in self.bayer_offset))
        problems = []
        if self.ny < 8 or self.nx < 8:
            problems.append(f"shape ({self.ny}, {self.nx}) is too small (minimum 8x8)")
        if self.egain_e_per_adu <= 0:
            problems.append("egain_e_per_adu must be positive")
        if not 8 <= self.adc_bits <= 16:
            problems.append("adc_bits must be between 8 and 16")
        if self.read_noise_e < 0 or self.dark_current_e_per_s < 0:
            problems.append("read noise and dark current must be >= 0")
        if self.doubling_temp_c <= 0:
            problems.append("doubling_temp_c must be positive")
        if not 0 <= self.hot_fraction < 0.5:
            problems.append("hot_fraction must be in [0, 0.5)")
        if not 0 < self.nonlinearity_start <= 1:
            problems.append("nonlinearity_start must be in (0, 1]")
        if self.amp_glow_corner not in _CORNERS:
            problems.append(f"amp_glow_corner must be one of {sorted(_CORNERS)}")
        if self.bayer_pattern is not None and not _BAYER.match(self.bayer_pattern):
            problems.append(f"bayer_pattern must be 4 of R/G/B letters, got {self.bayer_pattern!r}")
        if len(self.bayer_offset) != 2 or min(self.bayer_offset) < 0:
            problems.append("bayer_offset must be two integers >= 0 (XBAYROFF, YBAYROFF)")
        if self.cfa_response is not None:
            if self.bayer_pattern is None:
                problems.append("cfa_response needs a bayer_pattern")
            if len(self.cfa_response) != 3 or min(self.cfa_response) <= 0:
                problems.append("cfa_response must be three positive factors (R, G, B)")
        if problems:
            raise ConfigError(f"invalid sensor model {self.name!r}: " + "; ".join(problems))

    # ------------------------------------------------------------------ derived values
    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the sensor."""
        return (self.ny, self.nx)

    @property
    def adc_step_adu(self) -> int:
        """Quantisation step of the saved values (4 for a 14-bit ADC scaled to 16 bits)."""
        return 2 ** (16 - self.adc_bits) if self.scale_to_16bit else 1

    @property
    def saturation_adu(self) -> int:
        """Largest value the camera can save: the top ADC code times the step.

        65535 for a 16-bit ADC, 65532 for a 14-bit ADC scaled to 16 bits (codes x 4), 16383
        for unscaled 14-bit DSLR data.
        """
        return (2**self.adc_bits - 1) * self.adc_step_adu

    @property
    def egain_adc_e_per_adu(self) -> float:
        """e-/ADU at the ADC's own bit depth (what SharpCap writes as ``EGAIN``)."""
        return self.egain_e_per_adu * self.adc_step_adu

    @property
    def area_cm2(self) -> float:
        """The sensor's area in cm² (cosmic-ray rates are per cm²)."""
        return self.ny * self.nx * (self.pixel_size_um * 1e-4) ** 2

    @property
    def slug(self) -> str:
        """Filesystem-safe name of the camera."""
        from darkflow.model import slug

        return slug(self.name)

    @property
    def stored_bayer_pattern(self) -> str | None:
        """Colour pattern of the stored array's first 2x2 pixels (``BAYERPAT`` shifted by the
        offsets: an odd X offset swaps the columns, an odd Y offset the rows)."""
        p = self.bayer_pattern
        if p is None:
            return None
        if self.bayer_offset[0] % 2:
            p = p[1] + p[0] + p[3] + p[2]
        if self.bayer_offset[1] % 2:
            p = p[2:] + p[:2]
        return p

    def cfa_channels(self) -> np.ndarray:
        """Colour of every stored pixel, ``(ny, nx)`` int8: 0 red, 1 green, 2 blue."""
        p = self.stored_bayer_pattern
        if p is None:
            raise ConfigError(f"{self.name} is a monochrome sensor (no bayer_pattern)")
        cell = np.array([["RGB".index(c) for c in p[:2]], ["RGB".index(c) for c in p[2:]]])
        reps = ((self.ny + 1) // 2, (self.nx + 1) // 2)
        return np.tile(cell, reps)[: self.ny, : self.nx].astype(np.int8)

    def dark_scale(self, temp_c: float) -> float:
        """Dark-current multiplier at ``temp_c`` relative to ``ref_temp_c``."""
        return 2.0 ** ((temp_c - self.ref_temp_c) / self.doubling_temp_c)

    def replace(self, **changes: Any) -> SensorModel:
        """Return a copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def at_gain(self, gain_setting: float) -> SensorModel:
        """The same camera at another gain setting (0.1 dB steps, as ZWO gains are).

        e-/ADU and read noise scale as ``10**(-(g - g0)/200)``, clipped so read noise never
        drops below 1 e-; the bias level (set by the offset) is unchanged. Used by scenarios
        such as "darks taken at the wrong gain".
        """
        if self.gain_setting is None or self.kind is not SensorKind.CMOS:
            raise ConfigError(f"{self.name} has no gain setting")
        ref = self.gain_reference if self.gain_reference is not None else self.gain_setting
        factor = 10.0 ** (-(gain_setting - self.gain_setting) / 200.0)
        return self.replace(
            gain_setting=float(gain_setting),
            gain_reference=ref,
            egain_e_per_adu=self.egain_e_per_adu * factor,
            read_noise_e=max(1.0, self.read_noise_e * math.sqrt(factor)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of every parameter plus the derived values."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not omitted(f, getattr(self, f.name))
        }
        out["kind"] = str(self.kind)
        out.update(
            shape=[self.ny, self.nx],
            adc_step_adu=self.adc_step_adu,
            saturation_adu=self.saturation_adu,
            egain_adc_e_per_adu=self.egain_adc_e_per_adu,
            area_cm2=self.area_cm2,
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensorModel:
        """The model written by ``to_dict`` (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["kind"] = SensorKind(kwargs.get("kind", "cmos"))
        return cls(**kwargs)


_CORNERS = {"top-left", "top-right", "bottom-left", "bottom-right"}
_BAYER = re.compile(r"^[RGB]{4}$")

_ASI2600MM = SensorModel(
    name="ZWO ASI2600MM Pro",
    kind=SensorKind.CMOS,
    pixel_size_um=3.76,
    serial="5F2A1B0C11090900",
    gain_setting=100.0,
    egain_e_per_adu=0.25,
    offset_setting=50.0,
    bias_adu=500.0,
    read_noise_e=1.5,
    full_well_e=50_000.0,
    dark_current_e_per_s=0.02,
    hot_fraction=0.002,
    amp_glow_e_per_s=0.06,
    amp_glow_corner="top-right",
    temp_resolution_c=0.1,
)

SENSOR_PRESETS: dict[str, SensorModel] = {
    "zwo-asi2600mm-pro": _ASI2600MM,
    "zwo-asi2600mc-pro": _ASI2600MM.replace(
        name="ZWO ASI2600MC Pro",
        serial="7A3C2E1D12080900",
        bayer_pattern="RGGB",
        amp_glow_e_per_s=0.05,
        amp_glow_corner="bottom-right",
        hot_fraction=0.003,
    ),
    "zwo-asi294mc-pro": SensorModel(
        name="ZWO ASI294MC Pro",
        kind=SensorKind.CMOS,
        pixel_size_um=4.63,
        serial="2C1B4A3D10070800",
        bayer_pattern="RGGB",
        adc_bits=14,
        gain_setting=120.0,
        egain_e_per_adu=0.25,  # ~1.0 e-/ADU at 14 bits
        offset_setting=30.0,
        bias_adu=480.0,
        read_noise_e=1.8,
        full_well_e=63_700.0,
        dark_current_e_per_s=0.05,
        hot_fraction=0.004,
        amp_glow_e_per_s=0.8,  # the IMX294 is known for strong amp glow
        amp_glow_corner="top-left",
        amp_glow_scale=0.18,
        row_banding_adu=1.0,
    ),
    "zwo-asi533mc-pro": SensorModel(
        name="ZWO ASI533MC Pro",
        kind=SensorKind.CMOS,
        pixel_size_um=3.76,
        serial="112E900511080900",
        bayer_pattern="RGGB",
        adc_bits=14,
        gain_setting=100.0,
        egain_e_per_adu=0.25,  # 1.0 e-/ADU at the ADC's 14 bits
        offset_setting=50.0,
        bias_adu=800.0,
        read_noise_e=1.5,
        full_well_e=50_000.0,
        dark_current_e_per_s=0.02,
        hot_fraction=0.002,
        amp_glow_e_per_s=0.0,  # "zero amp glow" sensor
        temp_resolution_c=0.1,
    ),
    "sbig-stf-8300m": SensorModel(
        name="SBIG STF-8300M",
        kind=SensorKind.CCD,
        pixel_size_um=5.4,
        serial="SF8300-13042",
        readout_mode="Monochrome",
        gain_setting=None,
        egain_e_per_adu=0.37,
        offset_setting=None,
        bias_adu=1000.0,
        read_noise_e=9.3,
        full_well_e=25_500.0,
        nonlinearity_start=0.85,
        dark_current_e_per_s=0.15,
        dark_sigma_log=0.3,
        doubling_temp_c=5.8,
        hot_fraction=0.005,
        hot_factor=40.0,
        column_defects=2,
        amp_glow_e_per_s=0.0,
        column_pattern_adu=2.0,
        pixel_pattern_adu=0.8,
        row_banding_adu=0.3,
        flicker_pixels=2,
        max_delta_c=32.0,
        cooler_tau_s=240.0,
        regulation_noise_c=0.03,
        temp_resolution_c=0.01,
    ),
    "canon-eos-6d": SensorModel(
        name="Canon EOS 6D",
        kind=SensorKind.DSLR,
        pixel_size_um=6.55,
        serial="032021004512",
        bayer_pattern="RGGB",
        adc_bits=14,
        scale_to_16bit=False,  # raw 14-bit values, saturating at 16383
        gain_setting=1600.0,  # ISO
        egain_e_per_adu=0.55,
        offset_setting=None,
        bias_adu=2048.0,
        read_noise_e=2.8,
        full_well_e=76_000.0,
        dark_current_e_per_s=0.08,
        dark_sigma_log=0.35,
        doubling_temp_c=6.3,
        hot_fraction=0.004,
        hot_factor=50.0,
        amp_glow_e_per_s=0.15,
        amp_glow_corner="bottom-left",
        column_pattern_adu=1.5,
        pixel_pattern_adu=0.6,
        row_banding_adu=1.2,
        cooled=False,
        max_delta_c=0.0,
        temp_resolution_c=1.0,
        self_heating_c=5.0,
        self_heating_tau_s=1800.0,
        electronics_warm_c=1.0,
        bias_exptime_s=1.0 / 4000.0,
    ),
}


def get_sensor(camera: str | SensorModel) -> SensorModel:
    """Resolve a preset name (or slug of a camera name) to a :class:`SensorModel`."""
    if isinstance(camera, SensorModel):
        return camera
    from darkflow.model import slug

    key = slug(camera)
    try:
        return SENSOR_PRESETS[key]
    except KeyError as err:
        raise ConfigError(
            f"unknown sensor preset {camera!r}; known: {', '.join(sorted(SENSOR_PRESETS))}"
        ) from err

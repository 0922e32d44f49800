"""Ready-made nights: ``tiny`` (tests), ``demo`` (``make demo``), ``night`` (benchmarks) and the
matching scenarios :data:`SCENARIOS` (``drifting-cooler``, ``warm-night``, ``no-exact-dark``,
``uncooled``; ``benchmarks/bench_matching.py``).

Each preset is a plain :class:`~darkflow.simulate.spec.NightSpec` in :data:`PRESETS`. A new
scenario is a few lines deriving from an existing one, for example a drifting cooler only::

    from darkflow.simulate import PRESETS
    base = PRESETS["demo"]
    PRESETS["drift-only"] = base.replace(
        name="drift-only",
        sessions=(base.sessions[0].replace(cooler_drift_c_per_h=2.0, broken=()),),
    )

Faults (:class:`~darkflow.simulate.spec.Fault`) are added per session with
``session.replace(faults=(TemperatureOffset(delta_c=8.0),))``.
"""

from __future__ import annotations

from darkflow.exceptions import ConfigError
from darkflow.simulate.sensors import SENSOR_PRESETS
from darkflow.simulate.sky import SkySpec
from darkflow.simulate.spec import (
    Block,
    Breakage,
    BrokenFrame,
    NightSpec,
    Program,
    SessionSpec,
    Site,
    TemperatureReadout,
)
from darkflow.simulate.thermal import AmbientSpec

__all__ = ["PRESETS", "SCENARIOS", "get_preset"]

ZWO_BIAS_S = 0.000032  # shortest exposure of ZWO cameras, used for biases

_HOME = Site("Backyard Observatory", 48.137, 11.575, 520.0, 1.0)
_REMOTE = Site("Siding Spring Remote", -31.273, 149.064, 1165.0, 11.0)  # AEDT in November

_COLD_NIGHT = AmbientSpec(start_c=6.0, end_c=-1.0, tau_h=4.0, wobble_c=0.3)
_WARM_NIGHT = AmbientSpec(start_c=27.0, end_c=21.0, tau_h=5.0, wobble_c=0.4)

_SKY_L = SkySpec(background_e_per_s=1.2, nebula_e_per_s=0.8)
_SKY_HA = SkySpec(background_e_per_s=0.08, nebula_e_per_s=0.5, star_flux_max_e_per_s=3.0e4)
_SKY_OSC = SkySpec(background_e_per_s=0.8, nebula_e_per_s=0.6, gradient=0.3)
_SKY_DARK_SITE = SkySpec(background_e_per_s=0.5, nebula_e_per_s=1.0, fwhm_px=2.5)
_SKY_DSLR = SkySpec(background_e_per_s=2.0, nebula_e_per_s=0.4, gradient=0.35, fwhm_px=2.2)

_CAMERA_KEYS = (
    "zwo-asi2600mm-pro",
    "zwo-asi294mc-pro",
    "sbig-stf-8300m",
    "zwo-asi533mc-pro",
    "canon-eos-6d",
    "zwo-asi2600mc-pro",
)


def _cameras(ny: int, nx: int, **changes: float) -> dict:
    return {k: SENSOR_PRESETS[k].replace(ny=ny, nx=nx, **changes) for k in _CAMERA_KEYS}


def _demo() -> NightSpec:
    """About 220 files of 200x300 from six programs, three sensor families."""
    nina = SessionSpec(
        name="nina_asi2600mm",
        camera="zwo-asi2600mm-pro",
        program=Program.NINA,
        start_h=17.5,
        set_temp_c=-10.0,
        ambient=_COLD_NIGHT,
        target="M 31",
        target_ra_deg=10.6847,
        target_dec_deg=41.2690,
        filter="L",
        sky=_SKY_L,
        blocks=(
            Block("bias", ZWO_BIAS_S, 12),
            Block("dark", 120.0, 8),
            Block("dark", 300.0, 8),
            Block("light", 120.0, 12, filter="L"),
            Block("light", 300.0, 8, filter="Ha"),
            # darks at several set-points at the end of the night: the temperature law
            Block("dark", 300.0, 5, set_temp_c=-20.0, gap_before_s=1800.0),
            Block("dark", 300.0, 5, set_temp_c=-15.0),
            Block("dark", 300.0, 5, set_temp_c=-5.0),
            Block("dark", 300.0, 5, set_temp_c=0.0),
        ),
        broken=(
            BrokenFrame(1, 3, Breakage.MISSING_TEMPERATURE),
            BrokenFrame(2, 2, Breakage.TEMPERATURE_SENTINEL),
            BrokenFrame(3, 5, Breakage.TRUNCATED),
        ),
    )
    sgp = SessionSpec(
        name="sgp_asi294mc",
        camera="zwo-asi294mc-pro",
        program=Program.SGP,
        start_h=18.0,
        set_temp_c=-10.0,
        cooler_drift_c_per_h=1.2,  # the drifting cooler
        ambient=_COLD_NIGHT,
        target="NGC 7000",
        target_ra_deg=314.75,
        target_dec_deg=44.53,
        telescope="RedCat 51",
        focal_length_mm=250.0,
        aperture_mm=51.0,
        sky=_SKY_OSC,
        blocks=(
            Block("light", 180.0, 12),
            Block("dark", 180.0, 10, gap_before_s=600.0),
            Block("bias", ZWO_BIAS_S, 10),
        ),
        broken=(BrokenFrame(0, 4, Breakage.MISSING_FRAME_TYPE),),
    )
    maxim = SessionSpec(
        name="maxim_stf8300",
        camera="sbig-stf-8300m",
        program=Program.MAXIM,
        site=_REMOTE,
        start_h=20.5,
        set_temp_c=-15.0,  # unreachable: the cooler manages ~32 degC below a 21-27 degC night
        ambient=_WARM_NIGHT,
        target="M 42",
        target_ra_deg=83.8221,
        target_dec_deg=-5.3911,
        filter="Lum",
        telescope="PlaneWave CDK14",
        focal_length_mm=2563.0,
        aperture_mm=356.0,
        sky=_SKY_DARK_SITE,
        blocks=(
            Block("bias", 0.0, 10),
            Block("dark", 180.0, 8),
            Block("dark", 300.0, 8),
            Block("light", 240.0, 10),  # no 240 s dark: bracketed by 180 s and 300 s
        ),
        calibrated_lights=((3, 9),),
        broken=(BrokenFrame(3, 6, Breakage.NAN_DATA),),
        quirks=("exptime_e3",),
    )
    sharpcap = SessionSpec(
        name="sharpcap_asi533mc",
        camera="zwo-asi533mc-pro",
        program=Program.SHARPCAP,
        start_h=19.0,
        set_temp_c=-5.0,
        ambient=_COLD_NIGHT,
        target="M 45",
        target_ra_deg=56.75,
        target_dec_deg=24.1167,
        telescope="Askar FRA400",
        focal_length_mm=400.0,
        aperture_mm=72.0,
        sky=_SKY_OSC,
        blocks=(
            Block("light", 60.0, 15),
            Block("dark", 60.0, 10, gap_before_s=300.0),
        ),
        broken=(BrokenFrame(0, 7, Breakage.BINNED_FRAME),),
    )
    ekos = SessionSpec(
        name="ekos_canon6d",
        camera="canon-eos-6d",
        program=Program.EKOS,
        start_h=18.5,
        set_temp_c=None,
        ambient=_COLD_NIGHT,
        target="M 33",
        target_ra_deg=23.4621,
        target_dec_deg=30.6602,
        telescope="Samyang 135mm f/2",
        focal_length_mm=135.0,
        aperture_mm=67.5,
        sky=_SKY_DSLR,
        blocks=(
            Block("light", 120.0, 12),
            Block("dark", 120.0, 10, gap_before_s=900.0),
            Block("bias", 1.0 / 4000.0, 10),
        ),
        broken=(BrokenFrame(0, 2, Breakage.WRONG_BINNING_HEADER),),
        quirks=("exptime_string",),
    )
    asiair = SessionSpec(
        name="asiair_asi2600mc",
        camera="zwo-asi2600mc-pro",
        program=Program.ASIAIR,
        start_h=17.25,
        set_temp_c=-10.0,
        ambient=_COLD_NIGHT,
        target="IC 1805",
        target_ra_deg=38.175,
        target_dec_deg=61.45,
        filter="L-eXtreme",
        telescope="Esprit 100ED",
        sky=_SKY_HA,
        blocks=(
            Block("dark", 300.0, 10),  # the dark library, taken at dusk
            Block("bias", ZWO_BIAS_S, 10),
            Block("light", 300.0, 10, gap_before_s=1200.0),
        ),
    )
    return NightSpec(
        name="demo",
        date="2026-11-23",
        site=_HOME,
        cameras=_cameras(200, 300),
        sessions=(nina, sgp, maxim, sharpcap, ekos, asiair),
        description=(
            "Six capture programs, three sensor families (cooled CMOS, CCD, DSLR), broken "
            "frames, a drifting cooler, a warm-night CCD that cannot reach its set-point, "
            "lights at an exposure without an exact dark and one pre-calibrated light."
        ),
    )


def _tiny() -> NightSpec:
    """The demo in miniature (48x64, ~50 files): every program, sensor family and breakage."""
    demo = _demo()
    s = {x.name: x for x in demo.sessions}
    sessions = (
        s["nina_asi2600mm"].replace(
            blocks=(
                Block("bias", ZWO_BIAS_S, 3),
                Block("dark", 60.0, 3),
                Block("light", 60.0, 3, filter="L"),
                Block("dark", 60.0, 3, set_temp_c=-20.0),
            ),
            broken=(
                BrokenFrame(1, 1, Breakage.MISSING_TEMPERATURE),
                BrokenFrame(2, 0, Breakage.TRUNCATED),
                BrokenFrame(3, 1, Breakage.TEMPERATURE_SENTINEL),
            ),
        ),
        s["sgp_asi294mc"].replace(
            blocks=(Block("light", 30.0, 3), Block("dark", 30.0, 3), Block("bias", ZWO_BIAS_S, 2)),
            broken=(BrokenFrame(0, 1, Breakage.MISSING_FRAME_TYPE),),
        ),
        s["maxim_stf8300"].replace(
            blocks=(Block("bias", 0.0, 2), Block("dark", 120.0, 3), Block("light", 90.0, 3)),
            calibrated_lights=((2, 2),),
            broken=(BrokenFrame(2, 1, Breakage.NAN_DATA),),
        ),
        s["sharpcap_asi533mc"].replace(
            blocks=(Block("light", 20.0, 3), Block("dark", 20.0, 3)),
            broken=(BrokenFrame(0, 2, Breakage.BINNED_FRAME),),
        ),
        s["ekos_canon6d"].replace(
            blocks=(Block("light", 30.0, 3), Block("dark", 30.0, 3), Block("bias", 1 / 4000, 2)),
            broken=(BrokenFrame(0, 1, Breakage.WRONG_BINNING_HEADER),),
        ),
        s["asiair_asi2600mc"].replace(
            blocks=(Block("dark", 60.0, 3), Block("light", 60.0, 3)),
        ),
    )
    return demo.replace(
        name="tiny",
        cameras=_cameras(48, 64, cosmic_rate_per_cm2_s=150.0),
        sessions=sessions,
        description="The demo in miniature for tests: 48x64 frames, every program and breakage.",
    )


def _night() -> NightSpec:
    """A larger night for benchmarks: 1000x1500 frames, 190 files, no sky truth."""
    demo = _demo()
    s = {x.name: x for x in demo.sessions}
    sessions = (
        s["nina_asi2600mm"].replace(
            blocks=(
                Block("bias", ZWO_BIAS_S, 20),
                Block("dark", 120.0, 20),
                Block("dark", 300.0, 20),
                Block("light", 120.0, 30, filter="L"),
            ),
            broken=(),
        ),
        s["maxim_stf8300"].replace(
            blocks=(Block("bias", 0.0, 15), Block("dark", 300.0, 15), Block("light", 300.0, 20)),
            calibrated_lights=(),
            broken=(),
        ),
        s["ekos_canon6d"].replace(
            blocks=(
                Block("light", 120.0, 20),
                Block("dark", 120.0, 15, gap_before_s=900.0),
                Block("bias", 1 / 4000, 15),
            ),
            broken=(),
        ),
    )
    return demo.replace(
        name="night",
        cameras=_cameras(1000, 1500),
        sessions=sessions,
        write_sky_truth=False,
        description="Benchmark night: 1000x1500 frames from a CMOS, a CCD and a DSLR session.",
    )


# ----------------------------------------------------------------------------- matching scenarios
# Nights for the matching benchmark (benchmarks/bench_matching.py, docs/matching.md): small
# frames, one camera each, darks that do not simply match the lights.
_SCENARIO_SHAPE = (128, 192)


def _scenario(name: str, camera: str, model, session: SessionSpec, description: str) -> NightSpec:
    ny, nx = _SCENARIO_SHAPE
    return NightSpec(
        name=name,
        date="2026-11-23",
        site=_HOME,
        cameras={camera: model.replace(ny=ny, nx=nx)},
        sessions=(session,),
        write_sky_truth=False,
        description=description,
    )


def _drifting_cooler() -> NightSpec:
    """A cooler drifting 2 °C/h away from its set-point; darks at dusk and at dawn."""
    cam = "zwo-asi294mc-pro"
    session = SessionSpec(
        name="sgp_drift",
        camera=cam,
        program=Program.SGP,
        start_h=18.0,
        set_temp_c=-10.0,
        cooler_drift_c_per_h=2.0,
        ambient=_COLD_NIGHT,
        target="NGC 7000",
        sky=_SKY_OSC,
        blocks=(
            Block("bias", ZWO_BIAS_S, 10),
            Block("dark", 180.0, 10),
            Block("light", 180.0, 40),
            Block("dark", 180.0, 10),
        ),
    )
    return _scenario(
        "drifting-cooler",
        cam,
        SENSOR_PRESETS[cam],
        session,
        "ASI294MC (strong amp glow) whose cooler drifts 2 °C/h: darks at dusk and "
        "dawn bracket the lights in temperature.",
    )


def _warm_night() -> NightSpec:
    """A CCD that cannot reach its set-point on a warm night; the sensor cools as the air does."""
    cam = "sbig-stf-8300m"
    session = SessionSpec(
        name="maxim_warm",
        camera=cam,
        program=Program.MAXIM,
        start_h=20.0,
        set_temp_c=-15.0,
        cooldown_s=1800.0,
        ambient=AmbientSpec(start_c=26.0, end_c=16.0, tau_h=3.5, wobble_c=0.3),
        target="M 42",
        sky=_SKY_DARK_SITE,
        blocks=(
            Block("bias", 0.0, 10),
            Block("dark", 300.0, 8),
            Block("dark", 180.0, 8),
            Block("light", 300.0, 24),
            Block("dark", 300.0, 8),
        ),
    )
    return _scenario(
        "warm-night",
        cam,
        SENSOR_PRESETS[cam],
        session,
        "STF-8300M at a -15 °C set-point it cannot reach: the sensor follows the "
        "air from about -7 to -12 °C; every dark says SET-TEMP=-15.",
    )


def _no_exact_dark() -> NightSpec:
    """Lights at exposures the dark library does not have (a stable cooled CMOS)."""
    cam = "zwo-asi2600mm-pro"
    session = SessionSpec(
        name="nina_library",
        camera=cam,
        program=Program.NINA,
        start_h=18.0,
        set_temp_c=-10.0,
        ambient=_COLD_NIGHT,
        target="M 31",
        filter="L",
        sky=_SKY_L,
        blocks=(
            Block("bias", ZWO_BIAS_S, 12),
            Block("dark", 60.0, 10),
            Block("dark", 180.0, 10),
            Block("dark", 300.0, 10),
            Block("light", 120.0, 10, filter="L"),
            Block("light", 240.0, 10, filter="L"),
            Block("light", 300.0, 6, filter="L"),
            Block("light", 600.0, 6, filter="L"),
        ),
    )
    return _scenario(
        "no-exact-dark",
        cam,
        SENSOR_PRESETS[cam],
        session,
        "ASI2600MM with darks at 60, 180 and 300 s and lights at 120, 240, 300 and 600 s.",
    )


def _uncooled() -> NightSpec:
    """An uncooled camera that reports its sensor temperature (noisily), self-heating at dusk."""
    cam = "zwo-asi533mc"
    model = SENSOR_PRESETS["zwo-asi533mc-pro"].replace(
        name="ZWO ASI533MC",
        serial="0533UNCOOLED0001",
        cooled=False,
        max_delta_c=0.0,
        self_heating_c=4.0,
        self_heating_tau_s=1800.0,
        electronics_warm_c=2.0,
    )
    session = SessionSpec(
        name="nina_uncooled",
        camera=cam,
        program=Program.NINA,
        start_h=19.0,
        set_temp_c=None,
        ambient=AmbientSpec(start_c=14.0, end_c=2.0, tau_h=3.0, wobble_c=0.3),
        target="M 45",
        sky=_SKY_OSC,
        blocks=(
            Block("dark", 120.0, 12),
            Block("bias", ZWO_BIAS_S, 10),
            Block("light", 120.0, 45),
            Block("dark", 120.0, 12),
        ),
        faults=(TemperatureReadout(resolution_c=0.5, noise_c=0.6),),
    )
    return _scenario(
        "uncooled",
        cam,
        model,
        session,
        "Uncooled ASI533MC: sensor at ambient + self-heating, readings rounded to "
        "0.5 °C with 0.6 °C noise; darks before and after the lights.",
    )


SCENARIOS = ("drifting-cooler", "warm-night", "no-exact-dark", "uncooled")
"""The matching-benchmark scenarios (also in :data:`PRESETS`)."""

PRESETS: dict[str, NightSpec] = {
    "tiny": _tiny(),
    "demo": _demo(),
    "night": _night(),
    "drifting-cooler": _drifting_cooler(),
    "warm-night": _warm_night(),
    "no-exact-dark": _no_exact_dark(),
    "uncooled": _uncooled(),
}
"""Named nights. Add a scenario with ``PRESETS["name"] = PRESETS["demo"].replace(...)``."""


def get_preset(name: str) -> NightSpec:
    """The :class:`NightSpec` of a named preset."""
    try:
        return PRESETS[name]
    except KeyError as err:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from err

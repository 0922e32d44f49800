"""The simulated observatory: nights of FITS frames with known ground truth.

Tests, the ``make demo`` command, benchmarks and teaching notebooks all draw their data from
here. A night is a :class:`NightSpec` (cameras + sessions); :func:`simulate_night` writes it in
the folder, file-name and header conventions of six capture programs (N.I.N.A., SGP, MaxIm DL,
SharpCap, Ekos/INDI, ASIAIR), with its ground truth under ``OUT/_truth/``::

    from darkflow.simulate import simulate_night, load_truth
    manifest = simulate_night("demo-data", preset="demo", seed=0)
    truth = load_truth("demo-data")
    expected = truth.true_dark_adu("zwo-asi2600mm-pro", exptime_s=300, temp_c=-10.0)

Everything is deterministic for a given ``seed``. See ``docs/simulator.md`` for the physics,
the header styles, the deliberately broken frames and the truth format.
:mod:`darkflow.simulate.zoo` draws randomized families of nights (the camera zoo) with the
verdicts a correct pipeline should reach.
"""

from darkflow.simulate.cli import cli_simulate, main
from darkflow.simulate.night import (
    NightManifest,
    NightPlan,
    RenderedFrame,
    SessionManifest,
    iter_rendered,
    plan_night,
    render_frame,
    sensor_truth,
    simulate_night,
)
from darkflow.simulate.physics import (
    Exposure,
    SensorTruth,
    expose,
    expose_detailed,
    make_sensor_truth,
)
from darkflow.simulate.presets import PRESETS, get_preset
from darkflow.simulate.sensors import SENSOR_PRESETS, SensorKind, SensorModel, get_sensor
from darkflow.simulate.sky import SkyColour, SkySpec, SpectrumSpec
from darkflow.simulate.spec import (
    Block,
    Breakage,
    BrokenFrame,
    Fault,
    FramePlan,
    LightLeak,
    NightSpec,
    Program,
    SessionSpec,
    Site,
    TemperatureOffset,
    TemperatureReadout,
)
from darkflow.simulate.thermal import AmbientSpec, ThermalTrace, simulate_thermal
from darkflow.simulate.truth import Truth, load_truth

__all__ = [
    "PRESETS",
    "SENSOR_PRESETS",
    "AmbientSpec",
    "Block",
    "Breakage",
    "BrokenFrame",
    "Exposure",
    "Fault",
    "FramePlan",
    "LightLeak",
    "NightManifest",
    "NightPlan",
    "NightSpec",
    "Program",
    "RenderedFrame",
    "SensorKind",
    "SensorModel",
    "SensorTruth",
    "SessionManifest",
    "SessionSpec",
    "Site",
    "SkyColour",
    "SkySpec",
    "SpectrumSpec",
    "TemperatureOffset",
    "TemperatureReadout",
    "ThermalTrace",
    "Truth",
    "cli_simulate",
    "expose",
    "expose_detailed",
    "get_preset",
    "get_sensor",
    "iter_rendered",
    "load_truth",
    "main",
    "make_sensor_truth",
    "plan_night",
    "render_frame",
    "sensor_truth",
    "simulate_night",
    "simulate_thermal",
]

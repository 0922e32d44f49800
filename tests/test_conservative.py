"""The conservative alternative: used only where configured, amplitude-limited, always degraded."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from darkflow.calibrate import limit_dark_amplitude
from darkflow.config import Config
from darkflow.pipeline import run_night
from darkflow.simulate.faults import fault_night, simulate_faulted_night
from darkflow.subtract import DarkModel


@pytest.fixture(scope="module")
def warm_night(tmp_path_factory):
    """Darks 8 °C warmer than the lights, recorded in the headers: no master passes the gate."""
    root = tmp_path_factory.mktemp("warm") / "data"
    simulate_faulted_night(root, fault_night("warm_darks_recorded", seed=4, shape=(120, 160)), 4)
    return root


@pytest.mark.integration
def test_without_the_option_the_lights_are_quarantined(warm_night, tmp_path):
    run_night(warm_night, workdir=tmp_path / "w")
    report = pd.read_csv(tmp_path / "w" / "frame_report.csv")
    assert set(report["status"]) == {"quarantined"}
    assert report["reasons"].str.contains("no_candidate").all()


@pytest.mark.integration
def test_conservative_fallback_is_degraded_and_amplitude_limited(warm_night, tmp_path):
    config = Config().with_overrides(subtract={"conservative_fallback": True})
    run_night(warm_night, workdir=tmp_path / "w", config=config)
    report = pd.read_csv(tmp_path / "w" / "frame_report.csv")
    assert set(report["status"]) == {"degraded"}
    assert report["reasons"].str.contains("conservative_fallback").all()
    assert (report["confidence"] <= 0.3 + 1e-9).all()
    for path in report["output_path"]:  # relative to the work directory
        with fits.open(tmp_path / "w" / path) as hdul:
            assert hdul[0].header["DFCONF"] <= 0.3


def test_limit_dark_amplitude_caps_hot_pixels_only():
    rng = np.random.default_rng(0)
    bias = type("B", (), {"data": np.full((50, 50), 500.0, np.float32)})()
    signal = rng.normal(20, 2, (50, 50)).astype(np.float32)
    signal[10, 10] = 5000.0  # a hot pixel
    model = DarkModel(data=500 + signal, variance=np.ones((50, 50), np.float32),
                      scale_mode="none", scale_factor=1.0, master_ids=("m",))  # fmt: skip
    limited = limit_dark_amplitude(model, bias, 5.0)
    assert limited.data[10, 10] < 500 + 20 + 5 * 2.5
    typical = np.abs(signal - 20) < 3 * 2
    np.testing.assert_array_equal(limited.data[typical], model.data[typical])
    assert limited.notes["amplitude_limit"]["sigma"] == 5.0

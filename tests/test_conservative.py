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


NO_ASSUMED_LAW = {"assume_dark_law": False}


@pytest.mark.integration
def test_without_the_options_the_lights_are_quarantined(warm_night, tmp_path):
    config = Config().with_overrides(matching=NO_ASSUMED_LAW)
    run_night(warm_night, workdir=tmp_path / "w", config=config)
    report = pd.read_csv(tmp_path / "w" / "frame_report.csv")
    assert set(report["status"]) == {"quarantined"}
    assert report["reasons"].str.contains("no_candidate").all()


@pytest.mark.integration
def test_by_default_the_configured_law_scales_the_warm_darks(warm_night, tmp_path):
    """Darks of one temperature give no fitted law: the configured one scales them, with its
    prior uncertainty in the stated error, rather than leaving the lights without output."""
    run_night(warm_night, workdir=tmp_path / "w")
    report = pd.read_csv(tmp_path / "w" / "frame_report.csv")
    assert "quarantined" not in set(report["status"])
    assert report["reasons"].str.contains("dark_law_assumed").all()
    assert report["reasons"].str.contains("temperature_scaled").all()
    decisions = pd.read_json(next((tmp_path / "w").rglob("decisions.jsonl")), lines=True)
    # 8 °C at doubling 6 +- 1 °C: ln2 * 8 / 36 = 15 % from the doubling temperature alone
    err = decisions["dark_rel_sigma"].to_numpy()
    assert np.all((err > 0.10) & (err < 0.6))
    assert (decisions["temp_factor"] < 0.5).all()  # the darks are warmer: scaled down
    for path in report["output_path"]:
        assert (tmp_path / "w" / path).is_file()


@pytest.mark.integration
def test_conservative_fallback_is_degraded_and_amplitude_limited(warm_night, tmp_path):
    config = Config().with_overrides(
        subtract={"conservative_fallback": True}, matching=NO_ASSUMED_LAW
    )
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
    model = DarkModel(
        data=500 + signal,
        variance=np.ones((50, 50), np.float32),
        scale_mode="none",
        scale_factor=1.0,
        master_ids=("m",),
    )
    limited = limit_dark_amplitude(model, bias, 5.0)
    assert limited.data[10, 10] < 500 + 20 + 5 * 2.5
    typical = np.abs(signal - 20) < 3 * 2
    np.testing.assert_array_equal(limited.data[typical], model.data[typical])
    assert limited.notes["amplitude_limit"]["sigma"] == 5.0

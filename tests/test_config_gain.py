"""The gain of a light without EGAIN is measured on every dark master of its configuration.

Each master's photon transfer (with its own bias) is one estimate; they are combined by their
uncertainties, the combined uncertainty inflated when they disagree (Birge ratio). The masters
are part of the light's job key, so a light is recomputed when one of them changes.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from darkflow.config import Config
from darkflow.model import FrameMeta, FrameType, GainEstimate, MasterMeta, MasterStatus
from darkflow.pipeline import jobs
from darkflow.pipeline.jobs import GainSource
from darkflow.pipeline.lights import _gain_sources
from darkflow.pipeline.plan import BiasChoice, _Known, light_key

SIG = "cam_b1x1_g100_o10_rm-default_64x64"


def _source(name: str, bias: str | None = "bias-1") -> GainSource:
    return GainSource(
        name,
        f"key-{name}",
        Path(f"/{name}.fits"),
        f"hash-{name}",
        "verified",
        bias,
        None if bias is None else Path(f"/{bias}.fits"),
        None,
    )


def test_the_light_combines_the_gains_of_its_configurations_masters(monkeypatch):
    """Two masters' estimates (30 s and 120 s darks) combined by their uncertainties, the
    disagreement inflating the combined uncertainty; a master that cannot be read is left out."""
    gains = {
        "/m30.fits": GainEstimate(0.96, 0.08, "darks", 13),
        "/m120.fits": GainEstimate(1.22, 0.15, "darks", 13),
    }
    seen = []

    def fake_gain_of(path, master, clip_sigma, bias_path, bias):
        seen.append((str(path), None if bias_path is None else str(bias_path)))
        if str(path) not in gains:
            raise OSError("gone")
        return gains[str(path)]

    monkeypatch.setattr(jobs, "_gain_of", fake_gain_of)
    spec = SimpleNamespace(gain_sources=(_source("m120"), _source("m30", "bias-2"), _source("x")))
    est = jobs._configuration_gain(spec, 3.0)
    assert seen == [
        ("/m120.fits", "/bias-1.fits"),
        ("/m30.fits", "/bias-2.fits"),
        ("/x.fits", "/bias-1.fits"),
    ]
    w1, w2 = 1 / 0.08**2, 1 / 0.15**2
    mean = (0.96 * w1 + 1.22 * w2) / (w1 + w2)
    chi2 = w1 * (0.96 - mean) ** 2 + w2 * (1.22 - mean) ** 2
    assert est is not None and est.source == "darks" and est.n == 26
    assert est.value == pytest.approx(mean)
    assert est.sigma == pytest.approx((w1 + w2) ** -0.5 * chi2**0.5)  # Birge ratio > 1
    assert jobs._configuration_gain(SimpleNamespace(gain_sources=()), 3.0) is None


def _known(name: str, sig: str, night: str = "n1", status=MasterStatus.VERIFIED) -> _Known:
    meta = MasterMeta(
        config_signature=sig, instrument="cam", exptime_s=30.0, temp_c=None, set_temp_c=None,
        n_frames=10,
    )  # fmt: skip
    return _Known(f"{name}-key", "master_dark", meta, Path(f"/{name}.fits"), status, 1.0,
                  f"{name}-hash", night)  # fmt: skip


def test_a_light_measures_its_gain_on_its_configurations_masters_of_its_night():
    from darkflow.io.hashing import short

    meta = FrameMeta(path="/l.fits", frame_type=FrameType.LIGHT, instrument="cam")
    sig = meta.config_signature
    darks = [
        _known("a", sig),
        _known("b", sig),
        _known("other-config", meta.replace(xbin=2, ybin=2).config_signature),
        _known("other-night", sig, night="n0"),
        _known("quarantined", sig, status=MasterStatus.QUARANTINED),
    ]
    bias = BiasChoice("bias-key", Path("/bias.fits"), "n1", darks[0].meta, True, "bias-hash")
    bias_of = {k.key: bias for k in darks}
    recipe = [short("other-night-key")]  # a master of the recipe counts, whatever its night
    sources = _gain_sources(meta, darks, bias_of, "n1", recipe)
    assert [s.key for s in sources] == ["a-key", "b-key", "other-night-key"]
    assert all(s.bias_key == "bias-key" and s.bias_path == Path("/bias.fits") for s in sources)
    # the header's gain: the masters' photon transfer is not used (nor in the light's key)
    assert _gain_sources(meta.replace(egain_e_per_adu=1.2), darks, bias_of, "n1", recipe) == ()


def test_the_light_key_names_the_masters_its_gain_is_measured_on():
    from darkflow.matching import MatchDecision
    from darkflow.model import ScaleMode

    decision = MatchDecision("/l.fits", SIG, "m", ScaleMode.EXPOSURE, 2.0, 0.9)
    recipe = (("m", "key-m", Path("/m.fits"), "verified"),)

    def key(sources=()):
        return light_key(
            "hash",
            recipe=recipe,
            bias="bias-1",
            decision=decision,
            index_fingerprint="f",
            config=Config(),
            gain_sources=sources,
        )

    base = key((_source("m"), _source("n")))
    assert key((_source("m"), _source("n"))) == base
    assert key((_source("m"),)) != base  # a master fewer
    assert key((_source("m"), _source("n", bias="bias-2"))) != base  # measured on another bias
    changed = GainSource("n", "key-n2", Path("/n.fits"), "hash-n2", "verified", "bias-1")
    assert key((_source("m"), changed)) != base  # another master's content changed

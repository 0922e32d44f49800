"""Factories shared by the matching, thermal, scaling and subtraction tests (import explicitly).

``light``/``entry`` build hand-made metadata; ``Camera`` builds noiseless (or lightly noisy)
masters straight from a simulated sensor's truth maps, so every dark model can be checked
against the exact expected dark signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from darkflow.matching import MasterEntry
from darkflow.model import FrameMeta, FrameType, MasterDark, MasterMeta
from darkflow.simulate import SENSOR_PRESETS, make_sensor_truth

T0 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
SIG = "cam-a_b1x1_g100_o50_rm-default_64x96"


def light(**kw) -> FrameMeta:
    base = dict(
        path="/n/light.fits",
        frame_type=FrameType.LIGHT,
        exptime_s=120.0,
        ccd_temp_c=-10.0,
        set_temp_c=-10.0,
        gain_setting=100,
        offset=50,
        instrument="Cam A",
        shape=(64, 96),
        date_obs_utc=T0,
        egain_e_per_adu=0.8,
    )
    base.update(kw)
    return FrameMeta(**base)


def meta(exptime=120.0, temp=-10.0, when=T0, *, sig=None, n=20, set_temp="same", **kw):
    return MasterMeta(
        config_signature=sig or light().config_signature,
        instrument="Cam A",
        exptime_s=exptime,
        temp_c=temp,
        set_temp_c=temp if set_temp == "same" else set_temp,
        n_frames=n,
        date_start_utc=when - timedelta(minutes=10),
        date_end_utc=when + timedelta(minutes=10),
        **kw,
    )


def entry(master_id, *, exptime=120.0, temp=-10.0, when=T0, scalable=False, sig=None, **kw):
    n = kw.pop("n", 20)
    return MasterEntry(master_id, meta(exptime, temp, when, sig=sig, n=n), scalable=scalable, **kw)


@dataclass
class Camera:
    """Masters made from a simulated sensor's truth: ``master(t, T)`` is the expected dark."""

    key: str = "zwo-asi294mc-pro"
    shape: tuple[int, int] = (64, 96)
    seed: int = 3
    noise_adu: float = 0.0  # per-pixel noise added to the masters (seeded)
    changes: dict = field(default_factory=dict)

    def __post_init__(self):
        model = SENSOR_PRESETS[self.key].replace(ny=self.shape[0], nx=self.shape[1], **self.changes)
        self.truth = make_sensor_truth(model, np.random.default_rng(self.seed))
        self.model = model
        self.signature = light(shape=self.shape).config_signature
        self._rng = np.random.default_rng(self.seed + 1)

    def true_dark(self, exptime: float, temp: float) -> np.ndarray:
        return self.truth.true_dark_adu(exptime, temp)

    def master(
        self,
        exptime,
        temp,
        *,
        when=T0,
        n=20,
        kind=FrameType.DARK,
        set_temp="same",
        unc=None,
        temp_spread=0.0,
    ) -> MasterDark:
        data = self.true_dark(exptime, temp if temp is not None else 0.0)
        if self.noise_adu:
            data = data + self._rng.normal(0.0, self.noise_adu, data.shape)
        sigma = unc if unc is not None else max(self.noise_adu, 0.5)
        m = MasterMeta(
            config_signature=self.signature,
            instrument="Cam A",
            exptime_s=exptime,
            temp_c=temp,
            set_temp_c=temp if set_temp == "same" else set_temp,
            n_frames=n,
            date_start_utc=when - timedelta(minutes=10),
            date_end_utc=when + timedelta(minutes=10),
            temp_min_c=None if temp is None else temp - temp_spread / 2,
            temp_max_c=None if temp is None else temp + temp_spread / 2,
            frame_kind=kind,
        )
        shape = data.shape
        return MasterDark(
            data=data.astype(np.float32),
            uncertainty=np.full(shape, sigma, np.float32),
            n_used=np.full(shape, n, np.uint16),
            n_low=np.zeros(shape, np.uint16),
            n_high=np.zeros(shape, np.uint16),
            hot_persistence=np.zeros(shape, np.float32),
            meta=m,
        )

    def bias(self, n=30) -> MasterDark:
        return self.master(0.0, None, kind=FrameType.BIAS, n=n, set_temp=None)

    def light_meta(self, exptime, temp, *, when=T0, **kw) -> FrameMeta:
        return light(
            exptime_s=exptime,
            ccd_temp_c=temp,
            set_temp_c=kw.pop("set_temp_c", temp),
            shape=self.shape,
            date_obs_utc=when,
            **kw,
        )


def library(cam: Camera, specs, *, status=None):
    """``specs``: ``[(master_id, exptime, temp, when), ...]`` → (entries, masters dict)."""
    from darkflow.model import MasterStatus

    masters, entries = {}, []
    for mid, t, temp, when in specs:
        masters[mid] = cam.master(t, temp, when=when)
        entries.append(MasterEntry(mid, masters[mid].meta, status=status or MasterStatus.VERIFIED))
    return entries, masters


def rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))

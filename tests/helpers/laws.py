"""Noisy masters of simulated cameras, for the exposure-law and per-pixel-fit tests (import
explicitly).

``Stack`` draws a camera's fixed maps once (:func:`darkflow.simulate.make_sensor_truth`) and
makes masters as a combine of ``n`` frames would: the true dark (optionally passed through a
non-linear ``response``) plus Gaussian noise of the per-frame variance (read noise and the
dark signal's shot noise) over ``n``, the uncertainty plane holding that standard error, and
a temperature *reading* off the true temperature by ``temp_sigma_c / sqrt(n)`` (what the
linearity test assumes of a reading).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from darkflow.model import FrameType, MasterDark, MasterMeta
from darkflow.simulate import SENSOR_PRESETS, make_sensor_truth

T0 = datetime(2026, 3, 5, 22, 0, tzinfo=UTC)


@dataclass
class Stack:
    key: str = "sbig-stf-8300m"
    shape: tuple[int, int] = (96, 128)
    seed: int = 0
    temp_sigma_c: float = 0.2
    response: Callable[[np.ndarray], np.ndarray] | None = None  # ADU of signal -> ADU read
    changes: dict = field(default_factory=dict)
    signature: str = ""  # the masters' configuration signature (default: made up)

    def __post_init__(self):
        self.model = SENSOR_PRESETS[self.key].replace(
            ny=self.shape[0], nx=self.shape[1], **self.changes
        )
        self.truth = make_sensor_truth(self.model, np.random.default_rng(self.seed))
        self.gain = float(self.model.egain_e_per_adu)
        self.read_adu = float(self.model.read_noise_e) / self.gain
        self.rng = np.random.default_rng(self.seed + 1000)
        self.signature = self.signature or f"stack_{self.key}_{self.shape[0]}x{self.shape[1]}"

    def signal(self, exptime: float, temp: float) -> np.ndarray:
        """The true dark signal (bias removed) in ADU, through the response."""
        s = self.truth.dark_electrons(exptime, temp) / self.gain
        return self.response(s) if self.response is not None else s

    def true_dark(self, exptime: float, temp: float) -> np.ndarray:
        return self.truth.bias_adu.astype(np.float64) + self.signal(exptime, temp)

    def _meta(self, exptime, temp, n, kind, when):
        reading = None
        if temp is not None:
            reading = float(temp + self.rng.normal(0.0, self.temp_sigma_c / np.sqrt(n)))
        return MasterMeta(
            config_signature=self.signature,
            instrument="Stack",
            exptime_s=float(exptime),
            temp_c=reading,
            set_temp_c=None if temp is None else float(round(temp)),
            n_frames=int(n),
            date_start_utc=when - timedelta(minutes=10),
            date_end_utc=when + timedelta(minutes=10),
            frame_kind=kind,
        )

    def master(self, exptime, temp, n=10, *, when=T0) -> MasterDark:
        signal = self.signal(exptime, temp)
        var = self.read_adu**2 + np.maximum(signal, 0.0) / self.gain  # per frame, ADU²
        sigma = np.sqrt(var / n)
        data = self.truth.bias_adu + signal + self.rng.normal(0.0, 1.0, signal.shape) * sigma
        return self._make(data, sigma, self._meta(exptime, temp, n, FrameType.DARK, when), n)

    def bias(self, n=20, *, when=T0) -> MasterDark:
        sigma = np.full(self.shape, self.read_adu / np.sqrt(n))
        data = self.truth.bias_adu + self.rng.normal(0.0, 1.0, self.shape) * sigma
        return self._make(data, sigma, self._meta(0.0, None, n, FrameType.BIAS, when), n)

    @staticmethod
    def _make(data, sigma, meta, n) -> MasterDark:
        shape = data.shape
        return MasterDark(
            data=data.astype(np.float32),
            uncertainty=sigma.astype(np.float32),
            n_used=np.full(shape, n, np.uint16),
            n_low=np.zeros(shape, np.uint16),
            n_high=np.zeros(shape, np.uint16),
            hot_persistence=np.ones(shape, np.float32),
            meta=meta,
        )


def compression(knee_adu: float, slope: float = 0.3) -> Callable[[np.ndarray], np.ndarray]:
    """A response linear up to ``knee_adu``, then rising ``slope`` times as fast."""

    def response(signal: np.ndarray) -> np.ndarray:
        return np.where(signal < knee_adu, signal, knee_adu + slope * (signal - knee_adu))

    return response


def power_law(exponent: float, scale_adu: float = 100.0) -> Callable[[np.ndarray], np.ndarray]:
    """A response ``scale * (signal / scale) ** exponent``: non-linear at every level."""

    def response(signal: np.ndarray) -> np.ndarray:
        return scale_adu * np.power(np.maximum(signal, 0.0) / scale_adu, exponent)

    return response

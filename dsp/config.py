"""The pipeline's settings: every knob of the chain, with the documented defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass

from knotsense.dsp.calibration_models import Calibration
from knotsense.errors import ConfigurationError

__all__ = ["LIVE_BLOCK_S", "PipelineConfig"]

LIVE_BLOCK_S = 0.2  # the processing block live tools use (see PipelineConfig.block)


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of the chain, with the documented defaults (DESIGN.md).

    Attributes:
        release_threshold: release level (N); None disables release detection.
        hold: seconds a release must last (60; 60-90 s is the clinical range).
        gap: dips below the threshold up to this long are bridged (s).
        max_force: the user's maximum (N); None disables overpressure.
        overpressure_time: overpressure needs the level above max for this long (s).
        contact_floor: contact when the level is above this (N).
        rocking_*: band (Hz), swing ``max(min_p2p, rel_p2p * mean)`` and cycle count.
        rocking_source: "total" or "balance" (load moved along the sensor layout).
        detector_rate: rate of the decimated stream the detectors see (Hz).
        level_cutoff: low-pass cutoff for the pressure level (Hz).
        band: band-pass for oscillations (Hz).
        max_gap: a hole in the data longer than this restarts the filters (s);
            shorter holes are bridged by interpolation.
        quality_gap: holes longer than this are counted as gaps in the summary (s).
        spike_*: Hampel window (samples), threshold (MADs) and floor (N).
        positions: channel positions in mm (one row per channel), for the
            centre of pressure and the balance signal.
        motion: with 2-D positions of 2+ channels, measure each rocking
            episode's axis and extent and detect circling (dsp/motion.py).
        circling_min_radius: smallest circling radius that counts (mm).
        saturation: (low, high) input values counted as saturated (counts when
            a calibration is given, N otherwise).
        calibration: raw counts -> N; None when the input is already in N.
        block: live processing block (s). 0 runs the chain on every ``process``
            call; a positive value queues input until it spans this long and
            runs the chain once on all of it, so a stream of small chunks (a
            sample frame is about 10 ms) pays the per-call cost a few times a
            second. Events then come up to ``block`` later; the results are
            the same, since the chain does not depend on chunking. Keep it at
            most 0.2 s for "release reached" within 0.5 s of the hold. Queued
            arrays are kept, not copied: do not refill them in place.
    """

    release_threshold: float | None = None
    hold: float = 60.0
    gap: float = 2.0
    max_force: float | None = None
    overpressure_time: float = 1.0
    contact_floor: float = 5.0
    contact_gap: float = 0.5
    contact_min: float = 0.5
    rocking_min_freq: float = 0.4
    rocking_max_freq: float = 3.0
    rocking_min_p2p: float = 8.0
    rocking_rel_p2p: float = 0.15
    rocking_min_cycles: int = 3
    rocking_source: str = "total"
    detector_rate: float = 25.0
    level_cutoff: float = 1.0
    band: tuple[float, float] = (0.15, 6.0)
    max_gap: float = 0.5
    quality_gap: float = 0.1
    spike_window: int = 5
    spike_sigmas: float = 4.0
    spike_min_jump: float = 5.0
    positions: tuple[tuple[float, ...], ...] | None = None
    motion: bool = True
    circling_min_radius: float = 1.0
    saturation: tuple[float, float] | None = None
    calibration: Calibration | None = None
    block: float = 0.0

    def __post_init__(self) -> None:
        def positive(name: str, value: float | None, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if value is None or not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")

        positive("release threshold", self.release_threshold, allow_none=True)
        positive("max force", self.max_force, allow_none=True)
        for name in ("hold", "overpressure_time", "contact_floor", "detector_rate"):
            positive(name.replace("_", " "), getattr(self, name))
        for name in (
            "level_cutoff",
            "max_gap",
            "quality_gap",
            "rocking_min_freq",
            "circling_min_radius",
        ):
            positive(name.replace("_", " "), getattr(self, name))
        if not (math.isfinite(self.block) and 0 <= self.block <= 1.0):
            raise ConfigurationError(f"block must be 0..1 s, got {self.block!r}")
        if not (math.isfinite(self.gap) and self.gap >= 0):
            raise ConfigurationError(f"gap must be >= 0 s, got {self.gap!r}")
        if (
            self.max_force is not None
            and self.release_threshold is not None
            and self.max_force <= self.release_threshold
        ):
            raise ConfigurationError(
                f"max force {self.max_force} N must be above the release threshold "
                f"{self.release_threshold} N"
            )
        if self.rocking_source not in ("total", "balance"):
            raise ConfigurationError(
                f"rocking source must be total or balance, not {self.rocking_source!r}"
            )
        if self.rocking_source == "balance" and self.positions is None:
            raise ConfigurationError("rocking on the balance needs channel positions")
        if not self.rocking_min_freq < self.rocking_max_freq:
            raise ConfigurationError("rocking min frequency must be below the max frequency")
        if self.rocking_min_cycles < 1:
            raise ConfigurationError("rocking needs at least one cycle")
        if (
            self.rocking_max_freq * 1.1 >= self.detector_rate / 2
            or self.band[1] >= self.detector_rate / 2
        ):
            raise ConfigurationError(
                f"detector rate {self.detector_rate} Hz is too low for rocking up to "
                f"{self.rocking_max_freq} Hz and a band up to {self.band[1]} Hz"
            )

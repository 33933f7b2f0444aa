"""What a pluggable detector sees and provides (see ``Pipeline.extra_detectors``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from knotsense.dsp.detectors.records import Event

FloatArray = NDArray[np.float64]

__all__ = ["BinDetector", "DetectorInput"]


@dataclass(frozen=True)
class DetectorInput:
    """The bins one pipeline step completed, as every detector may want them.

    Attributes:
        t: bin centres (s) on the detector grid (jumps where data were missing).
        total: mean total force per bin (N).
        level: low-passed total (N).
        osc: band-passed rocking signal (N).
        channels: calibrated per-channel means (N), ``(bins, channels)``.
        cop: centre of pressure (mm) when channel positions are known, else None.
    """

    t: FloatArray
    total: FloatArray
    level: FloatArray
    osc: FloatArray
    channels: FloatArray
    cop: FloatArray | None


class BinDetector(Protocol):
    """A streaming detector fed whole bins: same output however the input is chunked."""

    kind: str

    def process_bins(self, bins: DetectorInput) -> list[Event]:
        """Onsets and closed episodes these bins complete."""
        ...

    def finish(self) -> list[Event]:
        """Close what is open at the end of the data."""
        ...

    def reset(self) -> None:
        """Forget everything: a new session."""
        ...

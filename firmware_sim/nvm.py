"""The simulated unit's non-volatile memory: calibration blob and thresholds, in a JSON file.

Without a path the NVM lives in memory only (a fresh unit each run); with
one (``nvm=PATH`` in the URL) it survives reboots and runs, like flash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from knotsense.errors import ConfigurationError
from knotsense.protocol import ChannelWeight, ThresholdFlags, Thresholds

NVM_FORMAT = "knotsense-sim-nvm/1"
DEFAULT_DEBOUNCE_MS = 250
DEFAULT_HOLD_S = 60


def default_thresholds(channels: int) -> Thresholds:
    """Thresholds of a fresh unit: detector disabled, zero weights."""
    return Thresholds(
        ThresholdFlags.NONE,
        DEFAULT_DEBOUNCE_MS,
        DEFAULT_HOLD_S,
        0,
        0,
        0,
        tuple(ChannelWeight(0, 0) for _ in range(channels)),
    )


@dataclass
class Nvm:
    """Non-volatile memory: survives reboots, and runs when ``path`` is set (a JSON file).

    Attributes:
        calibration_id: id of the stored calibration record (0 = none).
        calibration: the calibration record blob (opaque to the device).
        thresholds: the detector configuration, tare zeros included.
        writes: NVM write cycles (for tests and wear figures).
    """

    channels: int
    path: str | None = None
    calibration_id: int = 0
    calibration: bytes = b""
    thresholds: Thresholds | None = None
    writes: int = 0
    serial: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.thresholds is None:
            self.thresholds = default_thresholds(self.channels)
        if self.path and os.path.exists(self.path):
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(Path(self.path).read_text(encoding="utf-8"))
            if data.get("format") != NVM_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, want {NVM_FORMAT!r}")
            calibration = bytes.fromhex(data["calibration"])
            thresholds = Thresholds.decode(bytes.fromhex(data["thresholds"]))
            cal_id = int(data["calibration_id"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"unusable NVM file {self.path}: {exc}") from None
        except Exception as exc:  # MessageError from a corrupt thresholds record
            raise ConfigurationError(f"unusable NVM file {self.path}: {exc}") from None
        if len(thresholds.channels) != self.channels:
            raise ConfigurationError(
                f"NVM file {self.path} is for {len(thresholds.channels)} channels, "
                f"this unit has {self.channels}"
            )
        self.calibration = calibration
        self.calibration_id = cal_id
        self.thresholds = thresholds
        self.writes = int(data.get("writes", 0))

    def commit(self) -> None:
        """Count a write cycle and, with a path, write the file atomically."""
        self.writes += 1
        if not self.path:
            return
        assert self.thresholds is not None
        data = {
            "format": NVM_FORMAT,
            "serial": self.serial,
            "calibration_id": self.calibration_id,
            "calibration": self.calibration.hex(),
            "thresholds": self.thresholds.encode().hex(),
            "writes": self.writes,
        }
        tmp = f"{self.path}.tmp"
        Path(tmp).write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

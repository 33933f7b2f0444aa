"""Event records every detector returns: live onsets and closed episodes (frozen)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = [
    "ContactEpisode",
    "Episode",
    "Event",
    "Onset",
    "OverpressureEpisode",
    "ReleaseEpisode",
    "RockingEpisode",
]


def _r(value: float, nd: int = 4) -> float:
    return round(float(value), nd)


@dataclass(frozen=True)
class Onset:
    """Live notice that an episode is confirmed ("release reached", "rocking").

    Attributes:
        kind: "contact", "release", "overpressure" or "rocking".
        start: when the episode began (s, data time).
        detected_at: when the evidence was complete (s, data time): the latency
            a live user sees is ``detected_at`` minus the true moment.
    """

    kind: str
    start: float
    detected_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": _r(self.start), "detected_at": _r(self.detected_at)}


@dataclass(frozen=True)
class Episode:
    """A closed episode: ``start``/``end`` in data time and when it was closed."""

    kind: ClassVar[str] = ""
    start: float
    end: float
    detected_at: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: kind, start, end, duration and the figures (rounded)."""
        out: dict[str, Any] = {"kind": self.kind}
        for key, value in asdict(self).items():
            out[key] = _r(value) if isinstance(value, float) else value
        out["duration"] = _r(self.duration)
        return out


@dataclass(frozen=True)
class ContactEpisode(Episode):
    """Someone on the knob: level above the contact floor."""

    kind: ClassVar[str] = "contact"
    mean_force: float
    peak_force: float


@dataclass(frozen=True)
class ReleaseEpisode(Episode):
    """Sustained release-level pressure held for at least ``hold`` seconds."""

    kind: ClassVar[str] = "release"
    mean_force: float
    min_force: float
    peak_force: float
    threshold: float


@dataclass(frozen=True)
class OverpressureEpisode(Episode):
    """Level above the user's maximum for longer than the limit (1 s)."""

    kind: ClassVar[str] = "overpressure"
    peak_force: float
    limit: float


@dataclass(frozen=True)
class RockingEpisode(Episode):
    """Deliberate oscillation: dominant frequency, cycles and swing.

    With channel positions known, ``axis`` is the principal direction of the
    centre-of-pressure path (degrees in the device frame, 0 = +x, in [0, 180))
    and ``extent`` its peak-to-peak travel along that axis (mm); else None.
    """

    kind: ClassVar[str] = "rocking"
    frequency: float
    cycles: int
    peak_to_peak: float
    mean_force: float
    axis: float | None = None
    extent: float | None = None


Event = Onset | Episode

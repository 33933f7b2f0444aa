"""Detector parameters for one session: given by the caller, else from the recording.

``knotsense analyze``, ``plot``, ``report`` and ``batch`` build their
:class:`~knotsense.dsp.pipeline.PipelineConfig` here, so one session gives
the same events whichever command analysed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from knotsense.errors import ConfigurationError

__all__ = ["AnalysisOptions", "session_parameter"]


def session_parameter(meta: Mapping[str, Any], name: str) -> Any:
    """A detector parameter the recording carries, or None.

    ``knotsense record`` stores what it analysed with under ``analysis`` in the
    session metadata; a flat key (``release_threshold``) is read too.
    """
    analysis = meta.get("analysis")
    if isinstance(analysis, Mapping) and analysis.get(name) is not None:
        return analysis[name]
    return meta.get(name)


@dataclass(frozen=True)
class AnalysisOptions:
    """What the user asked for; None means "the recording's own value, else the default".

    Attributes mirror the ``analyze`` options (DESIGN.md defaults).
    """

    release_threshold: float | None = None
    hold: float | None = None
    gap: float | None = None
    max_force: float | None = None
    contact_floor: float = 5.0
    rocking_min_freq: float = 0.4
    rocking_max_freq: float = 3.0
    rocking_min_p2p: float = 8.0
    rocking_rel_p2p: float = 0.15
    rocking_min_cycles: int = 3
    positions: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        for name in ("release_threshold", "hold", "max_force"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be > 0, got {value}")
        if self.gap is not None and self.gap < 0:
            raise ConfigurationError(f"--gap must be >= 0 s, got {self.gap}")
        if self.rocking_min_cycles < 1:
            raise ConfigurationError("--rocking-cycles must be >= 1")

    @classmethod
    def from_namespace(cls, args: Any) -> AnalysisOptions:
        """From an argparse namespace with the shared analysis options."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        if hasattr(args, "rocking_cycles"):
            values["rocking_min_cycles"] = args.rocking_cycles
        return cls(**values)

    def config(self, meta: Mapping[str, Any], calibration: Any = None, source: str = "") -> Any:
        """The pipeline config for a session with metadata *meta*.

        Raises:
            ConfigurationError: no release threshold given and none recorded.
        """
        from knotsense.dsp.pipeline import PipelineConfig

        def pick(name: str, default: Any) -> Any:
            given = getattr(self, name)
            if given is not None:
                return given
            recorded = session_parameter(meta, name)
            return default if recorded is None else recorded

        threshold = pick("release_threshold", None)
        if threshold is None:
            where = f"{source}: " if source else ""
            raise ConfigurationError(
                f"{where}no release threshold recorded with the session; give --release-threshold"
            )
        max_force = pick("max_force", None)
        positions = self.positions or _positions(meta.get("positions"))
        return PipelineConfig(
            release_threshold=float(threshold),
            hold=float(pick("hold", 60.0)),
            gap=float(pick("gap", 2.0)),
            max_force=None if max_force is None else float(max_force),
            contact_floor=self.contact_floor,
            rocking_min_freq=self.rocking_min_freq,
            rocking_max_freq=self.rocking_max_freq,
            rocking_min_p2p=self.rocking_min_p2p,
            rocking_rel_p2p=self.rocking_rel_p2p,
            rocking_min_cycles=self.rocking_min_cycles,
            calibration=calibration,
            positions=positions,
        )


def _positions(value: Any) -> tuple[tuple[float, float], ...] | None:
    """Channel positions as the session metadata carries them (``[[x, y], ...]`` mm)."""
    try:
        pos = tuple((float(x), float(y)) for x, y in value)
    except (TypeError, ValueError):
        return None
    return pos or None

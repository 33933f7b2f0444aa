"""Detectors for contact, release, overpressure and rocking (DESIGN.md, "Detection semantics").

One module per kind (``contact``, ``release``, ``overpressure``, ``rocking``),
the interval engine the first three share (``interval``), the event records
(``records``) and the interface of a pluggable detector (``base``). Live, each
detector returns an :class:`Onset` as soon as the evidence is complete and an
:class:`Episode` record when the episode closes; offline analysis is the same
objects fed the whole record, so the records are identical however the input
was chunked.
"""

from knotsense.dsp.detectors.base import BinDetector, DetectorInput
from knotsense.dsp.detectors.contact import ContactDetector
from knotsense.dsp.detectors.interval import IntervalDetector
from knotsense.dsp.detectors.overpressure import OverpressureDetector
from knotsense.dsp.detectors.records import (
    ContactEpisode,
    Episode,
    Event,
    Onset,
    OverpressureEpisode,
    ReleaseEpisode,
    RockingEpisode,
)
from knotsense.dsp.detectors.release import ReleaseDetector
from knotsense.dsp.detectors.rocking import RockingDetector

__all__ = [
    "BinDetector",
    "ContactDetector",
    "ContactEpisode",
    "DetectorInput",
    "Episode",
    "Event",
    "IntervalDetector",
    "Onset",
    "OverpressureDetector",
    "OverpressureEpisode",
    "ReleaseDetector",
    "ReleaseEpisode",
    "RockingDetector",
    "RockingEpisode",
]

"""A recording decoded: samples on one timeline, gaps, events, status, for export and analysis.

:func:`load_session` runs a recording's RX records through the same protocol
decoder a live device uses and builds a :class:`Session`. Where each part lives:

* :mod:`~knotsense.host.session.model` -- :class:`Session`, :class:`TimedMessage`, :class:`Mark`;
* :mod:`~knotsense.host.session.decode` -- records to sample blocks and timed messages;
* :mod:`~knotsense.host.session.timeline` -- device time to host time, per epoch;
* :mod:`~knotsense.host.session.load` -- unwrapping, epochs, samples, forces: :func:`load_session`;
* :mod:`~knotsense.host.session.metadata` -- device info and calibration from the metadata;
* :mod:`knotsense.host.gaps` -- the :class:`Gap` record and its cause (shared with the live client).
"""

from knotsense.host.gaps import Gap, GapReason
from knotsense.host.session.load import REBOOT_TOLERANCE_S, load_session
from knotsense.host.session.metadata import calibration_from_metadata, device_info_from_dict
from knotsense.host.session.model import Mark, Session, TimedMessage

__all__ = [
    "REBOOT_TOLERANCE_S",
    "Gap",
    "GapReason",
    "Mark",
    "Session",
    "TimedMessage",
    "calibration_from_metadata",
    "device_info_from_dict",
    "load_session",
]

"""Pacing a recording for replay: when each record would have arrived.

:func:`iter_replay` yields ``(delay_s, record)`` pairs: sleep *delay_s*, then
deliver *record* (a transport hands RX bytes to the same decoder a device's
bytes go to). Delays follow the recorded host receive times divided by
*speed*; ``speed=None`` yields every record with zero delay (as fast as
possible). The generator never sleeps itself, so async and sync transports
can both use it.
"""

from __future__ import annotations

from collections.abc import Iterator

from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.recording import MetaRecord, Record, SessionReader

__all__ = ["iter_replay"]


def iter_replay(
    reader: SessionReader,
    speed: float | None = 1.0,
    start_s: float = 0.0,
    loop: bool = False,
    kinds: tuple[type[Record], ...] = (),
) -> Iterator[tuple[float, Record]]:
    """Records of *reader* with the delay to wait before each.

    Args:
        reader: an open recording.
        speed: 1.0 live pace, 2.0 twice as fast ...; None: no waiting.
        start_s: seek: skip records received before this many seconds after
            the session start. The metadata (META records) before it is still
            yielded, with zero delay, so a consumer knows the device.
        loop: start again from *start_s* after the last record (forever).
        kinds: only these record classes (default all: META, RX, TX, MARK, END).

    The first record (after a seek or a loop restart) has delay 0; a delay is
    never negative even when recorded host times step backwards.

    Raises:
        ConfigurationError: *speed* is not positive or *start_s* is negative.
        SessionFileError: *start_s* is past the end of the recording.
    """
    if speed is not None and not speed > 0:
        raise ConfigurationError(f"replay speed must be > 0, got {speed}")
    if start_s < 0:
        raise ConfigurationError(f"replay start must be >= 0 s, got {start_s}")
    origin = reader.start_time
    if start_s > 0 and origin + start_s > reader.end_time:
        raise SessionFileError(
            f"{reader.path}: cannot seek to {start_s:g} s, the session lasts "
            f"{reader.end_time - origin:.1f} s"
        )

    while True:
        previous: float | None = None
        yielded = False
        for record in reader:
            seeking = record.host_time - origin < start_s
            if seeking and not isinstance(record, MetaRecord):
                continue
            if kinds and not isinstance(record, kinds):
                continue
            if seeking or previous is None or speed is None:
                delay = 0.0
            else:
                delay = max(0.0, (record.host_time - previous) / speed)
            if not seeking:
                previous = record.host_time
            yielded = True
            yield delay, record
        if not loop or not yielded:
            return

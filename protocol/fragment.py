"""The BLE link layer of protocol v1.1: frames that span notifications.

A v1.0 packet link carries one frame per notification or write, so a frame
must fit ATT MTU - 3 bytes (20 at the default MTU 23). A v1.1 device offers
the *link* characteristic (``gatt.LINK_CHAR_UUID``); when it is present, every
notification and write on the data and control characteristics carries one
**fragment**: a one-byte header and 1 .. ATT MTU - 4 bytes of a frame::

    bit   7      6      5..4       3..0
        +------+------+----------+-----------+
        | S    | E    | reserved | counter   |   header byte, then the frame's bytes
        +------+------+----------+-----------+
    S  start: the first fragment of a frame
    E  end:   the last fragment of a frame (S and E both set: the whole frame)
    reserved: sent as 0, ignored on receipt
    counter:  +1 per fragment (mod 16), one counter per characteristic and
              direction, from 0 at every connection

The frames are ordinary v1 frames (header, payload, CRC: frame.py) of up to
``MAX_FRAME_SIZE`` bytes whatever the MTU; a sender sends a frame's fragments
back to back on one characteristic. A receiver (:class:`Reassembler`) counts
a counter gap as lost fragments, drops the frame it was rebuilding, and
resynchronises at the next start fragment; a frame is only ever delivered
whole, and its CRC is checked after reassembly as for any frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from knotsense.protocol.frame import MAX_FRAME_SIZE

START = 0x80
END = 0x40
COUNTER_MASK = 0x0F
FRAGMENT_HEADER_SIZE = 1
ATT_OVERHEAD = 3
"""ATT opcode and handle in front of every notification or write."""
LINK_VERSION_FRAGMENTS = 1
"""Value of the link characteristic for this link layer."""
MIN_V1_ATT_MTU = 103
"""The smallest ATT MTU a v1.0 (one frame per packet) link is usable at: a 100-byte
frame holds the DeviceInfo and Status of a typical device (docs/protocol.md 6)."""


def fragment_payload_size(att_mtu: int) -> int:
    """Frame bytes one fragment carries at *att_mtu* (MTU - 3 - 1, at least 19)."""
    return max(23, att_mtu) - ATT_OVERHEAD - FRAGMENT_HEADER_SIZE


def fragments_per_frame(frame_size: int, att_mtu: int) -> int:
    """How many notifications a frame of *frame_size* bytes needs at *att_mtu*."""
    return max(1, math.ceil(frame_size / fragment_payload_size(att_mtu)))


class Fragmenter:
    """Cuts frames into fragments for one characteristic and direction.

    Args:
        att_mtu: the negotiated ATT MTU (settable when it changes).
    """

    def __init__(self, att_mtu: int = 23) -> None:
        self.att_mtu = att_mtu
        self.counter = 0

    def reset(self) -> None:
        """A new connection: the counter starts at 0 again."""
        self.counter = 0

    def split(self, frame: bytes) -> list[bytes]:
        """The fragments of one frame, in order (none for empty input: frames never are)."""
        size = fragment_payload_size(self.att_mtu)
        pieces = [frame[i : i + size] for i in range(0, len(frame), size)]
        out: list[bytes] = []
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            header = (START if i == 0 else 0) | (END if i == last else 0) | self.counter
            self.counter = (self.counter + 1) & COUNTER_MASK
            out.append(bytes([header]) + piece)
        return out


@dataclass
class FragmentStats:
    """What a :class:`Reassembler` has seen; counters only grow until ``reset``.

    Attributes:
        fragments: packets fed.
        frames: frames rebuilt and handed on.
        fragments_lost: fragments missing by the counter (gaps of 1..7).
        reordered: fragments that came late (counter 8..15 behind).
        frames_dropped: partial frames abandoned (a fragment lost, a new start).
        orphans: continue/end fragments with no frame being rebuilt (discarded).
        oversize: rebuilt frames that grew past MAX_FRAME_SIZE (dropped).
        malformed: packets too short to hold a header and one byte.
        bytes_discarded: frame bytes that did not reach a rebuilt frame.
    """

    fragments: int = 0
    frames: int = 0
    fragments_lost: int = 0
    reordered: int = 0
    frames_dropped: int = 0
    orphans: int = 0
    oversize: int = 0
    malformed: int = 0
    bytes_discarded: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return dict(vars(self))


class Reassembler:
    """Rebuilds frames from the fragments of one characteristic (section 6.2 of the spec).

    ``feed`` never raises: broken input is counted in :attr:`stats` and the
    receiver is back in step at the next start fragment.
    """

    def __init__(self) -> None:
        self.stats = FragmentStats()
        self._partial: bytearray | None = None
        self._expected: int | None = None

    def reset(self) -> None:
        """Forget everything (a new connection), counters included."""
        self.stats = FragmentStats()
        self._partial = None
        self._expected = None

    def restart(self) -> None:
        """A new connection: drop a partial frame (counted) but keep the counters."""
        self._drop()
        self._expected = None

    @property
    def buffered(self) -> int:
        """Bytes of the frame being rebuilt (never more than MAX_FRAME_SIZE)."""
        return 0 if self._partial is None else len(self._partial)

    def _drop(self) -> None:
        if self._partial is not None:
            self.stats.frames_dropped += 1
            self.stats.bytes_discarded += len(self._partial)
            self._partial = None

    def feed(self, packet: bytes | bytearray | memoryview) -> bytes | None:
        """One notification or write; returns the frame it completes, else None."""
        stats = self.stats
        stats.fragments += 1
        if len(packet) < FRAGMENT_HEADER_SIZE + 1:
            stats.malformed += 1
            return None
        header = packet[0]
        counter = header & COUNTER_MASK
        if self._expected is not None and counter != self._expected:
            d = (counter - self._expected) & COUNTER_MASK
            if d < 8:
                stats.fragments_lost += d
            else:
                stats.reordered += 1
            self._drop()
        self._expected = (counter + 1) & COUNTER_MASK
        body = packet[FRAGMENT_HEADER_SIZE:]
        if header & START:
            self._drop()
            self._partial = bytearray(body)
        elif self._partial is None:
            stats.orphans += 1
            stats.bytes_discarded += len(body)
            return None
        else:
            self._partial += body
        if len(self._partial) > MAX_FRAME_SIZE:
            stats.oversize += 1
            stats.bytes_discarded += len(self._partial)
            self._partial = None
            return None
        if header & END:
            frame = bytes(self._partial)
            self._partial = None
            stats.frames += 1
            return frame
        return None


def link_capacity(att_mtu: int, connection_interval_s: float, packets_per_event: int) -> float:
    """Frame bytes per second a fragmented link carries (notifications x fragment size)."""
    return packets_per_event / connection_interval_s * fragment_payload_size(att_mtu)


def stream_notifications_per_second(
    rate_hz: int, channels: int, encoding: int, att_mtu: int, max_block_s: float = 0.1
) -> float:
    """Notifications a stream needs per second on a fragmented link.

    Blocks hold what fits MAX_FRAME_SIZE and at most *max_block_s* of samples
    (as the spec's packetiser rule, section 9.3); each block takes
    :func:`fragments_per_frame` notifications.
    """
    from knotsense.protocol.frame import FRAME_OVERHEAD
    from knotsense.protocol.messages import SampleBlock

    per_block = max(
        1,
        min(
            SampleBlock.max_samples(MAX_FRAME_SIZE, channels, encoding),
            int(rate_hz * max_block_s),
        ),
    )
    frame = FRAME_OVERHEAD + SampleBlock.HEAD_SIZE + per_block * channels * encoding
    return rate_hz / per_block * fragments_per_frame(frame, att_mtu)

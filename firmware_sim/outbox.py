"""The device's outbox: messages and sample blocks waiting for their send time.

Everything the simulated firmware says is queued with the host time it
leaves at and a priority (the order of items that leave at the same
instant); the transmit path (:mod:`~knotsense.firmware_sim.transmit`) sends
them in (time, priority, creation) order. Messages are built when sent, so a
Status carries the frame counters of that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from knotsense.protocol import Message

# Order of items that leave at the same instant.
PRIO_RESPONSE, PRIO_INFO, PRIO_EVENT, PRIO_STATUS, PRIO_CONFIG, PRIO_BLOCK = range(6)


@dataclass
class QueuedMessage:
    """A message due at host time ``time``; ``ctr`` orders items created at the same instant."""

    time: float
    prio: int
    ctr: int
    build: Callable[[int, int], Message]
    """Builds the message from (frames_sent, frames_dropped) at the moment it is sent."""


@dataclass
class BlockBatch:
    """A batch of sample blocks of one layout."""

    ctr: int
    times: np.ndarray
    t_first_us: np.ndarray
    sample_index: np.ndarray
    samples: np.ndarray
    saturated: np.ndarray
    fault: np.ndarray
    period_ns: int
    mask: int
    encoding: int
    flags: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.flags is None:
            self.flags = np.zeros(self.times.size, dtype=np.uint8)


class Outbox:
    """Mixin of :class:`~knotsense.firmware_sim.device.SimulatedDevice`: the queue itself."""

    _ctr: int
    _msgs: list[QueuedMessage]
    _blocks: list[BlockBatch]

    def _queue(self, time: float, prio: int, message: Message) -> None:
        self._ctr += 1
        self._msgs.append(QueuedMessage(time, prio, self._ctr, lambda _s, _d, m=message: m))

    def _queue_build(self, time: float, prio: int, build: Callable[[int, int], Message]) -> None:
        self._ctr += 1
        self._msgs.append(QueuedMessage(time, prio, self._ctr, build))

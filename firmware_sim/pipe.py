"""The in-process byte link of ``sim://``: a simulated device behind read/write calls, no threads.

Pacing:

* ``speed=None`` (as fast as possible): every :meth:`SimPipe.read` advances the
  device by *step_s* (default :data:`VIRTUAL_STEP_S`, 20 ms) of host time,
  whatever the timeout, so a run is deterministic and never sleeps. Larger
  steps cost less per simulated second; smaller ones answer commands sooner.
* ``speed=X``: the device follows ``clock() * X``; a read returns what is due
  now, or waits (with *sleep*, in small steps) up to *timeout* seconds for
  something to be due.

While a ``link_drop`` fault holds the link down, :meth:`read` and
:meth:`write` raise :class:`~knotsense.errors.LinkLostError`; time still
advances, and once the link is back they work again (data sent meanwhile is
lost, as on a real link). Data sent before a drop that starts inside a read's
step is delivered by that read; the next one reports the drop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from knotsense.errors import LinkLostError, SimulationError
from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.device import SimulatedDevice
from knotsense.protocol import Framing

VIRTUAL_STEP_S = 0.020
POLL_S = 0.005


class SimPipe:
    """A simulated device as a byte link (see the module docstring)."""

    def __init__(
        self,
        config: SimConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        step_s: float = VIRTUAL_STEP_S,
    ) -> None:
        if not step_s > 0:
            raise SimulationError(f"virtual step must be > 0 s, got {step_s}")
        self.config = config
        self.step_s = step_s
        self.device = SimulatedDevice(config)
        self._clock = clock
        self._sleep = sleep
        self._t0 = clock()
        self._closed = False

    @property
    def framing(self) -> Framing:
        return self.config.framing

    def _check(self) -> None:
        if self._closed:
            raise SimulationError("the simulator pipe is closed")

    def write(self, data: bytes) -> None:
        """Send host bytes (a COBS stream, or one frame for PACKET framing)."""
        self._check()
        if not self.device.link_up:
            raise LinkLostError("simulated link is down (link_drop fault)")
        self.device.host_write(bytes(data))

    def _target(self) -> float:
        speed = self.config.speed
        assert speed is not None
        return max(self.device.now, (self._clock() - self._t0) * speed)

    def read(self, timeout: float = 0.0) -> bytes | list[bytes]:
        """What the device sent since the last read: bytes (STREAM) or a list of packets."""
        self._check()
        if self.config.speed is None:
            out = self.device.run_until(self.device.now + self.step_s)
        else:
            deadline = self._clock() + max(0.0, timeout)
            while True:
                out = self.device.run_until(self._target())
                if out or not self.device.link_up:
                    break
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._sleep(min(POLL_S, left))
        if not out and not self.device.link_up:
            raise LinkLostError("simulated link is down (link_drop fault)")
        # What the device sent before a drop that began inside this step arrived:
        # deliver it now; the next read reports the drop.
        if self.config.framing is Framing.PACKET:
            return out
        return b"".join(out)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> SimPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

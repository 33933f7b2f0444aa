"""``sim://``: the simulated device in-process, over a byte pipe (no threads, no pty).

With ``speed`` unset the simulator runs as fast as the host reads; with
``speed=X`` it is paced at X times the wall clock. Either way received data is
stamped with the simulator's virtual clock (:meth:`Transport.clock`), so the
session's timeline is the simulated device's time.
"""

from __future__ import annotations

import asyncio
import time

from knotsense.errors import LinkLostError
from knotsense.host.transports.base import Transport

POLL_S = 0.005
VIRTUAL_STEP_S = 0.1
"""Device time per read when running as fast as possible: large enough that the
simulator's per-call cost stays small, small enough that commands answer quickly."""
RECONNECT_WINDOW_S = 60.0
"""Virtual seconds a reopen waits for a dropped simulated link to come back."""


class SimTransport(Transport):
    """The in-process simulator behind :class:`knotsense.firmware_sim.pipe.SimPipe`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from knotsense.firmware_sim.config import SimConfig

        self.config = SimConfig.from_url(url)
        self.framing = self.config.framing
        self.paced_by_reader = self.config.speed is None
        self.max_frame_size = self.config.max_frame_size
        self._pipe = None
        self._held: list[bytes] = []

    @property
    def simulated_device(self):
        """The simulated device behind the pipe, once open."""
        return None if self._pipe is None else self._pipe.device

    async def open(self) -> None:
        if self._pipe is None:
            from knotsense.firmware_sim.pipe import SimPipe

            self._pipe = SimPipe(self.config, step_s=VIRTUAL_STEP_S)
            self._sim_epoch = time.time()

    async def close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

    async def reopen(self) -> None:
        """Wait, on the simulator's clock, for a dropped link to come back."""
        pipe = self._require()
        start = pipe.device.now
        while True:
            try:
                self._held += self._as_list(pipe.read(0.0))
                return
            except LinkLostError:
                if pipe.device.now - start > RECONNECT_WINDOW_S:
                    raise
                if self.config.speed is not None:
                    await asyncio.sleep(POLL_S)

    def _require(self):
        if self._pipe is None:
            raise LinkLostError("simulator is not open")
        return self._pipe

    def _as_list(self, data: bytes | list[bytes]) -> list[bytes]:
        if isinstance(data, list):
            return [bytes(d) for d in data if d]
        return [bytes(data)] if data else []

    async def send(self, frame: bytes) -> None:
        self._require().write(frame)

    async def receive(self, timeout: float) -> list[bytes]:
        pipe = self._require()
        if self._held:
            held, self._held = self._held, []
            return held
        deadline = time.monotonic() + timeout
        while True:
            out = self._as_list(pipe.read(0.0))
            if out:
                return out
            if time.monotonic() >= deadline:
                return []
            # As fast as possible: yield to other tasks; paced: wait for data to be due.
            await asyncio.sleep(0 if self.config.speed is None else POLL_S)

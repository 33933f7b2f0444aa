"""Shared helpers of the simulator tests: drive a device, decode what it sends."""

from __future__ import annotations

from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.device import SimulatedDevice
from knotsense.protocol import (
    Command,
    CommandBody,
    DecodedFrame,
    Encoder,
    Framing,
    PacketDecoder,
    Response,
    StreamDecoder,
)


class Host:
    """A minimal host: numbers commands, decodes everything the device sends."""

    def __init__(self, config: SimConfig | None = None, **kwargs) -> None:
        self.config = config or SimConfig(**kwargs)
        self.device = SimulatedDevice(self.config)
        packet = self.config.framing is Framing.PACKET
        self.encoder = Encoder(self.config.framing)
        self.decoder = PacketDecoder() if packet else StreamDecoder()
        self.frames: list[DecodedFrame] = []
        self.raw: list[bytes] = []
        self._rid = 0

    def send(self, body: CommandBody, request_id: int | None = None) -> int:
        if request_id is None:
            self._rid += 1
            request_id = self._rid
        self.device.host_write(self.encoder.encode(Command(request_id, body)))
        return request_id

    def run(self, t: float, step: float = 0.25) -> list[DecodedFrame]:
        new: list[DecodedFrame] = []
        now = self.device.now
        while now < t:
            now = min(t, now + step)
            for item in self.device.run_until(now):
                self.raw.append(item)
                new += self.decoder.feed(item)
        self.frames += new
        return new

    def response(self, request_id: int, within: float = 1.0) -> Response:
        deadline = self.device.now + within
        while True:
            for f in self.frames:
                if isinstance(f.message, Response) and f.message.request_id == request_id:
                    return f.message
            if self.device.now >= deadline:
                raise AssertionError(f"no response to request {request_id}")
            self.run(self.device.now + 0.05, step=0.05)

    def messages(self, cls: type) -> list:
        return [f.message for f in self.frames if isinstance(f.message, cls)]

"""The device under test: what a device URL points at, and a client that drives it.

:class:`Target` classifies a device URL (simulator path, serial, BLE, replay)
and derives sibling simulator URLs for the fault-injection tests;
:class:`Client` is a connected :class:`~knotsense.host.device.AsyncDevice` on
an event loop of its own (a daemon thread), with the blocking facade
:class:`~knotsense.host.sync.Device` on top and :meth:`Client.run` for the
raw, asynchronous work the tests need (raw frames, the stream).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from knotsense.host.device import AsyncDevice
from knotsense.host.sync import Device, LoopThread
from knotsense.host.transports import scheme_of
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

T = TypeVar("T")
SIM_SCHEMES = ("sim", "sim+pty", "sim+ble", "sim+bumble")
DEFAULT_DEVICE = "sim://?scenario=calibration_bench&seed=1"


@dataclass(frozen=True)
class Target:
    """What a device URL points at (see DESIGN.md, "Device URLs")."""

    url: str

    @property
    def scheme(self) -> str:
        """The transport registry key: serial, ble, bumble, sim, sim+pty, sim+ble, ..."""
        return scheme_of(self.url)

    @property
    def is_sim(self) -> bool:
        return self.scheme in SIM_SCHEMES

    @property
    def is_replay(self) -> bool:
        return self.scheme == "replay"

    @property
    def is_hardware(self) -> bool:
        """A real board (serial port, pyserial URL or BLE)."""
        return self.scheme in ("serial", "ble", "bumble")

    @property
    def is_ble(self) -> bool:
        return self.scheme in ("ble", "sim+ble", "bumble", "sim+bumble")

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query.replace("+", "%2B"), keep_blank_values=True))

    @property
    def virtual_time(self) -> bool:
        """An unpaced simulator: it runs as fast as it is read, so the wall clock means little."""
        return self.is_sim and self.query.get("speed", "").lower() in ("", "max", "none", "0")

    @property
    def host_clock_meaningful(self) -> bool:
        """Whether host arrival times can be compared with device time (jitter, clock ppm).

        True on hardware, on ``sim://`` unpaced (it stamps arrivals with its virtual
        clock) and on simulators paced at real time (``speed=1``).
        """
        if not self.is_sim:
            return True
        if self.scheme == "sim" and self.virtual_time:
            return True
        try:
            return float(self.query.get("speed", "0")) == 1.0
        except ValueError:
            return False

    @property
    def has_faults(self) -> bool:
        """The URL itself injects faults: the link is not clean."""
        return self.is_sim and bool(self.query.get("faults"))

    @property
    def label(self) -> str:
        if self.is_sim:
            return {
                "sim": "simulator, in-process byte link",
                "sim+pty": "simulator behind a pty",
                "sim+bumble": "simulator as a Bumble peripheral (real BLE stack)",
            }.get(self.scheme, "simulator behind the bleak backend")
        labels = {"serial": "serial port", "ble": "BLE", "bumble": "BLE through Bumble"}
        return {**labels, "replay": "recorded session"}.get(self.scheme, self.scheme)

    def derive(self, tag: int = 0, **params: str | None) -> str:
        """A sibling simulator URL: same scheme and query, with *params* set (None removes).

        On ``sim+ble`` the sibling gets an address of its own (*tag* picks it), so it
        never replaces the session's peripheral on the virtual radio.
        """
        if not self.is_sim:
            raise ValueError(f"{self.url!r} is not a simulator URL")
        query = self.query
        for key, value in params.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = value
        if self.scheme in ("sim+ble", "sim+bumble"):
            query["address"] = f"F0:4B:53:48:49:{tag & 0xFF:02X}"
        text = urlencode(query, safe=":/,@")
        return f"{self.scheme}://?{text}"


def sim_device(adev: AsyncDevice) -> Any | None:
    """The in-process :class:`SimulatedDevice` behind a connected client, if there is one."""
    return adev.transport.simulated_device


class RawTap:
    """Decodes a copy of everything received (the ``on_raw`` hook) into frames.

    The client answers its own requests and drops responses nobody waits for;
    the tap sees every frame, so a test can check request ids and unsolicited
    replies to raw frames it sent itself.
    """

    def __init__(self, framing: Framing) -> None:
        self.decoder: StreamDecoder | PacketDecoder = (
            StreamDecoder() if framing is Framing.STREAM else PacketDecoder()
        )
        self.frames: list[tuple[float, DecodedFrame]] = []
        self.sent: list[tuple[float, bytes]] = []

    def __call__(self, direction: str, data: bytes, at: float) -> None:
        if direction == "tx":
            self.sent.append((at, data))
            return
        for frame in self.decoder.feed(data):
            self.frames.append((at, frame))

    def responses(self) -> list[Response]:
        return [f.message for _, f in self.frames if isinstance(f.message, Response)]


class Client:
    """A connected device for the tests: async core on its own loop, blocking facade on top."""

    def __init__(self, target: Target, adev: AsyncDevice, runner: LoopThread) -> None:
        self.target = target
        self.adev = adev
        self.runner = runner
        self.device = Device(adev, runner)  # type: ignore[arg-type]
        self.tap = RawTap(adev.transport.framing)
        adev.on_raw = self.tap
        self._raw_seq = 0x4000

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> Client:
        """Connect to *url* (kwargs go to AsyncDevice)."""
        runner = LoopThread()
        try:
            adev = runner.run(AsyncDevice.connect(url, **kwargs), 120.0)
        except BaseException:
            runner.stop()
            raise
        return cls(Target(url), adev, runner)

    def run(
        self, make: Callable[[AsyncDevice], Coroutine[Any, Any, T]], timeout: float = 120.0
    ) -> T:
        """Run ``make(adev)`` on the client's loop and wait for its result."""
        return self.runner.run(make(self.adev), timeout)

    @property
    def sim(self) -> Any | None:
        """The in-process simulated device, when the target is one."""
        return sim_device(self.adev)

    def send_raw(self, frame: bytes) -> None:
        """Send an already encoded frame through the transport, bypassing the client."""
        self.run(lambda adev: adev.transport.send(frame), 10.0)

    def next_seq(self) -> int:
        """A fresh sequence number for a raw frame (a device may drop a repeated one)."""
        self._raw_seq = (self._raw_seq + 1) & 0xFFFF
        return self._raw_seq

    def encode(self, request_id: int, body: CommandBody) -> bytes:
        """A command frame as this link carries it (COBS-stuffed on byte streams)."""
        encoder = Encoder(self.adev.transport.framing, first_seq=self.next_seq())
        return encoder.encode(Command(request_id, body))

    def close(self) -> None:
        try:
            self.runner.run(self.adev.close(), 30.0)
        finally:
            self.runner.stop()

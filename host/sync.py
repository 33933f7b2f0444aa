"""A blocking facade over :class:`~knotsense.host.device.AsyncDevice`, for scripts and notebooks.

The async device runs on an event loop in a background thread; each method
here submits a coroutine there and waits for it::

    from knotsense.host.sync import Device

    with Device.connect("sim://?scenario=back_session&seed=3") as dev:
        print(dev.get_info().serial_number)
        dev.start_stream(rate_hz=250)
        for item in dev.stream(duration=5):
            ...
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import Any, Self, TypeVar

from knotsense.errors import DeviceTimeoutError
from knotsense.host.device import AsyncDevice, StreamItem
from knotsense.protocol import DeviceInfo, Encoding, Status, StreamConfig, TareResult, Thresholds

T = TypeVar("T")
SLACK_S = 30.0
"""Extra seconds a blocking call waits beyond the device's own timeouts."""


class LoopThread:
    """An asyncio event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="knotsense-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise DeviceTimeoutError(f"no result within {timeout:g} s") from None

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self.loop.close()


class Device:
    """Blocking device client; see the module docstring."""

    def __init__(self, device: AsyncDevice, runner: LoopThread) -> None:
        self._device = device
        self._runner = runner

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> Device:
        """Connect to the device at *url* (any device URL); kwargs go to AsyncDevice."""
        runner = LoopThread()
        try:
            device = runner.run(AsyncDevice.connect(url, **kwargs))
        except BaseException:
            runner.stop()
            raise
        return cls(device, runner)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        limit = self._device.command_timeout * (self._device.retries + 1) + SLACK_S
        return self._runner.run(coro, limit)

    @property
    def async_device(self) -> AsyncDevice:
        """The device underneath (for use from the loop thread only)."""
        return self._device

    @property
    def info(self) -> DeviceInfo | None:
        return self._device.info

    @property
    def stats(self) -> dict[str, int]:
        return self._device.stats

    def close(self) -> None:
        try:
            self._runner.run(self._device.close(), SLACK_S)
        finally:
            self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def ping(self, data: bytes = b"") -> float:
        return self._call(self._device.ping(data))

    def get_info(self) -> DeviceInfo:
        return self._call(self._device.get_info())

    def get_status(self) -> Status:
        return self._call(self._device.get_status())

    def configure_stream(
        self,
        rate_hz: int,
        channels: Sequence[int] | int | None = None,
        encoding: Encoding | int | None = None,
    ) -> StreamConfig:
        return self._call(self._device.configure_stream(rate_hz, channels, encoding))

    def start_stream(
        self,
        rate_hz: int | None = None,
        channels: Sequence[int] | int | None = None,
        encoding: Encoding | int | None = None,
    ) -> StreamConfig:
        return self._call(self._device.start_stream(rate_hz, channels, encoding))

    def stop_stream(self) -> None:
        self._call(self._device.stop_stream())

    def tare(self, channels: Sequence[int] | int | None = None, n_samples: int = 0) -> TareResult:
        return self._call(self._device.tare(channels, n_samples))

    def read_calibration(self) -> tuple[int, bytes]:
        return self._call(self._device.read_calibration())

    def write_calibration(self, blob: bytes, calibration_id: int) -> None:
        self._call(self._device.write_calibration(blob, calibration_id))

    def read_thresholds(self) -> Thresholds:
        return self._call(self._device.read_thresholds())

    def write_thresholds(self, thresholds: Thresholds) -> Thresholds:
        return self._call(self._device.write_thresholds(thresholds))

    def reboot(self) -> None:
        self._call(self._device.reboot())

    def stream(
        self, duration: float | None = None, idle_timeout: float = 5.0
    ) -> Iterator[StreamItem]:
        """Items as they arrive, for *duration* seconds of wall time (None: until it ends).

        Stops after *idle_timeout* seconds with nothing arriving.
        """
        agen = self._device.stream(timeout=idle_timeout)
        end = None if duration is None else time.monotonic() + duration
        try:
            while end is None or time.monotonic() < end:
                try:
                    yield self._runner.run(agen.__anext__(), idle_timeout + SLACK_S)
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(agen.aclose(), SLACK_S)

"""The device client: commands, streaming, time mapping, loss and reconnect.

:class:`AsyncDevice` is the core (bleak is async); :class:`knotsense.host.sync.Device`
is the thin blocking facade for scripts and notebooks. Over any transport::

    async with await AsyncDevice.connect("sim://?scenario=back_session&seed=3") as dev:
        info = await dev.get_info()
        await dev.start_stream(rate_hz=250)
        async for item in dev.stream():
            if isinstance(item, Samples):
                print(item.host_s[-1], item.raw[-1])

A reader task owns the link: it decodes what arrives, answers pending
commands by request id, turns sample blocks into :class:`Samples` on a
continuous timeline, marks every loss as a :class:`Gap`, and when the link
drops it reconnects with backoff and resumes streaming into the same session.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import numpy as np

from knotsense.errors import (
    CommandError,
    DeviceTimeoutError,
    EndOfData,
    KnotsenseError,
    LinkLostError,
    LinkTooSmallError,
    TransportError,
)
from knotsense.host.clock import ClockMapper, DeviceClock
from knotsense.host.gaps import Gap, gap_reason
from knotsense.host.transports import Transport, make_transport
from knotsense.protocol import (
    UNREADABLE_REQUEST_ID,
    BlockFlags,
    CalibrationChunk,
    Command,
    CommandBody,
    CommitCalibration,
    DecodedFrame,
    DeviceEvent,
    DeviceInfo,
    Encoder,
    Encoding,
    EventCode,
    Framing,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    Message,
    PacketDecoder,
    Ping,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    Response,
    SampleBlock,
    SetStreamConfig,
    StartStream,
    Status,
    StatusCode,
    StopStream,
    StreamConfig,
    StreamDecoder,
    Tare,
    TareResult,
    Thresholds,
    WriteCalibration,
    WriteThresholds,
    crc16,
)

log = logging.getLogger(__name__)
R = TypeVar("R")
RawHook = Callable[[str, bytes, float], None]
"""Called with ("rx" | "tx", bytes, host time) for every chunk that crosses the link."""


@dataclass(frozen=True, eq=False)
class Samples:
    """One sample block placed on the session timeline.

    Attributes:
        seq: frame sequence number.
        sample_index: index of the first sample since the stream started (u32, as sent).
        device_us: per-sample device time, microseconds, unwrapped (int64).
        host_s: per-sample host time (unix seconds), mapped with drift correction.
        raw: (n, channels) int32 ADC counts of the streamed channels.
        channel_mask: which channels ``raw`` holds, in order.
        saturated_mask, fault_mask: channels that saturated or faulted in this block.
        received_at: host time the block arrived.
    """

    seq: int
    sample_index: int
    device_us: np.ndarray
    host_s: np.ndarray
    raw: np.ndarray
    channel_mask: int
    saturated_mask: int
    fault_mask: int
    received_at: float


@dataclass(frozen=True)
class LinkChange:
    """The link went down ("lost"), came back ("restored"), or the device rebooted."""

    kind: str
    at: float
    detail: str = ""


@dataclass(frozen=True)
class Notice:
    """A device message that is not a sample block (event, status, log, info ...)."""

    message: Message
    received_at: float


StreamItem = Samples | Gap | LinkChange | Notice


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try when the link drops: exponential backoff, then give up."""

    first_delay_s: float = 0.1
    max_delay_s: float = 2.0
    give_up_after_s: float = 30.0


@dataclass
class LinkStats:
    """What happened on the link, beside the decoder's own counters."""

    reconnects: int = 0
    link_losses: int = 0
    reboots: int = 0
    gaps: int = 0
    samples_lost: int = 0
    commands: int = 0
    command_retries: int = 0


_END = object()
BACKLOG_LIMIT = 32
"""Stream items a reader paced by its consumer lets pile up before it waits.

Small: the raw capture sees what the reader read, so a recording of a virtual-time
source that stops at a duration overshoots it by at most this backlog."""


def _checked(response: Response, body: CommandBody[Any]) -> Response:
    """*response*, or CommandError when its status is not OK."""
    if response.status != StatusCode.OK:
        status = response.status
        label = status.name if isinstance(status, StatusCode) else f"status {status}"
        raise CommandError(f"{type(body).__name__} refused by the device: {label}", int(status))
    return response


def encoding_for_bits(adc_bits: int) -> Encoding:
    """The narrowest sample encoding that holds a signed *adc_bits* reading."""
    if adc_bits <= 16:
        return Encoding.INT16
    return Encoding.INT24 if adc_bits <= 24 else Encoding.INT32


class AsyncDevice:
    """A connected device over any transport (see the module docstring).

    Args:
        transport: an opened transport.
        command_timeout: seconds to wait for each answer.
        retries: extra attempts for a command that got no answer.
        reconnect: what to do when the link drops; None gives up at once.
        on_raw: hook that sees every received and sent chunk (the recorder).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        command_timeout: float = 1.0,
        retries: int = 2,
        reconnect: ReconnectPolicy | None = ReconnectPolicy(),
        on_raw: RawHook | None = None,
    ) -> None:
        self.transport = transport
        self.command_timeout = command_timeout
        self.retries = retries
        self.reconnect = reconnect
        self.on_raw = on_raw
        self.decoder: StreamDecoder | PacketDecoder = (
            StreamDecoder() if transport.framing is Framing.STREAM else PacketDecoder()
        )
        self.link = LinkStats()
        self.info: DeviceInfo | None = None
        self.stream_config: StreamConfig | None = None
        self.last_status: Status | None = None
        self.clock = DeviceClock()
        self.mapper = ClockMapper()
        self._encoder = Encoder(transport.framing)
        self._ids = itertools.cycle(range(1, UNREADABLE_REQUEST_ID))
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._queue: asyncio.Queue[StreamItem | object] | None = None
        self._drained = asyncio.Event()
        self._wanted = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._link_up = asyncio.Event()
        self._link_up.set()
        self._closed = False
        self._failure: KnotsenseError | None = None
        self._streaming = False
        self._stream_args: tuple[int | None, int | None, Encoding | int | None] = (None, None, None)
        self._next_index: int | None = None
        self._next_device_us: int | None = None
        self._lost_link_at: float | None = None
        self._rebooted = False
        self._reboot_from: float | None = None
        self._resume_task: asyncio.Task[object] | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    # -- life cycle ---------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> AsyncDevice:
        """Open the transport for *url* and start the reader.

        Raises:
            UnknownSchemeError, DeviceNotFoundError, TransportError: see the transports.
        """
        transport = make_transport(url)
        await transport.open()
        device = cls(transport, **kwargs)
        device.start()
        return device

    def start(self) -> None:
        """Start the reader task (``connect`` does this)."""
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def close(self) -> None:
        """Stop the reader and close the link; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._wanted.set()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for task in list(self._tasks):
            task.cancel()
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._end_stream()
        await self.transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def stats(self) -> dict[str, int]:
        """Decoder counters and link counters, flat."""
        return {**self.decoder.stats.as_dict(), **vars(self.link)}

    # -- commands -----------------------------------------------------------------------

    async def call(
        self, body: CommandBody[R], *, timeout: float | None = None, retries: int | None = None
    ) -> R:
        """Send one command, wait for its response and return its typed result.

        ``await dev.call(GetInfo())`` is a DeviceInfo, ``await dev.call(Tare())``
        a TareResult: the result type comes from the command (``CommandBody[R]``).

        Raises:
            DeviceTimeoutError, CommandError, LinkLostError: see :meth:`request`.
            MessageError: the device's result does not decode.
        """
        return body.parse_result(await self.request(body, timeout=timeout, retries=retries))

    async def request(
        self, body: CommandBody[Any], *, timeout: float | None = None, retries: int | None = None
    ) -> Response:
        """Send one command and wait for its response (raw; :meth:`call` decodes it).

        Raises:
            DeviceTimeoutError: no answer after all attempts.
            CommandError: the device answered with an error status.
            LinkLostError: the link is down and did not come back in time.
        """
        if self._failure is not None:
            raise self._failure
        timeout = self.command_timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        request_id = next(self._ids)
        command = Command(request_id, body)
        local = self.transport.answer(command)
        if local is not None:
            return _checked(local, body)
        frame = self._encoder.encode(command)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._drained.set()  # a reader held back by an unread backlog must read the answer
        self._wanted.set()
        name = type(body).__name__
        self.link.commands += 1
        try:
            for attempt in range(retries + 1):
                if attempt:
                    self.link.command_retries += 1
                await self._send(frame, timeout)
                try:
                    response = await asyncio.wait_for(asyncio.shield(future), timeout)
                    break
                except TimeoutError:
                    continue
            else:
                raise DeviceTimeoutError(
                    f"no answer to {name} after {retries + 1} attempt(s) of {timeout:g} s"
                )
        finally:
            self._pending.pop(request_id, None)
        return _checked(response, body)

    async def _send(self, frame: bytes, timeout: float) -> None:
        if not self._link_up.is_set():
            try:
                await asyncio.wait_for(self._link_up.wait(), timeout)
            except TimeoutError:
                raise LinkLostError("link is down") from None
        try:
            await self.transport.send(frame)
        except LinkLostError:
            # The reader notices too and reconnects; the next attempt waits for it.
            self._link_up.clear()
            return
        if self.on_raw is not None:
            self.on_raw("tx", frame, self.transport.clock())

    async def ping(self, data: bytes = b"") -> float:
        """Round trip time of a PING, seconds (the echo is checked)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self.call(Ping(data))
        if result.data != data:
            raise CommandError("PING echo does not match")
        return loop.time() - started

    async def get_info(self) -> DeviceInfo:
        """Ask the device who it is (cached in ``info``)."""
        self.info = info = await self.call(GetInfo())
        return info

    async def get_status(self) -> Status:
        """Battery, temperature and the device's error counters."""
        self.last_status = status = await self.call(GetStatus())
        return status

    async def get_stream_config(self) -> StreamConfig:
        self.stream_config = config = await self.call(GetStreamConfig())
        return config

    async def configure_stream(
        self,
        rate_hz: int,
        channels: Sequence[int] | int | None = None,
        encoding: Encoding | int | None = None,
    ) -> StreamConfig:
        """Choose rate, channels (indices or a mask; None = all) and sample encoding.

        Without *encoding*, the narrowest one that holds the device's ADC counts.
        """
        mask = await self._channel_mask(channels)
        if encoding is None:
            encoding = encoding_for_bits((self.info or await self.get_info()).adc_bits)
        self.stream_config = config = await self.call(SetStreamConfig(rate_hz, mask, encoding))
        return config

    async def _channel_mask(self, channels: Sequence[int] | int | None) -> int:
        if isinstance(channels, int):
            return channels
        info = self.info or await self.get_info()
        if channels is None:
            return (1 << info.channel_count) - 1
        mask = 0
        for ch in channels:
            if not 0 <= ch < info.channel_count:
                raise CommandError(f"channel {ch} does not exist (device has {info.channel_count})")
            mask |= 1 << ch
        return mask

    async def start_stream(
        self,
        rate_hz: int | None = None,
        channels: Sequence[int] | int | None = None,
        encoding: Encoding | int | None = None,
    ) -> StreamConfig:
        """Start streaming; with *rate_hz* (and *channels*) configure first.

        After a reconnect or a reboot the same configuration is restored.
        """
        if rate_hz is not None:
            configured = await self.configure_stream(rate_hz, channels, encoding)
            self._stream_args = (rate_hz, configured.channel_mask, encoding)
        self._streaming = True
        self._next_index = None
        self._rebooted = False
        self._reboot_from = None
        # Queue from the first block on, even before stream() is called: samples that
        # arrive while the caller is still busy (reading thresholds ...) are kept.
        self._ensure_queue()
        self.stream_config = config = await self.call(StartStream())
        return config

    async def stop_stream(self) -> None:
        """Stop streaming (samples already received stay in the stream)."""
        self._streaming = False
        await self.request(StopStream())

    async def tare(
        self, channels: Sequence[int] | int | None = None, n_samples: int = 0
    ) -> TareResult:
        """Zero the device's detector on the unloaded channels (samples stay raw)."""
        mask = 0 if channels is None else await self._channel_mask(channels)
        return await self.call(Tare(mask, n_samples), timeout=max(self.command_timeout, 3.0))

    async def read_calibration(self) -> tuple[int, bytes]:
        """The calibration record blob stored on the device, with its id (0, b"" if none)."""
        room = self._result_room(CalibrationChunk.LAYOUT.size)
        blob = bytearray()
        calibration_id, total = 0, None
        while total is None or len(blob) < total:
            chunk = await self.call(ReadCalibration(len(blob), min(255, room)))
            calibration_id, total = chunk.calibration_id, chunk.total_length
            if chunk.offset != len(blob) or (not chunk.data and len(blob) < total):
                raise CommandError(f"calibration read out of step at offset {len(blob)}")
            blob += chunk.data
        return calibration_id, bytes(blob[:total])

    async def write_calibration(self, blob: bytes, calibration_id: int) -> None:
        """Store *blob* as the calibration record, then read it back to verify.

        Raises:
            CommandError: the device refused, or the read-back differs.
        """
        room = self._command_room(WriteCalibration.LAYOUT.size)
        for offset in range(0, len(blob), room):
            await self.request(WriteCalibration(offset, len(blob), blob[offset : offset + room]))
        await self.request(CommitCalibration(calibration_id, len(blob), crc16(blob)))
        stored_id, stored = await self.read_calibration()
        if stored_id != calibration_id or stored != blob:
            raise CommandError("calibration read-back differs from what was written")

    async def read_thresholds(self) -> Thresholds:
        return await self.call(ReadThresholds())

    async def write_thresholds(self, thresholds: Thresholds) -> Thresholds:
        """Store thresholds; returns them as stored (checked equal)."""
        stored = await self.call(WriteThresholds(thresholds))
        if stored != thresholds:
            raise CommandError("thresholds read back differ from what was written")
        return stored

    async def reboot(self) -> None:
        """Restart the device; streaming resumes afterwards if it was on."""
        await self.request(Reboot(), retries=0)

    def _command_room(self, args_head: int) -> int:
        """Data bytes that fit one command frame on this link."""
        return self.transport.max_frame_size - 8 - 3 - args_head

    def _result_room(self, result_head: int) -> int:
        return self.transport.max_frame_size - 8 - 4 - result_head

    # -- the stream ---------------------------------------------------------------------

    async def stream(self, timeout: float | None = None) -> AsyncIterator[StreamItem]:
        """Samples, gaps, link changes and notices as they arrive.

        Ends when the device is closed or the link is given up (then raises
        the reason). With *timeout*, ends quietly after that long with nothing.
        """
        queue = self._ensure_queue()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if queue.qsize() <= BACKLOG_LIMIT // 2:
                    self._drained.set()
                if item is _END:
                    queue.put_nowait(_END)
                    if self._failure is not None:
                        raise self._failure
                    return
                yield cast(StreamItem, item)  # anything but _END is a StreamItem
        finally:
            # Nobody reads any more: stop queueing, and never hold the reader back.
            if self._queue is queue and not self._closed:
                self._queue = None
            self._drained.set()

    def _ensure_queue(self) -> asyncio.Queue[StreamItem | object]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._wanted.set()
            if self._closed:
                self._queue.put_nowait(_END)
        return self._queue

    def _emit(self, item: StreamItem) -> None:
        if self._queue is not None:
            self._queue.put_nowait(item)

    def _end_stream(self) -> None:
        self._ensure_queue().put_nowait(_END)

    # -- the reader ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        transport = self.transport
        while not self._closed:
            if transport.paced_by_reader:
                # Data is made as fast as it is read: read only when someone waits
                # for it (an answer or a stream), so virtual time does not run ahead.
                while not self._pending and self._queue is None and not self._closed:
                    self._wanted.clear()
                    await self._wanted.wait()
            try:
                chunks = await transport.receive_stamped(0.1)
            except EndOfData:
                self._end_stream()
                return
            except LinkLostError as exc:
                if not await self._recover(str(exc)):
                    return
                continue
            if not chunks:
                continue
            for now, chunk in chunks:
                if self.on_raw is not None:
                    self.on_raw("rx", chunk, now)
                for frame in self.decoder.feed(chunk):
                    self._dispatch(frame, now)
            # A source that always has data (a simulator on virtual time) must not
            # starve the loop: let the consumer and waiting commands run.
            await asyncio.sleep(0)
            queue = self._queue
            if transport.paced_by_reader and queue is not None:
                while (
                    queue is self._queue
                    and queue.qsize() > BACKLOG_LIMIT
                    and not self._closed
                    and not self._pending  # answers must get through whatever the backlog
                ):
                    self._drained.clear()
                    await self._drained.wait()

    def _dispatch(self, frame: DecodedFrame, now: float) -> None:
        message = frame.message
        if isinstance(message, SampleBlock):
            self._on_samples(frame, message, now)
        elif isinstance(message, Response):
            future = self._pending.get(message.request_id)
            if future is not None and not future.done():
                future.set_result(message)
        else:
            if isinstance(message, DeviceEvent) and message.code == EventCode.BOOT:
                self._on_reboot(now)
            elif isinstance(message, DeviceInfo):
                self.info = message
            elif isinstance(message, StreamConfig):
                self.stream_config = message
            elif isinstance(message, Status):
                self.last_status = message
            self._emit(Notice(message, now))

    def _on_samples(self, frame: DecodedFrame, block: SampleBlock, now: float) -> None:
        n = block.n_samples
        first_us = int(self.clock.unwrap(block.t_first_us)[0])
        device_us = first_us + (np.arange(n, dtype=np.int64) * block.period_ns) // 1000
        if n:
            self.mapper.add(device_us[-1] / 1e6, now)
        host_s = np.asarray(self.mapper.map(device_us / 1e6))  # an array in, an array out
        expected = self._next_index
        if expected is None:
            if self._rebooted and n:
                self._reboot_gap(block, float(host_s[0]))
        elif block.sample_index != expected:
            lost = (block.sample_index - expected) & 0xFFFFFFFF
            if 0 < lost < 1 << 31:
                self._gap(lost, block, float(host_s[0]) if n else now, now)
        else:
            # Contiguous: a link drop (if any) cost nothing; do not blame a later gap on it.
            self._lost_link_at = None
        self._next_index = (block.sample_index + n) & 0xFFFFFFFF
        self._next_device_us = int(device_us[-1]) + block.period_ns // 1000 if n else None
        self._emit(
            Samples(
                frame.seq,
                block.sample_index,
                device_us,
                host_s,
                block.samples,
                block.channel_mask,
                block.saturated_mask,
                block.fault_mask,
                now,
            )
        )

    def _gap(self, lost: int, block: SampleBlock, end_s: float, now: float) -> None:
        reason = gap_reason(
            reboot=self._rebooted,
            link=self._lost_link_at is not None,
            overflow=bool(block.flags & BlockFlags.OVERFLOW_BEFORE),
            frames_lost=True,  # live, a jump in sample_index is all there is to go on
        )
        start_s = end_s - lost * block.period_ns / 1e9
        self.link.gaps += 1
        self.link.samples_lost += lost
        self._lost_link_at = None
        self._rebooted = False
        self._emit(Gap(start_s, end_s, lost, reason))

    def _reboot_gap(self, block: SampleBlock, end_s: float) -> None:
        """The first block after a reboot: mark what the restart cost, by time.

        The device's sample index and clock started over, so the count comes from
        host time: from the first sample that never came to this block's first one.
        """
        start_s, self._reboot_from = self._reboot_from, None
        self._rebooted = False
        self._lost_link_at = None
        if start_s is None:
            return
        # Host seconds per device second (1 on a real link; not on a sped-up simulator).
        scale = 1.0 + self.mapper.drift_ppm * 1e-6
        lost = max(0, round((end_s - start_s) / scale * 1e9 / block.period_ns))
        # Always marked: a restart is a discontinuity even when the clock cannot size it.
        self.link.gaps += 1
        self.link.samples_lost += lost
        self._emit(Gap(min(start_s, end_s), end_s, lost, "reboot"))

    def _on_reboot(self, now: float) -> None:
        """The device restarted: its clock and indices start over; resume streaming.

        The BOOT a device sends at power-on, before any stream, is no reboot.
        """
        if not self._streaming and self._next_index is None:
            self.clock.reset()
            self.mapper.reset_epoch()
            return
        self.link.reboots += 1
        if self._rebooted and self._reboot_from is not None:
            # Rebooted again before any sample came: one gap from the last sample seen.
            last_host = self._reboot_from
        elif self._next_device_us is not None:
            last_host = float(self.mapper.map(self._next_device_us / 1e6))
        else:
            last_host = now
        self._rebooted = True
        self._reboot_from = last_host if self._streaming else None
        self.clock.reset()
        self.mapper.reset_epoch()
        self._next_index = None
        self._next_device_us = None  # of the old epoch: meaningless on the new clock
        self._emit(LinkChange("rebooted", now, f"last sample at {last_host:.3f}"))
        if self._streaming:
            self._restart_resume()

    async def _recover(self, why: str) -> bool:
        """Reconnect after a lost link; False when giving up (the stream ends)."""
        now = self.transport.clock()
        self._link_up.clear()
        self.link.link_losses += 1
        self._lost_link_at = now
        self._emit(LinkChange("lost", now, why))
        if isinstance(self.decoder, StreamDecoder):
            self.decoder.discard_pending()
        policy = self.reconnect
        if policy is None or not self.transport.can_reconnect:
            self._failure = LinkLostError(why)
            self._end_stream()
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.give_up_after_s
        delay = policy.first_delay_s
        while not self._closed:
            try:
                await self.transport.reopen()
                break
            except LinkTooSmallError as exc:
                self._failure = exc
                self._end_stream()
                return False
            except TransportError as exc:
                if loop.time() + delay > deadline:
                    self._failure = LinkLostError(
                        f"{why}; gave up reconnecting after {policy.give_up_after_s:g} s ({exc})"
                    )
                    self._end_stream()
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, policy.max_delay_s)
        self.link.reconnects += 1
        self._link_up.set()
        self._emit(LinkChange("restored", self.transport.clock(), ""))
        if self._streaming:
            self._restart_resume()
        return True

    def _restart_resume(self) -> None:
        """Resume streaming; a resume still running (the device restarted again) is dropped.

        Two resumes interleaving would configure the device before its second
        restart and start it after, at its boot rate instead of the chosen one.
        """
        if self._resume_task is not None:
            self._resume_task.cancel()
        self._resume_task = self._spawn(self._resume_stream())

    async def _resume_stream(self) -> None:
        """Bring the stream back as it was chosen, after a reconnect or a restart.

        A device that kept streaming through a link drop is left alone; one that
        streams at other settings (a start sent before a second restart landed
        after it, at the boot settings) is stopped, configured and started again.
        """
        rate, mask, encoding = self._stream_args
        try:
            current = await self.get_stream_config()
            wanted = rate is None or (current.rate_hz, current.channel_mask) == (rate, mask)
            if current.streaming and wanted:
                return
            if current.streaming:
                await self.request(StopStream())
            if rate is not None and not wanted:  # (not wanted implies a chosen rate)
                await self.configure_stream(rate, mask, encoding)
            await self.request(StartStream())
        except CommandError as exc:
            if exc.status != StatusCode.INVALID_STATE:  # already streaming is fine
                log.warning("could not resume streaming: %s", exc)
        except KnotsenseError as exc:
            log.warning("could not resume streaming: %s", exc)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

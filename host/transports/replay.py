"""``replay://PATH?speed=X&start=S&loop=1``: a recording played back as if live.

The recorded bytes go through the same decoder as a device's, paced by their
recorded receive times (``speed=1`` live, ``speed=10`` ten times faster,
``speed=max`` as fast as possible), so everything downstream cannot tell a
replay from a device. Commands are answered from the recording's metadata
(device info, stream configuration, calibration record); a replay cannot be
reconfigured, so other commands are refused as UNSUPPORTED.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from knotsense.errors import ConfigurationError, EndOfData
from knotsense.host.recording import Record, RxRecord, SessionReader
from knotsense.host.replay import iter_replay
from knotsense.host.session import device_info_from_dict
from knotsense.host.transports.base import Transport
from knotsense.protocol import (
    CalibrationChunk,
    Command,
    DeviceInfo,
    Encoding,
    Framing,
    GetInfo,
    GetStreamConfig,
    Ping,
    PingResult,
    ReadCalibration,
    Response,
    SetStreamConfig,
    StartStream,
    StatusCode,
    StopStream,
    StreamConfig,
)

MAX_BATCH = 64
"""Records handed over per receive when they are due at once."""


def parse_replay_url(url: str) -> tuple[str, float | None, float, bool]:
    """``replay://PATH?speed=..&start=..&loop=..`` -> (path, speed or None, start_s, loop)."""
    parts = urlsplit(url)
    path = parts.netloc + parts.path
    if not path:
        raise ConfigurationError(f"{url!r}: no recording path (replay:///abs/path.ksr)")
    params = dict(parse_qsl(parts.query))
    unknown = set(params) - {"speed", "start", "loop"}
    if unknown:
        raise ConfigurationError(f"{url!r}: unknown replay option(s) {', '.join(sorted(unknown))}")
    try:
        raw_speed = params.get("speed", "1")
        speed = None if raw_speed in ("max", "0") else float(raw_speed)
        start = float(params.get("start", "0"))
    except ValueError as exc:
        raise ConfigurationError(f"{url!r}: {exc}") from None
    loop = params.get("loop", "0").lower() in ("1", "true", "yes")
    return path, speed, start, loop


class ReplayTransport(Transport):
    """Plays a recording's received bytes back through the normal decoding path."""

    can_reconnect = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path, self.speed, self.start_s, self.loop = parse_replay_url(url)
        self.paced_by_reader = self.speed is None
        self._reader: SessionReader | None = None
        self._records: Iterator[tuple[float, Record]] | None = None
        self._next: tuple[float, Record] | None = None
        self._wait = 0.0
        self._now = time.time()
        self._info: DeviceInfo | None = None
        self._config: dict | None = None
        self._calibration = b""

    async def open(self) -> None:
        reader = SessionReader(self.path)
        self._reader = reader
        self.framing = Framing(reader.framing)
        meta = reader.metadata
        info = device_info_from_dict(meta.get("device_info"))
        self._info = info if isinstance(info, DeviceInfo) else None
        self._config = meta.get("stream_config")
        record = meta.get("calibration")
        self._calibration = b"" if record is None else json.dumps(record).encode()
        self._records = iter_replay(reader, self.speed, self.start_s, self.loop, (RxRecord,))
        self._now = reader.start_time

    async def close(self) -> None:
        self._records = None

    async def send(self, frame: bytes) -> None:
        """Commands are answered by :meth:`answer`; nothing goes anywhere."""

    async def receive(self, timeout: float) -> list[bytes]:
        if self._records is None:
            raise EndOfData(f"{self.path}: replay is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out: list[bytes] = []
        while len(out) < MAX_BATCH:
            if self._next is None:
                self._next = next(self._records, None)
                if self._next is None:
                    if out:
                        return out
                    raise EndOfData(f"{self.path}: end of recording")
                self._wait = self._next[0]
            if self._wait > 0:
                left = deadline - loop.time()
                if out or left <= 0:
                    return out
                step = min(self._wait, left)
                await asyncio.sleep(step)
                self._wait -= step
                continue
            record = self._next[1]
            self._next = None
            self._now = record.host_time
            out.append(record.data)  # type: ignore[attr-defined]
        return out

    def clock(self) -> float:
        return self._now

    def answer(self, command: Command) -> Response | None:
        body = command.body
        if isinstance(body, Ping):
            return Response.ok(command, PingResult(body.data))
        if isinstance(body, GetInfo) and self._info is not None:
            return Response.ok(command, self._info)
        if isinstance(body, GetStreamConfig | StartStream) and self._config is not None:
            return Response.ok(command, self._stream_config(streaming=True))
        if isinstance(body, SetStreamConfig) and self._config is not None:
            recorded = self._stream_config(streaming=True)
            same = (body.rate_hz, body.channel_mask) == (recorded.rate_hz, recorded.channel_mask)
            return (
                Response.ok(command, recorded)
                if same
                else Response.error(command, StatusCode.UNSUPPORTED)
            )
        if isinstance(body, StopStream):
            return Response.ok(command)
        if isinstance(body, ReadCalibration):
            data = self._calibration[body.offset : body.offset + body.max_length]
            cal_id = self._info.calibration_id if self._info else 0
            return Response.ok(
                command, CalibrationChunk(cal_id, len(self._calibration), body.offset, data)
            )
        return Response.error(command, StatusCode.UNSUPPORTED)

    def _stream_config(self, streaming: bool) -> StreamConfig:
        c = dict(self._config or {})
        return StreamConfig(
            int(c["rate_hz"]),
            int(c["channel_mask"]),
            Encoding(int(c["encoding"])),
            int(c["period_ns"]),
            int(c["samples_per_block"]),
            streaming,
            int(c["max_frame_size"]),
        )

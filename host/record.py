"""Record a session from a device: raw capture first, live analysis beside it.

The raw capture (:class:`~knotsense.host.recording.Recorder`) sees every byte
before anything is decoded, so a decoder bug, a crash or Ctrl-C never loses
what the link delivered. The live pipeline (knotsense.dsp) runs on the
decoded samples only to show and summarise; the file is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knotsense.dsp.detectors import Episode
from knotsense.dsp.pipeline import LIVE_BLOCK_S, Pipeline, PipelineConfig
from knotsense.dsp.summary import summarize
from knotsense.errors import CalibrationError, KnotsenseError
from knotsense.host.device import AsyncDevice, Gap, LinkChange, Notice, ReconnectPolicy, Samples
from knotsense.host.live import LiveState
from knotsense.host.recording import (
    MARK_GAP,
    MARK_LINK_LOST,
    MARK_NOTE,
    MARK_RECONNECTED,
    Recorder,
    default_metadata,
)
from knotsense.host.session import calibration_from_metadata
from knotsense.host.transports import make_transport
from knotsense.protocol import ThresholdFlags

if TYPE_CHECKING:
    from knotsense.host.lsl import LslOptions, LslStreams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordResult:
    """What a recording run produced."""

    path: Path
    duration_s: float
    samples: int
    stats: dict[str, int]
    summary: dict[str, Any]
    stopped_by: str


def positions_of(info: Any) -> tuple[tuple[float, float], ...] | None:
    """Channel positions (mm) from DeviceInfo, or None when all sit at the origin."""
    positions = tuple((ch.x_mm, ch.y_mm) for ch in info.channels)
    return positions if any(x or y for x, y in positions) else None


async def record_session(
    url: str,
    path: str | Path,
    *,
    duration_s: float | None = None,
    rate_hz: int | None = None,
    channels: Sequence[int] | None = None,
    pipeline_config: PipelineConfig | None = None,
    calibration_record: dict[str, Any] | None = None,
    overwrite: bool = False,
    view_factory: Callable[[LiveState, AsyncDevice], Any] | None = None,
    reconnect: ReconnectPolicy | None = ReconnectPolicy(),  # noqa: B008 - frozen
    lsl: LslOptions | bool | None = None,
) -> RecordResult:
    """Record from *url* into *path* until *duration_s* (session time) or Ctrl-C.

    Args:
        pipeline_config: detector settings. What it leaves open is filled from
            the device: the calibration (to turn counts into N), the release
            threshold (the device's stored one), the channel positions.
        calibration_record: a calibration record to use instead of the
            device's; it is stored in the recording's metadata either way.
        view_factory: builds the live view (a context manager with ``refresh()``).
        lsl: also publish Lab Streaming Layer outlets (Force + Markers) while
            recording (True: default names; needs the ``lsl`` extra).
    """
    config = pipeline_config or PipelineConfig()
    transport = make_transport(url)
    await transport.open()
    recorder: Recorder | None = None
    lab: LslStreams | None = None
    device = AsyncDevice(transport, reconnect=reconnect)
    stop = asyncio.Event()
    stopped_by = "duration"
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        device.start()
        info = await device.get_info()
        if calibration_record is None:
            calibration_record = await _device_calibration(device)
        metadata = {
            **default_metadata(transport.clock()),
            "device_url": url,
            "framing": transport.framing.value,
            "device_info": info,
            "calibration": calibration_record,
        }
        recorder = Recorder(path, metadata, overwrite=overwrite, host_time=transport.clock())
        device.on_raw = _raw_hook(recorder)
        stream_config = await device.start_stream(rate_hz, channels)
        recorder.meta({"stream_config": stream_config}, transport.clock())

        config = await _complete_config(device, config, stream_config, calibration_record)
        # What the session was analysed with, so analyze and batch use the same later.
        recorder.meta({"analysis": analysis_parameters(config)}, transport.clock())
        # Frames bring about 10 ms each: run the chain on 0.2 s blocks (the results
        # are the same; events come at most 0.2 s later, within the 0.5 s bound).
        pipeline = Pipeline(config if config.block else replace(config, block=LIVE_BLOCK_S))
        state = LiveState(
            channels=stream_config.channel_count,
            unit="N" if config.calibration is not None else "counts",
            release_threshold=config.release_threshold,
            hold_s=config.hold,
            contact_floor=config.contact_floor,
        )
        if lsl:
            lab = _open_lsl(lsl, info, stream_config, config, recorder, transport.clock)
            if lab.options.wait_s > 0 and not await asyncio.to_thread(
                lab.wait_for_consumers, lab.options.wait_s
            ):
                log.warning(
                    "no LSL inlet connected within %g s; streaming anyway", lab.options.wait_s
                )
        view = view_factory(state, device) if view_factory else contextlib.nullcontext()
        t0: float | None = None
        last_t: float | None = None
        period_s = stream_config.period_ns / 1e9
        episodes: list[Episode] = []
        with view:
            async for item in _until(device.stream(timeout=5.0), stop):
                state.on_item(item)
                if isinstance(item, Samples) and item.host_s.size:
                    t0 = float(item.host_s[0]) if t0 is None else t0
                    t = item.host_s - t0
                    if last_t is not None and t[0] <= last_t:
                        # The clock fit moved back a little (receive latency jitter):
                        # the live pipeline needs increasing times; the file keeps the truth.
                        t = t + (last_t - t[0] + period_s)
                    last_t = float(t[-1])
                    out = pipeline.process(t, item.raw)
                    if lab is not None:
                        lab.push_samples(t + t0, item.raw)
                        lab.push_events(out.events, t0)
                    episodes += [e for e in out.events if isinstance(e, Episode)]
                    forces = None if config.calibration is None else out.channels
                    state.on_output(out, forces)
                    if duration_s is not None and t[-1] >= duration_s:
                        break
                elif isinstance(item, Gap):
                    recorder.mark(MARK_GAP, asdict(item), transport.clock())
                    if lab is not None:
                        lab.push_gap(item.start_s, item.end_s, item.samples_lost, item.reason)
                elif isinstance(item, LinkChange):
                    kind = {"lost": MARK_LINK_LOST, "restored": MARK_RECONNECTED}.get(
                        item.kind, MARK_NOTE
                    )
                    recorder.mark(kind, {"kind": item.kind, "detail": item.detail}, item.at)
                    if lab is not None:
                        lab.push_link(item.kind, item.at, item.detail)
                elif isinstance(item, Notice):
                    pass
                if view_factory:
                    view.refresh()  # type: ignore[union-attr]
            else:
                stopped_by = "interrupted" if stop.is_set() else "idle"
            final = pipeline.finish()
            if lab is not None:
                lab.push_events(final.events, recorder.metadata["start_unix"] if t0 is None else t0)
            episodes += [e for e in final.events if isinstance(e, Episode)]
            state.on_output(final, None)
            if view_factory:
                view.refresh(force=True)  # type: ignore[union-attr]
        with contextlib.suppress(KnotsenseError, TimeoutError):
            await asyncio.wait_for(device.stop_stream(), 3.0)
        episodes.sort(key=lambda e: (e.start, e.kind))
        summary = summarize(
            tuple(episodes), pipeline.quality, config, band_time=pipeline.band_time
        ).to_dict()
        result = RecordResult(
            Path(path), state.now_s, state.samples, device.stats, summary, stopped_by
        )
        recorder.close({"stopped_by": stopped_by, "stats": device.stats, "summary": summary})
        recorder = None
        return result
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if lab is not None:
            await asyncio.to_thread(lab.close)  # it may linger for an inlet to catch up
        await device.close()
        if recorder is not None:
            recorder.close({"stopped_by": "error", "stats": device.stats})


async def _device_calibration(device: AsyncDevice) -> dict[str, Any] | None:
    """The calibration record stored on the device, if it holds a readable one."""
    if not device.info or not device.info.calibration_id:
        return None
    _, blob = await device.read_calibration()
    try:
        record = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.warning("the device's calibration record is not JSON; recording raw counts only")
        return None
    return record if isinstance(record, dict) else None


async def _complete_config(
    device: AsyncDevice, config: PipelineConfig, stream: Any, record: dict[str, Any] | None
) -> PipelineConfig:
    """Fill what the caller left open from the device: calibration, threshold, positions."""
    info = device.info
    streamed = [i for i in range(info.channel_count) if stream.channel_mask >> i & 1]
    changes: dict[str, Any] = {}
    if config.calibration is None and record is not None:
        try:
            changes["calibration"] = calibration_from_metadata(
                {"calibration": record}, streamed, info.channel_count
            )
        except CalibrationError as exc:
            log.warning("calibration not applied live: %s", exc)
    if config.release_threshold is None and changes.get("calibration", config.calibration):
        with contextlib.suppress(KnotsenseError):
            thresholds = await device.read_thresholds()
            if thresholds.flags & ThresholdFlags.RELEASE_ENABLED and thresholds.release_on > 0:
                changes["release_threshold"] = thresholds.release_on / 1000.0
    positions = positions_of(info)
    if config.positions is None and positions is not None:
        changes["positions"] = tuple(positions[i] for i in streamed)
    return replace(config, **changes) if changes else config


def _open_lsl(
    lsl: LslOptions | bool,
    info: Any,
    stream_config: Any,
    config: PipelineConfig,
    recorder: Recorder,
    clock: Callable[[], float],
) -> LslStreams:
    from knotsense.host.lsl import LslOptions, LslStreams

    keys = ("device_url", "device_info", "start_time", "analysis")
    meta = {k: recorder.metadata.get(k) for k in keys if k in recorder.metadata}
    return LslStreams.for_session(
        info,
        stream_config,
        config,
        start_unix=float(recorder.metadata["start_unix"]),
        host_clock=clock,
        metadata=meta,
        options=lsl if isinstance(lsl, LslOptions) else None,
    )


def analysis_parameters(config: PipelineConfig) -> dict[str, Any]:
    """The per-session detector parameters a recording carries (metadata ``analysis``)."""
    return {
        "release_threshold": config.release_threshold,
        "hold": config.hold,
        "gap": config.gap,
        "max_force": config.max_force,
    }


def _raw_hook(recorder: Recorder) -> Callable[[str, bytes, float], None]:
    def hook(direction: str, data: bytes, host_time: float) -> None:
        if direction == "rx":
            recorder.rx(data, host_time)
        else:
            recorder.tx(data, host_time)

    return hook


async def _until(items: Any, stop: asyncio.Event) -> Any:
    """Yield from an async iterator until it ends or *stop* is set (even while waiting)."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while True:
            upcoming = asyncio.ensure_future(items.__anext__())
            done, _ = await asyncio.wait({upcoming, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if upcoming not in done:
                upcoming.cancel()
                return
            try:
                yield upcoming.result()
            except StopAsyncIteration:
                return
    finally:
        stopper.cancel()


def load_calibration_record(path: str | Path) -> dict[str, Any]:
    """Read a calibration record file; a ``knotsense-calibration`` record is checked in full.

    Other JSON objects (``Calibration.to_dict()`` output) pass through to
    :func:`~knotsense.host.session.calibration_from_metadata`, which reads them too.
    """
    from knotsense.dsp.calibration_record import is_record, parse_record

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CalibrationError(f"{path}: not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise CalibrationError(f"{path}: a calibration record is a JSON object")
    return parse_record(record, where=str(path)) if is_record(record) else record

"""The device client: loss as explicit gaps, reconnect, reboot, timeouts, backpressure.

Every loss the simulator injects must reach the stream as a :class:`Gap` whose
``samples_lost`` equals the jump in ``sample_index`` -- never bridged silently --
and what the host received before a link drop must all still be there afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from knotsense.errors import CommandError, DeviceTimeoutError, LinkLostError
from knotsense.host.device import (
    BACKLOG_LIMIT,
    AsyncDevice,
    Gap,
    LinkChange,
    Notice,
    ReconnectPolicy,
    Samples,
    encoding_for_bits,
)
from knotsense.host.transports.base import Transport
from knotsense.protocol import (
    Encoder,
    Encoding,
    Framing,
    PacketDecoder,
    SampleBlock,
    StatusCode,
    StreamDecoder,
    ThresholdFlags,
)

QUIET = "scenario=quiet_baseline&seed=11"
FAST = ReconnectPolicy(first_delay_s=0.01, max_delay_s=0.05, give_up_after_s=20.0)


@pytest.fixture(autouse=True)
def _empty_radio() -> Iterator[None]:
    from knotsense.firmware_sim.ble_backend import clear_registry

    yield
    clear_registry()


def run(coro: Any, timeout: float = 45.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def sim_device(dev: AsyncDevice) -> Any:
    """The simulated device behind any of the three simulator links."""
    return dev.transport.simulated_device


async def collect(
    url: str, device_s: float, *, rate: int = 250, keep_raw: bool = False, **kwargs: Any
) -> dict[str, Any]:
    """Stream *device_s* seconds (device clock, summed over reboots) and keep everything."""
    raw: list[bytes] = []
    kwargs.setdefault("reconnect", FAST)
    dev = await AsyncDevice.connect(url, **kwargs)
    if keep_raw:
        dev.on_raw = lambda d, data, t: raw.append(data) if d == "rx" else None
    items: list[Any] = []
    async with dev:
        await dev.start_stream(rate_hz=rate)
        span = 0.0
        last_us = None
        async for item in dev.stream(timeout=15.0):
            items.append(item)
            if isinstance(item, Samples) and item.device_us.size:
                if last_us is not None and item.device_us[0] > last_us:
                    span += (item.device_us[-1] - last_us) / 1e6
                last_us = int(item.device_us[-1])
                if span >= device_s:
                    break
        sim = sim_device(dev)
        result = {
            "items": items,
            "stats": dev.stats,
            "injected": dataclasses.replace(sim.injected),
            "framing": dev.transport.framing,
            "raw": raw,
            "drift_ppm": dev.mapper.drift_ppm,
            "scale": 1.0 + dev.mapper.drift_ppm * 1e-6,
            "crystal_ppm": sim.unit.crystal_ppm,
        }
    return result


def check_no_silent_bridging(items: list[Any]) -> tuple[int, int]:
    """Every sample_index jump is announced by gaps adding up to it; (samples, lost)."""
    expected = None
    pending = 0
    received = 0
    lost = 0
    for item in items:
        if isinstance(item, Gap):
            assert item.samples_lost > 0 or item.reason == "reboot"
            assert item.end_s >= item.start_s
            pending += item.samples_lost
            lost += item.samples_lost
        elif isinstance(item, Samples):
            if expected is not None and pending == 0:
                assert item.sample_index == expected, "samples bridged without a Gap"
            elif expected is not None:
                assert item.sample_index - expected == pending, "Gap does not match the jump"
            pending = 0
            received += item.raw.shape[0]
            expected = item.sample_index + item.raw.shape[0]
        elif isinstance(item, LinkChange) and item.kind == "rebooted":
            expected = None  # the index starts over
            pending = 0
    return received, lost


# --- loss ----------------------------------------------------------------------------------


def test_dropped_and_corrupted_frames_become_gaps() -> None:
    url = f"sim://?{QUIET}&faults=drop:0.03,bit_errors:0.0001"
    out = run(collect(url, 20.0))
    items, stats, inj = out["items"], out["stats"], out["injected"]
    gaps = [i for i in items if isinstance(i, Gap)]
    assert inj.frames_dropped > 3 and inj.frames_corrupted > 3
    assert gaps and all(g.reason == "frames_lost" for g in gaps)
    _received, lost = check_no_silent_bridging(items)
    assert lost >= 18 * (inj.frames_dropped + inj.frames_corrupted) // 2
    # Frames the host never decoded are exactly the ones the simulator destroyed
    # (the last few sent may still be in flight; those were not counted yet).
    assert stats["crc_errors"] == inj.frames_corrupted
    assert 0 <= inj.frames_lost_total - stats["frames_lost"] <= 2
    assert lost % 18 == 0  # whole blocks of 18 samples at 250 Hz
    # A gap sits where the samples are missing, on the host timeline.
    samples = [i for i in items if isinstance(i, Samples)]
    for g in gaps:
        nxt = next(s for s in samples if s.host_s[0] >= g.end_s - 1e-9)
        assert g.end_s == pytest.approx(float(nxt.host_s[0]))
        assert g.end_s - g.start_s == pytest.approx(g.samples_lost * 0.004, abs=1e-6)


# --- reconnect ----------------------------------------------------------------------------

LINK_DROPS = "link_drop:2+1,link_drop:4.5+0.5,link_drop:7+1.5"
# Unpaced, the device behind a pty races through idle seconds while the host is still
# connecting; paced at 20x its faults land after streaming has started.
RECONNECT_URLS = {
    "sim": f"sim://?{QUIET}&faults={LINK_DROPS}",
    "pty": f"sim+pty://?{QUIET}&speed=20&faults={LINK_DROPS}",
    "ble": f"sim+ble://?{QUIET}&mtu=247&faults={LINK_DROPS}",
}


@pytest.mark.parametrize("link", list(RECONNECT_URLS))
def test_link_drops_reconnect_and_keep_what_was_received(link: str) -> None:
    out = run(collect(RECONNECT_URLS[link], 12.0, keep_raw=True), timeout=60)
    items, stats, inj = out["items"], out["stats"], out["injected"]
    changes = [(i.kind) for i in items if isinstance(i, LinkChange)]
    assert changes == ["lost", "restored"] * 3
    assert stats["link_losses"] == 3 and stats["reconnects"] == 3
    assert inj.link_drops == 3 and inj.frames_lost_link_down > 0
    link_gaps = [i for i in items if isinstance(i, Gap) and i.reason == "link"]
    assert len(link_gaps) == 3
    _received, _lost = check_no_silent_bridging(items)
    # Streaming resumed by itself after every drop: samples follow each "restored".
    kinds = [type(i).__name__ if not isinstance(i, LinkChange) else i.kind for i in items]
    for at in [k for k, name in enumerate(kinds) if name == "restored"]:
        assert "Samples" in kinds[at:]
    # Nothing the host received was lost: decoding the raw capture again gives the
    # same samples the stream delivered (before and after each drop).
    dec = StreamDecoder() if out["framing"] is Framing.STREAM else PacketDecoder()
    from_raw = [
        f.message.sample_index
        for chunk in out["raw"]
        for f in dec.feed(chunk)
        if isinstance(f.message, SampleBlock)
    ]
    streamed = [i.sample_index for i in items if isinstance(i, Samples)]
    assert from_raw[: len(streamed)] == streamed
    # And the device's own record agrees: what it sent while the link was down is
    # exactly what the host marked lost (over a pty a hung-up port also loses what
    # sat in its buffers, see the report; never less than the device's count).
    # (ble: up to a connection event's frames more, cleared at the disconnect).
    by_link = sum(g.samples_lost for g in link_gaps)
    extra = stats["frames_lost"] - inj.frames_lost_link_down
    assert 0 <= extra <= (6 if link != "pty" else 60)
    # ~1, 0.5 and 1.5 s of data at 250 Hz were lost (a status frame a second is lost
    # too), not much more.
    assert by_link % 18 == 0
    assert 18 * (inj.frames_lost_link_down - 4) <= by_link <= 18 * stats["frames_lost"]
    assert 700 <= by_link <= (900 + 6 * 18 if link != "pty" else 2000)


def test_link_drop_mid_step_is_counted_by_the_simulator() -> None:
    """A drop that starts inside a read's virtual step loses only what it should."""
    out = run(collect(f"sim://?{QUIET}&faults=link_drop:2.0341+1", 5.0))
    check_no_silent_bridging(out["items"])  # the host side is right either way
    assert out["stats"]["frames_lost"] == out["injected"].frames_lost_link_down


def test_link_that_never_comes_back_ends_the_stream() -> None:
    async def go() -> tuple[list[Any], BaseException | None]:
        policy = ReconnectPolicy(first_delay_s=0.01, max_delay_s=0.02, give_up_after_s=0.1)
        dev = await AsyncDevice.connect(f"sim://?{QUIET}&faults=link_drop:1+200", reconnect=policy)
        items: list[Any] = []
        error = None
        async with dev:
            await dev.start_stream(rate_hz=80)
            try:
                async for item in dev.stream(timeout=10.0):
                    items.append(item)
            except LinkLostError as exc:
                error = exc
            with pytest.raises(LinkLostError):
                await dev.ping()
        return items, error

    items, error = run(go())
    assert error is not None and "gave up" in str(error)
    assert [i.kind for i in items if isinstance(i, LinkChange)] == ["lost"]
    assert any(isinstance(i, Samples) for i in items)


def test_no_reconnect_policy_fails_at_once() -> None:
    async def go() -> str:
        dev = await AsyncDevice.connect(f"sim://?{QUIET}&faults=link_drop:1+2", reconnect=None)
        async with dev:
            await dev.start_stream(rate_hz=80)
            with pytest.raises(LinkLostError) as info:
                async for _ in dev.stream(timeout=10.0):
                    pass
            return str(info.value)

    assert "link_drop" in run(go())


# --- reboot ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"sim://?{QUIET}&faults=reboot_at:2,reboot_at:5",
        f"sim+pty://?{QUIET}&speed=20&faults=reboot_at:2,reboot_at:5",
        f"sim+ble://?{QUIET}&mtu=247&faults=reboot_at:2,reboot_at:5",
    ],
    ids=["sim", "pty", "ble"],
)
def test_reboot_resumes_streaming_and_marks_the_gap(url: str) -> None:
    out = run(collect(url, 9.0), timeout=60)
    items, stats, scale = out["items"], out["stats"], out["scale"]
    assert out["injected"].reboots == 2 and stats["reboots"] == 2
    reboots = [k for k, i in enumerate(items) if isinstance(i, LinkChange)]
    assert [items[k].kind for k in reboots] == ["rebooted", "rebooted"]
    gaps = [i for i in items if isinstance(i, Gap)]
    assert [g.reason for g in gaps] == ["reboot", "reboot"]
    check_no_silent_bridging(items)
    samples = [i for i in items if isinstance(i, Samples)]
    for at, gap in zip(reboots, gaps, strict=True):
        before = [i for i in items[:at] if isinstance(i, Samples)][-1]
        after = next(i for i in items[at:] if isinstance(i, Samples))
        assert after.sample_index == 0  # the device's stream started over ...
        assert after.device_us[0] < before.device_us[-1]  # ... and its clock too
        if "speed=" in url:
            # Paced at 20x and stamped with the wall clock, the epoch is too short
            # to estimate that "drift": the gap is marked but cannot be sized.
            continue
        # ... but the host timeline goes on, with the restart's hole marked.
        assert after.host_s[0] > before.host_s[-1]
        assert gap.start_s == pytest.approx(before.host_s[-1] + 0.004 * scale, abs=0.05)
        assert gap.end_s == pytest.approx(float(after.host_s[0]))
        # Off 0.25 s, boot 0.02 s, plus the lost pending block and the resume
        # (in device seconds: a paced simulator's host seconds are shorter).
        lasted = (gap.end_s - gap.start_s) / scale
        assert 0.25 <= lasted <= 1.0
        assert gap.samples_lost == round(lasted / 0.004)
    assert samples[-1].host_s[-1] > samples[0].host_s[0] + 8.0 * scale or "speed=" in url


@pytest.mark.parametrize("back_to_back", [False, True])
def test_reboot_command_and_frame_loss_after_it_keep_their_reasons(back_to_back: bool) -> None:
    # Back to back: the second restart comes before any sample of the first new epoch.
    faults = "drop:0.05" + (",reboot_at:3,reboot_at:3.35" if back_to_back else "")

    async def go() -> tuple[list[Any], dict[str, int]]:
        dev = await AsyncDevice.connect(f"sim://?{QUIET}&faults={faults}")
        items: list[Any] = []
        async with dev:
            await dev.start_stream(rate_hz=250)
            n = 0
            async for item in dev.stream(timeout=10.0):
                items.append(item)
                if not isinstance(item, Samples):
                    continue
                n += 1
                if n == 30 and not back_to_back:
                    await dev.reboot()
                if n == 200:
                    break
            return items, dev.stats

    items, _stats = run(go())
    reboots = 2 if back_to_back else 1
    assert [i.kind for i in items if isinstance(i, LinkChange)] == ["rebooted"] * reboots
    gaps = [g for g in items if isinstance(g, Gap)]
    reasons = [g.reason for g in gaps]
    assert reasons.count("reboot") == 1  # one hole, however many restarts made it
    reboot_gap = gaps[reasons.index("reboot")]
    # Each restart costs at least 0.27 s (off, boot); at 250 Hz:
    lasted = reboot_gap.end_s - reboot_gap.start_s
    assert 0.27 * reboots <= lasted <= 0.7 + 0.5 * reboots
    assert reboot_gap.samples_lost == round(lasted / 0.004)
    assert reasons.count("frames_lost") >= 2
    assert reasons.index("reboot") < len(reasons) - 1  # later losses are not "reboot"
    check_no_silent_bridging(items)


def test_power_on_boot_is_not_a_reboot() -> None:
    async def go() -> dict[str, int]:
        dev = await AsyncDevice.connect(f"sim://?{QUIET}")
        async with dev:
            await dev.get_info()
            await dev.start_stream(rate_hz=80)
            async for item in dev.stream(timeout=5.0):
                if isinstance(item, Samples) and item.sample_index > 200:
                    break
            return dev.stats

    stats = run(go())
    assert stats["reboots"] == 0 and stats["gaps"] == 0


# --- commands ---------------------------------------------------------------------------------


def test_device_that_never_answers_times_out_with_retries() -> None:
    # loop:// echoes our own command frames back: never an answer.
    async def go() -> dict[str, int]:
        dev = await AsyncDevice.connect("loop://", command_timeout=0.05, retries=2, reconnect=None)
        async with dev:
            with pytest.raises(DeviceTimeoutError, match="no answer to GetInfo after 3"):
                await dev.get_info()
            with pytest.raises(DeviceTimeoutError):
                await dev.ping(b"x")
            return dev.stats

    stats = run(go())
    assert stats["commands"] == 2 and stats["command_retries"] == 4


def test_device_refusals_are_command_errors() -> None:
    async def go() -> None:
        dev = await AsyncDevice.connect(f"sim://?{QUIET}")
        async with dev:
            th = await dev.read_thresholds()
            bad = dataclasses.replace(
                th, flags=ThresholdFlags.RELEASE_ENABLED, release_on=10, release_off=20
            )
            with pytest.raises(CommandError, match="BAD_ARGUMENT") as info:
                await dev.write_thresholds(bad)
            assert info.value.status == StatusCode.BAD_ARGUMENT
            with pytest.raises(CommandError, match="does not exist"):
                await dev.start_stream(rate_hz=80, channels=[7])
            with pytest.raises(CommandError):
                await dev.configure_stream(rate_hz=123)
            with pytest.raises(CommandError):
                await dev.write_calibration(b"x", 0)  # id 0 is refused
            assert await dev.read_thresholds() == th

    run(go())


def test_encoding_for_bits() -> None:
    assert encoding_for_bits(12) is Encoding.INT16
    assert encoding_for_bits(16) is Encoding.INT16
    assert encoding_for_bits(24) is Encoding.INT24
    assert encoding_for_bits(32) is Encoding.INT32


# --- pacing and the queue ---------------------------------------------------------------------


def test_samples_before_stream_is_called_are_kept() -> None:
    async def go() -> int:
        dev = await AsyncDevice.connect(f"sim://?{QUIET}")
        async with dev:
            await dev.start_stream(rate_hz=250)
            await dev.read_thresholds()
            await asyncio.sleep(0.2)
            async for item in dev.stream(timeout=5.0):
                if isinstance(item, Samples):
                    return item.sample_index
        return -1

    assert run(go()) == 0


def test_virtual_time_source_waits_for_its_consumer_but_answers_commands() -> None:
    async def go() -> tuple[int, int, float]:
        dev = await AsyncDevice.connect(f"sim://?{QUIET}", command_timeout=2.0)
        async with dev:
            await dev.start_stream(rate_hz=1000)
            n = 0
            async for item in dev.stream(timeout=5.0):
                n += isinstance(item, Samples)
                if n == 10:
                    # A consumer that stops reading: wait (however slow the machine)
                    # until the reader holds back, instead of sleeping a fixed time.
                    for _ in range(2000):
                        await asyncio.sleep(0.005)
                        if not dev._drained.is_set():  # the reader is holding back
                            break
                    backlog = dev._queue.qsize()  # type: ignore[union-attr]
                    sim_now = sim_device(dev).now
                    for _ in range(20):
                        await asyncio.sleep(0.005)
                    held = sim_device(dev).now - sim_now
                    rtt = await dev.ping(b"still there")  # answered despite the backlog
                    return backlog, held, rtt
        return -1, -1, -1.0

    backlog, held, _ = run(go())
    # The reader stopped above the limit and resumes only below half of it.
    assert BACKLOG_LIMIT // 2 < backlog <= BACKLOG_LIMIT + 16
    assert held == 0  # the simulator did not run ahead of the reader


# --- the Samples path: clock wrap and drift, with a scripted device ---------------------------


class ScriptedTransport(Transport):
    """A transport that delivers pre-built frames, one chunk per receive, then ends."""

    paced_by_reader = True

    def __init__(self, chunks: list[tuple[float, bytes]]) -> None:
        super().__init__("scripted://")
        self._chunks = list(chunks)
        self._now = 0.0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, frame: bytes) -> None:
        pass

    async def receive(self, timeout: float) -> list[bytes]:
        from knotsense.errors import EndOfData

        await asyncio.sleep(0)
        if not self._chunks:
            raise EndOfData("scripted source ends")
        self._now, data = self._chunks.pop(0)
        return [data]

    def clock(self) -> float:
        return self._now


def scripted_session(
    seconds: float, start_us: int, ppm: float, rate: int = 100, spb: int = 10
) -> tuple[list[tuple[float, bytes]], np.ndarray]:
    """Blocks from a device whose clock starts at *start_us* and runs *ppm* fast.

    Returns the (host receive time, frame) chunks and each block's true host time.
    """
    rng = np.random.default_rng(7)
    enc = Encoder(Framing.STREAM)
    period_ns = round(1e9 / rate)
    chunks = []
    truth = []
    host0 = 1_700_000_000.0
    for k in range(int(seconds * rate / spb)):
        index = k * spb
        host_t = host0 + index / rate  # true host time of the block's first sample
        dev_us = start_us + round(index * period_ns / 1000 * (1 + ppm * 1e-6))
        block = SampleBlock(
            dev_us & 0xFFFFFFFF,
            index,
            period_ns,
            0b1,
            Encoding.INT16,
            np.full((spb, 1), k % 1000, dtype=np.int32),
        )
        last_true = host_t + (spb - 1) / rate
        latency = 0.002 + rng.exponential(0.004)
        chunks.append((last_true + latency, enc.encode(block)))
        truth.append(host_t)
    return chunks, np.asarray(truth)


def test_samples_path_unwraps_the_u32_clock_and_maps_drift() -> None:
    # The device clock wraps 60 s into this 10-minute session and runs 40 ppm fast.
    start_us = (1 << 32) - 60_000_000
    chunks, truth = scripted_session(600.0, start_us, ppm=40.0)

    async def go() -> tuple[list[Samples], float]:
        dev = AsyncDevice(ScriptedTransport(chunks), reconnect=None)
        dev.start()
        out = [i async for i in dev.stream(timeout=5.0) if isinstance(i, Samples)]
        await dev.close()
        return out, dev.mapper.drift_ppm

    samples, drift_ppm = run(go())
    assert len(samples) == len(truth)
    device_us = np.concatenate([s.device_us for s in samples])
    assert np.all(np.diff(device_us) > 0), "continuous across the wrap"
    assert device_us[-1] > 1 << 32
    assert drift_ppm == pytest.approx(-40.0, abs=3.0)  # device fast: negative correction
    first_host = np.array([s.host_s[0] for s in samples])
    err = first_host - truth
    # Once the fit has a few windows, mapped host time sits within a few ms of the truth.
    assert np.abs(err[len(err) // 10 :]).max() < 0.005
    assert all(not isinstance(s, Gap) for s in samples)


def test_stream_items_are_typed() -> None:
    out = run(collect(f"sim://?{QUIET}", 2.0))
    kinds = {type(i) for i in out["items"]}
    assert kinds <= {Samples, Notice, Gap, LinkChange}
    s = next(i for i in out["items"] if isinstance(i, Samples))
    assert s.raw.dtype == np.int32 and s.raw.shape == (18, 4)
    assert s.device_us.dtype == np.int64 and s.host_s.shape == (18,)
    assert np.all(np.diff(s.host_s) > 0)
    # sim:// without speed is stamped with the simulator's clock: host time tracks
    # device time (crystal tens of ppm off), and the mapper sees that drift.
    assert abs(out["drift_ppm"]) < 200

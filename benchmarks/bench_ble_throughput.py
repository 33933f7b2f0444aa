"""Benchmark ``ble_throughput``: what each ATT MTU sustains on ``sim+bumble://``, against the spec.

For MTU 23, 185, 247 and 517 a Bumble central connects to the simulated
device (a Bumble peripheral, v1.1 fragments, 15 ms connection interval, 4
notifications per connection event: 267 notifications/s) through the real
ATT/GATT stack, and streams every rate x channel count of an 8-channel
load-cell unit (int24) for a few seconds of device time. A combination is
*sustained* when every sample arrives (no sequence gap, no fragment lost) and
the link kept up: the device never had to wait (``BumblePeripheral.stalls``)
and the notifications still queued when the last sample arrived are at most
two blocks' worth (a backlog that grows means a real device would overflow
its transmit buffer; the simulator's 512-notification queue would only hide
it for a while). The spec's table
(docs/protocol.md 6.3, ``stream_notifications_per_second``) predicts which
combinations fit; the figure is how many measured verdicts agree with it.

Baseline: the number of combinations (so ratio 1.0 = the spec's table holds
everywhere). The per-MTU detail lists the sustained combinations.
"""

from __future__ import annotations

import asyncio

from knotsense.host.device import AsyncDevice, Gap, Samples
from knotsense.protocol import MAX_FRAME_SIZE
from knotsense.protocol.fragment import fragments_per_frame, stream_notifications_per_second

NAME = "ble_throughput"
MTUS = (23, 185, 247, 517)
RATES = (250, 500, 1000)
CHANNELS = (1, 4, 8)
CAPACITY = 4 / 0.015
"""Notifications per second at the default 15 ms interval and 4 packets per event."""


async def _measure(mtu: int, seconds: float) -> dict[tuple[int, int], bool]:
    url = f"sim+bumble://?scenario=calibration_bench&seed=1&channels=8&mtu={mtu}"
    dev = await AsyncDevice.connect(url)
    peripheral = dev.transport.peripheral  # type: ignore[attr-defined]
    verdicts: dict[tuple[int, int], bool] = {}
    try:
        for rate in RATES:
            for channels in CHANNELS:
                await dev.start_stream(rate_hz=rate, channels=list(range(channels)))
                stalls0 = peripheral.stalls
                lost0 = dev.decoder.stats.frames_lost
                got, gaps = 0, 0
                want = int(rate * seconds)
                async for item in dev.stream(timeout=10):
                    if isinstance(item, Samples):
                        got += item.raw.shape[0]
                    elif isinstance(item, Gap):
                        gaps += 1
                    if got >= want:
                        break
                stalls = peripheral.stalls - stalls0
                link = peripheral.link
                backlog = len(link.queue) if link is not None else 0
                await dev.stop_stream()
                lost = dev.decoder.stats.frames_lost - lost0
                frag = dev.transport.link_framing.stats()  # type: ignore[attr-defined]
                verdicts[(rate, channels)] = (
                    stalls == 0
                    and backlog <= 2 * fragments_per_frame(MAX_FRAME_SIZE, mtu) + 4
                    and lost == 0
                    and gaps == 0
                    and frag["fragments_lost"] == 0
                )
    finally:
        await dev.close()
    return verdicts


def run(quick: bool) -> dict:
    seconds = 1.0 if quick else 3.0
    agree = 0
    total = 0
    table: dict[str, dict[str, str]] = {}
    for mtu in MTUS:
        measured = asyncio.run(_measure(mtu, seconds))
        row = {}
        for (rate, channels), ok in measured.items():
            predicted = stream_notifications_per_second(rate, channels, 3, mtu) <= CAPACITY
            agree += ok == predicted
            total += 1
            row[f"{rate}Hz x{channels}"] = (
                f"{'sustained' if ok else 'not sustained'} (spec: {'fits' if predicted else 'no'})"
            )
        table[f"MTU {mtu}"] = row
    return {
        "value": agree,
        "unit": "combinations where the measurement agrees with the spec table",
        "baseline": total,
        "ratio": agree / total,
        **{k: "; ".join(f"{c}: {v}" for c, v in row.items()) for k, row in table.items()},
    }

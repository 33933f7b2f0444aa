"""Every fault appears on the wire exactly as the simulator counted it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_sim import Host

from knotsense.errors import LinkLostError
from knotsense.firmware_sim.config import FaultConfig, SimConfig
from knotsense.firmware_sim.pipe import SimPipe
from knotsense.protocol import (
    BlockFlags,
    Command,
    DeviceEvent,
    Encoder,
    Encoding,
    EventCode,
    Framing,
    ResetReason,
    SampleBlock,
    SetStreamConfig,
    StartStream,
    Status,
    StreamDecoder,
)


def _stream(faults: str, seconds: float = 30.0, framing: Framing = Framing.STREAM, **kw) -> Host:
    h = Host(
        SimConfig(
            scenario="back_session",
            seed=11,
            framing=framing,
            faults=FaultConfig.parse(faults),
            **kw,
        )
    )
    h.send(SetStreamConfig(250, 0x0F, Encoding.INT24))
    h.send(StartStream())
    h.run(seconds, 0.5)
    return h


@pytest.mark.parametrize("framing", [Framing.STREAM, Framing.PACKET])
def test_drop_dup_bit_errors_burst_are_counted(framing: Framing) -> None:
    h = _stream("drop:0.02,dup:0.02,bit_errors:2e-5,burst:0.002x4", framing=framing)
    inj, st = h.device.injected, h.decoder.stats
    assert inj.frames_dropped > 3 and inj.frames_duplicated > 3
    assert inj.frames_corrupted > 10 and inj.bursts >= 1
    assert st.crc_errors == inj.frames_corrupted
    assert st.framing_errors == st.oversize == 0
    assert st.duplicates == inj.frames_duplicated
    assert st.frames_lost == inj.frames_lost_total


def test_link_drop_loses_output_and_ignores_writes() -> None:
    h = _stream("link_drop:5+2,link_drop:12+1", seconds=20.0)
    inj, st = h.device.injected, h.decoder.stats
    assert inj.link_drops == 2 and inj.frames_lost_link_down > 0
    assert st.frames_lost == inj.frames_lost_link_down and st.seq_gaps == 2
    assert st.errors == 0


def test_pipe_raises_link_lost_and_recovers() -> None:
    pipe = SimPipe(
        SimConfig(scenario="quiet_baseline", faults=FaultConfig.parse("link_drop:1+0.5"))
    )
    host = Encoder(Framing.STREAM)
    decoder = StreamDecoder()
    lost = 0
    for _ in range(100):  # 2 s of virtual time
        try:
            decoder.feed(pipe.read(0.1))
        except LinkLostError:
            lost += 1
            with pytest.raises(LinkLostError):
                pipe.write(host.encode(Command(1, StartStream())))
    assert lost == 25  # 0.5 s in 20 ms steps
    pipe.write(host.encode(Command(2, StartStream())))
    decoder.feed(pipe.read(0.1))
    assert decoder.stats.errors == 0 and pipe.device.now == pytest.approx(2.02)


def test_reboot_at_restarts_sequence_and_clock() -> None:
    h = _stream("reboot_at:4,reboot_at:9", seconds=12.0)
    st = h.decoder.stats
    assert h.device.injected.reboots == 2 and st.seq_resets == 2
    boots = [m for m in h.messages(DeviceEvent) if m.code == EventCode.BOOT]
    assert [b.arg for b in boots] == [
        ResetReason.POWER_ON,
        ResetReason.WATCHDOG,
        ResetReason.WATCHDOG,
    ]
    assert all(b.t_us < 30_000 for b in boots)  # device clock restarts at 0
    statuses = h.messages(Status)
    assert statuses[-1].reset_reason == ResetReason.WATCHDOG and statuses[-1].uptime_s < 4
    # Streaming stops at a reboot: no blocks after the second one.
    assert not any(isinstance(f.message, SampleBlock) for f in h.frames[-3:])


def test_stuck_and_saturated_channels() -> None:
    h = _stream("stuck:2@3,saturate:1@6", seconds=10.0)
    inj = h.device.injected
    faults = [m for m in h.messages(DeviceEvent) if m.code == EventCode.SENSOR_FAULT]
    assert len(faults) == inj.sensor_faults == 1 and faults[0].arg == 2
    blocks = h.messages(SampleBlock)
    sat = [b for b in blocks if b.saturated_mask]
    assert len(sat) == inj.saturated_blocks > 0
    assert all(b.saturated_mask == 0b10 for b in sat)
    assert all(np.all(b.samples[:, 1] == (1 << 23) - 1) for b in sat[1:])
    stuck = [b for b in blocks if b.fault_mask]
    assert stuck and all(b.fault_mask == 0b100 for b in stuck)
    assert np.unique(np.concatenate([b.samples[:, 2] for b in stuck])).size == 1
    assert h.messages(Status)[-1].sensor_faults == 1


def test_slow_reader_overflows_the_device_buffer() -> None:
    h = _stream("slow_reader:2000@4+4", seconds=12.0)
    inj, st = h.device.injected, h.decoder.stats
    events = [m for m in h.messages(DeviceEvent) if m.code == EventCode.BUFFER_OVERFLOW]
    flagged = [b for b in h.messages(SampleBlock) if b.flags & BlockFlags.OVERFLOW_BEFORE]
    assert inj.overflow_drops > 0 and len(events) == inj.overflow_events > 0
    assert sum(e.value for e in events) == inj.overflow_drops == st.frames_lost
    assert len(flagged) == len(events)
    assert h.messages(Status)[-1].frames_dropped == inj.overflow_drops
    assert st.errors == 0


def test_faulty_link_is_deterministic_however_stepped() -> None:
    faults = "drop:0.02,dup:0.02,bit_errors:2e-5,burst:0.002x4,slow_reader:3000@2+2,reboot_at:6"

    def run(step: float) -> bytes:
        h = Host(SimConfig(scenario="back_session", seed=4, faults=FaultConfig.parse(faults)))
        h.send(SetStreamConfig(250, 0x0F, Encoding.INT24))
        h.send(StartStream())
        h.run(8.0, step)
        return b"".join(h.raw)

    assert run(0.02) == run(0.7)

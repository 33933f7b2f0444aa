"""Protocol v1.1 BLE link layer: fragments over any MTU, loss counted, resync at the next start."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from knotsense.protocol import MAX_FRAME_SIZE, PacketDecoder, build_frame
from knotsense.protocol.fragment import (
    END,
    START,
    Fragmenter,
    Reassembler,
    fragment_payload_size,
    fragments_per_frame,
    stream_notifications_per_second,
)

mtus = st.integers(23, 517)
frames = st.binary(min_size=1, max_size=MAX_FRAME_SIZE)


def crc_frames(payloads: list[bytes]) -> list[bytes]:
    return [build_frame(0x7E, seq, p) for seq, p in enumerate(payloads)]


def test_header_layout_and_sizes() -> None:
    tx = Fragmenter(23)
    pieces = tx.split(bytes(range(45)))
    assert [len(p) for p in pieces] == [20, 20, 8]
    assert [p[0] for p in pieces] == [START | 0, 1, END | 2]
    assert tx.split(b"\x11") == [bytes([START | END | 3, 0x11])]
    assert fragment_payload_size(23) == 19 and fragment_payload_size(247) == 243
    assert fragments_per_frame(244, 23) == 13 and fragments_per_frame(244, 247) == 2
    assert fragments_per_frame(244, 517) == 1


def test_counter_wraps_at_16() -> None:
    tx = Fragmenter(23)
    counters = [p[0] & 0x0F for _ in range(20) for p in tx.split(b"x")]
    assert counters == [i % 16 for i in range(20)]


@given(st.lists(frames, min_size=1, max_size=12), mtus)
def test_any_frame_at_any_mtu_round_trips(payloads: list[bytes], mtu: int) -> None:
    tx, rx = Fragmenter(mtu), Reassembler()
    out = []
    for frame in payloads:
        pieces = tx.split(frame)
        assert all(2 <= len(p) <= mtu - 3 for p in pieces)
        assert len(pieces) == math.ceil(len(frame) / (mtu - 4))
        out += [f for p in pieces if (f := rx.feed(p)) is not None]
    assert out == payloads
    assert rx.stats.frames == len(payloads) and rx.stats.fragments_lost == 0
    assert rx.buffered == 0


@given(
    st.lists(st.binary(min_size=0, max_size=236), min_size=1, max_size=15),
    mtus,
    st.data(),
)
def test_any_loss_pattern_is_counted_and_resynced(payloads, mtu, data) -> None:
    """Drop any fragments (runs shorter than 8): every frame that lost nothing is delivered,
    nothing else is, every lost fragment between the first and last received is counted."""
    sent = crc_frames(payloads)
    tx, rx = Fragmenter(mtu), Reassembler()
    pieces = [(i, p) for i, f in enumerate(sent) for p in tx.split(f)]
    keep = data.draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
    run = 0
    for j, k in enumerate(keep):  # bound loss runs so the 4-bit counter sees every gap
        run = 0 if k else run + 1
        if run >= 8:
            keep[j] = True
            run = 0
    whole = {
        i
        for i in range(len(sent))
        if all(k for (fi, _), k in zip(pieces, keep, strict=True) if fi == i)
    }
    delivered = [
        f for (_, p), k in zip(pieces, keep, strict=True) if k and (f := rx.feed(p)) is not None
    ]
    assert delivered == [sent[i] for i in sorted(whole)]
    kept = [j for j, k in enumerate(keep) if k]
    lost_before = sum(1 for j, k in enumerate(keep) if not k and kept and kept[0] < j < kept[-1])
    assert rx.stats.fragments_lost == lost_before
    assert rx.stats.frames == len(whole)
    assert rx.buffered == 0 or not keep[-1]
    dec = PacketDecoder()
    for frame in delivered:
        dec.feed(frame)
    assert dec.stats.crc_errors == 0


@given(
    st.lists(st.binary(min_size=0, max_size=236), min_size=1, max_size=10),
    mtus,
    st.randoms(use_true_random=False),
)
def test_reordered_and_arbitrary_losses_never_deliver_a_broken_frame(payloads, mtu, rnd) -> None:
    """Any loss (even 16 in a row, which the counter cannot see) and any swaps: what comes
    out is either a sent frame or fails its CRC in the packet decoder; the receiver keeps going."""
    sent = crc_frames(payloads)
    tx, rx = Fragmenter(mtu), Reassembler()
    pieces = [p for f in sent for p in tx.split(f)]
    mangled = [p for p in pieces if rnd.random() > 0.3]
    for _ in range(rnd.randrange(3)):
        if len(mangled) > 1:
            i = rnd.randrange(len(mangled) - 1)
            mangled[i], mangled[i + 1] = mangled[i + 1], mangled[i]
    dec = PacketDecoder()
    out = [f for p in mangled if (f := rx.feed(p)) is not None]
    for frame in out:
        got = dec.feed(frame)
        assert (frame in sent) == bool(got)
    assert rx.buffered <= MAX_FRAME_SIZE
    # and the receiver is in step again at the next frame
    for p in tx.split(sent[0]):
        last = rx.feed(p)
    assert last == sent[0]


def test_reordered_fragment_is_counted_and_the_frame_dropped() -> None:
    tx, rx = Fragmenter(23), Reassembler()
    a0, a1, a2 = tx.split(bytes(50))
    assert rx.feed(a0) is None
    assert rx.feed(a2) is None  # a1 missing: gap of 1
    assert rx.feed(a1) is None  # late: 15 behind -> reordered
    assert (rx.stats.fragments_lost, rx.stats.reordered, rx.stats.frames_dropped) == (1, 1, 1)
    assert rx.stats.orphans == 2
    (b,) = tx.split(b"ok")
    assert rx.feed(b) == b"ok"


def test_malformed_and_oversize_fragments() -> None:
    rx = Reassembler()
    assert rx.feed(b"") is None and rx.feed(bytes([START])) is None
    assert rx.stats.malformed == 2
    tx = Fragmenter(517)
    big = tx.split(bytes(300))  # a frame longer than any legal one
    assert [rx.feed(p) for p in big] == [None]
    assert rx.stats.oversize == 1 and rx.buffered == 0


def test_throughput_model_matches_the_domain_figures() -> None:
    """At MTU 23, 15 ms interval, 4 packets per event (267 notifications/s), 250 Hz x 8 ch
    of int16 fits and 1 kHz x 4 ch does not; at MTU 247 it does."""
    capacity = 4 / 0.015
    assert stream_notifications_per_second(250, 8, 2, 23) < capacity
    assert stream_notifications_per_second(1000, 4, 2, 23) > capacity
    assert stream_notifications_per_second(1000, 4, 3, 247) < capacity

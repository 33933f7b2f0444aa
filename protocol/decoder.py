"""Decoders: bytes from a link in, checked messages out, with counters.

:class:`StreamDecoder` frames a COBS byte stream (serial, pty) apart from the
port, like pyserial's Packetizer: feed it any chunking of the stream; it
returns the frames completed so far and keeps the partial tail ("need more
bytes"). After garbage or corruption it resynchronises at the next 0x00. It
never accepts a frame with a bad CRC and never raises on bad input: it counts.
Memory is bounded: a run of bytes with no delimiter longer than the longest
legal encoded frame is discarded.

Throughput comes from doing the per-byte work (finding delimiters, COBS
decoding, gathering sample data) with numpy over every frame of a chunk at
once; Python runs once per frame, never once per byte or per sample.

:class:`PacketDecoder` does the same for links that carry one unencoded frame
per packet (BLE).
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import asdict, dataclass
from itertools import repeat

import numpy as np

from knotsense.errors import CrcError, FramingError, MessageError, ProtocolError
from knotsense.protocol import cobs
from knotsense.protocol.codec import DecodedFrame, decode_message
from knotsense.protocol.frame import (
    CRC_SIZE,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    MAX_ENCODED_SIZE,
    MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    parse_frame,
)
from knotsense.protocol.messages import (
    BLOCK_FLAGS,
    ENCODINGS,
    Encoding,
    Message,
    MessageType,
    SampleBlock,
    decode_samples,
)

_SAMPLE_HEAD = HEADER_SIZE + SampleBlock.HEAD_SIZE
_MAX_SEQ_JUMP = 0x8000


@dataclass(slots=True)
class DecoderStats:
    """What a decoder has seen. All counters only grow until :meth:`reset`.

    Attributes:
        bytes_in: bytes fed.
        frames: frames accepted (CRC good, header sane, payload decoded).
        bytes_discarded: bytes that did not become an accepted frame.
        crc_errors: frames whose CRC did not match.
        framing_errors: broken COBS, impossible header or length.
        oversize: runs longer than the longest legal frame.
        version_errors: frames of another protocol major version.
        message_errors: frames whose payload did not decode.
        unknown_types: frames of a type this version does not know (still delivered).
        seq_gaps: places where sequence numbers skipped ahead.
        frames_lost: frames missing, summed over all gaps.
        duplicates: frames repeating the previous sequence number (dropped).
        seq_resets: sequence numbers jumping back (a reboot).
    """

    bytes_in: int = 0
    frames: int = 0
    bytes_discarded: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    oversize: int = 0
    version_errors: int = 0
    message_errors: int = 0
    unknown_types: int = 0
    seq_gaps: int = 0
    frames_lost: int = 0
    duplicates: int = 0
    seq_resets: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def errors(self) -> int:
        """Frames rejected for any reason."""
        return (
            self.crc_errors
            + self.framing_errors
            + self.oversize
            + self.version_errors
            + self.message_errors
        )


class _SequenceTracker:
    """Counts gaps, duplicates and resets in one sender's sequence numbers.

    A frame repeating the previous number is a duplicate (dropped); a jump
    forward of less than half the number space is a gap (frames lost); any
    other jump is a reset (the sender rebooted).
    """

    __slots__ = ("last", "stats")

    def __init__(self, stats: DecoderStats) -> None:
        self.stats = stats
        self.last: int | None = None

    def observe(self, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each accepted frame's seq, in order: (frames lost before it, is duplicate)."""
        seqs = seqs.astype(np.int64, copy=False)
        prev = np.empty_like(seqs)
        prev[0] = seqs[0] - 1 if self.last is None else self.last
        prev[1:] = seqs[:-1]
        jump = (seqs - prev - 1) & 0xFFFF
        duplicate = jump == 0xFFFF
        gap = (jump > 0) & (jump < _MAX_SEQ_JUMP)
        lost = np.where(gap, jump, 0)
        stats = self.stats
        stats.duplicates += int(duplicate.sum())
        stats.seq_gaps += int(gap.sum())
        stats.frames_lost += int(lost.sum())
        stats.seq_resets += int(((jump >= _MAX_SEQ_JUMP) & ~duplicate).sum())
        self.last = int(seqs[-1])
        return lost, duplicate

    def observe_few(self, seqs: list[int]) -> tuple[list[int], list[bool]]:
        """:meth:`observe` for a handful of frames (same rule), without numpy's per-call cost."""
        stats = self.stats
        last = self.last
        lost: list[int] = []
        duplicate: list[bool] = []
        for seq in seqs:
            jump = 0 if last is None else (seq - last - 1) & 0xFFFF
            last = seq
            if jump == 0xFFFF:
                stats.duplicates += 1
            elif 0 < jump < _MAX_SEQ_JUMP:
                stats.seq_gaps += 1
                stats.frames_lost += jump
            elif jump >= _MAX_SEQ_JUMP:
                stats.seq_resets += 1
            lost.append(jump if 0 < jump < _MAX_SEQ_JUMP else 0)
            duplicate.append(jump == 0xFFFF)
        self.last = last
        return lost, duplicate


class _DecoderBase:
    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._seq = _SequenceTracker(self.stats)

    def reset(self) -> None:
        """Forget partial input, sequence history and counters."""
        self.stats = DecoderStats()
        self._seq = _SequenceTracker(self.stats)

    def _check(self, frame_bytes: bytes) -> Message | None:
        """Check one unencoded frame and decode its payload; None (counted) if rejected."""
        try:
            frame = parse_frame(frame_bytes)
            message = decode_message(frame.msg_type, frame.payload)
        except ProtocolError as exc:
            _count_error(self.stats, exc, frame_bytes)
            return None
        if frame.msg_type not in _KNOWN_TYPES:
            self.stats.unknown_types += 1
        return message

    def _sequence(
        self, seqs: list[int], messages: list[Message], sizes: list[int]
    ) -> list[DecodedFrame]:
        """Run checked frames through the sequence tracker; drop duplicates."""
        if not seqs:
            return []
        lost, duplicate = self._seq.observe_few(seqs)
        out = []
        for seq, message, size, n_lost, dup in zip(
            seqs, messages, sizes, lost, duplicate, strict=True
        ):
            if dup:
                self.stats.bytes_discarded += size
            else:
                out.append(DecodedFrame(seq, message, n_lost))
        self.stats.frames += len(out)
        return out


class PacketDecoder(_DecoderBase):
    """Decoder for links that carry one unencoded frame per packet (BLE)."""

    def feed(self, packet: bytes | bytearray | memoryview) -> list[DecodedFrame]:
        """Decode one packet; returns [] (and counts why) when it is rejected."""
        packet = bytes(packet)
        self.stats.bytes_in += len(packet)
        message = self._check(packet)
        if message is None:
            self.stats.bytes_discarded += len(packet)
            return []
        seq = packet[2] | (packet[3] << 8)
        return self._sequence([seq], [message], [len(packet)])


def _count_error(stats: DecoderStats, exc: ProtocolError, frame: bytes) -> None:
    """Count a rejected frame under the first check it failed (parse_frame's order)."""
    if isinstance(exc, CrcError):
        stats.crc_errors += 1
    elif isinstance(exc, MessageError):
        stats.message_errors += 1
    elif len(frame) > MAX_FRAME_SIZE:
        stats.oversize += 1
    elif len(frame) >= FRAME_OVERHEAD and frame[0] != PROTOCOL_VERSION:
        stats.version_errors += 1
    else:
        stats.framing_errors += 1


_KNOWN_TYPES = frozenset(int(t) for t in MessageType)
_VECTOR_MIN_FRAMES = 32
"""Below this many frames in one feed, decoding frame by frame is faster."""


class StreamDecoder(_DecoderBase):
    """Decoder for COBS-framed byte streams; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._skipping = False

    def reset(self) -> None:
        super().reset()
        self._pending = bytearray()
        self._skipping = False

    def discard_pending(self) -> None:
        """Drop a partial frame held from before a link drop (counted as discarded)."""
        self.stats.bytes_discarded += len(self._pending)
        self._pending.clear()
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for a delimiter (never more than the longest frame)."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodedFrame]:
        """Add bytes; return every frame they complete, in order."""
        return self.feed_batch(data).frames()

    def feed_batch(self, data: bytes | bytearray | memoryview) -> DecodedBatch:
        """Add bytes; return the frames they complete as a :class:`DecodedBatch`.

        Same frames and counters as :meth:`feed`, but sample blocks stay
        column-wise (no object per block): the fast path for recordings.
        """
        self.stats.bytes_in += len(data)
        pending = self._pending
        pending += data
        last = pending.rfind(0)
        if last < 0:
            self._bound_tail()
            return _EMPTY_BATCH
        region = bytes(pending[: last + 1])
        del pending[: last + 1]
        if self._skipping:
            # The rest of an oversize run, up to its delimiter, is junk too.
            first = region.index(0)
            self.stats.bytes_discarded += first
            region = region[first + 1 :]
            self._skipping = False
        batch = self._decode_region(region) if region else _EMPTY_BATCH
        self._bound_tail()
        return batch

    def _bound_tail(self) -> None:
        if self._skipping or len(self._pending) > MAX_ENCODED_SIZE:
            # While skipping the rest of an oversize run, its bytes are junk:
            # count and drop them at once, so counters and ``buffered`` do not
            # depend on how the run was chunked (docs/protocol.md 14.1).
            if not self._skipping:
                self.stats.oversize += 1
            self.stats.bytes_discarded += len(self._pending)
            self._pending.clear()
            self._skipping = True

    def _decode_region(self, region: bytes) -> DecodedBatch:
        """Decode every frame of *region*, which ends with a delimiter."""
        stats = self.stats
        if region.count(0) < _VECTOR_MIN_FRAMES:
            return self._decode_segments(region)
        arr = np.frombuffer(region, dtype=np.uint8)
        ends = np.flatnonzero(arr == 0)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts

        too_long = lengths > MAX_ENCODED_SIZE
        too_short = (lengths > 0) & (lengths <= FRAME_OVERHEAD)
        if too_long.any():
            stats.oversize += int(too_long.sum())
            stats.bytes_discarded += int(lengths[too_long].sum())
        if too_short.any():
            stats.framing_errors += int(too_short.sum())
            stats.bytes_discarded += int(lengths[too_short].sum())
        candidates = (lengths > FRAME_OVERHEAD) & ~too_long
        if not candidates.any():
            return _EMPTY_BATCH

        dec, cobs_ok = _cobs_decode_many(arr, starts, ends, candidates)
        enc_len = lengths[candidates]
        dec_start = starts[candidates] + 1
        dec_len = enc_len - 1
        cobs_ok = cobs_ok[candidates]
        mv = dec.data  # the decoded bytes as a memoryview, sliced per frame below
        frames = map(mv.__getitem__, map(slice, dec_start.tolist(), (dec_start + dec_len).tolist()))
        crc_ok = np.array(list(map(crc_hqx, frames, repeat(0xFFFF)))) == 0
        head = dec[np.minimum(dec_start[:, None] + np.arange(HEADER_SIZE), dec.size - 1)]
        version = head[:, 0]
        msg_type = head[:, 1]
        seq = head[:, 2].astype(np.int64) | (head[:, 3].astype(np.int64) << 8)
        length = head[:, 4].astype(np.int64) | (head[:, 5].astype(np.int64) << 8)

        # The checks of parse_frame, in its order: size, CRC, version, length.
        too_big = cobs_ok & (dec_len > MAX_FRAME_SIZE)
        bad_crc = cobs_ok & ~too_big & ~crc_ok
        checked = cobs_ok & ~too_big & crc_ok
        bad_version = checked & (version != PROTOCOL_VERSION)
        bad_length = checked & ~bad_version & (length != dec_len - FRAME_OVERHEAD)
        good = checked & ~bad_version & ~bad_length
        stats.oversize += int(too_big.sum())
        stats.framing_errors += int((~cobs_ok).sum() + bad_length.sum())
        stats.crc_errors += int(bad_crc.sum())
        stats.version_errors += int(bad_version.sum())

        # Payloads: sample blocks column-wise, anything else one by one.
        is_block = good & (msg_type == MessageType.SAMPLE_BLOCK)
        block_rows = np.flatnonzero(is_block)
        heads = _BlockHeads.parse(dec, dec_start[block_rows], dec_len[block_rows])
        good[block_rows[~heads.valid]] = False
        others: dict[int, Message] = {}
        for row in np.flatnonzero(good & ~is_block).tolist():
            a = int(dec_start[row]) + HEADER_SIZE
            b = int(dec_start[row] + dec_len[row]) - CRC_SIZE
            try:
                others[row] = decode_message(int(msg_type[row]), dec[a:b].tobytes())
            except ProtocolError:
                good[row] = False
                stats.message_errors += 1
                continue
            if int(msg_type[row]) not in _KNOWN_TYPES:
                stats.unknown_types += 1
        stats.message_errors += int((~heads.valid).sum())

        rows = np.flatnonzero(good)
        if rows.size:
            lost_all, duplicate = self._seq.observe(seq[rows])
            good[rows[duplicate]] = False
            rows = rows[~duplicate]
            lost = np.zeros(good.size, dtype=np.int64)
            lost[rows] = lost_all[~duplicate]
        if not good.all():
            stats.bytes_discarded += int(enc_len[~good].sum())
        stats.frames += int(rows.size)
        if rows.size == 0:
            return _EMPTY_BATCH

        position = np.full(good.size, -1, dtype=np.int64)
        position[rows] = np.arange(rows.size)
        kept = good[block_rows]
        columns = heads.columns(
            dec, kept, position[block_rows[kept]], seq[block_rows[kept]], lost[block_rows[kept]]
        )
        other = tuple(
            (int(position[row]), DecodedFrame(int(seq[row]), message, int(lost[row])))
            for row, message in others.items()
            if good[row]
        )
        return DecodedBatch(int(rows.size), columns, other)

    def _decode_segments(self, region: bytes) -> DecodedBatch:
        """Frame-by-frame decoding of a small *region*; same frames and counters."""
        stats = self.stats
        seqs: list[int] = []
        messages: list[Message] = []
        sizes: list[int] = []
        for segment in region.split(b"\x00")[:-1]:
            size = len(segment)
            if size == 0:
                continue
            if size > MAX_ENCODED_SIZE:
                stats.oversize += 1
                stats.bytes_discarded += size
                continue
            try:
                if size <= FRAME_OVERHEAD:
                    raise FramingError("frame too short")
                frame_bytes = cobs.decode(segment)
            except FramingError:
                stats.framing_errors += 1
                stats.bytes_discarded += size
                continue
            message = self._check(frame_bytes)
            if message is None:
                stats.bytes_discarded += size
                continue
            seqs.append(frame_bytes[2] | (frame_bytes[3] << 8))
            messages.append(message)
            sizes.append(size)
        frames = self._sequence(seqs, messages, sizes)
        return DecodedBatch(len(frames), (), tuple(enumerate(frames)))


@dataclass(frozen=True, eq=False)
class SampleColumns:
    """Sample blocks of one layout from one batch, column-wise (no object per block).

    Attributes:
        position: index of each block among the batch's accepted frames.
        seq, lost_before: frame sequence number and frames lost before it.
        t_first_us, sample_index, period_ns: block header fields, as on the wire.
        flags, saturated_mask, fault_mask: per-block flag bytes.
        channel_mask, encoding: the layout shared by every block here.
        samples: int32 array (blocks, samples per block, channels).
    """

    position: np.ndarray
    seq: np.ndarray
    lost_before: np.ndarray
    t_first_us: np.ndarray
    sample_index: np.ndarray
    period_ns: np.ndarray
    flags: np.ndarray
    saturated_mask: np.ndarray
    fault_mask: np.ndarray
    channel_mask: int
    encoding: Encoding
    samples: np.ndarray

    def frames(self) -> list[tuple[int, DecodedFrame]]:
        """(position, frame) per block, materialised as :class:`SampleBlock` objects."""
        new = object.__new__
        out = []
        for pos, seq, lost, t, idx, period, flags, sat, fault, samples in zip(
            self.position.tolist(),
            self.seq.tolist(),
            self.lost_before.tolist(),
            self.t_first_us.tolist(),
            self.sample_index.tolist(),
            self.period_ns.tolist(),
            self.flags.tolist(),
            self.saturated_mask.tolist(),
            self.fault_mask.tolist(),
            self.samples,
            strict=True,
        ):
            block = new(SampleBlock)
            # Filling __dict__ directly skips the frozen __setattr__ guard per
            # field; this loop runs once per frame on the hot path.
            block.__dict__.update(
                {
                    "t_first_us": t,
                    "sample_index": idx,
                    "period_ns": period,
                    "channel_mask": self.channel_mask,
                    "encoding": self.encoding,
                    "samples": samples,
                    "flags": BLOCK_FLAGS[flags],
                    "saturated_mask": sat,
                    "fault_mask": fault,
                }
            )
            out.append((pos, DecodedFrame(seq, block, lost)))
        return out


@dataclass(frozen=True, eq=False)
class DecodedBatch:
    """The frames one feed completed: sample blocks column-wise, others as frames.

    Attributes:
        count: frames accepted in this batch.
        sample_columns: one :class:`SampleColumns` per sample layout present.
        other: (position, frame) for every frame not in ``sample_columns``: all
            non-sample frames, and every frame of a small batch (decoded frame
            by frame), sample blocks included.
    """

    count: int
    sample_columns: tuple[SampleColumns, ...]
    other: tuple[tuple[int, DecodedFrame], ...]

    def frames(self) -> list[DecodedFrame]:
        """Every frame of the batch, in arrival order, as objects."""
        if not self.sample_columns:
            return [frame for _, frame in self.other]
        items = list(self.other)
        for columns in self.sample_columns:
            items += columns.frames()
        if len(self.sample_columns) > 1 or self.other:
            items.sort(key=lambda item: item[0])
        return [frame for _, frame in items]


_EMPTY_BATCH = DecodedBatch(0, (), ())


def _cobs_decode_many(
    arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, walk: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """COBS-decode, in place, the segments ``arr[starts[i]:ends[i]]`` where *walk* is set.

    A legal frame is shorter than 254 bytes, so its encoding has no 0xFF code
    and every code byte after the first stands for one zero: decoding is
    writing 0 over those code bytes, and frame i is ``out[starts[i] + 1 :
    ends[i]]``. All segments are walked code by code in parallel: one numpy
    step per code byte of the longest chain, not per byte.

    Returns:
        ``out`` (a decoded copy of *arr*) and, per segment, whether its code
        chain was legal (no 0xFF code, ended exactly at its delimiter).
    """
    ids = np.flatnonzero(walk)
    p = starts[ids]
    e = ends[ids]
    zero_at: list[np.ndarray] = []
    chain_ok = np.zeros(starts.size, dtype=bool)
    while p.size:
        code = arr[p]
        nxt = p + code
        inside = (nxt < e) & (code != 0xFF)
        zero_at.append(nxt[inside])
        if not inside.all():
            done = ~inside
            chain_ok[ids[done]] = (nxt[done] == e[done]) & (code[done] != 0xFF)
            p, e, ids = nxt[inside], e[inside], ids[inside]
        else:
            p = nxt
    out = arr.copy()
    out[np.concatenate(zero_at)] = 0
    return out, chain_ok


@dataclass(frozen=True, eq=False)
class _BlockHeads:
    """The SampleBlock headers of a region's checked frames, parsed column-wise."""

    start: np.ndarray
    head: np.ndarray
    layout: np.ndarray
    valid: np.ndarray

    @classmethod
    def parse(cls, dec: np.ndarray, start: np.ndarray, length: np.ndarray) -> _BlockHeads:
        """Parse the headers of the frames at *start* (*length* bytes, header to CRC)."""
        long_enough = length >= _SAMPLE_HEAD + CRC_SIZE
        first = start + HEADER_SIZE
        head = dec[np.minimum(first[:, None] + np.arange(SampleBlock.HEAD_SIZE), dec.size - 1)]
        enc = head[:, 13].astype(np.int64)
        n = head[:, 17].astype(np.int64)
        n_ch = _POPCOUNT[head[:, 12]]
        valid = long_enough & ((enc == 2) | (enc == 3) | (enc == 4))
        valid &= length >= _SAMPLE_HEAD + CRC_SIZE + n * n_ch * enc
        layout = (enc << 16) | (head[:, 12].astype(np.int64) << 8) | n
        return cls(first, head, layout, valid)

    def columns(
        self,
        dec: np.ndarray,
        kept: np.ndarray,
        position: np.ndarray,
        seq: np.ndarray,
        lost: np.ndarray,
    ) -> tuple[SampleColumns, ...]:
        """One :class:`SampleColumns` per layout among the *kept* blocks."""
        if not kept.any():
            return ()
        head = self.head[kept]
        first = self.start[kept]
        layout = self.layout[kept]
        u32 = np.ascontiguousarray(head[:, :12]).view("<u4")
        first_key = int(layout[0])
        # Nearly always one layout; np.unique would cost more than the rest here.
        keys = [first_key] if (layout == first_key).all() else sorted(set(layout.tolist()))
        out = []
        for key in keys:
            m = layout == key if len(keys) > 1 else slice(None)
            enc, mask, n = key >> 16, (key >> 8) & 0xFF, key & 0xFF
            c = int(_POPCOUNT[mask])
            raw = _gather_rows(dec, first[m] + SampleBlock.HEAD_SIZE, n * c * enc)
            out.append(
                SampleColumns(
                    position=position[m],
                    seq=seq[m],
                    lost_before=lost[m],
                    t_first_us=u32[m, 0],
                    sample_index=u32[m, 1],
                    period_ns=u32[m, 2],
                    flags=head[m, 14],
                    saturated_mask=head[m, 15],
                    fault_mask=head[m, 16],
                    channel_mask=mask,
                    encoding=ENCODINGS[enc],
                    samples=decode_samples(raw, enc, n, c),
                )
            )
        return tuple(out)


def _gather_rows(dec: np.ndarray, first: np.ndarray, width: int) -> np.ndarray:
    """``dec[first[i] : first[i] + width]`` for every i, as a (len(first), width) array.

    Frames of one layout usually sit back to back at a fixed stride; then the
    rows are a strided view and nothing is copied.
    """
    if first.size > 1:
        stride = int(first[1] - first[0])
        if stride >= width and bool(np.all(np.diff(first) == stride)):
            return np.lib.stride_tricks.as_strided(
                dec[int(first[0]) :],
                shape=(first.size, width),
                strides=(stride, 1),
                writeable=False,
            )
    return dec[first[:, None] + np.arange(width)]


_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.int64)

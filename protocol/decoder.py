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
from knotsense.errors import CrcError, MessageError, ProtocolError
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
    BlockFlags,
    Encoding,
    Message,
    MessageType,
    SampleBlock,
)

_BLOCK_FLAGS = tuple(BlockFlags(v) for v in range(256))
_ENCODINGS = {e.value: e for e in Encoding}
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


class _DecoderBase:
    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._seq = _SequenceTracker(self.stats)

    def reset(self) -> None:
        """Forget partial input, sequence history and counters."""
        self.stats = DecoderStats()
        self._seq = _SequenceTracker(self.stats)


class PacketDecoder(_DecoderBase):
    """Decoder for links that carry one unencoded frame per packet (BLE)."""

    def feed(self, packet: bytes | bytearray | memoryview) -> list[DecodedFrame]:
        """Decode one packet; returns [] (and counts why) when it is rejected."""
        stats = self.stats
        stats.bytes_in += len(packet)
        try:
            frame = parse_frame(packet)
            message = decode_message(frame.msg_type, frame.payload)
        except ProtocolError as exc:
            stats.bytes_discarded += len(packet)
            _count_error(stats, exc, packet)
            return []
        lost, duplicate = self._seq.observe(np.array([frame.seq]))
        if duplicate[0]:
            stats.bytes_discarded += len(packet)
            return []
        stats.frames += 1
        if frame.msg_type not in _KNOWN_TYPES:
            stats.unknown_types += 1
        return [DecodedFrame(frame.seq, message, int(lost[0]))]


def _count_error(stats: DecoderStats, exc: ProtocolError, packet: bytes | memoryview) -> None:
    if isinstance(exc, CrcError):
        stats.crc_errors += 1
    elif isinstance(exc, MessageError):
        stats.message_errors += 1
    elif len(packet) > MAX_FRAME_SIZE:
        stats.oversize += 1
    elif len(packet) >= FRAME_OVERHEAD and packet[0] != PROTOCOL_VERSION:
        stats.version_errors += 1
    else:
        stats.framing_errors += 1


_KNOWN_TYPES = frozenset(int(t) for t in MessageType)


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

    @property
    def buffered(self) -> int:
        """Bytes held waiting for a delimiter (never more than the longest frame)."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodedFrame]:
        """Add bytes; return every frame they complete, in order."""
        self.stats.bytes_in += len(data)
        pending = self._pending
        pending += data
        last = pending.rfind(0)
        if last < 0:
            self._bound_tail()
            return []
        region = bytes(pending[: last + 1])
        del pending[: last + 1]
        if self._skipping:
            # The rest of an oversize run, up to its delimiter, is junk too.
            first = region.index(0)
            self.stats.bytes_discarded += first
            region = region[first + 1 :]
            self._skipping = False
        out = self._decode_region(region) if region else []
        self._bound_tail()
        return out

    def _bound_tail(self) -> None:
        if len(self._pending) > MAX_ENCODED_SIZE:
            if not self._skipping:
                self.stats.oversize += 1
            self.stats.bytes_discarded += len(self._pending)
            self._pending.clear()
            self._skipping = True

    def _decode_region(self, region: bytes) -> list[DecodedFrame]:
        """Decode every frame of *region*, which ends with a delimiter."""
        stats = self.stats
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
            return []

        decoded, dec_start, dec_len, cobs_ok = _cobs_decode_many(arr, starts, ends, candidates)
        enc_len = lengths[candidates]
        dec_start, dec_len, cobs_ok = (
            dec_start[candidates],
            dec_len[candidates],
            cobs_ok[candidates],
        )
        dec = np.frombuffer(decoded, dtype=np.uint8)
        mv = memoryview(decoded)
        frames = map(mv.__getitem__, map(slice, dec_start.tolist(), (dec_start + dec_len).tolist()))
        crc_ok = np.array(list(map(crc_hqx, frames, repeat(0xFFFF)))) == 0
        head = dec[np.minimum(dec_start[:, None] + np.arange(HEADER_SIZE), dec.size - 1)]
        version = head[:, 0]
        msg_type = head[:, 1]
        seq = head[:, 2].astype(np.int64) | (head[:, 3].astype(np.int64) << 8)
        length = head[:, 4].astype(np.int64) | (head[:, 5].astype(np.int64) << 8)

        checked = cobs_ok & crc_ok
        bad_version = checked & (version != PROTOCOL_VERSION)
        bad_length = (
            checked
            & ~bad_version
            & ((length != dec_len - FRAME_OVERHEAD) | (dec_len > MAX_FRAME_SIZE))
        )
        good = checked & ~bad_version & ~bad_length
        stats.framing_errors += int((~cobs_ok).sum() + bad_length.sum())
        stats.crc_errors += int((cobs_ok & ~crc_ok).sum())
        stats.version_errors += int(bad_version.sum())
        if not good.all():
            stats.bytes_discarded += int(enc_len[~good].sum())

        rows = np.flatnonzero(good)
        if rows.size == 0:
            return []
        messages = self._decode_messages(
            decoded, dec, dec_start[rows], dec_len[rows], msg_type[rows]
        )
        accepted = [k for k, m in enumerate(messages) if m is not None]
        if len(accepted) < rows.size:
            stats.message_errors += rows.size - len(accepted)
            rejected = np.ones(rows.size, dtype=bool)
            rejected[accepted] = False
            stats.bytes_discarded += int(enc_len[rows[rejected]].sum())
            rows = rows[accepted]
            messages = [messages[k] for k in accepted]
            if not messages:
                return []
        lost, duplicate = self._seq.observe(seq[rows])
        if duplicate.any():
            stats.bytes_discarded += int(enc_len[rows[duplicate]].sum())
        stats.frames += int(rows.size - duplicate.sum())
        return [
            DecodedFrame(s, m, n)
            for s, m, n, d in zip(
                seq[rows].tolist(), messages, lost.tolist(), duplicate.tolist(), strict=True
            )
            if not d
        ]

    def _decode_messages(
        self,
        decoded: bytes,
        dec: np.ndarray,
        start: np.ndarray,
        length: np.ndarray,
        msg_type: np.ndarray,
    ) -> list[Message | None]:
        """Decode the payload of every checked frame; None where it is malformed."""
        messages: list[Message | None] = [None] * start.size
        is_block = msg_type == MessageType.SAMPLE_BLOCK
        if is_block.any():
            where = np.flatnonzero(is_block)
            for k, block in zip(
                where.tolist(), _decode_sample_blocks(dec, start[where], length[where]), strict=True
            ):
                messages[k] = block
        if not is_block.all():
            types = msg_type.tolist()
            for k in np.flatnonzero(~is_block).tolist():
                a = int(start[k]) + HEADER_SIZE
                b = int(start[k] + length[k]) - CRC_SIZE
                try:
                    messages[k] = decode_message(types[k], decoded[a:b])
                except ProtocolError:
                    continue
                if types[k] not in _KNOWN_TYPES:
                    self.stats.unknown_types += 1
        return messages


def _cobs_decode_many(
    arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, walk: np.ndarray
) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """COBS-decode the segments ``arr[starts[i]:ends[i]]`` where *walk* is set.

    All segments are walked code by code in parallel: one numpy step per code
    byte of the longest chain, not per byte. Segments not walked pass through
    unchanged. Returns the segments decoded and concatenated, each segment's
    start and length in that buffer, and whether its code chain was valid
    (ended exactly at its delimiter).
    """
    is_code = np.zeros(arr.size, dtype=bool)
    n_codes = np.zeros(starts.size, dtype=np.int64)
    n_zeros = np.zeros(starts.size, dtype=np.int64)
    zero_at: list[np.ndarray] = []
    pos = starts.copy()
    active = np.flatnonzero(walk)
    while active.size:
        p = pos[active]
        is_code[p] = True
        n_codes[active] += 1
        code = arr[p].astype(np.int64)
        nxt = p + code
        inside = nxt < ends[active]
        zero = inside & (code < 0xFF)
        zero_at.append(nxt[zero])
        n_zeros[active[zero]] += 1
        pos[active] = nxt
        active = active[inside]
    chain_ok = pos == ends

    keep = ~is_code
    keep[ends] = False
    out = arr.copy()
    z = np.concatenate(zero_at)
    keep[z] = True
    out[z] = 0
    dec_len = (ends - starts) - n_codes + n_zeros
    dec_start = np.zeros_like(dec_len)
    np.cumsum(dec_len[:-1], out=dec_start[1:])
    return out[keep].tobytes(), dec_start, dec_len, chain_ok


def _decode_sample_blocks(
    dec: np.ndarray, start: np.ndarray, length: np.ndarray
) -> list[SampleBlock | None]:
    """Every SampleBlock frame of a region, with one numpy gather per sample layout.

    *start* and *length* locate whole frames (header to CRC) in *dec*; the
    result holds None for a frame whose payload is malformed.
    """
    blocks: list[SampleBlock | None] = [None] * start.size
    long_enough = length >= _SAMPLE_HEAD + CRC_SIZE
    rows = np.flatnonzero(long_enough)
    if rows.size == 0:
        return blocks
    h = start[rows] + HEADER_SIZE
    head = dec[h[:, None] + np.arange(SampleBlock.HEAD_SIZE)]
    u32 = np.ascontiguousarray(head[:, :12]).view("<u4")
    enc = head[:, 13].astype(np.int64)
    n = head[:, 17].astype(np.int64)
    n_ch = _POPCOUNT[head[:, 12]]
    valid = ((enc == 2) | (enc == 3) | (enc == 4)) & (
        length[rows] >= _SAMPLE_HEAD + CRC_SIZE + n * n_ch * enc
    )
    t_first, index, period = u32[:, 0].tolist(), u32[:, 1].tolist(), u32[:, 2].tolist()
    masks, flags, sat, fault = (head[:, i].tolist() for i in (12, 14, 15, 16))
    layout_key = (enc << 16) | (n << 8) | n_ch
    new = object.__new__
    for key in np.unique(layout_key[valid]).tolist():
        members = np.flatnonzero(valid & (layout_key == key))
        e, ns, c = key >> 16, (key >> 8) & 0xFF, key & 0xFF
        samples = _decode_sample_matrix(
            _gather_rows(dec, h[members] + SampleBlock.HEAD_SIZE, ns * c * e), e, ns, c
        )
        encoding = _ENCODINGS[e]
        row_ids = rows[members].tolist()
        for k, row, block_samples in zip(members.tolist(), row_ids, samples, strict=True):
            block = new(SampleBlock)
            # Filling __dict__ directly skips the frozen __setattr__ guard per
            # field; this loop runs once per frame on the hot path.
            block.__dict__.update(
                {
                    "t_first_us": t_first[k],
                    "sample_index": index[k],
                    "period_ns": period[k],
                    "channel_mask": masks[k],
                    "encoding": encoding,
                    "samples": block_samples,
                    "flags": _BLOCK_FLAGS[flags[k]],
                    "saturated_mask": sat[k],
                    "fault_mask": fault[k],
                }
            )
            blocks[row] = block
    return blocks


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


def _decode_sample_matrix(raw: np.ndarray, enc: int, n: int, c: int) -> np.ndarray:
    """(frames, n*c*enc) bytes to an int32 array (frames, n, c)."""
    frames = raw.shape[0]
    if enc == Encoding.INT24:
        b = raw.reshape(frames, n * c, 3).astype(np.int32)
        v = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        v = (v ^ 0x800000) - 0x800000
        return v.reshape(frames, n, c)
    dtype = "<i2" if enc == Encoding.INT16 else "<i4"
    return np.ascontiguousarray(raw).view(dtype).reshape(frames, n, c).astype(np.int32)

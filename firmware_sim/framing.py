"""Vectorised framing of sample blocks: many SampleBlock frames built with one numpy pass.

The simulator emits a sample block every few milliseconds; building each with
:class:`~knotsense.protocol.Encoder` costs tens of microseconds of Python.
Here all blocks of a batch share one layout, so the header fields, the sample
bytes and the COBS stuffing are array operations, and only the CRC runs once
per frame (in C, :func:`binascii.crc_hqx`). The bytes are identical to
``Encoder.encode(SampleBlock(...))`` -- the tests check that.
"""

from __future__ import annotations

from binascii import crc_hqx

import numpy as np

from knotsense.protocol import PROTOCOL_VERSION, Encoding, MessageType
from knotsense.protocol.frame import MAX_FRAME_SIZE


def _block_dtype(data_bytes: int) -> np.dtype:
    return np.dtype(
        [
            ("version", "u1"),
            ("type", "u1"),
            ("seq", "<u2"),
            ("length", "<u2"),
            ("t_first_us", "<u4"),
            ("sample_index", "<u4"),
            ("period_ns", "<u4"),
            ("channel_mask", "u1"),
            ("encoding", "u1"),
            ("flags", "u1"),
            ("saturated_mask", "u1"),
            ("fault_mask", "u1"),
            ("n_samples", "u1"),
            ("data", "u1", (data_bytes,)),
            ("crc", ">u2"),
        ]
    )


def sample_bytes(samples: np.ndarray, encoding: int) -> np.ndarray:
    """(nb, n, C) int samples to (nb, n*C*E) little-endian bytes (values must fit)."""
    nb = samples.shape[0]
    if encoding == Encoding.INT16:
        return np.ascontiguousarray(samples, dtype="<i2").view(np.uint8).reshape(nb, -1)
    if encoding == Encoding.INT32:
        return np.ascontiguousarray(samples, dtype="<i4").view(np.uint8).reshape(nb, -1)
    b = np.ascontiguousarray(samples, dtype="<i4").view(np.uint8).reshape(nb, -1, 4)
    return b[:, :, :3].reshape(nb, -1)


def sample_block_frames(
    seq: np.ndarray,
    t_first_us: np.ndarray,
    sample_index: np.ndarray,
    period_ns: int,
    channel_mask: int,
    encoding: int,
    samples: np.ndarray,
    flags: np.ndarray | int = 0,
    saturated_mask: np.ndarray | int = 0,
    fault_mask: np.ndarray | int = 0,
) -> np.ndarray:
    """Unencoded SampleBlock frames, one row each: (nb, frame length) uint8.

    Args:
        seq, t_first_us, sample_index: per block (wrapped here).
        samples: (nb, n, C) sample values, all blocks of one layout.
    """
    nb, n = samples.shape[:2]
    data = sample_bytes(samples, encoding)
    rec = np.zeros(nb, dtype=_block_dtype(data.shape[1]))
    rec["version"] = PROTOCOL_VERSION
    rec["type"] = MessageType.SAMPLE_BLOCK
    rec["seq"] = np.asarray(seq) & 0xFFFF
    rec["length"] = 18 + data.shape[1]
    rec["t_first_us"] = np.asarray(t_first_us, dtype=np.int64) & 0xFFFFFFFF
    rec["sample_index"] = np.asarray(sample_index, dtype=np.int64) & 0xFFFFFFFF
    rec["period_ns"] = period_ns
    rec["channel_mask"] = channel_mask
    rec["encoding"] = int(encoding)
    rec["flags"] = flags
    rec["saturated_mask"] = saturated_mask
    rec["fault_mask"] = fault_mask
    rec["n_samples"] = n
    rec["data"] = data
    frames = rec.view(np.uint8).reshape(nb, -1)
    length = frames.shape[1]
    if length > MAX_FRAME_SIZE:
        raise ValueError(f"sample block frame of {length} bytes is too long")
    flat = memoryview(frames.reshape(-1))
    body = length - 2
    rec["crc"] = [crc_hqx(flat[i * length : i * length + body], 0xFFFF) for i in range(nb)]
    return frames


def set_crc(frames: np.ndarray) -> None:
    """Recompute the CRC of every row in place (after editing header fields)."""
    nb, length = frames.shape
    flat = memoryview(np.ascontiguousarray(frames).reshape(-1))
    crcs = np.array(
        [crc_hqx(flat[i * length : (i + 1) * length - 2], 0xFFFF) for i in range(nb)],
        dtype=np.uint16,
    )
    frames[:, -2] = crcs >> 8
    frames[:, -1] = crcs & 0xFF


def stuff_rows(frames: np.ndarray) -> np.ndarray:
    """COBS-encode every row and append the 0x00 delimiter: (nb, L) -> (nb, L + 2).

    Valid for rows shorter than 254 bytes (every frame of protocol v1), where
    no 0xFF code occurs and the encoding is always exactly one byte longer.
    Each row becomes ``[placeholder] + frame + [delimiter]``; every zero of the
    flattened result (placeholders and data zeros) then takes the distance to
    the next zero as its code, and the delimiters are put back.
    """
    nb, length = frames.shape
    if length >= 254:
        raise ValueError("stuff_rows handles frames shorter than 254 bytes")
    out = np.zeros((nb, length + 2), dtype=np.uint8)
    out[:, 1 : length + 1] = frames
    flat = out.reshape(-1)
    zeros = np.flatnonzero(flat == 0)
    flat[zeros[:-1]] = np.diff(zeros)
    out[:, length + 1] = 0
    return out

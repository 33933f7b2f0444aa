"""Consistent Overhead Byte Stuffing (COBS) for byte-stream links.

COBS removes every 0x00 from a frame so that 0x00 can delimit frames on
serial and pty links; a receiver resynchronises at the next 0x00 after any
corruption. Overhead is one byte per 254 bytes (plus one).

Encoded layout (``code`` = 1 + count of data bytes that follow, up to 0xFF)::

    data:    11 22 00 33
    encoded: 03 11 22 02 33 | 00 (delimiter, added by the framer)
             ^code    ^code

A code of 0xFF means 254 data bytes follow with *no* implied zero.
"""

from __future__ import annotations

from knotsense.errors import FramingError


def max_encoded_length(n: int) -> int:
    """Longest COBS encoding of *n* bytes, without the delimiter."""
    return n + 1 + n // 254


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode *data* (the 0x00 delimiter is not appended)."""
    data = bytes(data)
    out = bytearray()
    start = 0
    n = len(data)
    while True:
        zero = data.find(0, start, start + 254)
        if zero == -1 and n - start >= 254:
            # A full run of 254 non-zero bytes: code 0xFF, no implied zero.
            out.append(0xFF)
            out += data[start : start + 254]
            start += 254
            if start == n:
                break
            continue
        end = n if zero == -1 else zero
        out.append(end - start + 1)
        out += data[start:end]
        if zero == -1:
            break
        start = zero + 1
    return bytes(out)


def decode(encoded: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS-encoded frame (without its delimiter).

    Decoding is done in place: every code byte after the first stands for a
    zero (or, after a 0xFF code, for nothing), so the walk visits one byte per
    block, never one per data byte.

    Raises:
        FramingError: a zero byte inside the frame, or a code that runs past
            the end of the frame.
    """
    data = bytearray(encoded)
    n = len(data)
    zero = data.find(0)
    if zero != -1:
        raise FramingError(f"COBS: zero byte at offset {zero} inside a frame")
    zeros: list[int] = []
    dropped: list[int] = []
    i = 0
    while i < n:
        code = data[i]
        nxt = i + code
        if nxt > n:
            raise FramingError(f"COBS: code {code} at offset {i} runs past the frame end ({n})")
        if nxt < n:
            (dropped if code == 0xFF else zeros).append(nxt)
        i = nxt
    for pos in zeros:
        data[pos] = 0
    for pos in reversed(dropped):
        del data[pos]
    del data[0:1]
    return bytes(data)

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

    Raises:
        FramingError: a zero byte inside the frame, or a code that runs past
            the end of the frame.
    """
    encoded = bytes(encoded)
    n = len(encoded)
    out = bytearray()
    i = 0
    while i < n:
        code = encoded[i]
        if code == 0:
            raise FramingError(f"COBS: zero byte at offset {i} inside a frame")
        end = i + code
        if end > n:
            raise FramingError(f"COBS: code {code} at offset {i} runs past the frame end ({n})")
        block = encoded[i + 1 : end]
        if 0 in block:
            raise FramingError("COBS: zero byte inside a block")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)

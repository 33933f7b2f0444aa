"""COBS: canonical examples, round trips, error cases, size bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import SETTINGS

from knotsense.errors import FramingError
from knotsense.protocol import cobs

WIKIPEDIA = [
    ("00", "0101"),
    ("0000", "010101"),
    ("001100", "01021101"),
    ("11220033", "0311220233"),
    ("11223344", "0511223344"),
    ("11000000", "0211010101"),
    (bytes(range(1, 255)).hex(), "ff" + bytes(range(1, 255)).hex()),
    (bytes(range(0, 255)).hex(), "01ff" + bytes(range(1, 255)).hex()),
    (bytes(range(1, 256)).hex(), "ff" + bytes(range(1, 255)).hex() + "02ff"),
    (bytes(range(2, 256)).hex() + "00", "ff" + bytes(range(2, 256)).hex() + "0101"),
    (bytes(range(3, 256)).hex() + "0001", "fe" + bytes(range(3, 256)).hex() + "0201"),
    ("", "01"),
]


@pytest.mark.parametrize(("decoded", "encoded"), WIKIPEDIA)
def test_canonical_examples(decoded: str, encoded: str) -> None:
    assert cobs.encode(bytes.fromhex(decoded)).hex() == encoded
    assert cobs.decode(bytes.fromhex(encoded)).hex() == decoded


def reference_encode(data: bytes) -> bytes:
    """The textbook byte-at-a-time encoder."""
    out = bytearray([0])
    code_at, code = 0, 1
    for i, b in enumerate(data):
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(b)
        code += 1
        if code == 0xFF and i + 1 < len(data):
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


zero_heavy = st.lists(st.sampled_from([0, 0, 1, 0xFF, 7]), max_size=600).map(bytes)


@SETTINGS
@given(st.one_of(st.binary(max_size=700), zero_heavy))
def test_round_trip_and_reference(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert 0 not in encoded
    assert cobs.decode(encoded) == data
    assert encoded == reference_encode(data)
    assert len(encoded) <= cobs.max_encoded_length(len(data))
    if len(data) < 254:
        assert len(encoded) == len(data) + 1


@pytest.mark.parametrize("n", [252, 253, 254, 255, 507, 508, 509])
def test_block_boundaries(n: int) -> None:
    data = bytes((i % 255) + 1 for i in range(n))
    encoded = cobs.encode(data)
    assert cobs.decode(encoded) == data
    assert len(encoded) == cobs.max_encoded_length(n) - (1 if n % 254 == 0 else 0)
    assert encoded[0] == (0xFF if n >= 254 else n + 1)


@pytest.mark.parametrize(
    "bad",
    ["00", "0311", "05112233", "031100", "ff" + "11" * 10, "020100"],
)
def test_decode_rejects_broken_chains(bad: str) -> None:
    with pytest.raises(FramingError):
        cobs.decode(bytes.fromhex(bad))


@SETTINGS
@given(st.binary(max_size=300))
def test_decode_random_raises_only_framing_error(data: bytes) -> None:
    try:
        out = cobs.decode(data)
    except FramingError:
        return
    assert cobs.decode(cobs.encode(out)) == out

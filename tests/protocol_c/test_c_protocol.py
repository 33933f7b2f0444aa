"""The C implementation of protocol v1 (protocol/c/) against the Python reference.

The C code is built with the system compiler into a temporary directory
during the run; nothing is skipped when a compiler exists. The C test
program (protocol/c/tests/ks_test.c) reads a line format written here from
protocol/vectors.json and from seeded random messages and streams:

- every spec vector encodes to the same bytes and decodes to the same fields;
- frames built in C decode in Python, frames built in Python decode in C;
- the C byte-at-a-time stream decoder accepts and drops exactly the frames
  (and counts exactly what) the Python StreamDecoder does, on seeded random
  corrupted streams;
- all of it again under AddressSanitizer + UndefinedBehaviorSanitizer, and a
  bounded random-input run (libFuzzer too when clang is there). Set
  KNOTSENSE_FUZZ_SECONDS for a longer fuzz run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from make_vectors import message_fields  # tools/ (pytest pythonpath)

from knotsense.protocol import (
    CalibrationChunk,
    ChannelInfo,
    ChannelWeight,
    Command,
    CommitCalibration,
    DeviceEvent,
    DeviceInfo,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    LogText,
    Opcode,
    Ping,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    Response,
    SampleBlock,
    SetStreamConfig,
    StartStream,
    Status,
    StatusCode,
    StopStream,
    StreamConfig,
    StreamDecoder,
    Tare,
    TareResult,
    Thresholds,
    UnknownCommand,
    UnknownMessage,
    WriteCalibration,
    WriteThresholds,
    build_frame,
    crc16,
    decode_message,
    decode_packet,
    stuff,
)

ROOT = Path(__file__).resolve().parents[2]
C_DIR = ROOT / "protocol" / "c"
VECTORS = ROOT / "protocol" / "vectors.json"
LIBRARY = C_DIR / "knotsense_protocol.c"
TEST_PROGRAM = C_DIR / "tests" / "ks_test.c"
FUZZ_TARGET = C_DIR / "fuzz" / "fuzz_decoder.c"
RANDOM_DRIVER = C_DIR / "fuzz" / "random_driver.c"

STRICT = [
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wshadow",
    "-Wcast-qual",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
FUZZ_SECONDS = float(os.environ.get("KNOTSENSE_FUZZ_SECONDS", "2"))
HEX_FIELDS = {"data", "args", "payload", "result", "result_data"}


# --- building ---------------------------------------------------------------------------------


@cache
def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cc() -> str:
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler on this machine (set CC, or install gcc or clang)")
    return cc


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)


def _build(cc: str, out: Path, sources: list[Path], flags: list[str]) -> Path:
    result = _run([cc, *flags, "-I", str(C_DIR), *map(str, sources), "-o", str(out)])
    assert result.returncode == 0, f"{cc} failed:\n{result.stderr[-4000:]}"
    return out


# What the library itself includes: a toolchain variant is only usable when it
# compiles these, not merely `int x;` (gcc -m32 does that without 32-bit headers).
PROBE_SOURCE = """#include <stddef.h>
#include <stdint.h>
#include <string.h>
int main(void) {
    uint8_t a[4] = {1, 2, 3, 4};
    uint8_t b[4];
    size_t n = sizeof a;
    memcpy(b, a, n);
    return memcmp(a, b, n);
}
"""


def _last_line(text: str) -> str:
    """The compiler's first error line (else its last line), for a skip reason."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line]
    return (errors or lines or ["(no output)"])[0 if errors else -1][:300]


@cache
def toolchain_problem(
    compiler: str, flags: tuple[str, ...], workdir: str, link: bool
) -> str | None:
    """Why `compiler flags` cannot build (and, if `link`, run) a program using
    the library's headers, or None when it can.

    Every optional variant (32-bit, sanitizers, cross compilers, libFuzzer)
    is probed this way and skipped with the returned reason.
    """
    tag = str(abs(hash((compiler, flags, link))))
    src = Path(workdir) / f"probe_{tag}.c"
    src.write_text(PROBE_SOURCE)
    out = Path(workdir) / f"probe_{tag}{'' if link else '.o'}"
    cmd = [compiler, *flags, *([] if link else ["-c"]), str(src), "-o", str(out)]
    try:
        built = _run(cmd)
    except OSError as exc:
        return f"{compiler} {' '.join(flags)} cannot start: {exc}"
    if built.returncode != 0:
        return (
            f"{compiler} {' '.join(flags)} cannot build a program with"
            f" <stdint.h>, <stddef.h>, <string.h>: {_last_line(built.stderr)}"
        )
    if link:
        ran = _run([str(out)])
        if ran.returncode != 0:
            why = _last_line(ran.stderr)
            return f"programs built with {compiler} {' '.join(flags)} do not run here: {why}"
    return None


def _sanitizer_problem(cc: str, workdir: str) -> str | None:
    """Why sanitized programs cannot run here, or None when they can."""
    return toolchain_problem(cc, tuple(SANITIZE), workdir, True)


def _skip_variant(problem: str | None) -> None:
    """Skip an optional toolchain variant, printing why (shown by `pytest -ra`)."""
    if problem:
        print(f"skipped variant: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("protocol_c")


@pytest.fixture(scope="module")
def ks_test(workdir: Path) -> Path:
    """The C test program, built warning-free with the strict flags."""
    return _build(_cc(), workdir / "ks_test", [TEST_PROGRAM, LIBRARY], [*STRICT[:5], "-O2"])


@pytest.fixture(scope="module")
def ks_test_sanitized(workdir: Path) -> Path:
    cc = _cc()
    _skip_variant(_sanitizer_problem(cc, str(workdir)))
    return _build(
        cc, workdir / "ks_test_asan", [TEST_PROGRAM, LIBRARY], [*STRICT[:5], "-O1", "-g", *SANITIZE]
    )


def _drive(program: Path, lines: list[str]) -> list[str]:
    result = _run([str(program)], input="\n".join(lines) + "\n")
    out = result.stdout.splitlines()
    assert result.returncode == 0, "\n".join(
        [*[line for line in out if line.startswith("FAIL")][:20], result.stderr[-3000:]]
    )
    return out


# --- the line format --------------------------------------------------------------------------


def _value(key: str, v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list | tuple):
        return ",".join(str(int(x)) for x in v)
    if isinstance(v, str):
        return v if key in HEX_FIELDS else v.encode("utf-8").hex()
    raise TypeError(f"{key}: {v!r}")


def _field_tokens(fields: dict[str, Any]) -> dict[str, str]:
    return {f"f.{k}": _value(k, v) for k, v in fields.items()}


def _line(word: str, **kv: Any) -> str:
    return " ".join([word, *(f"{k}={v}" for k, v in kv.items())])


def _parse_tokens(text: str) -> dict[str, str]:
    out = {}
    for tok in text.split()[1:]:
        k, _, v = tok.partition("=")
        out[k] = v
    return out


@cache
def _vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


def _vector_lines() -> list[str]:
    v = _vectors()
    lines = []
    for c in v["crc"]:
        lines.append(_line("crc", name=f"crc_{c['name']}", data=c["data"], crc=c["crc"]))
    for c in v["cobs"]:
        lines.append(
            _line("cobs", name=f"cobs_{c['name']}", decoded=c["decoded"], encoded=c["encoded"])
        )
    for f in v["frames"]:
        meta = {k: f[k] for k in ("message", "type", "seq", "payload", "frame", "stream")}
        lines.append(
            " ".join(
                [_line("frame", name=f"frame_{f['name']}", **meta)]
                + [f"{k}={val}" for k, val in _field_tokens(f["fields"]).items()]
            )
        )
    for r in v["rejects"]:
        delivered = ",".join(f"{d['seq']}:{d['type']}:{d['lost_before']}" for d in r["delivered"])
        stats = " ".join(f"stats.{k}={n}" for k, n in r["stats"].items())
        lines.append(
            _line(
                "reject",
                name=f"reject_{r['name']}",
                framing=r["framing"],
                inputs=",".join(r["inputs"]),
                delivered=delivered,
            )
            + " "
            + stats
        )
    for i, li in enumerate(v["load_index"]):
        lines.append(
            _line(
                "load_index",
                name=f"load_index_{i}",
                zero=_value("", li["zero"]),
                weight_q16=_value("", li["weight_q16"]),
                raw=_value("", li["raw"]),
                sum=li["sum"],
                load_index=li["load_index"],
            )
        )
    for i, lk in enumerate(v["link"]):
        lines.append(
            _line(
                "link",
                name=f"link_{i}",
                **{k: lk[k] for k in ("att_mtu", "max_frame_size", "channels", "encoding")},
                max_samples=lk["max_samples"],
            )
        )
    for fr in v["fragments"]:
        lines.append(
            _line(
                "fragment",
                name=f"fragment_{fr['name']}",
                att_mtu=fr["att_mtu"],
                counter=fr["counter"],
                frame=fr["frame"],
                fragments=",".join(fr["fragments"]),
            )
        )
    for r in v["fragment_rejects"]:
        stats = " ".join(f"stats.{k}={n}" for k, n in r["stats"].items())
        lines.append(
            _line(
                "fragment_reject",
                name=f"fragment_reject_{r['name']}",
                inputs=",".join(r["inputs"]),
                delivered=",".join(r["delivered"]),
            )
            + " "
            + stats
        )
    lines.append("selftest name=selftest")
    return lines


def _expected_checks() -> int:
    v = _vectors()
    keys = ("crc", "cobs", "frames", "rejects", "load_index", "link")
    keys += ("fragments", "fragment_rejects")
    return sum(len(v[k]) for k in keys) + 1


# --- random messages --------------------------------------------------------------------------


def _text(rng: random.Random, max_bytes: int) -> str:
    alphabet = "abcXYZ 0129-_.:°üßé€😀"
    out = ""
    while True:
        c = rng.choice(alphabet)
        if len((out + c).encode()) > max_bytes:
            return out
        out += c
        if rng.random() < 0.1:
            return out


def _thresholds(rng: random.Random, max_channels: int = 8) -> Thresholds:
    n = rng.randint(0, max_channels)
    i32 = (-(2**31), 2**31 - 1)
    return Thresholds(
        rng.randrange(4),
        rng.randrange(65536),
        rng.randrange(65536),
        rng.randint(*i32),
        rng.randint(*i32),
        rng.randint(*i32),
        tuple(ChannelWeight(rng.randint(*i32), rng.randint(*i32)) for _ in range(n)),
    )


def _device_info(rng: random.Random) -> DeviceInfo:
    n_ch = rng.randint(1, 8)
    return DeviceInfo(
        1,
        rng.randrange(3),
        (rng.randrange(256), rng.randrange(256), rng.randrange(65536)),
        rng.randrange(256),
        rng.choice((10, 12, 16, 24)),
        rng.randrange(2),
        rng.randrange(2**32),
        tuple(rng.randrange(65536) for _ in range(rng.randint(0, 16))),
        tuple(
            ChannelInfo(
                rng.randrange(5), rng.randint(-32768, 32767) / 10, rng.randint(-500, 500) / 10
            )
            for _ in range(n_ch)
        ),
        _text(rng, 40),
        _text(rng, 40),
    )


def _stream_config(rng: random.Random) -> StreamConfig:
    return StreamConfig(
        rng.randrange(65536),
        rng.randrange(256),
        rng.choice((2, 3, 4)),
        rng.randrange(2**32),
        rng.randrange(256),
        rng.random() < 0.5,
        rng.randrange(65536),
    )


def _status(rng: random.Random) -> Status:
    u32 = (0, 2**32 - 1)
    return Status(
        rng.randint(*u32),
        rng.randint(*u32),
        rng.randrange(65536),
        rng.randrange(256),
        rng.randrange(16),
        rng.randint(-32768, 32767) / 100,
        rng.randrange(5),
        *(rng.randint(*u32) for _ in range(5)),
    )


def _sample_block(rng: random.Random) -> SampleBlock:
    enc = rng.choice((2, 3, 4))
    mask = rng.randrange(1, 256)
    c = mask.bit_count()
    n = rng.randint(0, SampleBlock.max_samples(244, c, enc))
    lo, hi = -(1 << (8 * enc - 1)), (1 << (8 * enc - 1)) - 1
    edges = [lo, hi, 0, -1, 1]
    values = [
        rng.choice(edges) if rng.random() < 0.2 else rng.randint(lo, hi) for _ in range(n * c)
    ]
    return SampleBlock(
        rng.randrange(2**32),
        rng.randrange(2**32),
        rng.randrange(2**32),
        mask,
        enc,
        np.array(values, dtype=np.int32).reshape(n, c),
        rng.randrange(2),
        rng.randrange(256),
        rng.randrange(256),
    )


def _command(rng: random.Random) -> Command:
    op = rng.choice([*Opcode, 0x55])
    body: Any
    if op == Opcode.PING:
        body = Ping(rng.randbytes(rng.randint(0, 64)))
    elif op == Opcode.SET_STREAM_CONFIG:
        body = SetStreamConfig(rng.randrange(65536), rng.randrange(256), rng.choice((2, 3, 4)))
    elif op == Opcode.TARE:
        body = Tare(rng.randrange(256), rng.randrange(65536))
    elif op == Opcode.READ_CALIBRATION:
        body = ReadCalibration(rng.randrange(65536), rng.randrange(256))
    elif op == Opcode.WRITE_CALIBRATION:
        body = WriteCalibration(rng.randrange(4096), 4096, rng.randbytes(rng.randint(0, 200)))
    elif op == Opcode.COMMIT_CALIBRATION:
        blob = rng.randbytes(50)
        body = CommitCalibration(rng.randrange(2**32), 50, crc16(blob))
    elif op == Opcode.WRITE_THRESHOLDS:
        body = WriteThresholds(_thresholds(rng))
    elif op == 0x55:
        body = UnknownCommand(0x55, rng.randbytes(rng.randint(0, 10)))
    else:
        body = {
            Opcode.GET_INFO: GetInfo,
            Opcode.START_STREAM: StartStream,
            Opcode.STOP_STREAM: StopStream,
            Opcode.GET_STREAM_CONFIG: GetStreamConfig,
            Opcode.READ_THRESHOLDS: ReadThresholds,
            Opcode.REBOOT: Reboot,
            Opcode.GET_STATUS: GetStatus,
        }[op]()
    return Command(rng.randrange(65536), body)


def _response(rng: random.Random) -> Response:
    rid = rng.randrange(65536)
    op = rng.choice(list(Opcode))
    if rng.random() < 0.25:
        return Response(rid, rng.choice([*Opcode, 0x77]), rng.randint(1, 8))
    result: Any = {
        Opcode.PING: lambda: rng.randbytes(rng.randint(0, 64)),
        Opcode.GET_INFO: lambda: _device_info(rng),
        Opcode.START_STREAM: lambda: _stream_config(rng),
        Opcode.SET_STREAM_CONFIG: lambda: _stream_config(rng),
        Opcode.GET_STREAM_CONFIG: lambda: _stream_config(rng),
        Opcode.TARE: lambda: _tare(rng),
        Opcode.READ_CALIBRATION: lambda: CalibrationChunk(
            rng.randrange(2**32), 4096, rng.randrange(4096), rng.randbytes(rng.randint(0, 200))
        ),
        Opcode.READ_THRESHOLDS: lambda: _thresholds(rng),
        Opcode.WRITE_THRESHOLDS: lambda: _thresholds(rng),
        Opcode.GET_STATUS: lambda: _status(rng),
    }.get(op, lambda: b"")()
    data = result if isinstance(result, bytes) else result.encode()
    return Response(rid, op, StatusCode.OK, data)


def _tare(rng: random.Random) -> TareResult:
    mask = rng.randrange(256)
    return TareResult(
        mask, tuple(rng.randint(-(2**31), 2**31 - 1) for _ in range(mask.bit_count()))
    )


def random_message(rng: random.Random) -> Any:
    make = rng.choice(
        [
            _device_info,
            _stream_config,
            _sample_block,
            _sample_block,
            lambda r: DeviceEvent(
                r.randrange(2**32),
                r.randrange(256),
                r.randrange(256),
                r.randint(-(2**31), 2**31 - 1),
            ),
            _status,
            lambda r: LogText(r.choice((10, 20, 30, 40)), _text(r, 100)),
            _command,
            _command,
            _response,
            lambda r: UnknownMessage(
                r.choice((0x07, 0x12, 0x7E, 0xFF)), r.randbytes(r.randint(0, 30))
            ),
        ]
    )
    return make(rng)


def _name(m: Any) -> str:
    return type(m).__name__


def _expected_tokens(m: Any) -> dict[str, str]:
    return _field_tokens(message_fields(m))


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [["-O2"], ["-Os"]], ids=["O2", "Os"])
def test_library_compiles_warning_free(workdir: Path, extra: list[str]) -> None:
    """-Wall -Wextra -Werror -pedantic -std=c99 plus conversion warnings."""
    cc = _cc()
    result = _run([cc, *STRICT, *extra, "-c", str(LIBRARY), "-o", str(workdir / "lib.o")])
    assert result.returncode == 0, f"{extra}: {result.stderr[-3000:]}"


def test_library_compiles_warning_free_32_bit(workdir: Path) -> None:
    """The same strict build for a 32-bit target, where the toolchain has 32-bit headers."""
    cc = _cc()
    _skip_variant(toolchain_problem(cc, ("-m32",), str(workdir), False))
    result = _run([cc, *STRICT, "-m32", "-O2", "-c", str(LIBRARY), "-o", str(workdir / "lib32.o")])
    assert result.returncode == 0, result.stderr[-3000:]


def test_header_compiles_alone(workdir: Path) -> None:
    """The header alone compiles as C99, and as C++ when a C++ compiler is there."""
    cc = _cc()
    checks = [[cc, "-std=c99", "-x", "c"]]
    if shutil.which("c++"):
        checks.append(["c++", "-std=c++11", "-x", "c++"])
    for head in checks:
        result = _run(
            [
                *head,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-c",
                "-",
                "-I",
                str(C_DIR),
                "-o",
                str(workdir / "hdr.o"),
            ],
            input='#include "knotsense_protocol.h"\nint ks_dummy;\n',
        )
        assert result.returncode == 0, result.stderr


def test_probe_rejects_a_compiler_without_headers(tmp_path: Path) -> None:
    """A compiler that builds `int x;` but has no C headers (gcc -m32 without
    gcc-multilib) is reported as a problem, so its variant is skipped."""
    fake = tmp_path / "fake-cc"
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in *.c) src=$a;; esac; done\n'
        'if [ -n "$src" ] && grep -q "#include" "$src"; then\n'
        '  echo "stdint.h:26:10: fatal error: bits/libc-header-start.h: No such file" >&2; exit 1\n'
        "fi\n"
        "exit 0\n"
    )
    fake.chmod(0o755)
    problem = toolchain_problem(str(fake), ("-m32",), str(tmp_path), False)
    assert problem is not None
    assert "bits/libc-header-start.h" in problem
    assert toolchain_problem(str(fake), ("-m32",), str(tmp_path), False) == problem
    ok = toolchain_problem(_cc(), (), str(tmp_path), True)
    assert ok is None, ok


def test_firmware_example_compiles(workdir: Path) -> None:
    """The example quoted in docs/protocol-c.md builds warning-free."""
    result = _run(
        [
            _cc(),
            *STRICT[:5],
            "-Wconversion",
            "-O2",
            "-I",
            str(C_DIR),
            "-c",
            str(C_DIR / "examples" / "firmware_example.c"),
            "-o",
            str(workdir / "example.o"),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_library_needs_only_string_h(workdir: Path) -> None:
    """No malloc, no stdio: the object links against nothing but mem* functions."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed")
    obj = workdir / "symbols.o"
    built = _run([_cc(), "-std=c99", "-O2", "-c", str(LIBRARY), "-o", str(obj)])
    assert built.returncode == 0, built.stderr
    undefined = set(_run([nm, "-u", str(obj)]).stdout.split()) - {"U"}
    assert undefined <= {"memmove", "memset", "memcpy", "memcmp"}, undefined
    assert "#include <stdio.h>" not in LIBRARY.read_text()


def test_cortex_m_build_when_a_cross_compiler_exists(workdir: Path) -> None:
    cross = shutil.which("arm-none-eabi-gcc")
    if cross is None:
        _skip_variant("arm-none-eabi-gcc not installed (optional; see docs/protocol-c.md)")
    assert cross is not None
    _skip_variant(toolchain_problem(cross, ("-mthumb", "-mcpu=cortex-m4"), str(workdir), False))
    obj = workdir / "cm4.o"
    result = _run(
        [cross, *STRICT, "-Os", "-mthumb", "-mcpu=cortex-m4", "-c", str(LIBRARY), "-o", str(obj)]
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("build", ["plain", "sanitized"])
def test_every_vector(build: str, request: pytest.FixtureRequest) -> None:
    program = request.getfixturevalue("ks_test" if build == "plain" else "ks_test_sanitized")
    out = _drive(program, _vector_lines())
    oks = [line for line in out if line.startswith("ok ")]
    assert out[-1] == f"summary checks={_expected_checks()} failures=0"
    assert len(oks) == _expected_checks()
    # every message, command and response of the file went through
    assert sum(line.startswith("ok frame_") for line in oks) == len(_vectors()["frames"])


def _random_messages(seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)
    return [random_message(rng) for _ in range(n)]


def test_c_frames_decode_in_python(ks_test: Path) -> None:
    messages = _random_messages(8, 600)
    lines = []
    for seq, m in enumerate(messages):
        kv = {"message": _name(m), "seq": seq, **_expected_tokens(m)}
        lines.append(_line("encode", **kv))
    out = _drive(ks_test, lines)
    frames = [line for line in out if line.startswith("frame ")]
    assert len(frames) == len(messages)
    for seq, (m, line) in enumerate(zip(messages, frames, strict=True)):
        wire = bytes.fromhex(line.split()[1])
        assert wire == build_frame(m.TYPE, seq, m.encode()), _name(m)
        decoded = decode_packet(wire)
        assert decoded.seq == seq
        assert message_fields(decoded.message) == message_fields(m)


def test_python_frames_decode_in_c(ks_test: Path) -> None:
    messages = _random_messages(9, 600)
    lines = [
        _line("decode", frame=build_frame(m.TYPE, seq, m.encode()).hex())
        for seq, m in enumerate(messages)
    ]
    out = _drive(ks_test, lines)
    fields = [line for line in out if line.startswith(("fields ", "error "))]
    assert len(fields) == len(messages)
    for seq, (m, line) in enumerate(zip(messages, fields, strict=True)):
        assert line.startswith("fields "), f"{_name(m)}: {line}"
        got = _parse_tokens(line)
        assert got.pop("message") == _name(m)
        assert int(got.pop("seq")) == seq
        assert got == _expected_tokens(m), _name(m)


def corrupted_stream(rng: random.Random) -> bytes:
    """Stuffed frames with duplicates, gaps and resets, then damaged; ends with 0x00."""
    parts = []
    seq = rng.randrange(65536)
    for _ in range(rng.randint(3, 40)):
        r = rng.random()
        if r < 0.05:
            pass  # the same seq again: a duplicate
        elif r < 0.1:
            seq = (seq + rng.randint(2, 40)) & 0xFFFF
        elif r < 0.12:
            seq = rng.randrange(65536)
        else:
            seq = (seq + 1) & 0xFFFF
        m = random_message(rng)
        parts.append(stuff(build_frame(m.TYPE, seq, m.encode())))
        if rng.random() < 0.05:
            parts.append(parts[-1])  # resent whole
    data = bytearray(b"".join(parts))
    for _ in range(rng.choice((0, 1, 2, 4, 8, 16))):
        at = rng.randrange(len(data) + 1)
        kind = rng.randrange(7)
        if kind == 0 and at < len(data):
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[at : at + rng.randint(1, 30)]
        elif kind == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 20))
        elif kind == 3:
            data[at:at] = b"\x00"
        elif kind == 4:
            data[at:at] = bytes(rng.randint(1, 255) for _ in range(rng.randint(200, 700)))
        elif kind == 5 and at < len(data):
            data[at] = rng.randrange(256)
        else:
            data[at:at] = b"\x00" * rng.randint(1, 3)
    return bytes(data) + b"\x00"


def test_stream_decoder_resynchronises_like_python(ks_test: Path) -> None:
    """Same frames accepted, same dropped, same counters, on seeded corrupted streams."""
    rng = random.Random(2024)
    streams = [corrupted_stream(rng) for _ in range(300)]
    out = _drive(ks_test, [_line("stream", data=s.hex()) for s in streams])
    results = [line for line in out if line.startswith("stream ")]
    assert len(results) == len(streams)
    totals = {"frames": 0, "dropped": 0}
    for i, (data, line) in enumerate(zip(streams, results, strict=True)):
        got = _parse_tokens(line)
        assert "error" not in got, f"stream {i}: C decoder state out of bounds"
        dec = StreamDecoder()
        expected = dec.feed(data)
        c_frames = [f.split(":") for f in got["delivered"].split(",") if f]
        assert [(int(s), int(t), int(lost)) for s, t, lost, _ in c_frames] == [
            (f.seq, int(f.message.TYPE), f.lost_before) for f in expected
        ], f"stream {i}"
        for (_, t, _, payload), f in zip(c_frames, expected, strict=True):
            assert decode_message(int(t), bytes.fromhex(payload)) == f.message
        stats = {k[len("stats.") :]: int(v) for k, v in got.items() if k.startswith("stats.")}
        py = dec.stats.as_dict()
        assert stats == {k: py[k] for k in stats}, f"stream {i}"
        assert set(stats) == set(py), set(py) ^ set(stats)
        # Python's own answer does not depend on chunking (what the device sees)
        chunked = StreamDecoder()
        frames_chunked = []
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 64)
            frames_chunked += chunked.feed(data[pos : pos + step])
            pos += step
        assert [(f.seq, f.lost_before) for f in frames_chunked] == [
            (f.seq, f.lost_before) for f in expected
        ]
        totals["frames"] += len(expected)
        totals["dropped"] += py["crc_errors"] + py["framing_errors"] + py["oversize"]
    # the corpus really exercises both paths
    assert totals["frames"] > 1000 and totals["dropped"] > 100, totals


def test_edge_streams_match_python(ks_test: Path) -> None:
    """Hand-picked cases: duplicates of unknown types, oversize runs, stray delimiters."""
    unknown = stuff(build_frame(0x7E, 1, b"\x01"))
    log = stuff(build_frame(0x06, 2, b"\x14hi"))
    cases = [
        unknown * 2,
        b"\x55" * 245 + b"\x00" + log,
        b"\x55" * 246 + b"\x00" + log,
        b"\x55" * 1000 + log + b"\x00" + log,
        b"\x00\x00" + log + b"\x00\x00" + log,
        log[:-1] + log,
        bytes(range(1, 256)) * 3 + b"\x00",
    ]
    out = _drive(ks_test, [_line("stream", data=c.hex()) for c in cases])
    results = [line for line in out if line.startswith("stream ")]
    for i, (data, line) in enumerate(zip(cases, results, strict=True)):
        got = _parse_tokens(line)
        dec = StreamDecoder()
        frames = dec.feed(data)
        delivered = [
            tuple(int(x) for x in f.split(":")[:3]) for f in got["delivered"].split(",") if f
        ]
        assert delivered == [(f.seq, int(f.message.TYPE), f.lost_before) for f in frames], i
        stats = {k[len("stats.") :]: int(v) for k, v in got.items() if k.startswith("stats.")}
        assert stats == dec.stats.as_dict(), i


def test_sanitized_cross_checks(ks_test_sanitized: Path) -> None:
    """The random cross-checks once more under ASan/UBSan (smaller sample)."""
    messages = _random_messages(10, 150)
    rng = random.Random(11)
    lines = [
        _line("decode", frame=build_frame(m.TYPE, seq, m.encode()).hex())
        for seq, m in enumerate(messages)
    ]
    lines += [
        _line("encode", message=_name(m), seq=seq, **_expected_tokens(m))
        for seq, m in enumerate(messages)
    ]
    lines += [_line("stream", data=corrupted_stream(rng).hex()) for _ in range(60)]
    out = _drive(ks_test_sanitized, lines)
    assert sum(line.startswith("fields ") for line in out) == len(messages)
    assert sum(line.startswith("frame ") for line in out) == len(messages)
    assert sum(line.startswith("stream ") and " error=" not in line for line in out) == 60


def test_random_input_run(workdir: Path) -> None:
    """Random and damaged input into every decoder, under the sanitizers when available."""
    cc = _cc()
    problem = _sanitizer_problem(cc, str(workdir))
    flags = ["-std=c99", "-O1", "-g"] + ([] if problem else SANITIZE)
    exe = _build(cc, workdir / "random_driver", [FUZZ_TARGET, RANDOM_DRIVER, LIBRARY], flags)
    result = _run([str(exe), str(FUZZ_SECONDS), "1"], timeout=FUZZ_SECONDS + 120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "no failure" in result.stdout


def test_libfuzzer(workdir: Path) -> None:
    """libFuzzer over the decoders, seeded with the spec vectors (needs clang)."""
    clang = shutil.which("clang")
    if clang is None:
        _skip_variant("clang not installed: libFuzzer run skipped (the random-input run covers it)")
    assert clang is not None
    _skip_variant(toolchain_problem(clang, ("-std=c99",), str(workdir), True))
    exe = workdir / "fuzz_decoder"
    built = _run(
        [
            clang,
            "-std=c99",
            "-g",
            "-O1",
            "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=all",
            "-I",
            str(C_DIR),
            str(FUZZ_TARGET),
            str(LIBRARY),
            "-o",
            str(exe),
        ]
    )
    if built.returncode != 0 and "fuzzer" in built.stderr:
        _skip_variant(f"clang has no libFuzzer runtime: {_last_line(built.stderr)}")
    assert built.returncode == 0, built.stderr[-3000:]
    corpus = workdir / "corpus"
    corpus.mkdir(exist_ok=True)
    for f in _vectors()["frames"]:
        (corpus / f["name"]).write_bytes(bytes.fromhex(f["stream"]))
        (corpus / f"{f['name']}_payload").write_bytes(
            bytes([f["type"]]) + bytes.fromhex(f["payload"])
        )
    result = _run(
        [
            str(exe),
            f"-max_total_time={max(1, int(FUZZ_SECONDS))}",
            "-print_final_stats=1",
            str(corpus),
        ],
        cwd=workdir,
        timeout=FUZZ_SECONDS + 120,
    )
    assert result.returncode == 0, result.stderr[-4000:]

"""The knotsense HIL pytest plugin: options, markers, fixtures, skips and the bench report.

Registered as a pytest entry point (``pytest11``), so an installed knotsense
gives ``pytest --pyargs knotsense.hil --device URL`` with nothing else checked
out; inert in runs that do not collect knotsense.hil. See docs/hil.md.

Options: ``--device URL`` (default: the simulator), ``--reference URL`` (a
force gauge), ``--allow-destructive`` (reboots and NVM writes on real
hardware), ``--hil-report PATH`` (markdown summary), ``--stream-seconds S``.

Markers (what a test needs; a test that cannot run on the target is skipped
with the reason):

* ``hardware``: a real board (serial or BLE);
* ``ble``: a BLE link (real, ``bumble://``, ``sim+ble`` or ``sim+bumble``);
* ``bench``: a bench reference of the applied force (``--reference``, or the
  simulated world on a simulator target);
* ``destructive``: reboots or NVM writes; on real hardware only with
  ``--allow-destructive`` (always allowed on a simulator);
* ``simulator_only``: fault injection, which only a simulator can do.

A run in which no test ran (nothing selected, or everything skipped) fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from knotsense.hil.measure import Capture, capture
from knotsense.hil.reference import SerialReference, SimReference
from knotsense.hil.report import BenchReport
from knotsense.hil.target import DEFAULT_DEVICE, Client, Target
from knotsense.protocol import DeviceInfo, StreamConfig

MARKERS = {
    "hardware": "needs a real board (serial port or BLE), not a simulator",
    "ble": "needs a BLE link (ble://, bumble://, sim+ble:// or sim+bumble://)",
    "bench": "needs a bench reference of the applied force (--reference, or a simulator)",
    "destructive": "reboots the device or writes its NVM; real hardware needs --allow-destructive",
    "simulator_only": "needs the simulator's fault injection",
}
REPORT_KEY = pytest.StashKey[BenchReport]()
TARGET_KEY = pytest.StashKey[Target]()
NOTHING_RAN = pytest.ExitCode.NO_TESTS_COLLECTED


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("knotsense-hil", "knotsense hardware-in-the-loop suite")
    group.addoption(
        "--device",
        default=os.environ.get("KNOTSENSE_DEVICE", DEFAULT_DEVICE),
        metavar="URL",
        help="device URL to test: /dev/ttyACM0, serial://..., ble://..., sim://?..., "
        "sim+pty://?..., sim+ble://?..., sim+bumble://?... "
        f"(default: $KNOTSENSE_DEVICE or {DEFAULT_DEVICE})",
    )
    group.addoption(
        "--reference",
        default=os.environ.get("KNOTSENSE_REFERENCE"),
        metavar="URL",
        help="reference force gauge: /dev/ttyUSB0 or serial:///dev/ttyUSB0?baud=115200"
        "&dialect=mark10|imada (default: none; a simulator target is its own reference)",
    )
    group.addoption(
        "--allow-destructive",
        action="store_true",
        default=False,
        help="allow reboots and NVM writes on real hardware (always allowed on a simulator)",
    )
    group.addoption(
        "--hil-report",
        default=None,
        metavar="PATH",
        help="write the bench report (markdown: figures, outcomes) to PATH; "
        "JUnit XML comes from --junitxml",
    )
    group.addoption(
        "--stream-seconds",
        type=float,
        default=None,
        metavar="S",
        help="device seconds of streaming for the integrity test (default 10; 30 on hardware)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    target = Target(config.getoption("--device"))
    config.stash[TARGET_KEY] = target
    reference = config.getoption("--reference")
    report = BenchReport(
        device_url=target.url,
        target_label=target.label,
        reference=reference or ("the simulated world" if target.is_sim else None),
        destructive_allowed=target.is_sim or bool(config.getoption("--allow-destructive")),
        junit_xml=getattr(config.option, "xmlpath", None),
    )
    config.stash[REPORT_KEY] = report
    config.pluginmanager.register(_Recorder(report), "knotsense-hil-recorder")


def skip_reason(item: pytest.Item, config: pytest.Config) -> str | None:
    """Why *item* cannot run on the configured target (None: it can)."""
    target = config.stash[TARGET_KEY]
    where = f"target is {target.label} ({target.url})"
    names = {m.name for m in item.iter_markers()}
    if "simulator_only" in names and not target.is_sim:
        return (
            "fault injection needs a simulator target "
            f"(sim://, sim+pty://, sim+ble://, sim+bumble://); {where}"
        )
    if "hardware" in names and not target.is_hardware:
        return f"needs a real board (--device /dev/ttyACM0 or ble://...); {where}"
    if "ble" in names and not target.is_ble:
        return f"needs a BLE link (ble://, bumble://, sim+ble:// or sim+bumble://); {where}"
    if "bench" in names and not (target.is_sim or config.getoption("--reference")):
        return f"needs a reference force gauge: pass --reference URL; {where}"
    if "destructive" in names and not target.is_sim and not config.getoption("--allow-destructive"):
        return (
            f"reboots or writes NVM: pass --allow-destructive to run it on real hardware; {where}"
        )
    if target.is_replay:
        return "a recorded session (replay://) cannot answer commands: test a live device"
    return None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Loaded into an unrelated run (say, through an entry point), the plugin stays inert.
    bench = config.stash[REPORT_KEY]
    here = Path(__file__).resolve().parent
    bench.active = any(Path(item.path).resolve().parent == here for item in items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = skip_reason(item, item.config)
    if reason is not None:
        pytest.skip(reason)


class _Recorder:
    """Records every test's outcome into the bench report (registered per config)."""

    def __init__(self, bench: BenchReport) -> None:
        self.bench = bench

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        bench = self.bench
        if report.when == "teardown":
            if report.failed:
                bench.record(report.nodeid, "error", report.duration, "teardown failed")
            return
        if report.when == "setup" and report.passed:
            return
        outcome = report.outcome
        detail = ""
        if report.when == "setup" and report.failed:
            outcome = "error"
        if report.skipped and isinstance(report.longrepr, tuple):
            detail = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.failed:
            lines = (report.longreprtext or "").strip().splitlines()
            detail = lines[-1] if lines else ""
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
            detail = str(report.wasxfail)
        bench.record(report.nodeid, outcome, report.duration, detail)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    bench = config.stash.get(REPORT_KEY, None)
    if bench is None or not bench.active:
        return
    path = config.getoption("--hil-report")
    if bench.ran == 0 and exitstatus in (pytest.ExitCode.OK, NOTHING_RAN):
        selected = len(bench.outcomes)
        bench.note(
            f"no test ran against {bench.device_url} ({selected} selected, all skipped or none): "
            "the run proves nothing and fails"
        )
        session.exitstatus = NOTHING_RAN
    if path:
        bench.write(path)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    bench = config.stash.get(REPORT_KEY, None)
    if bench is None or not bench.active:
        return
    terminalreporter.section("knotsense HIL bench report")
    for line in bench.terminal_lines():
        terminalreporter.write_line(line)
    if bench.ran == 0:
        terminalreporter.write_line(
            f"FAIL: no test ran against {bench.device_url} -- nothing was proven "
            "(check -k/-m and the skip reasons above)",
            red=True,
        )
    path = config.getoption("--hil-report")
    terminalreporter.write_line(
        f"report: {path or 'not written (pass --hil-report PATH)'}; JUnit XML: "
        f"{bench.junit_xml or 'not written (pass --junitxml PATH)'}"
    )


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hil_target(pytestconfig: pytest.Config) -> Target:
    """The target the device URL points at."""
    return pytestconfig.stash[TARGET_KEY]


@pytest.fixture(scope="session")
def bench_report(pytestconfig: pytest.Config) -> BenchReport:
    """The bench report: ``bench_report.add(section, name, value, note)``."""
    return pytestconfig.stash[REPORT_KEY]


@pytest.fixture(scope="session")
def hil_client(hil_target: Target, bench_report: BenchReport) -> Iterator[Client]:
    """The connected device (one connection for the whole session)."""
    if hil_target.is_replay:
        pytest.skip("a recorded session (replay://) cannot answer commands: test a live device")
    client = Client.connect(hil_target.url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def device(hil_client: Client) -> Any:
    """The connected device as the blocking facade :class:`knotsense.host.sync.Device`."""
    return hil_client.device


@pytest.fixture(scope="session")
def device_info(hil_client: Client, bench_report: BenchReport) -> DeviceInfo:
    """The device's DeviceInfo (asked once), also written into the report."""
    info = hil_client.device.get_info()
    bench_report.device_identity = {
        "model": info.model,
        "serial": info.serial_number,
        "firmware": info.firmware,
        "hardware revision": info.hw_revision,
        "protocol": f"{info.protocol_major}.{info.protocol_minor}",
        "ADC bits": info.adc_bits,
        "channels": info.channel_count,
        "sample rates (Hz)": ", ".join(map(str, info.sample_rates)),
        "calibration id": info.calibration_id,
        "max frame size (link)": hil_client.adev.transport.max_frame_size,
    }
    return info


class StreamHandle:
    """A started stream at a known configuration; :meth:`capture` reads a window of it."""

    def __init__(self, client: Client, config: StreamConfig) -> None:
        self.client = client
        self.config = config

    def capture(self, device_seconds: float, wall_limit: float = 120.0, **kwargs: Any) -> Capture:
        return self.client.run(
            lambda adev: capture(adev, device_seconds, wall_limit=wall_limit, **kwargs),
            wall_limit + 30.0,
        )


def start_stream(client: Client, rate_hz: int, channels: int | None = None) -> StreamHandle:
    """Stop any stream, configure *rate_hz* on all channels (or the mask), start."""
    dev = client.device
    dev.stop_stream()
    drain(client)
    config = dev.start_stream(rate_hz=rate_hz, channels=channels)
    return StreamHandle(client, config)


def drain(client: Client, seconds: float = 0.05) -> None:
    """Throw away what the stream queued so far (stale items of an earlier test)."""
    client.run(lambda adev: capture(adev, 1e9, wall_limit=seconds, idle_timeout=seconds), 30.0)


@pytest.fixture
def fresh_stream(hil_client: Client, device_info: DeviceInfo) -> Iterator[StreamHandle]:
    """A stream started just now at the highest advertised rate, all channels; stopped after."""
    handle = start_stream(hil_client, max(device_info.sample_rates))
    try:
        yield handle
    finally:
        hil_client.device.stop_stream()


@pytest.fixture(scope="session")
def stream_seconds(pytestconfig: pytest.Config, hil_target: Target) -> float:
    value = pytestconfig.getoption("--stream-seconds")
    if value is not None:
        return float(value)
    return 30.0 if hil_target.is_hardware else 10.0


@pytest.fixture(scope="session")
def reference(pytestconfig: pytest.Config, hil_target: Target) -> Iterator[Any]:
    """The bench reference: ``--reference`` gauge, else the simulated world on a simulator."""
    url = pytestconfig.getoption("--reference")
    if url:
        gauge = SerialReference(url)
        try:
            yield gauge
        finally:
            gauge.close()
        return
    if not hil_target.is_sim:
        pytest.skip("no reference gauge: pass --reference URL")
    yield None  # tests build a SimReference for the simulated unit they drive


@pytest.fixture
def sim_client(hil_target: Target) -> Iterator[Callable[..., Client]]:
    """Connect sibling simulator devices (same path as --device, other query); closed after."""
    if not hil_target.is_sim:
        pytest.skip(f"needs a simulator target; target is {hil_target.label}")
    opened: list[Client] = []
    counter = [0]

    def connect(**params: str | None) -> Client:
        counter[0] += 1
        client = Client.connect(hil_target.derive(counter[0], **params))
        opened.append(client)
        return client

    try:
        yield connect
    finally:
        for client in opened:
            client.close()


__all__ = ["SimReference", "StreamHandle", "drain", "skip_reason", "start_stream"]

"""Release thresholds: the user's band in newtons -> the firmware's raw Thresholds, and a check.

The device's detector sums ``(raw_i - zero_i) * weight_q16_i >> 16`` (the load
index L, integer arithmetic, docs/protocol.md 10.5). For each channel the
calibration model is linearised at the channel's share of the release force
(a load at the centre of the knob: equal shares): ``weight`` is the model's
slope there (in mN per count, Q16.16) and ``zero`` puts the tangent through
that point, so L reads in millinewtons -- exactly for linear models, and at
the release force for nonlinear (FSR) ones. ``release_off`` and
``overpressure_on`` are the L the same sum gives at their forces, so every
threshold fires at its force even where the tangent is not the curve.

Verification loads the device at each threshold -5 % and +5 % and checks that
RELEASE_ENTER (OVERPRESSURE_ENTER) fires above the threshold and not below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from knotsense.calibration.bench import load_shares
from knotsense.dsp.calibration_models import CalibrationModel, model_from_dict
from knotsense.errors import CalibrationError
from knotsense.protocol import EventCode
from knotsense.protocol.commands import ChannelWeight, ThresholdFlags, Thresholds

MARGIN = 0.05
MAX_WEIGHT = 2**31 - 1
MAX_SPAN = 2**25


def _models(record: dict[str, Any]) -> list[CalibrationModel]:
    return [model_from_dict(ch["model"]) for ch in record["channels"]]


def _slope(model: CalibrationModel, raw: float) -> float:
    h = max(1.0, abs(raw) * 1e-4)
    return float((model.apply(raw + h) - model.apply(raw - h)) / (2 * h))


def program_thresholds(
    record: dict[str, Any],
    release_n: float,
    *,
    release_off_n: float | None = None,
    max_n: float | None = None,
    hold_s: int = 60,
    debounce_ms: int = 500,
) -> Thresholds:
    """Per-device raw Thresholds for a release band (N), from a checked calibration record."""
    if not release_n > 0:
        raise CalibrationError(f"--release must be > 0 N, got {release_n}")
    off = 0.9 * release_n if release_off_n is None else release_off_n
    if not 0 < off <= release_n:
        raise CalibrationError(f"release off ({off:g} N) must be in (0, release ({release_n:g} N)]")
    if max_n is not None and not max_n > release_n:
        raise CalibrationError(f"--max ({max_n:g} N) must be above --release ({release_n:g} N)")
    models = _models(record)
    c = len(models)
    positions = record.get("bench", {}).get("positions_mm") or []
    share = load_shares([tuple(p) for p in positions], (0.0, 0.0), c)
    chans = []
    for model, s in zip(models, share, strict=True):
        f_star = release_n * s
        raw_star = float(model.inverse(f_star))
        slope = _slope(model, raw_star)  # N per count
        if not np.isfinite(slope) or slope == 0:
            raise CalibrationError("a channel's model is flat at the release force")
        weight = round(slope * 1000.0 * 65536.0)
        zero = round(raw_star - f_star / slope)
        if abs(weight) > MAX_WEIGHT or weight == 0:
            raise CalibrationError(f"weight {weight} does not fit Q16.16 in 32 bits")
        chans.append(ChannelWeight(int(zero), int(weight)))

    def index_at(force: float) -> int:
        raw = [round(float(m.inverse(force * s))) for m, s in zip(models, share, strict=True)]
        for r, ch in zip(raw, chans, strict=True):
            if abs(r - ch.zero) >= MAX_SPAN:
                raise CalibrationError("raw span beyond the load index's 2**25 limit")
        return Thresholds(0, 0, 0, 0, 0, 0, tuple(chans)).load_index(raw)

    # Pressing on reads on the ascending branch, easing off on the descending one
    # (an FSR's hysteresis): aim each threshold at its branch's reading.
    def bias(branch: str) -> float:
        vals = [
            ch.get("branch_bias_pct", {}).get(branch)
            for ch in record["channels"]
            if isinstance(ch.get("branch_bias_pct"), dict)
        ]
        vals = [v for v in vals if isinstance(v, int | float)]
        return 1.0 + (float(np.mean(vals)) / 100.0 if vals else 0.0)

    flags = ThresholdFlags.RELEASE_ENABLED
    over = 2**31 - 1
    if max_n is not None:
        flags |= ThresholdFlags.OVERPRESSURE_ENABLED
        over = index_at(max_n * bias("up"))
    on = index_at(release_n * bias("up"))
    off_l = index_at(off * bias("down"))
    return Thresholds(flags, debounce_ms, hold_s, on, min(on, off_l), over, tuple(chans))


@dataclass(frozen=True)
class Check:
    """One verification load and what must (not) fire."""

    force_n: float
    code: int
    """EventCode.RELEASE_ENTER or OVERPRESSURE_ENTER."""
    should_fire: bool

    @property
    def label(self) -> str:
        name = "release" if self.code == EventCode.RELEASE_ENTER else "overpressure"
        return f"{name} at {self.force_n:.1f} N ({'above' if self.should_fire else 'below'})"


def verification_checks(release_n: float, max_n: float | None = None) -> list[Check]:
    """Each threshold at -5 % (must not fire) and +5 % (must fire)."""
    checks = [
        Check(release_n * (1 - MARGIN), EventCode.RELEASE_ENTER, False),
        Check(release_n * (1 + MARGIN), EventCode.RELEASE_ENTER, True),
    ]
    if max_n is not None:
        checks += [
            Check(max_n * (1 - MARGIN), EventCode.OVERPRESSURE_ENTER, False),
            Check(max_n * (1 + MARGIN), EventCode.OVERPRESSURE_ENTER, True),
        ]
    return checks


@dataclass(frozen=True)
class CheckResult:
    check: Check
    fired: bool

    @property
    def ok(self) -> bool:
        return self.fired == self.check.should_fire


class LoadStand(Protocol):
    """What threshold verification needs of a stand: script loads, then read the schedule.

    :class:`knotsense.firmware_sim.stand.SimStand` is one; the caller builds it and
    passes it in, so this package never imports the simulator (DESIGN.md layering).
    """

    def hold(self, force_n: float, duration_s: float) -> Any: ...

    def rest(self, duration_s: float) -> Any: ...

    @property
    def schedule(self) -> Sequence[Any]: ...


def script_stand(
    stand: LoadStand, checks: list[Check], hold_s: float = 15.0, rest_s: float = 8.0
) -> LoadStand:
    """Script *stand* to apply each check's load in turn (from rest); returns *stand*."""
    stand.rest(rest_s)
    for c in checks:
        stand.hold(c.force_n, hold_s)
        stand.rest(rest_s)
    return stand


async def verify_on_schedule(
    device: Any,
    checks: list[Check],
    windows: list[tuple[float, float]],
    *,
    progress: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Watch a device's DeviceEvents while a stand applies the checks in *windows* (device s)."""
    from knotsense.host.device import Notice
    from knotsense.protocol import DeviceEvent, Status

    fired: list[tuple[float, int]] = []
    end = windows[-1][1]
    t_now = 0.0
    async for item in device.stream(timeout=30.0):
        if not isinstance(item, Notice):
            continue
        msg = item.message
        if isinstance(msg, DeviceEvent):
            fired.append((msg.t_us * 1e-6, int(msg.code)))
            t_now = max(t_now, msg.t_us * 1e-6)
        elif isinstance(msg, Status):
            t_now = max(t_now, msg.t_us * 1e-6)
            if progress is not None:
                progress(f"verifying thresholds: {t_now:.0f}/{end:.0f} s")
        if t_now > end:
            break
    else:
        raise CalibrationError("the device went quiet during threshold verification")
    out = []
    for c, (a, b) in zip(checks, windows, strict=True):
        hit = any(a <= t <= b and code == c.code for t, code in fired)
        out.append(CheckResult(c, hit))
    return out


def schedule_windows(stand: LoadStand) -> list[tuple[float, float]]:
    """Device-time windows of the stand's loaded steps (load rising until the next rest starts)."""
    return [(s.start_s, s.end_s) for s in stand.schedule if s.force_n > 0]


async def verify_manual(
    device: Any, checks: list[Check], ask: Callable[[str], object], hold_s: float = 15.0
) -> list[CheckResult]:
    """Prompt an operator to apply each check's load for *hold_s*, watching events meanwhile."""
    import asyncio
    import time

    from knotsense.host.device import Notice
    from knotsense.protocol import DeviceEvent

    out = []
    for c in checks:
        await asyncio.to_thread(ask, f"apply {c.force_n:.1f} N and hold it; press Enter")
        seen = False
        deadline = time.monotonic() + hold_s
        async for item in device.stream(timeout=max(0.1, deadline - time.monotonic())):
            msg = item.message if isinstance(item, Notice) else None
            if isinstance(msg, DeviceEvent) and int(msg.code) == c.code:
                seen = True
            if time.monotonic() >= deadline:
                break
        await asyncio.to_thread(ask, "remove the load; press Enter")
        out.append(CheckResult(c, seen))
    return out

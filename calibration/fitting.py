"""Per-channel fits, figures of merit, acceptance limits and the verdict.

Fit. Each channel's reference force is the bench reference times the
channel's share at the load position (:func:`knotsense.calibration.bench.load_shares`).
Readings that put the same force on the channel (any position) are averaged
into one point, over the range the home-position series spans on that channel,
from the ascending series only, for every sensor kind: ISO 376 interpolates
them, and a load applied from rest (a body lying down, a threshold check)
reads on the rising branch. An FSR's hysteresis band is far wider in % of
reading than its error budget at low loads (a full-scale loop's middle sits
~1.8 h of reading above the rising branch at 10 %), so a curve through the
middle of the loop would misread every load applied from rest; instead the
descending branch's mean bias is recorded (``branch_bias_pct``) and the
thresholds that fire on easing off use it.
Candidates: linear, polynomial of degree 2 and 3 (weighted for relative
error) and a monotone PCHIP through the points (FSRs). The choice is by
leave-one-load-out cross-validated RMS error (% of reading), times a
complexity penalty ``1 + 0.05 * parameters``: a richer model must earn it.

Figures of merit (ISO 376 names), each as % of reading and % of full scale
(the channel's largest reference force), over the 10-100 % steps:

* repeatability: spread of the ascending series at the same position;
* reproducibility: spread of all ascending series, any position;
* interpolation: largest deviation of the averaged points from the fitted curve;
* zero: change of the zero reading over a series (% of full scale);
* reversibility: descending minus ascending at the same load (hysteresis);
* creep: reading at the second creep time minus at the first.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.calibration.bench import BenchData, BenchPoint, load_shares, validate
from knotsense.dsp.calibration_models import (
    CalibrationModel,
    LinearModel,
    MonotoneModel,
    PolynomialModel,
)
from knotsense.errors import BenchDataError, CalibrationError, ConfigurationError

FIGURES = (
    "repeatability",
    "reproducibility",
    "interpolation",
    "zero",
    "reversibility",
    "creep",
    "model",
)
COMPLEXITY_PENALTY = 0.05

DEFAULT_LIMITS: dict[str, dict[str, float]] = {
    # A load cell under a silicone knob. The contact warms the sensor and moves its
    # zero, an error in newtons that does not scale with the load, so the series
    # figures are limited in % of full scale; the fit itself in % of reading.
    # ISO 376 class 2 (all % of reading:
    # repeatability 0.2, reproducibility 0.4, interpolation 0.2, zero 0.1,
    # reversibility 0.5, creep 0.2) is the "iso376_class2" preset, for a bare cell.
    "load_cell": {
        "repeatability_pct_fs": 1.0,
        "reproducibility_pct_fs": 1.5,
        "interpolation_pct_reading": 1.5,
        "zero_pct_fs": 2.0,
        "reversibility_pct_fs": 1.5,
        "creep_pct_fs": 1.5,
        "model_pct_reading": 1.5,
    },
    # FSR-class sensors (DOMAIN.md: repeatability <= 3 %, hysteresis <= 12 %,
    # creep <= 5 %, fit residual <= 3 %); % of full scale where the FSR's
    # threshold region makes % of reading meaningless at the 10 % step. An FSR
    # is judged on what it is (repeatability, hysteresis, creep) and on how well
    # the chosen model predicts held-out series ("model": p95, % of reading),
    # not on a single curve's interpolation error, which its creep and its two
    # branches make meaningless.
    "fsr": {
        "repeatability_pct_fs": 3.0,
        "reproducibility_pct_fs": 15.0,
        "zero_pct_fs": 2.0,
        "reversibility_pct_fs": 14.0,
        "creep_pct_reading": 5.0,
        "model_pct_reading": 6.0,
    },
    "iso376_class2": {
        "repeatability_pct_reading": 0.2,
        "reproducibility_pct_reading": 0.4,
        "interpolation_pct_reading": 0.2,
        "zero_pct_fs": 0.1,
        "reversibility_pct_reading": 0.5,
        "creep_pct_reading": 0.2,
    },
}


def limits_for(sensor: str, config: dict[str, Any] | None = None) -> dict[str, float]:
    """Acceptance limits for a sensor kind: the defaults, overridden by a config table."""
    base = dict(DEFAULT_LIMITS.get(sensor, DEFAULT_LIMITS["fsr"]))
    if config:
        table = config.get(sensor, config) if isinstance(config.get(sensor), dict) else config
        for key, value in table.items():
            if isinstance(value, dict):
                continue
            fig, _, basis = key.partition("_pct_")
            if fig not in FIGURES or basis not in ("reading", "fs"):
                raise ConfigurationError(
                    f"unknown limit {key!r} (use <figure>_pct_reading or <figure>_pct_fs; "
                    f"figures: {', '.join(FIGURES)})"
                )
            base = {k: v for k, v in base.items() if not k.startswith(fig + "_")}
            base[key] = float(value)
    return base


def load_limits(path: str | Path) -> dict[str, Any]:
    """A limits file (TOML): tables ``[load_cell]`` and/or ``[fsr]`` of ``<figure>_pct_<basis>``."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read limits {path}: {exc}") from None


@dataclass(frozen=True)
class ChannelFit:
    """One channel's chosen model, the candidates' scores, figures and verdict."""

    channel: int
    model: CalibrationModel
    scores: dict[str, float]
    residual_std_n: float
    uncertainty_pct_fs: float
    full_scale_n: float
    figures: dict[str, dict[str, float | None]]
    failures: tuple[str, ...]
    not_measured: tuple[str, ...] = ()
    branch_bias_pct: dict[str, float | None] = field(default_factory=dict)
    """Mean error of the ascending / descending readings against the curve, % of reading."""
    selection: dict[str, object] = field(default_factory=dict)
    """How the model was chosen: method, label, held-out p95 / RMS (% of reading), folds."""

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class FitResult:
    channels: tuple[ChannelFit, ...]
    sensor: str
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.channels)


def channel_force(data: BenchData, p: BenchPoint) -> np.ndarray:
    """Per-channel reference forces of one point."""
    return p.reference_n * load_shares(data.positions_mm, p.position_mm, data.channels)


def _levels(values: list[float]) -> list[int]:
    """Cluster reference forces into load levels (2 % apart), ids by increasing force."""
    order = np.argsort(values)
    ids = [0] * len(values)
    level, last = -1, None
    for i in order:
        v = values[i]
        if last is None or abs(v - last) > 0.02 * max(abs(last), 1e-9) + 1e-6:
            level += 1
            last = v
        ids[i] = level
    return ids


def _candidate(kind: str, x: np.ndarray, y: np.ndarray) -> CalibrationModel | None:
    w = 1.0 / np.maximum(np.abs(y), 1e-9)
    try:
        if kind == "linear":
            c = np.polynomial.polynomial.polyfit(x, y, 1, w=w)
            return LinearModel(float(c[1]), float(c[0]))
        if kind in ("poly2", "poly3"):
            deg = int(kind[-1])
            if x.size <= deg + 1:
                return None
            c = np.polynomial.polynomial.polyfit(x, y, deg, w=w)
            span = float(x.max() - x.min())
            model = PolynomialModel(
                tuple(c), (float(x.min() - 0.05 * span), float(x.max() + 0.05 * span))
            )
            grid = np.linspace(*model.domain, 256)
            d = np.diff(model.apply(grid))
            if not (np.all(d > 0) or np.all(d < 0)):
                return None  # a non-monotone curve cannot be inverted for thresholds
            return model
        if kind == "monotone":
            order = np.argsort(x)
            xs, ys = x[order], y[order]
            if not (np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)):
                return None
            return MonotoneModel(tuple(xs), tuple(ys))
    except (CalibrationError, np.linalg.LinAlgError, ValueError):
        return None
    raise CalibrationError(f"unknown candidate {kind}")


PARAMS = {"linear": 2, "poly2": 3, "poly3": 4}


def choose_model(
    x: np.ndarray, y: np.ndarray, sensor: str
) -> tuple[CalibrationModel, dict[str, float]]:
    """Pick a model by cross-validated relative RMS with a complexity penalty (module docstring)."""
    kinds = ["linear", "poly2", "poly3"] + (["monotone"] if sensor != "load_cell" else [])
    order = np.argsort(y)
    x, y = x[order], y[order]
    scores: dict[str, float] = {}
    for kind in kinds:
        errs = []
        for i in range(1, x.size - 1):  # interior points: interpolation, not extrapolation
            keep = np.ones(x.size, bool)
            keep[i] = False
            m = _candidate(kind, x[keep], y[keep])
            if m is None:
                errs = []
                break
            errs.append((float(m.apply(x[i])) - y[i]) / y[i])
        if not errs:
            continue
        k = PARAMS.get(kind, x.size)
        scores[kind] = float(
            np.sqrt(np.mean(np.square(errs))) * 100.0 * (1 + COMPLEXITY_PENALTY * k)
        )
    if not scores:
        raise BenchDataError("no calibration model fits these bench points")
    best = min(scores, key=scores.__getitem__)
    model = _candidate(best, x, y)
    assert model is not None
    return model, {k: round(v, 4) for k, v in scores.items()}


def fit_bench(
    data: BenchData, sensor: str | None = None, limits: dict[str, Any] | None = None
) -> FitResult:
    """Validate the bench data, fit every channel, compute figures and the verdict."""
    validate(data)
    sensor = sensor or data.sensor or "load_cell"
    lim = limits_for(sensor, limits)
    loaded = [p for p in data.points if p.direction in ("up", "down")]
    # Every kind is fitted on its ascending readings: a load applied from rest (a body
    # lying down, a threshold check) reads on the rising branch. The descending
    # branch's bias is recorded for the thresholds that fire on easing off.
    fit_series = {p.series for p in loaded}
    fit_dirs: tuple[str, ...] = ("up",)
    level_ids = _levels([p.reference_n for p in loaded])
    level_of = {id(p): lv for p, lv in zip(loaded, level_ids, strict=True)}
    forces = {id(p): channel_force(data, p) for p in data.points}
    ups = [p for p in loaded if p.direction in fit_dirs and p.series in fit_series]
    ups = [p for p in ups if p.reference_n > 0]
    positions = [p.position_mm for p in ups]
    home = max(set(positions), key=positions.count) if positions else (0.0, 0.0)
    channels = []
    for ch in range(data.channels):
        # A channel is calibrated over the range its home-position series spans: an
        # off-centre load can leave a channel a few % of the total, below that range
        # (an FSR element there sits at its conduction threshold).
        home_f = [forces[id(p)][ch] for p in ups if p.position_mm == home]
        low = 0.98 * min(home_f) if home_f else 0.0
        in_range = [p for p in ups if forces[id(p)][ch] >= low]
        chan_level = _levels([float(forces[id(p)][ch]) for p in in_range])
        groups: dict[tuple, list[BenchPoint]] = {}
        for p, lv in zip(in_range, chan_level, strict=True):
            groups.setdefault((lv,), []).append(p)
        gx = np.array([np.mean([p.raw[ch] for p in g]) for g in groups.values()])
        gy = np.array([np.mean([forces[id(p)][ch] for p in g]) for g in groups.values()])
        if gx.size < 3:
            raise BenchDataError(f"channel {ch}: too few loaded readings to fit ({gx.size})")
        choice = _branch_choice(data, ch, forces, low)
        if choice is not None:
            model, scores = choice.model, choice.scores
            selection: dict[str, object] = {
                "method": "leave-one-series-out",
                "chosen": choice.label,
                "folds": choice.folds,
                "heldout_p95_pct_reading": choice.heldout_p95_pct,
                "heldout_rms_pct_reading": choice.heldout_rms_pct,
            }
            res = choice.residuals_n
        else:
            model, scores = choose_model(gx, gy, sensor)
            selection = {"method": "leave-one-load-out", "chosen": type(model).kind}
            fit_pts = [p for g in groups.values() for p in g]
            res = np.array([float(model.apply(p.raw[ch])) - forces[id(p)][ch] for p in fit_pts])
        k = PARAMS.get(type(model).kind, 2)
        dof = max(1, res.size - k)
        resid_std = float(np.sqrt(np.sum(res**2) / dof))
        fs = float(max(forces[id(p)][ch] for p in loaded if p.direction == "up"))
        figures = _figures(data, ch, model, forces, level_of, groups, fs)
        figures["model"] = {
            "pct_reading": selection.get("heldout_p95_pct_reading"),  # type: ignore[dict-item]
            "pct_fs": None,
        }
        failures, missing = [], []
        for key, limit in lim.items():
            fig, _, basis = key.partition("_pct_")
            value = figures.get(fig, {}).get(f"pct_{basis}")
            if value is None:
                missing.append(fig)
            elif value > limit:
                failures.append(
                    f"{fig} {value:.3g} % of "
                    f"{'reading' if basis == 'reading' else 'FS'} > {limit:g}"
                )
        bias: dict[str, float | None] = {}
        for d in ("up", "down"):
            rel = [
                (float(model.apply(p.raw[ch])) - forces[id(p)][ch]) / forces[id(p)][ch]
                for p in loaded
                if p.direction == d and p.series in fit_series and forces[id(p)][ch] > 0
            ]
            bias[d] = round(float(np.mean(rel)) * 100, 4) if rel else None
        channels.append(
            ChannelFit(
                ch,
                model,
                scores,
                resid_std,
                2.0 * resid_std / fs * 100.0,
                fs,
                figures,
                tuple(failures),
                tuple(missing),
                bias,
                selection,
            )
        )
    return FitResult(tuple(channels), sensor, lim)


@dataclass(frozen=True)
class _Choice:
    model: CalibrationModel
    scores: dict[str, float]
    label: str
    folds: int
    heldout_p95_pct: float
    heldout_rms_pct: float
    residuals_n: np.ndarray


def _branch_choice(
    data: BenchData, ch: int, forces: dict[int, np.ndarray], low: float
) -> _Choice | None:
    """The two-branch model chosen over held-out series (None: fewer than two series)."""
    from knotsense.calibration.branch_fit import BranchPoint, choose_branch_model, creep_memory

    zeros = [p.raw[ch] for p in data.points if p.direction == "zero"]
    keep = [
        p
        for p in data.points
        if p.direction in ("up", "down", "creep") and forces[id(p)][ch] >= max(low, 1e-9)
    ]
    if zeros:
        rest = float(np.mean(zeros))
    else:  # no zero readings: where the ascending readings extrapolate to 0 N
        c = np.polyfit(
            [forces[id(p)][ch] for p in keep if p.direction == "up"],
            [p.raw[ch] for p in keep if p.direction == "up"],
            1,
        )
        rest = float(c[1])
    top_raw = max(keep, key=lambda p: forces[id(p)][ch]).raw[ch]
    span = (top_raw - rest) or 1.0
    memory = creep_memory(
        [p.t if p.t_known else math.nan for p in data.points],
        [(p.raw[ch] - rest) / span for p in data.points],
    )
    mem_of = {id(p): m for p, m in zip(data.points, memory or [], strict=False)}
    pts = [
        BranchPoint(
            p.series,
            p.direction,
            float(p.raw[ch]),
            float(forces[id(p)][ch]),
            math.nan if p.loaded_s is None else float(p.loaded_s),
            mem_of.get(id(p)),
        )
        for p in keep
    ]
    top = None
    if data.adc_limits is not None and data.adc_limits[0] >= 0:
        top = float(data.adc_limits[1])  # a unipolar divider ADC (FSR): conductance domain
    choice = choose_branch_model(pts, rest, top)
    if choice is None:
        return None
    from knotsense.calibration.branch_fit import states_for

    z = states_for(choice.model, pts)
    raw = np.array([q.raw for q in pts])
    mem = [q.memory.get(choice.model.creep_tau_s, 0.0) if q.memory else 0.0 for q in pts]
    pred = choice.model.force(
        raw, z, np.nan_to_num(np.array([q.loaded_s for q in pts])), np.array(mem)
    )
    res = pred - np.array([q.force for q in pts])
    return _Choice(
        choice.model,
        choice.scores,
        choice.label,
        choice.folds,
        choice.heldout_p95_pct,
        choice.heldout_rms_pct,
        res,
    )


def _figures(
    data: BenchData,
    ch: int,
    model: CalibrationModel,
    forces: dict[int, np.ndarray],
    level_of: dict[int, int],
    groups: dict[tuple, list[BenchPoint]],
    fs: float,
) -> dict[str, dict[str, float | None]]:
    def err(p: BenchPoint) -> float:
        return float(model.apply(p.raw[ch])) - float(forces[id(p)][ch])

    def figure(pairs: list[tuple[float, float]]) -> dict[str, float | None]:
        """pairs of (absolute deviation N, reading N) -> worst % of reading and of FS."""
        if not pairs:
            return {"pct_reading": None, "pct_fs": None}
        return {
            "pct_reading": round(max(abs(d) / r * 100 for d, r in pairs if r > 0), 4),
            "pct_fs": round(max(abs(d) / fs * 100 for d, _ in pairs), 4),
        }

    ups = [p for p in data.points if p.direction == "up" and p.reference_n > 0]
    positions = [p.position_mm for p in ups]
    home = max(set(positions), key=positions.count) if positions else (0.0, 0.0)
    out: dict[str, dict[str, float | None]] = {}

    def spread(points: list[BenchPoint]) -> list[tuple[float, float]]:
        by: dict[int, list[BenchPoint]] = {}
        for p in points:
            by.setdefault(level_of[id(p)], []).append(p)
        pairs = []
        for pts in by.values():
            if len({p.series for p in pts}) < 2:
                continue
            e = [err(p) for p in pts]
            pairs.append((max(e) - min(e), float(np.mean([forces[id(p)][ch] for p in pts]))))
        return pairs

    out["repeatability"] = figure(spread([p for p in ups if p.position_mm == home]))
    out["reproducibility"] = figure(spread(ups))
    interp = []
    gx = np.array([np.mean([p.raw[ch] for p in g]) for g in groups.values()])
    gy = np.array([float(np.mean([forces[id(p)][ch] for p in g])) for g in groups.values()])
    if isinstance(model, MonotoneModel):
        # It runs through every point: judge it by leaving each interior point out.
        order = np.argsort(gy)
        gx, gy = gx[order], gy[order]
        for i in range(1, gx.size - 1):
            keep = np.arange(gx.size) != i
            m = _candidate("monotone", gx[keep], gy[keep])
            if m is not None:
                interp.append((float(m.apply(gx[i])) - gy[i], float(gy[i])))
    else:
        interp = [(float(model.apply(x)) - y, float(y)) for x, y in zip(gx, gy, strict=True)]
    out["interpolation"] = figure(interp)
    zeros = []
    for s in sorted({p.series for p in data.points}):
        z = [p for p in data.points if p.series == s and p.direction == "zero"]
        if len(z) >= 2:
            zeros.append((float(model.apply(z[-1].raw[ch]) - model.apply(z[0].raw[ch])), 0.0))
    out["zero"] = (
        {"pct_reading": None, "pct_fs": round(max(abs(d) for d, _ in zeros) / fs * 100, 4)}
        if zeros
        else {"pct_reading": None, "pct_fs": None}
    )
    rev = []
    for s in sorted({p.series for p in data.points}):
        up = {level_of[id(p)]: p for p in data.points if p.series == s and p.direction == "up"}
        for p in data.points:
            if p.series == s and p.direction == "down" and level_of[id(p)] in up:
                q = up[level_of[id(p)]]
                rev.append((err(p) - err(q), float(forces[id(q)][ch])))
    out["reversibility"] = figure(rev)
    dwells: dict[int, list[BenchPoint]] = {}
    for p in data.points:
        if p.direction == "creep":
            dwells.setdefault(p.series, []).append(p)
    creeps = []
    for pts in dwells.values():
        if len(pts) < 2:
            continue
        # ISO 376: the reading at 300 s minus at 30 s (or the dwell's last minus its first).
        a = min(pts, key=lambda p: abs(p.hold_s - 30.0))
        b = min(pts, key=lambda p: abs(p.hold_s - 300.0))
        if a is b:
            a, b = min(pts, key=lambda p: p.hold_s), max(pts, key=lambda p: p.hold_s)
        fa, fb = float(model.apply(a.raw[ch])), float(model.apply(b.raw[ch]))
        creeps.append((fb - fa, fa))
    if creeps:
        worst = max(creeps, key=lambda d: abs(d[0]) / max(abs(d[1]), 1e-9))
        d, fa = worst
        out["creep"] = {
            "pct_reading": round(abs(d) / max(abs(fa), 1e-9) * 100, 4),
            "pct_fs": round(max(abs(c[0]) for c in creeps) / fs * 100, 4),
            "signed_pct_reading": round(d / max(abs(fa), 1e-9) * 100, 4),
        }
    else:
        out["creep"] = {"pct_reading": None, "pct_fs": None}
    return out

"""Fit :class:`~knotsense.dsp.calibration_branch.BranchModel` s, chosen by held-out series.

Each candidate is a domain (linear: force in counts; log: log force in log
counts, a power law), a loading-branch degree (1-3), an unloading-branch
offset (none, or degree 0-2) with a branch-switching scale, and creep
compensation on or off. Every one is a linear least-squares problem once the
branch state of each bench reading is known, and that state comes from the
reading sequence of its series through the same causal tracker the live model
runs (:func:`~knotsense.dsp.calibration_branch.branch_states`).

The choice is by cross-validation: each loaded series is held out in turn,
the candidate is fitted on the others and predicts the held-out series'
readings; the score is the RMS of those errors (% of reading), with a 1 %
nudge per parameter so that a richer model must earn its keep. The chosen
candidate's held-out p95 and RMS go into the calibration record.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from knotsense.dsp.calibration_branch import BranchModel, branch_states

DOMAINS = ("linear", "log", "conductance")
LOAD_DEGREES = (1, 2, 3)
UNLOAD_DEGREES = (None, 0, 1, 2)
SWITCHES = (0.03, 0.07, 0.15)
"""Branch-switching scales tried (change of the log reading after a turn)."""
DEADBAND = 0.01
"""Play-operator half-width in log reading (1 %): several times the noise of either kind."""
CREEP_TAUS = (0.3, 1.0, 3.0, 10.0)
"""Creep time origins tried (s): drift ~ log10(1 + t / tau) under load."""
FOLLOW_TAUS = (300.0, 1000.0, 3000.0)
"""Creep time constants tried (s) for creep that follows the load (strain gauges)."""
PARAM_NUDGE = 0.01
"""Score nudge per parameter: between near-equal scores the simpler model wins."""
CONTACT_FRACTION = 0.02
"""A reading below this fraction of the span above rest is a sensor at rest."""


@dataclass(frozen=True)
class BranchPoint:
    """One loaded bench reading of one channel, in table order."""

    series: int
    direction: str
    raw: float
    force: float
    loaded_s: float
    memory: dict[float, float] | None = None
    """Creep follower state at the reading, per time constant (needs the readings' times)."""


@dataclass(frozen=True)
class Candidate:
    domain: str
    load_deg: int
    unload_deg: int | None
    switch: float
    creep: bool
    tau: float = 1.0
    law: str = "log"

    @property
    def label(self) -> str:
        parts = [self.domain, f"P{self.load_deg}"]
        if self.unload_deg is not None:
            parts.append(f"D{self.unload_deg}/s{self.switch:g}")
        if self.creep:
            parts.append(f"creep-{self.law}/t{self.tau:g}")
        return " ".join(parts)

    @property
    def params(self) -> int:
        return (
            self.load_deg
            + 1
            + (0 if self.unload_deg is None else self.unload_deg + 1)
            + int(self.creep)
        )


@dataclass(frozen=True)
class BranchChoice:
    """The chosen model, its label, held-out errors and every candidate's score."""

    model: BranchModel
    label: str
    heldout_p95_pct: float
    heldout_rms_pct: float
    scores: dict[str, float]
    folds: int


class _Geometry:
    """rest, span and x normalisation of one channel, shared by every fold."""

    def __init__(self, pts: list[BranchPoint], rest: float, top: float | None) -> None:
        self.top = top
        raw = np.array([p.raw for p in pts])
        top = raw[np.argmax([p.force for p in pts])]
        self.rest = float(rest)
        self.span = float(top - rest)
        if self.span == 0:
            self.span = 1.0
        self.sense = 1.0 if self.span > 0 else -1.0

    def model(self, cand: Candidate, xs: np.ndarray, **kw: float | tuple) -> BranchModel:
        return BranchModel(
            cand.domain,
            self.rest,
            self.span,
            kw.pop("x_center"),  # type: ignore[arg-type]
            kw.pop("x_scale"),  # type: ignore[arg-type]
            (float(xs.min()), float(xs.max())),
            top=float(self.top) if cand.domain == "conductance" and self.top is not None else 0.0,
            **kw,  # type: ignore[arg-type]
        )


def _states(pts: list[BranchPoint], geo: _Geometry, switch: float) -> np.ndarray:
    """Branch state of each point: its series' readings, in order, through the live tracker."""
    z = np.zeros(len(pts))
    for s in sorted({p.series for p in pts}):
        idx = [i for i, p in enumerate(pts) if p.series == s]
        rel = np.array([geo.sense * (pts[i].raw - geo.rest) for i in idx])
        v = np.log(np.maximum(rel, 1e-12 * abs(geo.span)))
        zs, _ = branch_states(v, DEADBAND, switch)
        z[idx] = zs
    return z


def _fit(
    cand: Candidate, pts: list[BranchPoint], z: np.ndarray, geo: _Geometry, train: np.ndarray
) -> BranchModel | None:
    raw = np.array([p.raw for p in pts])
    force = np.array([p.force for p in pts])
    tl = np.array([p.loaded_s for p in pts])
    rel = geo.sense * (raw - geo.rest)
    if cand.domain in ("log", "conductance"):
        if np.any(rel[train] <= 0):
            return None
        u = np.log(np.maximum(rel, 1e-12 * abs(geo.span)))
        if cand.domain == "conductance":
            if geo.top is None or np.any(geo.sense * (geo.top - raw) <= 0):
                return None
            u = u - np.log(geo.sense * (geo.top - raw))
        y = np.log(force)
        w = np.ones(force.size)
    else:
        u = raw.astype(np.float64)
        y = force
        w = 1.0 / force
    center = float(u[train].mean())
    scale = float(u[train].std()) or 1.0
    x = (u - center) / scale
    cols = [x**k for k in range(cand.load_deg + 1)]
    if cand.unload_deg is not None:
        if not np.any(z[train] > 0.5):
            return None  # no unloading readings to fit the branch on
        cols += [z * x**k for k in range(cand.unload_deg + 1)]
    if cand.law == "follow":
        creep_col = np.array([p.memory[cand.tau] if p.memory else 0.0 for p in pts])
    else:
        creep_col = np.log10(1.0 + tl / cand.tau)
        if cand.domain == "linear":
            creep_col = creep_col * rel / abs(geo.span)
    if cand.creep:
        cols.append(creep_col)
    a = np.column_stack(cols)[train] * w[train, None]
    if np.linalg.matrix_rank(a) < a.shape[1]:
        return None
    coef, *_ = np.linalg.lstsq(a, y[train] * w[train], rcond=None)
    nl = cand.load_deg + 1
    nd = 0 if cand.unload_deg is None else cand.unload_deg + 1
    try:
        model = geo.model(
            cand,
            x[train],
            x_center=center,
            x_scale=scale,
            load=tuple(coef[:nl]),
            unload=tuple(coef[nl : nl + nd]),
            creep=float(coef[-1]) if cand.creep else 0.0,
            creep_tau_s=cand.tau,
            creep_law=cand.law,
            deadband=DEADBAND,
            switch=cand.switch,
            contact=CONTACT_FRACTION * abs(geo.span),
        )
        model.inverse(np.array([1.0]))  # the loading branch must be monotone
    except Exception:
        return None
    return model


def _predict(model: BranchModel, pts: list[BranchPoint], z: np.ndarray) -> np.ndarray:
    raw = np.array([p.raw for p in pts])
    tl = np.nan_to_num(np.array([p.loaded_s for p in pts]))
    mem = np.array([p.memory.get(model.creep_tau_s, 0.0) if p.memory else 0.0 for p in pts])
    return model.force(raw, z, tl, mem)


def candidates(has_time: bool, has_top: bool = False, has_memory: bool = False) -> list[Candidate]:
    out = []
    domains = DOMAINS if has_top else tuple(d for d in DOMAINS if d != "conductance")
    for dom, ld, ud, cr in itertools.product(
        domains, LOAD_DEGREES, UNLOAD_DEGREES, (False, True) if has_time else (False,)
    ):
        for sw in SWITCHES if ud is not None else (SWITCHES[1],):
            for tau in CREEP_TAUS if cr else (1.0,):
                out.append(Candidate(dom, ld, ud, sw, cr, tau))
            if cr and has_memory:
                for tau in FOLLOW_TAUS:
                    out.append(Candidate(dom, ld, ud, sw, cr, tau, "follow"))
    return out


def choose_branch_model(
    pts: list[BranchPoint], rest: float, top: float | None = None
) -> BranchChoice | None:
    """Cross-validate every candidate over held-out series; None without 2 unloading series.

    *top* is the ADC's reading at infinite conductance (an FSR divider's full
    scale), when known: it adds the conductance domain to the candidates.
    """
    if len({p.series for p in pts if p.direction == "down"}) < 2:
        return None  # holding out the only unloading series would leave no branch to fit
    loaded_series = sorted({p.series for p in pts})
    if len(loaded_series) < 2:
        return None
    geo = _Geometry(pts, rest, top)
    has_time = all(math.isfinite(p.loaded_s) for p in pts) and len({p.loaded_s for p in pts}) > 1
    series = np.array([p.series for p in pts])
    zcache = {sw: _states(pts, geo, sw) for sw in SWITCHES}
    force = np.array([p.force for p in pts])
    scores: dict[str, float] = {}
    errs_of: dict[str, np.ndarray] = {}
    spread: dict[str, float] = {}
    by_label: dict[str, Candidate] = {}
    has_memory = all(p.memory for p in pts)
    for cand in candidates(has_time, top is not None, has_memory):
        z = zcache[cand.switch] if cand.unload_deg is not None else np.zeros(len(pts))
        errs = []
        for s in loaded_series:
            test = series == s
            m = _fit(cand, pts, z, geo, ~test)
            if m is None:
                errs = []
                break
            pred = _predict(m, [p for p, t in zip(pts, test, strict=True) if t], z[test])
            errs.append((pred - force[test]) / force[test] * 100.0)
        if not errs:
            continue
        e = np.concatenate(errs)
        if not np.all(np.isfinite(e)):
            continue
        fold_ms = np.array([np.mean(f**2) for f in errs])
        scores[cand.label] = float(np.sqrt(np.mean(e**2)))
        spread[cand.label] = float(np.std(fold_ms) / np.sqrt(fold_ms.size))
        errs_of[cand.label] = e
        by_label[cand.label] = cand
    if not scores:
        return None
    best = min(scores, key=lambda k: scores[k] * (1 + PARAM_NUDGE * by_label[k].params))
    cand = by_label[best]
    z = zcache[cand.switch] if cand.unload_deg is not None else np.zeros(len(pts))
    model = _fit(cand, pts, z, geo, np.ones(len(pts), bool))
    if model is None:
        return None
    e = errs_of[best]
    top = dict(sorted(scores.items(), key=lambda kv: kv[1])[:8])
    return BranchChoice(
        model,
        best,
        round(float(np.percentile(np.abs(e), 95)), 4),
        round(float(np.sqrt(np.mean(e**2))), 4),
        {k: round(v, 4) for k, v in top.items()},
        len(loaded_series),
    )


def _one_se(scores: dict[str, float], spread: dict[str, float], cands: dict[str, Candidate]) -> str:
    """The simplest candidate whose held-out error is within one standard error of the best.

    With a few folds and hundreds of candidates the lowest score is partly luck;
    the one-standard-error rule trades that luck for fewer parameters.
    """
    best = min(scores, key=scores.__getitem__)
    # standard error of the RMS from that of the mean square: d(sqrt m) = dm / (2 sqrt m)
    limit = scores[best] + spread[best] / (2 * max(scores[best], 1e-12))
    near = [k for k, v in scores.items() if v <= limit]
    return min(near, key=lambda k: (cands[k].params, scores[k]))


def states_for(model: BranchModel, pts: list[BranchPoint]) -> np.ndarray:
    """Branch states of *pts* under a fitted model (its own rest, deadband and switch)."""
    if not model.unload:
        return np.zeros(len(pts))
    z = np.zeros(len(pts))
    for s in sorted({p.series for p in pts}):
        idx = [i for i, p in enumerate(pts) if p.series == s]
        v = np.log(np.maximum(model.rel([pts[i].raw for i in idx]), 1e-12 * abs(model.span)))
        z[idx], _ = branch_states(v, model.deadband, model.switch)
    return z


def creep_memory(times: list[float], levels: list[float]) -> list[dict[float, float]] | None:
    """Creep follower states at each bench reading, per :data:`FOLLOW_TAUS` time constant.

    The load between two readings is taken as the later reading's (a bench changes
    the load right after a reading and then settles), *levels* relative to the span.
    None when the readings carry no times.
    """
    if not times or not all(math.isfinite(t) for t in times):
        return None
    out = []
    m = dict.fromkeys(FOLLOW_TAUS, 0.0)
    last = times[0]
    for t, lv in zip(times, levels, strict=True):
        dt = max(t - last, 0.0)
        last = t
        m = {tau: v + (max(lv, 0.0) - v) * (1 - math.exp(-dt / tau)) for tau, v in m.items()}
        out.append(dict(m))
    return out

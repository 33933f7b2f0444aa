"""Accuracy of detected episodes against ground truth (simulator or synthetic).

Episodes match one to one, greedily by IoU, when their intervals overlap with
IoU >= ``min_iou`` (0.5). Works on anything with ``start`` and ``end``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["Match", "Score", "iou", "match_episodes", "score"]


class _Interval(Protocol):
    start: float
    end: float


def iou(a: _Interval, b: _Interval) -> float:
    """Intersection over union of two intervals (0 when disjoint)."""
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / (max(a.end, b.end) - min(a.start, b.start))


@dataclass(frozen=True)
class Match:
    truth: Any
    detected: Any
    iou: float

    @property
    def onset_error(self) -> float:
        """Detected start minus true start (s)."""
        return float(self.detected.start - self.truth.start)


@dataclass(frozen=True)
class Score:
    """Counts, F1 and onset errors over one or many sessions."""

    matches: tuple[Match, ...] = ()
    missed: tuple[Any, ...] = ()
    false: tuple[Any, ...] = field(default=())

    def __add__(self, other: Score) -> Score:
        return Score(
            self.matches + other.matches, self.missed + other.missed, self.false + other.false
        )

    @property
    def f1(self) -> float:
        tp = len(self.matches)
        denom = 2 * tp + len(self.missed) + len(self.false)
        return 1.0 if denom == 0 else 2 * tp / denom

    @property
    def median_onset_error(self) -> float:
        """Median absolute onset error (s); 0 without matches."""
        if not self.matches:
            return 0.0
        return float(np.median([abs(m.onset_error) for m in self.matches]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "true_positives": len(self.matches),
            "missed": len(self.missed),
            "false": len(self.false),
            "f1": round(self.f1, 4),
            "median_onset_error_s": round(self.median_onset_error, 3),
        }


def match_episodes(
    truth: Sequence[_Interval], detected: Sequence[_Interval], min_iou: float = 0.5
) -> Score:
    """One-to-one matching, best IoU first."""
    pairs = sorted(
        (
            (iou(t, d), i, j)
            for i, t in enumerate(truth)
            for j, d in enumerate(detected)
            if iou(t, d) >= min_iou
        ),
        reverse=True,
    )
    used_t: set[int] = set()
    used_d: set[int] = set()
    matches = []
    for value, i, j in pairs:
        if i in used_t or j in used_d:
            continue
        used_t.add(i)
        used_d.add(j)
        matches.append(Match(truth[i], detected[j], value))
    missed = tuple(t for i, t in enumerate(truth) if i not in used_t)
    false = tuple(d for j, d in enumerate(detected) if j not in used_d)
    return Score(tuple(matches), missed, false)


def score(truth: Sequence[Any], detected: Sequence[Any], kind: str, min_iou: float = 0.5) -> Score:
    """Match the episodes of one *kind* (``.kind`` attribute) in *truth* and *detected*."""
    return match_episodes(
        [e for e in truth if e.kind == kind], [e for e in detected if e.kind == kind], min_iou
    )

"""Missing samples: the one :class:`Gap` record and the one rule that names its cause.

Both sides of the host report losses with the same record and the same
precedence of causes: the live device client (:class:`~knotsense.host.device.AsyncDevice`,
gap by gap as blocks arrive, times in host unix seconds) and the loader of a
recording (:func:`~knotsense.host.session.load_session`, all blocks at once,
times in seconds from the session start). A gap is never bridged silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from knotsense.protocol import BlockFlags

__all__ = ["HALF_WRAP", "WRAP", "Gap", "GapReason", "find_block_gaps", "gap_reason"]

WRAP = 1 << 32
"""The u32 sample index and microsecond clock wrap here."""
HALF_WRAP = 1 << 31

GapReason = Literal["link", "overflow", "frames_lost", "reboot", "stopped"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples missing between two received ones.

    Attributes:
        start_s: where the first missing sample would have been.
        end_s: time of the first sample after the gap.
        samples_lost: how many samples are missing (from ``sample_index`` when it
            is trustworthy, else estimated from the times).
        reason: see :func:`gap_reason`.

    Times are on the producer's timeline: host unix seconds from a live
    :class:`~knotsense.host.device.AsyncDevice`, seconds from the session start
    in a loaded :class:`~knotsense.host.session.Session`.
    """

    start_s: float
    end_s: float
    samples_lost: int
    reason: GapReason

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def gap_reason(*, reboot: bool, link: bool, overflow: bool, frames_lost: bool) -> GapReason:
    """The cause of a gap, the most fundamental one first.

    ``reboot`` (the device restarted), ``link`` (the host saw the link drop or
    reconnect), ``overflow`` (the device's buffer overflowed, OVERFLOW_BEFORE),
    ``frames_lost`` (frames missing on the link), else ``stopped`` (the stream
    was stopped and restarted).
    """
    if reboot:
        return "reboot"
    if link:
        return "link"
    if overflow:
        return "overflow"
    if frames_lost:
        return "frames_lost"
    return "stopped"


def points_between(points: list[int], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per pair, whether any of sorted *points* p satisfies lo < p <= hi."""
    if not points:
        return np.zeros(lo.shape, dtype=bool)
    arr = np.asarray(points, dtype=np.int64)
    return np.searchsorted(arr, hi, side="right") > np.searchsorted(arr, lo, side="right")


def find_block_gaps(
    frame: np.ndarray,
    sidx: np.ndarray,
    n: np.ndarray,
    period_ns: np.ndarray,
    flags: np.ndarray,
    reboot: np.ndarray,
    t0: np.ndarray,
    t_last: np.ndarray,
    *,
    link_frames: list[int],
    lost_at: list[int],
    lost_n: list[int],
) -> tuple[Gap, ...]:
    """A Gap at every discontinuity between consecutive blocks of a recording.

    Args:
        frame, sidx, n, period_ns, flags: per block (in frame order): frame
            index, first sample index, sample count, sample period, BlockFlags.
        reboot: per pair of consecutive blocks, whether the device restarted between them.
        t0, t_last: per block, time of its first and last sample.
        link_frames: frame counts at which the link restarted (sorted).
        lost_at, lost_n: frame indices the decoder saw frames lost before, and how many.
    """
    if frame.size < 2:
        return ()
    expected = (sidx[:-1] + n[:-1]) % WRAP
    jump = (sidx[1:] - expected) % WRAP
    overflow = (flags[1:] & int(BlockFlags.OVERFLOW_BEFORE)) != 0
    link = points_between(link_frames, frame[:-1], frame[1:])
    lost_frames = np.zeros(frame.size - 1, dtype=np.int64)
    if lost_at:
        at = np.asarray(lost_at, dtype=np.int64)
        srt = np.argsort(at, kind="stable")
        at, cum = at[srt], np.concatenate(([0], np.cumsum(np.asarray(lost_n)[srt])))
        lost_frames = (
            cum[np.searchsorted(at, frame[1:], side="right")]
            - cum[np.searchsorted(at, frame[:-1], side="right")]
        )
    period_s = np.maximum(period_ns[1:], 1) * 1e-9
    dt = t0[1:] - t_last[:-1]
    by_time = np.maximum(0, np.rint(dt / period_s) - 1).astype(np.int64)
    late = dt > 1.5 * period_s
    broken = (jump != 0) | overflow | reboot | late
    # sample_index is trusted for the count when it agrees with the clock.
    trusted = (
        ~reboot & (jump < HALF_WRAP) & (np.abs(jump - by_time) <= np.maximum(2, by_time // 100))
    )
    out = []
    for i in np.flatnonzero(broken).tolist():
        reason = gap_reason(
            reboot=bool(reboot[i]),
            link=bool(link[i]),
            overflow=bool(overflow[i]),
            frames_lost=bool(lost_frames[i] or (jump[i] != 0 and trusted[i])),
        )
        lost = int(jump[i]) if trusted[i] else int(by_time[i])
        start_s = float(t_last[i] + period_s[i])
        end_s = float(t0[i + 1])
        out.append(Gap(min(start_s, end_s), end_s, lost, reason))
    return tuple(out)

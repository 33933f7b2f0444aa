"""One Gap record and one cause rule for the live client and the recording loader."""

from __future__ import annotations

import itertools

import numpy as np

from knotsense.host import device, session
from knotsense.host.gaps import Gap, find_block_gaps, gap_reason


def test_live_and_loaded_sessions_share_one_gap_record() -> None:
    assert device.Gap is session.Gap is Gap
    gap = Gap(1.0, 1.5, 12, "link")
    assert gap.duration_s == 0.5 and gap == Gap(1.0, 1.5, 12, "link")


def test_cause_precedence_is_reboot_link_overflow_frames_then_stopped() -> None:
    order = ["reboot", "link", "overflow", "frames_lost"]
    for flags in itertools.product([False, True], repeat=4):
        expected = next((name for name, on in zip(order, flags, strict=True) if on), "stopped")
        got = gap_reason(reboot=flags[0], link=flags[1], overflow=flags[2], frames_lost=flags[3])
        assert got == expected


def test_block_gaps_count_by_index_and_name_the_link() -> None:
    # Four 10-sample blocks at 100 Hz; 20 samples missing before block 2, link restarted there.
    n = np.full(4, 10)
    sidx = np.array([0, 10, 40, 50])
    t0 = sidx * 0.01
    gaps = find_block_gaps(
        np.arange(4),
        sidx,
        n,
        np.full(4, 10_000_000),
        np.zeros(4, dtype=np.int64),
        np.zeros(3, dtype=bool),
        t0,
        t0 + 0.09,
        link_frames=[2],
        lost_at=[],
        lost_n=[],
    )
    assert gaps == (Gap(0.2, 0.4, 20, "link"),)

"""Loading a recording: :func:`load_session` puts the decoded blocks on one timeline.

* **device time**: each block's u32 microsecond stamp is unwrapped. Wraps are
  counted with help from the host receive times (so even a link outage longer
  than half the 71.6-minute wrap period is unwrapped right). A device reboot
  (a BOOT event, or a device clock that disagrees with the host clock by more
  than :data:`REBOOT_TOLERANCE_S`) starts a new *epoch*; ``device_time_us``
  stays monotonic across epochs (the new epoch continues after the old one by
  the host-measured time between them) and ``epoch`` says which boot a sample
  belongs to.
* **host timeline**: per epoch, device time is mapped to host time
  (:mod:`~knotsense.host.session.timeline`). ``t`` is seconds from the session
  start (metadata ``start_unix``).
* **gaps**: every discontinuity in ``sample_index`` (or device time) becomes a
  :class:`~knotsense.host.gaps.Gap` with a reason -- never silently bridged.
* **forces**: raw counts times the calibration in the metadata (or mN / 1000
  when the device reports millinewtons).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.errors import CalibrationError
from knotsense.host.gaps import HALF_WRAP, WRAP, find_block_gaps, points_between
from knotsense.host.recording import SessionReader
from knotsense.host.session.decode import decode_records
from knotsense.host.session.metadata import calibration_from_metadata, device_info_from_dict
from knotsense.host.session.model import Mark, Session, TimedMessage
from knotsense.host.session.timeline import EpochClock, fit_epoch_clock
from knotsense.protocol import DeviceInfo, SampleUnit

__all__ = ["REBOOT_TOLERANCE_S", "load_session"]

REBOOT_TOLERANCE_S = 5.0
"""Device time running ahead of host time by more than this (plus 0.1 %) means a reboot."""


def load_session(path: str | os.PathLike[str], salvage: bool = False) -> Session:
    """Decode a recording into a :class:`Session`.

    Raises:
        SessionFileError: the file is missing, not a recording, or (without
            *salvage*) corrupt inside; see :class:`SessionReader`.
    """
    reader = SessionReader(path, salvage=salvage)
    c = decode_records(reader)
    start = reader.start_time
    meta = reader.metadata
    b = c.blocks
    nb = len(b.frame)

    device_info = c.device_info or device_info_from_dict(meta.get("device_info"))
    order = np.argsort(np.asarray(b.frame, dtype=np.int64), kind="stable")
    frame = np.asarray(b.frame, dtype=np.int64)[order]
    host = np.asarray(b.host, dtype=np.float64)[order]
    t_raw = np.asarray(b.t_first, dtype=np.int64)[order]
    sidx = np.asarray(b.index, dtype=np.int64)[order]
    period_ns = np.asarray(b.period, dtype=np.int64)[order]
    n = np.asarray(b.n, dtype=np.int64)[order]
    flags = np.asarray(b.flags, dtype=np.int64)[order]
    masks = np.asarray(b.mask, dtype=np.int64)[order]

    # Epochs and unwrapping (host-assisted: the number of wraps between two
    # blocks is the one that agrees with the host's elapsed time).
    d_mod = (t_raw[1:] - t_raw[:-1]) % WRAP
    host_us = np.diff(host) * 1e6
    wraps = np.maximum(0, np.rint((host_us - d_mod) / WRAP)).astype(np.int64)
    elapsed = d_mod + wraps * WRAP
    tolerance = REBOOT_TOLERANCE_S * 1e6 + 1e-3 * np.abs(host_us)
    reboot = (elapsed > host_us + tolerance) | points_between(c.boots, frame[:-1], frame[1:])
    steps = np.where(reboot, 0, elapsed)
    epoch_b = np.concatenate(([0], np.cumsum(reboot))).astype(np.int32)
    # Device time per block, restarting at each epoch from its raw stamp.
    t_dev = np.empty(nb, dtype=np.int64)
    if nb:
        starts = np.concatenate(([0], np.flatnonzero(reboot) + 1))
        cum = np.concatenate(([0], np.cumsum(steps)))
        t_dev[:] = (
            cum
            - np.repeat(cum[starts], np.diff(np.append(starts, nb)))
            + np.repeat(t_raw[starts], np.diff(np.append(starts, nb)))
        )
    else:
        starts = np.zeros(0, dtype=np.int64)

    # Host mapping per epoch, from each block's last-sample time (a block is sent
    # after its last sample is taken).
    last_us = t_dev + ((n - 1).clip(0) * period_ns) // 1000
    mappers: list[EpochClock] = []
    bounds = np.append(starts, nb)
    for e in range(starts.size):
        sl = slice(int(bounds[e]), int(bounds[e + 1]))
        ref = int(t_dev[sl][0])
        mappers.append(fit_epoch_clock((last_us[sl] - ref) / 1e6, host[sl] - start))

    # Samples.
    total = int(n.sum())
    block_first = np.concatenate(([0], np.cumsum(n)[:-1])) if nb else np.zeros(0, np.int64)
    union = int(np.bitwise_or.reduce(masks)) if nb else 0
    channel_ids = tuple(i for i in range(8) if union >> i & 1)
    col_of = {ch: k for k, ch in enumerate(channel_ids)}
    raw = np.zeros((total, len(channel_ids)), dtype=np.int32)
    present = None
    if nb and (masks != union).any():
        present = np.zeros((total, len(channel_ids)), dtype=bool)
    rank = np.empty(nb, dtype=np.int64)
    rank[order] = np.arange(nb)
    for (bn, mask), (ids, arrays) in b.groups.items():
        if bn == 0:
            continue
        data = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        first = block_first[rank[np.asarray(ids, dtype=np.int64)]]
        rows = (first[:, None] + np.arange(bn)).ravel()
        cols = [col_of[ch] for ch in range(8) if mask >> ch & 1]
        raw[rows[:, None], cols] = data.reshape(-1, len(cols))
        if present is not None:
            present[rows[:, None], cols] = True

    sample_block = np.repeat(np.arange(nb), n)
    k_in_block = np.arange(total) - block_first[sample_block] if nb else np.zeros(0, np.int64)
    dev_us = t_dev[sample_block] + (k_in_block * period_ns[sample_block]) // 1000
    epoch = epoch_b[sample_block]
    t = np.empty(total, dtype=np.float64)
    block_t0 = np.empty(nb, dtype=np.float64)
    block_t_last = np.empty(nb, dtype=np.float64)
    for e, mapper in enumerate(mappers):
        ref = int(t_dev[int(bounds[e])])
        sel = epoch == e
        t[sel] = mapper.map((dev_us[sel] - ref) / 1e6)
        bsl = slice(int(bounds[e]), int(bounds[e + 1]))
        block_t0[bsl] = mapper.map((t_dev[bsl] - ref) / 1e6)
        block_t_last[bsl] = mapper.map((last_us[bsl] - ref) / 1e6)
    # Across a reboot the fits are independent: never let an epoch start before the
    # previous one ended, and continue device_time_us from it.
    shifts = [0.0] * len(mappers)
    for e in range(1, len(mappers)):
        z, zend = int(bounds[e]), int(bounds[e + 1])
        period_s = max(float(period_ns[z]), 1.0) * 1e-9
        shift = max(0.0, block_t_last[z - 1] + period_s - block_t0[z])
        shifts[e] = shift
        sel = epoch == e
        t[sel] += shift
        block_t0[z:zend] += shift
        block_t_last[z:zend] += shift
        offset = round((block_t0[z] - block_t_last[z - 1]) * 1e6) + int(last_us[z - 1])
        move = offset - int(t_dev[z])
        dev_us[sel] += move
        t_dev[z:zend] += move
        last_us[z:zend] += move

    gaps = find_block_gaps(
        frame,
        sidx,
        n,
        period_ns,
        flags,
        reboot,
        block_t0,
        block_t_last,
        link_frames=c.links,
        lost_at=c.lost_at,
        lost_n=c.lost_n,
    )

    # Non-sample messages on the timeline.
    def timed(items: list[tuple[int, float, Any]]) -> tuple[TimedMessage, ...]:
        out = []
        for f, h, msg in items:
            t_us = getattr(msg, "t_us", None)
            when = h - start
            if t_us is not None and nb:
                # The block received just before (or, after a BOOT, just after) it.
                j = int(np.searchsorted(frame, f, side="right")) - 1
                if j < 0 or (
                    j + 1 < nb and points_between(c.boots, frame[j : j + 1], np.array([f]))[0]
                ):
                    j = min(j + 1, nb - 1)
                delta = (t_us - int(t_raw[j])) % WRAP
                delta = delta - WRAP if delta >= HALF_WRAP else delta
                e = int(epoch_b[j])
                ref = int(t_dev[int(bounds[e])])
                when = float(mappers[e].map((int(t_dev[j]) + delta - ref) / 1e6)) + shifts[e]
            out.append(TimedMessage(when, h - start, msg))
        return tuple(out)

    calibration = None
    calibration_error = None
    forces = None
    device_channels = device_info.channel_count if isinstance(device_info, DeviceInfo) else None
    try:
        calibration = calibration_from_metadata(meta, channel_ids, device_channels)
    except CalibrationError as exc:
        calibration_error = str(exc)
    if calibration is not None and channel_ids:
        # With the times, a stateful model (hysteresis branch, creep) runs from rest over
        # the whole session: the same numbers as the live pipeline's stream.
        forces = calibration.apply(raw, t=t)
    elif (
        calibration_error is None
        and isinstance(device_info, DeviceInfo)
        and device_info.units == SampleUnit.MILLINEWTON
    ):
        forces = raw * 1e-3
    if forces is not None and present is not None:
        forces = np.where(present, forces, np.nan)

    return Session(
        path=Path(path),
        metadata=meta,
        framing=reader.framing,
        start_unix=start,
        device_info=device_info,
        channel_ids=channel_ids,
        channel_names=tuple(f"ch{i}" for i in channel_ids),
        t=t,
        device_time_us=dev_us,
        host_rx_s=host[sample_block] - start,
        epoch=epoch,
        raw=raw,
        present=present,
        forces=forces,
        calibration=calibration,
        calibration_error=calibration_error,
        saturated_mask=np.asarray(b.sat, dtype=np.uint8)[order][sample_block],
        fault_mask=np.asarray(b.fault, dtype=np.uint8)[order][sample_block],
        gaps=gaps,
        events=timed(c.events),
        statuses=timed(c.statuses),
        logs=timed(c.logs),
        stream_configs=timed(c.configs),
        marks=tuple(Mark(h - start, k, i) for h, k, i in c.marks),
        decoder_stats=c.stats,
        drift_ppm=tuple(m.drift_ppm for m in mappers),
        damage=reader.damage,
    )

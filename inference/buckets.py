"""Log-scale latency buckets: percentiles from a ``GROUP BY`` instead of a sort.

Each row stores ``latency_bucket = ceil(log(latency_ms) / log(GAMMA))`` with GAMMA =
(1 + ALPHA) / (1 - ALPHA) and ALPHA = 1 % (DDSketch's mapping). A bucket holds latencies in
(GAMMA^(i-1), GAMMA^i]; any value in it is within ALPHA (relative) of 2 GAMMA^i / (GAMMA + 1),
so a percentile read from bucket counts is within 1 % (relative) of
the exact nearest-rank percentile. Queries also keep each bucket's min and max, and the estimate
is clamped to them: a bucket holding one distinct latency gives it exactly.

1 µs … 10⁷ ms map to buckets -349 … 814; smaller (and zero, negative, NaN) latencies share
``ZERO_BUCKET``, larger ones ``MAX_BUCKET``: both still clamp to the true min / max.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MIN_LATENCY_MS = 0.001
ZERO_BUCKET = math.ceil(math.log(MIN_LATENCY_MS) / _LOG_GAMMA) - 1
MAX_BUCKET = math.ceil(math.log(1e7) / _LOG_GAMMA)


def bucket_of(latency_ms: float) -> int:
    if not latency_ms >= MIN_LATENCY_MS:  # also NaN
        return ZERO_BUCKET
    return min(math.ceil(math.log(latency_ms) / _LOG_GAMMA), MAX_BUCKET)


def representative(bucket: int) -> float:
    if bucket <= ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**bucket / (GAMMA + 1)


@dataclass(frozen=True)
class Bin:
    bucket: int
    count: int
    low: float  # the smallest latency in the bin
    high: float  # the largest


def percentiles(bins: Iterable[Bin], qs: Sequence[float]) -> list[float | None]:
    """Nearest-rank percentiles (``q`` in 0..1) of the latencies counted in ``bins``.

    The rank of ``q`` is ``ceil(q * n)`` (at least 1), as for ``sorted(xs)[rank - 1]``.
    None for every ``q`` when there is no data.
    """
    ordered = sorted(bins, key=lambda b: b.bucket)
    total = sum(b.count for b in ordered)
    if total == 0:
        return [None for _ in qs]
    out: list[float | None] = []
    for q in qs:
        rank = max(1, math.ceil(q * total - 1e-9))
        seen = 0
        for b in ordered:
            if seen + b.count >= rank:
                if rank == seen + 1:  # the bin's first value: its min, exactly
                    out.append(b.low)
                elif rank == seen + b.count:  # its last: its max
                    out.append(b.high)
                else:
                    out.append(min(max(representative(b.bucket), b.low), b.high))
                break
            seen += b.count
    return out

"""Robust summary of repeated timings: drop outliers beyond 1.5 IQR, then median and IQR."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    median: float
    iqr: float
    n: int              # samples kept
    dropped: int        # outliers rejected


def summarize(samples) -> Summary:
    x = np.asarray(list(samples), dtype=float)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    kept = x[(x >= q1 - 1.5 * iqr) & (x <= q3 + 1.5 * iqr)]
    k1, k3 = np.percentile(kept, [25, 75])
    return Summary(float(np.median(kept)), float(k3 - k1), int(kept.size), int(x.size - kept.size))

"""Ranking metrics (CMC, mAP, mINP) under the Market-1501 protocol.

Per query the gallery is sorted by distance (stable sort, so ties keep gallery order and
results are deterministic); gallery items of the same pid seen by the same camera and
junk items (pid -1) are dropped; distractors (pid 0) stay as negatives. Queries with
no remaining true match are skipped, as in the official Market-1501 code.
"""
from dataclasses import dataclass

import numpy as np

from edgereid.errors import EdgereidError

JUNK_PID = -1


@dataclass(frozen=True)
class RankResult:
    """cmc[k-1] is the rank-k matching rate; mAP and mINP in [0, 1].

    For an average over several runs (SYSU trials, RegDB splits) `num_runs` counts them
    and `num_valid_queries` is the total over all runs.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_runs: int = 1

    def rank(self, k: int) -> float:
        """Rank-k accuracy (k counts from 1)."""
        if not 1 <= k <= len(self.cmc):
            raise EdgereidError(f"rank-{k} not available: CMC holds ranks 1..{len(self.cmc)}")
        return float(self.cmc[k - 1])

    def summary(self) -> dict:
        ranks = {f"rank{k}": self.rank(k) for k in (1, 5, 10, 20) if k <= len(self.cmc)}
        return {**ranks, "mAP": self.mAP, "mINP": self.mINP,
                "num_valid_queries": self.num_valid_queries, "num_runs": self.num_runs}


def _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids):
    distmat = np.asarray(distmat, dtype=np.float64)
    if distmat.ndim != 2:
        raise EdgereidError(f"distance matrix: expected 2-D [num_query, num_gallery], got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    arrays = []
    for name, arr, n in (("q_pids", q_pids, num_q), ("g_pids", g_pids, num_g),
                         ("q_camids", q_camids, num_q), ("g_camids", g_camids, num_g)):
        arr = np.asarray(arr).reshape(-1)
        if arr.shape[0] != n:
            raise EdgereidError(f"{name}: expected {n} entries to match the distance matrix {distmat.shape}, got {arr.shape[0]}")
        arrays.append(arr)
    if num_g == 0:
        raise EdgereidError("gallery is empty: nothing to rank against")
    return (distmat, *arrays)


def query_scores(ranked_matches: np.ndarray):
    """AP and INP of one query from its 0/1 match vector in rank order (valid items only).

    AP = mean over true matches of precision at that match; INP = (#true matches) /
    (rank of the hardest, i.e. last, true match), Ye et al. 2021 (AGW).
    """
    hits = np.flatnonzero(ranked_matches)
    num_rel = hits.size
    precision_at_hits = np.arange(1, num_rel + 1) / (hits + 1.0)
    ap = float(precision_at_hits.mean())
    inp = num_rel / (hits[-1] + 1.0)
    return ap, float(inp)


def cmc_row(ranked_matches: np.ndarray, max_rank: int) -> np.ndarray:
    """1 from the first true match on, padded with its last value to max_rank."""
    first = np.flatnonzero(ranked_matches)[0]
    row = np.zeros(max_rank, dtype=np.float64)
    if first < max_rank:
        row[first:] = 1.0
    return row


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> RankResult:
    """CMC, mAP and mINP with Market-1501 rules (see module docstring)."""
    distmat, q_pids, g_pids, q_camids, g_camids = _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    order = np.argsort(distmat, axis=1, kind="stable")
    cmcs, aps, inps = [], [], []
    for i in range(num_q):
        ranked = order[i]
        same_view = (g_pids[ranked] == q_pids[i]) & (g_camids[ranked] == q_camids[i])
        keep = ~same_view & (g_pids[ranked] != JUNK_PID)
        matches = (g_pids[ranked][keep] == q_pids[i])
        if not matches.any():
            continue  # no valid true match in the gallery: the query does not count
        cmcs.append(cmc_row(matches, max_rank))
        ap, inp = query_scores(matches)
        aps.append(ap)
        inps.append(inp)
    if not cmcs:
        raise EdgereidError(
            f"no valid query: none of the {num_q} queries has a true match in the {num_g}-image gallery "
            "once same-camera matches and junk (pid -1) are removed")
    return RankResult(cmc=np.mean(cmcs, axis=0), mAP=float(np.mean(aps)), mINP=float(np.mean(inps)),
                      num_valid_queries=len(cmcs))


def average_results(results) -> RankResult:
    """Mean CMC/mAP/mINP over runs (trials or splits); CMC cut to the shortest run."""
    results = list(results)
    if not results:
        raise EdgereidError("average_results: expected at least one result, got none")
    n = min(len(r.cmc) for r in results)
    return RankResult(
        cmc=np.mean([r.cmc[:n] for r in results], axis=0),
        mAP=float(np.mean([r.mAP for r in results])),
        mINP=float(np.mean([r.mINP for r in results])),
        num_valid_queries=int(sum(r.num_valid_queries for r in results)),
        num_runs=int(sum(r.num_runs for r in results)),
    )

"""RegDB evaluation: one random split, one direction, the whole test set.

Every test identity has 10 visible and 10 thermal images; the query set is one
modality and the gallery the other, so no camera filtering applies (every gallery
image is from the other sensor). The 10 splits are averaged with `average_results`.
"""
import numpy as np

from edgereid.errors import EdgereidError
from edgereid.metrics.distance import compute_distance_matrix
from edgereid.metrics.rank import RankResult, average_results, evaluate_rank

DIRECTIONS = {
    "v2t": "v2t", "visible->thermal": "v2t", "visible2thermal": "v2t",
    "t2v": "t2v", "thermal->visible": "t2v", "thermal2visible": "t2v",
}


def eval_regdb(visible_feats, visible_pids, thermal_feats, thermal_pids, direction: str = "v2t",
               metric: str = "cosine", max_rank: int = 20) -> RankResult:
    """Visible->thermal (`v2t`) or thermal->visible (`t2v`) retrieval on one split."""
    if direction not in DIRECTIONS:
        raise EdgereidError(f"RegDB direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
    vis = (visible_feats, np.asarray(visible_pids).reshape(-1))
    thr = (thermal_feats, np.asarray(thermal_pids).reshape(-1))
    (q_feats, q_pids), (g_feats, g_pids) = (vis, thr) if DIRECTIONS[direction] == "v2t" else (thr, vis)
    distmat = compute_distance_matrix(q_feats, g_feats, metric)
    # Query and gallery come from different sensors: distinct camera ids so that
    # the same-camera rule of evaluate_rank never removes a match.
    return evaluate_rank(distmat, q_pids, g_pids, np.zeros(q_pids.size, int), np.ones(g_pids.size, int),
                         max_rank=max_rank)


__all__ = ["eval_regdb", "average_results", "DIRECTIONS"]

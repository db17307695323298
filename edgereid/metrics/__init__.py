"""Re-ID evaluation: Market-1501 ranking, SYSU-MM01 and RegDB protocols, re-ranking, CMC plots."""
from edgereid.metrics.distance import compute_distance_matrix, cosine_distance, euclidean_distance
from edgereid.metrics.plots import plot_cmc
from edgereid.metrics.rank import RankResult, average_results, evaluate_rank
from edgereid.metrics.regdb import eval_regdb
from edgereid.metrics.rerank import re_ranking
from edgereid.metrics.sysu import (SysuPermutations, eval_sysu, evaluate_sysu_trial, load_sysu_permutations,
                                   sample_gallery)

__all__ = [
    "RankResult", "evaluate_rank", "average_results",
    "eval_sysu", "evaluate_sysu_trial", "sample_gallery", "load_sysu_permutations", "SysuPermutations",
    "eval_regdb", "re_ranking", "plot_cmc",
    "compute_distance_matrix", "cosine_distance", "euclidean_distance",
]

"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li; CVPR 2017), written from the paper.

With all probes and gallery images P = {p} u G:
  N(i, k)   = the k nearest neighbours of i (i itself included, rank 0);
  R(i, k)   = {j in N(i, k) : i in N(j, k)}                (k-reciprocal neighbours);
  R*(i, k)  = R(i, k) u R(j, k/2) for every j in R(i, k) whose R(j, k/2) shares at
              least 2/3 of its members with R(i, k)         (expansion);
  V_i[j]    = exp(-d(i, j)) on R*(i, k1), 0 elsewhere, normalised to sum 1;
  V_i      <- mean of V_j over j in N(i, k2)                (local query expansion);
  d_J(i, j) = 1 - sum_k min(V_i[k], V_j[k]) / sum_k max(V_i[k], V_j[k]);
  d*(p, g)  = (1 - lambda) d_J(p, g) + lambda d(p, g).
The original distances are divided by their maximum first, so lambda mixes two
quantities on the same [0, 1] scale whatever the metric.
"""
import numpy as np

from edgereid.errors import EdgereidError


def _full_distance(q_g, q_q, g_g) -> np.ndarray:
    q_g, q_q, g_g = (np.asarray(x, dtype=np.float64) for x in (q_g, q_q, g_g))
    nq, ng = q_g.shape if q_g.ndim == 2 else (None, None)
    if nq is None or q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise EdgereidError(
            f"re_ranking: expected q_g [Q, G], q_q [Q, Q], g_g [G, G]; got {q_g.shape}, {q_q.shape}, {g_g.shape}")
    full = np.block([[q_q, q_g], [q_g.T, g_g]])
    top = full.max()
    return full / top if top > 0 else full


def _reciprocal(ranks: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = ranks[i, :k + 1]
    back = ranks[forward, :k + 1]
    return forward[np.any(back == i, axis=1)]


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked probe x gallery distance matrix (same shape as `q_g_dist`)."""
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise EdgereidError(f"re_ranking: expected k1 >= 1, k2 >= 1, 0 <= lambda <= 1; got {k1}, {k2}, {lambda_value}")
    dist = _full_distance(q_g_dist, q_q_dist, g_g_dist)
    n = dist.shape[0]
    nq = np.asarray(q_g_dist).shape[0]
    k1, k2 = min(k1, n - 1), min(k2, n)
    ranks = np.argsort(dist, axis=1, kind="stable")

    V = np.zeros((n, n))
    half = max(int(round(k1 / 2)), 1)
    for i in range(n):
        r_i = _reciprocal(ranks, i, k1)
        expanded = r_i
        for j in r_i:
            r_j = _reciprocal(ranks, j, half)
            if np.intersect1d(r_j, r_i).size >= 2.0 / 3.0 * r_j.size:
                expanded = np.union1d(expanded, r_j)
        w = np.exp(-dist[i, expanded])
        V[i, expanded] = w / w.sum()

    if k2 > 1:
        V = V[ranks[:, :k2]].mean(axis=1)

    # Jaccard distance for probe rows against gallery columns; sum max = |V_i| + |V_j| - sum min.
    V_gal = V[nq:]
    row_sums = V.sum(axis=1)
    jaccard = np.empty((nq, n - nq))
    for i in range(nq):
        nz = np.flatnonzero(V[i])  # min() is zero wherever V_i is, so only its support counts
        mins = np.minimum(V_gal[:, nz], V[i, nz]).sum(axis=1)
        maxs = row_sums[i] + row_sums[nq:] - mins
        jaccard[i] = 1.0 - mins / maxs
    return (1.0 - lambda_value) * jaccard + lambda_value * dist[:nq, nq:]

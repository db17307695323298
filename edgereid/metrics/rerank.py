"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li; CVPR 2017), as the authors' code does it.

With all probes and gallery images P = {p} u G and d the input distances:
  D(i, j)   = d(i, j)^2 / max_k d(k, j)^2, transposed: row i of the matrix used below is
              column i of the squared distances over that column's maximum, i.e. for
              the (symmetric) input blocks, each row over its own maximum;
  N(i, k)   = the k + 1 nearest by D (i itself included, rank 0);
  R(i, k)   = {j in N(i, k) : i in N(j, k)}                (k-reciprocal neighbours);
  R*(i, k1) = R(i, k1) u R(j, round(k1/2)) for every j in R(i, k1) whose
              R(j, round(k1/2)) shares strictly more than 2/3 of its members with
              R(i, k1)                                      (expansion; round half to even);
  V_i[j]    = exp(-D(i, j)) on R*(i, k1), 0 elsewhere, normalised to sum 1;
  V_i      <- mean of V_j over the k2 nearest j of i (k2 = 1: unchanged);
  d_J(i, j) = 1 - m / (2 - m),  m = sum_k min(V_i[k], V_j[k])   (Jaccard distance);
  d*(p, g)  = (1 - lambda) d_J(p, g) + lambda D(p, g).
These are the three choices of the authors' Python code (person-re-ranking, and the
copies of it in use, e.g. torchreid's `re_ranking`) that a reading of the paper does not
fix: distances are squared, each row is scaled by its own maximum (not the matrix's),
and the expansion test is a strict `>`.

Departures, none of which changes a ranking except through exact ties: the arithmetic
is float64 (the reference works in float32, so values agree to about 1e-7); neighbours
are ranked with a stable sort (ties by index; the reference's default sort leaves tie
order unspecified); a row whose distances are all zero is left at zero where the
reference divides by zero and returns NaN.
"""
import numpy as np

from edgereid.errors import EdgereidError


def _scaled_squared(q_g, q_q, g_g) -> np.ndarray:
    q_g, q_q, g_g = (np.asarray(x, dtype=np.float64) for x in (q_g, q_q, g_g))
    nq, ng = q_g.shape if q_g.ndim == 2 else (None, None)
    if nq is None or q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise EdgereidError(
            f"re_ranking: expected q_g [Q, G], q_q [Q, Q], g_g [G, G]; got {q_g.shape}, {q_q.shape}, {g_g.shape}")
    full = np.block([[q_q, q_g], [q_g.T, g_g]])
    if not np.all(np.isfinite(full)):
        raise EdgereidError("re_ranking: the distance matrices hold NaN or infinite values")
    squared = full ** 2
    top = squared.max(axis=0)
    return (squared / np.where(top > 0, top, 1.0)).T


def _reciprocal(ranks: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = ranks[i, :k + 1]
    back = ranks[forward, :k + 1]
    return forward[np.any(back == i, axis=1)]


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked probe x gallery distance matrix (same shape as `q_g_dist`; see the module docstring)."""
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise EdgereidError(f"re_ranking: expected k1 >= 1, k2 >= 1, 0 <= lambda <= 1; got {k1}, {k2}, {lambda_value}")
    dist = _scaled_squared(q_g_dist, q_q_dist, g_g_dist)
    n = dist.shape[0]
    nq = np.asarray(q_g_dist).shape[0]
    ranks = np.argsort(dist, axis=1, kind="stable")

    V = np.zeros((n, n))
    half = int(np.around(k1 / 2.0))  # numpy rounds half to even, as the reference does
    for i in range(n):
        r_i = _reciprocal(ranks, i, k1)
        expanded = r_i
        for j in r_i:
            r_j = _reciprocal(ranks, j, half)
            if np.intersect1d(r_j, r_i).size > 2.0 / 3.0 * r_j.size:
                expanded = np.union1d(expanded, r_j)
        w = np.exp(-dist[i, expanded])
        V[i, expanded] = w / w.sum()

    if k2 != 1:
        V = V[ranks[:, :k2]].mean(axis=1)

    # Jaccard distance of probe rows to gallery columns; every row of V sums to 1, so the
    # sum of maxima is 2 - the sum of minima.
    V_gal = V[nq:]
    jaccard = np.empty((nq, n - nq))
    for i in range(nq):
        nz = np.flatnonzero(V[i])  # min() is zero wherever V_i is, so only its support counts
        mins = np.minimum(V_gal[:, nz], V[i, nz]).sum(axis=1)
        jaccard[i] = 1.0 - mins / (2.0 - mins)
    return (1.0 - lambda_value) * jaccard + lambda_value * dist[:nq, nq:]

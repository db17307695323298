"""Distance matrices between two sets of feature vectors (rows)."""
import numpy as np

from edgereid.errors import EdgereidError

METRICS = ("cosine", "euclidean")


def _as_matrix(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise EdgereidError(f"{what}: expected a 2-D feature matrix [N, D], got shape {x.shape}")
    return x


def cosine_distance(a, b) -> np.ndarray:
    """1 - cos(a_i, b_j); zero vectors are treated as orthogonal to everything."""
    a, b = _as_matrix(a, "features a"), _as_matrix(b, "features b")
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - an @ bn.T


def euclidean_distance(a, b) -> np.ndarray:
    """||a_i - b_j||_2, via the expanded square (clipped at 0 against rounding)."""
    a, b = _as_matrix(a, "features a"), _as_matrix(b, "features b")
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def compute_distance_matrix(a, b, metric: str = "cosine") -> np.ndarray:
    a, b = _as_matrix(a, "features a"), _as_matrix(b, "features b")
    if a.shape[1] != b.shape[1]:
        raise EdgereidError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if metric == "cosine":
        return cosine_distance(a, b)
    if metric == "euclidean":
        return euclidean_distance(a, b)
    raise EdgereidError(f"unknown distance metric {metric!r}: expected one of {', '.join(METRICS)}")

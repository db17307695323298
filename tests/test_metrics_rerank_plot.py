"""k-reciprocal re-ranking and the CMC plot."""
import numpy as np
import pytest

from edgereid.errors import EdgereidError
from edgereid.metrics import evaluate_rank, plot_cmc, re_ranking


def _abs_dist(a, b):
    return np.abs(np.asarray(a, float)[:, None] - np.asarray(b, float)[None, :])


# 1-D toy: probe (pid 1) at 0. A distractor x (pid 2) at -0.9 is nearer than any true
# match, but x sits in a tight cluster of its own identity whose 3 nearest neighbours do
# not include the probe; the true matches at 0.97..1.12 do have the probe among theirs.
Q = [0.0]
G = [-0.9, -0.95, -1.0, -1.05, 0.97, 1.05, 1.12]
G_PIDS = [2, 2, 2, 2, 1, 1, 1]


def test_rerank_fixes_a_hub_distractor():
    q_g, q_q, g_g = _abs_dist(Q, G), _abs_dist(Q, Q), _abs_dist(G, G)
    before = evaluate_rank(q_g, [1], G_PIDS, [0], [1] * 7)
    # Before: order x .9, b .95, a1 .97, b 1.0, b 1.05 (tie with a2, lower index first), a2, a3:
    # hits at ranks 3, 6, 7 -> AP = (1/3 + 2/6 + 3/7) / 3 = 23/63; rank-1 wrong.
    assert before.mAP == pytest.approx(23 / 63)
    assert before.rank(1) == 0.0
    new = re_ranking(q_g, q_q, g_g, k1=3, k2=1, lambda_value=0.3)
    assert new.shape == q_g.shape
    after = evaluate_rank(new, [1], G_PIDS, [0], [1] * 7)
    assert after.rank(1) == 1.0
    assert after.mAP == pytest.approx(1.0)


def test_rerank_lambda_one_is_the_scaled_original():
    q_g, q_q, g_g = _abs_dist(Q, G), _abs_dist(Q, Q), _abs_dist(G, G)
    scale = max(q_g.max(), g_g.max())
    np.testing.assert_allclose(re_ranking(q_g, q_q, g_g, lambda_value=1.0), q_g / scale)


def test_rerank_shapes_and_range():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(3, 4)), rng.normal(size=(9, 4))
    d = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=2)
    out = re_ranking(d(q, g), d(q, q), d(g, g), k1=4, k2=2)
    assert out.shape == (3, 9)
    assert np.all(out >= 0) and np.all(out <= 1 + 1e-12)
    np.testing.assert_array_equal(out, re_ranking(d(q, g), d(q, q), d(g, g), k1=4, k2=2))
    with pytest.raises(EdgereidError, match="q_q"):
        re_ranking(d(q, g), d(g, g), d(g, g))


def test_plot_cmc_writes_png(tmp_path):
    path = plot_cmc({"a": np.array([0.5, 0.8, 1.0]), "b": np.array([0.2, 0.4, 0.9])}, tmp_path / "cmc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cmc.png"]  # no temp file left
    with pytest.raises(EdgereidError):
        plot_cmc({}, tmp_path / "none.png")

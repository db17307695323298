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


def test_rerank_squares_and_scales_each_row_by_its_own_maximum():
    # lambda = 1 leaves only the scaled original distance. 1-D points: probes 0 and 2,
    # gallery 1 and 4. Probe 0's row over [0, 2 | 1, 4] is [0, 2, 1, 4]: squared [0, 4, 1, 16],
    # over its maximum 16 -> gallery [1/16, 1]. Probe 2's row is [2, 0, 1, 2]: squared
    # [4, 0, 1, 4] over 4 -> [1/4, 1]. (Unsquared: [1/4, 1], [1/2, 1]; one maximum for the
    # whole matrix: probe 2 would get [1/16, 4/16].)
    q, g = [0.0, 2.0], [1.0, 4.0]
    out = re_ranking(_abs_dist(q, g), _abs_dist(q, q), _abs_dist(g, g), k1=2, k2=1, lambda_value=1.0)
    np.testing.assert_allclose(out, [[1 / 16, 1.0], [1 / 4, 1.0]], rtol=0, atol=1e-15)
    # As in the reference code, row i is column i of the squared matrix over that column's
    # maximum (transposed): with a non-symmetric q_q, probe 0's scale comes from q_q[:, 0].
    # Column 0 of [[0, 5 | 2], [1, 0 | 2]] stacked with q_g^T: [0, 1, 2] -> max 4 -> 2^2/4 = 1.
    out = re_ranking(np.array([[2.0], [2.0]]), np.array([[0.0, 5.0], [1.0, 0.0]]), np.array([[0.0]]),
                     k1=1, k2=1, lambda_value=1.0)
    assert out[0, 0] == pytest.approx(1.0)  # scaling by row 0 instead ([0, 5, 2]) would give 4/25


# 1-D points for the expansion and Jaccard cases: probe q at 0; gallery a 4, b 5, c 7, e 11.
# Neighbour order (squaring and scaling do not change it):
#   q: q a b c e    a: a b c q e    b: b a c q e    c: c b a e q    e: e c b a q
X = [0.0, 4.0, 5.0, 7.0, 11.0]


def _rerank_x(**kw):
    x = np.asarray(X)
    d = _abs_dist(x, x)
    return re_ranking(d[:1, 1:], d[:1, :1], d[1:, 1:], **kw)


def test_rerank_expansion_needs_strictly_more_than_two_thirds():
    # k1 = 3: N(i) = the first 4 of each order above; round(3/2) = 2: the first 3.
    #   R(q, 3) = {q, a, b}  (c is in N(q) but q is not in N(c));
    #   R(a, 2) = {a, b, c} = R(b, 2): shares {a, b} with R(q, 3), exactly 2/3 of 3 members;
    #   R(e, 3) = {e, c}, and no candidate of e passes the test (R(c, 2) = {a, b, c} shares 1).
    # With the strict `>` the probe's support stays {q, a, b}, disjoint from e's {e, c}: the
    # Jaccard distance is exactly 1. With `>=` c would join the probe's support and d_J < 1.
    out = _rerank_x(k1=3, k2=1, lambda_value=0.0)
    assert out[0, 3] == 1.0
    assert out[0, 2] < 1.0  # c shares the support of a and b, so the probe is not isolated from it


def test_rerank_jaccard_weights_use_the_scaled_squared_distances():
    # Same points, k1 = 3, k2 = 1, lambda = 0: d*(q, a) = 1 - m / (2 - m), m = sum of min(V_q, V_a).
    #   V_q on R*(q) = {q, a, b}: exp(-[0, 16, 25] / 121), normalised (row q squared: 0 16 25 49 121);
    #   V_a on R*(a) = {q, a, b, c} (every candidate of a passes): exp(-[16, 0, 1, 9] / 49),
    #   normalised (row a squared: 16 0 1 9 49).
    def jaccard(dq, da):
        vq, va = np.exp(-np.asarray(dq)), np.exp(-np.asarray(da))
        m = np.minimum(vq / vq.sum(), (va / va.sum())[:3]).sum()
        return 1 - m / (2 - m)

    expected = jaccard([0, 16 / 121, 25 / 121], [16 / 49, 0, 1 / 49, 9 / 49])
    got = _rerank_x(k1=3, k2=1, lambda_value=0.0)[0, 0]
    assert got == pytest.approx(expected, abs=1e-12)
    # The two other readings give other values, so the check above tells them apart.
    unsquared = jaccard([0, 4 / 11, 5 / 11], [4 / 7, 0, 1 / 7, 3 / 7])
    one_maximum = jaccard([0, 16 / 121, 25 / 121], [16 / 121, 0, 1 / 121, 9 / 121])
    assert abs(unsquared - expected) > 1e-2 and abs(one_maximum - expected) > 1e-2
    # lambda mixes in the scaled squared distance: 0.7 d_J + 0.3 * 16/121.
    mixed = _rerank_x(k1=3, k2=1, lambda_value=0.3)[0, 0]
    assert mixed == pytest.approx(0.7 * expected + 0.3 * 16 / 121, abs=1e-12)


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
    bad = d(q, g)
    bad[1, 2] = np.nan
    with pytest.raises(EdgereidError, match="NaN"):
        re_ranking(bad, d(q, q), d(g, g))


def test_plot_cmc_writes_png(tmp_path):
    path = plot_cmc({"a": np.array([0.5, 0.8, 1.0]), "b": np.array([0.2, 0.4, 0.9])}, tmp_path / "cmc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cmc.png"]  # no temp file left
    with pytest.raises(EdgereidError):
        plot_cmc({}, tmp_path / "none.png")

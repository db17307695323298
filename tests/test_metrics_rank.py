"""Market-1501 ranking rules on cases small enough to work out by hand."""
import numpy as np
import pytest

from edgereid.errors import EdgereidError
from edgereid.metrics import RankResult, average_results, compute_distance_matrix, evaluate_rank

# Gallery used by the first three tests (pid, camid); distances below order it per query.
G_PIDS = np.array([1, -1, 0, 1, 2, 1, 3])
G_CAMS = np.array([0, 1, 1, 1, 1, 2, 0])


def test_junk_same_view_and_distractors():
    # Query pid 1, cam 0; ranked gallery g0..g5 (g6 last):
    #   g0 pid 1 cam 0  -> same pid and camera: removed
    #   g1 pid -1       -> junk: removed
    #   g2 pid 0        -> distractor: stays, negative
    #   g3 pid 1 cam 1  -> match
    #   g4 pid 2        -> negative
    #   g5 pid 1 cam 2  -> match
    #   g6 pid 3        -> negative
    # kept list: [0, 1, 0, 1, 0]; hits at ranks 2 and 4.
    # AP = (1/2 + 2/4) / 2 = 1/2; INP = 2/4 = 1/2; CMC = 0 at rank 1, 1 from rank 2.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]])
    r = evaluate_rank(dist, [1], G_PIDS, [0], G_CAMS, max_rank=5)
    assert r.mAP == pytest.approx(1 / 2)
    assert r.mINP == pytest.approx(1 / 2)
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1, 1])
    assert r.num_valid_queries == 1


def test_query_without_valid_match_is_skipped_and_means():
    dist = np.array([
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],  # pid 1 cam 0: AP 1/2, INP 1/2, first hit rank 2 (above)
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],  # pid 3 cam 0: its only image g6 is cam 0 -> skipped
        [0.9, 0.1, 0.8, 0.7, 0.2, 0.6, 0.5],  # pid 2 cam 0: order g1(junk) g4(match) ... -> AP 1, INP 1
    ])
    r = evaluate_rank(dist, [1, 3, 2], G_PIDS, [0, 0, 0], G_CAMS, max_rank=3)
    assert r.num_valid_queries == 2
    # mAP = (1/2 + 1) / 2 = 3/4; mINP = (1/2 + 1) / 2 = 3/4; rank-1 = (0 + 1) / 2 = 1/2.
    assert r.mAP == pytest.approx(3 / 4)
    assert r.mINP == pytest.approx(3 / 4)
    np.testing.assert_allclose(r.cmc, [1 / 2, 1, 1])
    assert r.rank(1) == pytest.approx(0.5)


def test_distractor_pid0_counts_as_negative():
    # Gallery: pid 0 (cam 1) first, then the true match. If pid 0 were dropped like junk,
    # AP would be 1; as a negative the match sits at rank 2: AP = 1/2, rank-1 = 0.
    r = evaluate_rank([[0.1, 0.2]], [5], [0, 5], [0], [1, 1], max_rank=2)
    assert r.mAP == pytest.approx(1 / 2)
    np.testing.assert_allclose(r.cmc, [0, 1])


def test_minp_differs_from_ap():
    # Filtered ranking [1, 0, 0, 0, 1]: AP = (1/1 + 2/5) / 2 = 7/10; INP = 2/5; rank-1 = 1.
    g_pids = [7, 1, 2, 3, 7]
    r = evaluate_rank([[1, 2, 3, 4, 5]], [7], g_pids, [0], [1, 1, 1, 1, 1])
    assert r.mAP == pytest.approx(7 / 10)
    assert r.mINP == pytest.approx(2 / 5)
    assert len(r.cmc) == 5  # max_rank cut to the gallery size
    np.testing.assert_allclose(r.cmc, [1, 1, 1, 1, 1])


def test_ties_keep_gallery_order():
    # Equal distances: the stable sort keeps gallery order, so the negative (index 0) comes
    # first; AP = 1/2 every time.
    r = evaluate_rank([[0.5, 0.5]], [1], [2, 1], [0], [1, 1])
    assert r.mAP == pytest.approx(1 / 2)
    assert r.rank(1) == 0.0


def test_ties_many_items_follow_gallery_index():
    # 200 distances in {0, 1, 2}: large enough that numpy's default (unstable) quicksort
    # reorders ties. Expected: ties ranked by gallery index, matches = odd indices in the
    # distance-0 group; AP from its definition (precision at each hit, averaged).
    dist = np.random.default_rng(0).integers(0, 3, size=200).astype(float)
    idx = np.arange(200)
    g_pids = np.where((dist == 0) & (idx % 2 == 1), 1, 2)
    ranking = np.concatenate([idx[dist == v] for v in (0, 1, 2)])
    hits = np.flatnonzero(g_pids[ranking] == 1)
    expected_ap = np.mean([(k + 1) / (h + 1) for k, h in enumerate(hits)])
    r = evaluate_rank(dist[None], [1], g_pids, [0], np.ones(200, int))
    assert r.mAP == pytest.approx(expected_ap)
    assert r.mINP == pytest.approx(len(hits) / (hits[-1] + 1))


def test_no_valid_query_raises():
    with pytest.raises(EdgereidError, match="no valid query"):
        evaluate_rank([[0.1, 0.2]], [1], [1, -1], [0], [0, 1])


def test_shape_mismatch_raises():
    with pytest.raises(EdgereidError, match="g_pids"):
        evaluate_rank([[0.1, 0.2]], [1], [1, 2, 3], [0], [0, 1])


def test_average_results_means_and_counts():
    a = RankResult(np.array([0.0, 1.0, 1.0]), 0.5, 0.25, 3)
    b = RankResult(np.array([1.0, 1.0]), 1.0, 0.75, 4)
    m = average_results([a, b])
    np.testing.assert_allclose(m.cmc, [0.5, 1.0])
    assert (m.mAP, m.mINP, m.num_valid_queries, m.num_runs) == (0.75, 0.5, 7, 2)


def test_distances():
    a = np.array([[3.0, 0.0], [0.0, 2.0]])
    b = np.array([[0.0, 4.0]])
    np.testing.assert_allclose(compute_distance_matrix(a, b, "euclidean"), [[5.0], [2.0]])
    np.testing.assert_allclose(compute_distance_matrix(a, b, "cosine"), [[1.0], [0.0]], atol=1e-12)
    with pytest.raises(EdgereidError, match="metric"):
        compute_distance_matrix(a, b, "manhattan")

"""SYSU-MM01 and RegDB protocols on hand-built galleries."""
import numpy as np
import pytest

from edgereid.errors import EdgereidError
from edgereid.metrics import average_results, eval_regdb, eval_sysu, evaluate_sysu_trial, sample_gallery


def _full_gallery(n_per_pair=12, pids=(1, 2), cams=(1, 2, 4, 5)):
    pids_, cams_ = [], []
    for p in pids:
        for c in cams:
            pids_ += [p] * n_per_pair
            cams_ += [c] * n_per_pair
    return np.array(pids_), np.array(cams_)


def _pair_counts(pids, cams, idx):
    out = {}
    for i in idx:
        out[(pids[i], cams[i])] = out.get((pids[i], cams[i]), 0) + 1
    return out


def test_single_and_multi_shot_counts_per_id_per_camera():
    pids, cams = _full_gallery()
    single = _pair_counts(pids, cams, sample_gallery(pids, cams, "all", shot=1, trial=0))
    multi = _pair_counts(pids, cams, sample_gallery(pids, cams, "all", shot=10, trial=0))
    pairs = {(p, c) for p in (1, 2) for c in (1, 2, 4, 5)}
    assert single == {k: 1 for k in pairs}
    assert multi == {k: 10 for k in pairs}


def test_multi_shot_takes_all_when_fewer_and_indoor_uses_cams_1_2():
    pids = np.array([1, 1, 1, 1, 1, 1])
    cams = np.array([1, 1, 1, 2, 4, 5])
    idx = sample_gallery(pids, cams, "indoor", shot=10)
    assert sorted(idx.tolist()) == [0, 1, 2, 3]  # all three cam-1 images, the cam-2 one; no cam 4/5


def test_sampling_is_seeded_per_trial():
    pids, cams = _full_gallery()
    a = sample_gallery(pids, cams, "all", 1, trial=3, seed=7)
    b = sample_gallery(pids, cams, "all", 1, trial=3, seed=7)
    np.testing.assert_array_equal(a, b)
    draws = {tuple(sample_gallery(pids, cams, "all", 1, trial=t, seed=7)) for t in range(10)}
    assert len(draws) > 1  # trials draw different galleries


def test_sampling_with_paths_ignores_listing_order():
    pids, cams = _full_gallery(n_per_pair=5)
    paths = np.array([f"cam{c}/{p:04d}/{i:04d}.jpg" for i, (p, c) in enumerate(zip(pids, cams))])
    perm = np.random.default_rng(0).permutation(len(pids))
    a = paths[sample_gallery(pids, cams, "all", 1, trial=2, g_paths=paths)]
    b = paths[perm][sample_gallery(pids[perm], cams[perm], "all", 1, trial=2, g_paths=paths[perm])]
    assert sorted(a) == sorted(b)


def test_cam3_probe_skips_cam2_gallery():
    # Gallery in distance order: pid 1 cam 2, pid 2 cam 1, pid 1 cam 1.
    g_pids, g_cams = np.array([1, 2, 1]), np.array([2, 1, 1])
    dist = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])
    cam3 = evaluate_sysu_trial(dist[:1], [1], [3], g_pids, g_cams, max_rank=3)
    # cam 3: cam-2 image dropped -> [pid 2, pid 1]: AP = 1/2, rank-1 = 0.
    assert cam3.mAP == pytest.approx(1 / 2)
    np.testing.assert_allclose(cam3.cmc[:2], [0, 1])
    cam6 = evaluate_sysu_trial(dist[1:], [1], [6], g_pids, g_cams, max_rank=3)
    # cam 6 keeps it -> [1, 0, 1]: AP = (1 + 2/3) / 2 = 5/6, rank-1 = 1.
    assert cam6.mAP == pytest.approx(5 / 6)
    assert cam6.rank(1) == 1.0


def test_cmc_counts_identities_not_images():
    # Ranked: pid 2 (cam 1), pid 2 (cam 4), pid 1 (cam 1). By image the match is rank 3,
    # by identity rank 2 (the authors' CMC); AP stays image-based: 1/3; INP = 1/3.
    r = evaluate_sysu_trial([[0.1, 0.2, 0.3]], [1], [6], [2, 2, 1], [1, 4, 1], max_rank=3)
    np.testing.assert_allclose(r.cmc, [0, 1, 1])
    assert r.mAP == pytest.approx(1 / 3)
    assert r.mINP == pytest.approx(1 / 3)


def test_indoor_search_ignores_outdoor_cameras():
    # 1-D features, euclidean: probe at 0 (pid 1, cam 3); gallery pid 2 cam 4 at 0.1,
    # pid 1 cam 1 at 0.5, pid 2 cam 1 at 0.9.
    g = np.array([[0.1], [0.5], [0.9]])
    args = ([[0.0]], [1], [3], g, [2, 1, 2], [4, 1, 1])
    all_ = eval_sysu(*args, mode="all", trials=2, metric="euclidean")
    indoor = eval_sysu(*args, mode="indoor", trials=2, metric="euclidean")
    assert all_.mAP == pytest.approx(1 / 2)  # [pid 2, pid 1, pid 2]
    assert indoor.mAP == pytest.approx(1.0)  # [pid 1, pid 2]
    assert indoor.num_runs == 2


def test_trials_are_averaged():
    # pid 1 has two cam-1 images: near (0.1, AP 1) and far (0.5, behind pid 2 at 0.3: AP 1/2).
    # Single-shot draws one of them per trial, so mAP = mean over trials of 1 or 1/2.
    g_feats = np.array([[0.1], [0.5], [0.3]])
    g_pids, g_cams = np.array([1, 1, 2]), np.array([1, 1, 1])
    r = eval_sysu([[0.0]], [1], [6], g_feats, g_pids, g_cams, trials=10, seed=3, metric="euclidean")
    picks = [0 in sample_gallery(g_pids, g_cams, "all", 1, trial=t, seed=3) for t in range(10)]
    expected = np.mean([1.0 if near else 0.5 for near in picks])
    assert 0 < sum(picks) < 10  # both outcomes occur, so the mean is a real average
    assert r.mAP == pytest.approx(expected)
    assert r.rank(1) == pytest.approx(np.mean(picks))
    assert r.num_runs == 10


def test_sysu_rejects_bad_arguments():
    with pytest.raises(EdgereidError, match="mode"):
        sample_gallery([1], [1], mode="outdoor")
    with pytest.raises(EdgereidError, match="shot"):
        sample_gallery([1], [1], shot=5)
    with pytest.raises(EdgereidError, match="infrared"):
        eval_sysu([[0.0]], [1], [1], [[0.0]], [1], [1])


# RegDB, 1-D features, euclidean distances:
#   visible: v1 pid 1 at 0.0, v2 pid 2 at 3.0
#   thermal: t1 pid 1 at 2.0, t2 pid 2 at 1.2, t3 pid 1 at 0.1
VIS, VIS_PIDS = np.array([[0.0], [3.0]]), np.array([1, 2])
THR, THR_PIDS = np.array([[2.0], [1.2], [0.1]]), np.array([1, 2, 1])


def test_regdb_visible_to_thermal():
    # v1: t3 0.1 (hit), t2 1.2, t1 2.0 (hit) -> AP = (1 + 2/3) / 2 = 5/6, rank-1 hit.
    # v2: t1 1.0, t2 1.8 (hit), t3 2.9 -> AP = 1/2. mAP = (5/6 + 1/2) / 2 = 2/3; rank-1 = 1/2.
    # mINP: v1 2/3, v2 1/2 -> 7/12.
    r = eval_regdb(VIS, VIS_PIDS, THR, THR_PIDS, "visible->thermal", metric="euclidean")
    assert r.mAP == pytest.approx(2 / 3)
    assert r.mINP == pytest.approx(7 / 12)
    assert r.rank(1) == pytest.approx(1 / 2)
    assert r.num_valid_queries == 2


def test_regdb_thermal_to_visible():
    # t1 (2.0): v2 1.0, v1 2.0 (hit) -> 1/2; t2 (1.2): v1 1.2, v2 1.8 (hit) -> 1/2;
    # t3 (0.1): v1 0.1 (hit) -> 1. mAP = 2/3, rank-1 = 1/3.
    r = eval_regdb(VIS, VIS_PIDS, THR, THR_PIDS, "t2v", metric="euclidean")
    assert r.mAP == pytest.approx(2 / 3)
    assert r.rank(1) == pytest.approx(1 / 3)
    assert r.num_valid_queries == 3
    both = average_results([r, eval_regdb(VIS, VIS_PIDS, THR, THR_PIDS, "v2t", metric="euclidean")])
    assert both.rank(1) == pytest.approx((1 / 3 + 1 / 2) / 2)
    with pytest.raises(EdgereidError, match="direction"):
        eval_regdb(VIS, VIS_PIDS, THR, THR_PIDS, "sideways")

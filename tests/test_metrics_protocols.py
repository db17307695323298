"""SYSU-MM01 and RegDB protocols on hand-built galleries."""
import random
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from edgereid.data.sysu import load_sysu
from edgereid.errors import EdgereidError
from edgereid.metrics import (average_results, eval_regdb, eval_sysu, evaluate_sysu_trial, load_sysu_permutations,
                              sample_gallery)


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


# A tiny SYSU gallery, listed in a scrambled order (the draw must not depend on it):
#   identity 1: cam 1 files 0001 0002 0004, cam 2 files 0001 0002
#   identity 2: cam 1 files 0001 0002 0003 0005 0006, cam 4 files 0001 0002 0003 0004
DRAW_FILES = {(1, 1): ["0001", "0002", "0004"], (1, 2): ["0001", "0002"],
              (2, 1): ["0001", "0002", "0003", "0005", "0006"], (2, 4): ["0001", "0002", "0003", "0004"]}


def _gallery(files, order_seed=None):
    paths = [f"sysu/cam{c}/{p:04d}/{f}.jpg" for (p, c), names in files.items() for f in names]
    if order_seed is not None:
        paths = [paths[i] for i in np.random.default_rng(order_seed).permutation(len(paths))]
    pids = np.array([int(Path(x).parent.name) for x in paths])
    cams = np.array([int(Path(x).parent.parent.name[3:]) for x in paths])
    return paths, pids, cams


def _short(paths, idx):
    return [str(Path(paths[i]).relative_to("sysu").with_suffix("")) for i in idx]


def test_sysu_draw_equals_the_reference_python_code():
    # The AGW / CM-NAS gallery of trial t: random.seed(t), then for each identity in
    # ascending order and each camera in (1, 2, 4, 5) order, random.choice over that
    # identity's files of that camera sorted by name. Computed with Python's random module:
    #   random.seed(0): choice over 3, 2, 5, 4 files -> indices 1, 1, 0, 2
    #                   -> 0002 (id 1 cam 1), 0002 (id 1 cam 2), 0001 (id 2 cam 1), 0003 (id 2 cam 4)
    #   random.seed(1): -> indices 0, 0, 2, 0 -> 0001, 0001, 0003, 0001
    # (camera-major order would draw 0005 for id 2 cam 1 at seed 0, and so would the
    # unsorted listing below: both are pinned out.)
    paths, pids, cams = _gallery(DRAW_FILES, order_seed=5)
    assert sorted(paths) != paths  # the listing really is scrambled
    t0 = sample_gallery(pids, cams, "all", 1, trial=0, g_paths=paths)
    assert _short(paths, t0) == ["cam1/0001/0002", "cam2/0001/0002", "cam1/0002/0001", "cam4/0002/0003"]
    t1 = sample_gallery(pids, cams, "all", 1, trial=1, g_paths=paths)
    assert _short(paths, t1) == ["cam1/0001/0001", "cam2/0001/0001", "cam1/0002/0003", "cam4/0002/0001"]
    # indoor: cameras 1, 2 only; random.seed(0) over 3, 2, 5 files -> 0002, 0002, 0001
    indoor = sample_gallery(pids, cams, "indoor", 1, trial=0, g_paths=paths)
    assert _short(paths, indoor) == ["cam1/0001/0002", "cam2/0001/0002", "cam1/0002/0001"]
    # `seed` shifts the trial seeds: trial t with seed s draws as random.seed(s + t).
    np.testing.assert_array_equal(sample_gallery(pids, cams, "all", 1, trial=0, seed=1, g_paths=paths), t1)


def test_sysu_draw_follows_the_python_random_stream():
    # The same draw written out with the random module itself, for a second gallery shape.
    files = {(p, c): [f"{k:04d}" for k in range(1, n + 1)]
             for (p, c), n in {(3, 5): 7, (3, 1): 2, (8, 2): 9, (8, 4): 1, (11, 1): 6, (11, 5): 3}.items()}
    paths, pids, cams = _gallery(files, order_seed=1)
    for trial in range(4):
        rng = random.Random(trial)
        expected = [f"cam{c}/{p:04d}/" + rng.choice(files[(p, c)])
                    for p in (3, 8, 11) for c in (1, 2, 4, 5) if (p, c) in files]
        assert _short(paths, sample_gallery(pids, cams, "all", 1, trial=trial, g_paths=paths)) == expected


def test_sysu_multi_shot_draws_random_sample_from_the_same_stream():
    # Multi-shot (not in the AGW code) uses random.sample(files, min(10, len(files))):
    # random.seed(0); sample of 3, 2, 5 (all of each), then 10 of 12 files of id 2 cam 4:
    #   0009 0003 0005 0011 0002 0010 0012 0007 0008 0004   (0001 and 0006 left out)
    files = dict(DRAW_FILES)
    files[(2, 4)] = [f"{k:04d}" for k in range(1, 13)]
    paths, pids, cams = _gallery(files, order_seed=2)
    picked = _short(paths, sample_gallery(pids, cams, "all", 10, trial=0, g_paths=paths))
    assert picked[:3] == ["cam1/0001/0002", "cam1/0001/0004", "cam1/0001/0001"]
    assert picked[3:5] == ["cam2/0001/0002", "cam2/0001/0001"]
    assert sorted(picked[5:10]) == [f"cam1/0002/{f}" for f in files[(2, 1)]]
    assert picked[10:] == [f"cam4/0002/{k}" for k in
                           ("0009", "0003", "0005", "0011", "0002", "0010", "0012", "0007", "0008", "0004")]


def _write_permutations(path, entries, num_ids):
    """rand_perm_cam.mat as the dataset ships it: a 6x1 cell of Nx1 cells of [trials, images] doubles."""
    outer = np.empty((6, 1), dtype=object)
    for c in range(6):
        inner = np.empty((num_ids, 1), dtype=object)
        for p in range(num_ids):
            inner[p, 0] = np.asarray(entries.get((c + 1, p + 1), np.zeros((0, 0))), dtype=np.float64)
        outer[c, 0] = inner
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"rand_perm_cam": outer})
    return path


# Identity 1 is a training id: in the file, never in the gallery. Rows are trials.
PERMS = {(1, 1): [[2, 1], [1, 2]],
         (1, 2): [[2, 3, 1], [1, 2, 3], [3, 1, 2]], (2, 2): [[2, 1], [1, 2], [2, 1]],
         (4, 2): [[1], [1], [1]],
         (1, 3): [[2, 1], [1, 2], [1, 2]], (5, 3): [list(range(12, 0, -1)), list(range(1, 13)),
                                                    list(range(1, 13))]}
PERM_FILES = {(2, 1): ["0001", "0002", "0003"], (2, 2): ["0001", "0002"], (2, 4): ["0001"],
              (3, 1): ["0001", "0002"], (3, 5): [f"{k:04d}" for k in range(1, 13)]}


def test_permutation_file_is_read_as_the_official_kit_indexes_it(tmp_path):
    perm = load_sysu_permutations(_write_permutations(tmp_path / "rand_perm_cam.mat", PERMS, num_ids=3))
    np.testing.assert_array_equal(perm.entries[(1, 2)], [[2, 3, 1], [1, 2, 3], [3, 1, 2]])
    np.testing.assert_array_equal(perm.entries[(5, 3)][0], np.arange(12, 0, -1))
    assert (2, 1) not in perm.entries  # an empty cell: camera 2 never saw identity 1
    paths, pids, cams = _gallery(PERM_FILES, order_seed=3)
    # Official order: camera by camera, identities ascending, the first `shot` numbers of row `trial`.
    t0 = sample_gallery(pids, cams, "all", 1, trial=0, g_paths=paths, permutations=perm)
    assert _short(paths, t0) == ["cam1/0002/0002", "cam1/0003/0002", "cam2/0002/0002", "cam4/0002/0001",
                                 "cam5/0003/0012"]
    t2 = sample_gallery(pids, cams, "indoor", 1, trial=2, g_paths=paths, permutations=perm)
    assert _short(paths, t2) == ["cam1/0002/0003", "cam1/0003/0001", "cam2/0002/0002"]
    # Multi-shot: the first 10 of the row (all of them when fewer).
    multi = _short(paths, sample_gallery(pids, cams, "all", 10, trial=0, g_paths=paths, permutations=str(
        tmp_path / "rand_perm_cam.mat")))
    assert multi[:3] == ["cam1/0002/0002", "cam1/0002/0003", "cam1/0002/0001"]
    assert multi[-10:] == [f"cam5/0003/{k:04d}" for k in range(12, 2, -1)]
    assert len(multi) == 3 + 2 + 2 + 1 + 10


def test_permutation_file_errors(tmp_path):
    paths, pids, cams = _gallery(PERM_FILES)
    perm = load_sysu_permutations(_write_permutations(tmp_path / "ok.mat", PERMS, num_ids=3))
    with pytest.raises(EdgereidError, match="trial 3 asked"):
        sample_gallery(pids, cams, "all", 1, trial=3, g_paths=paths, permutations=perm)
    with pytest.raises(EdgereidError, match="holds permutations for 2 trials, 3 asked"):  # (1, 1) has 2 rows
        eval_sysu([[0.0]], [2], [3], np.zeros((pids.size, 1)), pids, cams, paths, trials=3, permutations=perm)
    with pytest.raises(EdgereidError, match="g_paths"):
        sample_gallery(pids, cams, "all", 1, trial=0, permutations=perm)
    missing = [p for p in paths if not p.endswith("cam5/0003/0012.jpg")]
    keep = [p in missing for p in paths]
    with pytest.raises(EdgereidError, match="names image 0012 of identity 3 in camera 5"):
        sample_gallery(pids[keep], cams[keep], "all", 1, trial=0, g_paths=missing, permutations=perm)
    no_cam4 = {k: v for k, v in PERMS.items() if k != (4, 2)}
    other = load_sysu_permutations(_write_permutations(tmp_path / "other.mat", no_cam4, num_ids=3))
    with pytest.raises(EdgereidError, match="no permutation for identity 2 in camera 4"):
        sample_gallery(pids, cams, "all", 1, trial=0, g_paths=paths, permutations=other)
    bad = dict(PERMS)
    bad[(1, 2)] = [[1, 1, 2], [1, 2, 3], [3, 1, 2]]
    with pytest.raises(EdgereidError, match="camera 1 identity 2: each row must be a permutation of 1..3"):
        load_sysu_permutations(_write_permutations(tmp_path / "bad.mat", bad, num_ids=3))
    savemat(str(tmp_path / "wrong.mat"), {"perm": np.ones((2, 2))})
    with pytest.raises(EdgereidError, match="no variable 'rand_perm_cam'.*perm"):
        load_sysu_permutations(tmp_path / "wrong.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(EdgereidError, match="not a readable MATLAB"):
        load_sysu_permutations(tmp_path / "junk.mat")
    with pytest.raises(EdgereidError, match="not found"):
        load_sysu_permutations(tmp_path / "absent.mat")


def _touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded")


def test_sysu_dataset_with_permutation_file_is_evaluated_with_it(tmp_path):
    root = tmp_path / "SYSU-MM01"
    for c in range(1, 7):
        (root / f"cam{c}").mkdir(parents=True)
    for (p, c), names in {(1, 1): ["0001"], (1, 3): ["0001"], (2, 3): ["0001"], **PERM_FILES}.items():
        for f in names:
            _touch(root / f"cam{c}" / f"{p:04d}" / f"{f}.jpg")
    for name, ids in (("train_id.txt", "1"), ("val_id.txt", "1"), ("test_id.txt", "2,3")):
        (root / "exp").mkdir(exist_ok=True)
        (root / "exp" / name).write_text(ids)
    assert "rand_perm_cam" not in load_sysu(root).info  # no file: the Python random draw
    _write_permutations(root / "exp" / "rand_perm_cam.mat", PERMS, num_ids=3)
    ds = load_sysu(root)
    assert ds.info["rand_perm_cam"] == str(root / "exp" / "rand_perm_cam.mat")
    # One probe (id 2, cam 3: camera-2 images do not count) at 0; 1-D gallery features: id 2
    # cam 1 images 0001 0.1, 0002 0.9, 0003 0.95; id 3 cam 1 at 0.5 / 0.6; the rest 5.0 and up.
    near = {"cam1/0002/0001": 0.1, "cam1/0002/0002": 0.9, "cam1/0002/0003": 0.95,
            "cam1/0003/0001": 0.5, "cam1/0003/0002": 0.6}
    g_paths = [r.path for r in ds.gallery]
    g_feats = np.array([[near.get(k, 5.0 + i)] for i, k in enumerate(_short_abs(root, g_paths))])
    g_pids, g_cams = np.array([r.pid for r in ds.gallery]), np.array([r.camid for r in ds.gallery])
    # Indoor search, two trials. Trial 0 takes id 2 cam 1 image 0002 (0.9) and id 3 image 0002
    # (0.6): AP 1/2, rank-1 miss; trial 1 takes 0001 (0.1): AP 1, rank-1 hit. mAP 3/4, rank-1 1/2.
    r = eval_sysu([[0.0]], [2], [3], g_feats, g_pids, g_cams, g_paths, mode="indoor", trials=2,
                  metric="euclidean", permutations=ds.info["rand_perm_cam"])
    assert r.mAP == pytest.approx(3 / 4)
    assert r.rank(1) == pytest.approx(1 / 2)


def _short_abs(root, paths):
    return [str(Path(p).relative_to(root).with_suffix("")) for p in paths]


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

"""SYSU-MM01 evaluation: infrared probes against a sampled visible gallery.

Protocol (Wu et al. 2017, official code): probes are the infrared cameras 3 and 6; the
gallery is the visible cameras 1, 2, 4, 5 ("all" search) or 1, 2 ("indoor" search); in
each trial `shot` random images per identity per gallery camera are drawn (1 for
single-shot, 10 for multi-shot); a probe from camera 3 ignores camera-2 gallery images
(the two cameras share a room); results are averaged over 10 trials.

CMC follows the authors' released code: the ranked gallery is reduced to the first
occurrence of each identity before the cumulative match, so several images of a wrong
identity cost one rank, not several. mAP and mINP use the full ranked list.
"""
import numpy as np

from edgereid.errors import EdgereidError
from edgereid.metrics.distance import compute_distance_matrix
from edgereid.metrics.rank import RankResult, average_results, cmc_row, query_scores

PROBE_CAMS = (3, 6)
GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SHOTS = (1, 10)


def _check_mode_shot(mode, shot):
    if mode not in GALLERY_CAMS:
        raise EdgereidError(f"SYSU-MM01 mode {mode!r}: expected one of {', '.join(GALLERY_CAMS)}")
    if shot not in SHOTS:
        raise EdgereidError(f"SYSU-MM01 shot {shot!r}: expected 1 (single-shot) or 10 (multi-shot)")


def sample_gallery(g_pids, g_camids, mode: str = "all", shot: int = 1, trial: int = 0, seed: int = 0,
                   g_paths=None) -> np.ndarray:
    """Indices into the gallery arrays chosen for one trial, in ascending order.

    For every (identity, camera of `mode`) pair, `shot` images are drawn without
    replacement (all of them when there are fewer). The generator is seeded with
    (seed, trial), so a trial is reproducible on its own. With `g_paths` the candidates
    of a pair are ordered by path before drawing, so the draw does not depend on the
    order in which the gallery was listed.
    """
    _check_mode_shot(mode, shot)
    g_pids = np.asarray(g_pids).reshape(-1)
    g_camids = np.asarray(g_camids).reshape(-1)
    if g_pids.shape != g_camids.shape:
        raise EdgereidError(f"gallery pids ({g_pids.size}) and camids ({g_camids.size}) differ in length")
    if g_paths is not None:
        g_paths = [str(p) for p in g_paths]
        if len(g_paths) != g_pids.size:
            raise EdgereidError(f"gallery paths ({len(g_paths)}) and pids ({g_pids.size}) differ in length")
    rng = np.random.default_rng([seed, trial])
    chosen = []
    for pid in np.unique(g_pids):
        for cam in GALLERY_CAMS[mode]:
            cand = np.flatnonzero((g_pids == pid) & (g_camids == cam))
            if cand.size == 0:
                continue
            if g_paths is not None:
                cand = cand[np.argsort([g_paths[i] for i in cand], kind="stable")]
            k = min(shot, cand.size)
            chosen.append(rng.choice(cand, size=k, replace=False))
    if not chosen:
        raise EdgereidError(f"SYSU-MM01 {mode}-search: no gallery image from cameras {GALLERY_CAMS[mode]}")
    return np.sort(np.concatenate(chosen))


def _first_occurrence(ranked_pids: np.ndarray) -> np.ndarray:
    _, first = np.unique(ranked_pids, return_index=True)
    return ranked_pids[np.sort(first)]


def evaluate_sysu_trial(distmat, q_pids, q_camids, g_pids, g_camids, max_rank: int = 20) -> RankResult:
    """One trial on an already sampled gallery (distmat: probes x sampled gallery)."""
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, q_camids = np.asarray(q_pids).reshape(-1), np.asarray(q_camids).reshape(-1)
    g_pids, g_camids = np.asarray(g_pids).reshape(-1), np.asarray(g_camids).reshape(-1)
    if distmat.shape != (q_pids.size, g_pids.size):
        raise EdgereidError(f"distance matrix {distmat.shape}: expected ({q_pids.size}, {g_pids.size})")
    order = np.argsort(distmat, axis=1, kind="stable")
    cmcs, aps, inps = [], [], []
    for i in range(q_pids.size):
        ranked = order[i]
        if q_camids[i] == 3:
            ranked = ranked[g_camids[ranked] != 2]
        ranked_pids = g_pids[ranked]
        matches = ranked_pids == q_pids[i]
        if not matches.any():
            continue
        id_matches = _first_occurrence(ranked_pids) == q_pids[i]
        cmcs.append(cmc_row(id_matches, max_rank))
        ap, inp = query_scores(matches)
        aps.append(ap)
        inps.append(inp)
    if not cmcs:
        raise EdgereidError(f"SYSU-MM01: none of the {q_pids.size} probes has a match in the sampled gallery")
    return RankResult(cmc=np.mean(cmcs, axis=0), mAP=float(np.mean(aps)), mINP=float(np.mean(inps)),
                      num_valid_queries=len(cmcs))


def eval_sysu(q_feats, q_pids, q_camids, g_feats, g_pids, g_camids, g_paths=None, mode: str = "all",
              shot: int = 1, trials: int = 10, seed: int = 0, metric: str = "cosine",
              max_rank: int = 20) -> RankResult:
    """SYSU-MM01 CMC/mAP/mINP averaged over `trials` gallery draws (see module docstring).

    Probes from cameras other than 3 and 6 and gallery images outside the mode's
    cameras are ignored, so the whole test split can be passed as is.
    """
    _check_mode_shot(mode, shot)
    if trials < 1:
        raise EdgereidError(f"SYSU-MM01 trials={trials}: expected at least 1")
    q_pids, q_camids = np.asarray(q_pids).reshape(-1), np.asarray(q_camids).reshape(-1)
    g_pids, g_camids = np.asarray(g_pids).reshape(-1), np.asarray(g_camids).reshape(-1)
    probes = np.flatnonzero(np.isin(q_camids, PROBE_CAMS))
    if probes.size == 0:
        raise EdgereidError(f"SYSU-MM01: no probe from the infrared cameras {PROBE_CAMS} "
                            f"(query cameras present: {sorted(set(q_camids.tolist()))})")
    q_feats = np.asarray(q_feats)[probes]
    q_pids, q_camids = q_pids[probes], q_camids[probes]
    distmat = compute_distance_matrix(q_feats, g_feats, metric)
    if distmat.shape[1] != g_pids.size:
        raise EdgereidError(f"gallery features ({distmat.shape[1]}) and pids ({g_pids.size}) differ in length")
    results = []
    for trial in range(trials):
        idx = sample_gallery(g_pids, g_camids, mode, shot, trial, seed, g_paths)
        results.append(evaluate_sysu_trial(distmat[:, idx], q_pids, q_camids, g_pids[idx], g_camids[idx],
                                           max_rank))
    return average_results(results)

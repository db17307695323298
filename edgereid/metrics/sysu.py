"""SYSU-MM01 evaluation: infrared probes against a sampled visible gallery.

Protocol (Wu et al. 2017, official code): probes are the infrared cameras 3 and 6; the
gallery is the visible cameras 1, 2, 4, 5 ("all" search) or 1, 2 ("indoor" search); in
each trial `shot` images per identity per gallery camera are drawn (1 for single-shot,
10 for multi-shot); a probe from camera 3 ignores camera-2 gallery images (the two
cameras share a room); results are averaged over 10 trials.

Which images a trial draws follows one of the two reference codes exactly:

- the official permutation file (`exp/rand_perm_cam.mat`, shipped with the dataset and
  read by the official MATLAB kit and its Python ports), when one is given: trial t of
  camera c and identity p takes the first `shot` image numbers of row t of the file's
  entry for (c, p);
- otherwise the draw of the Python code most results are reported with (AGW, Ye et al.
  2021, and the code built on it, e.g. CM-NAS): `random.seed(trial)`, then for each
  identity in ascending order and each gallery camera in the order above, one
  `random.choice` over that identity's files of that camera sorted by name. A given
  trial therefore reproduces that code's gallery. Multi-shot, which that code does not
  implement, draws `random.sample(files, min(10, len(files)))` from the same stream.

CMC follows the authors' released code: the ranked gallery is reduced to the first
occurrence of each identity before the cumulative match, so several images of a wrong
identity cost one rank, not several. mAP and mINP use the full ranked list.
"""
import random
from pathlib import Path

import numpy as np

from edgereid.errors import EdgereidError
from edgereid.metrics.distance import compute_distance_matrix
from edgereid.metrics.rank import RankResult, average_results, cmc_row, query_scores

PROBE_CAMS = (3, 6)
GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SHOTS = (1, 10)
PERMUTATION_VARIABLE = "rand_perm_cam"  # the variable of exp/rand_perm_cam.mat


class SysuPermutations:
    """The official gallery permutations: image numbers per (camera, identity) and trial.

    `entries[(cam, pid)]` is an int array [trials, images] of 1-based image numbers
    (image k of an identity and camera is the file `cam<c>/<pid 4 digits>/<k 4 digits>.jpg`);
    pairs the file leaves empty are absent.
    """

    def __init__(self, entries: dict, source: str = "<memory>"):
        self.entries = {key: np.asarray(val, dtype=np.int64) for key, val in entries.items()}
        self.source = source
        rows = {val.shape[0] for val in self.entries.values()}
        self.num_trials = min(rows) if rows else 0

    def picks(self, cam: int, pid: int, trial: int, shot: int) -> np.ndarray:
        """Image numbers of (cam, pid) in `trial`: the first `shot` of that trial's row."""
        entry = self.entries.get((int(cam), int(pid)))
        if entry is None:
            return np.zeros(0, dtype=np.int64)
        if trial >= entry.shape[0]:
            raise EdgereidError(f"{self.source}: trial {trial} asked, but camera {cam} identity {pid} "
                                f"has permutations for {entry.shape[0]} trials only")
        return entry[trial, :shot]


def load_sysu_permutations(path) -> SysuPermutations:
    """Read the official `rand_perm_cam.mat` (a MATLAB v5 file; needs scipy).

    Layout, as the MATLAB kit indexes it (`rand_perm_cam{cam}{id}(run, :)`): a cell array
    with one cell per camera 1..6, each a cell array with one entry per identity 1..N, each
    a numeric matrix [trials, images of that identity in that camera] whose rows are
    permutations of the image numbers 1..images (empty when the camera never saw the
    identity).
    """
    path = Path(path)
    if not path.is_file():
        raise EdgereidError(f"SYSU-MM01 permutation file {path} not found")
    try:
        from scipy.io import loadmat
    except ImportError:
        raise EdgereidError(f"reading {path} needs scipy (pip install scipy)") from None
    try:
        data = loadmat(str(path))
    except NotImplementedError:
        raise EdgereidError(f"{path}: a MATLAB v7.3 (HDF5) file; expected the v5 .mat the dataset ships") from None
    except Exception as exc:  # scipy raises ValueError/TypeError/MatReadError for damaged files
        raise EdgereidError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    if PERMUTATION_VARIABLE not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise EdgereidError(f"{path}: no variable {PERMUTATION_VARIABLE!r} (found: {', '.join(found) or 'none'})")
    cams = np.asarray(data[PERMUTATION_VARIABLE])
    if cams.dtype != object:
        raise EdgereidError(f"{path}: {PERMUTATION_VARIABLE} must be a cell array (one cell per camera)")
    entries = {}
    for c, per_cam in enumerate(cams.reshape(-1), start=1):
        per_cam = np.asarray(per_cam)
        if per_cam.dtype != object:
            raise EdgereidError(f"{path}: camera {c}: expected a cell array with one entry per identity")
        for pid, entry in enumerate(per_cam.reshape(-1), start=1):
            entry = np.asarray(entry)
            if entry.size == 0:
                continue
            where = f"{path}: camera {c} identity {pid}"
            if entry.dtype == object or entry.ndim != 2 or not np.issubdtype(entry.dtype, np.number):
                raise EdgereidError(f"{where}: expected a numeric matrix [trials, images], got {entry.dtype} "
                                    f"{entry.shape}")
            if not np.all(np.isfinite(entry)) or np.any(entry != np.round(entry)):
                raise EdgereidError(f"{where}: image numbers must be whole numbers")
            numbers = entry.astype(np.int64)
            expected = np.arange(1, numbers.shape[1] + 1)
            if not all(np.array_equal(np.sort(row), expected) for row in numbers):
                raise EdgereidError(f"{where}: each row must be a permutation of 1..{numbers.shape[1]}")
            entries[(c, pid)] = numbers
    if not entries:
        raise EdgereidError(f"{path}: {PERMUTATION_VARIABLE} holds no permutation")
    return SysuPermutations(entries, str(path))


def _check_mode_shot(mode, shot):
    if mode not in GALLERY_CAMS:
        raise EdgereidError(f"SYSU-MM01 mode {mode!r}: expected one of {', '.join(GALLERY_CAMS)}")
    if shot not in SHOTS:
        raise EdgereidError(f"SYSU-MM01 shot {shot!r}: expected 1 (single-shot) or 10 (multi-shot)")


def _as_permutations(permutations):
    if permutations is None or isinstance(permutations, SysuPermutations):
        return permutations
    return load_sysu_permutations(permutations)


def _image_number(path: str) -> int:
    stem = Path(path).stem
    if not stem.isdigit():
        raise EdgereidError(f"gallery image {path}: the permutation file names images by number "
                            f"(<0001.jpg>), this name is not one")
    return int(stem)


def _draw_from_permutations(perm: SysuPermutations, g_pids, g_camids, g_paths, cams, shot, trial):
    # Official order: camera by camera, identities ascending, images in permutation order.
    if g_paths is None:
        raise EdgereidError("SYSU-MM01 permutation file: the gallery paths (g_paths) are needed "
                            "to find the images it names")
    index = {}
    for i, (pid, cam, path) in enumerate(zip(g_pids.tolist(), g_camids.tolist(), g_paths)):
        key = (cam, pid, _image_number(path))
        if key in index:
            raise EdgereidError(f"gallery images {g_paths[index[key]]} and {path}: both are image "
                                f"{key[2]} of identity {pid} in camera {cam}")
        index[key] = i
    present = {(cam, pid) for pid, cam in zip(g_pids.tolist(), g_camids.tolist())}
    chosen = []
    for cam in cams:
        for pid in np.unique(g_pids[np.isin(g_camids, cams)]).tolist():
            numbers = perm.picks(cam, pid, trial, shot)
            if numbers.size == 0:
                if (cam, pid) in present:
                    raise EdgereidError(f"{perm.source}: no permutation for identity {pid} in camera {cam}, "
                                        f"but the gallery holds its images (a file of another dataset?)")
                continue
            for k in numbers.tolist():
                if (cam, pid, k) not in index:
                    raise EdgereidError(f"{perm.source}: trial {trial} names image {k:04d} of identity {pid} "
                                        f"in camera {cam}, which the gallery does not hold")
                chosen.append(index[(cam, pid, k)])
    return chosen


def _draw_python_random(g_pids, g_camids, g_paths, cams, shot, seed):
    # Reference order: identities ascending, cameras in mode order, files sorted by name.
    rng = random.Random(seed)
    chosen = []
    for pid in np.unique(g_pids):
        for cam in cams:
            cand = np.flatnonzero((g_pids == pid) & (g_camids == cam))
            if cand.size == 0:
                continue
            if g_paths is not None:
                cand = cand[np.argsort([g_paths[i] for i in cand], kind="stable")]
            cand = cand.tolist()
            if shot == 1:
                chosen.append(rng.choice(cand))
            else:
                chosen.extend(rng.sample(cand, min(shot, len(cand))))
    return chosen


def sample_gallery(g_pids, g_camids, mode: str = "all", shot: int = 1, trial: int = 0, seed: int = 0,
                   g_paths=None, permutations=None) -> np.ndarray:
    """Indices into the gallery arrays chosen for one trial, in the reference's gallery order.

    With `permutations` (a `SysuPermutations` or the path of `rand_perm_cam.mat`) the
    official draw (needs `g_paths`: images are named by number); otherwise the Python
    `random` draw of the AGW code, seeded with `seed + trial` (seed 0: exactly theirs).
    `g_paths` orders each identity's files of a camera by name before drawing, as that
    code does; without them the order of the gallery arrays stands in for it. Returned
    in the order the reference lists its gallery (identity-major for the random draw,
    camera-major for the official one), which decides how exact distance ties rank.
    """
    _check_mode_shot(mode, shot)
    if trial < 0:
        raise EdgereidError(f"SYSU-MM01 trial {trial}: expected 0 or more")
    g_pids = np.asarray(g_pids).reshape(-1)
    g_camids = np.asarray(g_camids).reshape(-1)
    if g_pids.shape != g_camids.shape:
        raise EdgereidError(f"gallery pids ({g_pids.size}) and camids ({g_camids.size}) differ in length")
    if g_paths is not None:
        g_paths = [str(p) for p in g_paths]
        if len(g_paths) != g_pids.size:
            raise EdgereidError(f"gallery paths ({len(g_paths)}) and pids ({g_pids.size}) differ in length")
    cams = GALLERY_CAMS[mode]
    perm = _as_permutations(permutations)
    if perm is not None:
        chosen = _draw_from_permutations(perm, g_pids, g_camids, g_paths, cams, shot, trial)
    else:
        chosen = _draw_python_random(g_pids, g_camids, g_paths, cams, shot, seed + trial)
    if not chosen:
        raise EdgereidError(f"SYSU-MM01 {mode}-search: no gallery image from cameras {cams}")
    return np.asarray(chosen, dtype=np.int64)


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
              max_rank: int = 20, permutations=None) -> RankResult:
    """SYSU-MM01 CMC/mAP/mINP averaged over `trials` gallery draws (see module docstring).

    Probes from cameras other than 3 and 6 and gallery images outside the mode's
    cameras are ignored, so the whole test split can be passed as is. `permutations`
    (the official `rand_perm_cam.mat` path, or its `load_sysu_permutations`) selects the
    official draws; without it trial t draws as the AGW code does with seed `seed + t`.
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
    permutations = _as_permutations(permutations)
    if permutations is not None and trials > permutations.num_trials:
        raise EdgereidError(f"{permutations.source}: holds permutations for {permutations.num_trials} trials, "
                            f"{trials} asked")
    results = []
    for trial in range(trials):
        idx = sample_gallery(g_pids, g_camids, mode, shot, trial, seed, g_paths, permutations)
        results.append(evaluate_sysu_trial(distmat[:, idx], q_pids, q_camids, g_pids[idx], g_camids[idx],
                                           max_rank))
    return average_results(results)

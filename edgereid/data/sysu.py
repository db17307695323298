"""SYSU-MM01 (Wu et al., ICCV 2017): visible-infrared Re-ID.

On disk::

    ROOT/cam1..cam6/<pid 4 digits>/0001.jpg     cams 1, 2, 4, 5 visible; 3, 6 infrared
    ROOT/exp/train_id.txt  val_id.txt  test_id.txt   one line of comma-separated ids
    ROOT/exp/rand_perm_cam.mat                        optional: the official gallery draws

Train = train + val ids (relabelled), all six cameras. Query = every infrared image
(cams 3, 6) of the test ids; gallery = every visible image (cams 1, 2, 4, 5) of the
test ids. The per-trial gallery sampling (single/multi-shot, all/indoor search) is the
metrics stage's job (`edgereid.metrics.eval_sysu`); when the folder holds the official
permutation file its path is `info["rand_perm_cam"]`, and evaluation draws from it.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.data.layout import list_images, require_dir, require_file, require_nonempty
from edgereid.data.records import ImageRecord, ReidDataset, relabel
from edgereid.errors import DatasetError

VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
PERMUTATION_FILE = "rand_perm_cam.mat"  # exp/: the official gallery permutations (read by edgereid.metrics)


def read_id_file(path: Path) -> list[int]:
    text = require_file(path, "sysu id list").read_text().strip().strip("[]")
    try:
        ids = [int(tok) for tok in text.replace("\n", ",").split(",") if tok.strip()]
    except ValueError:
        raise DatasetError(f"{path}: expected comma-separated integer ids like '1,2,4,5'") from None
    return require_nonempty(ids, path, "comma-separated integer ids like '1,2,4,5'")


def collect(root: Path, pids: list[int], cams: tuple[int, ...]) -> list[ImageRecord]:
    records = []
    for cam in cams:
        cam_dir = root / f"cam{cam}"
        modality = "infrared" if cam in INFRARED_CAMS else "visible"
        for pid in pids:
            pid_dir = cam_dir / f"{pid:04d}"
            if pid_dir.is_dir():  # not every person walked past every camera
                records.extend(ImageRecord(str(p), pid, cam, modality) for p in list_images(pid_dir))
    return records


def load_sysu(root, name: str = "sysu") -> ReidDataset:
    root = require_dir(Path(root), name)
    for cam in VISIBLE_CAMS + INFRARED_CAMS:
        require_dir(root / f"cam{cam}", f"{name} camera {cam}")
    exp = require_dir(root / "exp", f"{name} split lists")
    train_ids = read_id_file(exp / "train_id.txt") + read_id_file(exp / "val_id.txt")
    test_ids = read_id_file(exp / "test_id.txt")
    expected = "cam<c>/<pid 4 digits>/<0001.jpg> for the ids in exp/*.txt"
    train, num_pids = relabel(require_nonempty(
        collect(root, sorted(set(train_ids)), VISIBLE_CAMS + INFRARED_CAMS), root, expected + " (train)"))
    query = require_nonempty(collect(root, test_ids, INFRARED_CAMS), root, expected + " (test, cams 3/6)")
    gallery = require_nonempty(collect(root, test_ids, VISIBLE_CAMS), root, expected + " (test, cams 1/2/4/5)")
    info = {}
    if (exp / PERMUTATION_FILE).is_file():
        info["rand_perm_cam"] = str(exp / PERMUTATION_FILE)
    return ReidDataset(name, train, query, gallery, num_pids, "sysu", root, info)

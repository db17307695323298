"""MSMT17 (Wei et al., CVPR 2018), V1 and V2.

On disk (V1 folders `train/`, `test/`; V2 folders `mask_train_v2/`, `mask_test_v2/`)::

    ROOT/list_train.txt   ROOT/list_val.txt      lines "0000/0000_000_01_0303morning_0015_0.jpg 0"
    ROOT/list_query.txt   ROOT/list_gallery.txt  (path relative to the train/test folder, pid)

The camera is the third `_` field of the name (01..15). As in torchreid, train = list_train
+ list_val (val ids are a subset of train ids), relabelled.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.data.layout import require_dir, require_file, require_nonempty
from edgereid.data.records import ImageRecord, ReidDataset, relabel
from edgereid.errors import DatasetError

NUM_CAMS = 15
VERSIONS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
EXAMPLE_LINE = "0000/0000_000_01_0303morning_0015_0.jpg 0"


def detect_version(root: Path) -> str:
    for version, (train_dir, test_dir) in VERSIONS.items():
        if (root / train_dir).is_dir() and (root / test_dir).is_dir():
            return version
    raise DatasetError(
        f"msmt17: {root} has neither train/ + test/ (V1) nor mask_train_v2/ + mask_test_v2/ (V2)"
    )


def parse_list(list_file: Path, image_dir: Path) -> list[ImageRecord]:
    records = []
    for lineno, line in enumerate(require_file(list_file, "msmt17 list").read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        fields = parts[0].split("_") if parts else []
        if len(parts) != 2 or len(fields) < 4 or not parts[1].lstrip("-").isdigit() or not fields[2].isdigit():
            raise DatasetError(f"{list_file}:{lineno}: expected a line like '{EXAMPLE_LINE}', got {line!r}")
        pid, camid = int(parts[1]), int(fields[2])
        if not 1 <= camid <= NUM_CAMS:
            raise DatasetError(f"{list_file}:{lineno}: camera {camid} out of range 1..{NUM_CAMS}")
        path = image_dir / parts[0]
        if not path.is_file():
            raise DatasetError(f"{list_file}:{lineno}: image {path} not found")
        records.append(ImageRecord(str(path), pid, camid, "visible"))
    return require_nonempty(records, list_file, f"lines like '{EXAMPLE_LINE}'")


def load_msmt17(root) -> ReidDataset:
    root = require_dir(Path(root), "msmt17")
    version = detect_version(root)
    train_dir, test_dir = (root / d for d in VERSIONS[version])
    train = parse_list(root / "list_train.txt", train_dir) + parse_list(root / "list_val.txt", train_dir)
    train, num_pids = relabel(train)
    query = parse_list(root / "list_query.txt", test_dir)
    gallery = parse_list(root / "list_gallery.txt", test_dir)
    return ReidDataset("msmt17", train, query, gallery, num_pids, "market", root, {"version": version})

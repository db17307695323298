"""Market-1501 (Zheng et al., ICCV 2015) and the loader shared with DukeMTMC-reID.

On disk::

    ROOT/bounding_box_train/0002_c1s1_000451_03.jpg   pid 0002, camera 1
    ROOT/query/...                                    one image per id and camera
    ROOT/bounding_box_test/-1_c1s1_...jpg             junk (pid -1)
    ROOT/bounding_box_test/0000_c1s1_...jpg           distractor (pid 0)

Junk and distractors never enter `train` or `query`; in `gallery` they keep pid -1 / 0
so that the Market evaluation rule (drop junk, keep distractors as negatives) applies.
"""
from __future__ import annotations

import re
from pathlib import Path

from edgereid.data.layout import list_images, require_dir, require_nonempty
from edgereid.data.records import ImageRecord, ReidDataset, relabel
from edgereid.errors import DatasetError

NAME_PATTERN = re.compile(r"^([-\d]+)_c(\d)")


def parse_market_dir(folder: Path, num_cams: int, example: str, keep_junk: bool) -> list[ImageRecord]:
    """Records of one Market-style folder; every image name must match `NAME_PATTERN`."""
    records = []
    for path in list_images(folder):
        m = NAME_PATTERN.match(path.name)
        if m is None:
            raise DatasetError(
                f"{path}: name does not match '<pid>_c<cam>...' (e.g. {example})"
            )
        pid, camid = int(m.group(1)), int(m.group(2))
        if pid < -1 or not 1 <= camid <= num_cams:
            raise DatasetError(
                f"{path}: pid {pid} / camera {camid} out of range (pid >= -1, camera 1..{num_cams})"
            )
        if pid <= 0 and not keep_junk:
            continue
        records.append(ImageRecord(str(path), pid, camid, "visible"))
    return require_nonempty(records, folder, f"images named like {example}")


def load_market_style(root, name: str, num_cams: int, example: str) -> ReidDataset:
    root = require_dir(Path(root), name)
    folders = {split: require_dir(root / sub, f"{name} {split} split")
               for split, sub in (("train", "bounding_box_train"), ("query", "query"),
                                  ("gallery", "bounding_box_test"))}
    train, num_pids = relabel(parse_market_dir(folders["train"], num_cams, example, keep_junk=False))
    query = parse_market_dir(folders["query"], num_cams, example, keep_junk=False)
    gallery = parse_market_dir(folders["gallery"], num_cams, example, keep_junk=True)
    return ReidDataset(name, train, query, gallery, num_pids, "market", root)


def load_market1501(root) -> ReidDataset:
    return load_market_style(root, "market1501", num_cams=6, example="0002_c1s1_000451_03.jpg")

"""RegDB (Nguyen et al., Sensors 2017): 412 ids, 10 visible + 10 thermal images each.

On disk::

    ROOT/Visible/<...>/*.bmp   ROOT/Thermal/<...>/*.bmp
    ROOT/idx/train_visible_{1..10}.txt  train_thermal_{1..10}.txt
    ROOT/idx/test_visible_{1..10}.txt   test_thermal_{1..10}.txt
        lines "Visible/Male/1/male_back_v_06412_1.bmp 0" (path under ROOT, label)

`trial` (1..10) picks the random half split. `mode` picks the direction:
"thermal_to_visible" (query = thermal test images, gallery = visible) or
"visible_to_thermal". Camera 1 is visible, 2 thermal. Both test sets are also in
`info["test_visible"]` / `info["test_thermal"]`.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.data.layout import require_dir, require_file, require_nonempty
from edgereid.data.records import ImageRecord, ReidDataset, relabel
from edgereid.errors import DatasetError

MODES = ("thermal_to_visible", "visible_to_thermal")
EXAMPLE_LINE = "Visible/Male/1/male_back_v_06412_1.bmp 0"


def parse_index(root: Path, index_file: Path, camid: int, modality: str) -> list[ImageRecord]:
    records = []
    for lineno, line in enumerate(require_file(index_file, "regdb index").read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise DatasetError(f"{index_file}:{lineno}: expected a line like '{EXAMPLE_LINE}', got {line!r}")
        path = root / parts[0]
        if not path.is_file():
            raise DatasetError(f"{index_file}:{lineno}: image {path} not found")
        records.append(ImageRecord(str(path), int(parts[1]), camid, modality))
    return require_nonempty(records, index_file, f"lines like '{EXAMPLE_LINE}'")


def load_regdb(root, trial: int = 1, mode: str = "thermal_to_visible") -> ReidDataset:
    root = require_dir(Path(root), "regdb")
    if not 1 <= int(trial) <= 10:
        raise DatasetError(f"regdb: trial {trial} out of range 1..10")
    if mode not in MODES:
        raise DatasetError(f"regdb: mode {mode!r} not one of {', '.join(MODES)}")
    require_dir(root / "Visible", "regdb visible images")
    require_dir(root / "Thermal", "regdb thermal images")
    idx = require_dir(root / "idx", "regdb split lists")
    split = {}
    for part in ("train", "test"):
        for camid, modality, word in ((1, "visible", "visible"), (2, "infrared", "thermal")):
            split[part, word] = parse_index(root, idx / f"{part}_{word}_{trial}.txt", camid, modality)
    train, num_pids = relabel(split["train", "visible"] + split["train", "thermal"])
    if mode == "thermal_to_visible":
        query, gallery = split["test", "thermal"], split["test", "visible"]
    else:
        query, gallery = split["test", "visible"], split["test", "thermal"]
    info = {"trial": int(trial), "mode": mode,
            "test_visible": split["test", "visible"], "test_thermal": split["test", "thermal"]}
    return ReidDataset("regdb", train, query, gallery, num_pids, "regdb", root, info)

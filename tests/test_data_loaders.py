"""Each loader on a small fake tree in the dataset's exact on-disk naming."""
from pathlib import Path

import pytest

from edgereid.data import load_dataset
from edgereid.data.dukemtmc import load_dukemtmc
from edgereid.data.market1501 import load_market1501
from edgereid.data.msmt17 import load_msmt17
from edgereid.data.regdb import load_regdb
from edgereid.data.sysu import load_sysu
from edgereid.errors import DatasetError


def touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 not decoded by loaders")
    return path


def make_market(root: Path, train=None, query=None, gallery=None):
    train = train or ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s2_012345_02.jpg",
                      "0011_c6s4_002202_01.jpg", "-1_c1s1_000001_00.jpg"]
    query = query or ["0003_c1s1_001051_00.jpg", "0005_c4s2_000101_00.jpg"]
    gallery = gallery or ["0003_c2s1_001151_01.jpg", "0003_c1s1_001251_01.jpg", "0005_c5s3_000201_02.jpg",
                          "0000_c3s1_000301_00.jpg", "-1_c2s1_000401_00.jpg"]
    for folder, names in (("bounding_box_train", train), ("query", query), ("bounding_box_test", gallery)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            touch(root / folder / n)
    (root / "bounding_box_train" / "Thumbs.db").write_text("not an image")  # ignored
    return root


def test_market1501_counts_relabel_junk_and_distractors(tmp_path):
    ds = load_market1501(make_market(tmp_path / "Market-1501-v15.09.15"))
    assert ds.name == "market1501" and ds.protocol == "market"
    assert len(ds.train) == 4 and ds.num_train_pids == 3
    assert sorted({r.pid for r in ds.train}) == [0, 1, 2]
    # relabelling keeps the original order of pids: 0002 -> 0, 0007 -> 1, 0011 -> 2
    by_name = {Path(r.path).name: r for r in ds.train}
    assert by_name["0007_c3s2_012345_02.jpg"].pid == 1 and by_name["0011_c6s4_002202_01.jpg"].camid == 6
    assert [(r.pid, r.camid) for r in ds.query] == [(3, 1), (5, 4)]
    assert sorted(r.pid for r in ds.gallery) == [-1, 0, 3, 3, 5]
    assert all(r.modality == "visible" for r in ds.train + ds.query + ds.gallery)


def test_market1501_bad_name_names_the_file_and_pattern(tmp_path):
    root = make_market(tmp_path / "m")
    touch(root / "bounding_box_train" / "img1.jpg")
    with pytest.raises(DatasetError, match=r"img1\.jpg.*0002_c1s1_000451_03\.jpg"):
        load_market1501(root)


def test_market1501_camera_out_of_range(tmp_path):
    root = make_market(tmp_path / "m", query=["0003_c7s1_001051_00.jpg"])
    with pytest.raises(DatasetError, match="0003_c7s1_001051_00.jpg.*1..6"):
        load_market1501(root)


def test_market1501_missing_folder_and_empty_split(tmp_path):
    root = make_market(tmp_path / "m")
    (root / "query" / "0003_c1s1_001051_00.jpg").unlink()
    (root / "query" / "0005_c4s2_000101_00.jpg").unlink()
    with pytest.raises(DatasetError, match=str(root / "query") + ".*no images"):
        load_market1501(root)
    (root / "query").rmdir()
    with pytest.raises(DatasetError, match=str(root / "query") + " not found"):
        load_market1501(root)
    with pytest.raises(DatasetError, match="nowhere"):
        load_market1501(tmp_path / "nowhere")


def test_market1501_only_junk_in_train_is_empty(tmp_path):
    root = make_market(tmp_path / "m", train=["-1_c1s1_000001_00.jpg", "0000_c1s1_000002_00.jpg"])
    with pytest.raises(DatasetError, match="bounding_box_train.*no images"):
        load_market1501(root)


def test_dukemtmc_eight_cameras(tmp_path):
    root = make_market(
        tmp_path / "DukeMTMC-reID",
        train=["0001_c2_f0046182.jpg", "0001_c8_f0046999.jpg", "0005_c1_f0001000.jpg"],
        query=["0010_c1_f0000100.jpg"],
        gallery=["0010_c7_f0000200.jpg", "0000_c3_f0000300.jpg"])
    ds = load_dukemtmc(root)
    assert ds.num_train_pids == 2 and {r.camid for r in ds.train} == {1, 2, 8}
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 3), (10, 7)]
    touch(root / "query" / "0011_c9_f0000100.jpg")
    with pytest.raises(DatasetError, match="c9.*1..8"):
        load_dukemtmc(root)


def make_msmt(root: Path, version="v1"):
    train_dir, test_dir = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}[version]
    lists = {
        "list_train.txt": (train_dir, ["0000/0000_000_01_0303morning_0015_0.jpg 0",
                                       "0000/0000_001_05_0303morning_0016_1.jpg 0",
                                       "0002/0002_000_15_0303noon_0100_0.jpg 2"]),
        "list_val.txt": (train_dir, ["0001/0001_000_03_0303afternoon_0002_0.jpg 1"]),
        "list_query.txt": (test_dir, ["0000/0000_000_07_0303morning_0001_0.jpg 0"]),
        "list_gallery.txt": (test_dir, ["0000/0000_001_02_0303morning_0002_0.jpg 0",
                                        "0001/0001_000_11_0303noon_0003_0.jpg 1"]),
    }
    for name, (folder, lines) in lists.items():
        for line in lines:
            touch(root / folder / line.split()[0])
        (root / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_msmt17_lists_and_cameras(tmp_path, version):
    ds = load_msmt17(make_msmt(tmp_path / f"MSMT17_{version.upper()}", version))
    assert ds.info["version"] == version
    assert len(ds.train) == 4 and ds.num_train_pids == 3  # train + val
    assert sorted((r.pid, r.camid) for r in ds.train) == [(0, 1), (0, 5), (1, 3), (2, 15)]
    assert [(r.pid, r.camid) for r in ds.query] == [(0, 7)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 2), (1, 11)]
    folder = "test" if version == "v1" else "mask_test_v2"
    assert Path(ds.query[0].path).parts[-3] == folder


def test_msmt17_errors(tmp_path):
    root = make_msmt(tmp_path / "MSMT17_V1")
    (root / "list_query.txt").write_text("0000_000_07_0303morning_0001_0.jpg\n")
    with pytest.raises(DatasetError, match=r"list_query.txt:1: expected a line like"):
        load_msmt17(root)
    (root / "list_query.txt").write_text("0000/0009_000_07_x_0001_0.jpg 0\n")
    with pytest.raises(DatasetError, match=r"list_query.txt:1: image .*0009_000_07.* not found"):
        load_msmt17(root)
    (root / "list_val.txt").unlink()
    with pytest.raises(DatasetError, match="list_val.txt not found"):
        load_msmt17(root)
    with pytest.raises(DatasetError, match="neither train/"):
        load_msmt17(tmp_path)


def make_sysu(root: Path):
    # ids 1, 2 train, 3 val, 4, 5 test; id 5 never seen by camera 6
    for pid in range(1, 6):
        for cam in range(1, 7):
            if pid == 5 and cam == 6:
                continue
            for k in range(1, 3):
                touch(root / f"cam{cam}" / f"{pid:04d}" / f"{k:04d}.jpg")
    (root / "exp").mkdir()
    (root / "exp" / "train_id.txt").write_text("1,2")
    (root / "exp" / "val_id.txt").write_text("3")
    (root / "exp" / "test_id.txt").write_text("4,5\n")
    return root


def test_sysu_splits_and_modalities(tmp_path):
    ds = load_sysu(make_sysu(tmp_path / "SYSU-MM01"))
    assert ds.protocol == "sysu" and ds.num_train_pids == 3
    assert len(ds.train) == 3 * 6 * 2
    assert {r.modality for r in ds.train if r.camid in (3, 6)} == {"infrared"}
    assert {r.modality for r in ds.train if r.camid not in (3, 6)} == {"visible"}
    assert {(r.pid, r.camid) for r in ds.query} == {(4, 3), (4, 6), (5, 3)}
    assert len(ds.query) == 6 and all(r.modality == "infrared" for r in ds.query)
    assert len(ds.gallery) == 2 * 4 * 2 and {r.camid for r in ds.gallery} == {1, 2, 4, 5}


def test_sysu_errors(tmp_path):
    root = make_sysu(tmp_path / "SYSU-MM01")
    (root / "exp" / "test_id.txt").write_text("4;5")
    with pytest.raises(DatasetError, match="test_id.txt: expected comma-separated"):
        load_sysu(root)
    (root / "exp" / "test_id.txt").write_text("77")
    with pytest.raises(DatasetError, match="cams 3/6"):
        load_sysu(root)
    for p in (root / "cam6").rglob("*.jpg"):
        p.unlink()
    for d in sorted((root / "cam6").iterdir()):
        d.rmdir()
    (root / "cam6").rmdir()
    with pytest.raises(DatasetError, match="cam6 not found"):
        load_sysu(root)


def make_regdb(root: Path, num_ids=4, per_id=2):
    for trial in (1, 2):
        for part in ("train", "test"):
            for word, folder, tag in (("visible", "Visible", "v"), ("thermal", "Thermal", "t")):
                lines = []
                # trial 1: ids 0,1 train / 2,3 test; trial 2 the other way round
                ids = range(0, 2) if (part == "train") == (trial == 1) else range(2, 4)
                for label, pid in enumerate(ids):
                    for k in range(per_id):
                        rel = f"{folder}/Male/{pid + 1}/male_front_{tag}_{pid:05d}_{k}.bmp"
                        touch(root / rel)
                        lines.append(f"{rel} {label if part == 'train' else pid}")
                (root / "idx").mkdir(exist_ok=True)
                (root / "idx" / f"{part}_{word}_{trial}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_regdb_trials_and_modes(tmp_path):
    root = make_regdb(tmp_path / "RegDB")
    ds = load_regdb(root, trial=1)
    assert ds.protocol == "regdb" and ds.num_train_pids == 2 and len(ds.train) == 8
    assert {(r.camid, r.modality) for r in ds.train} == {(1, "visible"), (2, "infrared")}
    assert all(r.camid == 2 for r in ds.query) and all(r.camid == 1 for r in ds.gallery)
    assert {r.pid for r in ds.query} == {2, 3}
    v2t = load_regdb(root, trial=1, mode="visible_to_thermal")
    assert all(r.camid == 1 for r in v2t.query) and v2t.info["test_thermal"] == ds.query
    t2 = load_regdb(root, trial=2)
    assert {r.pid for r in t2.query} == {0, 1} and "Male/3/" in t2.train[0].path
    with pytest.raises(DatasetError, match="trial 11"):
        load_regdb(root, trial=11)
    with pytest.raises(DatasetError, match="mode 'sideways'"):
        load_regdb(root, mode="sideways")
    with pytest.raises(DatasetError, match="train_visible_3.txt not found"):
        load_regdb(root, trial=3)


def test_load_dataset_specs(tmp_path):
    root = make_market(tmp_path / "m")
    assert load_dataset(f"market1501:{root}").num_train_pids == 3
    regdb = make_regdb(tmp_path / "RegDB")
    assert load_dataset(f"regdb:{regdb}", trial=2).info["trial"] == 2
    with pytest.raises(DatasetError, match="unknown dataset 'cuhk03'"):
        load_dataset("cuhk03:/x")
    with pytest.raises(DatasetError, match="needs a path"):
        load_dataset("market1501")
    with pytest.raises(DatasetError, match="bad option"):
        load_dataset(f"market1501:{root}", trial=3)

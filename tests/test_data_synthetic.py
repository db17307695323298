"""The synthetic set: deterministic bytes, real layouts, infrared loses colour."""
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgereid.data import load_dataset, synthesize
from edgereid.data.render import NIR_WEIGHTS, _fabric_heat, render, sample_camera, sample_identity
from edgereid.data.synthetic import ensure_synthetic, read_manifest
from edgereid.errors import DatasetError

TINY = dict(num_ids=8, images_per_id=4, num_distractors=3, num_junk=2, progress=False)


def digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("synth") / "set", seed=3, **TINY)


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    again = synthesize(tmp_path / "again", seed=3, **TINY)
    assert digest(tiny) == digest(again)
    other = synthesize(tmp_path / "other", seed=4, **TINY)
    a, b = digest(tiny), digest(other)
    assert a["manifest.json"] != b["manifest.json"]
    assert sum(a[k] == b.get(k) for k in a) < len(a) // 10
    assert not list(tmp_path.glob("*.tmp-*"))  # temp folders renamed or removed


def test_market_layout_loads(tiny):
    ds = load_dataset(f"synthetic:{tiny}")
    m = read_manifest(tiny)["market1501"]
    assert ds.num_train_pids == m["train_ids"] == 4
    assert len(ds.train) == m["images"]["bounding_box_train"]
    assert len(ds.query) == m["images"]["query"] == 2 * m["test_ids"]  # two query cameras per test id
    assert sorted(r.pid for r in ds.gallery if r.pid <= 0) == [-1, -1, 0, 0, 0]
    test_pids = {r.pid for r in ds.query}
    train_pids = {int(Path(r.path).name[:4]) for r in ds.train}  # original pids (train is relabelled)
    assert test_pids <= {r.pid for r in ds.gallery} and not test_pids & train_pids
    with Image.open(ds.train[0].path) as img:
        assert img.size == (64, 128) and img.mode == "RGB"


def test_sysu_layout_loads_and_infrared_is_grey(tiny):
    ds = load_dataset(f"synthetic-sysu:{tiny}")
    assert ds.protocol == "sysu" and ds.num_train_pids == 4
    assert {r.camid for r in ds.query} <= {3, 6} and {r.camid for r in ds.gallery} <= {1, 2, 4, 5}
    assert {r.pid for r in ds.query} == {r.pid for r in ds.gallery}
    ir = np.asarray(Image.open(ds.query[0].path), dtype=int)
    vis = np.asarray(Image.open(ds.gallery[0].path), dtype=int)
    assert np.abs(ir - ir.mean(axis=2, keepdims=True)).max() <= 2
    assert np.abs(vis - vis.mean(axis=2, keepdims=True)).max() > 20


def test_infrared_ignores_clothing_hue_visible_does_not():
    rng = np.random.default_rng(0)
    person = sample_identity(rng)
    recoloured = dataclasses.replace(person, top_colour=(200.0, 20.0, 20.0), bottom_colour=(20.0, 200.0, 20.0),
                                     pattern_colour=(20.0, 20.0, 200.0))
    ir_cam, vis_cam = sample_camera(rng, infrared=True), sample_camera(rng, infrared=False)
    for cam, same in ((ir_cam, True), (vis_cam, False)):
        a = render(person, cam, np.random.default_rng(5))
        b = render(recoloured, cam, np.random.default_rng(5))
        assert np.array_equal(a, b) == same


def test_infrared_keeps_garment_brightness_order_but_not_hue():
    # Two dyes of one near-infrared reflectance but other hues look the same in infrared;
    # a lighter dye stays lighter than a darker one, whatever the material draw.
    red, blue = np.array([180.0, 40.0, 40.0]), np.array([40.0, 40.0, 40.0])
    blue[2] = (red @ NIR_WEIGHTS - blue[:2] @ NIR_WEIGHTS[:2]) / NIR_WEIGHTS[2]
    assert _fabric_heat(np.random.default_rng(7), red) == pytest.approx(_fabric_heat(np.random.default_rng(7), blue))
    light, dark = (215.0, 215.0, 210.0), (28.0, 28.0, 30.0)
    assert min(_fabric_heat(np.random.default_rng(s), light) for s in range(50)) > \
        max(_fabric_heat(np.random.default_rng(s), dark) for s in range(50))
    people = [sample_identity(np.random.default_rng(s)) for s in range(300)]
    top_lighter = [np.asarray(p.top_colour) @ NIR_WEIGHTS > np.asarray(p.bottom_colour) @ NIR_WEIGHTS + 60
                   for p in people]
    assert sum(top_lighter) > 20 and all(p.top_heat > p.bottom_heat for p, t in zip(people, top_lighter) if t)


def test_identities_vary_in_shape_and_accessories():
    rng = np.random.default_rng(1)
    people = [sample_identity(rng) for _ in range(200)]
    assert len({p.pattern for p in people}) == 5 and len({p.bag for p in people}) == 4
    assert len({p.lower for p in people}) == 3 and 0.1 < np.mean([p.hat for p in people]) < 0.5
    assert np.std([p.leg for p in people]) > 0.02 and np.std([p.shoulder for p in people]) > 0.01
    # palette overlap: far fewer distinct top colours (by palette entry) than people
    assert len({tuple(np.round(np.asarray(p.top_colour) / 40)) for p in people}) < 60


def test_existing_root_is_refused(tiny, tmp_path):
    with pytest.raises(DatasetError, match="already exists"):
        synthesize(tiny, seed=3, **TINY)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with pytest.raises(DatasetError, match="no manifest.json"):
        ensure_synthetic(foreign)
    with pytest.raises(DatasetError, match="generated with seed 3, not 0"):
        ensure_synthetic(tiny, seed=0)
    assert ensure_synthetic(tiny, seed=3) == tiny
    with pytest.raises(DatasetError, match="images_per_id"):
        synthesize(tmp_path / "bad", num_ids=8, images_per_id=1, progress=False)


def _visible_pixels(root: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), np.float32).reshape(-1, 3).mean(0)
                     for p in sorted((root / "market1501" / "bounding_box_train").glob("*.jpg"))])


def test_domain_b_is_another_camera_network(tiny, tmp_path):
    b = synthesize(tmp_path / "b", seed=3, domain="b", **TINY)
    assert read_manifest(b)["domain"] == "b" and read_manifest(tiny)["domain"] == "a"
    da, db = digest(tiny), digest(b)
    assert not {v for k, v in da.items() if k.endswith(".jpg")} & {v for k, v in db.items() if k.endswith(".jpg")}
    pa, pb = _visible_pixels(tiny), _visible_pixels(b)
    assert pb.mean() < 0.85 * pa.mean()                                      # dimmer lamps
    assert (pb[:, 0] / pb[:, 2]).mean() > 1.2 * (pa[:, 0] / pa[:, 2]).mean()  # sodium-orange cast
    ds = load_dataset(f"synthetic-b:{b}")
    assert ds.name == "synthetic-b" and ds.num_train_pids == read_manifest(b)["market1501"]["train_ids"]
    assert load_dataset(f"synthetic-b-sysu:{b}").name == "synthetic-b-sysu"


def test_a_folder_of_one_domain_is_not_taken_for_the_other(tiny):
    with pytest.raises(DatasetError, match="holds domain 'a', not 'b'"):
        ensure_synthetic(tiny, domain="b")
    with pytest.raises(DatasetError, match="unknown domain 'c'"):
        synthesize(tiny.parent / "c", domain="c", **TINY)

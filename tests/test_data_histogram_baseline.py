"""Colour-histogram baseline: descriptor properties and an end-to-end ranking check."""
import numpy as np
from PIL import Image

from edgereid.baselines.histogram import evaluate_histogram_baseline, histogram_descriptor
from edgereid.data.market1501 import load_market1501


def test_descriptor_shape_and_norm():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8))
    d = histogram_descriptor(img)
    assert d.shape == (6 * 56,) and (d >= 0).all()
    # each stripe is an L1-normalised histogram, square-rooted: unit L2 norm per stripe
    assert np.allclose(np.linalg.norm(d.reshape(6, -1), axis=1), 1.0, atol=1e-5)


def test_grey_is_insensitive_to_white_balance_but_colour_is_not():
    grey = histogram_descriptor(Image.new("RGB", (64, 128), (120, 120, 120)))
    warm = histogram_descriptor(Image.new("RGB", (64, 128), (126, 120, 114)))  # same brightness bin,
    cool = histogram_descriptor(Image.new("RGB", (64, 128), (114, 120, 126)))  # opposite hues
    red = histogram_descriptor(Image.new("RGB", (64, 128), (180, 40, 40)))
    assert np.array_equal(grey, warm) and np.array_equal(grey, cool)
    assert np.linalg.norm(grey - red) > 1.0


def test_ranks_identical_colours_first(tmp_path):
    colours = {2: (200, 30, 30), 5: (30, 160, 40), 9: (40, 60, 200)}
    for folder, cam in (("bounding_box_train", 1), ("query", 1), ("bounding_box_test", 2)):
        (tmp_path / folder).mkdir()
        for pid, colour in colours.items():
            img = np.full((128, 64, 3), 90, np.uint8)
            img[20:110, 16:48] = colour
            Image.fromarray(img).save(tmp_path / folder / f"{pid:04d}_c{cam}s1_000100_00.png")
    Image.new("RGB", (64, 128), (200, 30, 30)).save(tmp_path / "bounding_box_test" / "-1_c2s1_000200_00.png")
    res = evaluate_histogram_baseline(load_market1501(tmp_path))
    assert res.mAP == 1.0 and res.cmc[0] == 1.0 and res.num_valid_queries == 3

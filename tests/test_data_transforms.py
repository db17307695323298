"""Transforms (shapes, normalisation, seeded randomness) and ReidImageDataset."""
import numpy as np
import torch
from PIL import Image

from edgereid.data import IMAGENET_MEAN, IMAGENET_STD, ImageRecord, ReidImageDataset, build_transforms
from edgereid.data.transforms import RandomChannel, RandomErasing, RandomHorizontalFlip


def picture(h=100, w=50):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_test_transform_resizes_and_normalises():
    img = Image.new("RGB", (50, 100), (124, 116, 104))  # ~ the ImageNet mean colour
    x = build_transforms((128, 64), train=False)(img)
    assert x.shape == (3, 128, 64) and x.dtype == torch.float32
    expected = (torch.tensor([124, 116, 104]) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x.mean(dim=(1, 2)), expected, atol=1e-4)


def test_train_transform_seeded_and_random():
    t = build_transforms((128, 64), train=True)
    a = t(picture(), generator=torch.Generator().manual_seed(1))
    b = t(picture(), generator=torch.Generator().manual_seed(1))
    c = t(picture(), generator=torch.Generator().manual_seed(2))
    assert a.shape == (3, 128, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_and_erasing():
    img = picture(8, 4)
    flipped = RandomHorizontalFlip(p=1.0)(img)
    assert np.array_equal(np.asarray(flipped), np.asarray(img)[:, ::-1])
    x = torch.zeros(3, 128, 64)
    erased = RandomErasing(p=1.0)(x, generator=torch.Generator().manual_seed(0))
    assert (erased != 0).any() and (erased == 0).any() and (x == 0).all()


def test_dataset_items(tmp_path):
    paths = []
    for i, mode in enumerate(["RGB", "L"]):  # infrared JPEGs may be single channel
        p = tmp_path / f"{i}.png"
        Image.new(mode, (64, 128)).save(p)
        paths.append(p)
    ds = ReidImageDataset([ImageRecord(str(paths[0]), 3, 1), ImageRecord(str(paths[1]), 4, 6, "infrared")],
                          build_transforms((128, 64), train=False))
    x, pid, camid, index = ds[1]
    assert x.shape == (3, 128, 64) and (pid, camid, index) == (4, 6, 1) and len(ds) == 2


def test_channel_augmentation_shows_one_colour_channel_and_leaves_grey_alone():
    img = picture()
    rgb = np.asarray(img)
    seen = set()
    for seed in range(12):
        out = np.asarray(RandomChannel(p=1.0)(img, generator=torch.Generator().manual_seed(seed)))
        (channel,) = [c for c in range(3) if np.array_equal(out[..., 0], rgb[..., c])]
        assert np.array_equal(out[..., 1], out[..., 0]) and np.array_equal(out[..., 2], out[..., 0])
        seen.add(channel)
    assert seen == {0, 1, 2}
    assert RandomChannel(p=0.0)(img, generator=torch.Generator().manual_seed(0)) is img
    grey = img.convert("L").convert("RGB")
    assert np.array_equal(np.asarray(RandomChannel(p=1.0)(grey.convert("L"))), np.asarray(grey.convert("L")))
    assert "RandomChannel" in repr(build_transforms((128, 64), train=True, channel_p=0.5))
    assert "RandomChannel" not in repr(build_transforms((128, 64), train=True))

"""Tiny dataset trees in the real on-disk naming, shared by the CLI tests."""
import numpy as np
from PIL import Image


def market_tree(root, num_ids=6, per_id=4, size=(32, 16)):
    """A tiny Market-1501 tree: train ids 1..N, test ids 101..100+N (query = first image)."""
    rng = np.random.default_rng(1)
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (root / sub).mkdir(parents=True)
    for base, split in ((1, "train"), (101, "test")):
        for pid in range(base, base + num_ids):
            colour = rng.integers(0, 256, 3)
            for j in range(per_id):
                px = np.clip(colour + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
                sub = "bounding_box_train" if split == "train" else ("query" if j == 0 else "bounding_box_test")
                Image.fromarray(px).save(root / sub / f"{pid:04d}_c{j % 2 + 1}s1_{j:06d}_00.jpg")
    return root

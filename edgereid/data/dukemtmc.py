"""DukeMTMC-reID (Zheng et al., ICCV 2017): Market-1501 layout, 8 cameras.

Names look like `0001_c2_f0046182.jpg`; folders bounding_box_train / query /
bounding_box_test as in Market-1501.
"""
from __future__ import annotations

from edgereid.data.market1501 import load_market_style
from edgereid.data.records import ReidDataset


def load_dukemtmc(root) -> ReidDataset:
    return load_market_style(root, "dukemtmc", num_cams=8, example="0001_c2_f0046182.jpg")

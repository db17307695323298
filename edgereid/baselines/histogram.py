"""Colour-histogram Re-ID baseline.

Descriptor: the image, resized to 128x64, is cut into `stripes` horizontal bands (6 by
default: roughly head, shoulders, chest, waist, thighs, feet). Each band gets one
histogram over HSV colours in which

- chromatic pixels (saturation >= `sat_threshold`) vote in hue (8) x saturation (2) x
  value (3) bins, and
- achromatic pixels (black, grey, white) vote in 8 value bins only, because their hue
  is whatever tint the camera's white balance gives them and would otherwise make the
  histogram a camera detector;

every pixel's vote is weighted by a Gaussian of its horizontal distance to the image
centre (sigma = `centre_sigma` x width), since detections put the person in the middle
and the sides are mostly background. Each band's histogram is L1-normalised (every band
weighs the same whatever the person's size), the bands are concatenated and
square-rooted (Hellinger map): the Euclidean distance between two descriptors is then
the Hellinger distance between their histograms, which tames large bins.

This is the "colour alone" reference a Re-ID model must beat. On the synthetic set it
stays low by design: identities share clothing colours, cameras change the light and
the background, and infrared images have no colour at all.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from edgereid.data.records import ReidDataset
from edgereid.errors import DatasetError
from edgereid.metrics import compute_distance_matrix, eval_sysu, evaluate_rank

HUE_BINS, SAT_BINS, VAL_BINS, GREY_BINS = 8, 2, 3, 8


def histogram_descriptor(img: Image.Image, stripes: int = 6, sat_threshold: int = 64,
                         centre_sigma: float = 0.15, size=(128, 64)) -> np.ndarray:
    height, width = size
    hsv = np.asarray(img.convert("RGB").resize((width, height), Image.BILINEAR).convert("HSV"), dtype=np.int64)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    chromatic = sat >= sat_threshold
    sat_bin = (sat - sat_threshold).clip(0) * SAT_BINS // (256 - sat_threshold)
    colour_code = ((hue * HUE_BINS // 256) * SAT_BINS + sat_bin) * VAL_BINS + val * VAL_BINS // 256
    grey_code = HUE_BINS * SAT_BINS * VAL_BINS + val * GREY_BINS // 256
    code = np.where(chromatic, colour_code, grey_code)
    n_bins = HUE_BINS * SAT_BINS * VAL_BINS + GREY_BINS
    x = (np.arange(width) + 0.5 - width / 2) / (centre_sigma * width)
    weight = np.broadcast_to(np.exp(-0.5 * x ** 2), (height, width))
    edges = np.linspace(0, height, stripes + 1).round().astype(int)
    feats = []
    for y0, y1 in zip(edges[:-1], edges[1:]):
        hist = np.bincount(code[y0:y1].ravel(), weights=weight[y0:y1].ravel(), minlength=n_bins)
        feats.append(hist / max(hist.sum(), 1e-12))
    return np.sqrt(np.concatenate(feats)).astype(np.float32)


def histogram_features(records, **kw) -> np.ndarray:
    """[N, stripes * 56] descriptors of the records' images."""
    feats = []
    for r in records:
        with Image.open(r.path) as img:
            feats.append(histogram_descriptor(img, **kw))
    return np.stack(feats)


def _labels(records):
    return np.array([r.pid for r in records]), np.array([r.camid for r in records])


def evaluate_histogram_baseline(dataset: ReidDataset, trials: int = 10, **kw):
    """RankResult of the baseline on `dataset` under its protocol.

    market: Market-1501 rules over the whole gallery. sysu: all-search, single-shot,
    `trials` gallery draws (edgereid.metrics.eval_sysu). Other protocols are not
    supported here (RegDB needs its ten splits: use edgereid.metrics.eval_regdb).
    """

    if dataset.protocol not in ("market", "sysu"):
        raise DatasetError(f"histogram baseline: protocol {dataset.protocol!r} not supported (market or sysu)")
    q, g = histogram_features(dataset.query, **kw), histogram_features(dataset.gallery, **kw)
    (q_pids, q_cams), (g_pids, g_cams) = _labels(dataset.query), _labels(dataset.gallery)
    if dataset.protocol == "sysu":
        return eval_sysu(q, q_pids, q_cams, g, g_pids, g_cams, g_paths=[r.path for r in dataset.gallery],
                         mode="all", shot=1, trials=trials, metric="euclidean",
                         permutations=dataset.info.get("rand_perm_cam"))
    return evaluate_rank(compute_distance_matrix(q, g, "euclidean"), q_pids, g_pids, q_cams, g_cams)

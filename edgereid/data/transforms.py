"""Image transforms for Re-ID training and test, written on PIL + torch (no torchvision).

Train: resize, random horizontal flip, pad + random crop, to tensor, normalize, random
erasing. Test: resize, to tensor, normalize. Random draws use `generator` if given,
otherwise torch's global RNG, which DataLoader seeds per worker from the main seed, so
a seeded training run is reproducible.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _rand(generator) -> float:
    return float(torch.rand((), generator=generator))


def _randint(low, high, generator) -> int:
    """Integer in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=generator))


class Resize:
    def __init__(self, size):
        self.height, self.width = size

    def __call__(self, img: Image.Image, generator=None) -> Image.Image:
        if img.size == (self.width, self.height):
            return img
        return img.resize((self.width, self.height), Image.BILINEAR)


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img: Image.Image, generator=None) -> Image.Image:
        return img.transpose(Image.FLIP_LEFT_RIGHT) if _rand(generator) < self.p else img


class RandomChannel:
    """With probability `p`, replace a colour image by one of its channels (drawn
    uniformly) in all three: the channel augmentation of cross-modal Re-ID (Ye et al.,
    ICCV 2021), which shows the network visible images without hue, as an infrared
    camera sees them. Greyscale (infrared) images are unchanged by it."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img: Image.Image, generator=None) -> Image.Image:
        if _rand(generator) >= self.p or img.mode != "RGB":
            return img
        channel = img.split()[_randint(0, 2, generator)]
        return Image.merge("RGB", (channel, channel, channel))


class PadRandomCrop:
    """Zero-pad by `padding` pixels on each side, then crop back to the original size."""

    def __init__(self, padding=10):
        self.padding = padding

    def __call__(self, img: Image.Image, generator=None) -> Image.Image:
        w, h = img.size
        p = self.padding
        padded = Image.new(img.mode, (w + 2 * p, h + 2 * p))
        padded.paste(img, (p, p))
        x, y = _randint(0, 2 * p, generator), _randint(0, 2 * p, generator)
        return padded.crop((x, y, x + w, y + h))


class ToNormalizedTensor:
    """PIL RGB -> float tensor [3, H, W], (x / 255 - mean) / std."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, img: Image.Image, generator=None) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.mean) / self.std


class RandomErasing:
    """Random erasing (Zhong et al., AAAI 2020): a random box filled with noise.

    With probability `p`, a box of area in `scale` of the image and aspect ratio in
    `ratio` is replaced by standard-normal values (i.e. noise in normalized space).
    """

    def __init__(self, p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.3)):
        self.p, self.scale, self.ratio = p, scale, ratio

    def __call__(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        if _rand(generator) >= self.p:
            return x
        _, h, w = x.shape
        for _ in range(10):
            area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * _rand(generator))
            log_r = math.log(self.ratio[0]) + (math.log(self.ratio[1]) - math.log(self.ratio[0])) * _rand(generator)
            r = math.exp(log_r)
            eh, ew = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))
            if 0 < eh < h and 0 < ew < w:
                y, x0 = _randint(0, h - eh, generator), _randint(0, w - ew, generator)
                x = x.clone()
                x[:, y:y + eh, x0:x0 + ew] = torch.randn((x.shape[0], eh, ew), generator=generator)
                return x
        return x


class Compose:
    def __init__(self, steps):
        self.steps = list(steps)

    def __call__(self, img, generator=None):
        for step in self.steps:
            img = step(img, generator=generator)
        return img

    def __repr__(self):
        return "Compose(" + ", ".join(type(s).__name__ for s in self.steps) + ")"


def build_transforms(size=(128, 64), train: bool = True, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     flip_p=0.5, padding=10, erasing_p=0.5, channel_p=0.0) -> Compose:
    """The standard Re-ID pipeline; `size` is (height, width); `channel_p` > 0 adds the
    cross-modal channel augmentation (RandomChannel)."""
    size = tuple(int(s) for s in size)
    if not train:
        return Compose([Resize(size), ToNormalizedTensor(mean, std)])
    steps = [Resize(size)]
    if channel_p > 0:
        steps.append(RandomChannel(channel_p))
    if flip_p > 0:
        steps.append(RandomHorizontalFlip(flip_p))
    if padding > 0:
        steps.append(PadRandomCrop(padding))
    steps.append(ToNormalizedTensor(mean, std))
    if erasing_p > 0:
        steps.append(RandomErasing(erasing_p))
    return Compose(steps)

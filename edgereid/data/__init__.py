"""Data stage: dataset loaders in the real on-disk layouts, the synthetic set, transforms, sampling."""
from edgereid.data.dataset import ReidImageDataset
from edgereid.data.load import LOADERS, load_dataset
from edgereid.data.records import ImageRecord, ReidDataset
from edgereid.data.sampler import CrossModalSampler, PKSampler
from edgereid.data.synthetic import synthesize
from edgereid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

__all__ = [
    "ImageRecord", "ReidDataset", "load_dataset", "LOADERS", "synthesize",
    "ReidImageDataset", "PKSampler", "CrossModalSampler", "build_transforms", "IMAGENET_MEAN", "IMAGENET_STD",
]

"""Torch Dataset over ImageRecords: (image tensor, pid, camid, index)."""
from __future__ import annotations

from PIL import Image
from torch.utils.data import Dataset

from edgereid.data.records import ImageRecord
from edgereid.errors import DatasetError


class ReidImageDataset(Dataset):
    def __init__(self, records: list[ImageRecord], transform=None):
        self.records = list(records)
        self.transform = transform

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        record = self.records[index]
        try:
            with Image.open(record.path) as f:
                img = f.convert("RGB")  # infrared images are grey: replicate to 3 channels
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{record.path}: cannot read image ({exc})") from None
        if self.transform is not None:
            img = self.transform(img)
        return img, record.pid, record.camid, index

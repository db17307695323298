"""What every loader returns: image records grouped into train / query / gallery."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

MODALITIES = ("visible", "infrared")
PROTOCOLS = ("market", "sysu", "regdb")


@dataclass(frozen=True)
class ImageRecord:
    """One image on disk and its labels.

    `pid` is the person id (-1 junk, 0 distractor in Market-style galleries; 0..N-1
    in a relabelled train split), `camid` the camera number as the dataset writes it
    (1-based), `modality` "visible" or "infrared".
    """

    path: str
    pid: int
    camid: int
    modality: str = "visible"


@dataclass
class ReidDataset:
    """A loaded dataset: train (relabelled pids), query and gallery (original pids)."""

    name: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    num_train_pids: int
    protocol: str
    root: Path
    info: dict = field(default_factory=dict)  # loader-specific facts (e.g. RegDB trial, mode)

    def summary(self) -> str:
        rows = [f"{self.name} ({self.protocol} protocol) at {self.root}"]
        for split, records in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            pids = {r.pid for r in records}
            cams = {r.camid for r in records}
            rows.append(f"  {split:8s} {len(pids):5d} ids {len(records):7d} images {len(cams):3d} cameras")
        return "\n".join(rows)


def relabel(records: list[ImageRecord]) -> tuple[list[ImageRecord], int]:
    """Map the pids of a train split onto 0..N-1 (sorted by original pid)."""
    pids = sorted({r.pid for r in records})
    mapping = {pid: i for i, pid in enumerate(pids)}
    return [replace(r, pid=mapping[r.pid]) for r in records], len(pids)

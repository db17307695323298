"""Checks shared by the loaders: a missing folder, file or empty split is a DatasetError."""
from __future__ import annotations

from pathlib import Path

from edgereid.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{what}: folder {path} not found")
    return path


def require_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what}: file {path} not found")
    return path


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (stable record order)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def require_nonempty(records: list, where: Path | str, expected: str) -> list:
    if not records:
        raise DatasetError(f"{where}: no images found; expected {expected}")
    return records

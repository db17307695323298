"""Where the package's data files are: C firmware sources, board files, the board probe script.

Two layouts, one API:
- a checkout (or an editable install): the repository's top-level `firmware/`, `boards/`
  and `tools/board_profile.py`, next to the `edgereid/` package folder;
- a regular install (wheel): the same files copied by the build into `edgereid/_share/`
  with the same relative layout (`_share/firmware`, `_share/boards`, `_share/tools`), so
  paths inside board files ("boards/<name>/link.ld", relative to the folder that holds
  `boards/`) resolve the same way in both.

An installed copy wins over a checkout: a package imported from site-packages has no
repository next to it, and a checkout never holds `edgereid/_share` (the build writes it
into the wheel only). `$EDGEREID_BOARDS` replaces the boards folder in either layout.

This module is the bottom layer: it imports nothing from edgereid but its errors.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgereid.errors import EdgereidError

BOARDS_ENV = "EDGEREID_BOARDS"
SHARE_DIRNAME = "_share"
# What the build copies into edgereid/_share (paths relative to the repository root).
SHARED_TREES = ("firmware", "boards")
SHARED_FILES = ("tools/board_profile.py",)

_PACKAGE_DIR = Path(__file__).resolve().parent


def package_dir() -> Path:
    """The folder of the `edgereid` package itself (its .py sources)."""
    return _PACKAGE_DIR


def data_root() -> Path:
    """The folder that holds firmware/, boards/ and tools/board_profile.py.

    `edgereid/_share` in an installed package, else the checkout's root (the parent of
    the package folder). Raises EdgereidError when neither holds the firmware sources
    (a broken install)."""
    share = _PACKAGE_DIR / SHARE_DIRNAME
    if (share / "firmware").is_dir():
        return share
    checkout = _PACKAGE_DIR.parent
    if (checkout / "firmware").is_dir():
        return checkout
    raise EdgereidError(f"edgereid's data files are missing: neither {share / 'firmware'} nor "
                        f"{checkout / 'firmware'} exists (reinstall the package: `pip install .`)")


def firmware_dir() -> Path:
    """The C sources: include/, kernels/, runtime/, hil/."""
    return data_root() / "firmware"


def boards_dir() -> Path:
    """$EDGEREID_BOARDS if set, else the shipped boards/ (YAML, luts/, linker scripts, start-up)."""
    env = os.environ.get(BOARDS_ENV)
    if env:
        return Path(env)
    return data_root() / "boards"


def board_probe_script() -> Path:
    """tools/board_profile.py: the script copied to Linux boards to time models there."""
    path = data_root() / "tools" / "board_profile.py"
    if not path.is_file():
        raise EdgereidError(f"the board probe script {path} is missing (reinstall the package: `pip install .`)")
    return path


__all__ = ["BOARDS_ENV", "SHARE_DIRNAME", "SHARED_TREES", "SHARED_FILES", "package_dir", "data_root",
           "firmware_dir", "boards_dir", "board_probe_script"]

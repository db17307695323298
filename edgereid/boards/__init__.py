"""Board descriptions: one YAML file per target in the shipped boards/ folder.

`load_board("mps2-an386")` or `load_board("path/to/x.yaml")` returns a validated,
immutable `Board`; `list_boards()` names the shipped ones. Paths inside a board file
(linker script, startup, latency table) are relative to the folder that holds
boards/ (the repository root in a checkout, `edgereid/_share` in an installed
package: see `edgereid.resources`); `Board.resolve()` turns them into real paths.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml

from edgereid.boards.schema import CORES, MCU_CORES, RUN_KINDS, check_consistency, validate
from edgereid.errors import BoardError
from edgereid.resources import BOARDS_ENV
from edgereid.resources import boards_dir as _shipped_boards_dir


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    bytes: int
    use: str


@dataclass(frozen=True)
class Memory:
    flash_bytes: int | None      # None for boards that boot Linux from storage
    ram_bytes: int | None        # MCU: largest contiguous RAM, the one the arena goes in
    stack_bytes: int | None
    arena_region: str | None = None
    regions: tuple = ()           # tuple[MemoryRegion, ...]


@dataclass(frozen=True)
class Accelerator:
    name: str
    tops: float
    interface: str


@dataclass(frozen=True)
class Toolchain:
    cc: str
    cflags: tuple
    ldscript: str | None
    startup: str | None


@dataclass(frozen=True)
class RunSpec:
    kind: str
    qemu_machine: str | None = None
    qemu_cpu: str | None = None
    ticks_per_instruction: float | None = None
    serial_port: str | None = None
    baudrate: int | None = None
    ssh_host: str | None = None
    ssh_user: str | None = None


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: bool
    dsp: bool
    mve: bool
    clock_hz: int | None
    memory: Memory
    accelerator: Accelerator | None
    toolchain: Toolchain
    run: RunSpec
    latency_table: str | None
    provenance: MappingProxyType
    path: Path                    # the YAML file it was loaded from

    @property
    def is_mcu(self) -> bool:
        return self.core in MCU_CORES

    @property
    def root(self) -> Path:
        """The folder that relative paths in the board file start from."""
        return self.path.parent.parent

    def resolve(self, relpath: str | None) -> Path | None:
        return None if relpath is None else (self.root / relpath)

    def to_dict(self) -> dict:
        """The board as plain data (what the YAML said, validated)."""
        with open(self.path, encoding="utf-8") as f:
            return yaml.safe_load(f)


def boards_dir() -> Path:
    """$EDGEREID_BOARDS if set, else the shipped boards/ (the checkout's, or the installed copy)."""
    return _shipped_boards_dir()


def list_boards() -> list[str]:
    d = boards_dir()
    if not d.is_dir():
        raise BoardError(f"boards folder {d} does not exist (set {BOARDS_ENV} to the folder of board YAML files)")
    return sorted(p.stem for p in d.glob("*.yaml"))


def _board_file(name_or_path) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise BoardError(f"board file {path} does not exist")
        return path
    path = boards_dir() / f"{text}.yaml"
    if not path.is_file():
        try:
            known = ", ".join(list_boards())
        except BoardError:
            known = "none"
        raise BoardError(f"unknown board {text!r}: no {path}; known boards: {known}")
    return path


def _parse(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BoardError(f"{path}: not valid YAML{where}: {problem}") from None
    except OSError as exc:
        raise BoardError(f"{path}: cannot read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise BoardError(f"{path}: expected a mapping of board fields, got {type(data).__name__}")
    return data


def load_board(name_or_path) -> Board:
    """Load and validate a board by name (boards/<name>.yaml) or by file path."""
    path = _board_file(name_or_path)
    data = _parse(path)
    validate(data, path)
    check_consistency(data, path, path.stem)
    mem = data["memory"]
    acc = data["accelerator"]
    return Board(
        name=data["name"], description=data["description"], core=data["core"],
        fpu=data["fpu"], dsp=data["dsp"], mve=data["mve"], clock_hz=data["clock_hz"],
        memory=Memory(mem["flash_bytes"], mem["ram_bytes"], mem["stack_bytes"], mem.get("arena_region"),
                      tuple(MemoryRegion(**r) for r in mem.get("regions", []))),
        accelerator=None if acc is None else Accelerator(acc["name"], float(acc["tops"]), acc["interface"]),
        toolchain=Toolchain(data["toolchain"]["cc"], tuple(data["toolchain"]["cflags"]),
                            data["toolchain"]["ldscript"], data["toolchain"]["startup"]),
        run=RunSpec(**data["run"]),
        latency_table=data["latency_table"],
        provenance=MappingProxyType(dict(data["provenance"])),
        path=path.resolve(),
    )


__all__ = ["Board", "Memory", "MemoryRegion", "Accelerator", "Toolchain", "RunSpec", "load_board",
           "list_boards", "boards_dir", "CORES", "RUN_KINDS", "BOARDS_ENV"]

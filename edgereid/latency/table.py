"""Latency lookup tables: boards/luts/<board>.json.

One file per board, versioned. It says which runtime (and version) and which fusion
rules its keys were made under, and the unit of every figure: seconds (host
wall-clock), instructions (QEMU -icount) or cycles (a real MCU's cycle counter).
Each entry is keyed by the fused kernel configuration (edgereid.latency.kernels) and
holds the median, the interquartile range, the sample count and where the figure
came from: measured (runtime and version, transport, date, host) or estimated (from
what model). A measured profile replaces estimated entries one by one.

`overhead` holds the per-inference cost that no kernel owns (invoke, input copy,
framing), measured with an identity model; a model's prediction is that plus the sum
of its kernels.
"""
from __future__ import annotations

import datetime
import json
import math
import platform
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from edgereid.atomic import write_text
from edgereid.errors import LatencyError
from edgereid.latency.kernels import Kernel, kernel_from_dict, parse_key

FORMAT = "edgereid-latency-table"
FORMAT_VERSION = 1
UNITS = {
    "s": "seconds of host wall-clock time",
    "instructions": "instructions executed (QEMU -icount shift=0, counted with SysTick)",
    "cycles": "core clock cycles (the MCU's cycle counter)",
}
PROVENANCE_KINDS = ("measured", "estimated")


class LatencyTableWarning(UserWarning):
    """A table that can be used but may not describe the runtime it is used for."""


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def host_description() -> str:
    return f"{socket.gethostname()} ({platform.machine()}, {platform.system()} {platform.release()})"


def measured_provenance(runtime: dict, transport: str, host: str | None = None, **extra) -> dict:
    return {"kind": "measured", "runtime": f"{runtime.get('name')} {runtime.get('version')}",
            "transport": transport, "date": now_utc(), "host": host or host_description(), **extra}


@dataclass
class Entry:
    median: float
    iqr: float
    n: int
    provenance: dict
    samples_dropped: int = 0            # outliers rejected before the median

    @property
    def estimated(self) -> bool:
        return self.provenance.get("kind") == "estimated"

    def to_dict(self) -> dict:
        d = {"median": self.median, "iqr": self.iqr, "n": self.n, "provenance": self.provenance}
        if self.samples_dropped:
            d["samples_dropped"] = self.samples_dropped
        return d

    @classmethod
    def from_dict(cls, d, where: str) -> "Entry":
        if not isinstance(d, dict):
            raise LatencyError(f"{where}: expected an object with median, iqr, n, provenance")
        for name in ("median", "iqr", "n", "provenance"):
            if name not in d:
                raise LatencyError(f"{where}: missing field {name!r}")
        median, iqr, n = d["median"], d["iqr"], d["n"]
        if not isinstance(median, (int, float)) or not math.isfinite(median) or median < 0:
            raise LatencyError(f"{where}: median must be a finite number >= 0, got {median!r}")
        if not isinstance(iqr, (int, float)) or not math.isfinite(iqr) or iqr < 0:
            raise LatencyError(f"{where}: iqr must be a finite number >= 0, got {iqr!r}")
        if not isinstance(n, int) or n < 1:
            raise LatencyError(f"{where}: n (sample count) must be an integer >= 1, got {n!r}")
        prov = d["provenance"]
        if not isinstance(prov, dict) or prov.get("kind") not in PROVENANCE_KINDS:
            raise LatencyError(f"{where}: provenance.kind must be one of {PROVENANCE_KINDS}")
        needed = ("runtime", "transport", "date", "host") if prov["kind"] == "measured" else ("model",)
        missing = [k for k in needed if k not in prov]
        if missing:
            raise LatencyError(f"{where}: {prov['kind']} provenance lacks {', '.join(missing)}")
        return cls(float(median), float(iqr), n, prov, int(d.get("samples_dropped", 0)))


@dataclass
class LatencyTable:
    board: str
    runtime: dict                  # {"name": ..., "version": ...}
    fusion_rules: str
    unit: str
    entries: dict[str, Entry] = field(default_factory=dict)
    overhead: Entry | None = None  # per inference
    per_layer: Entry | None = None  # for reference only: already inside every kernel entry
    notes: str = ""
    path: Path | None = None

    def __post_init__(self):
        if self.unit not in UNITS:
            raise LatencyError(f"latency table for {self.board}: unit {self.unit!r}, expected one of {sorted(UNITS)}")

    # ---- lookup -------------------------------------------------------------
    def get(self, kernel: Kernel) -> Entry | None:
        return self.entries.get(kernel.key())

    def __contains__(self, kernel: Kernel) -> bool:
        return kernel.key() in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, kernel: Kernel, entry: Entry) -> None:
        self.entries[kernel.key()] = entry

    def kernels(self) -> list[tuple[Kernel, Entry]]:
        return [(parse_key(k), e) for k, e in sorted(self.entries.items())]

    def measured_count(self) -> int:
        return sum(not e.estimated for e in self.entries.values())

    # ---- files --------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "board": self.board,
            "runtime": self.runtime,
            "fusion_rules": self.fusion_rules,
            "unit": self.unit,
            "unit_meaning": UNITS[self.unit],
            "notes": self.notes,
            "overhead": {name: e.to_dict() for name, e in (("per_inference", self.overhead),
                                                           ("per_layer", self.per_layer)) if e is not None},
            "entries": {k: {"config": parse_key(k).to_dict(), **e.to_dict()} for k, e in sorted(self.entries.items())},
        }

    def save(self, path=None) -> Path:
        path = Path(path or self.path)
        write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        self.path = path
        return path

    @classmethod
    def from_dict(cls, d, source: str) -> "LatencyTable":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise LatencyError(f"{source}: not an edgereid latency table ('format' must be {FORMAT!r})")
        if d.get("format_version") != FORMAT_VERSION:
            raise LatencyError(f"{source}: format_version {d.get('format_version')!r}; this edgereid reads "
                               f"version {FORMAT_VERSION}")
        for name in ("board", "runtime", "fusion_rules", "unit", "entries"):
            if name not in d:
                raise LatencyError(f"{source}: missing field {name!r}")
        if not isinstance(d["runtime"], dict) or "name" not in d["runtime"]:
            raise LatencyError(f"{source}: 'runtime' must be an object with name and version")
        if d["unit"] not in UNITS:
            raise LatencyError(f"{source}: unit {d['unit']!r}, expected one of {sorted(UNITS)}")
        if not isinstance(d["entries"], dict):
            raise LatencyError(f"{source}: 'entries' must be an object keyed by kernel configuration")
        entries = {}
        for key, value in d["entries"].items():
            kernel = parse_key(key)
            where = f"{source}: entry {key}"
            if isinstance(value, dict) and "config" in value and kernel_from_dict(value["config"], where) != kernel:
                raise LatencyError(f"{where}: 'config' does not match the key")
            entries[key] = Entry.from_dict(value, where)
        overhead = d.get("overhead") or {}
        if not isinstance(overhead, dict):
            raise LatencyError(f"{source}: 'overhead' must be an object (per_inference, per_layer)")
        parsed = {name: Entry.from_dict(overhead[name], f"{source}: overhead.{name}") if name in overhead else None
                  for name in ("per_inference", "per_layer")}
        return cls(board=d["board"], runtime=d["runtime"], fusion_rules=d["fusion_rules"], unit=d["unit"],
                   entries=entries, notes=d.get("notes", ""), overhead=parsed["per_inference"],
                   per_layer=parsed["per_layer"])

    @classmethod
    def load(cls, path) -> "LatencyTable":
        path = Path(path)
        if not path.is_file():
            raise LatencyError(f"latency table {path} does not exist (run `edgereid profile` for its board)")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LatencyError(f"latency table {path} is corrupt: not valid JSON ({exc})") from None
        table = cls.from_dict(d, str(path))
        table.path = path
        return table

    def check_runtime(self, runtime: dict, rules_id: str) -> None:
        """Warn (naming both) when the table was made for another runtime version; refuse other rules."""
        if rules_id != self.fusion_rules:
            raise LatencyError(f"latency table {self.path or self.board} was made under fusion rules "
                               f"{self.fusion_rules!r}; this board's runtime uses {rules_id!r}")
        mine = (self.runtime.get("name"), self.runtime.get("version"))
        theirs = (runtime.get("name"), runtime.get("version"))
        if mine[1] is not None and mine != theirs:
            warnings.warn(f"latency table {self.path or self.board} was profiled with {mine[0]} {mine[1]}, "
                          f"but this runtime is {theirs[0]} {theirs[1]}: re-profile for exact figures",
                          LatencyTableWarning, stacklevel=2)


def table_path(board) -> Path:
    """Where the board's table lives (its YAML's latency_table, else boards/luts/<name>.json)."""
    if board.latency_table:
        return board.resolve(board.latency_table)
    return board.root / "boards" / "luts" / f"{board.name}.json"


def load_table(board) -> LatencyTable:
    table = LatencyTable.load(table_path(board))
    if table.board != board.name:
        raise LatencyError(f"latency table {table.path} is for board {table.board!r}, not {board.name!r}")
    return table

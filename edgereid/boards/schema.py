"""The board-file schema, checked by hand so every error names file, field and expectation.

A schema node is a `Field`: the Python types it accepts, whether it may be null or
left out, an enum, and for mappings the known child fields. Unknown keys are errors
(with a difflib suggestion), because a typo such as `clock_hzz` would otherwise be
silently ignored and the real field left at nothing.
"""
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from edgereid.boards import trust
from edgereid.errors import BoardError

CORES = ("cortex-m4", "cortex-m7", "cortex-m55", "cortex-a76", "x86-64")
MCU_CORES = ("cortex-m4", "cortex-m7", "cortex-m55")
RUN_KINDS = ("qemu", "serial", "ssh", "local", "none")
MEMORY_USES = ("code", "data", "code+data")


@dataclass(frozen=True)
class Field:
    types: tuple                 # accepted Python types; bool never passes for int/float
    required: bool = True       # the key must be present (its value may still be null)
    nullable: bool = False
    enum: tuple = ()
    children: dict = field(default_factory=dict)   # for mappings with fixed keys
    items: "Field | None" = None                    # for lists
    values: "Field | None" = None                   # for free-key mappings (provenance)
    minimum: float | None = None
    check: "Callable[[str], bool] | None" = None    # for strings: the value's form (boards.trust)
    what: str = ""               # how the expectation is worded in errors

    def __post_init__(self):
        if isinstance(self.types, type):
            object.__setattr__(self, "types", (self.types,))

    def describe(self) -> str:
        if self.what:
            return self.what
        if self.enum:
            return "one of " + ", ".join(map(str, self.enum))
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                 dict: "a mapping", list: "a list"}
        text = " or ".join(names[t] for t in self.types if t in names and not (t is int and float in self.types))
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        return text + (" or null" if self.nullable else "")


STR = (str,)
INT = (int,)
NUM = (int, float)
BOOL = (bool,)

MEMORY_REGION = Field(dict, children={
    "name": Field(STR),
    "origin": Field(INT, minimum=0, what="an address (integer, e.g. 0x20000000)"),
    "bytes": Field(INT, minimum=1),
    "use": Field(STR, enum=MEMORY_USES),
})

BOARD_SCHEMA = Field((dict,), children={
    "name": Field(STR),
    "description": Field(STR),
    "core": Field(STR, enum=CORES),
    "fpu": Field(BOOL),
    "dsp": Field(BOOL),
    "mve": Field(BOOL),
    "clock_hz": Field(INT, nullable=True, minimum=1, what="the core clock in Hz (a positive integer) or null"),
    "memory": Field((dict,), children={
        "flash_bytes": Field(INT, nullable=True, minimum=1),
        "ram_bytes": Field(INT, nullable=True, minimum=1),
        "stack_bytes": Field(INT, nullable=True, minimum=1),
        "arena_region": Field(STR, required=False, nullable=True),
        "regions": Field((list,), required=False, items=MEMORY_REGION),
    }),
    "accelerator": Field((dict,), nullable=True, children={
        "name": Field(STR),
        "tops": Field(NUM, minimum=0),
        "interface": Field(STR),
    }),
    "toolchain": Field((dict,), children={
        # Both end up in a Makefile: one plain word each (boards.trust), never Make or shell syntax.
        "cc": Field(STR, check=trust.is_program, what=trust.PROGRAM_RULE),
        "cflags": Field((list,), items=Field(STR, check=trust.is_flag, what=trust.FLAG_RULE)),
        "ldscript": Field(STR, nullable=True),
        "startup": Field(STR, nullable=True),
    }),
    "run": Field((dict,), children={
        "kind": Field(STR, enum=RUN_KINDS),
        "qemu_machine": Field(STR, required=False, check=trust.is_qemu_name, what=trust.QEMU_RULE),
        "qemu_cpu": Field(STR, required=False, check=trust.is_qemu_name, what=trust.QEMU_RULE),
        "ticks_per_instruction": Field(NUM, required=False, minimum=0),
        "serial_port": Field(STR, required=False, nullable=True),
        "baudrate": Field(INT, required=False, minimum=1),
        # Reach ssh's command line: a name, never an option such as -oProxyCommand=...
        "ssh_host": Field(STR, required=False, nullable=True, check=trust.is_hostname,
                          what=trust.HOST_RULE + " or null"),
        "ssh_user": Field(STR, required=False, nullable=True, check=trust.is_username,
                          what=trust.USER_RULE + " or null"),
    }),
    "latency_table": Field(STR, nullable=True),
    "provenance": Field((dict,), values=Field(STR, what="a non-empty string saying where the figure comes from")),
})

# Keys of `run` that only make sense for one kind of runner.
RUN_KIND_KEYS = {
    "qemu": ("qemu_machine", "qemu_cpu", "ticks_per_instruction"),
    "serial": ("serial_port", "baudrate"),
    "ssh": ("ssh_host", "ssh_user"),
}
# Figures that must say where they come from (when not null): the field path, or for
# a mapping either its own entry or one entry per member.
NEEDS_PROVENANCE = ("clock_hz", "memory", "accelerator", "run.ticks_per_instruction")


def _fail(file, path, message):
    raise BoardError(f"{file}: field {path}: {message}")


def _type_ok(value, types) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, tuple(t for t in types if t is not bool))


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate(data, file, schema: Field = BOARD_SCHEMA, path: str = "") -> None:
    """Raise BoardError for the first value that does not match `schema`."""
    where = path or "(top level)"
    if data is None:
        if not schema.nullable:
            _fail(file, where, f"expected {schema.describe()}, got null")
        return
    if not _type_ok(data, schema.types):
        _fail(file, where, f"expected {schema.describe()}, got {type(data).__name__} {_shown(data)}")
    if schema.enum and data not in schema.enum:
        _fail(file, where, f"expected one of {', '.join(schema.enum)}, got {_shown(data)}")
    if schema.minimum is not None and data < schema.minimum:
        _fail(file, where, f"expected {schema.describe()}, got {_shown(data)}")
    if isinstance(data, str) and not data.strip():
        _fail(file, where, f"expected {schema.describe()}, got an empty string")
    if schema.check is not None and isinstance(data, str) and not schema.check(data):
        _fail(file, where, f"expected {schema.describe()}, got {_shown(data)}")
    prefix = f"{path}." if path else ""
    if schema.children:
        for key in data:
            if key not in schema.children:
                close = difflib.get_close_matches(str(key), list(schema.children), n=1, cutoff=0.6)
                hint = f" (did you mean {prefix}{close[0]}?)" if close else \
                    f"; known fields: {', '.join(schema.children)}"
                _fail(file, f"{prefix}{key}", f"unknown field{hint}")
        for key, child in schema.children.items():
            if key not in data:
                if child.required:
                    _fail(file, f"{prefix}{key}", f"missing; expected {child.describe()}")
                continue
            validate(data[key], file, child, f"{prefix}{key}")
    if schema.values is not None:
        for key, value in data.items():
            validate(value, file, schema.values, f"{prefix}{key}")
    if schema.items is not None:
        for i, item in enumerate(data):
            validate(item, file, schema.items, f"{path}[{i}]")


def _known_paths(schema: Field, prefix: str = "") -> set:
    paths = set()
    for key, child in schema.children.items():
        paths.add(prefix + key)
        if child.children and key != "provenance":
            paths |= _known_paths(child, f"{prefix}{key}.")
    return paths


def check_consistency(data: dict, file, stem: str) -> None:
    """Rules across fields, after `validate` has checked each one on its own."""
    if data["name"] != stem:
        _fail(file, "name", f"expected {stem!r} (the file name without .yaml), got {data['name']!r}")
    core, run, mem, tc = data["core"], data["run"], data["memory"], data["toolchain"]
    if data["mve"] and core != "cortex-m55":
        _fail(file, "mve", f"expected false: Helium (MVE) exists only on cortex-m55, not {core}")
    for kind, keys in RUN_KIND_KEYS.items():
        for key in keys:
            if key in run and run["kind"] != kind:
                _fail(file, f"run.{key}", f"only allowed with run.kind {kind}, not {run['kind']}")
            if run["kind"] == "qemu" and kind == "qemu" and key not in run:
                _fail(file, f"run.{key}", "missing; required with run.kind qemu")
    if core in MCU_CORES:
        for key in ("flash_bytes", "ram_bytes", "stack_bytes"):
            if mem[key] is None:
                _fail(file, f"memory.{key}", f"expected an integer for a {core} board, got null")
        if data["clock_hz"] is None:
            _fail(file, "clock_hz", f"expected the core clock in Hz for a {core} board, got null")
        for key in ("ldscript", "startup"):
            if tc[key] is None:
                _fail(file, f"toolchain.{key}", f"expected a path (boards/{stem}/...) for a {core} board, got null")
    regions = {r["name"]: r for r in mem.get("regions", [])}
    arena = mem.get("arena_region")
    if arena is not None:
        if arena not in regions:
            _fail(file, "memory.arena_region", f"expected the name of one of memory.regions "
                  f"({', '.join(regions) or 'none listed'}), got {arena!r}")
        if mem["ram_bytes"] is not None and regions[arena]["bytes"] < mem["ram_bytes"]:
            _fail(file, "memory.ram_bytes", f"expected at most the {arena} region's {regions[arena]['bytes']} bytes, "
                  f"got {mem['ram_bytes']}")
    known = _known_paths(BOARD_SCHEMA)
    prov = data["provenance"]
    for key in prov:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean provenance.{close[0]}?)" if close else ""
            _fail(file, f"provenance.{key}", f"names no board field{hint}")
    for fig in NEEDS_PROVENANCE:
        head, _, tail = fig.partition(".")
        value = data.get(head) if not tail else data[head].get(tail)
        if value is None or (isinstance(value, dict) and all(v is None for v in value.values())):
            continue  # nothing stated, nothing to source
        covered = fig in prov or (isinstance(value, dict)
                                   and all(f"{fig}.{k}" in prov for k, v in value.items() if v is not None))
        if not covered:
            _fail(file, f"provenance.{fig}", f"missing; every figure must say where it comes from "
                  "(datasheet, QEMU source, measurement, or what it is estimated from)")

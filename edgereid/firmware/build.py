"""build_firmware: .tflite -> C project -> make -> size report checked against the board."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edgereid.atomic import output_dir
from edgereid.boards import load_board
from edgereid.errors import BoardError, FirmwareError
from edgereid.firmware import codegen
from edgereid.firmware.codegen import BoardSpec
from edgereid.tflite.ir import Graph
from edgereid.firmware.lowering import Layer, lower_graph
from edgereid.firmware.planner import Schedule, plan
from edgereid.firmware.patches import plan_with_patches
from edgereid.firmware.frontend import read_tflite
from edgereid.firmware.toolchain import Toolchain

# An output folder is replaced as a whole (edgereid.atomic.output_dir): only while it is
# missing, empty, or holds nothing but what edgereid wrote there (.edgereid-files.json).
_OUT_WHAT = "firmware output folder"
SANITIZE_FLAGS = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"


def board_spec(board) -> BoardSpec:
    """A BoardSpec from a BoardSpec, an edgereid.boards.Board, a board name or a YAML path."""
    if isinstance(board, BoardSpec):
        return board
    if board is None:
        board = "host"
    if isinstance(board, (str, os.PathLike)):
        board = load_board(board)
    tc, mem = board.toolchain, board.memory
    return BoardSpec(name=board.name, core=board.core, cc=tc.cc, cflags=tuple(tc.cflags),
                     ldscript=board.resolve(tc.ldscript), startup=board.resolve(tc.startup),
                     flash_bytes=mem.flash_bytes, ram_bytes=mem.ram_bytes, stack_bytes=mem.stack_bytes)


@dataclass
class SizeReport:
    text: int
    data: int
    bss: int
    arena_bytes: int
    stack_bytes: int

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def ram_bytes(self) -> int:
        """Static RAM (.data + .bss, the arena included) plus the reserved stack."""
        return self.data + self.bss + self.stack_bytes


@dataclass
class BuildResult:
    out_dir: Path
    executable: Path
    board: BoardSpec
    size: SizeReport
    schedule: Schedule
    layers: list[Layer]
    graph: Graph


def generate(graph: Graph, board, out_dir, hil: bool = False, layers: list[Layer] | None = None,
             schedule: Schedule | None = None, dsp: bool = True) -> Path:
    """Write the C project for `graph` into `out_dir` (replaced as a whole, never half-written;
    an `out_dir` holding files edgereid did not write is a FirmwareError that names them)."""
    spec = board_spec(board)
    layers = layers if layers is not None else lower_graph(graph)
    schedule = schedule if schedule is not None else plan(graph, layers)
    model_bytes = Path(graph.source).read_bytes() if graph.source and Path(graph.source).is_file() else b""
    with output_dir(out_dir, FirmwareError, what=_OUT_WHAT) as project:
        codegen.write_project(graph, layers, schedule, spec, project, model_bytes, Path(graph.source).name, hil=hil,
                              dsp=dsp)
    return Path(out_dir)


# ---- object cache: many builds of one firmware, differing only in the model ------------

_MODEL_FILES = ("model.c", "main.c", "model.h")


def _cacheable_sources(project: Path) -> list[Path]:
    """C sources whose object does not depend on the model: everything but model.c, main.c
    and any file that includes model.h (hil_main.c)."""
    out = []
    for src in sorted(project.rglob("*.c")):
        rel = src.relative_to(project)
        if rel.parts[0] == "build" or rel.name in _MODEL_FILES or b"model.h" in src.read_bytes():
            continue
        out.append(src)
    return out


def _object_key(project: Path, src: Path, common: bytes) -> str:
    h = hashlib.sha256(common)
    h.update(src.relative_to(project).as_posix().encode() + b"\0" + src.read_bytes())
    return h.hexdigest()


def _common_key(project: Path, extra_cflags: str) -> bytes:
    """Everything besides the source that goes into its object: compiler and flags (the
    Makefile, minus its list of model sources) and every header of the project but model.h."""
    h = hashlib.sha256(extra_cflags.encode() + b"\0")
    mk = [l for l in (project / "Makefile").read_text().splitlines() if not l.startswith("MODEL_SRCS")]
    h.update("\n".join(mk).encode())
    for hdr in sorted(project.rglob("*.h")):
        rel = hdr.relative_to(project)
        if rel.parts[0] != "build" and rel.name != "model.h":
            h.update(b"\0" + rel.as_posix().encode() + b"\0" + hdr.read_bytes())
    return h.digest()


def _restore_objects(project: Path, cache: Path, extra_cflags: str) -> dict[Path, Path]:
    """Copy cached objects into project/build; returns {object path: cache file} of the
    ones still to compile (make builds them; _store_objects keeps them)."""
    common = _common_key(project, extra_cflags)
    stamp = time.time()
    # sources and headers 2 s in the past, restored objects 1 s: make sees them up to date
    for f in project.rglob("*"):
        if f.is_file():
            os.utime(f, (stamp - 2, stamp - 2))
    missing = {}
    for src in _cacheable_sources(project):
        obj = project / "build" / src.relative_to(project).with_suffix(".o")
        cached = cache / f"{_object_key(project, src, common)}.o"
        if cached.is_file():
            obj.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, obj)
            os.utime(obj, (stamp - 1, stamp - 1))
        else:
            missing[obj] = cached
    return missing


def _store_objects(missing: dict[Path, Path]) -> None:
    for obj, cached in missing.items():
        if obj.is_file():
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.{id(obj)}.tmp")
            shutil.copyfile(obj, tmp)
            os.replace(tmp, cached)  # atomic: parallel builds may store the same object


def _run_make(project: Path, spec: BoardSpec, extra_cflags: str, object_cache: Path | None = None) -> None:
    if shutil.which(spec.cc) is None:
        raise FirmwareError(f"board {spec.name}: C compiler '{spec.cc}' not found on PATH "
                            "(install it, e.g. apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    if shutil.which("make") is None:
        raise FirmwareError("'make' not found on PATH")
    args = ["make", "-C", str(project), "-j1"]
    if extra_cflags:
        args += [f"EXTRA_CFLAGS={extra_cflags}", f"EXTRA_LDFLAGS={extra_cflags}"]
    missing = {}
    if object_cache is not None:
        Path(object_cache).mkdir(parents=True, exist_ok=True)
        missing = _restore_objects(project, Path(object_cache), extra_cflags)
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode == 0 and missing:
        _store_objects(missing)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        # The linker stops before `size` can run when a memory region overflows: report it as a fit
        # problem with ld's own numbers, not as a build failure.
        overflows = [m for m in (_LD_OVERFLOW.search(l) for l in lines) if m]
        if overflows:
            raise DoesNotFitError(f"model does not fit board {spec.name}: " + "; ".join(
                f"linker region {m.group(1)} overflowed by {_kib(int(m.group(2)))}" for m in overflows))
        errors = [l.strip() for l in lines if "error:" in l or "undefined reference" in l] or lines[-3:]
        raise FirmwareError(f"building the firmware for board {spec.name} failed (make exit {proc.returncode}): "
                            + " | ".join(errors[:3]))


_LD_OVERFLOW = re.compile(r"region [`'](\S+)' overflowed by (\d+) bytes")


def measure_size(executable: Path, spec: BoardSpec, arena_bytes: int) -> SizeReport:
    tool = Toolchain.of(spec).size_tool
    if shutil.which(tool) is None:
        raise FirmwareError(f"'{tool}' not found on PATH (needed for the size report)")
    proc = subprocess.run([tool, str(executable)], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or len(lines) < 2:
        raise FirmwareError(f"{tool} {executable} failed: {proc.stderr.strip()}")
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return SizeReport(text, data, bss, arena_bytes, spec.stack_bytes or 0)


def _kib(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n >= 10 * 1024 else f"{n / 1024:.1f} KiB"


class DoesNotFitError(FirmwareError):
    """The built image is larger than the board's flash or RAM budget."""


def check_fit(size: SizeReport, spec: BoardSpec) -> None:
    for what, need, have in (("flash", size.flash_bytes, spec.flash_bytes), ("RAM", size.ram_bytes, spec.ram_bytes)):
        if have is not None and need > have:
            raise DoesNotFitError(f"model needs {_kib(need)} {what}, board {spec.name} has {_kib(have)} "
                                f"(over by {_kib(need - have)})")


def build_firmware(model_path, board, out_dir, hil: bool = False, sanitize: bool = False,
                   dsp: bool = True, object_cache: Path | None = None, patches: str = "off",
                   ram_budget: int | None = None) -> BuildResult:
    """Generate, compile and size-check; on any failure `out_dir` is left as it was.

    `out_dir` is replaced as a whole, so it must be missing, empty or an earlier output
    (it holds only what edgereid wrote there); anything else is a FirmwareError naming
    the files that would be lost.

    hil=True builds the HIL app with the per-layer hook; dsp=False compiles the
    kernels' portable loops (-DEREID_NO_DSP) on a core that has the DSP extension.
    `object_cache`: a folder of object files shared by many builds (e.g. one profile
    run): objects that do not depend on the model (kernels, board runtime, HIL
    protocol) are keyed by a digest of their source, every header but model.h and
    the Makefile's flags, and copied instead of compiled."""
    spec = board_spec(board)
    if sanitize and spec.is_cortex_m:
        raise FirmwareError(f"sanitize=True builds run on the host only, board {spec.name} is {spec.core}")
    graph = read_tflite(model_path)
    layers = lower_graph(graph)
    # patches="auto": the leading layers patch by patch when that lowers the arena (or meets
    # ram_budget, bytes of arena) at the least recomputation: edgereid.firmware.patches
    schedule = plan_with_patches(graph, layers, patches, ram_budget)
    out_dir = Path(out_dir)
    with output_dir(out_dir, FirmwareError, what=_OUT_WHAT) as project:
        codegen.write_project(graph, layers, schedule, spec, project, Path(model_path).read_bytes(),
                              Path(model_path).name, hil=hil, dsp=dsp)
        if sanitize:  # bake the flags in, so `make` in the output folder rebuilds the same binary
            mk = project / "Makefile"
            mk.write_text(mk.read_text().replace("EXTRA_CFLAGS =\n", f"EXTRA_CFLAGS = {SANITIZE_FLAGS}\n")
                          .replace("EXTRA_LDFLAGS =\n", f"EXTRA_LDFLAGS = {SANITIZE_FLAGS}\n"))
        _run_make(project, spec, "", object_cache)
        exe_name = Toolchain.of(spec).target
        size = measure_size(project / exe_name, spec, schedule.arena_bytes)
        check_fit(size, spec)
    return BuildResult(out_dir, out_dir / exe_name, spec, size, schedule, layers, graph)


def _patch_lines(sched: Schedule) -> list[str]:
    if not sched.patches:
        return []
    first = sched.patches[0].report(sched.arena_bytes)
    stages = "; ".join(f"ops {sp.start}..{sp.end - 1} in {sp.patches} stripes" for sp in sched.patches)
    extra = sum(sp.recomputed_macs for sp in sched.patches)
    return [f"patches: {stages}: arena {sched.arena_bytes:,} B = "
            f"{sched.arena_bytes / max(1, first['lower_bound_bytes']):.2f}x the per-layer lower bound "
            f"{first['lower_bound_bytes']:,} B (per-layer arena {first['unpatched_arena_bytes']:,} B); recomputed "
            f"MACs {extra:,} ({100.0 * extra / max(1, sched.patches[0].model_macs):.2f}% of the model)"]


def format_report(result: BuildResult) -> str:
    s, sched = result.size, result.schedule
    rows = [f"{'#':>3}  {'op':<22} {'MACs':>12} {'weights B':>10} {'live arena B':>12}"]
    for r in sched.layers:
        alias = " (alias)" if r.index in sched.aliased_layers else ""
        rows.append(f"{r.index:>3}  {(r.kind + alias):<22} {r.macs:>12,} {r.weight_bytes:>10,} {r.live_bytes:>12,}")
    spec = result.board
    budget = lambda have: f" of {have:,}" if have else ""
    rows += [
        f"total MACs {sum(l.macs for l in result.layers):,}; weights+params {sum(l.weight_bytes for l in result.layers):,} B",
        f"arena {sched.arena_bytes:,} B (sum of activations {sched.sum_activation_bytes:,} B, "
        f"lower bound {sched.lower_bound_bytes:,} B)",
        *_patch_lines(sched),
        f"flash {s.flash_bytes:,} B{budget(spec.flash_bytes)} (text {s.text:,} + data {s.data:,})",
        f"RAM {s.ram_bytes:,} B{budget(spec.ram_bytes)} (data {s.data:,} + bss {s.bss:,} [arena {s.arena_bytes:,}] "
        f"+ stack {s.stack_bytes:,})",
    ]
    return "\n".join(rows)


__all__ = ["BuildResult", "DoesNotFitError", "SizeReport", "board_spec", "build_firmware", "check_fit", "format_report",
           "generate", "measure_size", "BoardError"]

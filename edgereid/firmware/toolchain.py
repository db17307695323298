"""One description of how firmware C is compiled and linked for a board.

Both build paths use it: the Makefile of a generated project (codegen.makefile, what
build_firmware runs) and the HIL image build from a folder of sources
(edgereid.hil.image.compile_image). Same compiler, same flags, same include folders in
the same order, same link options; only where the folders are differs (relative to the
project, or inside the shipped firmware/ sources).

    compile:  CC  STD_CFLAGS  <board toolchain.cflags>  -I<dirs>  -D<defines>  <extra>
    link:     bare metal (Cortex-M): <board cflags> -T <ldscript> BARE_METAL_LDFLAGS
              -Wl,--defsym=__stack_size=<memory.stack_bytes>; LDLIBS
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgereid.boards import trust
from edgereid.errors import FirmwareError

# ISO C mode (gcc then defaults to -ffp-contract=off, spelled out anyway: the float steps of
# QUANTIZE and RESIZE_NEAREST_NEIGHBOR must not be fused into FMAs), warnings are errors.
STD_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-ffp-contract=off")
# The vector table is the entry (no crt0); newlib-nano with stub syscalls; unused sections dropped.
BARE_METAL_LDFLAGS = ("-nostartfiles", "-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs")
LDLIBS = ("-lm",)

# Include folders of a firmware build, in order, by their name in a generated project:
# the model's own folder, the kernel API, the kernels' private headers, then (bare metal)
# the board's files, then the board runtime (bare metal, or a hosted HIL build: its
# board layer is runtime/host), then (HIL) the HIL app.
MODEL_DIR, INCLUDE_DIR, BOARD_DIR, RUNTIME_DIR, HIL_DIR = ".", "include", "board", "runtime", "hil"


def defines(hil: bool, dsp: bool) -> list[str]:
    """Macros (without -D) of a firmware build.

    HIL images report per-layer counts, so their model.c calls the layer hook;
    dsp=False compiles the kernels' portable loops even where __ARM_FEATURE_DSP is
    set, so both paths can be measured on the same core."""
    return (["EREID_LAYER_HOOK"] if hil else []) + ([] if dsp else ["EREID_NO_DSP"])


def kernel_header_dirs(kernels_dir: Path) -> list[str]:
    """Folders (relative to firmware/, e.g. "kernels/support") holding the kernels' headers."""
    return sorted({f"kernels/{h.relative_to(kernels_dir).parent.as_posix()}" for h in kernels_dir.rglob("*.h")})


def include_dirs(kernel_headers: list[str], bare_metal: bool, runtime: bool, hil: bool) -> list[str]:
    """The include folders by their project name, in order (see the module doc)."""
    dirs = [MODEL_DIR, INCLUDE_DIR, *kernel_headers]
    if bare_metal:
        dirs.append(BOARD_DIR)
    if runtime and (bare_metal or hil):
        dirs.append(RUNTIME_DIR)
    if hil:
        dirs.append(HIL_DIR)
    return dirs


@dataclass(frozen=True)
class Toolchain:
    board: str
    cc: str
    board_cflags: tuple[str, ...]
    bare_metal: bool                    # Cortex-M: linker script, start-up file, no OS
    stack_bytes: int | None = None

    def __post_init__(self):
        # cc and the board's flags are written into a Makefile as they are: each must be one
        # plain word (boards.trust), whether it came from a board file (checked there too)
        # or from a BoardSpec made in code, so that no `$(shell ...)` or `;` ever reaches make.
        if not trust.is_program(self.cc):
            raise FirmwareError(f"board {self.board}: toolchain.cc {self.cc!r} is not {trust.PROGRAM_RULE}")
        for flag in self.board_cflags:
            if not trust.is_flag(flag):
                raise FirmwareError(f"board {self.board}: toolchain.cflags entry {flag!r} is not {trust.FLAG_RULE}")

    @classmethod
    def of(cls, board) -> "Toolchain":
        """From a codegen.BoardSpec or an edgereid.boards.Board."""
        if hasattr(board, "toolchain"):
            return cls(board.name, board.toolchain.cc, tuple(board.toolchain.cflags), board.core.startswith("cortex-m"),
                       board.memory.stack_bytes)
        return cls(board.name, board.cc, tuple(board.cflags), board.is_cortex_m, board.stack_bytes)

    @property
    def size_tool(self) -> str:
        return "arm-none-eabi-size" if self.bare_metal else "size"

    @property
    def target(self) -> str:
        return "firmware.elf" if self.bare_metal else "firmware"

    def stack_ldflags(self) -> list[str]:
        return [f"-Wl,--defsym=__stack_size={self.stack_bytes}"] if self.bare_metal and self.stack_bytes else []

    def cflags(self, include: list = (), macros: list = (), extra: list = (), board: list | None = None) -> list[str]:
        """Compile flags; `board` stands in for the board's cflags (the Makefile passes "$(BOARD_CFLAGS)")."""
        board = self.board_cflags if board is None else board
        return [*STD_CFLAGS, *board, *(f"-I{d}" for d in include), *(f"-D{m}" for m in macros), *extra]

    def ldflags(self, ldscript, board: list | None = None) -> list[str]:
        """Link flags (besides the compile flags, which the link line repeats)."""
        if not self.bare_metal:
            return []
        board = self.board_cflags if board is None else board
        return [*board, "-T", str(ldscript), *BARE_METAL_LDFLAGS, *self.stack_ldflags()]

    def build_command(self, sources: list, out, include: list = (), macros: list = (), ldscript=None,
                      extra_cflags: list = (), extra_ldflags: list = ()) -> list[str]:
        """One compile-and-link command, as the Makefile's `$(CC) $(CFLAGS) ... $(LDFLAGS) -o $@ $(LDLIBS)`."""
        return [self.cc, *self.cflags(include, macros, extra_cflags), *map(str, sources),
                *self.ldflags(ldscript), *extra_ldflags, "-o", str(out), *LDLIBS]

"""Compile a HIL image: board startup + runtime + HIL firmware + a model's C files; for
the host board, the hosted board layer (firmware/runtime/host) instead of start-up code,
giving an executable that speaks the protocol on stdin/stdout.

edgereid.firmware.build_firmware(..., hil=True) is the normal way to get one from a
.tflite; this builds the same image from any folder holding model.h and .c files
(used for board bring-up and for the test fixtures). Both compile with the one toolchain
description of edgereid.firmware.toolchain: same compiler, flags, include folders (in
the same order) and link options as the generated Makefile.
"""
import shutil
import subprocess
from pathlib import Path

from edgereid.errors import FirmwareError
from edgereid.firmware import toolchain as tc
from edgereid.resources import firmware_dir

# The shipped C sources (a checkout's firmware/, or the installed package data).
RUNTIME_DIR = firmware_dir() / "runtime"
HIL_DIR = firmware_dir() / "hil"
HOST_RUNTIME_DIR = RUNTIME_DIR / "host"   # the hosted board layer (stdin/stdout, ns counter)


def board_sources(board) -> tuple[list[Path], list[Path]]:
    """(sources, include dirs) of the board runtime: startup.c + ereid_board.c on a
    Cortex-M board, the hosted board layer on any other."""
    if not board.is_mcu:
        return sorted(HOST_RUNTIME_DIR.glob("*.c")), [RUNTIME_DIR]
    startup = board.resolve(board.toolchain.startup)
    if startup is None or not startup.is_file():
        raise FirmwareError(f"board {board.name}: toolchain.startup {board.toolchain.startup} does not exist")
    return [startup, RUNTIME_DIR / "ereid_board.c"], [startup.parent, RUNTIME_DIR]


def image_include_dirs(board, model_dir: Path, hil: bool = True) -> list[Path]:
    """The include folders of a generated project (toolchain.include_dirs, same order), where
    they are here: the model folder, then the shipped firmware/ and board folders."""
    fw = firmware_dir()
    where = {tc.MODEL_DIR: Path(model_dir), tc.INCLUDE_DIR: fw / "include",
             tc.RUNTIME_DIR: RUNTIME_DIR, tc.HIL_DIR: HIL_DIR}
    if board.is_mcu:
        where[tc.BOARD_DIR] = board.resolve(board.toolchain.startup).parent
    names = tc.include_dirs(tc.kernel_header_dirs(fw / "kernels"), board.is_mcu,
                            (RUNTIME_DIR / "ereid_startup.h").exists(), hil)
    return [where.get(name, fw / name) for name in names]


def compile_image(board, sources, include_dirs, out_elf, defines=(), extra_cflags=()) -> Path:
    """Compile and link `sources` with the board runtime into `out_elf` (on the host board:
    an executable), with the toolchain description the generated Makefile uses
    (edgereid.firmware.toolchain); `include_dirs` come before the board runtime's."""
    chain = tc.Toolchain.of(board)
    if shutil.which(chain.cc) is None:
        hint = "install gcc-arm-none-eabi and libnewlib-arm-none-eabi" if board.is_mcu else "install it"
        raise FirmwareError(f"{chain.cc} not found: {hint}")
    ldscript = None
    if board.is_mcu:
        ldscript = board.resolve(board.toolchain.ldscript)
        if ldscript is None or not ldscript.is_file():
            raise FirmwareError(f"board {board.name}: toolchain.ldscript {board.toolchain.ldscript} does not exist")
    runtime_sources, runtime_includes = board_sources(board)
    out_elf = Path(out_elf)
    out_elf.parent.mkdir(parents=True, exist_ok=True)
    includes = list(dict.fromkeys([*map(Path, include_dirs), *runtime_includes]))
    tmp = out_elf.with_name(f".{out_elf.name}.tmp")
    cmd = chain.build_command([*runtime_sources, *map(Path, sources)], tmp, includes, list(defines), ldscript,
                              extra_cflags=list(extra_cflags),
                              extra_ldflags=[f"-Wl,-Map={out_elf.with_suffix('.map')}"])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise FirmwareError(f"building {out_elf.name} for {board.name} failed:\n{proc.stderr.strip()[-4000:]}")
    tmp.replace(out_elf)  # atomic: a reader never sees half an image
    return out_elf


def build_hil_image(board, model_dir, out_elf, extra_sources=(), layer_hook=True, dsp=True,
                    extra_cflags=()) -> Path:
    """HIL firmware (firmware/hil) + every .c in `model_dir` (which holds model.h).
    extra_cflags: e.g. sanitizer flags for a host build (they go to the link too)."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.h").is_file():
        raise FirmwareError(f"{model_dir} has no model.h: expected a generated model project")
    sources = [HIL_DIR / "hil_main.c", HIL_DIR / "hil_protocol.c",
               *sorted(model_dir.glob("*.c")), *map(Path, extra_sources)]
    return compile_image(board, sources, image_include_dirs(board, model_dir), out_elf,
                         defines=tc.defines(hil=layer_hook, dsp=dsp), extra_cflags=extra_cflags)

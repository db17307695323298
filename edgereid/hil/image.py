"""Compile a HIL image: board startup + runtime + HIL firmware + a model's C files.

edgereid.firmware.build_firmware(..., hil=True) is the normal way to get one from a
.tflite; this builds the same image from any folder holding model.h and .c files
(used for board bring-up and for the test fixtures).
"""
import shutil
import subprocess
from pathlib import Path

from edgereid.errors import FirmwareError

REPO = Path(__file__).resolve().parent.parent.parent
RUNTIME_DIR = REPO / "firmware" / "runtime"
HIL_DIR = REPO / "firmware" / "hil"

# Warnings are errors; each function and object in its own section so the
# linker drops what the image does not call.
BASE_CFLAGS = ["-std=c99", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
               "-ffunction-sections", "-fdata-sections"]
BASE_LDFLAGS = ["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections"]


def board_sources(board) -> tuple[list[Path], list[Path]]:
    """(sources, include dirs) of the board runtime: startup.c + ereid_board.c."""
    startup = board.resolve(board.toolchain.startup)
    if startup is None or not startup.is_file():
        raise FirmwareError(f"board {board.name}: toolchain.startup {board.toolchain.startup} does not exist")
    return [startup, RUNTIME_DIR / "ereid_board.c"], [startup.parent, RUNTIME_DIR]


def compile_image(board, sources, include_dirs, out_elf, defines=(), extra_cflags=()) -> Path:
    """Compile and link `sources` with the board runtime into `out_elf`."""
    if not board.is_mcu:
        raise FirmwareError(f"board {board.name} ({board.core}) is not a Cortex-M board: no bare-metal image")
    cc = shutil.which(board.toolchain.cc)
    if cc is None:
        raise FirmwareError(f"{board.toolchain.cc} not found: install gcc-arm-none-eabi and libnewlib-arm-none-eabi")
    ldscript = board.resolve(board.toolchain.ldscript)
    if ldscript is None or not ldscript.is_file():
        raise FirmwareError(f"board {board.name}: toolchain.ldscript {board.toolchain.ldscript} does not exist")
    runtime_sources, runtime_includes = board_sources(board)
    out_elf = Path(out_elf)
    out_elf.parent.mkdir(parents=True, exist_ok=True)
    stack = board.memory.stack_bytes or 16384
    cmd = [cc, *board.toolchain.cflags, *BASE_CFLAGS, *extra_cflags]
    cmd += [f"-D{d}" for d in defines]
    cmd += [f"-I{p}" for p in [*runtime_includes, *map(Path, include_dirs)]]
    cmd += [str(s) for s in [*runtime_sources, *map(Path, sources)]]
    cmd += [f"-T{ldscript}", *BASE_LDFLAGS, f"-Wl,--defsym=__stack_size={stack}",
            f"-Wl,-Map={out_elf.with_suffix('.map')}", "-o", str(out_elf)]
    tmp = out_elf.with_name(f".{out_elf.name}.tmp")
    cmd[-1] = str(tmp)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise FirmwareError(f"building {out_elf.name} for {board.name} failed:\n{proc.stderr.strip()[-4000:]}")
    tmp.replace(out_elf)  # atomic: a reader never sees half an image
    return out_elf


def build_hil_image(board, model_dir, out_elf, extra_sources=(), layer_hook=True) -> Path:
    """HIL firmware (firmware/hil) + every .c in `model_dir` (which holds model.h)."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.h").is_file():
        raise FirmwareError(f"{model_dir} has no model.h: expected a generated model project")
    sources = [HIL_DIR / "hil_main.c", HIL_DIR / "hil_protocol.c",
               *sorted(model_dir.glob("*.c")), *map(Path, extra_sources)]
    defines = ["EREID_LAYER_HOOK"] if layer_hook else []
    return compile_image(board, sources, [HIL_DIR, model_dir], out_elf, defines=defines)

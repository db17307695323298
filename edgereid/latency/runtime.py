"""Which runtime (and version) a board's latency figures belong to.

The version is what a table is checked against: LiteRT's package version on the host;
for firmware boards a digest of the C sources and generator that make the code that
runs (kernels, HIL main, board runtime, lowering), since a changed kernel changes every
count.
"""
from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from edgereid.resources import firmware_dir, package_dir

# What makes the code that runs on a firmware board, each with the name it has in the digest
# (its path in the repository, so a checkout and an installed package agree).
_GENERATOR_SOURCES = ("lowering.py", "lowering_lce.py", "codegen.py", "kernel_abi.py", "kernel_registry.py",
                      "planner.py", "toolchain.py")   # in edgereid/firmware/


def _firmware_sources() -> list[tuple[str, Path]]:
    """(name in the digest, file) for every firmware C/H source and the code generator."""
    fw = firmware_dir()
    files = [(f"firmware/{p.relative_to(fw).as_posix()}", p) for p in fw.rglob("*")
             if p.suffix in (".c", ".h", ".py") and p.is_file()]
    files.sort(key=lambda item: item[1])
    for name in _GENERATOR_SOURCES:
        path = package_dir() / "firmware" / name
        if path.is_file():
            files.append((f"edgereid/firmware/{name}", path))
    return files


@functools.lru_cache(maxsize=None)
def litert_version() -> str:
    import ai_edge_litert

    return getattr(ai_edge_litert, "__version__", "unknown")


def firmware_version() -> str:
    """'src-<12 hex>': digest of every firmware C/H source and the code generator."""
    digest = hashlib.sha256()
    for name, path in _firmware_sources():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return f"src-{digest.hexdigest()[:12]}"


@functools.lru_cache(maxsize=None)
def _tool_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return out.splitlines()[0].strip() if out else "unknown"


def runtime_of(board) -> dict:
    """{"name", "version", ...} of what runs models on `board` from this machine."""
    kind = board.run.kind
    if kind == "local":
        return {"name": "ai-edge-litert", "version": litert_version(), "threads": 1,
                "resolver": "BUILTIN (default XNNPACK delegate)"}
    if kind in ("qemu", "serial") or board.is_mcu:
        rt = {"name": "edgereid-firmware", "version": firmware_version(),
              "compiler": _tool_version(board.toolchain.cc)}
        if kind == "qemu":
            rt["emulator"] = _tool_version("qemu-system-arm") + " -icount shift=0"
        return rt
    # ssh boards: the board-side script reports its runtime when profiling; nothing to compare before.
    return {"name": "ai-edge-litert or tflite-runtime (on the board)", "version": None}

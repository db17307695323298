#!/usr/bin/env python3
"""Digest the code that a board's latency table measured, one entry at a time.

A QEMU latency entry counts the instructions run between the HIL main's two counter
reads around `ereid_model_invoke`: the model, its kernels, the layer hook, the counter
and SysTick functions. If, for every entry's image, those functions disassemble to the
same instructions (addresses left out: the HIL protocol code around them may move
them) and the constant data (.rodata) is byte-identical under two versions of the
firmware sources, the table measured what the new sources run and need not be
profiled again. This script writes {table key: digest} for one board; run it under two
source trees (PYTHONPATH=<other checkout>) and compare the two files with --compare.

    python tools/firmware_code_digest.py --board mps2-an386 --out new.json
    PYTHONPATH=/path/to/old/checkout python tools/firmware_code_digest.py --board mps2-an386 --out old.json
    python tools/firmware_code_digest.py --compare old.json new.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def _build_model_bytes(spec: dict) -> bytes:
    try:
        from edgereid.tflite.builder import build_model
    except ImportError:  # source trees before the tflite package
        from edgereid.firmware.tflite_builder import build_model
    return build_model(spec)


# Functions outside the measured span: start-up, the HIL protocol, UART and board set-up.
_UNMEASURED = re.compile(r"^(Default_Handler|Reset_Handler|main|check_request|reply_\w*|replay_\w*|"
                         r"ereid_board_\w*|ereid_crc32\w*|ereid_hil_\w*|ereid_uart_\w*|uart_\w*)$")
_FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_ADDRESS = re.compile(r"\b[0-9a-f]+\b(?= <)")             # a target address before its <sym+off>
# Constant data outside the model: the protocol's tables, the vector table, pointer tables.
_UNMEASURED_DATA = re.compile(r"^(crc_\w*|ereid_vector_table|ereid_model_layer_names)$")


def _measured_code(elf: Path, objdump: str) -> str:
    """The measured functions' instructions, by name, without addresses or literal pools."""
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(elf)], check=True, capture_output=True,
                          text=True).stdout
    functions, name = {}, None
    for line in text.splitlines():
        head = _FUNCTION.match(line)
        if head:
            name = head.group(1)
            functions[name] = []
        elif name and ":\t" in line:
            insn = line.split(":\t", 1)[1].strip()
            # Literal pools hold addresses, and alignment fill shows as words too: neither runs.
            if not insn.startswith(".word"):
                functions[name].append(_ADDRESS.sub("", insn))
    return "\n".join(f"{n}:\n" + "\n".join(body) for n, body in sorted(functions.items())
                     if not _UNMEASURED.match(n))


def _model_constants(elf: Path, objcopy: str) -> bytes:
    """Every named object in .rodata that the model reads (params, dims, weights), by name.

    Words that hold an address inside the image (pointers to weight arrays, the arena) are
    masked: the linker may order the arrays differently without changing one instruction."""
    tool = objcopy.replace("objcopy", "")
    heads = subprocess.run([tool + "objdump", "-h", str(elf)], check=True, capture_output=True, text=True).stdout
    sections = {}
    for line in heads.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0].isdigit():
            sections[fields[1]] = (int(fields[3], 16), int(fields[2], 16))   # name -> (vma, size)
    vma = sections[".rodata"][0]
    symbols = subprocess.run([tool + "nm", "-S", "--defined-only", str(elf)], check=True, capture_output=True,
                             text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rodata.bin"
        subprocess.run([objcopy, "-O", "binary", "--only-section=.rodata", str(elf), str(out)], check=True)
        data = out.read_bytes()
    # Pointers in the model's constants hold the address of a named object (weights, the
    # arena) or a place inside the arena (.bss); weight values that look like addresses of
    # the other section ranges are left alone.
    bss = sections.get(".bss", (0, 0))
    addresses = {int(line.split()[0], 16) for line in symbols.splitlines()
                 if len(line.split()) == 4 and line.split()[2] in "rRdDbB"}
    parts = []
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "rR" and not _UNMEASURED_DATA.match(fields[3]):
            start, size = int(fields[0], 16) - vma, int(fields[1], 16)
            if not 0 <= start < len(data):
                continue
            body = bytearray(data[start:start + size])
            for at in range((-(start + vma)) % 4, len(body) - 3, 4):
                value = int.from_bytes(body[at:at + 4], "little")
                if value in addresses or bss[0] <= value < bss[0] + bss[1]:
                    body[at:at + 4] = b"ADDR"
            parts.append(fields[3].encode() + b"=" + bytes(body))
    return b"\n".join(sorted(parts))


def _text_digest(elf: Path, objcopy: str) -> str:
    digest = hashlib.sha256(_measured_code(elf, objcopy.replace("objcopy", "objdump")).encode())
    digest.update(_model_constants(elf, objcopy))
    return digest.hexdigest()


def digest_table(board_name: str, limit: int | None = None) -> dict:
    from edgereid.boards import load_board
    from edgereid.firmware import build_firmware
    from edgereid.latency import kernels, micromodels
    from edgereid.latency.table import load_table

    board = load_board(board_name)
    table = load_table(board)
    objcopy = board.toolchain.cc.replace("gcc", "objcopy")
    keys = sorted(table.entries)[:limit]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "objects"
        cache.mkdir()
        specs = [("overhead-chain-%d" % n, micromodels.overhead_chain_spec(n)) for n in (1, 4)]
        specs += [(key, micromodels.micro_model_spec(kernels.parse_key(key))) for key in keys]
        for i, (key, spec) in enumerate(specs):
            model = tmp / "m.tflite"
            model.write_bytes(_build_model_bytes(spec))
            result = build_firmware(model, board, tmp / f"fw{i}", hil=True, object_cache=cache)
            elf = getattr(result, "elf", None) or (tmp / f"fw{i}" / "firmware.elf")
            out[key] = _text_digest(Path(elf), objcopy)
            print(f"[{i + 1}/{len(specs)}] {key} {out[key][:12]}", file=sys.stderr, flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = ap.parse_args()
    if args.compare:
        old, new = (json.loads(p.read_text()) for p in args.compare)
        keys = sorted(set(old) | set(new))
        differ = [k for k in keys if old.get(k) != new.get(k)]
        print(f"{len(keys) - len(differ)} of {len(keys)} images run identical measured code; {len(differ)} differ")
        for k in differ[:20]:
            print(f"  differs: {k}")
        return 1 if differ else 0
    if not (args.board and args.out):
        ap.error("--board and --out are required (or --compare OLD NEW)")
    args.out.write_text(json.dumps(digest_table(args.board, args.limit), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

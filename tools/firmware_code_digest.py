#!/usr/bin/env python3
"""Digest the code that a board's latency table measured, one entry at a time.

A QEMU latency entry counts the instructions of one micro-model's HIL image. If every
entry's image has the same executable bytes (.text) under two versions of the
firmware sources, the table measured what the new sources run, and need not be
profiled again. This script writes {table key: sha256 of .text} for one board; run it
under two source trees (PYTHONPATH=<other checkout>) and compare the two files with
--compare.

    python tools/firmware_code_digest.py --board mps2-an386 --out new.json
    PYTHONPATH=/path/to/old/checkout python tools/firmware_code_digest.py --board mps2-an386 --out old.json
    python tools/firmware_code_digest.py --compare old.json new.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
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


def _text_digest(elf: Path, objcopy: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "text.bin"
        subprocess.run([objcopy, "-O", "binary", "--only-section=.text", str(elf), str(out)], check=True)
        return hashlib.sha256(out.read_bytes()).hexdigest()


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
        print(f"{len(keys) - len(differ)} of {len(keys)} images have identical .text; {len(differ)} differ")
        for k in differ[:20]:
            print(f"  differs: {k}")
        return 1 if differ else 0
    if not (args.board and args.out):
        ap.error("--board and --out are required (or --compare OLD NEW)")
    args.out.write_text(json.dumps(digest_table(args.board, args.limit), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

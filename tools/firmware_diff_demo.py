#!/usr/bin/env python3
"""The per-layer diff (edgereid diff) on a model with an injected kernel bug.

    .venv/bin/python tools/firmware_diff_demo.py [--out docs/results/firmware_diff.md]

A five-layer int8 model (conv 3x3 s2, depthwise 3x3, max pool, reshape, conv 1x1) runs on
the host build (ASan + UBSan) and on QEMU mps2-an386 (Cortex-M4), first as generated, then
with the project's copy of the MAX_POOL_2D kernel wrapped so it flips one bit of one
output byte (edgereid.hil.diff.flip_kernel_output). The tool must name layer 2.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.atomic import write_text  # noqa: E402

SPEC = {
    "name": "diff_demo", "seed": 3,
    "inputs": [{"name": "x", "shape": [1, 32, 16, 3], "scale": 0.05, "zero_point": -3}],
    "ops": [{"op": "CONV_2D", "filters": 8, "kernel": [3, 3], "stride": [2, 2], "padding": "SAME",
             "activation": "RELU6"},
            {"op": "DEPTHWISE_CONV_2D", "kernel": [3, 3], "stride": [1, 1], "padding": "SAME"},
            {"op": "MAX_POOL_2D", "kernel": [2, 2], "stride": [2, 2], "padding": "VALID"},
            {"op": "RESHAPE", "shape": [1, 4, 8, 8]},
            {"op": "CONV_2D", "filters": 16, "kernel": [1, 1], "stride": [1, 1], "padding": "SAME"}],
}
BUGGY_LAYER, FLIPPED_BYTE = 2, 5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs/results/firmware_diff.md")
    args = ap.parse_args(argv)
    from edgereid.hil.diff import diff_firmware, flip_kernel_output
    from edgereid.tflite.builder import build_model

    command = "  ".join([".venv/bin/python tools/firmware_diff_demo.py", *map(shlex.quote, argv or [])]).strip()
    sections, ok = [], True
    with tempfile.TemporaryDirectory(prefix="edgereid-diff-demo-") as tmp:
        model = Path(tmp) / "diff_demo.tflite"
        model.write_bytes(build_model(SPEC))
        for board, sanitize in (("host", True), ("mps2-an386", False)):
            for bug in (False, True):
                edit = flip_kernel_output(BUGGY_LAYER, FLIPPED_BYTE) if bug else None
                r = diff_firmware(model, board, seed=1, sanitize=sanitize, edit_project=edit)
                first = r.first_differing
                named = first.layer if first else None
                ok &= named == (BUGGY_LAYER if bug else None)
                title = f"{board}{' (ASan+UBSan)' if sanitize else ''}, " + \
                    (f"MAX_POOL_2D kernel flips bit 0 of output byte {FLIPPED_BYTE}" if bug else "as generated")
                sections += [f"## {title}", "", "```", r.format().replace(str(model), "diff_demo.tflite"), "```", ""]
    text = "\n".join([
        "# Per-layer numeric diff (`edgereid diff`) on an injected kernel bug", "",
        f"Command: `{command}` (the equivalent CLI on any model: "
        "`edgereid diff MODEL.tflite --board mps2-an386 --input 1 --out DIR`)", "",
        "The model: conv 3x3 s2 + RELU6 -> depthwise 3x3 -> max pool 2x2 -> reshape -> conv 1x1, "
        "input 1x32x16x3 int8, seed 1. The bug: the generated project's copy of the kernel layer "
        f"{BUGGY_LAYER} runs is wrapped so it flips bit 0 of output byte {FLIPPED_BYTE} "
        "(`edgereid.hil.diff.flip_kernel_output`). Every layer's outputs are streamed from the "
        "layer hook of the HIL image (`-DEREID_LAYER_DUMP`, DUMP request) and compared with LiteRT "
        "BUILTIN_REF run with `experimental_preserve_all_tensors`.", "",
        f"Result: the tool names layer {BUGGY_LAYER} on every board: "
        f"{'yes' if ok else 'NO'}.", "", *sections])
    write_text(args.out, text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Instruction counts of int4-weight layers against the int8 layer of the same shape, on
QEMU mps2-an386 (Cortex-M4, DSP path and portable loops), in one run.

    .venv/bin/python tools/bench_firmware_int4.py [--board mps2-an386] [--n 2] [--json OUT.json]
    .venv/bin/python tools/bench_firmware_int4.py --board mps3-an547   # Cortex-M55

The "dsp" rows are the default build (the DSP paths on M4/M7; on M55 the Helium paths, which
the kernels take where they have one, the DSP paths elsewhere); "portable" builds with
EREID_NO_DSP.

Models: bench_firmware.py's layer benchmarks (bench_conv3x3_32x16x32 is DESIGN.md's
CMSIS-NN reference point, bench_conv1x1_32x16x32_to64, the 3x3 depthwise, the 512->128 FC),
each as built there (int8) and with its filter turned into INT4 by
gen_tflite_corpus.int4_filters. Both builds of each model must equal LiteRT BUILTIN_REF
byte for byte (bench_firmware.measure). Prints a Markdown table: instructions per MAC of
the MAC-bearing layer, int4 / int8.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from edgereid.atomic import write_bytes, write_text  # noqa: E402

from bench_firmware import BENCH_SPECS, MAC_OPS, measure  # noqa: E402
from gen_tflite_corpus import int4_filters  # noqa: E402

BENCH_NAMES = ("bench_conv3x3_32x16x32", "bench_conv1x1_32x16x32_to64", "bench_dwconv3x3_32x16x64",
               "bench_fc_512_to_128")


def _mac_layer(row: dict) -> dict:
    return next(layer for layer in row["layers"] if layer["op"] in MAC_OPS and layer["macs"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--n", type=int, default=2, help="random inputs per build")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="only benchmarks whose name contains this")
    ap.add_argument("--json", type=Path, default=None, help="write the measured rows here")
    args = ap.parse_args(argv)
    from edgereid.tflite.builder import build_model

    names = [n for n in BENCH_NAMES if args.only is None or args.only in n]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgereid-bench-int4-") as tmp:
        for i, name in enumerate(BENCH_SPECS):
            if name not in names:
                continue
            int8 = build_model({"name": name, "seed": 100 + i, **BENCH_SPECS[name]})
            pair = {}
            for dtype, data in (("int8", int8), ("int4", int4_filters(int8))):
                path = write_bytes(Path(tmp) / f"{name}_{dtype}.tflite", data)
                pair[dtype] = measure(path, args.board, args.n, args.seed)
                if pair[dtype]["status"] != "pass":
                    print(f"{name} {dtype}: {pair[dtype]['status']} {pair[dtype].get('message', '')}", file=sys.stderr)
            rows.append({"name": name, **pair})
    lines = [f"| layer | MACs | path | int8 instructions | int4 instructions | int8 instr/MAC | int4 instr/MAC | "
             "int4 / int8 | bit-exact (int8, int4) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if any(r[d]["status"] not in ("pass", "fail") for d in ("int8", "int4")):
            lines.append(f"| {r['name']} | - | - | {r['int8']['status']} | {r['int4']['status']} | | | | |")
            continue
        l8, l4 = _mac_layer(r["int8"]), _mac_layer(r["int4"])
        for path in ("dsp", "portable"):
            lines.append(f"| {r['name']} | {l8['macs']:,} | {path} | {l8[path]:,.0f} | {l4[path]:,.0f} | "
                         f"{l8[path] / l8['macs']:.3f} | {l4[path] / l4['macs']:.3f} | {l4[path] / l8[path]:.2f} | "
                         f"{r['int8']['status']}, {r['int4']['status']} |")
    print("\n".join(lines))
    if args.json:
        write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return 0 if all(r[d]["status"] == "pass" for r in rows for d in ("int8", "int4")) else 1


if __name__ == "__main__":
    raise SystemExit(main())

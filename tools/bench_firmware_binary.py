#!/usr/bin/env python3
"""Instruction counts of the binary (1-bit) firmware kernels on QEMU, against the int8 conv of
the same shape; writes docs/results/firmware_binary.md.

    .venv/bin/python tools/bench_firmware_binary.py [--n 1] [--jobs 2]

The layer DESIGN.md measures CMSIS-NN on: 3x3 conv, input 32x16x32 -> 32 channels, SAME
(4.72M MACs). Binary: float input -> LceQuantize -> LceBconv2d (SAME, pad_values 1) with
float, int8 or bitpacked output (the bitpacked one followed by LceDequantize so the graph
output is float); int8: tools/bench_firmware.py's bench_conv3x3_32x16x32 (CONV_2D, RELU).
Each model is built as a HIL image per configuration (board, DSP/Helium path or portable C
via -DEREID_NO_DSP) and run in QEMU 7.2 under -icount shift=0 on `--n` seeded inputs; the
per-layer counts come from the layer hook (SysTick ticks / ticks_per_instruction: 40
instructions per tick on mps2, 31.25 on mps3; instructions, not cycles). Every output is
compared with the reference run (Larq Compute Engine's interpreter for the binary models,
LiteRT BUILTIN_REF for the int8 one) byte for byte; a mismatch fails the run.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from edgereid.atomic import write_bytes, write_text  # noqa: E402

# (board, dsp, label): the optimised path of each core and the portable C on the same core.
CONFIGS = [("mps2-an386", True, "M4 (DSP + asm)"), ("mps2-an386", False, "M4 portable C"),
           ("mps2-an500", True, "M7 (DSP + asm)"), ("mps3-an547", True, "M55 (Helium)"),
           ("mps3-an547", False, "M55 portable C")]
TARGETS = {"mps2-an386": 1.5e6, "mps3-an547": 0.6e6}   # the budgets for the binary conv
CMSIS_NN = {"mps2-an386": 9.1e6, "mps2-an500": 9.1e6, "mps3-an547": 1.2e6}  # DESIGN.md, int8, DSP / Helium
SHAPE, FILTERS = (1, 32, 16, 32), 32


# Wider layers (several input words per pixel: the BiRe-ID ResNet-18 widths), optimised paths only.
WIDE = {"bconv3x3_16x16x64": ((1, 16, 16, 64), 64), "bconv3x3_8x8x256": ((1, 8, 8, 256), 256)}
WIDE_CONFIGS = [("mps2-an386", True, "M4 (DSP + asm)"), ("mps3-an547", True, "M55 (Helium)")]


def binary_conv_model(output: str, seed: int = 7, shape=SHAPE, filters: int = FILTERS) -> bytes:
    """float `shape` -> LceQuantize -> LceBconv2d 3x3 SAME pad 1 -> `filters` channels (`output`)."""
    from edgereid.tflite.builder import ModelBuilder
    from edgereid.tflite.ir import pack_bits

    rng = np.random.default_rng(seed)
    b = ModelBuilder(seed)
    n, h, w, c = shape
    x = b.tensor("x", shape, "float32")
    packed = b.tensor("x_packed", (n, h, w, (c + 31) // 32), "int32")
    signs = np.where(rng.integers(0, 2, (filters, 3, 3, c)) == 1, -1.0, 1.0)
    f = b.tensor("filter", (filters, 3, 3, (c + 31) // 32), "int32", data=pack_bits(signs))
    mult = rng.uniform(0.05, 1.0, filters) * rng.choice([-1.0, 1.0], filters)
    if output == "bitpacked":
        k = 9 * c
        t = b.tensor("threshold", (filters,), "int32", data=rng.integers(k // 2 - k // 12, k // 2 + k // 12, filters))
        inputs = [packed.index, f.index, -1, -1, t.index]
        y = b.tensor("y", (n, h, w, (filters + 31) // 32), "int32")
    else:
        m = b.tensor("mult", (filters,), "float32", data=mult)
        bias = b.tensor("bias", (filters,), "float32", data=rng.uniform(-3, 3, filters))
        inputs = [packed.index, f.index, m.index, bias.index, -1]
        q = {"scale": float(np.mean(np.abs(mult))) * np.sqrt(9 * c) / 25, "zero_point": -5} if output == "int8" else {}
        y = b.tensor("y", (n, h, w, filters), output, **q)
    b.op("CUSTOM:LceQuantize", [x.index], [packed.index])
    b.op("CUSTOM:LceBconv2d", inputs, [y.index], {
        "channels_in": c, "dilation_height_factor": 1, "dilation_width_factor": 1, "fused_activation_function": 0,
        "pad_values": 1, "padding": 0, "stride_height": 1, "stride_width": 1})
    last = y
    if output == "bitpacked":
        last = b.tensor("y_unpacked", (n, h, w, filters), "float32")
        b.op("CUSTOM:LceDequantize", [y.index], [last.index])
    return b.finish([x.index], [last.index], description=f"bench binary conv ({output} output)")


def bench_models(out_dir: Path) -> dict[str, Path]:
    from bench_firmware import BENCH_SPECS
    from edgereid.tflite.builder import build_model

    models = {f"bconv3x3_32x16x32_{o}": write_bytes(out_dir / f"bconv3x3_32x16x32_{o}.tflite", binary_conv_model(o))
              for o in ("float32", "int8", "bitpacked")}
    name = "bench_conv3x3_32x16x32"
    models["int8_conv3x3_32x16x32"] = write_bytes(out_dir / "int8_conv3x3_32x16x32.tflite",
                                                  build_model({"name": name, "seed": 100, **BENCH_SPECS[name]}))
    for wide, (shape, filters) in WIDE.items():
        models[wide] = write_bytes(out_dir / f"{wide}.tflite", binary_conv_model("float32", 11, shape, filters))
        spec = {"inputs": [{"name": "x", "shape": list(shape), "scale": 0.05, "zero_point": -3}],
                "ops": [{"op": "CONV_2D", "filters": filters, "kernel": 3, "activation": "RELU"}]}
        models[f"int8_{wide[6:]}"] = write_bytes(out_dir / f"int8_{wide[6:]}.tflite",
                                                  build_model({"name": wide, "seed": 101, **spec}))
    return models


def measure(name: str, path: Path, board: str, dsp: bool, n: int, seed: int) -> dict:
    from edgereid.hil.runner import run_hil

    with tempfile.TemporaryDirectory(prefix="edgereid-bench-binary-") as tmp:
        result = run_hil(path, board, n=n, seed=seed, out_dir=Path(tmp) / "fw", dsp=dsp)
    conv = next(layer for layer in result.per_layer if layer["name"] in ("CUSTOM:LceBconv2d", "CONV_2D"))
    return {"model": name, "board": board, "dsp": dsp, "passed": result.passed, "reference": result.reference,
            "conv": conv["median"], "total": result.count_stats()["median"],
            "layers": [(layer["name"], layer["median"]) for layer in result.per_layer]}


def report(rows: list[dict], command: str, n: int, wall_s: float) -> str:
    by = {(r["model"], r["board"], r["dsp"]): r for r in rows}
    labels = {(b, d): label for b, d, label in CONFIGS}
    models = ["bconv3x3_32x16x32_float32", "bconv3x3_32x16x32_int8", "bconv3x3_32x16x32_bitpacked",
              "int8_conv3x3_32x16x32"]
    lines = ["# Binary (1-bit) firmware kernels: instruction counts on QEMU", "",
             f"Command: `{command}`  ",
             f"Date: {datetime.date.today().isoformat()}; wall time {wall_s:.0f} s; {n} seeded input(s) per run.", "",
             "Layer: 3x3 conv, input 32x16x32 -> 32 channels, SAME padding (4,718,592 MACs; the binary "
             "conv's are 1-bit MACs, XOR + popcount). Binary models: float input -> LceQuantize -> "
             "LceBconv2d (pad_values 1) with float, int8 or bitpacked output (bitpacked: + LceDequantize). "
             "int8: tools/bench_firmware.py's bench_conv3x3_32x16x32 (CONV_2D + RELU, edgereid's int8 "
             "kernels). Each image runs in QEMU 7.2 `-icount shift=0` through the HIL protocol; counts are "
             "the layer hook's SysTick ticks / ticks_per_instruction (40 instructions per tick on mps2, "
             "31.25 on mps3): **instructions, not cycles**. Every output was compared byte for byte with "
             "the reference run (Larq Compute Engine's interpreter, reference bconv kernel, for the binary "
             "models; LiteRT BUILTIN_REF for int8).", "",
             "## The conv layer (instructions)", "",
             "| model | " + " | ".join(label for _, _, label in CONFIGS) + " |",
             "|---|" + "---|" * len(CONFIGS)]
    for m in models:
        cells = []
        for b, d, _ in CONFIGS:
            r = by.get((m, b, d))
            cells.append("-" if r is None else f"{r['conv']:,.0f}" + ("" if r["passed"] else " (MISMATCH)"))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "## Against the targets and int8", "",
              "| core | binary conv, float out | target | int8 conv (edgereid) | int8 / binary | CMSIS-NN int8 "
              "(DESIGN.md) | CMSIS-NN / binary |", "|---|---|---|---|---|---|---|"]
    for b, d, label in CONFIGS:
        if not d:
            continue
        r, i = by.get(("bconv3x3_32x16x32_float32", b, d)), by.get(("int8_conv3x3_32x16x32", b, d))
        if r is None:
            continue
        target = TARGETS.get(b)
        verdict = "-" if target is None else \
            f"<= {target / 1e6:.1f}M: " + ("met" if r["conv"] <= target else "MISSED")
        ratio = f"{i['conv'] / r['conv']:.1f}x" if i else "-"
        cmsis = CMSIS_NN.get(b)
        lines.append(f"| {label} | {r['conv']:,.0f} | {verdict} | {i['conv']:,.0f} | {ratio} | "
                     f"{cmsis / 1e6:.1f}M | {cmsis / r['conv']:.1f}x |" if i else
                     f"| {label} | {r['conv']:,.0f} | {verdict} | - | - | - | - |")
    lines += ["", "## Wider layers (several words per input pixel)", "",
              "3x3 SAME, float output, input channels = output channels (the BiRe-ID ResNet-18 widths 64 and "
              "256 at small maps). Each pixel's nine taps are gathered into one block, each output channel one "
              "contiguous XOR-popcount (M4: the three-word asm groups, USADA8 every 30 words; M55: four "
              "words per vector, groups of three vectors without predication and VADDVA per group, only a "
              "partial last vector predicated). Binary MACs per instruction in brackets.", "",
              "| layer | binary M4 | int8 M4 | int8 / binary | binary M55 | int8 M55 | int8 / binary |",
              "|---|---|---|---|---|---|---|"]
    for wide, (shape, filters) in WIDE.items():
        macs = shape[1] * shape[2] * filters * 9 * shape[3]
        cells = []
        for board in ("mps2-an386", "mps3-an547"):
            r, i = by.get((wide, board, True)), by.get((f"int8_{wide[6:]}", board, True))
            if r is None or i is None:
                cells += ["-", "-", "-"]
                continue
            cells += [f"{r['conv']:,.0f} ({macs / r['conv']:.1f})" + ("" if r["passed"] else " (MISMATCH)"),
                      f"{i['conv']:,.0f}", f"{i['conv'] / r['conv']:.1f}x"]
        lines.append(f"| {shape[1]}x{shape[2]}x{shape[3]} -> {filters} | " + " | ".join(cells) + " |")
    lines += ["", "## Every layer (instructions, median)", "", "| model | config | layers | total per inference | "
              "reference | bit-exact |", "|---|---|---|---|---|---|"]
    labels.update({(b, d): label for b, d, label in WIDE_CONFIGS})
    for r in rows:
        layers = ", ".join(f"{name} {count:,.0f}" for name, count in r["layers"])
        lines.append(f"| {r['model']} | {labels[(r['board'], r['dsp'])]} | {layers} | {r['total']:,.0f} | "
                     f"{r['reference']} | {'yes' if r['passed'] else 'NO'} |")
    lines += ["", "## Paths", "",
              "- M4 / M7 (`__ARM_FEATURE_DSP`): one input word per pixel (channels_in <= 32), the nine taps' "
              "input words gathered once per output pixel (0 for an out-of-image tap: pad_values 1), each "
              "output channel's nine XOR words counted in 71 Thumb-2 instructions (LDM of three filter and "
              "three input words, the 2-bit SWAR step, nibble counts of three words at once as S - 3T with "
              "MLS, byte counts, USAD8), then the output transform in C.",
              "- M55 (`__ARM_FEATURE_MVE`): four output channels per Helium vector: the nine input words "
              "broadcast, the four channels' filter words gathered per tap, XOR, a carry-save adder tree "
              "(ones / twos / fours / eights), SWAR popcounts per lane; the float / int8 transform and the "
              "bitpacked comparison vectorised too.",
              "- portable C (`-DEREID_NO_DSP`, and every other core): the same SWAR nibble / byte counts "
              "in C, the horizontal add by a multiply.",
              "- Options tried for the M4 popcount (measured on this layer, float output): per-word SWAR "
              "in C 4.75M (every pixel, generic path); nine-word SWAR in C with border pixels generic "
              "1.98M; compiled C with all pixels on the fast path 1.68M (register spills); the asm above "
              "1.46M. A carry-save tree over the nine words costs as many instructions as the three-word "
              "nibble sums (about 70 either way); a 16-bit lookup table (64 KiB) needs 6 instructions "
              "per word against about 6.5 for SWAR, so it does not pay its flash.",
              "- Options tried for the M55 runs of several words (BiRe-ID ResNet-18 width 1.0, all 16 binary "
              "convs, mps3-an547): every vector predicated 116.2M; groups of three unpredicated vectors "
              "86.4M; + a Harley-Seal carry-save tree over four vectors 94.0M (its closing popcounts and "
              "spills cost more than it saves on runs of 18 to 72 words; 7% less on the 144-word runs "
              "only); groups of three + unpredicated whole tail vectors 83.6M (kept)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1, help="seeded inputs per run (counts: median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "docs/results/firmware_binary.md")
    args = ap.parse_args(argv)
    command = (".venv/bin/python tools/bench_firmware_binary.py " + " ".join(argv if argv is not None
                                                                              else sys.argv[1:])).strip()
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="edgereid-bench-binary-models-") as tmp:
        models = bench_models(Path(tmp))
        wide = set(WIDE) | {f"int8_{w[6:]}" for w in WIDE}
        jobs = [(name, path, board, dsp) for name, path in models.items()
                for board, dsp, _ in (WIDE_CONFIGS if name in wide else CONFIGS)]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            rows = list(pool.map(lambda j: measure(*j, args.n, args.seed), jobs))
    text = report(rows, command, args.n, time.time() - start)
    write_text(args.out, text)
    print(text)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

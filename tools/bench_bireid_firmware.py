#!/usr/bin/env python3
"""The whole BiRe-ID ResNet-18 in firmware against the int8 ResNet-18 of the same width.

    .venv/bin/python tools/bench_bireid_firmware.py [--width 1.0] [--n 2] [--out out/bench_bireid_fw]

Both networks at random init (seed 0; instruction counts, flash and arena do not depend
on the weights' values): BiRe-ID exported in the LCE format (`export_lce`, int8 ends,
calibrated on random images), ResNet-18 as full-int8 TFLite (NNCF PTQ on random images).
Each is built for every MCU board (the size report: flash, RAM, fit) and run in QEMU on
`--qemu-board` (default mps3-an547, Cortex-M55: the only QEMU board whose memory holds the
full-width int8 ResNet-18's 11 MB of weights) on `--n` seeded inputs, compared byte for byte with its reference
(Larq Compute Engine's interpreter for BiRe-ID, LiteRT BUILTIN_REF for int8). Writes
docs/results/firmware_bireid.md.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.atomic import write_text  # noqa: E402

MCU_BOARDS = ("stm32h743", "stm32f746", "nrf52840", "mps2-an386", "mps2-an500", "mps3-an547")


def export_models(out: Path, width: float) -> dict[str, Path]:
    import torch

    from edgereid.compress import quantize
    from edgereid.export import export_tflite
    from edgereid.export.lce import export_lce
    from edgereid.models.registry import build_model

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    bireid = build_model("bireid_resnet18", num_classes=10, width=width).eval()
    paths = {"BiRe-ID ResNet-18": out / "bireid_randinit.tflite", "int8 ResNet-18": out / "resnet18_randinit_int8.tflite"}
    export_lce(bireid, paths["BiRe-ID ResNet-18"], calib=torch.randn(16, 3, 128, 64))
    torch.manual_seed(0)
    resnet = build_model("resnet18", num_classes=10, width=width).eval()
    export_tflite(quantize(resnet, [torch.randn(8, 3, 128, 64) for _ in range(2)], subset_size=16),
                  paths["int8 ResNet-18"], int8=True, model_name="resnet18")
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--qemu-board", default="mps3-an547",
                    help="where the counts are taken: the full-width int8 ResNet-18 (11 MB of weights) only fits "
                         "a QEMU board whose weights live in DDR (mps3-an547, Cortex-M55)")
    ap.add_argument("--reuse", action="store_true", help="keep the .tflite files of an earlier run")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_bireid_fw")
    ap.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "firmware_bireid.md")
    args = ap.parse_args(argv)
    from edgereid.boards import load_board
    from edgereid.errors import FirmwareError
    from edgereid.firmware import build_firmware
    from edgereid.hil.runner import run_hil

    t0 = time.time()
    paths = export_models(args.out, args.width) if not args.reuse else {
        "BiRe-ID ResNet-18": args.out / "bireid_randinit.tflite", "int8 ResNet-18": args.out / "resnet18_randinit_int8.tflite"}
    rows, sizes = [], []
    for name, path in paths.items():
        hil = run_hil(path, args.qemu_board, n=args.n)
        count = sorted(hil.counts)[len(hil.counts) // 2]
        rows.append((name, path.stat().st_size, count, hil))
        for board in MCU_BOARDS:
            b = load_board(board)
            try:
                r = build_firmware(path, b, args.out / f"fw_{path.stem}_{board}")
                sizes.append((name, board, r.size.flash_bytes, b.memory.flash_bytes, r.size.ram_bytes,
                               b.memory.ram_bytes, r.size.arena_bytes, "fits"))
            except FirmwareError as exc:
                sizes.append((name, board, None, b.memory.flash_bytes, None, b.memory.ram_bytes, None,
                              str(exc).splitlines()[0]))
    cmd = "`.venv/bin/python tools/bench_bireid_firmware.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`"
    lines = [f"# BiRe-ID ResNet-18 vs int8 ResNet-18 in firmware (width {args.width})", "",
             f"Command: {cmd}  ", f"Date: {datetime.date.today()}; wall time {time.time() - t0:.0f} s.", "",
             "Random-init networks (seed 0): counts, flash and arena do not depend on the weights' values. QEMU "
             f"{args.qemu_board} (its optimised paths), {args.n} seeded inputs, median instructions per inference; "
             "outputs compared byte for byte with the reference.", "",
             f"| model | .tflite bytes | {args.qemu_board} instructions | / int8's | reference | bytes differ |", "|---|---|---|---|---|---|"]
    int8_count = next(c for n, _, c, _ in rows if n.startswith("int8"))
    for name, size, count, hil in rows:
        lines.append(f"| {name} | {size:,} | {count:,.0f} | {count / int8_count:.2f} | {hil.reference} | "
                     f"{hil.mismatched_bytes} |")
    lines += ["", "| model | board | flash (B, build) | board flash | RAM (B, build) | board RAM | arena | fit |",
              "|---|---|---|---|---|---|---|---|"]
    for name, board, flash, fb, ram, rb, arena, fit in sizes:
        lines.append(f"| {name} | {board} | {flash if flash is None else f'{flash:,}'} | {fb:,} | "
                     f"{ram if ram is None else f'{ram:,}'} | {rb:,} | {arena if arena is None else f'{arena:,}'} | "
                     f"{fit} |")
    write_text(args.results, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(h.passed for *_, h in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

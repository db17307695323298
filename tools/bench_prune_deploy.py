#!/usr/bin/env python3
"""SCL-net pruned to fit a small MCU, deployed: the pruning study's deployment row.

    .venv/bin/python tools/bench_prune_deploy.py [--checkpoint CKPT] [--board nrf52840] [--twin mps2-an386]
        [--finetune-epochs 2] [--n 16] [--out out/bench_prune_deploy]

1. the base: --checkpoint, or SCL-net trained here (--base-epochs, --base-minutes);
2. `edgereid.compress.compress` with `prune_to=fit_target(board)` (flash and RAM estimated
   from the torch model against the board file), fine-tuned, int8, exported;
3. the firmware is built for the board: the real flash/RAM check. If the estimate was
   optimistic, the margin shrinks by what the build missed and step 2 runs again;
4. the int8 firmware runs in QEMU on the board's Cortex twin (nrf52840 is a Cortex-M4F:
   mps2-an386), n random inputs, byte for byte against LiteRT BUILTIN_REF;
5. accuracy before / after (the compress report), the board's predicted latency (its
   table) and the QEMU instruction count.
Writes docs/results/pruning_deploy.md.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.atomic import write_text  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--model", default="sclnet")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--base-epochs", type=int, default=6)
    ap.add_argument("--base-minutes", type=float, default=20.0)
    ap.add_argument("--board", default="nrf52840")
    ap.add_argument("--twin", default="mps2-an386", help="QEMU board with the same core")
    ap.add_argument("--criterion", default="l1")
    ap.add_argument("--finetune-epochs", type=int, default=2)
    ap.add_argument("--n", type=int, default=16, help="random inputs for the bit-exact run")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_prune_deploy")
    ap.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "pruning_deploy.md")
    args = ap.parse_args(argv)

    from edgereid.boards import load_board
    from edgereid.compress import compress
    from edgereid.engine import TrainConfig, train
    from edgereid.firmware import build_firmware
    from edgereid.firmware.build import DoesNotFitError
    from edgereid.hil.runner import run_hil
    from edgereid.latency import load_table, predict
    from edgereid.latency.pruning import fit_target

    t0 = time.time()
    board = load_board(args.board)
    ckpt = args.checkpoint
    if ckpt is None:
        ckpt = train(TrainConfig(model=args.model, data=args.data, epochs=args.base_epochs,
                                 max_minutes=args.base_minutes, out=str(args.out / "base")),
                     resume=(args.out / "base" / "last.pt").exists())
    margin, attempts = 1.0, []
    for attempt in range(3):
        out = args.out / f"pruned_m{margin:.3f}"
        report = compress(ckpt, out, dataset=args.data, prune_to=functools.partial(fit_target, board,
                                                                                  margin=margin),
                          criterion=args.criterion, finetune_epochs=args.finetune_epochs, quantize="int8")
        tflite = out / "model_int8.tflite"
        try:
            fw = build_firmware(tflite, board, out / f"firmware_{board.name}")
            attempts.append((margin, "fits"))
            break
        except DoesNotFitError as exc:
            attempts.append((margin, str(exc)))
            # Shrink the estimate's budget by what the real build needed beyond it.
            margin *= 0.9
    else:
        raise SystemExit(f"no pruning fitted {board.name} in 3 attempts: {attempts}")
    hil = run_hil(tflite, args.twin, n=args.n)
    table = load_table(board)
    pred = predict(tflite, board, table)
    ms = pred.total * (1e3 if table.unit == "s" else 1e3 / board.clock_hz)
    rows = {k: report.get(k, {}) for k in ("before", "float", "int8")}
    cmd = "`.venv/bin/python tools/bench_prune_deploy.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`"
    size = fw.size
    lines = [f"# {report['model_name']} pruned to fit {board.name}, run bit-exact on its Cortex twin", "",
             f"Command: {cmd}  ", f"Date: {datetime.date.today()}; wall time {time.time() - t0:.0f} s.", "",
             f"Base checkpoint `{ckpt}`; pruning: {args.criterion}, target = estimated flash and RAM within "
             f"{board.name}'s budgets (margin {margin:.3f}; attempts: {json.dumps(attempts)}), fine-tune "
             f"{args.finetune_epochs} epoch(s), int8 (NNCF PTQ).", "",
             "| | params | MACs | mAP | rank-1 |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if r:
            lines.append(f"| {name} | {r.get('params', '')} | {r.get('macs', '')} | "
                         f"{100 * r['mAP']:.1f}% | {100 * r['rank1']:.1f}% |" if "mAP" in r else
                         f"| {name} | {r.get('params', '')} | {r.get('macs', '')} | - | - |")
    lines += ["",
              f"Firmware for {board.name}: flash {size.flash_bytes / 1024:.0f} KiB of "
              f"{board.memory.flash_bytes / 1024:.0f} KiB, RAM {size.ram_bytes / 1024:.0f} KiB of "
              f"{board.memory.ram_bytes / 1024:.0f} KiB (the build's size report).",
              f"Predicted latency on {board.name} ({table.runtime.get('name', '')} table): {ms:.1f} ms per inference.",
              f"QEMU {args.twin} ({hil.core or 'Cortex twin'}): {hil.n} random inputs, "
              f"{hil.mismatched_bytes} output bytes differ from {hil.reference} "
              f"({'bit-exact' if hil.passed else 'NOT bit-exact'}); median "
              f"{sorted(hil.counts)[len(hil.counts) // 2]:,.0f} {hil.unit} per inference.", ""]
    write_text(args.results, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if hil.passed else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Hardware-awareness of `edgereid search`: one supernet, searched for several boards.

    .venv/bin/python tools/bench_search.py [--data synthetic-sysu] [--supernet-epochs 1]
        [--population 8] [--generations 3] [--out out/bench_search]

Trains the supernet once (the first board's search), then searches every board with
its own budget (latency target given here, flash and RAM from its board file) reusing
that supernet; reports each board's choice, its predicted costs against the budget, and
whether the choices differ. For mps2-an386 the chosen network is built as int8 firmware
(random weights: latency does not depend on them) and run in QEMU: its measured
instruction count against the table's prediction. Writes the "hardware" section of
docs/results/search.md.
"""
from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from results_sections import write_section  # noqa: E402

# Latency targets per board (ms, predicted at the board clock); flash and RAM come from the board files.
BUDGETS_MS = {"stm32h743": 40.0, "nrf52840": 400.0, "rpi5-npu": 1.5, "mps2-an386": 400.0}


def _arch_row(board, result) -> str:
    b, c, budget = result.best.arch, result.best.cost, result.budget
    blocks = " / ".join(f"{x.width}x{x.depth} k{x.kernel} e{x.expand} s{x.stride}" for x in b.blocks)
    mem = f"{c.flash_bytes / 1024:.0f} / {(budget.flash_bytes or 0) / 1024:.0f}" if budget.flash_bytes else \
        f"{c.flash_bytes / 1024:.0f} / -"
    ram = f"{c.ram_bytes / 1024:.0f} / {(budget.ram_bytes or 0) / 1024:.0f}" if budget.ram_bytes else \
        f"{c.ram_bytes / 1024:.0f} / -"
    ok = "yes" if not c.violations(budget) else "NO: " + "; ".join(c.violations(budget))
    return (f"| {board} | stem {b.stem.width}; {blocks}; emb {b.head.embedding} | {c.latency_ms:.4g} / "
            f"{budget.latency_ms:.4g} | {mem} | {ram} | {100 * result.best.score:.1f}% | {ok} |")


def measure_on_qemu(arch, board_name: str) -> tuple[float, float]:
    """(predicted, measured) instructions of `arch` on a QEMU board (int8, random weights)."""
    from edgereid.boards import load_board
    from edgereid.latency import load_table, predict
    from edgereid.latency.backends import open_backend
    from edgereid.search_space.tflite import to_tflite

    board = load_board(board_name)
    predicted = predict(arch, board, load_table(board)).total
    with tempfile.TemporaryDirectory() as tmp, open_backend(board, None, jobs=1) as backend:
        path = to_tflite(arch, Path(tmp) / "chosen.tflite")
        (_, samples), = list(backend.measure([path], 1, 0))
    return predicted, float(sorted(samples)[len(samples) // 2])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="synthetic-sysu")
    ap.add_argument("--boards", default="stm32h743,nrf52840,rpi5-npu,mps2-an386")
    ap.add_argument("--supernet-epochs", type=int, default=1)
    ap.add_argument("--supernet", type=Path, default=None,
                    help="a trained supernet.pt to reuse (default: the first board's search trains one)")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_search")
    ap.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "search.md")
    args = ap.parse_args(argv)
    from edgereid.search.search import search

    boards = args.boards.split(",")
    t0 = time.time()
    results = {}
    shared = args.supernet or args.out / boards[0] / "supernet.pt"
    for board in boards:
        out = args.out / board
        if shared.exists() and not (out / "supernet.pt").exists():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shared, out / "supernet.pt")   # one supernet for every board
        results[board] = search(board, args.data, latency_ms=BUDGETS_MS[board], out=out,
                                supernet_epochs=args.supernet_epochs, population=args.population,
                                generations=args.generations, resume=True, progress=True)
    distinct = len({r.best.arch.to_json() for r in results.values()})
    qemu = ""
    if "mps2-an386" in results:
        predicted, measured = measure_on_qemu(results["mps2-an386"].best.arch, "mps2-an386")
        qemu = (f"\nmps2-an386 (QEMU, Cortex-M4): the chosen network's predicted count {predicted:,.0f} "
                f"instructions, measured {measured:,.0f}: prediction / measurement - 1 = "
                f"{100 * (predicted / measured - 1):+.2f}% (target within +-10%).\n")
    cmd = "`.venv/bin/python tools/bench_search.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`"
    lines = ["## Hardware-awareness: one supernet, several boards", "",
             f"Command: {cmd}  ", f"Date: {datetime.date.today()}; wall time {time.time() - t0:.0f} s.", "",
             f"Data `{args.data}`; supernet {args.supernet_epochs} epoch(s); evolutionary search with population "
             f"{args.population}, {args.generations} generations per board. Scores are the supernet's validation "
             "mAP (held-out training identities, infrared->visible), for ranking only: short supernet training, "
             "so absolute values are low.", "",
             "| board | chosen (width x depth, kernel, expansion, stride per block) | latency ms (predicted / "
             "budget) | flash KiB (est. / budget) | RAM KiB (est. / budget) | val mAP | within budget |",
             "|---|---|---|---|---|---|---|"]
    lines += [_arch_row(b, r) for b, r in results.items()]
    lines += ["", f"Distinct choices: {distinct} of {len(results)} boards.", qemu]
    write_section(args.results, "hardware", "\n".join(lines), title="CM-NAS on the synthetic visible+infrared set")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

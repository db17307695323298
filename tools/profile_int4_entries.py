#!/usr/bin/env python3
"""Measure int4-weight latency-table entries next to their int8 twins, without re-profiling a table.

    .venv/bin/python tools/profile_int4_entries.py --board mps2-an386 [--limit 8] [--out out/luts/mps2-an386-int4.json]

Takes the int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED entries of the board's shipped
table (its `latency_table`), picks `--limit` of them spread over MACs, and measures each kernel's
micro-model (edgereid.ops.micro_model_spec: INT4 filters for the int4 twin) at int8 and int4 with
the board's latency backend (QEMU: instructions; host: LiteRT wall-clock). Entries are the
micro-model's median minus the shipped table's per-inference overhead, with measured provenance;
they go into the table at --out (created, or added to), never into boards/luts unless --out says
so. Prints a Markdown table of both figures and their ratio.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.boards import load_board  # noqa: E402
from edgereid.latency.backends import open_backend  # noqa: E402
from edgereid.latency.micromodels import micro_model_spec, write_model  # noqa: E402
from edgereid.latency.stats import summarize  # noqa: E402
from edgereid.latency.table import Entry, LatencyTable, measured_provenance  # noqa: E402
from edgereid.ops import Precision  # noqa: E402

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def pick(kernels, limit: int):
    """`limit` kernels of each weighted op spread evenly over the MAC range (every op kind kept)."""
    chosen = []
    for op in WEIGHTED:
        ks = sorted((k for k in kernels if k.op == op), key=lambda k: k.macs)
        n = min(limit, len(ks))
        chosen += [ks[round(i * (len(ks) - 1) / max(1, n - 1))] for i in range(n)] if n else []
    return list(dict.fromkeys(chosen))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--limit", type=int, default=3, help="kernels per op kind")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="table to add the entries to "
                    "(default out/luts/<board>-int4.json)")
    args = ap.parse_args(argv)
    board = load_board(args.board)
    shipped = LatencyTable.load(board.resolve(board.latency_table))
    base = shipped.overhead.median if shipped.overhead else 0.0
    int8 = [k for k, _ in shipped.kernels() if k.op in WEIGHTED and k.precision is Precision.INT8]
    pairs = [(k, dataclasses.replace(k, precision=Precision.INT4)) for k in pick(int8, args.limit)]
    out = args.out or Path("out") / "luts" / f"{board.name}-int4.json"
    rows = []
    with open_backend(board) as backend, tempfile.TemporaryDirectory(prefix="edgereid-int4-profile-") as tmp:
        repeats = backend.default_repeats if args.repeats is None else args.repeats
        table = LatencyTable.load(out) if out.exists() else LatencyTable(
            board=board.name, runtime=backend.runtime, fusion_rules=shipped.fusion_rules, unit=backend.unit, path=out)
        table.notes = (f"int4 twins of {board.name} table kernels and the int8 kernels they come from, measured "
                       f"by tools/profile_int4_entries.py; entry = micro-model median - the shipped table's "
                       f"per-inference overhead ({base:.6g} {backend.unit})")
        for k8, k4 in pairs:
            figures = []
            for k in (k8, k4):
                path = write_model(micro_model_spec(k), Path(tmp) / "k.tflite")
                [(_, samples)] = list(backend.measure([path], repeats, backend.default_warmup))
                s = summarize(samples)
                entry = Entry(max(s.median - base, 0.0), s.iqr, s.n,
                              measured_provenance(backend.runtime, backend.transport, backend.host), s.dropped)
                table.put(k, entry)
                table.save(out)
                figures.append(entry.median)
            rows.append((k8, k4, *figures))
    print(f"| kernel (int8 key) | MACs | int8 {backend.unit} | int4 {backend.unit} | int4 / int8 | "
          "weight bytes int8 -> int4 |\n|---|---|---|---|---|---|")
    for k8, k4, m8, m4 in rows:
        print(f"| {k8.key()} | {k8.macs:,} | {m8:.6g} | {m4:.6g} | {m4 / m8:.2f} | "
              f"{k8.weight_bytes:,} -> {k4.weight_bytes:,} |")
    print(f"\nentries written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

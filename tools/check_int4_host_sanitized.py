#!/usr/bin/env python3
"""Bit-exactness of every int4 corpus model (tools/gen_tflite_corpus.py: conv4_*, dwconv4_*, fc4_*,
the even-channel ones and net4_*) built for the host under ASan+UBSan: n seeded random inputs each,
every output byte compared with LiteRT BUILTIN_REF (edgereid.firmware.bitexact.check_model).

    .venv/bin/python tools/check_int4_host_sanitized.py [--n 64] [--seed 0] [--only NAME_PART]
    .venv/bin/python tools/check_int4_host_sanitized.py --no-corpus --model A.tflite [--model B.tflite]

--model adds .tflite files (e.g. mixed int4/int8 Re-ID exports) to the corpus models.

Prints a Markdown table; exit status 1 if any byte differs.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from gen_tflite_corpus import write_corpus  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None)
    ap.add_argument("--model", type=Path, action="append", default=[], help="extra .tflite to check (repeatable)")
    ap.add_argument("--no-corpus", action="store_true", help="check only the --model files")
    args = ap.parse_args(argv)
    for path in args.model:
        if not path.is_file():
            print(f"--model {path}: no such file (expected a .tflite)", file=sys.stderr)
            return 2
    from edgereid.firmware.bitexact import check_model

    start = time.time()
    lines = ["| model | inputs | output bytes compared | bytes differing |", "|---|---|---|---|"]
    total = bad = 0
    with tempfile.TemporaryDirectory(prefix="edgereid-int4-host-") as tmp:
        paths = {} if args.no_corpus else {
            name: p for name, p in write_corpus(Path(tmp) / "corpus").items()
            if name.startswith(("conv4_", "dwconv4_", "fc4_", "net4_")) and (args.only is None or args.only in name)}
        paths.update({path.stem: path for path in args.model})
        for name, path in paths.items():
            r = check_model(path.read_bytes(), name, num_inputs=args.n, seed=args.seed, sanitize=True,
                            workdir=Path(tmp))
            total += r.elements
            bad += r.mismatched_elements
            lines.append(f"| {name} | {args.n} | {r.elements:,} | {r.mismatched_elements:,} |")
    lines.append(f"| **all {len(paths)} models** | {args.n} | {total:,} | {bad:,} |")
    print("\n".join(lines))
    print(f"\nwall time {time.time() - start:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

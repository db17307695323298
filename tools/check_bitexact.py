"""Randomized sweep: single-op int8 models (shapes/options from a seed) built for the host,
compared byte for byte with LiteRT BUILTIN_REF; writes docs/results/firmware_bitexact.md.

    .venv/bin/python tools/check_bitexact.py --seeds 10 --inputs 4 [--sanitize]
"""
import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.atomic import write_text  # noqa: E402
from edgereid.firmware.bitexact import SINGLE_OP_KINDS, check_model, random_op_spec  # noqa: E402
from edgereid.tflite.builder import build_model  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="models per op kind")
    ap.add_argument("--inputs", type=int, default=4, help="random inputs per model")
    ap.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    ap.add_argument("--kinds", default=",".join(SINGLE_OP_KINDS))
    ap.add_argument("--out", default=str(REPO / "docs/results/firmware_bitexact.md"))
    args = ap.parse_args(argv)
    rows, failures = [], 0
    start = time.time()
    for kind in args.kinds.split(","):
        models = exact = elements = mismatched = errors = 0
        for seed in range(args.seeds):
            spec = random_op_spec(kind, seed)
            try:
                r = check_model(build_model(spec), spec["name"], args.inputs, seed, sanitize=args.sanitize)
            except Exception as exc:  # a build or run failure is a result too
                errors += 1
                print(f"{spec['name']}: ERROR {str(exc)[:300]}", flush=True)
                continue
            models += 1
            exact += r.exact
            elements += r.elements
            mismatched += r.mismatched_elements
            print(f"{spec['name']}: {'exact' if r.exact else f'{r.mismatched_elements} of {r.elements} differ'}",
                  flush=True)
        failures += (models - exact) + errors
        rows.append(f"| {kind} | {models + errors} | {exact} | {errors} | {elements} | {mismatched} |")
    cmd = "tools/check_bitexact.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        "# Firmware vs LiteRT BUILTIN_REF: randomized single-op sweep", "",
        f"Command: `.venv/bin/python {cmd.strip()}`  ",
        f"Host gcc build{' with -fsanitize=address,undefined' if args.sanitize else ''}; "
        f"{args.inputs} random inputs per model; shapes and options drawn from the seed "
        "(edgereid/firmware/bitexact.py: random_op_spec). Wall time "
        f"{time.time() - start:.0f} s.", "",
        "| op | models | bit-exact | build/run errors | output elements | mismatched elements |",
        "|---|---|---|---|---|---|", *rows, ""])
    write_text(args.out, text)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

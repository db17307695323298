#!/usr/bin/env python3
"""Bit-exactness of the generated firmware on emulated Cortex-M boards and the host:
every corpus model (tools/gen_tflite_corpus.py) plus any --model, 64 seeded random
inputs each, every output byte compared with LiteRT BUILTIN_REF.

    .venv/bin/python tools/check_firmware_qemu.py [--resume] [--jobs 2] [--model X.tflite ...]

One HIL image and one QEMU process per (model, board) carries all inputs. Rows are
saved to the JSON cache as they finish; --resume keeps the rows that passed for the
same model bytes, n and seed and runs the rest again (failing, erroring, unsupported).
docs/results/firmware_bitexact_qemu.md is written at the end.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from edgereid.atomic import write_text  # noqa: E402
from edgereid.errors import EdgereidError  # noqa: E402

DEFAULT_BOARDS = ("mps2-an386", "mps2-an500", "mps3-an547", "host")
DEFAULT_MD = REPO / "docs/results/firmware_bitexact_qemu.md"
DEFAULT_CACHE = REPO / "docs/results/firmware_bitexact_qemu.json"


def corpus_models(out_dir: Path) -> list[Path]:
    """Write the corpus (same seed, same bytes as gen_tflite_corpus.py) and list its models."""
    from gen_tflite_corpus import write_corpus

    return list(write_corpus(out_dir).values())


def _host_check(model_path: Path, reference, inputs, work: Path) -> dict:
    from edgereid.firmware import build_firmware

    exe = build_firmware(model_path, "host", work / "fw").executable
    src, dst = work / "input.bin", work / "output.bin"
    mismatched_bytes = mismatched_inferences = 0
    for i, x in enumerate(inputs):
        src.write_bytes(x.tobytes())
        proc = subprocess.run([str(exe), str(src), str(dst)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise EdgereidError(f"host firmware of {model_path.name} exited {proc.returncode} on input {i}: "
                                f"{proc.stderr.strip()[-500:]}")
        got, want = dst.read_bytes(), reference.run(x)
        if got != want:
            mismatched_inferences += 1
            mismatched_bytes += sum(a != b for a, b in zip(got, want)) + abs(len(got) - len(want))
    return {"output_bytes": reference.output_bytes, "mismatched_bytes": mismatched_bytes,
            "mismatched_inferences": mismatched_inferences, "instructions_median": None}


def check_row(model_path: Path, board: str, n: int, seed: int) -> dict:
    """Build and run one (model, board); a model the firmware cannot take is 'unsupported'."""
    from edgereid.errors import FirmwareError
    from edgereid.firmware.build import DoesNotFitError
    from edgereid.firmware.frontend import read_tflite
    from edgereid.hil.runner import Reference, build_image, run_image

    start = time.time()
    row = {"model": model_path.stem, "path": str(model_path), "board": board, "n": n, "seed": seed,
           "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()}
    try:
        read_tflite(model_path)  # the firmware's own limits first: they name what is unsupported
    except FirmwareError as exc:
        return {**row, "status": "unsupported", "message": str(exc), "wall_s": round(time.time() - start, 1)}
    try:
        reference = Reference(model_path)
        inputs = reference.random_inputs(n, seed)
        with tempfile.TemporaryDirectory(prefix="edgereid-fwcheck-") as tmp:
            if board == "host":
                result = _host_check(model_path, reference, inputs, Path(tmp))
            else:
                image = build_image(model_path, board, Path(tmp) / "fw")
                hil = run_image(image, board, reference, inputs, model_name=str(model_path), seed=seed)
                result = {"output_bytes": hil.output_bytes, "mismatched_bytes": hil.mismatched_bytes,
                          "mismatched_inferences": hil.mismatched_inferences,
                          "instructions_median": hil.count_stats().get("median")}
    except DoesNotFitError as exc:  # a budget verdict, not a bit-exactness result
        return {**row, "status": "does not fit", "message": str(exc), "wall_s": round(time.time() - start, 1)}
    except EdgereidError as exc:
        return {**row, "status": "error", "message": str(exc)[:1000], "wall_s": round(time.time() - start, 1)}
    status = "pass" if result["mismatched_bytes"] == 0 else "fail"
    return {**row, **result, "status": status, "compared_bytes": n * result["output_bytes"],
            "wall_s": round(time.time() - start, 1)}


def _tool_versions() -> str:
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
        except (OSError, IndexError):
            return "not found"
    try:
        from importlib.metadata import version
        litert = f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # noqa: BLE001 - only for the report line
        litert = "ai-edge-litert (version unknown)"
    return "; ".join([first_line(["qemu-system-arm", "--version"]), first_line(["arm-none-eabi-gcc", "--version"]),
                      first_line(["gcc", "--version"]), litert, f"Python {platform.python_version()}"])


def _cell(row: dict | None) -> str:
    if row is None:
        return "not run"
    if row["status"] == "pass":
        return f"exact ({row['n']} x {row['output_bytes']:,} B)"
    if row["status"] == "fail":
        return f"**FAIL** {row['mismatched_bytes']:,} of {row['compared_bytes']:,} B"
    if row["status"] == "unsupported":
        return "unsupported"
    if row["status"] == "does not fit":
        return "does not fit"
    return "**ERROR**"


def write_markdown(path: Path, rows: dict, models: list[Path], boards: list[str], invocations: list) -> str:
    by = {(r["model"], r["board"]): r for r in rows.values()}
    lines = ["# Firmware vs LiteRT BUILTIN_REF on emulated Cortex-M boards and the host", "",
             "Invocations whose rows make this report (later ones ran with --resume: rows that had "
             "passed were kept, the rest ran again):", ""]
    lines += [f"- `{inv['command']}` ({inv['date']}: {inv['rows_run']} rows, {inv['wall_s']:.0f} s)"
              for inv in invocations]
    lines += ["", f"Tools: {_tool_versions()}.", "",
             "Each cell: one firmware image per (model, board) fed n seeded random inputs "
             "over the HIL UART protocol in one QEMU process (`-icount shift=0`); the "
             "host column runs the host gcc build on the same inputs. \"exact\" = every output byte equals "
             "LiteRT's reference kernels (`OpResolverType.BUILTIN_REF`); the figures are n x output bytes "
             "(n, seed and timing of every row: the JSON cache next to this file).", "", "## Summary", "",
             "| board | models exact | failing | errors | unsupported | does not fit | output bytes compared | "
             "bytes differing |", "|---|---|---|---|---|---|---|---|"]
    for b in boards:
        rs = [by[(m.stem, b)] for m in models if (m.stem, b) in by]
        count = lambda s: sum(r["status"] == s for r in rs)  # noqa: E731
        lines.append(f"| {b} | {count('pass')} | {count('fail')} | {count('error')} | {count('unsupported')} | {count('does not fit')} | "
                     f"{sum(r.get('compared_bytes', 0) for r in rs):,} | "
                     f"{sum(r.get('mismatched_bytes', 0) for r in rs):,} |")
    unsupported = sorted({r["model"]: r["message"] for r in rows.values() if r["status"] == "unsupported"}.items())
    errors = [r for r in rows.values() if r["status"] == "error"]
    lines += ["", "## Per model", "", "| model | " + " | ".join(boards) + " |", "|---" * (len(boards) + 1) + "|"]
    for m in models:
        lines.append(f"| {m.stem} | " + " | ".join(_cell(by.get((m.stem, b))) for b in boards) + " |")
    if unsupported:
        lines += ["", "## Not supported by the firmware compiler (not run)", ""]
        lines += [f"- {name}: {msg.split(': ', 1)[-1]}" for name, msg in unsupported]
    too_big = [r for r in rows.values() if r["status"] == "does not fit"]
    if too_big:
        lines += ["", "## Larger than the board's budget (built, not run)", ""]
        lines += [f"- {r['model']} on {r['board']}: {r['message']}" for r in too_big]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {r['model']} on {r['board']}: {r['message']}" for r in errors]
    text = "\n".join(lines) + "\n"
    write_text(path, text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="random inputs per (model, board)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--boards", default=",".join(DEFAULT_BOARDS), help="comma-separated; 'host' = host gcc build")
    ap.add_argument("--model", action="append", default=[], type=Path, help="extra .tflite to check (repeatable)")
    ap.add_argument("--no-corpus", action="store_true", help="check only the --model files")
    ap.add_argument("--only", default=None, help="only models whose name contains this")
    ap.add_argument("--jobs", type=int, default=2, help="(model, board) rows built and run at once")
    ap.add_argument("--resume", action="store_true", help="keep rows of the cache that passed; run the rest")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="JSON rows, written as they finish")
    ap.add_argument("--out", type=Path, default=DEFAULT_MD, help="Markdown report")
    args = ap.parse_args(argv)
    boards = [b for b in args.boards.split(",") if b]
    for m in args.model:
        if not m.is_file():
            ap.error(f"--model {m}: no such file")
    command = ".venv/bin/python tools/check_firmware_qemu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="edgereid-corpus-") as corpus_dir:
        models = [] if args.no_corpus else corpus_models(Path(corpus_dir))
        models += [m.resolve() for m in args.model]
        if args.only:
            models = [m for m in models if args.only in m.stem]
        rows: dict[str, dict] = {}
        invocations: list[dict] = []
        if args.resume and args.cache.is_file():
            cached = json.loads(args.cache.read_text())
            rows, invocations = cached["rows"], cached.get("invocations", [])
        invocation = {"command": command.strip(), "date": datetime.date.today().isoformat(), "rows_run": 0,
                      "wall_s": 0.0}
        invocations.append(invocation)
        digests = {m.stem: hashlib.sha256(m.read_bytes()).hexdigest() for m in models}
        todo = []
        for m in models:
            for b in boards:
                old = rows.get(f"{m.stem}@{b}")
                if not (old and old["sha256"] == digests[m.stem] and old["n"] == args.n and old["seed"] == args.seed
                        and old["status"] == "pass"):
                    todo.append((m, b))
        lock = threading.Lock()
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="row", desc="firmware vs BUILTIN_REF", file=sys.stderr)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(check_row, m, b, args.n, args.seed): (m, b) for m, b in todo}
            for fut in as_completed(futures):
                row = fut.result()
                with lock:
                    rows[f"{row['model']}@{row['board']}"] = row
                    invocation["rows_run"] += 1
                    invocation["wall_s"] = round(time.time() - start, 1)
                    write_text(args.cache, json.dumps({"format": 1, "invocations": invocations, "rows": rows},
                                                      indent=1, sort_keys=True) + "\n")
                if row["status"] in ("fail", "error"):
                    tqdm.write(f"{row['model']} on {row['board']}: {row['status'].upper()} "
                               f"{row.get('message') or _cell(row)}", file=sys.stderr)
                bar.set_postfix_str(f"{row['model']}@{row['board']}: {row['status']}")
                bar.update(1)
        bar.close()
        invocation["wall_s"] = round(time.time() - start, 1)
        # rows of --model files from earlier invocations stay in the report
        reported = models + [Path(p) for p in dict.fromkeys(r["path"] for r in rows.values())
                             if Path(p).stem not in digests]
        text = write_markdown(args.out, rows, reported, boards, invocations)
    print(text)
    checked = [r for r in rows.values() if r["model"] in digests and r["board"] in boards]
    return 1 if any(r["status"] in ("fail", "error") for r in checked) else 0


if __name__ == "__main__":
    if shutil.which("qemu-system-arm") is None:
        print("warning: qemu-system-arm not found: Cortex-M rows will be errors", file=sys.stderr)
    sys.exit(main())

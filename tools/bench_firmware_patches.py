#!/usr/bin/env python3
"""Patch-based inference (edgereid.firmware.patches) on the int8 Re-ID models: arena
before/after, recomputed MACs, bit-exactness (host ASan+UBSan, QEMU Cortex-M4) and the
instruction cost on M4.

    .venv/bin/python tools/bench_firmware_patches.py --export /tmp/fwint/reid \
        [--model X.tflite ...] [--n 2] [--out docs/results/firmware_patches.md]

--export DIR writes the randinit int8 models first (edgereid.models.build_model, seed 0,
PTQ on two random batches of 8, edgereid.export.export_tflite int8): ResNet-18 width 0.25
and SCL-net, as docs/results/firmware.md names them. For each model: the per-layer plan
(arena and its lower bound: the most arena bytes live at one layer), the split
`--patches auto` picks with no budget (least arena) and with a budget of half the lower
bound (least recomputation that fits), each built and run on n seeded inputs on the host
under ASan+UBSan and on mps2-an386 (QEMU, instructions), against LiteRT BUILTIN_REF.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.atomic import write_text  # noqa: E402
from edgereid.errors import FirmwareError  # noqa: E402

MODELS = (("resnet18", 0.25, "resnet18_w025_randinit_int8"), ("sclnet", 1.0, "sclnet_randinit_int8"))


def export_models(out: Path) -> list[Path]:
    import torch

    from edgereid.compress import quantize
    from edgereid.export import export_tflite
    from edgereid.models.registry import build_model

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, width, stem in MODELS:
        torch.manual_seed(0)
        model = build_model(name, num_classes=10, width=width).eval()
        calib = [torch.randn(8, 3, 128, 64) for _ in range(2)]
        paths.append(export_tflite(quantize(model, calib, subset_size=16), out / f"{stem}.tflite", int8=True,
                                   model_name=name))
    return paths


def _host_check(model: Path, patches: str, budget, reference, inputs, work: Path) -> tuple[int, object]:
    from edgereid.firmware import build_firmware

    r = build_firmware(model, "host", work / "host", sanitize=True, patches=patches, ram_budget=budget)
    bad = 0
    for x in inputs:
        (work / "in.bin").write_bytes(x.tobytes())
        proc = subprocess.run([str(r.executable), str(work / "in.bin"), str(work / "out.bin")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise FirmwareError(f"host firmware exited {proc.returncode}: {proc.stderr[-500:]}")
        got, want = (work / "out.bin").read_bytes(), reference.run(x)
        bad += sum(a != b for a, b in zip(got, want))
    return bad, r.schedule


def _m4_check(model: Path, patches: str, budget, reference, inputs, work: Path, dsp: bool):
    from edgereid.firmware import build_firmware
    from edgereid.hil.runner import run_image

    r = build_firmware(model, "mps2-an386", work / "m4", hil=True, patches=patches, ram_budget=budget, dsp=dsp)
    return run_image(r.executable, "mps2-an386", reference, inputs, model_name=str(model))


def measure(model: Path, n: int, dsp: bool = True) -> list[dict]:
    from edgereid.firmware.frontend import read_tflite
    from edgereid.firmware.lowering import lower_graph
    from edgereid.firmware.planner import plan
    from edgereid.hil.runner import Reference

    graph = read_tflite(model)
    layers = lower_graph(graph)
    base = plan(graph, layers)
    reference = Reference(model)
    inputs = reference.random_inputs(n, 0)
    rows = []
    for label, patches, budget in (("per-layer plan", "off", None), ("patches auto (least arena)", "auto", None),
                                   ("patches auto, budget 0.5x lower bound", "auto", base.lower_bound_bytes // 2)):
        row = {"model": model.stem, "config": label, "budget": budget, "lower_bound": base.lower_bound_bytes}
        with tempfile.TemporaryDirectory(prefix="edgereid-patches-") as tmp:
            try:
                bad, schedule = _host_check(model, patches, budget, reference, inputs, Path(tmp))
                m4 = _m4_check(model, patches, budget, reference, inputs, Path(tmp), dsp)
            except FirmwareError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
        splits = schedule.patches or []
        recomputed = sum(sp.recomputed_macs for sp in splits)
        row.update(arena=schedule.arena_bytes, host_bad=bad, m4_bad=m4.mismatched_bytes,
                   m4_instructions=m4.count_stats()["median"],
                   split="; ".join(f"ops {sp.start}..{sp.end - 1} in {sp.patches} stripes" for sp in splits) or "-",
                   recomputed=recomputed, recomputed_pct=round(100.0 * recomputed / sum(l.macs for l in layers), 2))
        rows.append(row)
    return rows


def report(rows: list[dict], command: str, n: int, wall: float, dsp: bool = True) -> str:
    out = ["# Patch-based inference of the leading layers (MCUNetV2-style stripes)", "",
           f"Command: `{command}` ({wall:.0f} s wall).", "",
           "Models: `.venv/bin/python tools/bench_firmware_patches.py --export /tmp/fwint/reid` writes them "
           "(randinit, seed 0, int8 PTQ on two random batches of 8; the names of docs/results/firmware.md).", "",
           "`build-firmware --patches auto [--ram-budget N]` runs one or two stages of leading layers stripe by "
           "stripe (edgereid.firmware.patches): stripes of a stage output's rows, every map in the stage "
           "computed on the rows its readers need (windows grow them: the overlap is recomputed; ADD and "
           "CONCATENATION map rows one to one), padding only at the true image border; the second stage reads "
           "the first one's whole output. Arena = the generated firmware's static activation arena "
           "(EREID_MODEL_ARENA_BYTES); lower bound = the most arena bytes live at one layer in the per-layer "
           "plan (no per-layer schedule goes under it). Recomputed MACs: the extra MACs of the overlapping rows, "
           "as a share of the model's MACs. With a budget the planner keeps the split of least recomputation "
           "that fits; without, the least arena. Bit-exactness: "
           f"{n} seeded inputs (seed 0) on the host build under ASan+UBSan and on mps2-an386 (QEMU, Cortex-M4), "
           "every output byte against LiteRT BUILTIN_REF; instructions: median per inference on mps2-an386"
           + ("" if dsp else " (portable loops, -DEREID_NO_DSP)") + ". The kernels were those of the working "
           "tree at the time of the run (other work was changing them), so the instruction counts compare "
           "the plans with each other, not with docs/results/firmware.md.", "",
           "| model | plan | arena B | x lower bound | split | recomputed MACs | host bytes differ | "
           "M4 bytes differ | M4 instructions |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            budget = f" ({r['budget']:,} B)" if r["budget"] else ""
            out.append(f"| {r['model']} | {r['config']}{budget} | - | - | error: {r['error'][:300]} | - | - | - | - |")
            continue
        budget = f" ({r['budget']:,} B)" if r["budget"] else ""
        out.append(f"| {r['model']} | {r['config']}{budget} | "
                   f"{r['arena']:,} | {r['arena'] / r['lower_bound']:.2f} | {r['split']} | "
                   f"{r['recomputed']:,} ({r['recomputed_pct']}%) | {r['host_bad']} | {r['m4_bad']} | "
                   f"{r['m4_instructions']:,.0f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export", type=Path, default=None, help="write the randinit int8 Re-ID models here first")
    ap.add_argument("--model", action="append", default=[], type=Path)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--no-dsp", action="store_true", help="M4 builds with the kernels' portable loops")
    ap.add_argument("--out", type=Path, default=REPO / "docs/results/firmware_patches.md")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python tools/bench_firmware_patches.py", *map(shlex.quote, argv)])
    t0 = time.time()
    models = list(args.model) + (export_models(args.export) if args.export else [])
    rows = []
    for m in models:
        for row in measure(Path(m), args.n, dsp=not args.no_dsp):
            rows.append(row)
            print(row, flush=True)
    text = report(rows, command, args.n, time.time() - t0, dsp=not args.no_dsp)
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Baseline table of the foundation: colour histogram vs ResNet-18 vs SCL-net on the synthetic set.

SCL-net is trained by the demo itself (`edgereid demo`, same defaults), ResNet-18 by the
same engine with the epochs given here; both on this machine's cores, timed. Resumable:
the demo keeps its own state, ResNet-18 resumes from its last checkpoint.

    .venv/bin/python tools/bench_baseline.py [--resnet-epochs 6] [--out out/bench_baseline]

Writes docs/results/baseline.md (and the CMC plot next to it).
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.atomic import write_text  # noqa: E402
from edgereid.pipeline import DemoConfig, run_demo  # noqa: E402
from edgereid.pipeline.steps import StepRunner  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/bench_baseline")
    ap.add_argument("--resnet-epochs", type=int, default=6)
    ap.add_argument("--resnet-width", type=float, default=1.0)
    ap.add_argument("--report", default="docs/results/baseline.md")
    args = ap.parse_args()

    import torch

    from edgereid.data import load_dataset
    from edgereid.engine import TrainConfig, evaluate, load_checkpoint, model_from_checkpoint, train
    from edgereid.metrics import plot_cmc
    from edgereid.models import model_complexity

    out = Path(args.out)
    demo_cfg = DemoConfig(out=str(out / "demo"))
    run_demo(demo_cfg)
    demo_state = json.loads((out / "demo" / "state.json").read_text())

    steps = StepRunner(out)
    market = load_dataset(f"synthetic:{demo_cfg.data_root}")
    resnet_cfg = TrainConfig(model="resnet18", data=f"synthetic:{demo_cfg.data_root}", epochs=args.resnet_epochs,
                             width=args.resnet_width, seed=demo_cfg.seed, out=str(out / "resnet18"),
                             checkpoint_every_steps=50)

    def train_resnet():
        last = Path(resnet_cfg.out) / "last.pt"
        path = train(resnet_cfg, resume=last.exists(), dataset=market)
        model, _ = model_from_checkpoint(load_checkpoint(path))
        params, macs = model_complexity(model, tuple(resnet_cfg.image_size))
        r = evaluate(path, market).main
        return {"params": params, "macs": macs, **r.summary(), "cmc": [float(v) for v in r.cmc[:20]]}

    resnet = steps.run("resnet18", train_resnet, key=resnet_cfg.to_dict())
    resnet_minutes = steps.seconds("resnet18") / 60.0

    base = demo_state["baseline"]["result"]["visible->visible"]
    scl = demo_state["evaluate"]["result"]["visible->visible"]
    scl_train = demo_state["train"]["result"]
    scl_minutes = demo_state["train"]["seconds"] / 60.0
    int8, fw = demo_state["int8"]["result"], demo_state["firmware"]["result"]
    report = REPO / args.report
    plot_cmc({"SCL-net": scl["cmc"], f"ResNet-18 (width {args.resnet_width:g})": resnet["cmc"],
              "colour histogram": base["cmc"]}, report.with_suffix(".png"),
             title="visible->visible CMC, synthetic set (seed 0)")

    def row(name, r, params, macs, minutes):
        return f"| {name} | {100 * r['mAP']:.1f} | {100 * r['rank1']:.1f} | {params} | {macs} | {minutes} |"

    load1 = os.getloadavg()[0]
    lines = [
        "# Foundation baseline: synthetic set, visible->visible", "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads (load average at the end: {load1:.1f}).",
        "Market-1501 rules on the synthetic set's Market layout (seed 0, 300 train / 300 test ids, 128x64).", "",
        "Command: `.venv/bin/python tools/bench_baseline.py"
        + (f" --resnet-epochs {args.resnet_epochs}" if args.resnet_epochs != 6 else "")
        + (f" --resnet-width {args.resnet_width:g}" if args.resnet_width != 1.0 else "") + "`"
        " (SCL-net is trained by `edgereid demo` with its defaults).", "",
        "| model | mAP % | rank-1 % | params | MACs (128x64) | train min |",
        "|---|---|---|---|---|---|",
        row("colour histogram (HSV stripes, see edgereid/baselines/histogram.py)", base, "-", "-", "-"),
        row(f"ResNet-18 width {args.resnet_width:g}, {args.resnet_epochs} epochs", resnet, f"{resnet['params']:,}",
            f"{resnet['macs']:,}", f"{resnet_minutes:.1f}"),
        row(f"SCL-net, {scl_train['epochs_done']} of {demo_cfg.epochs} epochs (edgereid demo"
            + ("" if scl_train["finished"] else f", stopped by its {demo_cfg.max_train_minutes:g}-minute budget") + ")",
            scl, f"{scl_train['params']:,}",
            f"{scl_train['macs']:,}", f"{scl_minutes:.1f}"),
        "",
        f"SCL-net / histogram mAP: {scl['mAP'] / max(base['mAP'], 1e-9):.2f}x (the issue asks for at least 2x).",
        "Params and MACs count the deployed (eval-mode) network: classifiers and the shallow head are left out.",
        "Train minutes are wall-clock on this machine while other jobs shared its 2 cores; the demo's",
        "training stops at its time budget with a resumable checkpoint, so a slower machine trains fewer epochs.",
        "", "The demo's int8 and firmware steps on the same model:", "",
        f"- int8 TFLite (NNCF PTQ) scored in LiteRT: mAP {100 * int8['visible->visible']['mAP']:.1f}, "
        f"rank-1 {100 * int8['visible->visible']['rank1']:.1f}, {int8['tflite_bytes']:,} bytes",
        f"- firmware on {fw['target']}: {fw['mismatched_bytes']} of {fw['output_bytes']:,} output bytes differ from "
        f"LiteRT BUILTIN_REF over {fw['inputs']} inputs; {fw['count']['median']:,.0f} {fw['unit']} per inference",
        "", f"![CMC]({report.with_suffix('.png').name})", "",
    ]
    write_text(report, "\n".join(lines))
    print(f"wrote {report} ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()

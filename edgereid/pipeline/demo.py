"""`edgereid demo`: the main job on the embedded default (the synthetic set).

synthesize -> colour-histogram baseline -> train SCL-net -> evaluate (visible->visible on
the Market-1501 layout, infrared->visible on the SYSU-MM01 layout) -> report with plots.
Every step is resumable (see steps.py): rerunning the command continues an interrupted demo.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from edgereid.atomic import write_text
from edgereid.pipeline.steps import StepRunner


@dataclass
class DemoConfig:
    out: str = "out/demo"
    data_root: str = "data/synthetic"
    seed: int = 0
    model: str = "sclnet"
    epochs: int = 12
    max_train_minutes: float = 20.0  # the budget for training on 2 CPU cores
    sysu_trials: int = 10
    progress: bool = True


def _rank_summary(result) -> dict:
    return {**result.summary(), "cmc": [float(v) for v in result.cmc[:20]]}


def run_demo(cfg: DemoConfig, echo=print) -> Path:
    """Run every step of the demo into cfg.out; return the report path."""
    import torch

    from edgereid.baselines.histogram import evaluate_histogram_baseline
    from edgereid.data import load_dataset
    from edgereid.data.synthetic import ensure_synthetic
    from edgereid.engine import TrainConfig, evaluate, load_checkpoint, model_from_checkpoint, train
    from edgereid.models import model_complexity

    out = Path(cfg.out)
    steps = StepRunner(out, echo)
    root = Path(cfg.data_root)

    def synth():
        ensure_synthetic(root, seed=cfg.seed, progress=cfg.progress)
        return json.loads((root / "manifest.json").read_text())

    manifest = steps.run("synthesize", synth, key={"root": str(root), "seed": cfg.seed})
    market = load_dataset(f"synthetic:{root}")
    sysu = load_dataset(f"synthetic-sysu:{root}")

    def baseline():
        return {"visible->visible": _rank_summary(evaluate_histogram_baseline(market)),
                "infrared->visible": _rank_summary(evaluate_histogram_baseline(sysu, trials=cfg.sysu_trials))}

    base = steps.run("baseline", baseline, key={"manifest": manifest.get("version")})

    train_cfg = TrainConfig(model=cfg.model, data=f"synthetic:{root}", epochs=cfg.epochs, seed=cfg.seed,
                            out=str(out / "train"), max_minutes=cfg.max_train_minutes,
                            checkpoint_every_steps=50, progress=cfg.progress)

    def train_step():
        last = Path(train_cfg.out) / "last.pt"
        # A demo interrupted during training resumes from its last (mid-epoch) checkpoint.
        path = train(train_cfg, resume=last.exists(), dataset=market)
        ckpt = load_checkpoint(path)
        model, _ = model_from_checkpoint(ckpt)
        params, macs = model_complexity(model, tuple(train_cfg.image_size))
        return {"checkpoint": str(path), "finished": bool(ckpt.get("finished")), "epochs_done": int(ckpt["epoch"]),
                "params": params, "macs": macs}

    trained = steps.run("train", train_step, key=train_cfg.to_dict())
    train_minutes = steps.seconds("train") / 60.0

    def eval_step():
        torch.set_num_threads(max(1, torch.get_num_threads()))
        v = evaluate(trained["checkpoint"], market, progress=cfg.progress)
        ir = evaluate(trained["checkpoint"], sysu, progress=cfg.progress, sysu_trials=cfg.sysu_trials)
        return {"visible->visible": _rank_summary(v.main),
                "infrared->visible": _rank_summary(ir.results["all-search single-shot"]),
                "infrared->visible indoor": _rank_summary(ir.results["indoor-search single-shot"])}

    scores = steps.run("evaluate", eval_step, key={"checkpoint": trained["checkpoint"]})
    return write_report(out, cfg, manifest, base, trained, train_minutes, scores)


def write_report(out: Path, cfg: DemoConfig, manifest: dict, base: dict, trained: dict,
                 train_minutes: float, scores: dict) -> Path:
    from edgereid.metrics import plot_cmc

    plot_cmc({f"{cfg.model} visible->visible": scores["visible->visible"]["cmc"],
              "histogram visible->visible": base["visible->visible"]["cmc"],
              f"{cfg.model} infrared->visible": scores["infrared->visible"]["cmc"],
              "histogram infrared->visible": base["infrared->visible"]["cmc"]},
             out / "cmc.png", title="CMC on the synthetic set")

    def row(name, r, params="", macs="", minutes=""):
        return (f"| {name} | {100 * r['mAP']:.1f} | {100 * r['rank1']:.1f} | {100 * r['mINP']:.1f} "
                f"| {params} | {macs} | {minutes} |")

    ratio = scores["visible->visible"]["mAP"] / max(base["visible->visible"]["mAP"], 1e-9)
    lines = [
        "# edgereid demo report", "",
        f"Synthetic set: seed {manifest.get('seed')}, generator version {manifest.get('version')}, "
        f"root `{cfg.data_root}`.", "",
        f"Training: {cfg.model}, {trained['epochs_done']} epochs "
        f"({'finished' if trained['finished'] else 'stopped by the time budget'}), "
        f"{train_minutes:.1f} min on this machine.", "",
        "| model | mAP % | rank-1 % | mINP % | params | MACs | train min |",
        "|---|---|---|---|---|---|---|",
        row("colour histogram, visible->visible", base["visible->visible"]),
        row("colour histogram, infrared->visible (all-search)", base["infrared->visible"]),
        row(f"{cfg.model}, visible->visible", scores["visible->visible"], f"{trained['params']:,}",
            f"{trained['macs']:,}", f"{train_minutes:.1f}"),
        row(f"{cfg.model}, infrared->visible (all-search)", scores["infrared->visible"]),
        row(f"{cfg.model}, infrared->visible (indoor-search)", scores["infrared->visible indoor"]),
        "",
        f"{cfg.model} visible->visible mAP is {ratio:.2f}x the histogram baseline's.", "",
        "![CMC](cmc.png)", "",
        "Configuration:", "", "```json", json.dumps(asdict(cfg), indent=1), "```", "",
    ]
    return write_text(out / "report.md", "\n".join(lines))

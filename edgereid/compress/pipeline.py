"""`compress(checkpoint, ...)`: load, prune, fine-tune, quantize, export, evaluate, report."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgereid import atomic
from edgereid.compress.prune import PruneTarget, prune
from edgereid.compress.quantize import quantize as ptq
from edgereid.compress.quantize import quantize_qat
from edgereid.data import PKSampler, ReidImageDataset, build_transforms, load_dataset
from edgereid.engine import LoaderBatches, LRSchedule, fit, model_from_checkpoint, save_checkpoint
from edgereid.engine import evaluate as evaluate_model
from edgereid.errors import EdgereidError
from edgereid.export import export_tflite
from edgereid.losses import ReidLoss
from edgereid.models import model_complexity


# A pruned checkpoint loads like any other: the engine resizes layers to its weights.
load_model = model_from_checkpoint


class FrozenQuantized(nn.Module):
    """A quantized graph behind an nn.Module whose train()/eval() are no-ops (torchao forbids them)."""

    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def train(self, mode: bool = True):
        return self

    def forward(self, x):
        return self.graph(x)


def calibration_loader(records, size, num_images: int = 256, seed: int = 0, batch_size: int = 32):
    """A seeded random subset of `records` (training images) with eval transforms."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(records), generator=g)[:num_images].tolist()
    ds = ReidImageDataset([records[i] for i in idx], build_transforms(tuple(size), train=False))
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)


def train_loader(records, size, p: int = 8, k: int = 4, seed: int = 0):
    """P x K batches of `records` with training augmentations (fine-tuning, QAT, BN re-estimation)."""
    ds = ReidImageDataset(records, build_transforms(tuple(size), train=True))
    return torch.utils.data.DataLoader(ds, batch_size=p * k, sampler=PKSampler(records, p, k, seed))


def finetune(model: nn.Module, loader, epochs: int, num_classes: int, lr: float = 1e-3,
             log=None, max_steps_per_epoch: int | None = None, warmup_epochs: float = 1.0,
             weight_decay: float = 5e-4) -> nn.Module:
    """Fine-tune with the training recipe of `edgereid.engine.train` (a pruned model, BN kept).

    Same loss (label-smoothed CE on every head + batch-hard triplet), optimizer (Adam,
    weight decay 5e-4), P x K batches with training augmentations (`train_loader`), BN in
    train mode; the model's trained classifier(s) are kept (pruning never touches them).
    Schedule as in training: linear warm-up from ~0 over `warmup_epochs` (capped at half
    of the steps: a fresh Adam state makes the first steps full-lr sign steps on every
    weight), then cosine to 0. `lr` is the peak (default: the training lr 1e-3; a
    structurally pruned model must re-learn, measured: 1 epoch at a constant 3.5e-4 lost
    25-35 rank-1 points at 50% MACs).
    """
    if epochs <= 0:
        return model.eval()
    batches = LoaderBatches(loader, max_steps_per_epoch)
    total = max(1, epochs * batches.steps_per_epoch())
    warmup = min(int(warmup_epochs * batches.steps_per_epoch()), total // 2)

    def adam(net):
        return torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)

    fit(model, batches, ReidLoss(num_classes), adam, epochs=epochs,
        schedule=LRSchedule("cosine", warmup, total, warmup_from=None), log=log, name="finetune")
    return model.eval()


def _scores(model, dataset, size) -> dict:
    res = evaluate_model(model, dataset, size=size).main
    return {"mAP": float(res.mAP), "rank1": float(res.rank(1))}


def compress(checkpoint, out_dir, dataset="synthetic", prune_macs: float | None = None,
             prune_to: Callable[[tuple[int, int]], PruneTarget] | None = None, criterion: str = "l1", prune_steps: int = 1, finetune_epochs: int = 0,
             quantize: str | None = "int8", qat_epochs: int = 0, calib_images: int = 256, ptq_method: str = "nncf",
             seed: int = 0, evaluate: bool = True, log=print, max_steps_per_epoch: int | None = None) -> dict:
    """One call: load -> prune (optional) -> fine-tune -> quantize -> export -> evaluate.

    Writes `out_dir/model.pt` (float, pruned checkpoint), `out_dir/model_int8.tflite` (or
    `model_float.tflite` without quantization) and `out_dir/report.json`; returns the report.
    Pruning aims at `prune_macs` (a MACs ratio) or at `prune_to(input_size)`, any other
    cost (e.g. `functools.partial(edgereid.latency.pruning.latency_target, board, ms)`).
    """
    if prune_macs is not None and prune_to is not None:
        raise EdgereidError("compress: give prune_macs or prune_to, not both")
    t0 = time.time()
    out_dir = Path(out_dir)
    model, ckpt = load_model(checkpoint)
    size = tuple(ckpt["preprocess"]["size"])
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    num_classes = data.num_train_pids
    calib = calibration_loader(data.train, size, calib_images, seed)
    report = {"checkpoint": str(checkpoint), "model_name": ckpt["model_name"], "dataset": data.name,
              "input_size": list(size)}
    params, macs = model_complexity(model, size)
    report["before"] = {"params": params, "macs": macs}
    if evaluate:
        report["before"].update(_scores(model, data, size))
    if prune_macs is not None or prune_to is not None:
        example = next(iter(calib))[0][:8]
        batch = next(iter(calib))
        identity_loss = ReidLoss(num_classes)

        def taylor_loss(net):
            return identity_loss.cross_entropy(net(batch[0]), batch[1])

        loader = train_loader(data.train, size, seed=seed)
        # BN statistics are re-estimated on training batches (the distribution BN was trained
        # on); on the eval-transform calibration images they cost 18 mAP (docs/compression.md).
        model, prune_report = prune(
            model, example, prune_to(size) if prune_to is not None else prune_macs, criterion, calib=loader,
            steps=prune_steps,
            finetune=(lambda m: finetune(m, loader, max(1, finetune_epochs // prune_steps), num_classes,
                                         log=log, max_steps_per_epoch=max_steps_per_epoch))
            if finetune_epochs and prune_steps > 1 else None,
            loss_fn=taylor_loss, seed=seed, input_size=size, log=log)
        report["prune"] = prune_report
    if finetune_epochs:
        model = finetune(model, train_loader(data.train, size, seed=seed), finetune_epochs, num_classes,
                         log=log, max_steps_per_epoch=max_steps_per_epoch)  # BN statistics kept current
    params, macs = model_complexity(model, size)
    report["float"] = {"params": params, "macs": macs}
    if evaluate:
        report["float"].update(_scores(model, data, size))
    save_checkpoint(out_dir / "model.pt", model_name=ckpt["model_name"], model_args=ckpt["model_args"],
                    state_dict=model.state_dict(), preprocess=ckpt["preprocess"],
                    compression={k: report[k] for k in ("prune",) if k in report})
    if quantize == "int8":
        if qat_epochs:
            qmodel = quantize_qat(model, train_loader(data.train, size, seed=seed), qat_epochs, num_classes,
                                  calib=calib, log=log, max_steps_per_epoch=max_steps_per_epoch)
        else:
            qmodel = ptq(model, calib, subset_size=calib_images, method=ptq_method)
        path = export_tflite(qmodel, out_dir / "model_int8.tflite", int8=True, preprocess=ckpt["preprocess"],
                             model_name=ckpt["model_name"])
        report["int8"] = {"method": "qat" if qat_epochs else f"ptq-{ptq_method}", "tflite_bytes": path.stat().st_size}
        if evaluate:
            report["int8"].update(_scores(FrozenQuantized(qmodel), data, size))
    elif quantize is None:
        path = export_tflite(model, out_dir / "model_float.tflite", preprocess=ckpt["preprocess"],
                             model_name=ckpt["model_name"])
        report["float"]["tflite_bytes"] = path.stat().st_size
    else:
        raise EdgereidError(f"unknown quantization {quantize!r}; expected 'int8' or none")
    report["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(out_dir / "report.json", json.dumps(report, indent=2))
    return report

"""Mixed int4/int8 weights chosen for the user: per-layer int4 sensitivity, then the int4 layers that
bring the model under a flash budget at the least accuracy cost, then QAT / PTQ and export.

Steps (each one call, NNCF-style keyword arguments):
- `int4_candidates(model, example)`: the conv / depthwise / FC layers the eval forward runs,
  after BN folding (the weights that will be quantized), with their int8 and int4 bytes;
- `layer_sensitivity(model, calib)`: embedding drift (1 - mean cosine to the float model on
  calibration images) when that one layer's folded weights alone drop to int4, all else float;
- `choose_int4_layers(layers, sensitivity, int8_flash_bytes=, flash_budget=)`: greedy by drift
  per byte saved until the saving covers the overflow, then every chosen layer the budget
  does not need is dropped again (most sensitive first). Greedy is not optimal (it is a
  knapsack), and summing one-layer drifts assumes they add; both are approximations;
- `compress_weights(checkpoint, out_dir, mode=WeightMode.MIXED, flash_budget=...)`: the
  whole path to a .tflite, with the flash measured by the caller's `flash_of` (the CLI
  builds the firmware; without it the estimate is the .tflite's constant bytes).
"""
from __future__ import annotations

import copy
import enum
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from edgereid import atomic
from edgereid.compress.int4 import INT4_MODULES, fake_quantize_int4
from edgereid.compress.pipeline import (FrozenQuantized, calibration_loader, load_model, train_loader)
from edgereid.compress.quantize import calibration_batches, quantize, quantize_qat
from edgereid.data import load_dataset
from edgereid.engine import evaluate as evaluate_model
from edgereid.errors import EdgereidError
from edgereid.export import export_tflite
from edgereid.export.int4 import export_int4_tflite, weight_bytes
from edgereid.export.prepare import fold_bn_neck, fold_conv_bn
from edgereid.tflite import read_graph


# Flash the int4 (_s4) kernels add to an int8 image, measured on Cortex-M7 builds (tools/bench_int4.py):
# 17,096 B (SCL-net) and 16,600 B (ResNet-18 w0.5) above the weights-only estimate; rounded up.
INT4_CODE_BYTES = 20 * 1024


class WeightMode(str, enum.Enum):
    """Weight precision of an export: all int8, all int4 (conv / depthwise / FC), or chosen per layer."""
    INT8 = "int8"
    INT4 = "int4"
    MIXED = "mixed"


class FlashBudgetError(EdgereidError):
    """Even with every candidate layer in int4 the model does not fit the flash budget."""


@dataclass(frozen=True)
class LayerCost:
    """A layer whose weights can be int4: its name, op kind and weight storage in each precision."""
    name: str
    kind: str            # "conv", "depthwise" or "fc"
    weight_elements: int

    @property
    def int8_bytes(self) -> int:
        return self.weight_elements

    @property
    def int4_bytes(self) -> int:
        return (self.weight_elements + 1) // 2      # two per byte (TFLite INT4), odd count rounds up

    @property
    def saved_bytes(self) -> int:
        return self.int8_bytes - self.int4_bytes


@dataclass(frozen=True)
class MixedPrecisionPlan:
    int4_layers: tuple[str, ...]
    int8_flash_bytes: int
    flash_budget: int
    saved_bytes: int
    drift_sum: float           # sum of the chosen layers' one-layer drifts (the greedy objective)

    @property
    def estimated_flash_bytes(self) -> int:
        return self.int8_flash_bytes - self.saved_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "estimated_flash_bytes": self.estimated_flash_bytes}


def fold_for_int4(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """An eval copy with the BN-neck and every conv-BN pair folded: the weights that get quantized."""
    net = fold_bn_neck(copy.deepcopy(model).eval())
    fold_conv_bn(net, example[:2])
    return net.eval()


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "fc"
    if module.groups == module.in_channels == module.out_channels and module.groups > 1:
        return "depthwise"
    if module.groups != 1:
        raise EdgereidError(f"grouped conv (groups={module.groups}) has no TFLite op; expected groups 1 or depthwise")
    return "conv"


def int4_candidates(model: nn.Module, example: torch.Tensor, folded: bool = False) -> list[LayerCost]:
    """The conv / linear layers the eval forward runs (classifiers and train-only heads excluded), in call
    order. `folded`: `model` is already `fold_for_int4`'s output."""
    net = model if folded else fold_for_int4(model, example)
    names = {m: n for n, m in net.named_modules()}
    called: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(m) if m not in called else None)
             for m in net.modules() if isinstance(m, INT4_MODULES)]
    try:
        with torch.no_grad():
            net(example[:1])
    finally:
        for h in hooks:
            h.remove()
    return [LayerCost(names[m], _kind(m), m.weight.numel()) for m in called]


def _embeddings(net: nn.Module, batches: list[torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([net(x) for x in batches])


def layer_sensitivity(model: nn.Module, calib: Iterable, layers: Iterable[str] | None = None,
                      max_images: int = 64, log: Callable | None = None) -> dict[str, float]:
    """{layer: embedding drift} with only that layer's (BN-folded) weights fake-quantized to int4.

    Drift = 1 - mean cosine between the embeddings and the float model's on up to
    `max_images` calibration images (eval transforms). Activations stay float: this ranks
    the layers' weight sensitivity, it is not the deployed model's accuracy.
    """
    batches = calibration_batches(calib, max_images)
    net = fold_for_int4(model, batches[0])
    modules = dict(net.named_modules())
    names = list(layers) if layers is not None else [c.name for c in int4_candidates(net, batches[0], folded=True)]
    unknown = [n for n in names if not isinstance(modules.get(n), INT4_MODULES)]
    if unknown:
        raise EdgereidError(f"sensitivity: not conv/linear layers of the model: {', '.join(unknown[:5])}")
    reference = _embeddings(net, batches)
    out = {}
    for i, name in enumerate(names):
        weight = modules[name].weight
        original = weight.detach().clone()
        with torch.no_grad():
            weight.copy_(fake_quantize_int4(original))
        try:
            cos = torch.nn.functional.cosine_similarity(_embeddings(net, batches), reference, dim=1)
        finally:
            with torch.no_grad():
                weight.copy_(original)
        out[name] = float(1.0 - cos.mean())
        if log is not None and (i + 1) % 10 == 0:
            log(f"sensitivity: {i + 1}/{len(names)} layers")
    return out


def choose_int4_layers(layers: list[LayerCost], sensitivity: dict[str, float], *, int8_flash_bytes: int,
                       flash_budget: int) -> MixedPrecisionPlan:
    """The int4 layers that bring `int8_flash_bytes` (the all-int8 image) within `flash_budget`.

    Greedy by drift per byte saved, then chosen layers the budget does not need are dropped
    (most sensitive first). Raises FlashBudgetError naming the shortfall when all-int4 does not fit.
    """
    if flash_budget <= 0 or int8_flash_bytes <= 0:
        raise EdgereidError(f"flash budget and int8 flash must be positive byte counts, got "
                            f"{flash_budget} and {int8_flash_bytes}")
    missing = [c.name for c in layers if c.name not in sensitivity]
    if missing:
        raise EdgereidError(f"no sensitivity measured for layer(s) {', '.join(missing[:5])}")
    need = int8_flash_bytes - flash_budget
    if need <= 0:
        return MixedPrecisionPlan((), int8_flash_bytes, flash_budget, 0, 0.0)
    most = sum(c.saved_bytes for c in layers)
    if most < need:
        raise FlashBudgetError(
            f"flash budget {flash_budget:,} B cannot be met: the int8 model takes {int8_flash_bytes:,} B and "
            f"int4 weights in all {len(layers)} conv/depthwise/FC layers save at most {most:,} B, leaving "
            f"{int8_flash_bytes - most:,} B: over by {need - most:,} B ({(need - most) / 1024:.1f} KiB)")
    order = sorted((c for c in layers if c.saved_bytes > 0),
                   key=lambda c: (max(sensitivity[c.name], 0.0) / c.saved_bytes, c.name))
    chosen, saved = [], 0
    for c in order:
        if saved >= need:
            break
        chosen.append(c)
        saved += c.saved_bytes
    for c in sorted(chosen, key=lambda c: -sensitivity[c.name]):
        if saved - c.saved_bytes >= need:
            chosen.remove(c)
            saved -= c.saved_bytes
    names = tuple(c.name for c in layers if c in chosen)   # call order
    return MixedPrecisionPlan(names, int8_flash_bytes, flash_budget, saved,
                              float(sum(sensitivity[n] for n in names)))


def tflite_weight_flash(path) -> int:
    """Flash estimate of a .tflite without building firmware: the bytes of its constant tensors."""
    return weight_bytes(read_graph(path))


def _scores(model, dataset, size) -> dict:
    res = evaluate_model(model, dataset, size=size).main
    return {"mAP": float(res.mAP), "rank1": float(res.rank(1))}


def compress_weights(checkpoint, out_dir, *, mode: WeightMode = WeightMode.MIXED, flash_budget: int | None = None,
                     dataset="synthetic", qat_epochs: int = 0, qat_lr: float = 3e-6, calib_images: int = 256,
                     sensitivity_images: int = 64, seed: int = 0, evaluate: bool = True,
                     flash_of: Callable[[Path], int] = tflite_weight_flash, max_steps_per_epoch: int | None = None,
                     int4_code_bytes: int = INT4_CODE_BYTES, log: Callable = print) -> dict:
    """Checkpoint -> int8 export -> (mixed: sensitivity + choice under `flash_budget`) -> int4/int8
    QAT (`qat_epochs` > 0) or PTQ (histogram) -> `out_dir/model_int4.tflite`, `report.json`.

    `flash_of(tflite_path)`: the image's flash bytes (the CLI builds the firmware; the
    default is `tflite_weight_flash`, an estimate). The plan aims at `flash_budget -
    int4_code_bytes`: the int4 kernels' code is not in the int8 image. Returns the report.
    """
    mode = WeightMode(mode)
    if mode == WeightMode.MIXED and flash_budget is None:
        raise EdgereidError("mixed int4/int8 weights need a flash budget (bytes, or a board's flash)")
    t0 = time.time()
    out_dir = Path(out_dir)
    model, ckpt = load_model(checkpoint)
    size = tuple(ckpt["preprocess"]["size"])
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    calib = calibration_loader(data.train, size, calib_images, seed)
    example = calibration_batches(calib, 2)[0]
    candidates = int4_candidates(model, example)
    report = {"checkpoint": str(checkpoint), "model_name": ckpt["model_name"], "mode": mode.value,
              "input_size": list(size), "flash_budget": flash_budget, "candidates": len(candidates)}

    def quantized(int4_layers):
        if qat_epochs:
            return quantize_qat(model, train_loader(data.train, size, seed=seed), qat_epochs, data.num_train_pids,
                                lr=qat_lr, calib=calib, log=log, max_steps_per_epoch=max_steps_per_epoch,
                                int4_layers=int4_layers)
        return quantize(model, calib, subset_size=calib_images, method="histogram", int4_layers=int4_layers)

    q8 = quantized(())
    int8_path = export_tflite(q8, out_dir / "model_int8.tflite", int8=True, preprocess=ckpt["preprocess"],
                              model_name=ckpt["model_name"])
    report["int8"] = {"flash_bytes": flash_of(int8_path), "tflite_bytes": int8_path.stat().st_size}
    if evaluate:
        report["int8"].update(_scores(FrozenQuantized(q8), data, size))
    if mode == WeightMode.INT8:
        int4_layers = ()
    elif mode == WeightMode.INT4:
        int4_layers = tuple(c.name for c in candidates)
    else:
        sens = layer_sensitivity(model, calib, max_images=sensitivity_images, log=log)
        plan = choose_int4_layers(candidates, sens, int8_flash_bytes=report["int8"]["flash_bytes"],
                                  flash_budget=flash_budget - int4_code_bytes)
        report["plan"] = plan.to_dict()
        report["sensitivity"] = sens
        int4_layers = plan.int4_layers
        log(f"mixed precision: {len(int4_layers)} of {len(candidates)} layers int4, "
            f"estimated flash {plan.estimated_flash_bytes:,} B for a budget of {flash_budget:,} B "
            f"less {int4_code_bytes:,} B for the int4 kernels' code")
    if int4_layers:
        q4 = quantized(int4_layers)
        path = export_int4_tflite(q4, out_dir / "model_int4.tflite", preprocess=ckpt["preprocess"],
                                  model_name=ckpt["model_name"])
        report["int4"] = {"layers": list(int4_layers), "flash_bytes": flash_of(path),
                          "tflite_bytes": path.stat().st_size}
        if flash_budget is not None:
            report["int4"]["fits"] = report["int4"]["flash_bytes"] <= flash_budget
        if evaluate:
            report["int4"].update(_scores(FrozenQuantized(q4), data, size))
    report["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(out_dir / "report.json", json.dumps(report, indent=2))
    return report


__all__ = ["WeightMode", "FlashBudgetError", "LayerCost", "MixedPrecisionPlan", "fold_for_int4", "int4_candidates",
           "layer_sensitivity", "choose_int4_layers", "tflite_weight_flash", "compress_weights"]

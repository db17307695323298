"""Quantization-aware fine-tuning of a binary Re-ID model for its int8 Larq Compute Engine export.

Why: the int8 LCE file (`edgereid.export.lce`) runs the real-valued path (stem, downsample
shortcuts, PReLU, adds, head) in int8. A binarizer whose input sits near its threshold flips
under that rounding, and the flips propagate through the later binary layers: a model trained in
float and its file disagree (docs/results/binary.md). The model that is exported should be the
model that was trained, as NNCF's QAT does for int8 networks.

The quantization-aware form of a `bireid_resnet18` (`BiReIDResNet(int8_ranges=...)`, a model
argument, so a checkpoint keeps it and `edgereid eval` scores this form):
- forward values are the int8 file's: the exporter rebuilds its program from the current weights
  with the fixed ranges and runs its integer emulation (`LceExport.emulate`, the arithmetic of
  LCE's interpreter, checked against it bit for bit) on the batch;
- a float forward runs alongside; at every quantization point the exporter reports
  (`LceExport.sources`: the module whose output an int8 tensor holds, the BN whose sign a
  bitpacked tensor is) the module's output is replaced by the emulated value, straight through
  (`emulated + (y - y.detach())`): each layer computes from the int8 values of its inputs, and
  gradients flow as through the float model (a straight-through estimator at every rounding,
  of the activations and of the weights the exporter folds and quantizes);
- BatchNorms use their running statistics (frozen during QAT): the export folds them.
Nothing here restates the exporter's arithmetic: if the exporter changes (other ops, other
rounding, other quantization points), the QAT form follows it.

    ranges = lce_int8_ranges(model, calib)                 # the export's own calibration, fixed
    cfg = lce_qat_config(checkpoint, calib_records, epochs=2, out="out/qat")
    edgereid.engine.train(cfg)                              # the one training loop
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgereid.engine import TrainConfig, load_checkpoint, model_from_checkpoint
from edgereid.errors import EdgereidError
from edgereid.models import BiReIDResNet

__all__ = ["lce_int8_ranges", "lce_qat_forward", "lce_qat_config", "to_lce_qat"]


def lce_int8_ranges(model: nn.Module, calib: torch.Tensor, preprocess: dict | None = None) -> dict:
    """{module name: [min, max]} of every int8 activation the LCE export quantizes at a module's
    output, from the exporter's own calibration of `model` on `calib` ([N, 3, H, W] preprocessed)."""
    from edgereid.export.lce import CALIB_PERCENTILE, calibration_ranges, export_lce

    ranges = calibration_ranges(model, calib, percentile=CALIB_PERCENTILE)
    export = export_lce(model, None, ranges=ranges, input_size=tuple(calib.shape[-2:]), preprocess=preprocess)
    used = {module for module, v in export.sources.values() if v.dtype == "int8"}
    return {name: [float(lo), float(hi)] for name, (lo, hi) in ranges.items() if name in used}


def _frozen_batchnorms(model: nn.Module) -> list:
    """Switch every BatchNorm to its running statistics; returns (module, was_training) to restore."""
    changed = [(m, m.training) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m, _ in changed:
        m.eval()
    return changed


def lce_qat_forward(model: nn.Module, x: torch.Tensor):
    """The quantization-aware forward of a BiReIDResNet carrying `int8_ranges` (module doc): the
    int8 LCE file's values, the float model's gradients. Train mode: a ReidOutput; eval: [N, D]."""
    from edgereid.export.lce import export_lce, quantize_image
    from edgereid.tflite import unpack_bits

    modes = [(m, m.training) for m in model.modules()]
    try:
        export = export_lce(model, None, ranges=model.int8_ranges, input_size=tuple(x.shape[-2:]),
                            preprocess=model.int8_preprocess)
    finally:  # export_lce switches the model to eval mode
        for m, mode in modes:
            m.training = mode
    images = x.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    env = export.emulate(quantize_image(images, export.input.scale, export.input.zero_point))
    modules = dict(model.named_modules())
    targets: dict[str, torch.Tensor] = {}
    for tensor, (module, v) in export.sources.items():
        if module not in modules:
            raise EdgereidError(f"LCE QAT: the exporter's quantization point {tensor!r} names module {module!r}, "
                                f"which {type(model).__name__} does not have")
        if module in targets:
            raise EdgereidError(f"LCE QAT: module {module!r} feeds two quantization points of the export")
        if v.dtype == "int8":
            q = torch.from_numpy(np.asarray(env[tensor], dtype=np.float32))
            value = (q - np.float32(v.zero_point)) * np.float32(v.scale)  # as LceEmbedder dequantizes
        else:  # bitpacked: +1 / -1
            value = torch.from_numpy(unpack_bits(env[tensor], v.channels))
        targets[module] = value.permute(0, 3, 1, 2).contiguous() if value.dim() == 4 else value.reshape(len(x), -1)

    def replace(name):
        def hook(module, inputs, y):
            want = targets[name]
            if want.shape != y.shape:
                raise EdgereidError(f"LCE QAT: {name} gives {tuple(y.shape)} in torch, {tuple(want.shape)} in the "
                                    f"export")
            if name in bit_sources:  # the sign must be the file's; the value stays as close as can be
                want = torch.where((y < 0) == (want < 0), y.detach(), want * 1e-6)
            return want + (y - y.detach())  # the emulated value, straight through
        return hook

    bit_sources = {module for module, v in export.sources.values() if v.dtype == "int32"}
    handles = [modules[name].register_forward_hook(replace(name)) for name in targets]
    frozen = _frozen_batchnorms(model)
    try:
        return model.forward_float(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in frozen:
            m.training = mode


def to_lce_qat(model: nn.Module, calib: torch.Tensor, preprocess: dict | None = None) -> nn.Module:
    """Put a float-trained binary BiReIDResNet into its quantization-aware form in place: the
    export's int8 ranges from `calib` are fixed on it (`model.int8_ranges`)."""
    if getattr(model, "int8_ranges", None) is not None:
        return model
    model.int8_preprocess = dict(preprocess) if preprocess else None
    model.int8_ranges = lce_int8_ranges(model.eval(), calib, preprocess)
    return model


def lce_qat_config(checkpoint, calib_records=None, *, epochs: int = 2, lr: float = 5e-5, out: str = "out/lce_qat",
                   calib_images: int = 256, **overrides) -> TrainConfig:
    """The TrainConfig of a QAT fine-tune of a trained binary bireid_resnet18 `checkpoint` (path):
    same model, data and batches, started from its weights, with the int8 LCE export's ranges
    (calibrated on `calib_images` seeded images of `calib_records`, default the checkpoint's training
    set, as `edgereid export` calibrates) fixed
    in the model arguments; Adam, no weight decay, one warm-up epoch then cosine. `overrides`:
    other TrainConfig fields. Run it with `edgereid.engine.train`."""
    from edgereid.data import load_dataset
    from edgereid.export.lce import calibration_images

    ckpt = load_checkpoint(checkpoint)
    if ckpt["model_name"] != "bireid_resnet18" or not ckpt["model_args"].get("binary", True):
        raise EdgereidError(f"checkpoint {checkpoint}: LCE QAT takes a binary bireid_resnet18 checkpoint; it holds "
                            f"a {ckpt['model_name']} ({ckpt['model_args']})")
    if ckpt["model_args"].get("int8_ranges") is not None:
        raise EdgereidError(f"checkpoint {checkpoint}: already quantization-aware (its model carries int8_ranges)")
    saved = TrainConfig.from_dict(ckpt["train_config"])
    if calib_records is None:  # the images it was trained on
        calib_records = load_dataset(saved.data).train
    model, _ = model_from_checkpoint(ckpt)
    pre = dict(ckpt["preprocess"])
    calib = calibration_images(calib_records, pre["size"], calib_images)
    ranges = lce_int8_ranges(model, calib, pre)
    fields = dict(saved.to_dict())
    fields.update(epochs=epochs, lr=lr, weight_decay=0.0, warmup_epochs=1, schedule="cosine", out=str(out),
                  init_from=str(Path(checkpoint)), kr_gal=None, fr_gal=None, max_minutes=None, stop_after_steps=None,
                  model_kwargs={**saved.model_kwargs, "int8_ranges": ranges,
                                "int8_preprocess": {"mean": pre["mean"], "std": pre["std"]}})
    fields.update(overrides)
    return TrainConfig.from_dict(fields)


BiReIDResNet.int8_qat_forward = lce_qat_forward  # the models stage cannot import this one: it is installed

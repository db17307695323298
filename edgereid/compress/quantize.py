"""int8 quantization: post-training (NNCF `quantize_pt2e`) and quantization-aware training.

Both return a `torch.fx.GraphModule` in NCHW that takes float images and returns the
float embedding, with int8 quantize/dequantize pairs where TFLite will have int8
tensors: it is the reference the exported .tflite is compared with, and
`edgereid.export.export_tflite(quantized, path, int8=True)` converts it as is.

Scheme (what TFLite Micro / CMSIS-NN run): weights int8 per-channel symmetric,
activations int8 per-tensor affine, biases int32, set by `EdgeInt8Quantizer`.
"""
from __future__ import annotations

import contextlib
import copy
import functools
from typing import Callable, Collection, Iterable

import torch
from torch import nn
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e

from edgereid.compress.int4 import EdgeMixedQuantizer
from edgereid.compress.quantizer import EdgeInt8Quantizer
from edgereid.engine import LoaderBatches, LRSchedule, fit
from edgereid.errors import EdgereidError
from edgereid.export.prepare import _bn_scale_shift, fold_bn_neck, fold_conv_bn, pool_in_channels_last
from edgereid.losses import ReidLoss
from edgereid.models import ReidOutput


def _images(batch) -> torch.Tensor:
    """The image tensor of a batch: a tensor, or the first item of (img, pid, camid, ...)."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
        raise EdgereidError(f"calibration batches must be image tensors [N, 3, H, W], got {type(batch).__name__}"
                            f"{'' if not isinstance(batch, torch.Tensor) else ' of shape ' + str(tuple(batch.shape))}")
    return batch.float()


def calibration_batches(calib: Iterable, max_images: int = 256) -> list[torch.Tensor]:
    """Materialise up to `max_images` images from `calib` (loader, list of batches or a tensor)."""
    if isinstance(calib, torch.Tensor):
        calib = [calib]
    out, n = [], 0
    for batch in calib:
        x = _images(batch)
        out.append(x[: max_images - n])
        n += out[-1].shape[0]
        if n >= max_images:
            break
    if not out:
        raise EdgereidError("calibration data is empty: pass at least one batch of images")
    return out


def _export(module: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    batch = torch.export.Dim("batch", min=1, max=4096)
    # A dynamic batch keeps the quantized model usable for evaluation at any batch size;
    # the TFLite conversion re-traces it at batch 1.
    example = example[:2] if example.shape[0] >= 2 else torch.cat([example, example])
    graph = torch.export.export(module, (example,), dynamic_shapes=({0: batch},)).module()
    return pool_in_channels_last(graph)


def embedding_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Median cosine similarity between two [N, D] embedding batches."""
    return float(torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1).median())


@contextlib.contextmanager
def nncf_int8_fixes():
    """Two NNCF 3.4 defaults that are wrong for int8 TFLite, undone for one quantize_pt2e call.

    (NNCF is imported here, not at module level: it is heavy and only these calls use it.)
    1. `TorchAOQuantizerAdapter` turns every torchao QuantizationSpec into an NNCF config
       with `signedness_to_force=False`, so NNCF decides signedness from the statistics.
       A weight channel with no negative value (a folded BN-neck: one positive weight per
       channel) became an unsigned range [0, max] written as int8 with zero point -127
       and scale max/254: the weight's code 254 wrapped to -2 in int8, and the embedding
       cosine to float fell to 0.12 (docs/compression.md). The spec says symmetric int8
       (-127..127, zero point 0): force signed for it.
    2. The range estimator's MinMaxQuantization keeps NNCF's CPU default
       `overflow_fix=FIRST_LAYER`: the first conv's weights get half the int8 range
       (7 bits), a fix for x86 VNNI overflow that an MCU kernel does not have. Disabled.
    """
    from nncf.common.quantization.structs import QuantizationScheme
    from nncf.experimental.quantization.algorithms.range_estimator import algorithm as range_estimator
    from nncf.experimental.torch.fx.quantization.quantizer import torch_ao_adapter
    from nncf.quantization.advanced_parameters import OverflowFix
    from nncf.tensor import TensorDataType

    typed_config, min_max = torch_ao_adapter.TypedQuantizerConfig, range_estimator.MinMaxQuantization

    def signed_config(**kwargs):
        if kwargs.get("mode") == QuantizationScheme.SYMMETRIC and kwargs.get("dest_dtype") == TensorDataType.int8:
            kwargs["signedness_to_force"] = True
        return typed_config(**kwargs)

    torch_ao_adapter.TypedQuantizerConfig = signed_config
    range_estimator.MinMaxQuantization = functools.partial(min_max, overflow_fix=OverflowFix.DISABLE)
    try:
        yield
    finally:
        torch_ao_adapter.TypedQuantizerConfig = typed_config
        range_estimator.MinMaxQuantization = min_max


def quantize(model: nn.Module, calib: Iterable, subset_size: int = 256, method: str = "nncf",
             fast_bias_correction: bool | None = True, min_cosine: float = 0.9,
             int4_layers: Collection[str] = ()) -> torch.fx.GraphModule:
    """int8 post-training quantization of an eval-mode Re-ID model.

    `calib`: batches of preprocessed images (e.g. a DataLoader over a seeded subset of the
    training set); at most `subset_size` images are used. The BN-neck is folded first
    (see `edgereid.export.prepare`), so no float op is left for the TFLite converter.

    `method`:
    - "nncf" (default): `nncf.experimental.torch.fx.quantize_pt2e` with `EdgeInt8Quantizer`
      (min/max ranges, fast bias correction), under `nncf_int8_fixes` (two NNCF 3.4
      defaults that broke the folded BN-neck and coarsened the first conv);
    - "histogram": torchao `prepare_pt2e`/`convert_pt2e` with the same quantizer
      (histogram observers for activations, min/max per channel for weights), no bias
      correction.
    The result is checked: an embedding cosine to the float model below `min_cosine` on
    the calibration images raises instead of handing back a broken model.
    `int4_layers`: conv / linear module names whose weights are int4 ([-7, 7] per channel,
    `edgereid.compress.int4`); "histogram" only (NNCF's adapter maps specs to its own 8-bit configs).
    """
    if int4_layers and method != "histogram":
        raise EdgereidError(f"int4 weights need method='histogram' (got {method!r}): NNCF's quantize_pt2e "
                            "adapter turns every weight spec into an 8-bit NNCF config")
    quantizer = EdgeMixedQuantizer(int4_layers) if int4_layers else EdgeInt8Quantizer()
    batches = calibration_batches(calib, subset_size)
    float_model = fold_bn_neck(copy.deepcopy(model).eval())
    with torch.no_grad():
        graph = _export(float_model, batches[0])
        if method == "nncf":
            import nncf  # heavy; only this method needs it
            from nncf.experimental.torch.fx import quantize_pt2e

            with nncf_int8_fixes():
                quantized = quantize_pt2e(
                    graph, EdgeInt8Quantizer(), nncf.Dataset(batches), subset_size=sum(len(b) for b in batches),
                    fast_bias_correction=fast_bias_correction,
                    # Keep weights as float + quantize/dequantize: the LiteRT converter folds
                    # that pattern itself and rejects pre-folded int8 weight constants.
                    fold_quantize=False,
                )
        elif method == "histogram":
            observed = prepare_pt2e(graph, quantizer)
            for x in batches:
                observed(x)
            quantized = convert_pt2e(observed, fold_quantize=False)
        else:
            raise EdgereidError(f"unknown quantization method {method!r}; expected 'histogram' or 'nncf'")
        probe = batches[0][:64]
        cos = embedding_cosine(quantized(probe), float_model(probe))
    if cos < min_cosine:
        raise EdgereidError(f"int8 quantization ({method}) broke the model: embedding cosine to float "
                            f"{cos:.3f} < {min_cosine} on calibration images")
    quantized.meta["edgereid_quantized"] = f"{'int4-int8' if int4_layers else 'int8'}-ptq-{method}"
    quantized.meta["edgereid_float_cosine"] = cos
    return quantized


class _FlatTrainOutputs(nn.Module):
    """Train-mode forward as a flat tuple (embedding, *logits, *features) for torch.export."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return (out.embedding, *out.logits, *out.features)


class _EmbeddingOnly(nn.Module):
    """First output of a train-output graph. Not named `graph`: once exported, a GraphModule's
    `graph` attribute is its fx.Graph, and parameter paths through it stop resolving."""

    def __init__(self, net: torch.fx.GraphModule):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[0]


class ChannelScaledAdam(torch.optim.Adam):
    """Adam whose step on a folded conv weight is scaled per output channel by |gamma / sigma|.

    Adam moves every element by about `lr` whatever its magnitude. With BatchNorm after a
    conv that is fine: the conv weight W has its trained scale and BN's gamma / sigma
    multiplies it afterwards. Once BN is folded (W' = W * gamma / sigma) a channel behind
    a small gamma (resnet18's residual-closing BNs: |gamma| down to 0.001) has weights
    100x smaller than before, and the same absolute Adam step rewrites it. Adam is
    invariant to the scale of a gradient, so Adam on W with BN frozen equals Adam on W'
    with each output channel's step multiplied by |gamma / sigma| (measured, resnet18
    w0.25, one epoch, lr 1e-5: embedding cosine to the float model 0.83 -> 0.91).
    `scales`: {weight parameter: [out_channels] tensor}.
    """

    def __init__(self, params, scales: dict, **kwargs):
        super().__init__(params, **kwargs)
        self.scales = scales

    @torch.no_grad()
    def step(self, closure=None):
        before = {p: p.detach().clone() for p in self.scales}
        loss = super().step(closure)
        for p, s in self.scales.items():
            p.copy_(before[p] + s.view(-1, *([1] * (p.ndim - 1))) * (p - before[p]))
        return loss


def _set_observers(graph: nn.Module, enabled: bool) -> int:
    """Switch every fake-quant's range observer on or off (ranges stay as learned); returns how many."""
    n = 0
    for module in graph.modules():
        if hasattr(module, "disable_observer") and hasattr(module, "enable_observer"):
            module.enable_observer() if enabled else module.disable_observer()
            n += 1
    return n


def quantize_qat(model: nn.Module, train_loader: Iterable, epochs: int, num_classes: int,
                 lr: float = 3e-6, calib: Iterable | None = None, log: Callable | None = None,
                 max_steps_per_epoch: int | None = None, weight_decay: float = 0.0,
                 warmup: float = 0.3, freeze_observers_at: float | None = 0.0,
                 int4_layers: Collection[str] = ()) -> torch.fx.GraphModule:
    """Quantization-aware fine-tuning: fake-quant graph trained with the Re-ID loss.

    Start from the trained float model (its classifier(s) included; they are trained
    heads, not re-initialised). `train_loader` yields (images, pids, ...) batches
    (PK-sampled for the triplet loss, training augmentations: `pipeline.train_loader`).
    Steps:
    1. every BatchNorm is folded with its running statistics (`fold_bn_neck`,
       `fold_conv_bn`), so the trained graph is the deployed graph (conv + bias).
       Why not torchao's conv-BN QAT simulation: it divides by gamma / sigma, and
       resnet's zero-initialised last BN of a block gave NaN on the first forward; and
       where gamma != 0, its fusion pattern did not match on torch 2.13 graphs, so every
       BN stayed a float MUL/SUB/ADD island in the .tflite (140 float ops on resnet18).
    2. `prepare_qat_pt2e` with `EdgeInt8Quantizer(is_qat=True)`: weights int8
       per-channel symmetric, activations int8 per-tensor affine, moving-average
       min/max fake-quant; `calib` images (or the first training batch) in a no-grad
       forward set every range before the first step (= PTQ-calibrated ranges).
    3. `epochs` epochs of `ChannelScaledAdam` on the Re-ID loss (CE on every head +
       batch-hard triplet), peak lr `lr` (default 3e-6, ~1/300 of the training lr) with
       a linear warm-up over the first `warmup` of the steps and cosine decay to 0, no
       weight decay (on folded weights it is no longer scale-free: it shrinks outputs).
       The range observers are frozen after `freeze_observers_at` of the steps (default
       0: the calibrated ranges are kept; None: never frozen): augmented training
       batches (random erasing with N(0, 1) noise, padding) moved the moving-average
       ranges away from real images' and cost ~2 mAP.
       What went wrong before (docs/compression.md, measured on resnet18): plain Adam on
       folded weights (every element moved by ~lr, wrecking channels behind small BN
       gammas) at a constant lr 1e-4 from a fresh optimizer state (first steps are sign
       steps of the full lr on every weight), weight decay, and drifting ranges.
    4. `convert_pt2e`: the learned ranges become the scales of the TFLite file.
    Returns the same kind of module as `quantize` (eval graph, embedding only).
    `int4_layers`: conv / linear module names (of the BN-folded model) trained with int4
    weight fake-quant ([-7, 7] per channel, `edgereid.compress.int4`); the rest stay int8.
    """
    first = next(iter(train_loader), None)
    if first is None:
        raise EdgereidError("QAT training data is empty")
    example = _images(first)
    if example.shape[0] < 2:
        raise EdgereidError("QAT needs training batches of at least 2 images (triplet loss)")
    net = copy.deepcopy(model).eval()
    fold_bn_neck(net)
    net.train()
    bn_scales = {}

    def record_scale(conv, bn):
        bn_scales[conv] = _bn_scale_shift(bn)[0].abs().clone()
        return True

    fold_conv_bn(net, example, where=record_scale)
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()  # a BN not right after a conv (none in our backbones): frozen statistics
    with torch.no_grad():
        n_heads = len(net(example).logits)
    batch = torch.export.Dim("batch", min=2, max=4096)
    wrapper = _FlatTrainOutputs(net)
    scale_by_name = {name + ".weight": bn_scales[m] for name, m in wrapper.named_modules() if m in bn_scales}
    graph = torch.export.export(wrapper, (example,), dynamic_shapes=({0: batch},)).module()
    graph = pool_in_channels_last(graph)
    quantizer = (EdgeMixedQuantizer(int4_layers, is_qat=True, prefix="model.") if int4_layers
                 else EdgeInt8Quantizer(is_qat=True))
    graph = prepare_qat_pt2e(graph, quantizer)
    named = dict(graph.named_parameters())
    missing = sorted(set(scale_by_name) - set(named))
    if missing:
        raise EdgereidError(f"QAT: folded conv weights not found in the prepared graph: {', '.join(missing[:3])}")

    def forward(x):
        try:
            return graph(x)
        except RuntimeError as exc:
            raise EdgereidError(f"QAT forward failed in the fake-quant graph: {str(exc).splitlines()[0]}") from exc

    with torch.no_grad():  # initialise every fake-quant range before the first step
        warm = [x for x in calibration_batches(calib, 256) if x.shape[0] >= 2] if calib is not None else [example]
        for x in warm:
            forward(x)
    batches = LoaderBatches(train_loader, max_steps_per_epoch, min_batch_size=2)
    total_steps = max(1, epochs * batches.steps_per_epoch())
    freeze_step = int(freeze_observers_at * total_steps) if freeze_observers_at is not None else None
    scales = {named[k]: s for k, s in scale_by_name.items()}

    def channel_scaled_adam(g):
        return ChannelScaledAdam([p for p in g.parameters() if p.requires_grad], scales, lr=lr,
                                 weight_decay=weight_decay)

    def qat_forward(g, batch):
        out = forward(_images(batch))
        return ReidOutput(out[0], list(out[1:1 + n_heads]), list(out[1 + n_heads:]))

    def freeze_observers(global_step):
        if global_step == freeze_step:
            n = _set_observers(graph, False)
            if log is not None:
                log(f"qat: {n} fake-quant observers frozen at step {global_step}/{total_steps}")

    # torchao's graphs forbid train()/eval(): the prepared graph stays as prepared.
    fit(graph, batches, ReidLoss(num_classes), channel_scaled_adam, epochs=max(0, epochs),
        schedule=LRSchedule("cosine", int(warmup * total_steps), total_steps, warmup_from=None),
        forward=qat_forward, before_step=freeze_observers, train_mode=False, log=log, name="qat")
    converted = convert_pt2e(graph, fold_quantize=False)
    wrapped = _EmbeddingOnly(converted)  # no .eval(): torchao forbids train()/eval() on its graphs
    # Re-export to a plain eval graph returning only the embedding (train-only heads drop out).
    with torch.no_grad():
        final = _export(wrapped, example)
    final.meta["edgereid_quantized"] = "int4-int8-qat" if int4_layers else "int8-qat"
    return final

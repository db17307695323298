"""Turn an eval-mode Re-ID model into one whose every op has an int8 TFLite kernel.

The only op of our backbones without one is the BN-neck's BatchNorm1d on the pooled
vector: TFLite has no BATCH_NORM, the converter lowers it to float MUL + ADD, and
PT2E cannot fold it into a conv because a mean sits in between. Two exact rewrites:

- a Linear before it (the head's `reduce` layer): fold the BN into that Linear;
- otherwise: replace it by a 1x1 depthwise conv (D MACs). Per-channel symmetric int8
  quantizes each channel's single weight exactly (to +-127), so the only rounding is
  the activation's.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def _bn_scale_shift(bn: nn.BatchNorm1d):
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
        1.0 / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias.detach() if bn.affine else torch.zeros_like(bn.running_mean)
    return scale, bias - bn.running_mean * scale


class DiagonalAffine(nn.Module):
    """y = x * scale + shift on [N, D] as a 1x1 depthwise conv: an int8 DEPTHWISE_CONV_2D.

    Per-channel symmetric int8 quantizes each channel's single weight exactly (to +-127).
    (NNCF 3.4 broke this form and a diagonal Linear alike, by treating all-positive weight
    channels as unsigned; `edgereid.compress.nncf_int8_fixes` undoes that.)
    """

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        dim = scale.numel()
        self.conv = nn.Conv2d(dim, dim, 1, groups=dim, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(scale.view(dim, 1, 1, 1))
            self.conv.bias.copy_(shift)
        self.conv.requires_grad_(False)

    def forward(self, x):
        return self.conv(x[:, :, None, None]).flatten(1)


def fold_bn_neck(model: nn.Module) -> nn.Module:
    """Rewrite every BatchNorm1d of `model` (in place, eval semantics); returns `model`."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, nn.BatchNorm1d):
                continue
            scale, shift = _bn_scale_shift(child)
            reduce = getattr(parent, "reduce", None)
            if child_name == "bnneck" and isinstance(reduce, nn.Linear):
                with torch.no_grad():
                    reduce.weight.mul_(scale[:, None])
                    b = reduce.bias if reduce.bias is not None else torch.zeros_like(shift)
                    new_bias = b * scale + shift
                if reduce.bias is None:
                    reduce.bias = nn.Parameter(new_bias)
                else:
                    reduce.bias.data.copy_(new_bias)
                setattr(parent, child_name, nn.Identity())
            else:
                setattr(parent, child_name, DiagonalAffine(scale, shift))
    return model


def _module_of(node, modules: dict, suffix: str):
    """The submodule whose parameter `node` (a get_attr of an exported graph) is, or None."""
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr" or not node.target.endswith(suffix):
        return None
    return modules.get(node.target[: -len(suffix)])


def fold_conv_bn(model: nn.Module, example: torch.Tensor, where=None) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d into that conv, in place.

    Eval semantics: the BN's running statistics and affine become the conv's weight and
    bias, and the BN becomes an Identity. Pairs are found on the exported graph of the
    forward `model(example)` runs (train- or eval-mode, as `model` is), so no naming
    convention is assumed; a conv whose output feeds anything besides its BN is left
    alone. `where(conv, bn) -> bool` restricts which pairs are folded. Returns how many
    pairs were folded.
    """
    aten = torch.ops.aten
    was_training = model.training
    with torch.no_grad():
        graph = torch.export.export(model, (example,), strict=False).module()
    model.train(was_training)
    modules = dict(model.named_modules())
    bn_targets = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default,
                  aten._native_batch_norm_legit.default, aten._native_batch_norm_legit_functional.default}
    pairs = []
    for node in graph.graph.nodes:
        if node.op != "call_function" or node.target not in bn_targets:
            continue
        conv_node = node.args[0]
        if not (isinstance(conv_node, torch.fx.Node) and conv_node.target is aten.conv2d.default
                and len(conv_node.users) == 1):
            continue
        conv = _module_of(conv_node.args[1], modules, ".weight")
        bn = _module_of(node.args[1], modules, ".weight") if node.args[1] is not None else \
            _module_of(node.args[3], modules, ".running_mean")
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and (where is None or where(conv, bn)):
            pairs.append((conv, bn))
    by_id = {id(m): name for name, m in modules.items()}
    for conv, bn in pairs:
        scale, shift = _bn_scale_shift(bn)
        with torch.no_grad():
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = conv.bias.detach() * scale + shift if conv.bias is not None else shift
        conv.bias = nn.Parameter(bias.clone())
        parent_name, _, child_name = by_id[id(bn)].rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child_name, nn.Identity())
    return len(pairs)


def prepare_for_export(model: nn.Module) -> nn.Module:
    """A deep-copied eval-mode model with the BN-neck folded; same outputs as `model.eval()`."""
    model = copy.deepcopy(model).eval()
    return fold_bn_neck(model)


class ChannelsLast(nn.Module):
    """NHWC in, as camera pipelines and TFLite Micro hand images over; NCHW inside."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.permute(0, 3, 1, 2))


def _mean_over_hw(node: torch.fx.Node) -> bool:
    """`node` is aten.mean.dim over the last two dims of a 4-D tensor, dropping them."""
    if node.op != "call_function" or node.target is not torch.ops.aten.mean.dim:
        return False
    x, dims = node.args[0], node.args[1]
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    val = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
    if keepdim or val is None or val.dim() != 4 or dims is None:
        return False
    return sorted(int(d) % 4 for d in dims) == [2, 3]


def pool_in_channels_last(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrite `x.mean(dim=(2, 3))` as `x.mean(dim=(2, 3), keepdim=True).flatten(1)`, in place.

    Same values. Why: litert-torch runs the NCHW graph channels-last inside and moves
    each op's axes, but it does not move a mean that drops the reduced axes: it put an
    int8 TRANSPOSE back to NCHW before the MEAN, and the firmware has no TRANSPOSE
    kernel. Keeping the reduced axes gives one MEAN over H, W of the NHWC tensor, then
    a RESHAPE. Done on the exported graph, so every model's pooling (ours or a user's)
    exports this way without touching how the model is written or trained.
    """
    aten = torch.ops.aten
    changed = False
    for node in list(graph.graph.nodes):
        if not _mean_over_hw(node):
            continue
        x = node.args[0]
        with graph.graph.inserting_after(node):
            flat = graph.graph.call_function(aten.flatten.using_ints, (node, 1, -1))
        node.replace_all_uses_with(flat, delete_user_cb=lambda user: user is not flat)
        flat.meta.update({k: v for k, v in node.meta.items() if k != "val"})
        flat.meta["val"] = node.meta.get("val")
        node.args = (x, [2, 3], True)
        node.kwargs = {}
        x_val = x.meta["val"]
        mode = getattr(x_val, "fake_mode", None)
        if mode is not None:
            with mode:
                node.meta["val"] = x_val.mean(dim=(2, 3), keepdim=True)
        changed = True
    if changed:
        graph.graph.lint()
        graph.recompile()
    return graph

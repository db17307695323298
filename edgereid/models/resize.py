"""Fit a freshly built model to the layer widths of a (pruned) state dict."""
from torch import nn


def resize_to_state_dict(model: nn.Module, state_dict: dict) -> nn.Module:
    """Shrink Conv2d/BatchNorm/Linear layers to the shapes in `state_dict` (a pruned model).

    Pruned checkpoints keep `model_name`/`model_args` of the original architecture; the
    per-layer widths are read back from the weights, so loading stays weights_only.
    """
    for name, module in list(model.named_modules()):
        w = state_dict.get(f"{name}.weight")
        if w is None:
            continue
        if isinstance(module, nn.Conv2d) and tuple(w.shape) != tuple(module.weight.shape):
            out_ch, in_per_group = w.shape[0], w.shape[1]
            depthwise = module.groups == module.in_channels and module.groups > 1
            groups = out_ch if depthwise else module.groups
            new = nn.Conv2d(in_per_group * groups, out_ch, module.kernel_size, module.stride, module.padding,
                            module.dilation, groups, bias=module.bias is not None)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and w.shape[0] != module.num_features:
            new = type(module)(w.shape[0], module.eps, module.momentum, module.affine, module.track_running_stats)
        elif isinstance(module, nn.Linear) and tuple(w.shape) != tuple(module.weight.shape):
            new = nn.Linear(w.shape[1], w.shape[0], bias=module.bias is not None)
        else:
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model

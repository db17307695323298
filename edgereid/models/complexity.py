"""One eval-mode forward with a hook on every leaf module: what complexity counts run on."""
from __future__ import annotations

import torch
from torch import nn


def trace_leaf_modules(model: nn.Module, input_size, hook) -> None:
    """Call `hook(module, inputs, output)` for every leaf module one eval forward of a zero
    image at `input_size` (H, W) runs; the model's train/eval mode is restored after."""
    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

"""Pruning: structured (filter) pruning to a MACs target with torch-pruning's DepGraph,
and unstructured magnitude pruning through `nncf.prune` (`prune_unstructured`).

torch-pruning's `pruning_ratio` removes a fraction of *channels*; MACs fall roughly with
its square (0.5 of the channels left 0.26 of the MACs on a small ResNet). Users ask for
MACs, so `prune` bisects the channel ratio until the pruned model's MACs (counted by
`edgereid.models.model_complexity`) are at or below the target. DepGraph prunes every
layer coupled to a channel together (a residual ADD's two inputs, BN, the next conv's
input), so shapes stay consistent. The embedding width is kept: every layer coupled to
the BN-neck input is left out, as are identity classifiers.
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from edgereid.errors import EdgereidError
from edgereid.models import model_complexity
from edgereid.models.switchable import reestimate_bn_statistics

# torch_pruning and nncf are imported inside the functions that use them: optional
# dependencies (tests skip without them), not needed to import the compress stage.

CRITERIA = ("l1", "l2", "fpgm", "taylor", "random")


def make_importance(criterion: str):
    """The torch-pruning importance for a criterion name (see CRITERIA)."""
    import torch_pruning as tp

    imp = tp.pruner.importance
    table = {
        "l1": lambda: imp.GroupMagnitudeImportance(p=1),
        "l2": lambda: imp.GroupMagnitudeImportance(p=2),
        "fpgm": lambda: imp.FPGMImportance(),
        "taylor": lambda: imp.GroupTaylorImportance(),
        "random": lambda: imp.RandomImportance(),
    }
    if criterion not in table:
        raise EdgereidError(f"unknown pruning criterion {criterion!r}; expected one of {', '.join(CRITERIA)}")
    return table[criterion]()


def _count_macs(model: nn.Module, input_size) -> tuple[int, int]:
    return model_complexity(model, tuple(input_size))


def _train_outputs(out) -> torch.Tensor:
    """A scalar touching every output so DepGraph traces train-only heads too."""
    if isinstance(out, torch.Tensor):
        return out.sum()
    tensors = []
    for item in out if isinstance(out, (tuple, list)) else [out]:
        if isinstance(item, torch.Tensor):
            tensors.append(item.sum())
        elif isinstance(item, (tuple, list)):
            tensors.extend(t.sum() for t in item if isinstance(t, torch.Tensor))
    return sum(tensors)


def _train_forward(model: nn.Module, x: torch.Tensor):
    """DepGraph's tracing calls model.eval(); trace the train-mode forward (all heads) instead."""
    model.train()
    return model(x)


def _protected_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """Layers whose output channels must not change: classifiers and the embedding's producers."""
    import torch_pruning as tp

    protected = []
    heads = [m for m in model.modules() if hasattr(m, "bnneck") and hasattr(m, "classifier")]
    for head in heads:
        protected += [m for m in (head.classifier, getattr(head, "reduce", None)) if isinstance(m, nn.Module)]
    main_head = getattr(model, "head", None)
    if main_head is not None and hasattr(main_head, "bnneck"):
        graph = tp.DependencyGraph().build_dependency(
            model, example_inputs=example, forward_fn=_train_forward, output_transform=_train_outputs)
        group = graph.get_pruning_group(main_head.bnneck, tp.prune_batchnorm_out_channels, idxs=[0])
        for dep, _ in group:
            layer = dep.target.module
            if isinstance(layer, (nn.Conv2d, nn.Linear)) and dep.handler in (
                    tp.prune_conv_out_channels, tp.prune_linear_out_channels):
                protected.append(layer)
    if not heads:  # a model without BN-neck heads: its Linear layers are the outputs
        protected += [m for m in model.modules() if isinstance(m, nn.Linear)]
    return protected


def _prune_once(model: nn.Module, criterion: str, channel_ratio: float, example: torch.Tensor,
                loss_fn: Callable | None, seed: int) -> nn.Module:
    """A pruned deep copy of `model` at a channel ratio (all prunable groups, same ratio)."""
    import torch_pruning as tp

    net = copy.deepcopy(model)
    protected = _protected_layers(net, example)
    # Trace in train mode so train-only heads (SCL-net's shallow head) follow the pruning;
    # building a DependencyGraph switches the model to eval, hence after the line above.
    net.train()
    importance = make_importance(criterion)
    pruner = tp.pruner.MetaPruner(
        net, example, importance=importance, pruning_ratio=channel_ratio,
        ignored_layers=protected, forward_fn=_train_forward, output_transform=_train_outputs,
        round_to=None, global_pruning=False)
    if criterion == "taylor":
        if loss_fn is None:
            raise EdgereidError("the taylor criterion needs a loss on a calibration batch (loss_fn=...)")
        net.train()  # DepGraph tracing leaves the model in eval mode
        net.zero_grad()
        loss_fn(net).backward()
    torch.manual_seed(seed)  # the random control criterion draws from the global generator
    pruner.step()
    net.zero_grad(set_to_none=True)
    return net


def recalibrate_bn(model: nn.Module, batches: Iterable, max_batches: int = 50) -> nn.Module:
    """Re-estimate BatchNorm running statistics of a pruned model on calibration data.

    Removing filters shifts the statistics of every following BN; a cumulative average
    (momentum=None) over `batches` in train mode, no gradients, no weight change.
    Pass training batches (`pipeline.train_loader`: P x K, training augmentations), the
    data BN was trained on. Measured: the trained resnet18 w0.25 base re-estimated on
    eval-transform images fell from mAP 37.9 to 19.9 (on training batches: 38.4); a
    re-estimation on those after fine-tuning was most of the 25-35 rank-1 points pruning
    seemed to cost.
    """
    return reestimate_bn_statistics(model, batches, max_batches)


@dataclass(frozen=True)
class PruneTarget:
    """What structured pruning must bring down, and to how much.

    `cost(model) -> float` must fall as channels are removed (MACs, a board's predicted
    latency); pruning stops at the least pruned model with cost <= `value`. `name` and
    `unit` word the reports and errors ("MACs ratio", "predicted latency on stm32h743", "ms").
    """
    name: str
    cost: Callable[[nn.Module], float]
    value: float
    unit: str = ""

    def describe(self, value: float) -> str:
        return f"{value:.4g}{' ' + self.unit if self.unit else 'x'}"


def macs_target(model: nn.Module, ratio: float, input_size) -> PruneTarget:
    """MACs at most `ratio` x those of `model` (counted by `model_complexity`)."""
    if not 0.0 < ratio <= 1.0:
        raise EdgereidError(f"target MACs ratio must be in (0, 1], got {ratio}")
    base = _count_macs(model, input_size)[1]
    return PruneTarget("MACs ratio", lambda m: _count_macs(m, input_size)[1] / base, ratio)


MAX_CHANNEL_RATIO = 0.95   # the most a bisection prunes of every prunable group


def prune_to_cost(model: nn.Module, example: torch.Tensor, target: PruneTarget, criterion: str = "l1",
                  loss_fn: Callable | None = None, seed: int = 0, tolerance: float = 0.005, max_iters: int = 12):
    """Bisect the channel ratio so target.cost(pruned) <= target.value.

    Returns (pruned model, channel ratio, achieved cost): the least pruned model meeting
    the target within `max_iters` bisection steps (stopping early once within
    `tolerance` x value of it). A target below what pruning every prunable group by
    MAX_CHANNEL_RATIO reaches is one clear error naming that smallest reachable cost.
    """
    if target.cost(model) <= target.value:
        return copy.deepcopy(model), 0.0, target.cost(model)
    lo, hi = 0.0, MAX_CHANNEL_RATIO
    best = None
    for _ in range(max_iters):
        mid = (lo + hi) / 2
        pruned = _prune_once(model, criterion, mid, example, loss_fn, seed)
        cost = target.cost(pruned)
        if cost <= target.value:
            best, hi = (pruned, mid, cost), mid
            if target.value - cost <= tolerance * abs(target.value):
                break
        else:
            lo = mid
    if best is None:
        pruned = _prune_once(model, criterion, MAX_CHANNEL_RATIO, example, loss_fn, seed)
        cost = target.cost(pruned)
        if cost > target.value * (1 + tolerance):
            raise EdgereidError(f"cannot reach {target.name} {target.describe(target.value)} by pruning channels: "
                                f"the smallest reachable is {target.describe(cost)} (every prunable group cut by "
                                f"{MAX_CHANNEL_RATIO:.0%}; the protected layers - stem, embedding, classifiers - "
                                "and unprunable ops cost the rest)")
        best = (pruned, MAX_CHANNEL_RATIO, cost)
    return best


def prune_to_macs(model: nn.Module, example: torch.Tensor, target_macs_ratio: float,
                  criterion: str = "l1", input_size=None, loss_fn: Callable | None = None,
                  seed: int = 0, tolerance: float = 0.005, max_iters: int = 12):
    """`prune_to_cost` with MACs(pruned) <= target_macs_ratio * MACs(model).

    Returns (pruned model, channel ratio, achieved MACs ratio)."""
    target = macs_target(model, target_macs_ratio, tuple(input_size or example.shape[-2:]))
    return prune_to_cost(model, example, target, criterion, loss_fn, seed, tolerance / target_macs_ratio, max_iters)


def prune(model: nn.Module, example: torch.Tensor, target: float | PruneTarget, criterion: str = "l1",
          calib: Iterable | None = None, steps: int = 1, finetune: Callable | None = None,
          loss_fn: Callable | None = None, seed: int = 0, input_size=None, log: Callable | None = None):
    """Structured filter pruning, one-shot or iterative, to `target`: a MACs ratio (e.g. 0.5)
    or a `PruneTarget` (e.g. a board's predicted latency, `edgereid.latency.latency_target`).

    `example`: a batch of images (>= 2, train-mode tracing needs BN batch statistics).
    `steps` > 1 prunes in geometric cost steps (e.g. 0.5x MACs in 2 steps: 0.71, then 0.5)
    and calls `finetune(model)` after each step but the last (the caller fine-tunes at the
    end). BN statistics are re-estimated on `calib` after every step. Taylor needs
    `loss_fn(model) -> scalar loss` on a calibration batch. Returns (model, report).
    """
    if example.shape[0] < 2:
        example = torch.cat([example, example])
    input_size = tuple(input_size or example.shape[-2:])
    if not isinstance(target, PruneTarget):
        target = macs_target(model, target, input_size)
    base_params, base_macs = _count_macs(model, input_size)
    base_cost = target.cost(model)
    current = model
    history = []
    for step in range(1, steps + 1):
        step_goal = base_cost * (target.value / base_cost) ** (step / steps)
        goal = PruneTarget(target.name, target.cost, step_goal, target.unit)
        current, ch_ratio, cost = prune_to_cost(current, example, goal, criterion, loss_fn, seed)
        if calib is not None:
            recalibrate_bn(current, calib)
        params, macs = _count_macs(current, input_size)
        history.append({"step": step, "channel_ratio": round(ch_ratio, 4), "cost": cost,
                        "macs_ratio": macs / base_macs, "params": params, "macs": macs})
        if log is not None:
            log(f"prune step {step}/{steps} ({criterion}): {target.name} {target.describe(cost)}, "
                f"MACs {macs / base_macs:.3f}x, params {params}")
        if finetune is not None and step < steps:
            current = finetune(current) or current
    params, macs = _count_macs(current, input_size)
    report = {"criterion": criterion, "target": {"name": target.name, "value": target.value, "unit": target.unit,
                                                 "before": base_cost, "reached": target.cost(current)},
              "steps": steps, "params_before": base_params, "macs_before": base_macs, "params_after": params,
              "macs_after": macs, "macs_ratio": macs / base_macs, "history": history}
    if target.name == "MACs ratio":
        report["target_macs_ratio"] = target.value
    return current.eval(), report


def weight_sparsity(model: nn.Module) -> dict:
    """Zero weights of the Conv2d/Linear layers the eval forward uses (no classifiers)."""
    total = zeros = 0
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and "classifier" not in name:
            total += module.weight.numel()
            zeros += int((module.weight == 0).sum())
    return {"weights": total, "zero_weights": zeros, "sparsity": zeros / max(1, total)}


def prune_unstructured(model: nn.Module, example: torch.Tensor, ratio: float, mode: str = "global",
                       finetune: Callable | None = None, log: Callable | None = None):
    """Unstructured magnitude pruning with `nncf.prune`; returns (plain model, report).

    `ratio` of the conv/linear weights become zero: the smallest |w| over all layers
    (`mode="global"`) or per layer (`"local"`). `finetune(masked_model)` may train the
    model while NNCF's masks keep the pruned weights at zero. The masks are then burnt
    into the weights (`nncf.strip(..., strip_format=StripFormat.IN_PLACE)`; the default
    NATIVE strip only converts quantizers and leaves the masks as hooks, which is how an
    earlier attempt read back 0.26% zeros) and the weights are copied into a copy of
    `model`, so the result carries no NNCF hooks and exports like any model.
    MACs do not change: the saving is in storage (zeros compress; see `zlib_bytes`).
    """
    import nncf
    from nncf.parameters import StripFormat

    modes = {"global": nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL,
             "local": nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL}
    if mode not in modes:
        raise EdgereidError(f"unknown unstructured pruning mode {mode!r}; expected 'global' or 'local'")
    if not 0.0 <= ratio < 1.0:
        raise EdgereidError(f"unstructured pruning ratio must be in [0, 1), got {ratio}")
    clean = copy.deepcopy(model).eval()
    masked = nncf.prune(copy.deepcopy(model).eval(), mode=modes[mode], ratio=ratio, examples_inputs=example)
    if finetune is not None:
        masked = finetune(masked) or masked
    stripped = nncf.strip(masked, do_copy=False, strip_format=StripFormat.IN_PLACE)
    weights = {k: v for k, v in stripped.state_dict().items() if k in clean.state_dict()}
    clean.load_state_dict(weights, strict=True)
    report = {"mode": mode, "ratio": ratio, **weight_sparsity(clean)}
    if log is not None:
        log(f"unstructured pruning ({mode}, {ratio:.2f}): {report['sparsity']:.4f} of "
            f"{report['weights']} weights are zero")
    return clean.eval(), report


def zlib_bytes(path) -> int:
    """Size of a file compressed with zlib level 9: what zeros save in flash with a
    compressed image (TFLite stores int8 weights dense, so the raw size does not change)."""
    return len(zlib.compress(Path(path).read_bytes(), 9))

"""Switchable batch normalisation (CM-NAS): one BN shared by both modalities, or one per modality.

A `SwitchableBatchNorm2d` / `SwitchableBatchNorm1d` holds one BN (`shared`) or two
(`split`: `visible` and `infrared`). Which samples are infrared is told to the module,
not passed through `forward`, so the traced / exported graph stays a plain one:
`set_modality(model, m)` (or the `modality(model, m)` context) with `m` one of

- `"visible"` or `"infrared"`: the whole batch is that modality;
- a tensor [N] (bool or 0/1; 1 = infrared): per sample. A split BN normalises each
  modality's samples with its own BN (in train mode: that half's batch statistics,
  updating that BN's running statistics), then puts them back in batch order;
- `None`: no modality; a split BN then refuses to run.

Shared BNs ignore the modality. At inference a split BN is one modality's BN, folded
into the conv like any BN: `for_modality(model, "visible"|"infrared")` returns a copy
whose switchable BNs are all plain `nn.BatchNorm2d` / `nn.BatchNorm1d`.
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from edgereid.errors import ModelError

MODALITIES = ("visible", "infrared")


class _SwitchableBatchNorm(nn.Module):
    _bn_type: type = nn.BatchNorm2d

    def __init__(self, num_features: int, split: bool = False):
        super().__init__()
        self.num_features = num_features
        self.split = bool(split)
        if self.split:
            self.visible = self._bn_type(num_features)
            self.infrared = self._bn_type(num_features)
        else:
            self.shared = self._bn_type(num_features)
        self.modality = None  # set by set_modality; not state (never saved)

    @property
    def choice(self) -> str:
        return "split" if self.split else "shared"

    def norms(self) -> list[nn.Module]:
        """The plain BN(s) inside, in the order shared | visible, infrared."""
        return [self.visible, self.infrared] if self.split else [self.shared]

    def plain(self, modality: str | None) -> nn.Module:
        """The plain BN that computes this one for `modality` (a shared BN ignores it)."""
        if not self.split:
            return self.shared
        if modality not in MODALITIES:
            raise ModelError(f"a split BN needs a modality ({' or '.join(MODALITIES)}), got {modality!r}")
        return getattr(self, modality)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.split:
            return self.shared(x)
        m = self.modality
        if m is None:
            raise ModelError("this model has split (per-modality) BNs: set the batch's modality with "
                             "edgereid.models.set_modality(model, 'visible'|'infrared'|tensor), or export "
                             "edgereid.models.for_modality(model, ...)")
        if isinstance(m, str):
            return self.plain(m)(x)
        infrared = torch.as_tensor(m, device=x.device).reshape(-1).bool()
        if infrared.numel() != x.shape[0]:
            raise ModelError(f"modality tensor has {infrared.numel()} entries for a batch of {x.shape[0]}")
        ir_idx = infrared.nonzero().flatten()
        vis_idx = (~infrared).nonzero().flatten()
        if ir_idx.numel() == 0:
            return self.visible(x)
        if vis_idx.numel() == 0:
            return self.infrared(x)
        out = torch.zeros_like(x)
        out = out.index_copy(0, vis_idx, self.visible(x.index_select(0, vis_idx)))
        return out.index_copy(0, ir_idx, self.infrared(x.index_select(0, ir_idx)))

    def extra_repr(self) -> str:
        return f"{self.num_features}, {self.choice}"


class SwitchableBatchNorm2d(_SwitchableBatchNorm):
    _bn_type = nn.BatchNorm2d


class SwitchableBatchNorm1d(_SwitchableBatchNorm):
    _bn_type = nn.BatchNorm1d


def switchable_bns(model: nn.Module) -> list[_SwitchableBatchNorm]:
    return [m for m in model.modules() if isinstance(m, _SwitchableBatchNorm)]


def _check_modality(m) -> None:
    if m is None or isinstance(m, torch.Tensor):
        return
    if m not in MODALITIES:
        raise ModelError(f"modality must be None, {' or '.join(repr(x) for x in MODALITIES)} or a tensor of "
                         f"0 (visible) / 1 (infrared) per sample, got {m!r}")


def set_modality(model: nn.Module, m) -> nn.Module:
    """Tell every switchable BN of `model` the modality of the next batches (see module doc)."""
    _check_modality(m)
    for bn in switchable_bns(model):
        bn.modality = m
    return model


@contextlib.contextmanager
def modality(model: nn.Module, m):
    """`set_modality` for the block, then back to what it was."""
    _check_modality(m)
    bns = switchable_bns(model)
    saved = [bn.modality for bn in bns]
    for bn in bns:
        bn.modality = m
    try:
        yield model
    finally:
        for bn, s in zip(bns, saved):
            bn.modality = s


def for_modality(model: nn.Module, m: str | None) -> nn.Module:
    """A deep copy of `model` computing it for modality `m` with plain BNs only.

    Every switchable BN becomes the plain BN its modality uses (a shared one for both),
    so the copy exports and folds like any model. `m=None` is allowed when no BN is split.
    """
    if m is not None and m not in MODALITIES:
        raise ModelError(f"for_modality: expected {' or '.join(repr(x) for x in MODALITIES)}, got {m!r}")
    out = copy.deepcopy(model)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _SwitchableBatchNorm):
                setattr(parent, name, child.plain(m))
    return out


BN_SWITCH_CHOICES = ("shared", "split")


def bn_switch_bits(switches, count: int) -> list[bool]:
    """CM-NAS's BN config as one bool per BN (True = split): `switches` is "shared" or
    "split" (all BNs), a string of 0/1 (one per BN, in build order), or a list of bools."""
    if isinstance(switches, str) and switches in BN_SWITCH_CHOICES:
        return [switches == "split"] * count
    if isinstance(switches, str):
        if set(switches) - {"0", "1"}:
            raise ModelError(f"bn_switches {switches!r}: expected 'shared', 'split' or a string of 0/1 "
                             f"(1 = split), one per BN")
        bits = [c == "1" for c in switches]
    else:
        bits = [bool(b) for b in switches]
    if len(bits) != count:
        raise ModelError(f"bn_switches has {len(bits)} entries but the model has {count} BN layers "
                         "(one switch per BN, in build order)")
    return bits


def make_switchable(model: nn.Module, switches) -> nn.Module:
    """Replace every plain BatchNorm2d / BatchNorm1d of `model` (in build order) by a
    switchable one, split where `switches` says (see `bn_switch_bits`). A split BN starts
    as two copies of the original (same affine parameters, statistics and settings), a
    shared one holds the original itself, so a model made switchable before training
    computes exactly what it did."""
    # In named_modules() order, the order switchable_bns() and bn_switches() report.
    sites = []
    for qualname, bn in model.named_modules():
        if type(bn) in (nn.BatchNorm2d, nn.BatchNorm1d):
            parent_name, _, name = qualname.rpartition(".")
            sites.append((model.get_submodule(parent_name), name, bn))
    bits = bn_switch_bits(switches, len(sites))
    for (parent, name, bn), split in zip(sites, bits):
        cls = SwitchableBatchNorm2d if isinstance(bn, nn.BatchNorm2d) else SwitchableBatchNorm1d
        sw = cls(bn.num_features, split=split)
        if split:
            sw.visible, sw.infrared = copy.deepcopy(bn), copy.deepcopy(bn)
        else:
            sw.shared = bn
        setattr(parent, name, sw)
    return model


def bn_switches(model: nn.Module) -> str:
    """The model's BN config as a string of 0/1 (1 = split), in build order."""
    return "".join("1" if bn.split else "0" for bn in switchable_bns(model))


def reestimate_bn_statistics(model: nn.Module, batches, max_batches: int = 50) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on `batches` (cumulative average,
    momentum None; train mode, no gradient, no weight change); the mode and momenta are
    restored after. Batches are images, `(images, pids, ...)` or two-modality
    `(images, (pids, modality))` (the modality is set for split BNs); a batch of one image
    is skipped (no batch statistics)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for i, batch in enumerate(batches):
                if i >= max_batches:
                    break
                images = (batch[0] if isinstance(batch, (tuple, list)) else batch).float()
                targets = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
                if isinstance(targets, (tuple, list)):
                    set_modality(model, targets[1])
                if images.shape[0] > 1:
                    model(images)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)
    return model

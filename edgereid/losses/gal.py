"""BiRe-ID's generative adversarial learning terms (Xu et al., TOMM 2022), our reading of DESIGN.md.

KR-GAL (kernel refining): for every binary layer with latent kernel W and binarized kernel
W_b = alpha * sign(W) (times mean |W| for a magnitude-aware kernel quantizer),
- an MSE term (lambda / 2) * ||W - W_b||^2, summed over every binary layer's weights, with
  sign(W) held constant (the gradient reaches W and alpha);
- an adversarial term: a discriminator (fully connected + LeakyReLU blocks) tells real kernel
  slices (one k x k slice per (output, input) channel pair, divided by the layer's mean |W|) from
  binarized ones; the generator (W through the quantizer's straight-through gradient, alpha)
  is trained to make W_b pass for real.
FR-GAL (feature refining), for each (low, high) pair of stage outputs:
- a_H* = nearest-upsample(1x1 conv(a_H)), the high-level feature mapped onto the low-level
  one's shape, computed from a_H.detach(): no gradient flows into the high-level branch;
- an MSE term (mu / 2) * ||a_L - a_H*||^2 (per image, summed over C x H x W, mean over the
  batch): trains the 1x1 conv and pulls a_L;
- an adversarial term: a discriminator on per-pixel channel vectors tells a_H* (real) from
  a_L (generated); the low-level branch is trained to fool it.
Adversarial terms: the discriminator minimises BCE on detached inputs, the generator the
non-saturating BCE against a frozen copy of the discriminator's parameters, so one backward
and one optimizer step (edgereid.engine.fit's) train both sides.

This module imports no model: the caller passes the layers and modules (duck-typed: a binary
layer has `weight` and `quantized_kernel()`; `gal_training(model, ...)` reads
`model.binary_layers()` and `model.feature_pairs()`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from edgereid.errors import ModelError

__all__ = ["Discriminator", "KRGAL", "FRGAL", "GalObjective", "gal_training", "GalTraining"]


class Discriminator(nn.Module):
    """`blocks` x (Linear -> LeakyReLU(0.2)), then Linear -> one logit per sample."""

    def __init__(self, in_dim: int, hidden: int = 64, blocks: int = 2):
        super().__init__()
        layers, dim = [], in_dim
        for _ in range(blocks):
            layers += [nn.Linear(dim, hidden), nn.LeakyReLU(0.2)]
            dim = hidden
        layers.append(nn.Linear(dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).squeeze(-1)


def adversarial_losses(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(discriminator loss, generator loss): D on detached samples (real -> 1, fake -> 0); G: the
    fake samples through D's parameters detached, labelled real (non-saturating)."""
    d_real, d_fake = disc(real.detach()), disc(fake.detach())
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    frozen = {k: v.detach() for k, v in disc.named_parameters()}
    g_logits = functional_call(disc, frozen, (fake,))
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    return d_loss, g_loss


class KRGAL(nn.Module):
    """Kernel-refining GAL over `layers` (binary layers; not registered here, they belong to the model)."""

    def __init__(self, layers, lam: float = 1e-4, adversarial: float = 0.1, hidden: int = 64,
                 slice_size: int = 9, samples_per_layer: int | None = 1024):
        super().__init__()
        self._layers = list(layers)  # a plain list: their parameters stay the model's
        self.lam, self.adversarial = float(lam), float(adversarial)
        self.slice_size, self.samples = int(slice_size), samples_per_layer
        self.disc = Discriminator(self.slice_size, hidden)

    def mse(self) -> torch.Tensor:
        """sum over layers of ||W - W_b||^2, sign(W) held constant (times lambda / 2 in forward)."""
        total = None
        for layer in self._layers:
            values, scale = layer.quantized_kernel()
            wb = values.detach() if scale is None else values.detach() * scale.view(-1, *([1] * (values.dim() - 1)))
            term = (layer.weight - wb).pow(2).sum()
            total = term if total is None else total + term
        return total if total is not None else torch.zeros(())

    def slices(self, layer) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, binarized) kernel slices of one layer, [n, slice_size], divided by its mean |W|."""
        w = layer.weight
        values, scale = layer.quantized_kernel()
        wb = values if scale is None else values * scale.view(-1, *([1] * (values.dim() - 1)))
        norm = w.detach().abs().mean().clamp(min=1e-12)
        size = self.slice_size if w.dim() == 4 and w.shape[-1] * w.shape[-2] == self.slice_size else None
        if size is None:  # a linear or a 1x1 kernel: cut the flat kernel into slice_size chunks
            n = w.numel() // self.slice_size * self.slice_size
            return (w.reshape(-1)[:n].reshape(-1, self.slice_size) / norm,
                    wb.reshape(-1)[:n].reshape(-1, self.slice_size) / norm)
        return w.reshape(-1, size) / norm, wb.reshape(-1, size) / norm

    def forward(self) -> tuple[torch.Tensor, dict]:
        mse = self.mse()
        loss = 0.5 * self.lam * mse
        terms = {"kr_mse": float(mse.detach())}
        if self.adversarial > 0 and self._layers:
            reals, fakes = [], []
            for layer in self._layers:
                real, fake = self.slices(layer)
                if real.shape[0] == 0:
                    continue
                if self.samples is not None and real.shape[0] > self.samples:
                    idx = torch.randperm(real.shape[0])[:self.samples]
                    real, fake = real[idx], fake[idx]
                reals.append(real)
                fakes.append(fake)
            d_loss, g_loss = adversarial_losses(self.disc, torch.cat(reals), torch.cat(fakes))
            loss = loss + self.adversarial * (d_loss + g_loss)
            terms.update(kr_d=float(d_loss.detach()), kr_g=float(g_loss.detach()))
        return loss, terms


class FRGAL(nn.Module):
    """Feature-refining GAL over (low, high) feature pairs: `pairs` = [(c_low, c_high, factor)]."""

    def __init__(self, pairs, mu: float = 1e-3, adversarial: float = 0.1, hidden: int = 64,
                 samples_per_pair: int | None = 2048):
        super().__init__()
        self.pairs = [(int(cl), int(ch), int(f)) for cl, ch, f in pairs]
        self.mu, self.adversarial, self.samples = float(mu), float(adversarial), samples_per_pair
        self.maps = nn.ModuleList(nn.Conv2d(ch, cl, 1) for cl, ch, _ in self.pairs)
        self.discs = nn.ModuleList(Discriminator(cl, hidden) for cl, _, _ in self.pairs)

    def refined(self, i: int, high: torch.Tensor, size) -> torch.Tensor:
        """a_H*: the high-level feature (detached) mapped by the 1x1 conv and upsampled (nearest) to `size`."""
        mapped = self.maps[i](high.detach())
        factor = self.pairs[i][2]
        if factor != 1:
            mapped = F.interpolate(mapped, scale_factor=factor, mode="nearest")
        if tuple(mapped.shape[-2:]) != tuple(size):
            mapped = F.interpolate(mapped, size=tuple(size), mode="nearest")
        return mapped

    def forward(self, lows, highs) -> tuple[torch.Tensor, dict]:
        loss, mse_total, d_total, g_total = 0.0, 0.0, 0.0, 0.0
        for i, (low, high) in enumerate(zip(lows, highs)):
            target = self.refined(i, high, low.shape[-2:])
            mse = (low - target).pow(2).flatten(1).sum(1).mean()
            loss = loss + 0.5 * self.mu * mse
            mse_total += float(mse.detach())
            if self.adversarial > 0:
                c = low.shape[1]
                real = target.permute(0, 2, 3, 1).reshape(-1, c)
                fake = low.permute(0, 2, 3, 1).reshape(-1, c)
                if self.samples is not None and fake.shape[0] > self.samples:
                    idx = torch.randperm(fake.shape[0])[:self.samples]
                    real, fake = real[idx], fake[idx]
                d_loss, g_loss = adversarial_losses(self.discs[i], real, fake)
                loss = loss + self.adversarial * (d_loss + g_loss)
                d_total += float(d_loss.detach())
                g_total += float(g_loss.detach())
        terms = {"fr_mse": mse_total}
        if self.adversarial > 0:
            terms.update(fr_d=d_total, fr_g=g_total)
        return loss, terms


class GalObjective(nn.Module):
    """Re-ID loss + KR-GAL + FR-GAL. Features are read by forward hooks on the (low, high) modules.
    `warmup_steps`: the GAL terms are scaled by (step + 1) / warmup_steps over the first steps (the
    step count is a buffer: checkpoints keep it), so the binary network first recovers from its
    float initialisation under the Re-ID loss alone."""

    def __init__(self, reid_loss, krgal: KRGAL | None = None, frgal: FRGAL | None = None, feature_modules=(),
                 warmup_steps: int = 0):
        super().__init__()
        self.reid_loss, self.krgal, self.frgal = reid_loss, krgal, frgal
        self.warmup_steps = int(warmup_steps)
        if self.warmup_steps > 0:
            self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._modules_low_high = list(feature_modules)
        self._features: dict[int, torch.Tensor] = {}
        self._handles = []
        for low, high in self._modules_low_high:
            for m in (low, high):
                self._handles.append(m.register_forward_hook(self._keep))

    def _keep(self, module, inputs, output):
        if module.training:
            self._features[id(module)] = output

    def close(self) -> None:
        """Remove the feature hooks (the model goes on without them)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._features = {}

    def terms(self, outputs, pids) -> tuple[torch.Tensor, dict]:
        loss, metrics = self.reid_loss.terms(outputs, pids)
        scale = 1.0
        if self.warmup_steps > 0:
            scale = min(1.0, float(self.step + 1) / self.warmup_steps)
            self.step += 1
            metrics["gal_scale"] = scale
        if self.krgal is not None:
            kr, kr_terms = self.krgal()
            loss = loss + scale * kr
            metrics.update(kr_terms)
        if self.frgal is not None:
            lows = [self._features[id(low)] for low, _ in self._modules_low_high]
            highs = [self._features[id(high)] for _, high in self._modules_low_high]
            fr, fr_terms = self.frgal(lows, highs)
            loss = loss + scale * fr
            metrics.update(fr_terms)
        self._features.clear()
        return loss, metrics


class GalTraining:
    """What the training loop needs to train `model` with GAL terms: `module` (model + GAL parts,
    one optimizer over both), `forward`, `loss`, and the checkpoint split / join of its state."""

    PREFIX_MODEL, PREFIX_GAL = "model.", "gal."

    def __init__(self, model: nn.Module, objective: GalObjective):
        self.model, self.objective = model, objective
        self.module = nn.ModuleDict({"model": model, "gal": objective})

    @staticmethod
    def forward(module, batch):
        return module["model"](batch[0])

    def loss(self, outputs, pids):
        return self.objective.terms(outputs, pids)

    def split_state(self, state_dict: dict) -> tuple[dict, dict]:
        """(the model's state_dict, the GAL parts') from the combined module's."""
        model_sd = {k[len(self.PREFIX_MODEL):]: v for k, v in state_dict.items() if k.startswith(self.PREFIX_MODEL)}
        gal_sd = {k[len(self.PREFIX_GAL):]: v for k, v in state_dict.items() if k.startswith(self.PREFIX_GAL)}
        return model_sd, gal_sd

    def join_state(self, model_sd: dict, gal_sd: dict) -> dict:
        return {**{self.PREFIX_MODEL + k: v for k, v in model_sd.items()},
                **{self.PREFIX_GAL + k: v for k, v in gal_sd.items()}}

    def close(self) -> None:
        self.objective.close()


def gal_training(model: nn.Module, reid_loss, kr_gal: float | None = None, fr_gal: float | None = None,
                 adversarial: float = 0.1, warmup_steps: int = 0) -> GalTraining | None:
    """GalTraining for `model` with KR-GAL (lambda = kr_gal) and / or FR-GAL (mu = fr_gal); None when
    both are None; the GAL terms ramp up linearly over `warmup_steps` (GalObjective). `model`
    provides `binary_layers()` -> [(name, layer)] and `feature_pairs()` ->
    [(low module name, high module name, c_low, c_high, factor)]."""
    if kr_gal is None and fr_gal is None:
        return None
    from_model = [m for m in ("binary_layers", "feature_pairs") if not hasattr(model, m)]
    if from_model:
        raise ModelError(f"{type(model).__name__} has no {' / '.join(from_model)}: KR-GAL / FR-GAL need a binary "
                         f"model that names its binary layers and feature pairs (bireid_resnet18)")
    krgal = frgal = None
    modules = []
    if kr_gal is not None:
        layers = [layer for _, layer in model.binary_layers()]
        if not layers:
            raise ModelError(f"KR-GAL: {type(model).__name__} has no binary layer (a real-valued model?)")
        krgal = KRGAL(layers, lam=kr_gal, adversarial=adversarial)
    if fr_gal is not None:
        pairs = model.feature_pairs()
        frgal = FRGAL([(cl, ch, f) for _, _, cl, ch, f in pairs], mu=fr_gal, adversarial=adversarial)
        modules = [(model.get_submodule(lo), model.get_submodule(hi)) for lo, hi, _, _, _ in pairs]
    return GalTraining(model, GalObjective(reid_loss, krgal, frgal, modules, warmup_steps))

"""Training the supernet through the one training loop, and scoring its sub-networks.

Each step trains one sub-network: the largest of the space every `LARGEST_EVERY` steps
(the sandwich rule's upper bound, which keeps the shared weights' top slices trained),
a uniformly drawn one otherwise, with its BN switches drawn too. The draw depends on
(seed, step) only, so a resumed supernet training is the uninterrupted one.

A sub-network is scored on a validation split held out of the training identities (the
test split stays untouched by the search): its BN statistics re-estimated on training
batches, then mAP (infrared query -> visible gallery for two-modality data, Market rules
otherwise).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgereid.data import ImageRecord, ReidDataset, ReidImageDataset, build_transforms
from edgereid.data.records import relabel
from edgereid.engine import LRSchedule, fit, load_checkpoint, save_checkpoint
from edgereid.engine.batches import PKBatches, mix_seed
from edgereid.engine.evaluator import extract_features, l2_normalise
from edgereid.errors import EdgereidError
from edgereid.losses import CrossModalLoss, ReidLoss
from edgereid.metrics import evaluate_rank
from edgereid.models import set_modality
from edgereid.models.supernet import SuperNet
from edgereid.search_space import Architecture
from edgereid.search_space.architecture import Block, Head, Stem
from edgereid.search_space.space import SearchSpace, sample

LARGEST_EVERY = 4


def largest_architecture(space: SearchSpace, rng: random.Random) -> Architecture:
    """Widest, deepest, largest kernel and expansion, least stride; BN switches drawn."""
    blocks = []
    for bc in space.blocks:
        depth, expand = max(bc.depths), max(bc.expands)
        n_bn = depth * (3 if expand > 1 else 2)
        blocks.append(Block(width=max(bc.widths), depth=depth, kernel=max(bc.kernels), stride=min(bc.strides),
                            expand=expand, precision=bc.precisions[0],
                            bn=tuple(rng.choice(space.bn_choices) for _ in range(n_bn))))
    return Architecture(space.input_shape, Stem(max(space.stem.widths), space.stem.kernel, space.stem.stride,
                                                rng.choice(space.bn_choices)),
                        tuple(blocks), Head(max(space.embeddings), rng.choice(space.bn_choices)), space.name)


def step_architecture(space: SearchSpace, seed: int, step: int) -> Architecture:
    rng = random.Random(mix_seed(seed, step, 11))
    return largest_architecture(space, rng) if step % LARGEST_EVERY == 0 else sample(space, rng)


@dataclass
class SearchData:
    """The training records the supernet learns from and the held-out validation split."""
    train: list[ImageRecord]
    num_classes: int
    val_query: list[ImageRecord]
    val_gallery: list[ImageRecord]
    cross_modal: bool


def split_validation(dataset: ReidDataset, fraction: float = 0.2, seed: int = 0) -> SearchData:
    """Hold `fraction` of the training identities out as the search's validation split."""
    pids = sorted({r.pid for r in dataset.train})
    rng = np.random.default_rng([seed, 17])
    n_val = max(2, int(round(fraction * len(pids))))
    if len(pids) - n_val < 2:
        raise EdgereidError(f"search: {dataset.name} has {len(pids)} training identities; at least {n_val + 2} "
                            "are needed to hold out a validation split")
    val = set(int(p) for p in rng.choice(pids, n_val, replace=False))
    train, num_classes = relabel([r for r in dataset.train if r.pid not in val])
    held = [r for r in dataset.train if r.pid in val]
    cross_modal = {r.modality for r in dataset.train} == {"visible", "infrared"}
    if cross_modal:
        query = [r for r in held if r.modality == "infrared"]
        gallery = [r for r in held if r.modality == "visible"]
    else:
        first: dict[tuple, ImageRecord] = {}
        for r in held:
            first.setdefault((r.pid, r.camid), r)
        query, gallery = list(first.values()), held
    return SearchData(train, num_classes, query, gallery, cross_modal)


def _batches(space: SearchSpace, data: SearchData, p: int, k: int, seed: int) -> PKBatches:
    size = space.input_shape[:2]
    images = ReidImageDataset(data.train, build_transforms(tuple(size), train=True))
    return PKBatches(images, data.train, p, k, seed, cross_modal=data.cross_modal)


def train_supernet(space: SearchSpace, data: SearchData, out, *, epochs: int, p: int = 8, k: int = 4,
                   lr: float = 1e-3, seed: int = 0, resume: bool = False, max_minutes: float | None = None,
                   progress: bool = True, log=None) -> tuple[SuperNet, dict]:
    """Train (or resume) the supernet; checkpoint at `out` (an edgereid checkpoint)."""
    out = Path(out)
    torch.manual_seed(seed)
    model = SuperNet(space, data.num_classes)
    batches = _batches(space, data, p, k, seed)
    steps = batches.steps_per_epoch()
    schedule = LRSchedule("cosine", steps, epochs * steps, steps)
    loss = CrossModalLoss(data.num_classes) if data.cross_modal else ReidLoss(data.num_classes)
    ckpt = load_checkpoint(out) if resume and out.is_file() else None
    if ckpt is not None and ckpt.get("finished") and ckpt.get("epochs") == epochs:
        model.load_state_dict(ckpt["state_dict"])
        return model, ckpt
    args = {"space": space.name, "num_classes": data.num_classes}

    def save(state: dict) -> None:
        save_checkpoint(out, model_name="supernet", model_args=args, epochs=epochs,
                        preprocess={"size": list(space.input_shape[:2])}, **state)

    def forward(net, batch):
        if data.cross_modal:
            set_modality(net, batch[1][1])
        return net(batch[0])

    result = fit(model, batches, loss.terms, lambda m: torch.optim.Adam(m.parameters(), lr=lr, weight_decay=5e-4),
                 epochs=epochs, schedule=schedule, forward=forward,
                 before_step=lambda step: model.set_active(step_architecture(space, seed, step)),
                 resume=ckpt, save=save, max_minutes=max_minutes, log=log, name="supernet", progress=progress,
                 log_path=out.with_suffix(".jsonl"))
    return model, {"finished": result.finished, "global_step": result.global_step, "epochs": epochs}


class SubnetScorer:
    """mAP of a sub-network on the validation split, after re-estimating its BN statistics."""

    def __init__(self, supernet: SuperNet, space: SearchSpace, data: SearchData, seed: int = 0,
                 calib_batches: int = 8, p: int = 8, k: int = 4):
        self.supernet, self.data, self.calib_batches = supernet, data, calib_batches
        self.size = tuple(space.input_shape[:2])
        plan = _batches(space, data, p, k, seed)
        first = plan.plan(0)[:calib_batches]
        self.calib = list(plan.load(0, first, 0))    # the same batches for every candidate

    def __call__(self, arch: Architecture) -> float:
        net = self.supernet.set_active(arch)
        net.recalibrate(self.calib, self.calib_batches)
        qf, qp, qc = extract_features(net, self.data.val_query, self.size)
        gf, gp, gc = extract_features(net, self.data.val_gallery, self.size)
        dist = 1.0 - l2_normalise(qf).astype(np.float64) @ l2_normalise(gf).astype(np.float64).T
        return float(evaluate_rank(dist, qp, gp, qc, gc).mAP)

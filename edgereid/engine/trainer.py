"""Training: label-smoothed CE + batch-hard triplet on P x K batches, resumable bit for bit.

Why a resumed run equals an uninterrupted one:
- the batches of an epoch are drawn once, by a PKSampler seeded from (seed, epoch),
  and stored in every checkpoint of that epoch, so a resume continues the same list;
- each batch's augmentations run under RNGs seeded from (seed, epoch, step), saved and
  restored around the load, so they do not depend on what ran before (nor on worker
  processes when num_workers > 0);
- model, optimizer, LR schedule, step counters and the global torch / numpy / python
  RNG states are all in the checkpoint, and deterministic algorithms are switched on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgereid.atomic import write_text
from edgereid.engine.checkpoint import (capture_rng_state, load_checkpoint, restore_rng_state,
                                        save_checkpoint)
from edgereid.errors import CheckpointError, EdgereidError
from edgereid.data import IMAGENET_MEAN, IMAGENET_STD, PKSampler, ReidImageDataset, build_transforms, load_dataset
from edgereid.losses import CrossEntropyLabelSmooth, TripletLoss
from edgereid.models import build_model


# Fields a resumed run may change; any other difference from the checkpoint is refused,
# because the continued run would no longer be the one that was started.
RESUME_MAY_CHANGE = ("epochs", "max_minutes", "stop_after_steps", "num_workers", "progress", "out")


@dataclass
class TrainConfig:
    model: str = "sclnet"
    data: str = "synthetic"
    epochs: int = 30
    p: int = 16  # identities per batch
    k: int = 4  # images per identity
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9  # sgd only
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    schedule: str = "cosine"  # cosine | step
    step_milestones: tuple = ()  # epochs where the step schedule multiplies lr by step_gamma
    step_gamma: float = 0.1
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    triplet_weight: float = 1.0
    seed: int = 0
    embedding_dim: int | None = None
    width: float = 1.0
    image_size: tuple = (128, 64)  # H, W
    out: str = "out/train"
    num_workers: int = 0
    max_minutes: float | None = None  # stop (after a checkpoint) when this much time has passed
    checkpoint_every_steps: int = 0  # also checkpoint mid-epoch every N steps (0 = only per epoch)
    stop_after_steps: int | None = None  # stop (after a checkpoint) after N steps of this invocation
    log_every_steps: int = 10
    progress: bool = True

    def validate(self) -> "TrainConfig":
        def bad(name, expected):
            raise EdgereidError(f"train config: {name}={getattr(self, name)!r}, expected {expected}")

        if self.optimizer not in ("adam", "sgd"):
            bad("optimizer", "adam or sgd")
        if self.schedule not in ("cosine", "step"):
            bad("schedule", "cosine or step")
        for name in ("epochs", "p", "k"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "a positive integer")
        if self.p < 2:
            bad("p", "at least 2 identities per batch (the triplet loss needs negatives)")
        if not self.lr > 0:
            bad("lr", "> 0")
        if self.warmup_epochs < 0:
            bad("warmup_epochs", ">= 0")
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            bad("image_size", "(H, W), each at least 16")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        d["step_milestones"] = list(self.step_milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise EdgereidError(f"train config: unknown field(s) {', '.join(unknown)}")
        d = dict(d)
        if "image_size" in d:
            d["image_size"] = tuple(d["image_size"])
        if "step_milestones" in d:
            d["step_milestones"] = tuple(d["step_milestones"])
        return cls(**d)


class WarmupSchedule:
    """LR multiplier per optimizer step: linear warm-up from 0.1, then cosine to 0 or steps.

    A plain object (not a closure) so LambdaLR saves its fields in state_dict.
    """

    def __init__(self, kind: str, warmup_steps: int, total_steps: int, steps_per_epoch: int,
                 milestones=(), gamma: float = 0.1):
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.steps_per_epoch = int(steps_per_epoch)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return 0.1 + 0.9 * step / self.warmup_steps
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / span)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        epoch = step // max(1, self.steps_per_epoch)
        return self.gamma ** sum(epoch >= m for m in self.milestones)


@contextlib.contextmanager
def seeded_rngs(seed: int):
    """Run a block under torch / numpy / python RNGs seeded with `seed`; restore them after."""
    saved = capture_rng_state()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        restore_rng_state(saved)


def _mix_seed(*parts: int) -> int:
    """A fixed (run-to-run stable, unlike hash()) seed from several integers."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def epoch_batches(records, p: int, k: int, seed: int, epoch: int) -> list[list[int]]:
    """The P x K index batches of one epoch, drawn by the data stage's PKSampler."""
    sampler = PKSampler(records, p, k, seed=seed)
    sampler.set_epoch(epoch)  # the order depends on (seed, epoch) only
    items = list(sampler)
    if items and isinstance(items[0], (list, tuple)):  # a batch sampler
        batches = [[int(i) for i in b] for b in items]
    else:  # a flat index sampler: consecutive runs of P*K make the batches
        n = p * k
        batches = [[int(i) for i in items[s:s + n]] for s in range(0, len(items) - n + 1, n)]
    if not batches:
        raise EdgereidError(f"training set gives no P x K batch (P={p}, K={k}, {len(records)} images, "
                            f"{len({r.pid for r in records})} ids): lower --p/--k or use more data")
    return batches


class BatchLoader(torch.utils.data.Dataset):
    """Item `step` = the stacked images and pids of batch `step`, augmented under fixed seeds."""

    def __init__(self, images, batches, seed: int, epoch: int):
        self.images, self.batches, self.seed, self.epoch = images, batches, seed, epoch

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, step):
        with seeded_rngs(_mix_seed(self.seed, self.epoch, step, 7)):
            items = [self.images[i] for i in self.batches[step]]
        return torch.stack([it[0] for it in items]), torch.tensor([int(it[1]) for it in items])


def _batches_after(images, batches, seed, epoch, start_step, num_workers):
    loader = BatchLoader(images, batches, seed, epoch)
    steps = range(start_step, len(batches))
    if num_workers <= 0:
        return (loader[s] for s in steps)
    return iter(torch.utils.data.DataLoader(loader, batch_size=None, sampler=list(steps),
                                            num_workers=num_workers))


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=True)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def preprocess_of(cfg: TrainConfig) -> dict:
    return {"size": [int(s) for s in cfg.image_size], "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "channel_order": "rgb"}


def _check_resume_config(cfg: TrainConfig, saved: dict, path: Path) -> None:
    now = cfg.to_dict()
    for name, value in saved.items():
        if name in RESUME_MAY_CHANGE or name not in now:
            continue
        if now[name] != value:
            raise CheckpointError(f"checkpoint {path}: cannot resume with {name}={now[name]!r}, "
                                  f"the run was started with {name}={value!r}")


def _rewrite_log_until(log_path: Path, global_step: int) -> None:
    """Drop log lines written after the checkpoint being resumed (they will be redone)."""
    if not log_path.is_file():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            if json.loads(line).get("global_step", 0) <= global_step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    write_text(log_path, "".join(x + "\n" for x in kept))


def train(cfg: TrainConfig, resume: bool = False, dataset=None) -> Path:
    """Train `cfg.model` on `cfg.data` (or an already loaded `dataset`); return the checkpoint path.

    The returned `out/last.pt` holds the final model, or, when `max_minutes` or
    `stop_after_steps` stopped the run early, the state to resume from (its
    `finished` field says which).
    """
    cfg.validate()
    out = Path(cfg.out)
    last = out / "last.pt"
    log_path = out / "train_log.jsonl"
    if dataset is None:
        dataset = load_dataset(cfg.data)
    records = dataset.train
    num_classes = dataset.num_train_pids
    images = ReidImageDataset(records, build_transforms(tuple(cfg.image_size), train=True))

    ckpt = None
    if resume:
        ckpt = load_checkpoint(last)
        if "optimizer" not in ckpt:
            raise CheckpointError(f"checkpoint {last}: holds no training state to resume from")
        _check_resume_config(cfg, ckpt["train_config"], last)

    prev_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        # Seed before building, so the initial weights depend on the seed alone.
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        model_args = {"num_classes": num_classes, "embedding_dim": cfg.embedding_dim, "width": cfg.width}
        model = build_model(cfg.model, **model_args)
        optimizer = build_optimizer(cfg, model)
        steps_per_epoch = len(epoch_batches(records, cfg.p, cfg.k, cfg.seed, 0))
        schedule = WarmupSchedule(cfg.schedule, cfg.warmup_epochs * steps_per_epoch,
                                  cfg.epochs * steps_per_epoch, steps_per_epoch,
                                  cfg.step_milestones, cfg.step_gamma)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        ce = CrossEntropyLabelSmooth(num_classes, cfg.label_smoothing)
        triplet = TripletLoss(cfg.triplet_margin)

        epoch, step, global_step, batches = 0, 0, 0, None
        if ckpt is not None:
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            # The schedule's horizon follows the (possibly extended) number of epochs.
            scheduler.lr_lambdas[0].total_steps = cfg.epochs * steps_per_epoch
            epoch, step, global_step = ckpt["epoch"], ckpt["step"], ckpt["global_step"]
            if step > 0:
                batches = ckpt["epoch_batches"].tolist()
            restore_rng_state(ckpt["rng"])
            _rewrite_log_until(log_path, global_step)
            if ckpt.get("torch_threads", torch.get_num_threads()) != torch.get_num_threads():
                # CPU kernels split reductions by thread: another count rounds differently.
                warnings.warn(f"resuming {last} with {torch.get_num_threads()} torch threads; it was written "
                              f"with {ckpt['torch_threads']}: the result will not be bit-identical to an "
                              f"uninterrupted run")
        elif log_path.exists():
            write_text(log_path, "")

        def checkpoint(epoch_, step_, batches_, finished):
            save_checkpoint(
                last, model_name=cfg.model, model_args=model_args, state_dict=model.state_dict(),
                preprocess=preprocess_of(cfg), train_config=cfg.to_dict(), optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(), epoch=epoch_, step=step_, global_step=global_step,
                epoch_batches=torch.tensor(batches_ if step_ > 0 else [], dtype=torch.int64),
                rng=capture_rng_state(), finished=finished, num_train_pids=num_classes,
                torch_threads=torch.get_num_threads())

        started = time.monotonic()
        steps_this_run, stop = 0, False
        log_file = open_log_for_append(log_path)
        try:
            model.train()
            while epoch < cfg.epochs:
                if batches is None:
                    batches = epoch_batches(records, cfg.p, cfg.k, cfg.seed, epoch)
                bar = tqdm(total=len(batches), initial=step, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           disable=not cfg.progress, leave=False, dynamic_ncols=True)
                for imgs, pids in _batches_after(images, batches, cfg.seed, epoch, step, cfg.num_workers):
                    outputs = model(imgs)
                    ce_loss = sum(ce(logits, pids) for logits in outputs.logits)
                    tri_loss = sum(triplet(feat, pids) for feat in outputs.features)
                    loss = ce_loss + cfg.triplet_weight * tri_loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    lr = optimizer.param_groups[0]["lr"]
                    scheduler.step()
                    step += 1
                    global_step += 1
                    steps_this_run += 1
                    acc = (outputs.logits[-1].argmax(1) == pids).float().mean().item()
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
                    if global_step % max(1, cfg.log_every_steps) == 0 or step == len(batches):
                        elapsed = time.monotonic() - started
                        log_file.write(json.dumps({
                            "epoch": epoch, "step": step, "global_step": global_step, "loss": loss.item(),
                            "ce": ce_loss.item(), "triplet": tri_loss.item(), "acc": acc, "lr": lr,
                            "seconds": round(elapsed, 3),
                            "images_per_s": round(steps_this_run * len(pids) / max(elapsed, 1e-9), 2)}) + "\n")
                        log_file.flush()
                    end_of_epoch = step == len(batches)
                    stop = ((cfg.stop_after_steps is not None and steps_this_run >= cfg.stop_after_steps)
                            or (cfg.max_minutes is not None
                                and time.monotonic() - started >= 60.0 * cfg.max_minutes))
                    if end_of_epoch:
                        break
                    if stop or (cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0):
                        checkpoint(epoch, step, batches, finished=False)
                    if stop:
                        bar.close()
                        return last
                bar.close()
                epoch, step, batches = epoch + 1, 0, None
                checkpoint(epoch, 0, [], finished=epoch >= cfg.epochs)
                if stop:
                    return last
            return last
        finally:
            log_file.close()
    finally:
        torch.use_deterministic_algorithms(prev_deterministic)


def open_log_for_append(path: Path):
    """JSON lines, appended and flushed one by one: a kill loses at most the line being
    written, and a resume drops the lines past its checkpoint (`_rewrite_log_until`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a")

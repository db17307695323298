"""Training: label-smoothed CE + batch-hard triplet on P x K batches, resumable bit for bit.

Why a resumed run equals an uninterrupted one:
- the batches of an epoch are drawn once, by a PKSampler seeded from (seed, epoch),
  and stored in every checkpoint of that epoch, so a resume continues the same list;
- each batch's augmentations run under RNGs seeded from (seed, epoch, step), saved and
  restored around the load, so they do not depend on what ran before (nor on worker
  processes when num_workers > 0);
- model, optimizer, LR schedule, step counters and the global torch / numpy / python
  RNG states are all in the checkpoint, and deterministic algorithms are switched on.
The loop itself is `edgereid.engine.loop.fit` (shared with fine-tuning and QAT); the
batches come from `edgereid.engine.batches.PKBatches`.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgereid.data import IMAGENET_MEAN, IMAGENET_STD, ReidImageDataset, build_transforms, load_dataset
from edgereid.engine.batches import PKBatches
from edgereid.engine.checkpoint import load_checkpoint, save_checkpoint
from edgereid.engine.distributed import Replicated, barrier, init_from_env
from edgereid.engine.loop import LRSchedule, fit
from edgereid.errors import CheckpointError, EdgereidError
from edgereid.losses import CrossModalLoss, ReidLoss
from edgereid.losses.gal import gal_training
from edgereid.models import build_model, load_float_twin, set_modality


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
    model_kwargs: dict = dataclasses.field(default_factory=dict)  # more build_model arguments, e.g. {"binary": False}
    init_from: str | None = None  # a checkpoint of the same model to start from (binary: its real-valued twin)
    kr_gal: float | None = None  # BiRe-ID KR-GAL with this lambda (None: off; 0: adversarial term only)
    fr_gal: float | None = None  # BiRe-ID FR-GAL with this mu (None: off; 0: adversarial term only)
    gal_adversarial: float = 0.1  # weight of the GAL adversarial terms
    gal_warmup_epochs: float = 0.0  # the GAL terms ramp linearly from 0 over this many epochs
    cross_modal: bool = False  # CM-NAS two-modality training: P x (K visible + K infrared), CrossModalLoss
    sp_weight: float = 5.0  # cross_modal: weight of the SP (Gram-matrix) term
    cmmd_weight: float = 0.05  # cross_modal: weight of the CMMD term
    channel_aug: float = 0.0  # probability of the channel augmentation (data.transforms.RandomChannel)
    bn_switches: str | None = None  # "shared", "split" or one 0/1 per BN (1 = split); None: plain BNs

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
        if self.cross_modal and (self.kr_gal is not None or self.fr_gal is not None):
            bad("cross_modal", "False with KR-GAL / FR-GAL (BiRe-ID's losses are single-modality here)")
        for name in ("sp_weight", "cmmd_weight"):
            if not getattr(self, name) >= 0:
                bad(name, ">= 0")
        if not 0 <= self.channel_aug <= 1:
            bad("channel_aug", "a probability in [0, 1]")
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


def _init_from(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Load `cfg.init_from`'s weights into a fresh `model`: a checkpoint of the same model name (for
    bireid_resnet18 its real-valued twin, `binary=False`, or another binary run)."""
    init = load_checkpoint(cfg.init_from)
    if init["model_name"] != cfg.model:
        raise CheckpointError(f"checkpoint {cfg.init_from}: holds a {init['model_name']!r} model; --init-from "
                              f"takes a {cfg.model!r} checkpoint (another architecture's weights do not map)")
    if cfg.model == "bireid_resnet18":
        load_float_twin(model, init["state_dict"], source=f"checkpoint {cfg.init_from}")
        return
    try:
        model.load_state_dict(init["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {cfg.init_from}: weights do not fit {cfg.model} "
                              f"({str(exc).splitlines()[0]})") from None


def _cross_modal_forward(model: torch.nn.Module, batch):
    """The split BNs route each sample by its modality (the batch's targets are (pids, modality))."""
    set_modality(model, batch[1][1])
    return model(batch[0])


def train(cfg: TrainConfig, resume: bool = False, dataset=None) -> Path:
    """Train `cfg.model` on `cfg.data` (or an already loaded `dataset`); return the checkpoint path.

    The returned `out/last.pt` holds the final model, or, when `max_minutes` or
    `stop_after_steps` stopped the run early, the state to resume from (its
    `finished` field says which).
    """
    cfg.validate()
    rank, world = init_from_env()
    out = Path(cfg.out)
    last = out / "last.pt"
    if dataset is None:
        dataset = load_dataset(cfg.data)
    records = dataset.train
    num_classes = dataset.num_train_pids
    images = ReidImageDataset(records, build_transforms(tuple(cfg.image_size), train=True, channel_p=cfg.channel_aug))

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
        model_args = {"num_classes": num_classes, "embedding_dim": cfg.embedding_dim, "width": cfg.width,
                      **cfg.model_kwargs, **({"bn_switches": cfg.bn_switches} if cfg.bn_switches else {})}
        model = build_model(cfg.model, **model_args)
        if cfg.init_from and ckpt is None:
            _init_from(model, cfg)
        batches = PKBatches(images, records, cfg.p, cfg.k, cfg.seed, cfg.num_workers, cross_modal=cfg.cross_modal,
                            num_replicas=world, rank=rank)
        steps_per_epoch = batches.steps_per_epoch()
        schedule = LRSchedule(cfg.schedule, cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch,
                              steps_per_epoch, cfg.step_milestones, cfg.step_gamma)
        if cfg.cross_modal:
            loss = CrossModalLoss(num_classes, cfg.label_smoothing, cfg.triplet_margin, cfg.triplet_weight,
                                  cfg.sp_weight, cfg.cmmd_weight)
        else:
            loss = ReidLoss(num_classes, cfg.label_smoothing, cfg.triplet_margin, cfg.triplet_weight)
        # BiRe-ID's KR-GAL / FR-GAL: the discriminators and maps train with the model (one optimizer);
        # the checkpoint keeps the model's weights as usual and theirs under "gal_state_dict".
        gal = gal_training(model, loss, cfg.kr_gal, cfg.fr_gal, cfg.gal_adversarial,
                           warmup_steps=round(cfg.gal_warmup_epochs * steps_per_epoch))
        net, loss_fn, forward = (model, loss.terms, None) if gal is None else (gal.module, gal.loss, gal.forward)
        if cfg.cross_modal:
            forward = _cross_modal_forward
        if world > 1:
            if gal is not None:
                raise EdgereidError("KR-GAL / FR-GAL training runs in one process; start it without torchrun")
            net = Replicated(net)
        if gal is not None and ckpt is not None:
            ckpt = {**ckpt, "state_dict": gal.join_state(ckpt["state_dict"], ckpt.get("gal_state_dict", {}))}

        def save(state: dict) -> None:
            if gal is not None:
                state = dict(state)
                state["state_dict"], state["gal_state_dict"] = gal.split_state(state["state_dict"])
            save_checkpoint(last, model_name=cfg.model, model_args=model_args, preprocess=preprocess_of(cfg),
                            train_config=cfg.to_dict(), num_train_pids=num_classes, **state)

        lead = rank == 0   # under torchrun, rank 0 alone writes checkpoints and logs
        try:
            fit(net, batches, loss_fn, lambda m: build_optimizer(cfg, m), epochs=cfg.epochs, schedule=schedule,
                forward=forward, resume=ckpt, save=save if lead else None,
                checkpoint_every_steps=cfg.checkpoint_every_steps, max_minutes=cfg.max_minutes,
                stop_after_steps=cfg.stop_after_steps, log_path=out / "train_log.jsonl" if lead else None,
                log_every_steps=cfg.log_every_steps, progress=cfg.progress and lead)
        finally:
            if gal is not None:
                gal.close()
        barrier()   # the other ranks return once rank 0's checkpoint is written
        return last
    finally:
        torch.use_deterministic_algorithms(prev_deterministic)

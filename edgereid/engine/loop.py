"""The one training loop: training, fine-tuning after pruning and QAT all run `fit`.

`fit(model, data, loss_fn, optimizer, epochs=...)` trains `model` on the batches of
`data` (a batch source from `edgereid.engine.batches`, or any iterable of
`(images, targets, ...)` batches) and returns a `FitResult`. What differs between the
stages goes in through arguments: the optimizer factory, the LR schedule
(`LRSchedule`: linear warm-up, then cosine, steps or constant), the forward
(`forward(model, batch)`, e.g. a fake-quant graph's flat outputs turned back into a
`ReidOutput`), a hook before each step (`before_step(global_step)`, e.g. freezing
quantization observers), whether the loop switches the model to train mode.

Resume: `save(state)` receives the loop's state (model, optimizer and schedule state,
epoch / step / global step, the epoch's batch plan, RNG states, thread count,
`finished`) to write with the caller's own fields; passing such a loaded dict back as
`resume=` continues bit for bit when the batch source is deterministic (`PKBatches`)
and deterministic algorithms are on. `max_minutes` / `stop_after_steps` stop early,
after a checkpoint.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from edgereid.atomic import write_text
from edgereid.engine.batches import as_batches, batch_size
from edgereid.engine.checkpoint import capture_rng_state, restore_rng_state
from edgereid.engine.distributed import any_rank, world_size
from edgereid.errors import EdgereidError

SCHEDULES = ("cosine", "step", "constant")


class LRSchedule:
    """LR multiplier per optimizer step: linear warm-up, then cosine to 0, steps, or constant.

    Warm-up goes from `warmup_from` (default 0.1 of the peak) to 1 over `warmup_steps`;
    `warmup_from=None` starts one step above zero: (step + 1) / (warmup_steps + 1), for a
    fresh Adam state on trained weights (its first steps are full-size sign steps).
    `step`: multiplied by `gamma` at every epoch in `milestones`.
    A plain object (not a closure) so LambdaLR saves its fields in its state_dict.
    """

    def __init__(self, kind: str, warmup_steps: int, total_steps: int, steps_per_epoch: int = 1,
                 milestones=(), gamma: float = 0.1, warmup_from: float | None = 0.1):
        if kind not in SCHEDULES:
            raise EdgereidError(f"unknown LR schedule {kind!r}; expected one of {', '.join(SCHEDULES)}")
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.steps_per_epoch = int(steps_per_epoch)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.warmup_from = None if warmup_from is None else float(warmup_from)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            if self.warmup_from is None:
                return (step + 1) / (self.warmup_steps + 1)
            # 1 - 0.1 as written (0.9), not the float difference (0.8999999999999999): the
            # same multipliers, bit for bit, as runs trained before warmup_from existed.
            rise = float(Decimal(1) - Decimal(repr(self.warmup_from)))
            return self.warmup_from + rise * step / self.warmup_steps
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / span)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.kind == "step":
            epoch = step // max(1, self.steps_per_epoch)
            return self.gamma ** sum(epoch >= m for m in self.milestones)
        return 1.0


@dataclass
class FitResult:
    epoch: int  # epochs completed
    step: int  # next step within `epoch` (0 at an epoch boundary)
    global_step: int
    finished: bool  # False when max_minutes / stop_after_steps stopped the run
    epoch_losses: list = field(default_factory=list)  # mean loss of each epoch (steps of this call)
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object = None


def rewrite_log_until(log_path: Path, global_step: int) -> None:
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


def open_log_for_append(path: Path):
    """JSON lines, appended and flushed one by one: a kill loses at most the line being
    written, and a resume drops the lines past its checkpoint (`rewrite_log_until`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a")


def _with_last(iterator):
    """(item, is_last) pairs; looks one item ahead."""
    it = iter(iterator)
    try:
        item = next(it)
    except StopIteration:
        return
    for following in it:
        yield item, False
        item = following
    yield item, True


def _loss_terms(result) -> tuple[torch.Tensor, dict]:
    if isinstance(result, tuple):
        return result[0], dict(result[1])
    return result, {}


def _default_forward(model, batch):
    return model(batch[0])


def fit(model: nn.Module, data, loss_fn: Callable, optimizer: Callable[[nn.Module], torch.optim.Optimizer], *,
        epochs: int, schedule: LRSchedule | None = None, forward: Callable | None = None,
        before_step: Callable[[int], None] | None = None, train_mode: bool = True, resume: dict | None = None,
        save: Callable[[dict], None] | None = None, checkpoint_every_steps: int = 0,
        max_minutes: float | None = None, stop_after_steps: int | None = None, log_path=None,
        log_every_steps: int = 10, log: Callable[[str], None] | None = None, name: str = "train",
        progress: bool = False) -> FitResult:
    """Train `model` for `epochs` epochs on `data`; one optimizer step per batch.

    - `loss_fn(outputs, targets)`: `targets` is the batch's second item (pids); returns the
      loss, or `(loss, {name: float})` whose entries go into the step log;
    - `optimizer(model)`: makes the optimizer (over the parameters it chooses);
    - `schedule`: LR multiplier per step (default constant); on resume its `total_steps`
      replaces the saved one, so more epochs extend the horizon;
    - `forward(model, batch) -> outputs` (default `model(batch[0])`);
    - `before_step(global_step)`: called before each step's forward;
    - `train_mode`: switch the model to train mode at each epoch start (False for graphs
      that forbid `.train()`);
    - `save(state)`: write a checkpoint holding `state` (+ the caller's fields); called at
      each epoch end, every `checkpoint_every_steps` steps, and before an early stop;
    - `log_path`: JSON lines every `log_every_steps` steps and at each epoch end
      (truncated on a fresh run, cut back to the checkpoint on resume); `log(text)`: one
      line per epoch, "`name` epoch e/E: loss L (n steps)".
    A non-finite loss stops with an EdgereidError naming epoch and step.
    """
    data = as_batches(data)
    forward = forward or _default_forward
    opt = optimizer(model)
    steps_per_epoch = data.steps_per_epoch()
    if schedule is None:
        schedule = LRSchedule("constant", 0, epochs * steps_per_epoch, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    log_path = Path(log_path) if log_path is not None else None

    epoch, step, global_step, plan = 0, 0, 0, None
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        opt.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scheduler.lr_lambdas[0].total_steps = schedule.total_steps
        epoch, step, global_step = resume["epoch"], resume["step"], resume["global_step"]
        saved_plan = resume.get("epoch_batches")
        # Under torchrun the saved plan is rank 0's share: every rank draws its own again
        # (plans depend on (seed, epoch, rank) only).
        if step > 0 and saved_plan is not None and saved_plan.numel() and world_size() == 1:
            plan = saved_plan.tolist()
        restore_rng_state(resume["rng"])
        if log_path is not None:
            rewrite_log_until(log_path, global_step)
        threads = resume.get("torch_threads", torch.get_num_threads())
        if threads != torch.get_num_threads():
            # CPU kernels split reductions by thread: another count rounds differently.
            warnings.warn(f"resuming with {torch.get_num_threads()} torch threads a run written with {threads}: "
                          f"the result will not be bit-identical to an uninterrupted run")
    elif log_path is not None and log_path.exists():
        write_text(log_path, "")

    def state(finished: bool) -> dict:
        return {"state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step, "global_step": global_step,
                "epoch_batches": torch.tensor(plan if step > 0 and plan is not None else [], dtype=torch.int64),
                "rng": capture_rng_state(), "finished": finished, "torch_threads": torch.get_num_threads()}

    def result(finished: bool) -> FitResult:
        return FitResult(epoch, step, global_step, finished, losses, opt, scheduler)

    started = time.monotonic()
    steps_this_run, images_this_run, losses = 0, 0, []
    log_file = open_log_for_append(log_path) if log_path is not None else None
    try:
        while epoch < epochs:
            if plan is None:
                plan = data.plan(epoch)
            if train_mode:
                model.train()
            bar = tqdm(total=steps_per_epoch if plan is None else len(plan), initial=step,
                       desc=f"{name} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False,
                       dynamic_ncols=True)
            total, count, stop = 0.0, 0, False
            for batch, last in _with_last(data.load(epoch, plan, step)):
                if before_step is not None:
                    before_step(global_step)
                outputs = forward(model, batch)
                targets = batch[1]
                loss, metrics = _loss_terms(loss_fn(outputs, targets))
                value = loss.item()
                if not math.isfinite(value):
                    raise EdgereidError(f"{name}: the loss became {value} at epoch {epoch + 1} step {step + 1}; "
                                        f"lower the learning rate (now {opt.param_groups[0]['lr']:.3g})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                lr = opt.param_groups[0]["lr"]
                scheduler.step()
                step += 1
                global_step += 1
                steps_this_run += 1
                images_this_run += batch_size(batch)
                total, count = total + value, count + 1
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", **({"acc": f"{metrics['acc']:.2f}"} if "acc" in metrics else {}))
                if log_file is not None and (global_step % max(1, log_every_steps) == 0 or last):
                    elapsed = time.monotonic() - started
                    log_file.write(json.dumps({
                        "epoch": epoch, "step": step, "global_step": global_step, "loss": value, **metrics,
                        "lr": lr, "seconds": round(elapsed, 3),
                        "images_per_s": round(images_this_run / max(elapsed, 1e-9), 2)}) + "\n")
                    log_file.flush()
                # Under torchrun every rank must stop at the same step (the clocks differ).
                stop = any_rank((stop_after_steps is not None and steps_this_run >= stop_after_steps)
                                or (max_minutes is not None and time.monotonic() - started >= 60.0 * max_minutes))
                if last:
                    break  # the epoch-end checkpoint below covers this step
                if save is not None and (stop or (checkpoint_every_steps and step % checkpoint_every_steps == 0)):
                    save(state(finished=False))
                if stop:
                    bar.close()
                    return result(False)
            bar.close()
            losses.append(total / max(1, count))
            if log is not None:
                log(f"{name} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} ({count} steps)")
            epoch, step, plan = epoch + 1, 0, None
            if save is not None:
                save(state(finished=epoch >= epochs))
            if stop:
                return result(epoch >= epochs)
        return result(True)
    finally:
        if log_file is not None:
            log_file.close()

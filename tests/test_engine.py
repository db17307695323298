"""Engine: checkpoints (atomic, weights_only, corrupt -> CheckpointError), bit-exact resume, evaluation."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from edgereid.data import ImageRecord, ReidDataset
from edgereid.engine import (LRSchedule, TrainConfig, evaluate, extract_features, fit, load_checkpoint,
                             model_from_checkpoint, save_checkpoint, train)
from edgereid.engine.checkpoint import capture_rng_state, restore_rng_state
from edgereid.errors import CheckpointError, EdgereidError

torch.set_num_threads(1)


def tiny_dataset(root, num_ids=6, per_id=4, size=(32, 16)):
    """Each id is a colour with a per-image noise; cameras alternate 1/2."""
    rng = np.random.default_rng(0)
    h, w = size
    records = {"train": [], "query": [], "gallery": []}
    for pid in range(num_ids):
        colour = rng.integers(0, 256, 3)
        for j in range(per_id):
            px = np.clip(colour + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
            path = root / f"{pid:04d}_c{j % 2 + 1}_{j}.png"
            Image.fromarray(px).save(path)
            records["train"].append(ImageRecord(str(path), pid, j % 2 + 1))
            (records["query"] if j == 0 else records["gallery"]).append(ImageRecord(str(path), pid + 1, j % 2 + 1))
    return ReidDataset("tiny", records["train"], records["query"], records["gallery"], num_ids, "market", root)


def tiny_config(out, **kw):
    base = dict(model="sclnet", data="unused", epochs=2, p=3, k=2, lr=1e-3, width=0.125, image_size=(32, 16),
                out=str(out), warmup_epochs=1, progress=False, log_every_steps=1, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_mid_epoch_is_bit_exact(tmp_path):
    data = tiny_dataset(tmp_path)  # 24 images -> 3 or 4 P x K batches per epoch
    full = torch.load(train(tiny_config(tmp_path / "a"), dataset=data), weights_only=True)
    total = full["global_step"]
    assert full["finished"] and total >= 6

    cfg = tiny_config(tmp_path / "b", stop_after_steps=2)  # stops mid-epoch 0, after a checkpoint
    stopped = load_checkpoint(train(cfg, dataset=data))
    assert (stopped["epoch"], stopped["step"], stopped["finished"]) == (0, 2, False)
    # A second interruption, 2 steps later (across or at the epoch boundary).
    stopped = load_checkpoint(train(cfg, resume=True, dataset=data))
    assert stopped["global_step"] == 4 and not stopped["finished"]
    resumed = torch.load(train(tiny_config(tmp_path / "b", stop_after_steps=None), resume=True, dataset=data),
                         weights_only=True)
    assert resumed["finished"] and resumed["global_step"] == total
    assert full["state_dict"].keys() == resumed["state_dict"].keys()
    for name, tensor in full["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
    for a, b in zip(full["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
    # The log of the resumed run has each step once, like the uninterrupted one.
    steps = [json.loads(x)["global_step"] for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, total + 1))
    losses_a = [json.loads(x)["loss"] for x in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    losses_b = [json.loads(x)["loss"] for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert losses_a == losses_b


def test_different_seed_gives_different_weights(tmp_path):
    data = tiny_dataset(tmp_path)
    a = load_checkpoint(train(tiny_config(tmp_path / "a", stop_after_steps=1), dataset=data))["state_dict"]
    b = load_checkpoint(train(tiny_config(tmp_path / "b", stop_after_steps=1, seed=4), dataset=data))["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_resume_refuses_a_changed_config(tmp_path):
    data = tiny_dataset(tmp_path)
    train(tiny_config(tmp_path / "a", epochs=1, model="resnet18"), dataset=data)
    with pytest.raises(CheckpointError, match="lr="):
        train(tiny_config(tmp_path / "a", epochs=2, model="resnet18", lr=0.5), resume=True, dataset=data)
    with pytest.raises(CheckpointError, match="not found"):
        train(tiny_config(tmp_path / "nothing"), resume=True, dataset=data)


def test_checkpoint_roundtrip_and_model_rebuild(tmp_path):
    data = tiny_dataset(tmp_path)
    path = train(tiny_config(tmp_path / "run", epochs=1), dataset=data)
    ckpt = load_checkpoint(path)
    assert ckpt["preprocess"]["size"] == [32, 16] and ckpt["preprocess"]["channel_order"] == "rgb"
    model, _ = model_from_checkpoint(path)
    assert not model.training
    emb = model(torch.zeros(2, 3, 32, 16))
    assert emb.shape == (2, model.embedding_dim)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", None])
def test_corrupt_or_foreign_checkpoint_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:  # a valid torch file that is not ours
        torch.save({"weights": torch.zeros(3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model_name="sclnet", model_args={"num_classes": 3},
                           state_dict={"w": torch.ones(1000)}, preprocess={"size": [32, 16]})
    assert load_checkpoint(path)["model_args"] == {"num_classes": 3}
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="c.pt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_roundtrip_through_weights_only(tmp_path):
    import random
    state = capture_rng_state()
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expect = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(torch.load(path, weights_only=True))
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1]) and expect[2] == got[2]


def test_extract_and_evaluate_market_protocol(tmp_path):
    data = tiny_dataset(tmp_path)
    torch.manual_seed(0)
    from edgereid.models import build_model
    model = build_model("resnet18", 6, width=0.125)
    feats, pids, camids = extract_features(model, data.query, size=(32, 16), batch_size=4)
    assert feats.shape == (6, model.embedding_dim) and pids.tolist() == [1, 2, 3, 4, 5, 6]
    flipped, _, _ = extract_features(model, data.query, size=(32, 16), flip=True)
    assert not np.allclose(feats, flipped)
    result = evaluate(model, data, size=(32, 16))
    r = result.main
    assert 0.0 <= r.mAP <= 1.0 and r.num_valid_queries == 6
    assert "rank-1" in result.table()


def test_warmup_then_cosine_and_step_schedules():
    cos = LRSchedule("cosine", warmup_steps=10, total_steps=110, steps_per_epoch=10)
    assert cos(0) == pytest.approx(0.1) and cos(5) == pytest.approx(0.55)
    assert cos(10) == pytest.approx(1.0) and cos(60) == pytest.approx(0.5) and cos(110) == pytest.approx(0.0)
    # The default warm-up gives the multipliers of runs trained before it became an option.
    assert [cos(s) for s in range(10)] == [0.1 + 0.9 * s / 10 for s in range(10)]
    step = LRSchedule("step", warmup_steps=10, total_steps=100, steps_per_epoch=10, milestones=[4, 7])
    assert [step(s) for s in (10, 39, 40, 69, 70)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    # Fine-tuning warm-up from ~0: (step + 1) / (warmup + 1), then cosine to 0.
    ft = LRSchedule("cosine", warmup_steps=3, total_steps=13, warmup_from=None)
    assert [ft(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and ft(8) == pytest.approx(0.5)
    const = LRSchedule("constant", warmup_steps=2, total_steps=10, warmup_from=0.5)
    assert [const(s) for s in (0, 1, 2, 9, 50)] == pytest.approx([0.5, 0.75, 1.0, 1.0, 1.0])
    with pytest.raises(EdgereidError, match="unknown LR schedule 'linear'"):
        LRSchedule("linear", 0, 10)


def test_worker_processes_do_not_change_the_result(tmp_path):
    # Each batch is augmented under seeds from (seed, epoch, step), wherever it is loaded.
    data = tiny_dataset(tmp_path)
    a = load_checkpoint(train(tiny_config(tmp_path / "a", stop_after_steps=2), dataset=data))["state_dict"]
    b = load_checkpoint(train(tiny_config(tmp_path / "b", stop_after_steps=2, num_workers=1), dataset=data))
    assert b["global_step"] == 2
    assert all(torch.equal(a[k], b["state_dict"][k]) for k in a)


class _EpochSampler:
    def __init__(self):
        self.epochs = []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


class _Loader(list):
    """A list of batches with a sampler, as a DataLoader has."""

    def __init__(self, batches):
        super().__init__(batches)
        self.sampler = _EpochSampler()


def test_fit_runs_hooks_schedule_and_loader_rules():
    # One loop for training, fine-tuning and QAT: the hooks each stage uses.
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).eval()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(4)]
    batches.insert(1, (torch.randn(1, 3), torch.randn(1, 1)))  # too small: left out
    loader = _Loader(batches)
    from edgereid.engine import LoaderBatches

    seen, steps, logs = [], [], []
    result = fit(model, LoaderBatches(loader, max_steps_per_epoch=3, min_batch_size=2),
                 lambda out, y: (torch.nn.functional.mse_loss(out, y), {"extra": 1.0}),
                 lambda m: torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
                 schedule=LRSchedule("cosine", warmup_steps=2, total_steps=6, warmup_from=None),
                 forward=lambda m, batch: (seen.append(batch[0].shape[0]), m(batch[0]))[1],
                 before_step=steps.append, train_mode=False, log=logs.append, name="tune")
    assert result.finished and (result.epoch, result.step, result.global_step) == (2, 0, 6)
    assert seen == [4] * 6  # the 1-image batch never reached the model; 3 steps per epoch
    assert steps == list(range(6))
    assert loader.sampler.epochs == [0, 1]
    assert not model.training  # train_mode=False leaves the mode alone (fake-quant graphs forbid it)
    assert [line.split(":")[0] for line in logs] == ["tune epoch 1/2", "tune epoch 2/2"]
    assert all(line.endswith("(3 steps)") for line in logs) and len(result.epoch_losses) == 2
    sched = result.scheduler
    assert sched.last_epoch == 6 and sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_fit_follows_the_schedule_step_by_step():
    model = torch.nn.Linear(2, 1)
    batches = [(torch.ones(2, 2), torch.zeros(2, 1))] * 5
    lrs = []
    holder = {}

    def make(m):
        holder["opt"] = torch.optim.SGD(m.parameters(), lr=2.0)
        return holder["opt"]

    fit(model, batches, lambda out, y: out.pow(2).mean(), make, epochs=1,
        schedule=LRSchedule("step", warmup_steps=2, total_steps=5, steps_per_epoch=1, milestones=[4]),
        before_step=lambda step: lrs.append(holder["opt"].param_groups[0]["lr"]))
    assert lrs == pytest.approx([0.2, 1.1, 2.0, 2.0, 0.2])


def test_fit_stops_on_a_non_finite_loss():
    model = torch.nn.Linear(2, 1)
    batches = [(torch.ones(2, 2), torch.zeros(2, 1))] * 3
    calls = []

    def loss(out, y):
        calls.append(1)
        return out.mean() * (float("nan") if len(calls) == 2 else 1.0)

    with pytest.raises(EdgereidError, match="qat: the loss became nan at epoch 1 step 2"):
        fit(model, batches, loss, lambda m: torch.optim.Adam(m.parameters()), epochs=1, name="qat")


def test_searched_model_checkpoint_roundtrip(tmp_path):
    # A search-space point is stored as plain data (architecture dict), loaded weights_only.
    import random

    from edgereid.models import build_model, modality
    from edgereid.search_space import load_space, sample

    arch = sample(load_space("tiny"), random.Random(5))
    args = {"num_classes": 4, "architecture": arch.to_dict()}
    torch.manual_seed(0)
    model = build_model("arch", **args).eval()
    path = save_checkpoint(tmp_path / "arch.pt", model_name="arch", model_args=args, state_dict=model.state_dict(),
                           preprocess={"size": [32, 16]})
    rebuilt, ckpt = model_from_checkpoint(path)
    assert ckpt["model_args"]["architecture"] == arch.to_dict()
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad(), modality(model, "infrared"), modality(rebuilt, "infrared"):
        assert torch.equal(rebuilt(x), model(x))

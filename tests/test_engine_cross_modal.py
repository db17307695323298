"""CM-NAS two-modality training: switchable BNs on named backbones, aligned batches, the
cross-modal objective through the one training loop, evaluation per modality."""
import numpy as np
import pytest
import torch
from PIL import Image

from edgereid.data import ImageRecord, ReidDataset, ReidImageDataset, build_transforms
from edgereid.engine import TrainConfig, evaluate, load_checkpoint, model_from_checkpoint, train
from edgereid.data.sampler import CrossModalSampler
from edgereid.engine.batches import PKBatches
from edgereid.errors import EdgereidError, ModelError
from edgereid.models import SwitchableBatchNorm2d, bn_switches, build_model, for_modality, set_modality
from edgereid.models.switchable import switchable_bns

torch.set_num_threads(1)


def _plain_bns(model):
    return [m for m in model.modules() if type(m) in (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)]


def bn_switch_string(switches, n):
    return {"shared": "0" * n, "split": "1" * n}.get(switches, switches)


def test_make_switchable_keeps_the_function_and_counts_every_bn():
    torch.manual_seed(0)
    plain = build_model("resnet18", 5, width=0.25).eval()
    n = len(_plain_bns(plain))
    x = torch.randn(3, 3, 64, 32)
    for switches in ("shared", "split", "10" * (n // 2) + "1" * (n % 2)):
        torch.manual_seed(0)
        m = build_model("resnet18", 5, width=0.25, bn_switches=switches).eval()
        assert len(switchable_bns(m)) == n and bn_switches(m) == bn_switch_string(switches, n)
        set_modality(m, torch.tensor([0, 1, 0]))
        assert torch.equal(m(x), plain(x)), switches    # both copies start equal to the original BN
    assert bn_switches(build_model("sclnet", 5, width=0.125, bn_switches="split")) == "1" * len(
        _plain_bns(build_model("sclnet", 5, width=0.125)))


def test_split_bn_routes_each_sample_to_its_modality():
    torch.manual_seed(0)
    m = build_model("resnet18", 5, width=0.25, bn_switches="split").eval()
    first = next(b for b in m.modules() if isinstance(b, SwitchableBatchNorm2d))
    with torch.no_grad():
        first.infrared.bias.add_(1.0)   # the infrared BN now differs
    x = torch.randn(2, 3, 64, 32)
    both = set_modality(m, torch.tensor([0, 1]))(x)
    vis = for_modality(m, "visible")(x)
    ir = for_modality(m, "infrared")(x)
    assert torch.allclose(both[0], vis[0], atol=1e-6) and torch.allclose(both[1], ir[1], atol=1e-6)
    assert not torch.allclose(vis[1], ir[1])


def test_bn_switches_errors_name_the_count():
    n = len(_plain_bns(build_model("resnet18", 5, width=0.25)))
    with pytest.raises(ModelError, match=f"has 3 entries but the model has {n} BN layers"):
        build_model("resnet18", 5, width=0.25, bn_switches="101")
    with pytest.raises(ModelError, match="string of 0/1"):
        build_model("resnet18", 5, width=0.25, bn_switches="half")


def _tiny_two_modality(root, num_ids=4, per_mod=4, size=(32, 16)):
    """Each identity a colour; its infrared images the grey level of that colour."""
    rng = np.random.default_rng(0)
    h, w = size
    train, query, gallery = [], [], []
    for pid in range(num_ids):
        colour = rng.integers(0, 256, 3)
        for j in range(per_mod):
            for mod, cam in (("visible", 1), ("infrared", 3)):
                base = colour if mod == "visible" else np.full(3, colour.mean())
                px = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
                path = root / f"{pid:04d}_{mod}_{j}.png"
                Image.fromarray(px).save(path)
                train.append(ImageRecord(str(path), pid, cam, mod))
                rec = ImageRecord(str(path), pid + 1, cam, mod)
                (query if mod == "infrared" else gallery).append(rec)
    return ReidDataset("tiny-sysu", train, query, gallery, num_ids, "sysu", root)


def test_cross_modal_batches_carry_aligned_modalities(tmp_path):
    data = _tiny_two_modality(tmp_path)
    batches = PKBatches(ReidImageDataset(data.train, build_transforms((32, 16), train=True)), data.train, p=2, k=2, seed=1, cross_modal=True)
    plan = batches.plan(0)
    images, (pids, modality) = next(batches.load(0, plan, 0))
    assert images.shape[0] == 8 and modality.tolist() == [0] * 4 + [1] * 4
    assert pids[:4].tolist() == pids[4:].tolist()


def test_cross_modal_epoch_shows_every_visible_image_and_recycles_infrared():
    # 3 identities with 8 visible and 2 infrared images each: with K=2 an epoch is
    # 4 batches of P=3 identities, every visible image once, each infrared image in
    # every batch (its one chunk dealt again each time).
    records = [ImageRecord(f"{pid}_{mod}_{j}.png", pid, 1 if mod == "visible" else 3, mod)
               for pid in range(3) for mod, n in (("visible", 8), ("infrared", 2)) for j in range(n)]
    sampler = CrossModalSampler(records, p=3, k=2, seed=0)
    order = list(sampler)
    assert len(order) == 4 * 2 * 3 * 2
    counts = np.bincount(order, minlength=len(records))
    visible = np.array([r.modality == "visible" for r in records])
    assert (counts[visible] == 1).all() and (counts[~visible] == 4).all()
    for b in range(4):   # each batch: visible half and infrared half of the same identities, in order
        batch = [records[i] for i in order[b * 12:(b + 1) * 12]]
        assert [r.pid for r in batch[:6]] == [r.pid for r in batch[6:]]
        assert {r.modality for r in batch[:6]} == {"visible"} and {r.modality for r in batch[6:]} == {"infrared"}


def test_cross_modal_training_runs_resumes_and_evaluates(tmp_path):
    data = _tiny_two_modality(tmp_path)
    cfg = dict(model="resnet18", data="unused", epochs=2, p=2, k=2, width=0.125, image_size=(32, 16),
               warmup_epochs=0, progress=False, log_every_steps=1, seed=2, cross_modal=True, triplet_margin=0.4,
               bn_switches="split")
    full = load_checkpoint(train(TrainConfig(out=str(tmp_path / "a"), **cfg), dataset=data))
    assert full["finished"] and full["model_args"]["bn_switches"] == "split"
    log = (tmp_path / "a" / "train_log.jsonl").read_text()
    assert '"sp"' in log and '"cmmd"' in log
    part = TrainConfig(out=str(tmp_path / "b"), stop_after_steps=1, **cfg)
    train(part, dataset=data)
    resumed = load_checkpoint(train(TrainConfig(out=str(tmp_path / "b"), **cfg), resume=True, dataset=data))
    for name, t in full["state_dict"].items():
        assert torch.equal(t, resumed["state_dict"][name]), name
    model, _ = model_from_checkpoint(tmp_path / "a" / "last.pt")
    assert set(bn_switches(model)) == {"1"}
    result = evaluate(model, data, size=(32, 16), sysu_trials=2)
    assert "all-search single-shot" in result.results


def test_cross_modal_config_errors():
    with pytest.raises(EdgereidError, match="cross_modal"):
        TrainConfig(cross_modal=True, kr_gal=0.1).validate()
    with pytest.raises(EdgereidError, match="sp_weight"):
        TrainConfig(sp_weight=-1.0).validate()

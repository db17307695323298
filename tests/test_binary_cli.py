"""BiRe-ID through the library and the command line: the float twin, binary training with KR-GAL /
FR-GAL (resumed bit for bit), LCE export, evaluation of the .tflite in LCE's interpreter, and the
one-line errors for checkpoints of another architecture."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from edgereid.cli import cli, main
from edgereid.data import ImageRecord, ReidDataset
from edgereid.engine import TrainConfig, load_checkpoint, save_checkpoint, train
from edgereid.errors import CheckpointError
from edgereid.models import build_model
from edgereid.tflite import lce_available
from dataset_trees import market_tree  # noqa: E402

torch.set_num_threads(1)
needs_lce = pytest.mark.skipif(not lce_available(), reason="Larq Compute Engine runtime not installed (tools/setup.sh)")


def tiny_dataset(root, num_ids=6, per_id=4, size=(32, 16)):
    rng = np.random.default_rng(0)
    records = []
    for pid in range(num_ids):
        colour = rng.integers(0, 256, 3)
        for j in range(per_id):
            px = np.clip(colour + rng.normal(0, 25, (*size, 3)), 0, 255).astype(np.uint8)
            path = root / f"{pid:04d}_c{j % 2 + 1}_{j}.png"
            Image.fromarray(px).save(path)
            records.append(ImageRecord(str(path), pid, j % 2 + 1))
    return ReidDataset("tiny", records, records[:num_ids], records[num_ids:], num_ids, "market", root)


def _config(out, **kw):
    base = dict(model="bireid_resnet18", data="unused", epochs=2, p=3, k=2, lr=1e-3, width=0.125,
                image_size=(32, 16), out=str(out), warmup_epochs=1, progress=False, log_every_steps=1, seed=3,
                kr_gal=1e-4, fr_gal=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_gal_training_resumes_bit_for_bit(tmp_path):
    data = tiny_dataset(tmp_path)
    twin = train(_config(tmp_path / "twin", epochs=1, kr_gal=None, fr_gal=None, model_kwargs={"binary": False}),
                 dataset=data)
    full = load_checkpoint(train(_config(tmp_path / "a", init_from=str(twin)), dataset=data))
    assert full["finished"] and "gal_state_dict" in full
    assert set(full["state_dict"]) == set(build_model("bireid_resnet18", 6, width=0.125).state_dict())
    assert any(k.startswith("krgal.disc") for k in full["gal_state_dict"])
    stopped = load_checkpoint(train(_config(tmp_path / "b", init_from=str(twin), stop_after_steps=3), dataset=data))
    assert not stopped["finished"]
    resumed = load_checkpoint(train(_config(tmp_path / "b", init_from=str(twin)), resume=True, dataset=data))
    for part in ("state_dict", "gal_state_dict"):
        for name, tensor in full[part].items():
            assert torch.equal(tensor, resumed[part][name]), (part, name)


def test_init_from_another_architecture_is_a_checkpoint_error(tmp_path):
    data = tiny_dataset(tmp_path)
    other = save_checkpoint(tmp_path / "r18.pt", model_name="resnet18", model_args={"num_classes": 6, "width": 0.125},
                            state_dict=build_model("resnet18", 6, width=0.125).state_dict(),
                            preprocess={"size": [32, 16]})
    with pytest.raises(CheckpointError, match="holds a 'resnet18' model; --init-from takes a 'bireid_resnet18'"):
        train(_config(tmp_path / "x", init_from=str(other)), dataset=data)


@needs_lce
def test_cli_train_export_eval_binary(tmp_path, capsys):
    data = f"market1501:{market_tree(tmp_path / 'market')}"
    common = ["--model", "bireid_resnet18", "--data", data, "--width", "0.125", "--size", "32x16", "--p", "3",
              "--k", "2", "--quiet", "--warmup-epochs", "0", "--epochs", "1"]
    runner = CliRunner()
    twin = tmp_path / "twin"
    result = runner.invoke(cli, ["train", *common, "--model-arg", "binary=false", "--out", str(twin)])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(twin / "last.pt")["model_args"]["binary"] is False
    binary = tmp_path / "binary"
    result = runner.invoke(cli, ["train", *common, "--init-from", str(twin / "last.pt"), "--kr-gal", "1e-4",
                                 "--fr-gal", "1e-3", "--weight-decay", "0", "--out", str(binary)])
    assert result.exit_code == 0, result.output
    tfl = tmp_path / "b.tflite"
    result = runner.invoke(cli, ["export", str(binary / "last.pt"), "--format", "lce", "--dataset", data,
                                 "--calib-images", "8", "--debug-outputs", "--out", str(tfl)])
    assert result.exit_code == 0, result.output
    assert "CUSTOM:LceBconv2d x16" in result.output and "16 bitpacked debug outputs" in result.output
    result = runner.invoke(cli, ["eval", str(tfl), "--data", data, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Larq Compute Engine" in result.output and "rank-1" in result.output

    # a real-valued or foreign checkpoint: one line, exit 2
    with pytest.raises(SystemExit) as exc:
        main(["export", str(twin / "last.pt"), "--format", "lce", "--dataset", data,
              "--out", str(tmp_path / "x.tflite")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "real-valued (binary=False)" in err and len(err.strip().splitlines()) == 1
    other = save_checkpoint(tmp_path / "r18.pt", model_name="resnet18", model_args={"num_classes": 6, "width": 0.125},
                            state_dict=build_model("resnet18", 6, width=0.125).state_dict(),
                            preprocess={"size": [32, 16]})
    with pytest.raises(SystemExit) as exc:
        main(["export", str(other), "--format", "lce", "--dataset", data, "--out", str(tmp_path / "y.tflite")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "holds a 'resnet18' model; the LCE export takes bireid_resnet18" in err
    assert len(err.strip().splitlines()) == 1


@needs_lce
def test_lce_qat_fine_tune_through_train_matches_its_file_bit_for_bit(tmp_path):
    from edgereid.compress.lce_qat import lce_qat_config
    from edgereid.engine import model_from_checkpoint
    from edgereid.export.lce import export_lce_checkpoint, quantize_image
    from edgereid.tflite import LceRunner, unpack_bits

    data = tiny_dataset(tmp_path)
    twin = train(_config(tmp_path / "twin", epochs=1, kr_gal=None, fr_gal=None, model_kwargs={"binary": False}),
                 dataset=data)
    binary = train(_config(tmp_path / "bin", epochs=1, kr_gal=None, fr_gal=None, init_from=str(twin)), dataset=data)
    cfg = lce_qat_config(binary, data.train, epochs=1, out=str(tmp_path / "qat"), calib_images=8)
    assert cfg.weight_decay == 0.0 and cfg.init_from == str(binary) and cfg.kr_gal is None
    ckpt = load_checkpoint(train(cfg, dataset=data))
    assert ckpt["finished"] and ckpt["model_args"]["int8_ranges"] == cfg.model_kwargs["int8_ranges"]
    before = load_checkpoint(binary)["state_dict"]
    assert not torch.equal(ckpt["state_dict"]["layer2.0.conv.weight"], before["layer2.0.conv.weight"])
    model, _ = model_from_checkpoint(ckpt)
    res = export_lce_checkpoint(ckpt, tmp_path / "q.tflite", debug=True)  # the model's ranges: no calibration
    x = torch.randn(3, 3, 32, 16)
    seen = {}
    hooks = [u.conv.register_forward_pre_hook(lambda m, i, n=n: seen.__setitem__(n + ".bn1", i[0].detach()))
             for n, u in model.named_modules() if hasattr(u, "bn1") and hasattr(u, "shortcut")]
    with torch.no_grad():
        emb = model(x)
    for h in hooks:
        h.remove()
    q = quantize_image(x.permute(0, 2, 3, 1).numpy(), res.input.scale, res.input.zero_point)
    with LceRunner(res.data) as runner:
        for i in range(3):
            got = runner.run([q[i:i + 1]])
            y = (got[0].astype(np.float32).reshape(-1) - np.float32(res.output.zero_point)) \
                * np.float32(res.output.scale)
            assert np.array_equal(y, emb[i].numpy())
            for name, pos in res.debug_outputs.items():
                signs = torch.where(seen[name][i] < 0, -1.0, 1.0).permute(1, 2, 0).numpy()
                assert np.array_equal(unpack_bits(got[pos], signs.shape[-1])[0], signs), name


def test_cli_lce_qat_needs_init_from_and_writes_a_quantization_aware_checkpoint(tmp_path):
    data = f"market1501:{market_tree(tmp_path / 'market')}"
    common = ["--model", "bireid_resnet18", "--data", data, "--width", "0.125", "--size", "32x16", "--p", "3",
              "--k", "2", "--quiet", "--warmup-epochs", "0", "--epochs", "1"]
    runner = CliRunner()
    result = runner.invoke(cli, ["train", *common, "--lce-qat", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--lce-qat fine-tunes a trained binary model" in result.output
    twin, binary, qat = tmp_path / "twin", tmp_path / "bin", tmp_path / "qat"
    assert runner.invoke(cli, ["train", *common, "--model-arg", "binary=false", "--out", str(twin)]).exit_code == 0
    result = runner.invoke(cli, ["train", *common, "--init-from", str(twin / "last.pt"), "--out", str(binary)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train", "--lce-qat", "--init-from", str(binary / "last.pt"), "--epochs", "1",
                                 "--quiet", "--out", str(qat)])
    assert result.exit_code == 0, result.output
    assert "int8 LCE quantization-aware" in result.output
    ckpt = load_checkpoint(qat / "last.pt")
    assert ckpt["model_args"]["int8_ranges"] and ckpt["train_config"]["lr"] == 5e-5
    result = runner.invoke(cli, ["eval", str(qat / "last.pt"), "--quiet"])
    assert result.exit_code == 0 and "rank-1" in result.output, result.output

"""CLI of the models / train / eval stage, through the real `edgereid` entry point."""
import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from edgereid.cli import cli, main
from dataset_trees import market_tree  # noqa: E402


def test_models_command_lists_every_model():
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "MACs 256x128" in lines[0] and "MACs 128x64" in lines[0]
    assert [ln.split()[0] for ln in lines[1:]] == ["bireid_resnet18", "resnet18", "resnet34", "sclnet"]
    assert lines[2].split()[1] == "11.18M"


def test_train_resume_eval_end_to_end(tmp_path):
    data = f"market1501:{market_tree(tmp_path / 'market')}"
    out = tmp_path / "run"
    common = ["train", "--model", "sclnet", "--data", data, "--width", "0.125", "--size", "32x16", "--p", "3",
              "--k", "2", "--out", str(out), "--quiet", "--warmup-epochs", "0"]
    runner = CliRunner()
    result = runner.invoke(cli, common + ["--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "finished" in result.output and (out / "last.pt").is_file()
    # --resume takes the saved options; only --epochs changes.
    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--epochs", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["epoch"] == 1

    plot, js = tmp_path / "cmc.png", tmp_path / "eval.json"
    result = runner.invoke(cli, ["eval", str(out / "last.pt"), "--plot", str(plot), "--json", str(js), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "rank-1" in result.output and "mINP" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figures = json.loads(js.read_text())
    assert figures["protocol"] == "market" and 0.0 <= figures["results"][0]["mAP"] <= 1.0


def test_eval_of_a_corrupt_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    try:
        main(["eval", str(bad)])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint") and "bad.pt" in err and len(err.strip().splitlines()) == 1

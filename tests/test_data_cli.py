"""`edgereid data synth` / `data info` through the real CLI entry point."""
import json

import pytest
from click.testing import CliRunner

from edgereid.cli import cli, main


def test_synth_writes_a_loadable_set(tmp_path):
    out = tmp_path / "synth"
    result = CliRunner().invoke(cli, ["data", "synth", "--out", str(out), "--seed", "2", "--ids", "6",
                                      "--images-per-id", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "market1501 3+3 ids" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 2 and manifest["num_ids"] == 6
    info = CliRunner().invoke(cli, ["data", "info", f"synthetic:{out}"])
    assert info.exit_code == 0 and "train        3 ids" in info.output


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    code, err = run_main(["data", "synth", "--out", str(tmp_path / "taken"), "--quiet"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"error: synthetic: {tmp_path / 'taken'} already exists "
                                        "(pass overwrite=True, or --force on the command line, to replace it)"]
    code, err = run_main(["data", "info", f"market1501:{tmp_path / 'missing'}"], capsys)
    assert code == 2 and err.startswith("error: market1501: folder") and "missing not found" in err

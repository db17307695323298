"""`edgereid data synth` / `data info` through the real CLI entry point."""
import json
import subprocess
import sys

from click.testing import CliRunner

from edgereid.cli import cli


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


def test_errors_are_one_line_exit_2(tmp_path):
    (tmp_path / "taken").mkdir()
    proc = subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "data", "synth", "--out",
                           str(tmp_path / "taken"), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: synthetic: {tmp_path / 'taken'} already exists "
                                                "(pass overwrite=True, or --force on the command line, to replace it)"]
    proc = subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "data", "info",
                           f"market1501:{tmp_path / 'missing'}"], capture_output=True, text=True)
    assert proc.returncode == 2 and "missing not found" in proc.stderr and "Traceback" not in proc.stderr

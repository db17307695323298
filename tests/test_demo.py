"""The main job end to end on a tiny synthetic set: every step runs, the report says what it measured,
and a rerun resumes from the state file instead of redoing the work."""
import json
import shutil

import pytest

from edgereid.data import synthesize
from edgereid.pipeline import DemoConfig, run_demo

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="the demo's firmware step needs qemu-system-arm and arm-none-eabi-gcc")


def test_demo_runs_every_step_and_resumes(tmp_path):
    root = tmp_path / "synthetic"
    synthesize(root, seed=0, num_ids=8, images_per_id=4, progress=False)
    cfg = DemoConfig(out=str(tmp_path / "demo"), data_root=str(root), width=0.25, epochs=1, p=2,
                     sysu_trials=2, hil_inputs=2, fit_boards=("nrf52840",), progress=False, binary_width=0.125,
                     binary_epochs=1, binary_exact_images=2)
    lines = []
    report = run_demo(cfg, echo=lines.append)
    state = json.loads((tmp_path / "demo" / "state.json").read_text())
    assert set(state) == {"synthesize", "baseline", "train", "evaluate", "int8", "firmware", "bireid"}
    bireid = state["bireid"]["result"]
    assert bireid["exact_equal"] == bireid["exact_total"] > 0 and bireid["ops"]["CUSTOM:LceBconv2d"] == 16
    firmware = state["firmware"]["result"]
    assert firmware["passed"] and firmware["mismatched_bytes"] == 0 and firmware["output_bytes"] > 0
    assert firmware["count"]["median"] > 0
    text = report.read_text()
    assert "PASS" in text and "int8 TFLite" in text and "int8 LCE TFLite (Larq Compute Engine)" in text and (tmp_path / "demo" / "cmc.png").stat().st_size > 0

    lines.clear()
    run_demo(cfg, echo=lines.append)
    assert sum("skipped" in line for line in lines) == 7

"""The main job end to end on a tiny synthetic set: every step runs, the report says what it measured,
and a rerun resumes from the state file instead of redoing the work."""
import json
import shutil

import pytest

from edgereid.data import synthesize
from edgereid.pipeline import DemoConfig, run_demo

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="the demo's firmware step needs qemu-system-arm and arm-none-eabi-gcc")


@pytest.mark.timeout(1200)  # every stage at tiny scale, the search stage included: ~2 min here, 8.5 when starved
def test_demo_runs_every_step_and_resumes(tmp_path):
    root = tmp_path / "synthetic"
    # 24 identities: 12 train, of which the search holds 2 out and scores candidates on batches of
    # 8 identities (SubnetScorer's calibration P, which search() does not pass on).
    synthesize(root, seed=0, num_ids=24, images_per_id=4, progress=False)
    # The search runs in the `mcu` space (128x64 input): in `tiny` (32x16) the last feature map is 1x1 and
    # the converter writes its global mean as SUM, an op the firmware does not have.
    cfg = DemoConfig(out=str(tmp_path / "demo"), data_root=str(root), width=0.25, epochs=1, p=2,
                     sysu_trials=2, hil_inputs=2, fit_boards=("nrf52840",), progress=False, binary_width=0.125,
                     binary_epochs=1, binary_exact_images=2, search_p=2, search_k=2,
                     search_population=2, search_generations=1, search_parents=1, search_train_epochs=1,
                     search_train_p=2, search_train_k=2, search_calib_images=8)
    lines = []
    report = run_demo(cfg, echo=lines.append)
    state = json.loads((tmp_path / "demo" / "state.json").read_text())
    assert set(state) == {"synthesize", "baseline", "train", "evaluate", "int8", "firmware", "bireid", "search",
                          "search_train", "search_evaluate", "search_int8", "search_firmware"}
    found = state["search"]["result"]
    cost, budget = found["cost"], found["budget"]
    assert cost["latency_ms"] <= budget["latency_ms"] == cfg.search_latency_ms and found["supernet_finished"]
    assert (tmp_path / "demo" / "search" / "best.json").is_file() and found["arch"]["space"] == "mcu"
    searched = state["search_firmware"]["result"]
    # The chosen network fits the MCU and runs bit-exact on its QEMU twin.
    assert searched["fits"] and searched["flash_bytes"] <= searched["flash_budget"]
    assert searched["ram_bytes"] <= searched["ram_budget"]
    hil = searched["hil"]
    assert hil["board"] == "mps2-an500" and hil["passed"] and hil["mismatched_bytes"] == 0 and hil["output_bytes"] > 0
    assert hil["count"]["median"] > 0
    assert set(searched["predicted_ms"]) == {"stm32h743", "rpi5-npu"} and min(searched["predicted_ms"].values()) > 0
    # The retrained network was scored on the cross-modal protocol.
    assert 0 <= state["search_evaluate"]["result"]["infrared->visible"]["mAP"] <= 1
    bireid = state["bireid"]["result"]
    assert bireid["exact_equal"] == bireid["exact_total"] > 0 and bireid["ops"]["CUSTOM:LceBconv2d"] == 16
    firmware = state["firmware"]["result"]
    assert firmware["passed"] and firmware["mismatched_bytes"] == 0 and firmware["output_bytes"] > 0
    assert firmware["count"]["median"] > 0
    text = report.read_text()
    assert "## Search for stm32h743" in text and "## Stage timings" in text and "search/pareto.png" in text
    assert "PASS" in text and "int8 TFLite" in text and "int8 LCE TFLite (Larq Compute Engine)" in text and (tmp_path / "demo" / "cmc.png").stat().st_size > 0

    lines.clear()
    run_demo(cfg, echo=lines.append)
    assert sum("skipped" in line for line in lines) == 12

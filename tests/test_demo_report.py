"""The demo report's plumbing without running the demo: the search section, the stage timings
against their budgets, and what a time cap cut short (the full demo runs in test_demo.py)."""
import random

from edgereid.pipeline import DemoConfig
from edgereid.pipeline.demo import _cut_short, timing_lines
from edgereid.pipeline.demo_search import search_report_lines, split_bn_count
from edgereid.search_space import load_space
from edgereid.search_space.space import sample


def _rank(m):
    return {"mAP": m, "rank1": m, "mINP": m}


def _searched(*, split=0, fits=True, supernet_cut=None, train_finished=True):
    arch = sample(load_space("tiny"), random.Random(0)).to_dict()
    firmware = {"board": "stm32h743", "flash_budget": 2097152, "ram_budget": 524288,
                "hil": {"board": "mps2-an500", "target": "mps2-an500 (QEMU)", "unit": "instructions", "passed": True,
                        "inputs": 2, "output_bytes": 128, "mismatched_bytes": 0, "count": {"median": 123456}},
                "predicted_ms": {"stm32h743": 12.5, "rpi5-npu": 0.75}}
    firmware.update({"fits": True, "flash_bytes": 300000, "ram_bytes": 200000, "arena_bytes": 150000} if fits else
                    {"fits": False, "why": "model needs 3000 KiB flash, board stm32h743 has 2048 KiB"})
    int8 = {"tflite": "x.tflite", "tflite_bytes": 99999, "modality": "infrared" if split else None, "calib_images": 8}
    if not split:
        int8["infrared->visible"] = _rank(0.2)
    return {"search": {"arch": arch, "score": 0.1, "cost": {"latency_ms": 12.5, "flash_bytes": 290000,
                                                            "ram_bytes": 190000},
                       "budget": {"latency_ms": 40.0, "flash_bytes": 2097152, "ram_bytes": 524288},
                       "candidates": 9, "front": 3, "supernet_steps": 30, "supernet_finished": True,
                       "supernet_cut": supernet_cut, "split_bns": split, "bns": 20},
            "train": {"finished": train_finished, "epochs_done": 1, "steps_done": 40, "steps_planned": 120,
                      "params": 1000, "macs": 2000},
            "scores": {"infrared->visible": _rank(0.3), "infrared->visible indoor": _rank(0.4),
                       "visible->visible": _rank(0.5)},
            "int8": int8, "firmware": firmware}


def test_search_section_reports_fit_exactness_latencies_and_the_shared_export():
    text = "\n".join(search_report_lines(DemoConfig(), _searched()))
    assert text.startswith("## Search for stm32h743")
    assert "fits: flash 300,000 B of 2,097,152 B (14%), RAM 200,000 B of 524,288 B (38%" in text
    assert "0 differing from LiteRT (PASS); 123,456 instructions per inference" in text
    assert "| stm32h743 | 12.5 |" in text and "| rpi5-npu | 0.75 |" in text
    assert "| int8 TFLite (LiteRT), infrared->visible (all-search) | 20.0 |" in text
    assert "serves both modalities" in text and "Cut short" not in text and "cut short" not in text


def test_search_section_says_what_went_wrong_or_was_cut():
    text = "\n".join(search_report_lines(DemoConfig(search_train_minutes=3.0), _searched(
        split=4, fits=False, supernet_cut={"steps_at_cap": 12, "cap_minutes": 4.0}, train_finished=False)))
    assert "**does not fit**: model needs 3000 KiB flash" in text
    assert "exported for the infrared modality" in text and "int8 TFLite (LiteRT)" not in text
    assert "stopped it at step 12 of 30" in text
    assert "**cut short** by its 3-min cap after 40 of 120 planned steps" in text


def test_timings_follow_the_plan_and_flag_overruns_and_caps():
    cfg = DemoConfig(max_train_minutes=5.0, stage_budget_minutes=(("synthesize", 0.5), ("train", 5.0),
                                                                  ("search", 4.5), ("search_train", 3.0)))
    trained = {"finished": False, "epochs_done": 4, "steps_done": 300, "steps_planned": 900}
    notes = _cut_short(cfg, trained, {"finished": True}, _searched(train_finished=False))
    assert set(notes) == {"train", "search_train"}
    assert "after 300 of 900 planned steps (33%)" in notes["train"]
    timings = {"search": 200.0, "train": 6.2 * 60, "synthesize": 1.0, "this run": 600.0}
    lines = timing_lines(cfg, timings, notes)
    rows = [line for line in lines if line.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| synthesize", "| train", "| search", "| all steps"]
    train_row = rows[1]
    assert "| 5 | 6.2 | **no** |" in train_row and "its 5-min cap after 300 of 900" in train_row
    assert rows[0].endswith("| yes | no |")
    assert any("This invocation ran 10.0 min" in line for line in lines)


def test_split_bn_count_counts_every_switch():
    arch = sample(load_space("tiny"), random.Random(3))
    split, total = split_bn_count(arch)
    expected = [arch.stem.bn, arch.head.bn] + [x for b in arch.blocks for x in b.bn]
    assert total == len(expected) and split == expected.count("split")

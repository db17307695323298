"""The in-repository fuzzer (tools/fuzz_build.py): a short seeded run through the build
path plus sanitizer builds compared with LiteRT, and the fuzzer's own bookkeeping (a
crash, a hang or a multi-line refusal is counted, never swallowed)."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import fuzz_build  # noqa: E402

import edgereid.firmware  # noqa: E402
from edgereid.errors import FirmwareError  # noqa: E402

pytestmark = pytest.mark.integration

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc/make not installed")


def _bug_lines(report) -> str:
    return "\n".join(f"{sig}: {v[0]} cases, first {v[1]} ({v[2]}; {v[3]})" for sig, v in report.bugs.items())


@needs_gcc
def test_short_seeded_run_has_no_bugs_hangs_or_sanitizer_findings(tmp_path):
    start = time.time()
    report = fuzz_build.fuzz(300, seed=0, sanitize_sample=5, workdir=tmp_path)
    o = report.outcomes
    assert sum(o.values()) == 300
    assert o.get("bug", 0) == 0, _bug_lines(report)
    assert o.get("hang", 0) == 0, report.hangs
    # The mutations reach both sides of the validation, at both levels.
    assert o.get("accepted", 0) > 0 and o.get("refused", 0) > 100
    assert set(report.by_level) == {"bytes", "schema"}
    assert len(report.sample) == 5
    assert set(report.sample_outcomes) <= {"equal", "both_refuse"}, report.sample
    assert report.sample_outcomes.get("equal", 0) >= 3, report.sample
    assert report.failures == 0
    assert time.time() - start < 120


def test_cases_are_a_function_of_seed_and_index(tmp_path):
    corpus = fuzz_build.load_corpus(None, tmp_path)
    a = [fuzz_build.make_case(corpus, 0, i) for i in range(40)]
    b = [fuzz_build.make_case(corpus, 0, i) for i in range(40)]
    assert a == b
    assert len({data for _, data, _ in a}) > 30
    assert {what.split(" ", 1)[0] for _, _, what in a} == {"bytes", "schema"}
    assert fuzz_build.make_case(corpus, 1, 0) != a[0]


def test_an_exception_other_than_edgereids_is_a_bug_with_a_signature(tmp_path, monkeypatch):
    def broken_plan(graph, layers=None):
        return {}["missing"]

    monkeypatch.setattr(edgereid.firmware, "plan", broken_plan)
    report = fuzz_build.fuzz(40, seed=0, workdir=tmp_path)
    assert report.outcomes.get("bug", 0) > 0 and "accepted" not in report.outcomes
    (sig,) = report.bugs
    assert sig.startswith("KeyError at tests/test_fuzz.py:") and "broken_plan" in sig
    assert report.failures == report.outcomes["bug"]


def test_a_case_that_does_not_finish_is_a_hang(tmp_path, monkeypatch):
    def stuck(graph, layers=None):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(edgereid.firmware, "plan", stuck)
    report = fuzz_build.fuzz(40, seed=0, timeout=0.2, workdir=tmp_path)
    assert report.outcomes.get("hang", 0) > 0 and report.failures > 0
    assert report.outcomes.get("hang", 0) + report.outcomes.get("refused", 0) == 40


def test_a_multi_line_refusal_is_a_bug(tmp_path, monkeypatch):
    def two_lines(graph, layers=None):
        raise FirmwareError("first line\nsecond line")

    monkeypatch.setattr(edgereid.firmware, "plan", two_lines)
    report = fuzz_build.fuzz(40, seed=0, workdir=tmp_path)
    assert "multi-line refusal" in report.bugs


def test_cli_writes_the_counts_and_the_command(tmp_path):
    out = tmp_path / "fuzz.md"
    rc = fuzz_build.main(["--n", "60", "--seed", "4", "--quiet", "--out", str(out)])
    text = out.read_text()
    assert rc == 0
    assert "Command: `.venv/bin/python tools/fuzz_build.py --n 60 --seed 4 --quiet --out" in text
    assert "| total | 60 |" in text and "| other exception or multi-line refusal (bug) | 0 |" in text


@needs_gcc
def test_the_sanitizer_sample_catches_what_an_unchecked_op_does(tmp_path, monkeypatch):
    """With MEAN's check switched off, a declared output smaller than what MEAN computes
    makes the kernel write past the caller's output buffer: ASan must report it."""
    import dataclasses

    import edgereid.firmware.lowering as lowering
    from edgereid.tflite import parse_graph, write_graph
    from edgereid.tflite.builder import build_model

    spec = {"name": "mean", "seed": 2, "inputs": [{"name": "x", "shape": [1, 4, 3, 6], "scale": 0.05,
                                                   "zero_point": 3}],
            "ops": [{"op": "MEAN", "axis": [1, 2], "keep_dims": False}]}
    g = parse_graph(build_model(spec))
    y = g.outputs[0]
    g.tensors[y] = dataclasses.replace(g.tensors[y], shape=(1, 2))       # MEAN computes [1, 6]
    path = tmp_path / "mean.tflite"
    path.write_bytes(write_graph(g))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setitem(lowering._CHECKS, "MEAN", lambda c: None)
    outcome, detail = fuzz_build.check_sample(path, work, 0, tmp_path / "objects")
    assert outcome == "sanitizer", detail
    assert "buffer-overflow" in detail

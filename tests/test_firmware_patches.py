"""Patch-based inference of the leading layers (edgereid.firmware.patches): the stripe
geometry, the split the planner picks for a RAM budget, and the generated code byte-equal
to LiteRT BUILTIN_REF on the host (ASan + UBSan) and on QEMU (Cortex-M4)."""
import shutil
import subprocess

import numpy as np
import pytest

from edgereid.errors import FirmwareError

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="needs gcc and make")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")

# A stem like the Re-ID models' (explicit PAD, strided conv, PADV2 + max pool) followed by
# SAME convolutions with stride 2 (odd padding row at the bottom only), dilation, a
# depthwise with channel multiplier 2 and a SAME average pool (window clipped at the border),
# then a residual block (the stem output read by two branches, the wider window last), a depthwise on the sum and a
# channel concatenation of the two: a second stage through branches, ADD and CONCATENATION.
SHARED_QUANT = {"scale": 0.25, "zero_point": -5}   # CONCATENATION copies bytes: one quantization
SPEC = {
    "name": "patch_stem", "seed": 11,
    "inputs": [{"name": "x", "shape": [1, 40, 12, 3], "scale": 0.05, "zero_point": -3}],
    "ops": [{"op": "PAD", "paddings": [[0, 0], [2, 1], [1, 1], [0, 0]]},
            {"op": "CONV_2D", "filters": 8, "kernel": [5, 3], "stride": [2, 1], "padding": "VALID",
             "activation": "RELU"},
            {"op": "CONV_2D", "filters": 8, "kernel": [3, 3], "stride": [1, 1], "dilation": [2, 1],
             "padding": "SAME"},
            {"op": "DEPTHWISE_CONV_2D", "kernel": [3, 3], "stride": [2, 2], "padding": "SAME",
             "depth_multiplier": 2, "activation": "RELU6"},
            {"op": "AVERAGE_POOL_2D", "kernel": [3, 3], "stride": [1, 1], "padding": "SAME"},
            {"op": "PAD", "paddings": [[0, 0], [1, 1], [1, 1], [0, 0]], "constant": -7},
            {"op": "MAX_POOL_2D", "kernel": [3, 3], "stride": [2, 2], "padding": "VALID", "name": "stem"},
            {"op": "CONV_2D", "filters": 16, "kernel": [1, 1], "name": "skip"},
            {"op": "CONV_2D", "filters": 16, "kernel": [3, 3], "padding": "SAME", "inputs": ["stem"], "name": "branch"},
            {"op": "ADD", "inputs": ["branch", "skip"], "name": "sum", "output": SHARED_QUANT},
            {"op": "DEPTHWISE_CONV_2D", "kernel": [3, 3], "padding": "SAME", "name": "dw", "output": SHARED_QUANT},
            {"op": "CONCATENATION", "inputs": ["sum", "dw"], "axis": 3, "output": SHARED_QUANT},
            {"op": "CONV_2D", "filters": 8, "kernel": [3, 3], "stride": [2, 2], "padding": "SAME"}],
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from edgereid.tflite.builder import build_model

    path = tmp_path_factory.mktemp("patches") / "patch_stem.tflite"
    path.write_bytes(build_model(SPEC))
    return path


@pytest.fixture(scope="module")
def lowered(model):
    from edgereid.firmware.frontend import read_tflite
    from edgereid.firmware.lowering import lower_graph

    graph = read_tflite(model)
    return graph, lower_graph(graph)


def test_stripe_rows_keep_padding_at_the_image_border_only():
    from edgereid.firmware.kernel_abi import StructRef
    from edgereid.firmware.patches import RowGeometry

    dummy = StructRef("x", None)
    # 3x3, stride 2, SAME on 16 rows -> 8 rows: padding 0 on top, the odd row at the bottom
    g = RowGeometry(0, "CONV_2D", in_h=16, out_h=8, out_row_bytes=1, in_dims=dummy, out_dims=dummy, params=dummy,
                    window=3, stride=2, pad_top=0)
    assert g.rows_needed(0, 4) == (0, 9, 0)
    assert g.rows_needed(4, 8) == (8, 16, 0)          # clipped at the true bottom: the kernel pads there
    # 5x5 stride 1 SAME: 2 rows of top padding, only for a stripe that starts at the top
    g = RowGeometry(0, "CONV_2D", in_h=10, out_h=10, out_row_bytes=1, in_dims=dummy, out_dims=dummy, params=dummy,
                    window=5, stride=1, pad_top=2)
    assert g.rows_needed(0, 3) == (0, 5, 2)
    assert g.rows_needed(1, 3) == (0, 5, 1)
    assert g.rows_needed(3, 6) == (1, 8, 0)
    assert g.rows_needed(8, 10) == (6, 10, 0)


def test_a_stage_ends_only_where_no_inner_map_is_read_later(lowered):
    from edgereid.firmware.patches import leading_stage, stage_from

    graph, layers = lowered
    stage = leading_stage(graph, layers)
    assert len(stage.geometry) == len(layers)
    # the stem output (op 6) is read by ops 7 and 8: a stage may end at op 6 or after op 9
    assert 7 in stage.cuts and 8 not in stage.cuts and 9 not in stage.cuts and 10 in stage.cuts
    second = stage_from(graph, layers, 7, layers[6].writes[0])
    assert second.cuts[0] == 10 and len(layers) in second.cuts


def test_split_macs_and_buffers(lowered):
    from edgereid.firmware.patches import leading_stage, make_split, plan_patched
    from edgereid.firmware.planner import PATCHED, plan

    graph, layers = lowered
    stage = leading_stage(graph, layers)
    one = make_split(graph, layers, stage, 7, 1)
    assert one.recomputed_macs == 0 and one.patched_macs == one.stage_macs
    split = make_split(graph, layers, stage, 7, 4)
    assert split.recomputed_macs > 0 and len(split.calls) == 4 * 7
    base, patched = plan(graph, layers), plan_patched(graph, layers, split)
    assert patched.arena_bytes < base.arena_bytes
    assert all(patched.location(t)[0] == PATCHED for t in split.inner_tensors)
    assert split.scratch_bytes >= max(split.buffer_bytes.values())
    cheap = make_split(graph, layers, stage, 7, 4, with_calls=False)
    assert (cheap.scratch_bytes, cheap.patched_macs, cheap.calls) == (split.scratch_bytes, split.patched_macs, [])


def test_budget_picks_the_least_recomputation_that_fits(lowered):
    from edgereid.firmware.patches import choose_split, plan_with_patches
    from edgereid.firmware.planner import plan

    graph, layers = lowered
    base = plan(graph, layers)
    smallest, splits = choose_split(graph, layers)
    assert splits and smallest.arena_bytes < base.arena_bytes
    budget = (smallest.arena_bytes + base.arena_bytes) // 2
    chosen, splits = choose_split(graph, layers, budget)
    assert chosen.arena_bytes <= budget and chosen.patches == splits
    fitting = [c for c in splits[0].candidates if c["arena_bytes"] <= budget]
    assert sum(sp.recomputed_macs for sp in splits) == min(c["recomputed_macs"] for c in fitting)
    assert splits[0].report(chosen.arena_bytes)["lower_bound_bytes"] == base.lower_bound_bytes
    assert choose_split(graph, layers, base.arena_bytes)[1] is None          # fits without patches
    with pytest.raises(FirmwareError, match="no patch split meets the RAM budget"):
        choose_split(graph, layers, 64)
    with pytest.raises(FirmwareError, match="over the RAM budget"):
        plan_with_patches(graph, layers, "off", base.arena_bytes - 1)
    with pytest.raises(FirmwareError, match="patches must be one of"):
        plan_with_patches(graph, layers, "on")


def _build_splits(graph, layers, stages, board, out_dir, hil=False, sanitize=False):
    """Build with the given stages: [(end, patches)] from the graph input, then each next
    stage from the previous one's output."""
    from edgereid.firmware.build import SANITIZE_FLAGS, _run_make, board_spec, generate
    from edgereid.firmware.patches import leading_stage, make_split, plan_patched, stage_from
    from edgereid.firmware.toolchain import Toolchain

    splits, stage = [], leading_stage(graph, layers)
    for end, patches in stages:
        split = make_split(graph, layers, stage, end, patches)
        assert split is not None
        splits.append(split)
        stage = stage_from(graph, layers, end, split.stage_output)
    schedule = plan_patched(graph, layers, splits)
    spec = board_spec(board)
    project = generate(graph, spec, out_dir, hil=hil, layers=layers, schedule=schedule)
    _run_make(project, spec, SANITIZE_FLAGS if sanitize else "")
    return project / Toolchain.of(spec).target


@needs_gcc
@pytest.mark.parametrize("stages", [[(7, 2)], [(7, 5)], [(4, 3)], [(3, 16)], [(7, 3), (10, 2)],
                                    [(7, 2), (13, 3)], [(10, 4)]])
def test_patched_firmware_is_bit_exact_on_the_host(model, lowered, tmp_path, stages):
    from edgereid.hil.runner import Reference

    graph, layers = lowered
    exe = _build_splits(graph, layers, stages, "host", tmp_path / "fw", sanitize=True)
    ref = Reference(model)
    for i, x in enumerate(ref.random_inputs(3, seed=len(stages) + stages[0][1])):
        (tmp_path / "in.bin").write_bytes(x.tobytes())
        proc = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        got, want = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8), np.frombuffer(ref.run(x), np.int8)
        assert np.array_equal(got, want), f"input {i}: {np.count_nonzero(got != want)} bytes differ"


@needs_qemu
def test_patched_firmware_is_bit_exact_on_qemu_m4(model, lowered, tmp_path):
    from edgereid.hil.runner import Reference, run_image

    graph, layers = lowered
    image = _build_splits(graph, layers, [(7, 3), (13, 2)], "mps2-an386", tmp_path / "fw", hil=True)
    ref = Reference(model)
    result = run_image(image, "mps2-an386", ref, ref.random_inputs(3, seed=5), model_name=str(model))
    assert result.passed, result.format()


@needs_gcc
def test_build_firmware_cli_reports_both_figures(model, tmp_path):
    import json

    from click.testing import CliRunner

    from edgereid.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["build-firmware", "--model", str(model), "--board", "host", "--out",
                             str(tmp_path / "fw"), "--patches", "auto", "--report"])
    assert ok.exit_code == 0, ok.output
    assert "patches: ops 0.." in ok.output and "per-layer lower bound" in ok.output
    report = json.loads((tmp_path / "fw" / "layers.json").read_text())["patches"]
    assert report and all(r["patched_arena_bytes"] < r["lower_bound_bytes"] for r in report)
    bad = runner.invoke(cli, ["build-firmware", "--model", str(model), "--board", "host", "--out",
                              str(tmp_path / "fw2"), "--ram-budget", "-1"])
    assert bad.exit_code == 2 and "--ram-budget" in bad.output

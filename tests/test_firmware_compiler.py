"""Firmware compiler: reader errors, quant math, planner invariants, determinism, host builds
bit-exact against LiteRT BUILTIN_REF (also under ASan/UBSan), and the board size check."""
import filecmp
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from ai_edge_litert import schema_py_generated as schema  # noqa: E402

from edgereid.errors import FirmwareError  # noqa: E402
from edgereid.firmware import generate, lower_graph, plan, read_tflite  # noqa: E402
from edgereid.firmware import quantize_math as qm  # noqa: E402
from edgereid.firmware.bitexact import check_model, random_op_spec  # noqa: E402
from edgereid.firmware.build import build_firmware  # noqa: E402
from edgereid.firmware.codegen import BoardSpec  # noqa: E402
from edgereid.firmware.planner import ARENA  # noqa: E402
from edgereid.firmware.tflite_builder import build_model  # noqa: E402

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc/make not installed")

CHAIN_SPEC = {
    "name": "chain", "seed": 3,
    "inputs": [{"name": "x", "shape": [1, 12, 10, 3], "scale": 0.05, "zero_point": -4}],
    "ops": [
        {"op": "CONV_2D", "name": "c1", "filters": 8, "kernel": [3, 3], "stride": [2, 2], "padding": "SAME",
         "activation": "RELU"},
        {"op": "DEPTHWISE_CONV_2D", "name": "d1", "kernel": [3, 3], "padding": "SAME", "activation": "RELU6"},
        {"op": "CONV_2D", "name": "c2", "inputs": ["d1"], "filters": 8, "kernel": [1, 1]},
        {"op": "ADD", "name": "a1", "inputs": ["c1", "c2"], "activation": "RELU"},
        {"op": "MAX_POOL_2D", "name": "p1", "kernel": [2, 2], "stride": [2, 2]},
        {"op": "RESHAPE", "name": "r1", "shape": [1, 3 * 2 * 8 + 0]},
        {"op": "FULLY_CONNECTED", "name": "f1", "units": 10},
    ],
}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _with_opcode(model_bytes: bytes, op_name: str) -> bytes:
    """The same model with its first opcode replaced (to make an unsupported op)."""
    import flatbuffers

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    code = getattr(schema.BuiltinOperator, op_name)
    model.operatorCodes[0].builtinCode = code
    model.operatorCodes[0].deprecatedBuiltinCode = min(code, 127)
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("chain"), "chain.tflite", build_model(CHAIN_SPEC))


# ---- reader -----------------------------------------------------------------------

def test_reader_graph(chain_model):
    g = read_tflite(chain_model)
    assert [op.kind for op in g.ops] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MAX_POOL_2D",
                                         "RESHAPE", "FULLY_CONNECTED"]
    conv = g.ops[0]
    assert conv.options["padding"] == "SAME" and conv.options["stride_h"] == 2
    assert conv.options["fused_activation_function"] == "RELU" and conv.options["dilation_h_factor"] == 1
    x, w = g.tensors[conv.inputs[0]], g.tensors[conv.inputs[1]]
    assert x.shape == (1, 12, 10, 3) and x.dtype == "int8" and x.zero_point == -4
    assert w.is_const and w.dtype == "int8" and len(w.scales) == 8 and w.array().shape == (8, 3, 3, 3)
    assert g.tensors[g.outputs[0]].shape == (1, 10)


def test_reader_unsupported_op_names_index_and_supported_list(tmp_path, chain_model):
    path = _write(tmp_path, "hs.tflite", _with_opcode(chain_model.read_bytes(), "HARD_SWISH"))
    with pytest.raises(FirmwareError) as err:
        read_tflite(path)
    msg = str(err.value)
    assert "op 0 (HARD_SWISH) is not supported; supported:" in msg
    assert "CONV_2D" in msg and "FULLY_CONNECTED" in msg


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "not_tflite", "truncated", "garbage_body"])
def test_reader_rejects_bad_files(tmp_path, chain_model, case):
    data = chain_model.read_bytes()
    path = {
        "missing": tmp_path / "nope.tflite",
        "directory": tmp_path,
        "empty": _write(tmp_path, "e.tflite", b""),
        "not_tflite": _write(tmp_path, "n.tflite", b"PK\x03\x04" + bytes(200)),
        "truncated": _write(tmp_path, "t.tflite", data[: len(data) // 2]),
        "garbage_body": _write(tmp_path, "g.tflite", data[:8] + bytes(range(256)) * 4),
    }[case]
    with pytest.raises(FirmwareError) as err:
        read_tflite(path)
    assert str(path) in str(err.value)


def test_reader_rejects_float_activation(tmp_path, chain_model):
    import flatbuffers

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(chain_model.read_bytes(), 0))
    sg = model.subgraphs[0]
    sg.tensors[sg.operators[0].outputs[0]].type = schema.TensorType.FLOAT32
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    path = _write(tmp_path, "f.tflite", bytes(fb.Output()))
    with pytest.raises(FirmwareError, match=r"op 0 \(CONV_2D\) output 0 .* dtype float32"):
        read_tflite(path)


# ---- quantization arithmetic ------------------------------------------------------------

def test_quantize_multiplier_matches_tflite_rules():
    assert qm.quantize_multiplier(0.5) == (1 << 30, 0)
    assert qm.quantize_multiplier(0.75) == (1610612736, 0)
    assert qm.quantize_multiplier(3.0) == (1610612736, 2)
    assert qm.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)   # rounds up to 2^31: halve, shift+1
    assert qm.quantize_multiplier(2.0 ** -40) == (0, 0)               # shift < -31 flushes to zero
    assert qm.round_half_away(2.5) == 3 and qm.round_half_away(-2.5) == -3
    assert qm.activation_range("RELU6", 0.05, -10) == (-10, 110)
    assert qm.mean_multiplier_with_count(0.06, 0.02, 64) == (1610612736, -4)


# ---- planner --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_planner_invariants(seed, tmp_path):
    kind = ["ADD", "CONCATENATION", "CONV_2D", "MUL", "PAD", "RESHAPE"][seed]
    specs = [CHAIN_SPEC, random_op_spec(kind, seed)]
    for spec in specs:
        g = read_tflite(_write(tmp_path, f"{spec['name']}.tflite", build_model(spec)))
        layers = lower_graph(g)
        s = plan(g, layers)
        assert s.lower_bound_bytes <= s.arena_bytes <= s.sum_activation_bytes
        arena = [grp for grp in s.groups if grp.place == ARENA]
        for grp in arena:
            assert grp.offset % 16 == 0
        # Brute force: groups alive at the same step never share a byte.
        for i, a in enumerate(arena):
            for b in arena[i + 1:]:
                if a.overlaps(b):
                    assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
        # A layer's distinct inputs and outputs never overlap unless planned as one group.
        for layer in layers:
            for t_in in layer.reads:
                for t_out in layer.writes:
                    if s.group_of[t_in] != s.group_of[t_out]:
                        pa, oa = s.location(t_in)
                        pb, ob = s.location(t_out)
                        if pa == pb == ARENA:
                            ea, eb = oa + g.tensors[t_in].nbytes, ob + g.tensors[t_out].nbytes
                            assert ea <= ob or eb <= oa


# ---- code generation and builds ------------------------------------------------------------

def test_generate_is_deterministic(tmp_path, chain_model):
    g = read_tflite(chain_model)
    first, second = generate(g, "host", tmp_path / "a"), generate(read_tflite(chain_model), "host", tmp_path / "b")
    cmp = filecmp.dircmp(first, second)
    assert not cmp.left_only and not cmp.right_only
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert Path("model.c") in files and Path("Makefile") in files
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


@needs_gcc
def test_host_build_bit_exact_chain(tmp_path):
    result = check_model(build_model(CHAIN_SPEC), "chain", num_inputs=8, seed=1, workdir=tmp_path)
    assert result.elements == 80
    assert result.exact, result


@needs_gcc
def test_host_build_bit_exact_global_mean(tmp_path):
    spec = {"name": "gap", "seed": 5, "inputs": [{"name": "x", "shape": [1, 8, 6, 16], "scale": 0.06,
                                                  "zero_point": -2}],
            "ops": [{"op": "CONV_2D", "filters": 16, "kernel": [3, 3], "activation": "RELU"},
                    {"op": "MEAN", "axis": [1, 2], "keep_dims": False}]}
    result = check_model(build_model(spec), "gap", num_inputs=16, seed=2, workdir=tmp_path)
    assert result.exact, result


@needs_gcc
@pytest.mark.parametrize("kind,seed", [("CONV_2D", 11), ("DEPTHWISE_CONV_2D", 12), ("FULLY_CONNECTED", 13),
                                       ("ADD", 14), ("AVERAGE_POOL_2D", 15), ("PAD", 16)])
def test_single_op_bit_exact_under_sanitizers(tmp_path, kind, seed):
    spec = random_op_spec(kind, seed)
    result = check_model(build_model(spec), spec["name"], num_inputs=2, seed=seed, sanitize=True, workdir=tmp_path)
    assert result.exact, result


@needs_gcc
def test_does_not_fit_names_sizes_and_leaves_no_output(tmp_path, chain_model):
    tiny = BoardSpec(name="tiny", core="x86-64", cc="gcc", cflags=(), ldscript=None, startup=None,
                     flash_bytes=4096, ram_bytes=None, stack_bytes=None)
    out = tmp_path / "fw"
    with pytest.raises(FirmwareError, match=r"model needs [\d.]+ KiB flash, board tiny has 4\.0 KiB "
                                            r"\(over by [\d.]+ KiB\)"):
        build_firmware(chain_model, tiny, out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_missing_toolchain_is_a_clear_error(tmp_path, chain_model):
    board = BoardSpec(name="nocc", core="x86-64", cc="no-such-cc-edgereid", cflags=(), ldscript=None,
                      startup=None, flash_bytes=None, ram_bytes=None, stack_bytes=None)
    with pytest.raises(FirmwareError, match="C compiler 'no-such-cc-edgereid' not found"):
        build_firmware(chain_model, board, tmp_path / "fw")
    assert not (tmp_path / "fw").exists()


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_cortex_m_build_reports_sizes(tmp_path, chain_model):
    result = build_firmware(chain_model, "mps2-an386", tmp_path / "fw")
    assert result.executable.name == "firmware.elf" and result.executable.is_file()
    weights = sum(layer.weight_bytes for layer in result.layers)
    assert result.size.flash_bytes > weights
    assert result.size.bss >= result.schedule.arena_bytes
    assert result.size.ram_bytes == result.size.data + result.size.bss + 16384

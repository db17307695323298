"""The C kernel library in firmware/: warning-free builds, self-consistency under
sanitizers (portable and emulated-DSP paths), and byte equality with LiteRT's
reference kernels (BUILTIN_REF) on randomised single-op models."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_harness as fh  # noqa: E402

ROOT = fh.ROOT
INCLUDES = [f"-I{ROOT / 'firmware' / 'include'}", f"-I{ROOT / 'firmware' / 'kernels' / 'support'}"]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]

ARM_TARGETS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
    "cortex-m55": ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],  # no DSP: portable path
}


def _need(tool: str):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (tools/setup.sh installs it)")


def _run(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}\n{res.stdout}\n{res.stderr}"
    return res


# ---- builds ------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["portable", "emulated_dsp"])
def test_host_sanitized_self_consistency(tmp_path, variant):
    """Random shapes/quant: generic == naive, specialised == generic, under ASan+UBSan."""
    _need("gcc")
    exe = tmp_path / f"test_kernels_{variant}"
    defines = ["-DEREID_EMULATE_DSP"] if variant == "emulated_dsp" else []
    _run(["gcc", *STRICT, *SANITIZE, *defines, *INCLUDES, *fh.kernel_sources(),
          ROOT / "tests" / "c" / "test_kernels.c", "-o", exe, "-lm"])
    res = _run([exe, "400", "777"], timeout=120)
    assert "failures 0" in res.stdout, res.stdout


def test_dsp_emulation_matches_portable_bytes(tmp_path):
    """Both host builds hash every kernel output; the hashes must agree."""
    _need("gcc")
    hashes = []
    for defines in ([], ["-DEREID_EMULATE_DSP"]):
        exe = tmp_path / f"tk{len(hashes)}"
        _run(["gcc", *STRICT, "-O2", *defines, *INCLUDES, *fh.kernel_sources(),
              ROOT / "tests" / "c" / "test_kernels.c", "-o", exe, "-lm"])
        out = _run([exe, "300", "4242"], timeout=120).stdout
        hashes.append(re.search(r"hash ([0-9a-f]+)", out).group(1))
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize("target", sorted(ARM_TARGETS))
def test_arm_cross_compile_clean(tmp_path, target):
    _need("arm-none-eabi-gcc")
    objs = []
    for src in fh.kernel_sources():
        obj = tmp_path / (src.stem + ".o")
        _run(["arm-none-eabi-gcc", *STRICT, "-O2", *ARM_TARGETS[target], *INCLUDES, "-c", src, "-o", obj])
        objs.append(obj)
    if target in ("cortex-m4", "cortex-m7"):
        # The DSP path must really be compiled in where the core has it.
        _need("arm-none-eabi-objdump")
        dis = _run(["arm-none-eabi-objdump", "-d", tmp_path / "ereid_convolve_s8.o"]).stdout
        assert "smlad" in dis and "sxtb16" in dis
    if target == "cortex-m3":
        dis = _run(["arm-none-eabi-objdump", "-d", tmp_path / "ereid_convolve_s8.o"]).stdout
        assert "smlad" not in dis


# ---- exactness against LiteRT BUILTIN_REF -------------------------------------

def random_single_op_spec(seed: int) -> dict:
    """A random single-op int8 model spec (shapes, options, quantization)."""
    rng = np.random.default_rng(seed)
    kinds = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MAX_POOL_2D",
             "AVERAGE_POOL_2D", "MEAN", "PAD", "CONCATENATION", "SOFTMAX", "RESIZE_NEAREST_NEIGHBOR",
             "L2_NORMALIZATION", "RESHAPE"]
    kind = kinds[seed % len(kinds)]

    def ri(lo, hi):
        return int(rng.integers(lo, hi + 1))

    def inp(name, shape):
        return {"name": name, "shape": shape, "scale": float(rng.uniform(0.005, 0.2)),
                "zero_point": ri(-60, 60)}

    act = ["NONE", "RELU", "RELU6"][ri(0, 2)]
    shape = [ri(1, 2), ri(1, 10), ri(1, 10), ri(1, 13)]
    op: dict = {"op": kind}
    inputs = [inp("x", shape)]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        k = [1, 3, 5][ri(0, 2)]
        op.update(kernel=[k, k if ri(0, 3) else [1, 3, 5][ri(0, 2)]], stride=[ri(1, 2), ri(1, 2)],
                  padding=["SAME", "VALID"][ri(0, 1)], activation=act)
        if ri(0, 3) == 0:
            op["dilation"] = [2, 2]
            op["stride"] = [1, 1]  # TFLite allows both, keep shapes small
        if kind == "CONV_2D":
            op["filters"] = ri(1, 17)
        else:
            op["depth_multiplier"] = ri(1, 3)
        eff = [(op["kernel"][i] - 1) * op.get("dilation", [1, 1])[i] + 1 for i in range(2)]
        inputs[0]["shape"][1] = max(inputs[0]["shape"][1], eff[0])
        inputs[0]["shape"][2] = max(inputs[0]["shape"][2], eff[1])
    elif kind == "FULLY_CONNECTED":
        inputs = [inp("x", [ri(1, 3), ri(1, 80)])]
        op.update(units=ri(1, 20), activation=act, per_channel=bool(ri(0, 1)))
    elif kind in ("ADD", "MUL"):
        other = list(shape)
        if ri(0, 2) == 0:
            other = [1, 1, 1, shape[3]] if ri(0, 1) else [shape[0], shape[1], shape[2], 1]
        inputs = [inp("x", shape), inp("y", other)]
        op.update(inputs=["x", "y"], activation=act)
    elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        k = ri(1, 3)
        op.update(kernel=[k, ri(1, 3)], stride=[ri(1, 2), ri(1, 2)], padding=["SAME", "VALID"][ri(0, 1)],
                  activation=act)
        inputs[0]["shape"][1] = max(shape[1], op["kernel"][0])
        inputs[0]["shape"][2] = max(shape[2], op["kernel"][1])
    elif kind == "MEAN":
        axes = [[1, 2], [1, 2], [2, 1], [1], [3], [2], [1, 2, 3]][ri(0, 6)]
        op.update(axis=axes, keep_dims=bool(ri(0, 3)), same_quant=bool(ri(0, 2) == 0))
    elif kind == "PAD":
        op["paddings"] = [[0, 0], [ri(0, 2), ri(0, 2)], [ri(0, 2), ri(0, 2)], [ri(0, 1), ri(0, 1)]]
        if ri(0, 1):
            op["constant"] = ri(-128, 127)
    elif kind == "CONCATENATION":
        axis = ri(0, 3)
        n = ri(2, 3)
        shapes = []
        for _ in range(n):
            s = list(shape)
            s[axis] = ri(1, 4)
            shapes.append(s)
        q = inp("x", shapes[0])
        inputs = [dict(q, name=f"x{i}", shape=s) for i, s in enumerate(shapes)]
        op.update(inputs=[f"x{i}" for i in range(n)], axis=axis if ri(0, 1) else axis - 4)
    elif kind == "SOFTMAX":
        inputs = [inp("x", [ri(1, 3), ri(1, 40)])]
        op["beta"] = float(rng.choice([1.0, 0.5, 2.0, float(rng.uniform(0.1, 3.0))]))
    elif kind == "RESIZE_NEAREST_NEIGHBOR":
        align = bool(ri(0, 1))
        op.update(size=[ri(1, 16), ri(1, 16)], align_corners=align, half_pixel_centers=(not align) and bool(ri(0, 1)))
    elif kind == "L2_NORMALIZATION":
        inputs = [inp("x", [ri(1, 3), ri(1, 64)])]
    elif kind == "RESHAPE":
        op["shape"] = [shape[0], -1]
    return {"name": f"random_{seed}_{kind.lower()}", "seed": seed, "inputs": inputs, "ops": [op]}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    _need("gcc")
    pytest.importorskip("ai_edge_litert")
    return fh.KernelRunner(fh.build_shared(tmp_path_factory.mktemp("ereid_lib")))


def _run_litert(model: bytes, inputs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for det, arr in zip(it.get_input_details(), inputs):
        it.set_tensor(det["index"], arr)
    it.invoke()
    return it, it.get_tensor(it.get_output_details()[0]["index"])


N_RANDOM_CASES = 70  # 5 per op kind


@pytest.mark.parametrize("seed", range(N_RANDOM_CASES))
def test_kernel_equals_litert_reference(runner, seed):
    from edgereid.tflite.builder import build_model
    spec = random_single_op_spec(seed)
    model = build_model(spec)
    rng = np.random.default_rng(1000 + seed)
    inputs = [rng.integers(-128, 128, size=i["shape"]).astype(np.int8) for i in spec["inputs"]]
    it, expected = _run_litert(model, inputs)
    got = runner.run(spec, it, inputs).reshape(expected.shape)
    diff = np.flatnonzero(got != expected)
    assert diff.size == 0, (f"{spec['name']}: {diff.size}/{expected.size} bytes differ, e.g. at {diff[0]}: "
                            f"kernel {got.ravel()[diff[0]]} vs LiteRT {expected.ravel()[diff[0]]}; spec {spec}")


@pytest.mark.parametrize("seed", range(4))
def test_quantize_dequantize_equal_litert(runner, seed):
    from edgereid.tflite.builder import build_model
    rng = np.random.default_rng(seed)
    scale, zp = float(np.float32(rng.uniform(0.01, 0.3))), int(rng.integers(-30, 30))
    shape = [1, 3, 5, 7]
    spec = {"seed": seed, "inputs": [{"name": "x", "shape": shape, "dtype": "float32", "scale": scale,
                                      "zero_point": zp}],
            "ops": [{"op": "RESHAPE", "shape": [1, -1]}], "float_output": True}
    x = (rng.normal(size=shape) * 30 * scale).astype(np.float32)
    # exact ties (k + 0.5) * scale are where rounding rules differ; include some
    x.ravel()[:10] = (np.arange(-5, 5) + 0.5).astype(np.float32) * np.float32(scale)
    _, expected = _run_litert(build_model(spec), [x])
    q = runner.quantize(x, scale, zp)
    got = runner.dequantize(q, scale, zp).reshape(expected.shape)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


# ---- the committed-by-generator corpus ------------------------------------------

def _corpus_specs():
    sys.path.insert(0, str(ROOT / "tools"))
    from gen_tflite_corpus import corpus_specs
    return corpus_specs()


def test_corpus_is_deterministic_and_runs_in_litert(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_tflite_corpus
    assert gen_tflite_corpus.main(["--out", str(tmp_path / "a"), "--seed", "3"]) == 0
    assert gen_tflite_corpus.main(["--out", str(tmp_path / "b"), "--seed", "3"]) == 0
    models = sorted((tmp_path / "a").glob("*.tflite"))
    assert len(models) == len(_corpus_specs())
    for m in models:
        assert m.read_bytes() == (tmp_path / "b" / m.name).read_bytes(), m.name
        it = Interpreter(model_path=str(m), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.ones(d["shape"], d["dtype"]))
        it.invoke()


def test_corpus_single_op_models_equal_litert(runner):
    """Every single-op, int8-in/int8-out corpus model, byte for byte."""
    from edgereid.tflite.builder import build_model
    checked = 0
    for i, (name, spec) in enumerate(_corpus_specs().items()):
        if len(spec["ops"]) != 1 or spec.get("float_output") or any(
                x.get("dtype", "int8") != "int8" for x in spec["inputs"]):
            continue
        spec = dict(spec, seed=i)
        rng = np.random.default_rng(i)
        inputs = [rng.integers(-128, 128, size=x["shape"]).astype(np.int8) for x in spec["inputs"]]
        it, expected = _run_litert(build_model(spec), inputs)
        got = runner.run(spec, it, inputs).reshape(expected.shape)
        assert np.array_equal(got, expected), name
        checked += 1
    assert checked >= 70

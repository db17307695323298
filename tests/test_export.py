"""Export: int8 TFLite fully integer with int8 I/O, metadata, parity, clear refusals."""
import numpy as np
import pytest
import torch
from torch import nn

torch.set_num_threads(1)
pytest.importorskip("litert_torch")

from edgereid.compress import quantize  # noqa: E402
from edgereid.errors import CheckpointError, ExportError  # noqa: E402
from edgereid.export import (check_int8_tflite, export_onnx, export_tflite, read_export_metadata,  # noqa: E402
                             run_tflite)

SIZE = (32, 16)


class TinyResNet(nn.Module):
    """Stem, one residual block (ADD + ReLU), max-pool, mean, BN-neck like our backbones."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.conv1 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.bnneck = nn.BatchNorm1d(8)

    def forward(self, x):
        x = self.pool(self.stem(x))
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.bnneck(self.relu(out + x).mean(dim=(2, 3)))


def _model():
    torch.manual_seed(0)
    m = TinyResNet()
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
    return m.eval()


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    model = _model()
    g = torch.Generator().manual_seed(1)
    calib = [torch.randn(16, 3, *SIZE, generator=g) for _ in range(4)]
    q = quantize(model, calib)
    path = tmp_path_factory.mktemp("exp") / "tiny_int8.tflite"
    export_tflite(q, path, input_size=SIZE, int8=True, model_name="tiny",
                  preprocess={"size": list(SIZE), "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    return model, q, path


def test_int8_tflite_is_fully_integer_with_int8_edges(int8_export):
    _, _, path = int8_export
    check_int8_tflite(path)  # raises on any float op
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert list(interp.get_input_details()[0]["shape"]) == [1, *SIZE, 3]  # NHWC
    assert interp.get_output_details()[0]["dtype"] == np.int8


def test_metadata_matches_the_tensors(int8_export):
    _, _, path = int8_export
    meta = read_export_metadata(path)
    assert meta["model_name"] == "tiny" and meta["int8"] is True
    assert meta["input_size"] == list(SIZE) and meta["mean"] == [0.5, 0.5, 0.5]
    assert meta["channel_order"] == "RGB" and meta["input_layout"] == "NHWC"
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    for detail, recorded in ((interp.get_input_details()[0], meta["inputs"][0]),
                             (interp.get_output_details()[0], meta["outputs"][0])):
        scale, zp = detail["quantization"]
        assert recorded["scale"] == pytest.approx(scale, rel=1e-6)
        assert recorded["zero_point"] == zp
        assert recorded["dtype"] == "int8"


def _op_names(path):
    from edgereid.tflite import flatbuf

    graph = flatbuf.load(path.read_bytes())
    return [flatbuf.op_name(graph, op) for op in graph.subgraphs[0].operators]


def test_int8_graph_pools_in_nhwc_with_firmware_ops_only(int8_export):
    # The mean over H, W must run on the NHWC tensor: litert-torch used to put an int8
    # TRANSPOSE back to NCHW before it, and the firmware has no TRANSPOSE kernel.
    from edgereid.firmware import supported_ops

    ops = _op_names(int8_export[2])
    assert "MEAN" in ops and "TRANSPOSE" not in ops, ops
    assert set(ops) <= supported_ops(), sorted(set(ops) - supported_ops())


def test_pool_rewrite_keeps_values_and_drops_the_transpose(tmp_path):
    from edgereid.export.prepare import pool_in_channels_last

    model = _model()
    x = torch.randn(3, 3, *SIZE)
    graph = torch.export.export(model, (x,)).module()
    means = [n for n in graph.graph.nodes if n.target is torch.ops.aten.mean.dim]
    assert len(means) == 1 and means[0].args[2:] == ()
    pool_in_channels_last(graph)
    assert means[0].args[2] is True
    with torch.no_grad():
        torch.testing.assert_close(graph(x), model(x))
    p = export_tflite(model, tmp_path / "f.tflite", input_size=SIZE)
    assert "TRANSPOSE" not in _op_names(p) and "MEAN" in _op_names(p)


@pytest.mark.parametrize("reference", [True, False])
def test_int8_tflite_matches_quantized_torch(int8_export, reference):
    float_model, q, path = int8_export
    x = torch.randn(32, 3, *SIZE, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = q(x).numpy()
        fl = float_model(x).numpy()
    y = run_tflite(path, x.numpy(), reference_kernels=reference)

    def cos(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    assert np.median(cos(y, ref)) >= 0.99
    assert np.median(cos(ref, fl)) >= 0.98


def test_float_op_is_refused_with_its_name(tmp_path):
    class Normalised(nn.Module):  # F.normalize: no int8 kernel path through the quantizer
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return nn.functional.normalize(self.conv(x).mean(dim=(2, 3)), dim=1)

    q = quantize(Normalised().eval(), [torch.randn(4, 3, *SIZE)])
    with pytest.raises(ExportError, match=r"op \d+ \w+ runs in float32"):
        export_tflite(q, tmp_path / "n.tflite", input_size=SIZE, int8=True)
    assert not (tmp_path / "n.tflite").exists()


def test_float_tflite_and_onnx_with_metadata(tmp_path):
    model = _model()
    x = torch.randn(4, 3, *SIZE)
    p = export_tflite(model, tmp_path / "f.tflite", input_size=SIZE, model_name="tiny")
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(run_tflite(p, x.numpy()), ref, rtol=1e-4, atol=1e-4)
    assert read_export_metadata(p)["int8"] is False
    o = export_onnx(model, tmp_path / "f.onnx", input_size=SIZE, model_name="tiny")
    meta = read_export_metadata(o)
    assert meta["model_name"] == "tiny" and meta["input_layout"] == "NCHW"


def test_int8_of_a_float_model_is_a_clear_error(tmp_path):
    # export converts; quantizing (calibration) is edgereid.compress's job, done before
    with pytest.raises(ExportError, match="int8 TFLite export takes a quantized model: quantize TinyResNet first"):
        export_tflite(_model(), tmp_path / "x.tflite", input_size=SIZE, int8=True)
    assert not (tmp_path / "x.tflite").exists()


def test_metadata_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ExportError):
        read_export_metadata(bad)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from edgereid.compress import load_model

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_model(bad)

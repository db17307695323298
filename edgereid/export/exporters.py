"""Export a Re-ID model to TFLite (float or full-integer int8) and ONNX, with metadata."""
from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import torch
from torch import nn

import edgereid
from edgereid import atomic
from edgereid.errors import ExportError, TFLiteError
from edgereid.export.prepare import ChannelsLast, pool_in_channels_last, prepare_for_export
from edgereid.tflite import flatbuf

DEFAULT_PREPROCESS = {"size": [128, 64], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                      "channel_order": "RGB"}


def _is_quantized_graph(model) -> bool:
    return isinstance(model, torch.fx.GraphModule) and "edgereid_quantized" in model.meta


@contextlib.contextmanager
def _quiet():
    """The converter prints progress bars and absl lines; keep library calls silent."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        logging.root.setLevel(level)


def _metadata(model_name, preprocess, fmt, int8, io_desc=None, extra=None) -> dict:
    pre = dict(DEFAULT_PREPROCESS)
    pre.update(preprocess or {})
    meta = {
        "edgereid_version": edgereid.__version__,
        "model_name": model_name,
        "format": fmt,
        "int8": bool(int8),
        "input_size": list(pre["size"]),
        "mean": list(pre["mean"]),
        "std": list(pre["std"]),
        "channel_order": pre.get("channel_order", "RGB"),
        "input_layout": "NHWC" if fmt == "tflite" else "NCHW",
        "input_range": "normalised: (pixel / 255 - mean) / std",
    }
    if io_desc is not None:
        meta["inputs"], meta["outputs"] = io_desc["inputs"], io_desc["outputs"]
    if extra:
        meta.update(extra)
    return meta


def _static_int8_config():
    """The converter's quantization mode: it reads only whether the PT2E graph is static
    (Q/DQ pairs lowered to int8 kernels) or dynamic, never which quantizer annotated it."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    return QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(get_symmetric_quantization_config(
        is_per_channel=True, is_dynamic=False)))


def select_modality(model: nn.Module, modality: str | None, model_name: str | None = None) -> nn.Module:
    """The model to export for `modality` ("visible" / "infrared"): split (per-modality) BNs
    become that modality's plain BNs (`edgereid.models.for_modality`), so they fold into their
    convs like any BN. A model with split BNs needs a modality; one without takes any (or none)."""
    from edgereid.models.switchable import MODALITIES, for_modality, switchable_bns

    name = model_name or getattr(model, "model_name", None) or type(model).__name__
    if modality is not None and modality not in MODALITIES:
        raise ExportError(f"modality {modality!r}: expected {' or '.join(repr(m) for m in MODALITIES)}")
    bns = switchable_bns(model)
    split = sum(bn.split for bn in bns)
    if split and modality is None:
        raise ExportError(f"{name} has {split} split (per-modality) BN layers: export one modality at a time, "
                          f"modality={' or '.join(repr(m) for m in MODALITIES)} (CLI: --modality)")
    return for_modality(model, modality if split else None) if bns else model


def export_tflite(model: nn.Module, path, input_size=(128, 64), int8: bool = False,
                  preprocess: dict | None = None, model_name: str | None = None,
                  extra_metadata: dict | None = None, modality: str | None = None) -> Path:
    """Write a .tflite with NHWC input [1, H, W, 3] and the embedding [1, D] as output.

    - float: `model` is an eval-mode nn.Module.
    - int8: `model` is the graph `edgereid.compress.quantize` / `quantize_qat` returns
      (quantize first: export does not calibrate). Input and output tensors are int8 (no
      QUANTIZE/DEQUANTIZE at the edges) and every op is checked: any op touching a float
      tensor fails the export with ExportError.

    Preprocessing, model name, edgereid version and the int8 input/output scale and zero
    point are stored as JSON in the Model.metadata entry "edgereid".

    `modality`: a model with split (per-modality, CM-NAS) BNs exports one modality at a
    time (`select_modality`); an int8 graph was quantized from that modality's model
    already (`select_modality` before `quantize`), so there it is only recorded.
    """
    import litert_torch

    path = Path(path)
    h, w = (int(s) for s in (preprocess or {}).get("size", input_size))
    model_name = model_name or getattr(model, "model_name", None) or type(model).__name__
    if not _is_quantized_graph(model):
        model = select_modality(model, modality, model_name)
    if modality is not None:
        extra_metadata = {**(extra_metadata or {}), "modality": modality}
    if int8 and not _is_quantized_graph(model):
        raise ExportError(f"int8 TFLite export takes a quantized model: quantize {model_name} first "
                          "(edgereid.compress.quantize(model, calib) or quantize_qat)")
    elif not int8 and _is_quantized_graph(model):
        raise ExportError("this model is already quantized: export it with int8=True")
    if not int8:
        try:
            with torch.no_grad():
                model = pool_in_channels_last(torch.export.export(prepare_for_export(model),
                                                                  (torch.zeros(1, 3, h, w),)).module())
        except Exception as exc:  # torch.export raises many types; name the model and the cause
            raise ExportError(f"torch.export could not trace {model_name}: "
                              f"{str(exc).strip().splitlines()[-1][:400]}") from exc
    sample = torch.zeros(1, h, w, 3)
    kwargs = {"quant_config": _static_int8_config()} if int8 else {}
    try:
        with _quiet(), torch.no_grad():
            edge = litert_torch.convert(ChannelsLast(model), (sample,), **kwargs)
        data = edge.model_content()
    except Exception as exc:  # the converter raises bare ValueError/RuntimeError
        raise ExportError(f"litert-torch could not convert {model_name} to TFLite: "
                          f"{str(exc).strip().splitlines()[-1][:400]}") from exc
    try:
        graph = flatbuf.load(data)
    except TFLiteError as exc:
        raise ExportError(f"litert-torch wrote an unreadable TFLite file for {model_name}: {exc}") from None
    if any(b.offset > 1 for b in graph.buffers or []):
        raise ExportError(f"{model_name}: TFLite with external buffers (model > 2 GB) is not supported")
    if int8:
        flatbuf.quantize_edges(graph)
        floats = flatbuf.float_ops(graph)
        if floats:
            raise ExportError(f"int8 export of {model_name} left {len(floats)} float op(s): " + "; ".join(floats))
    io_desc = flatbuf.io_details(graph)
    meta = _metadata(model_name, preprocess, "tflite", int8, io_desc, extra_metadata)
    meta["input_size"] = [h, w]
    flatbuf.set_metadata(graph, flatbuf.METADATA_NAME, json.dumps(meta, sort_keys=True).encode())
    return atomic.write_bytes(path, flatbuf.dump(graph))


def export_onnx(model: nn.Module, path, input_size=(128, 64), preprocess: dict | None = None,
                model_name: str | None = None, opset: int = 18, modality: str | None = None) -> Path:
    """Float ONNX (NCHW input [1, 3, H, W], dynamic batch), metadata in metadata_props;
    `modality` as in export_tflite."""
    import onnx

    if _is_quantized_graph(model):
        raise ExportError("ONNX export takes the float model; int8 deployment goes through TFLite")
    path = Path(path)
    h, w = (int(s) for s in (preprocess or {}).get("size", input_size))
    model_name = model_name or getattr(model, "model_name", None) or type(model).__name__
    model = select_modality(model, modality, model_name)
    net = prepare_for_export(model)
    sample = torch.zeros(1, 3, h, w)
    buf = io.BytesIO()
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(net, (sample,), buf, input_names=["image"], output_names=["embedding"],
                              opset_version=opset, dynamo=False,
                              dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}})
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed for {model_name}: {str(exc).strip().splitlines()[-1][:400]}") from exc
    proto = onnx.load_from_string(buf.getvalue())
    meta = _metadata(model_name, preprocess, "onnx", False,
                     extra={"modality": modality} if modality else None)
    meta["input_size"] = [h, w]
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "edgereid", json.dumps(meta, sort_keys=True)
    return atomic.write_bytes(path, proto.SerializeToString())


def read_export_metadata(path) -> dict:
    """The "edgereid" metadata JSON of a .tflite or .onnx written by this module."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from None
    if data[4:8] == b"TFL3":
        try:
            meta = flatbuf.read_metadata_json(data)
        except TFLiteError as exc:
            raise ExportError(f"{path}: {exc}") from None
    else:
        import onnx

        try:
            proto = onnx.load_from_string(data)
        except Exception:
            raise ExportError(f"{path} is neither a TFLite flatbuffer nor an ONNX model") from None
        meta = next((json.loads(p.value) for p in proto.metadata_props if p.key == "edgereid"), None)
    if meta is None:
        raise ExportError(f"{path} has no 'edgereid' metadata entry (not exported by edgereid?)")
    return meta


def check_int8_tflite(path) -> None:
    """Raise ExportError naming every op of a .tflite that still runs in float."""
    try:
        flatbuf.check_no_float_ops(path)
    except TFLiteError as exc:
        raise ExportError(str(exc)) from None


__all__ = ["export_tflite", "export_onnx", "read_export_metadata", "check_int8_tflite", "select_modality"]

"""Run an exported .tflite on the host (LiteRT), float images in, float embeddings out."""
from __future__ import annotations

import numpy as np


def run_tflite(path, images_nchw: np.ndarray, reference_kernels: bool = True) -> np.ndarray:
    """Embeddings [N, D] for preprocessed images [N, 3, H, W], one invoke per image.

    int8 models: the input is quantized and the output dequantized with the tensors' own
    scale and zero point (round half away from zero, saturating), as a board would.
    `reference_kernels=True` uses LiteRT's BUILTIN_REF kernels, the bit-exact
    reference that TFLite Micro and CMSIS-NN reproduce.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference_kernels else {}
    interp = Interpreter(model_path=str(path), **kw)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    images = np.asarray(images_nchw, dtype=np.float32).transpose(0, 2, 3, 1)
    results = []
    for img in images:
        x = img[None]
        if inp["dtype"] == np.int8:
            scale, zp = inp["quantization"]
            q = np.sign(x / scale) * np.floor(np.abs(x / scale) + 0.5) + zp
            x = np.clip(q, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zp = out["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        results.append(y[0].astype(np.float32))
    return np.stack(results)

"""Run an exported .tflite on the host (LiteRT), float images in, float embeddings out."""
from __future__ import annotations

import numpy as np
import torch


class TFLiteEmbedder(torch.nn.Module):
    """An exported .tflite behind the nn.Module interface evaluation uses: NCHW float in, [N, D] out.

    int8 models: the input is quantized and the output dequantized with the tensors' own
    scale and zero point (round half away from zero, saturating), as a board would.
    `reference_kernels=True` uses LiteRT's BUILTIN_REF kernels, the bit-exact reference
    our firmware reproduces; False uses LiteRT's default (optimized) kernels.
    """

    def __init__(self, path, reference_kernels: bool = True):
        super().__init__()
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference_kernels else {}
        self.path = str(path)
        self.interp = Interpreter(model_path=self.path, **kw)
        self.interp.allocate_tensors()
        self.inp, self.out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]

    def embed(self, images_nchw: np.ndarray) -> np.ndarray:
        images = np.asarray(images_nchw, dtype=np.float32).transpose(0, 2, 3, 1)
        results = []
        for img in images:  # the exported graph has batch 1
            x = img[None]
            if self.inp["dtype"] == np.int8:
                scale, zp = self.inp["quantization"]
                q = np.sign(x / scale) * np.floor(np.abs(x / scale) + 0.5) + zp
                x = np.clip(q, -128, 127).astype(np.int8)
            self.interp.set_tensor(self.inp["index"], x)
            self.interp.invoke()
            y = self.interp.get_tensor(self.out["index"])
            if self.out["dtype"] == np.int8:
                scale, zp = self.out["quantization"]
                y = (y.astype(np.float32) - zp) * scale
            results.append(y.reshape(-1).astype(np.float32))
        return np.stack(results)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.embed(x.detach().cpu().numpy()))


def run_tflite(path, images_nchw: np.ndarray, reference_kernels: bool = True) -> np.ndarray:
    """Embeddings [N, D] for preprocessed images [N, 3, H, W] (see TFLiteEmbedder)."""
    return TFLiteEmbedder(path, reference_kernels).embed(images_nchw)

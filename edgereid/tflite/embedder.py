"""An exported Re-ID .tflite as an embedding model: float NCHW images in, float embeddings out.

Needs torch (the nn.Module interface evaluation uses), so `edgereid.tflite` does not
import this module itself.
"""
from __future__ import annotations

import numpy as np
import torch

from edgereid.tflite.reference import LiteRTRunner


class TFLiteEmbedder(torch.nn.Module):
    """An exported .tflite behind the nn.Module interface evaluation uses: NCHW float in, [N, D] out.

    int8 models: the input is quantized and the output dequantized with the tensors' own
    scale and zero point (round half away from zero, saturating), as a board would.
    `reference_kernels=True` uses LiteRT's BUILTIN_REF kernels, the bit-exact reference
    our firmware reproduces; False uses LiteRT's default (optimized) kernels.
    """

    def __init__(self, path, reference_kernels: bool = True):
        super().__init__()
        self.path = str(path)
        self.runner = LiteRTRunner(self.path, reference_kernels=reference_kernels)
        self.inp, self.out = self.runner.inputs[0], self.runner.outputs[0]

    def embed(self, images_nchw: np.ndarray) -> np.ndarray:
        images = np.asarray(images_nchw, dtype=np.float32).transpose(0, 2, 3, 1)
        results = []
        for img in images:  # the exported graph has batch 1
            x = img[None]
            if self.inp.dtype == np.int8:
                scale, zp = self.inp.scale, self.inp.zero_point
                q = np.sign(x / scale) * np.floor(np.abs(x / scale) + 0.5) + zp
                x = np.clip(q, -128, 127).astype(np.int8)
            y = self.runner.run([x])[0]
            if self.out.dtype == np.int8:
                y = (y.astype(np.float32) - self.out.zero_point) * self.out.scale
            results.append(y.reshape(-1).astype(np.float32))
        return np.stack(results)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.embed(x.detach().cpu().numpy()))


def run_tflite(path, images_nchw: np.ndarray, reference_kernels: bool = True) -> np.ndarray:
    """Embeddings [N, D] for preprocessed images [N, 3, H, W] (see TFLiteEmbedder)."""
    return TFLiteEmbedder(path, reference_kernels).embed(images_nchw)

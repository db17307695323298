"""Hardware-in-the-loop run of a multi-variant image (edgereid.firmware.variants): one image
built once, each variant selected in turn (HIL VARIANT request) and its outputs compared byte
for byte with its own .tflite under the reference run (LiteRT BUILTIN_REF)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from edgereid.atomic import check_output_dir
from edgereid.boards import load_board
from edgereid.errors import HilError
from edgereid.firmware.variants import build_variant_firmware, parse_variants
from edgereid.hil.runner import HilResult, Reference, run_image


def run_hil_variants(variants, board, n: int = 16, port: str | None = None, seed: int = 0,
                     out_dir=None, timeout: float = 120.0, retries: int = 3, dsp: bool = True,
                     sanitize: bool = False, object_cache=None) -> list[HilResult]:
    """Build the HIL image of `variants` ([(name, .tflite)] or ["name=path"]) for `board`, then
    for each variant: select it, run `n` seeded inputs (the same seed for every variant), compare
    with that variant's own reference. One HilResult per variant, in order. `out_dir`, `dsp`,
    `object_cache` as edgereid.hil.run_hil; `sanitize`: the host build under ASan + UBSan."""
    if n < 1:
        raise HilError(f"--n must be at least 1, got {n}")
    if not timeout > 0:
        raise HilError(f"--timeout must be more than 0 seconds, got {timeout}")
    variants = parse_variants(variants)
    if out_dir is not None:
        check_output_dir(out_dir, HilError, what="--out folder")
    board = load_board(board) if isinstance(board, (str, Path)) else board
    references = [Reference(v.model) for v in variants]
    results = []
    with tempfile.TemporaryDirectory(prefix="edgereid-hil-") as tmp:
        build_dir = Path(out_dir) if out_dir is not None else Path(tmp) / "fw"
        built = build_variant_firmware(variants, board, build_dir, hil=True, dsp=dsp, sanitize=sanitize,
                                       object_cache=object_cache)
        for k, (v, reference) in enumerate(zip(variants, references)):
            result = run_image(built.executable, board, reference, reference.random_inputs(n, seed), port=port,
                               timeout=timeout, retries=retries, names_from=build_dir,
                               model_name=f"{v.model} (variant {k} {v.name})", seed=seed, variant=k)
            if out_dir is None:
                result.image = ""  # the temporary build is gone
            results.append(result)
    return results


__all__ = ["run_hil_variants"]

"""Checkpoints: one torch file holding the model, how to preprocess its input, and,
for resuming, the full training state.

Everything is stored as tensors and plain containers (dict, list, tuple, int, float,
str) so `torch.load(weights_only=True)` can read it: no pickled objects run code.
"""
import random
from pathlib import Path

import numpy as np
import torch

from edgereid.atomic import torch_save
from edgereid.errors import CheckpointError
from edgereid.models import build_model
from edgereid.models.resize import resize_to_state_dict

FORMAT = "edgereid-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("model_name", "model_args", "state_dict", "preprocess")


def save_checkpoint(path, *, model_name: str, model_args: dict, state_dict: dict, preprocess: dict,
                    **extra) -> Path:
    """Write atomically (temp file + rename), so a kill never leaves half a checkpoint."""
    payload = {"format": FORMAT, "version": VERSION, "model_name": model_name,
               "model_args": dict(model_args), "state_dict": state_dict, "preprocess": dict(preprocess)}
    payload.update(extra)
    return torch_save(payload, path)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by save_checkpoint; anything else is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, pickled objects, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path}: not a readable torch file ({reason[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not an edgereid checkpoint "
                              f"(expected a dict with format={FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing {', '.join(missing)}")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {ckpt['version']} is newer than "
                              f"this edgereid reads ({VERSION})")
    return ckpt


def model_from_checkpoint(checkpoint) -> tuple[torch.nn.Module, dict]:
    """Build the model a checkpoint (path or loaded dict) describes, load its weights, eval mode.

    Pruned checkpoints keep the original architecture's name and arguments; their layer
    widths are read back from the weights.
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    model = resize_to_state_dict(build_model(ckpt["model_name"], **ckpt["model_args"]), ckpt["state_dict"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint for {ckpt['model_name']}: weights do not fit the model "
                              f"({str(exc).splitlines()[0]})") from None
    return model.eval(), ckpt


def capture_rng_state() -> dict:
    """torch, numpy and python RNG states, as tensors / lists (weights_only-safe)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(py_state), py_gauss))

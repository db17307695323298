"""Evaluation: extract embeddings, then score them under the dataset's own protocol.

Features are L2-normalised here (the exported model leaves normalisation out, so the
same embedding can be compared on host and on device) and compared by cosine distance.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgereid.data import ReidImageDataset, build_transforms, load_dataset
from edgereid.engine.checkpoint import model_from_checkpoint
from edgereid.errors import EdgereidError
from edgereid.metrics import eval_regdb, eval_sysu, evaluate_rank, re_ranking
from edgereid.models import modality
from edgereid.tflite import read_metadata
from edgereid.tflite.embedder import TFLiteEmbedder

DEFAULT_SIZE = (128, 64)


@dataclass
class EvalResult:
    """One RankResult per evaluation setting (e.g. SYSU all- and indoor-search)."""

    dataset: str
    protocol: str
    results: dict  # name -> edgereid.metrics.RankResult
    settings: dict = field(default_factory=dict)

    @property
    def main(self):
        """The headline setting (the first one)."""
        return next(iter(self.results.values()))

    def rows(self) -> list[dict]:
        return [{"setting": name, "rank1": r.rank(1), "rank5": r.rank(5), "rank10": r.rank(10),
                 "mAP": r.mAP, "mINP": r.mINP, "queries": r.num_valid_queries, "runs": r.num_runs}
                for name, r in self.results.items()]

    def table(self) -> str:
        head = f"{'setting':<22}{'rank-1':>8}{'rank-5':>8}{'rank-10':>8}{'mAP':>8}{'mINP':>8}{'queries':>9}"
        lines = [head, "-" * len(head)]
        for row in self.rows():
            lines.append(f"{row['setting']:<22}{100 * row['rank1']:>8.2f}{100 * row['rank5']:>8.2f}"
                         f"{100 * row['rank10']:>8.2f}{100 * row['mAP']:>8.2f}{100 * row['mINP']:>8.2f}"
                         f"{row['queries']:>9d}")
        return "\n".join(lines)


@torch.no_grad()
def extract_features(model: torch.nn.Module, records, size=DEFAULT_SIZE, batch_size: int = 64,
                     flip: bool = False, progress: bool = False, desc: str = "features"):
    """(features float32 [N, D] unnormalised, pids [N], camids [N]) for `records`, in order.

    `flip=True` averages the embeddings of each image and its mirror image.
    """
    images = ReidImageDataset(records, build_transforms(tuple(size), train=False))
    was_training = model.training
    model.eval()
    feats = []
    try:
        for start in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress,
                          leave=False, dynamic_ncols=True):
            stop = min(start + batch_size, len(images))
            batch = torch.stack([images[i][0] for i in range(start, stop)])
            # Split (per-modality) BNs normalise each image with its modality's BN; shared ones ignore it.
            infrared = torch.tensor([r.modality == "infrared" for r in records[start:stop]])
            with modality(model, infrared) if isinstance(model, torch.nn.Module) else contextlib.nullcontext():
                emb = model(batch)
                if flip:
                    emb = (emb + model(batch.flip(3))) / 2
            feats.append(emb.float())
    finally:
        model.train(was_training)
    dim = feats[0].shape[1] if feats else 0
    features = torch.cat(feats).numpy() if feats else np.zeros((0, dim), np.float32)
    pids = np.array([r.pid for r in records], dtype=np.int64)
    camids = np.array([r.camid for r in records], dtype=np.int64)
    return features, pids, camids


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def evaluate(checkpoint_or_model, dataset, rerank: bool = False, flip: bool = False, size=None,
             batch_size: int = 64, progress: bool = False, sysu_trials: int = 10) -> EvalResult:
    """Score a checkpoint (path or loaded dict) or a model on `dataset` (ReidDataset or spec).

    market: Market-1501 rules on query x gallery (optionally k-reciprocal re-ranking);
    sysu: all-search and indoor-search single-shot, `sysu_trials` gallery draws;
    regdb: the loaded split and direction.
    """
    if isinstance(checkpoint_or_model, torch.nn.Module):
        model = checkpoint_or_model
        size = tuple(size or DEFAULT_SIZE)
    elif str(checkpoint_or_model).endswith(".tflite"):
        # An exported model, scored through LiteRT (firmware equality is checked separately, by hil).
        model = TFLiteEmbedder(checkpoint_or_model, reference_kernels=False)  # mAP only: the fast kernels do
        size = tuple(size or read_metadata(checkpoint_or_model)["input_size"])
    else:
        model, ckpt = model_from_checkpoint(checkpoint_or_model)
        size = tuple(size or ckpt["preprocess"]["size"])
    if isinstance(dataset, (str, Path)):
        dataset = load_dataset(str(dataset))
    if rerank and dataset.protocol != "market":
        raise EdgereidError(f"re-ranking is only wired for the Market-1501 protocol; "
                            f"{dataset.name} uses the {dataset.protocol} protocol")

    def feats_of(records, what):
        f, pids, camids = extract_features(model, records, size, batch_size, flip, progress, desc=what)
        return l2_normalise(f), pids, camids

    qf, q_pids, q_camids = feats_of(dataset.query, "query")
    gf, g_pids, g_camids = feats_of(dataset.gallery, "gallery")
    settings = {"size": list(size), "flip": flip, "rerank": rerank, "distance": "cosine"}
    if dataset.protocol == "market":
        distmat = 1.0 - qf.astype(np.float64) @ gf.astype(np.float64).T
        if rerank:
            distmat = re_ranking(distmat, 1.0 - qf @ qf.T, 1.0 - gf @ gf.T)
        results = {"query->gallery" + (" +rerank" if rerank else ""):
                   evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)}
    elif dataset.protocol == "sysu":
        g_paths = [r.path for r in dataset.gallery]
        perm = dataset.info.get("rand_perm_cam")  # the official draws when the dataset ships them
        results = {f"{mode}-search single-shot": eval_sysu(qf, q_pids, q_camids, gf, g_pids, g_camids, g_paths,
                                                          mode=mode, shot=1, trials=sysu_trials, permutations=perm)
                   for mode in ("all", "indoor")}
        settings["trials"] = sysu_trials
        settings["gallery_draw"] = f"official permutations ({perm})" if perm else "python random.seed(trial)"
    elif dataset.protocol == "regdb":
        query_visible = dataset.query[0].modality == "visible" if dataset.query else True
        (vf, v_pids), (tf, t_pids) = ((qf, q_pids), (gf, g_pids)) if query_visible else ((gf, g_pids), (qf, q_pids))
        direction = "v2t" if query_visible else "t2v"
        results = {f"regdb {direction}": eval_regdb(vf, v_pids, tf, t_pids, direction=direction)}
    else:
        raise EdgereidError(f"dataset {dataset.name}: unknown protocol {dataset.protocol!r}; "
                            f"expected market, sysu or regdb")
    return EvalResult(dataset.name, dataset.protocol, results, settings)

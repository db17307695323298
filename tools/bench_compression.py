"""Compression benchmark on the synthetic set: float vs int8 PTQ/QAT vs pruning (+int8).

    .venv/bin/python tools/bench_compression.py --quick            # about 30 min on 2 cores
    .venv/bin/python tools/bench_compression.py                    # all criteria x 25/50/75 %
    .venv/bin/python tools/bench_compression.py --base-ckpt resnet18=out/r18/last.pt

Resumable: every row is cached as JSON under --work (delete a file to redo that row).
int8 rows are scored through the exported .tflite in LiteRT (optimized kernels for the
ranking; BUILTIN_REF for the parity cosine), never through the torch fake-quant graph.
Writes docs/results/compression.md (table, targets, command) and an accuracy-vs-MACs plot.
"""
import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from edgereid.atomic import write_text  # noqa: E402

SIZE = (128, 64)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args):
        from edgereid.data import load_dataset
        from edgereid.data.synthetic import ensure_synthetic

        self.args = args
        self.work = Path(args.work)
        ensure_synthetic(args.data)
        self.spec = f"synthetic:{args.data}"
        self.data = load_dataset(self.spec)
        rng = np.random.default_rng(0)
        q, g = self.data.query, self.data.gallery
        if args.query_subset and args.query_subset < len(q):
            q = [q[i] for i in sorted(rng.choice(len(q), args.query_subset, replace=False))]
        if args.gallery_subset and args.gallery_subset < len(g):
            g = [g[i] for i in sorted(rng.choice(len(g), args.gallery_subset, replace=False))]
        self.query, self.gallery = q, g
        self.eval_images = self._images(q + g)
        parity_idx = rng.choice(len(self.data.train), 256, replace=False)
        self.parity_images = self._images([self.data.train[i] for i in parity_idx])

    def _images(self, records):
        from edgereid.data import ReidImageDataset, build_transforms

        ds = ReidImageDataset(records, build_transforms(SIZE, train=False))
        return torch.stack([ds[i][0] for i in range(len(ds))])

    # ----- scoring
    def _rank(self, feats: np.ndarray) -> dict:
        from edgereid.metrics.rank import evaluate_rank

        f = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        nq = len(self.query)
        qf, gf = f[:nq].astype(np.float64), f[nq:].astype(np.float64)
        pid = np.array([r.pid for r in self.query + self.gallery])
        cam = np.array([r.camid for r in self.query + self.gallery])
        res = evaluate_rank(1.0 - qf @ gf.T, pid[:nq], pid[nq:], cam[:nq], cam[nq:])
        return {"mAP": 100 * float(res.mAP), "rank1": 100 * float(res.rank(1))}

    def score_torch(self, model) -> dict:
        with torch.no_grad():
            feats = torch.cat([model(x) for x in self.eval_images.split(64)]).numpy()
        return self._rank(feats)

    def score_tflite(self, path, quantized) -> dict:
        from edgereid.compress import embedding_cosine
        from edgereid.export import run_tflite

        feats = run_tflite(path, self.eval_images.numpy(), reference_kernels=False)
        out = self._rank(feats)
        ref = run_tflite(path, self.parity_images.numpy(), reference_kernels=True)
        with torch.no_grad():
            q = torch.cat([quantized(x) for x in self.parity_images.split(64)])
        out["cos_tflite_vs_torch_q"] = embedding_cosine(torch.from_numpy(ref), q)
        return out

    # ----- helpers
    def loaders(self):
        from edgereid.compress.pipeline import calibration_loader, train_loader

        return (calibration_loader(self.data.train, SIZE, 256),
                train_loader(self.data.train, SIZE, p=8, k=4))

    def finetune(self, model, epochs):
        from edgereid.compress.pipeline import finetune

        _, tl = self.loaders()
        return finetune(model, tl, epochs, self.data.num_train_pids, lr=self.args.ft_lr, log=log,
                        max_steps_per_epoch=self.args.max_steps)

    def complexity(self, model):
        from edgereid.models import model_complexity

        return model_complexity(model, SIZE)

    def base(self, name):
        from edgereid.compress import load_model

        return load_model(self.base_path(name))[0]

    def base_path(self, name):
        from edgereid.engine import TrainConfig, train

        ckpt = dict(kv.split("=", 1) for kv in self.args.base_ckpt).get(name)
        if ckpt is None:
            out = self.work / name / "base"
            ckpt = out / "last.pt"
            if not ckpt.exists() or not torch.load(ckpt, weights_only=False).get("finished", True):
                log(f"training {name} base model ({self.args.base_epochs} epochs)")
                cfg = TrainConfig(model=name, data=self.spec, epochs=self.args.base_epochs, width=self.args.width,
                                  out=str(out), progress=False, warmup_epochs=1, p=8, k=4)
                train(cfg, resume=ckpt.exists())
        return ckpt


def run_rows(bench, name, rows, quick):
    """Each row: (key, fn) with fn() -> dict; cached as JSON."""
    from edgereid.compress import (CRITERIA, embedding_cosine, load_model, prune, prune_unstructured, quantize,
                                   quantize_qat, zlib_bytes)
    from edgereid.export import export_tflite

    args = bench.args
    mdir = bench.work / name
    mdir.mkdir(parents=True, exist_ok=True)
    state = {}

    def base():
        if "base" not in state:
            state["base"] = bench.base(name)
        return state["base"]

    def cached(key, fn):
        path = mdir / f"{key}.json"
        if path.exists():
            row = json.loads(path.read_text())
            log(f"{name} {key}: cached")
        else:
            t0 = time.time()
            log(f"{name} {key}: running")
            row = fn()
            row.update(model=name, row=key, seconds=round(time.time() - t0, 1))
            write_text(path, json.dumps(row, indent=1))
            log(f"{name} {key}: {row}")
        rows.append(row)
        return row

    def float_row(model, key, extra=None):
        params, macs = bench.complexity(model)
        p = export_tflite(model, mdir / f"{key}.tflite", input_size=SIZE, model_name=name)
        return {"kind": "float", "params": params, "macs": macs, "tflite_bytes": p.stat().st_size,
                "tflite_zlib_bytes": zlib_bytes(p), **bench.score_torch(model), **(extra or {})}

    def int8_row(model, q, key, kind, extra=None):
        params, macs = bench.complexity(model)
        p = export_tflite(q, mdir / f"{key}.tflite", int8=True, input_size=SIZE, model_name=name)
        with torch.no_grad():
            cos_f = embedding_cosine(q(bench.parity_images[:128]), model(bench.parity_images[:128]))
        return {"kind": kind, "params": params, "macs": macs, "tflite_bytes": p.stat().st_size,
                "tflite_zlib_bytes": zlib_bytes(p), "cos_torch_q_vs_float": cos_f,
                **bench.score_tflite(p, q), **(extra or {})}

    calib, train_l = bench.loaders()
    cached("float", lambda: float_row(base(), "float"))
    cached("int8_ptq", lambda: int8_row(base(), quantize(base(), calib), "int8_ptq", "int8-ptq-nncf"))
    if args.ptq_histogram:
        cached("int8_ptq_histogram", lambda: int8_row(base(), quantize(base(), calib, method="histogram"),
                                                      "int8_ptq_histogram", "int8-ptq-histogram"))
    if args.ft_epochs:
        # Control for the pruning rows: the unpruned model fine-tuned with the same recipe. The bases
        # are trained for minutes, so more epochs alone move them; pruning is judged against both.
        cached("float_ft", lambda: float_row(bench.finetune(load_model(bench.base_path(name))[0], args.ft_epochs),
                                             "float_ft", {"ft_epochs": args.ft_epochs}))
    cached("int8_qat", lambda: int8_row(
        base(), quantize_qat(base(), train_l, args.qat_epochs, bench.data.num_train_pids, calib=calib, log=log,
                             max_steps_per_epoch=args.max_steps), "int8_qat", "int8-qat",
        {"qat_epochs": args.qat_epochs}))

    criteria = ["l1"] if quick else list(CRITERIA)
    targets = [0.5] if quick else [0.75, 0.5, 0.25]
    example = next(iter(calib))[0][:8]
    for crit in criteria:
        for target in targets:
            key = f"prune_{crit}_{int(target * 100)}"
            ckpt = mdir / f"{key}.pt"

            def pruned_model():
                if ckpt.exists():
                    return load_model(ckpt)[0]
                batch = next(iter(calib))

                def taylor_loss(net):
                    from edgereid.losses import ReidLoss

                    return ReidLoss(bench.data.num_train_pids).cross_entropy(net(batch[0]), batch[1])

                # BN statistics re-estimated on training batches (PK, training augmentations), the
                # distribution they were trained on; fine-tuning then keeps them current. Estimated on
                # the calibration images (eval transforms) instead, they cost 18 mAP on the unpruned base.
                m, rep = prune(base(), example, target, crit, calib=train_l, loss_fn=taylor_loss, input_size=SIZE)
                m = bench.finetune(m, args.ft_epochs)
                from edgereid.engine import save_checkpoint

                save_checkpoint(ckpt, model_name=name, model_args={"num_classes": bench.data.num_train_pids,
                                                                   "width": args.width},
                                state_dict=m.state_dict(), preprocess={"size": list(SIZE)})
                return m

            def prune_row():
                m = pruned_model()
                return float_row(m, key, {"criterion": crit, "target_macs": target, "ft_epochs": args.ft_epochs})

            cached(key, prune_row)
            if quick or crit == "l1" or args.all_int8:
                def pruned_int8():
                    m = pruned_model()
                    return int8_row(m, quantize(m, calib), f"{key}_int8", "pruned+int8-ptq",
                                    {"criterion": crit, "target_macs": target})

                cached(f"{key}_int8", pruned_int8)

    for ratio in ([0.5] if quick else [0.5, 0.75]):
        key = f"sparse_{int(ratio * 100)}"

        def sparse_row():
            m, rep = prune_unstructured(base(), example[:2], ratio,
                                        finetune=lambda mm: bench.finetune(mm, args.ft_epochs))
            row = int8_row(m, quantize(m, calib), key, "nncf-unstructured+int8-ptq",
                           {"sparsity": rep["sparsity"], "ft_epochs": args.ft_epochs})
            return row

        cached(key, sparse_row)


def write_report(rows, args, path, plot_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# Compression benchmark (synthetic set)", "",
             "Generated by `tools/bench_compression.py` (numbers measured on this machine, CPU, "
             "torch.set_num_threads(1)):", "", f"    .venv/bin/python tools/bench_compression.py {' '.join(sys.argv[1:])}",
             "", f"Setup: width {args.width}, input 128x64, base training {args.base_epochs} epochs "
             f"(unless --base-ckpt), fine-tuning {args.ft_epochs} epoch(s) after pruning"
             f"{f' capped at {args.max_steps} steps' if args.max_steps else ''} (training recipe: Adam, peak lr "
             f"{args.ft_lr:g}, 1 epoch warm-up + cosine, BN kept, trained classifier kept; `float_ft` = the unpruned "
             f"model fine-tuned the same way), QAT {args.qat_epochs} epoch(s) (BN folded, channel-scaled Adam, peak "
             "lr 3e-6 with warm-up + cosine, PTQ-calibrated ranges frozen). "
             f"Evaluation on {args.query_subset or 'all'} query x {args.gallery_subset or 'all'} gallery images "
             "(Market-1501 rules, cosine distance). int8 rows: mAP/rank-1 of the exported .tflite in LiteRT; "
             "`cos tfl/q`: median embedding cosine of the .tflite (BUILTIN_REF) vs the quantized torch graph on 256 "
             "training images; `cos q/f`: quantized torch vs its float model. `zlib`: .tflite compressed with zlib -9 "
             "(what zero weights save in a compressed flash image).", "",
             "| model | row | kind | params | MMACs | TFLite KiB | zlib KiB | mAP | rank-1 | cos tfl/q | cos q/f |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = lambda k, fmt: (fmt.format(r[k]) if k in r else "")  # noqa: E731
        lines.append(f"| {r['model']} | {r['row']} | {r['kind']} | {r['params']:,} | {r['macs'] / 1e6:.1f} | "
                     f"{r['tflite_bytes'] / 1024:.0f} | {r['tflite_zlib_bytes'] / 1024:.0f} | {r['mAP']:.2f} | "
                     f"{r['rank1']:.2f} | {f('cos_tflite_vs_torch_q', '{:.4f}')} | {f('cos_torch_q_vs_float', '{:.4f}')} |")
    lines += ["", "## Targets", ""]
    for model in sorted({r["model"] for r in rows}):
        by = {r["row"]: r for r in rows if r["model"] == model}
        fl = by.get("float")
        if not fl:
            continue
        for key, metric, tol, label in (("int8_ptq", "mAP", 1.0, "int8 PTQ mAP within 1.0 of float"),
                                        ("int8_qat", "mAP", 0.5, "int8 QAT mAP within 0.5 of float"),
                                        ("prune_l1_50", "rank1", 2.0, "pruned 50% (L1) rank-1 within 2 points")):
            if key in by:
                d = by[key][metric] - fl[metric]
                lines.append(f"- {model}: {label}: {d:+.2f} -> {'met' if d >= -tol else 'MISSED'}")
                if key.startswith("prune") and "float_ft" in by:
                    d = by[key][metric] - by["float_ft"][metric]
                    lines.append(f"- {model}: {label} of the unpruned model fine-tuned the same way (float_ft): "
                                 f"{d:+.2f} -> {'met' if d >= -tol else 'MISSED'}")
    lines += ["", f"![accuracy vs MACs]({plot_path.name})", ""]
    write_text(path, "\n".join(lines))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in sorted({r["model"] for r in rows}):
        rs = [r for r in rows if r["model"] == model]
        for kind, marker in (("float", "o"), ("int8-ptq-nncf", "s"), ("int8-qat", "^"), ("pruned+int8-ptq", "x"),
                             ("nncf-unstructured+int8-ptq", "+")):
            sel = [r for r in rs if r["kind"] == kind]
            if sel:
                ax.scatter([r["macs"] / 1e6 for r in sel], [r["mAP"] for r in sel], marker=marker,
                           label=f"{model} {kind}")
    ax.set_xlabel("MMACs (128x64)")
    ax.set_ylabel("mAP (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot_path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L1 at 50%% only, capped fine-tuning, eval subsets")
    ap.add_argument("--models", default="resnet18,sclnet")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--data", default="data/synthetic")
    ap.add_argument("--base-ckpt", action="append", default=[], metavar="MODEL=PATH")
    ap.add_argument("--base-epochs", type=int, default=None)
    ap.add_argument("--ft-epochs", type=int, default=4,
                    help="fine-tuning epochs after pruning (warm-up 1 epoch + cosine, peak lr --ft-lr)")
    ap.add_argument("--ft-lr", type=float, default=1e-3)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=None, help="cap on steps per fine-tuning/QAT epoch")
    ap.add_argument("--query-subset", type=int, default=None)
    ap.add_argument("--gallery-subset", type=int, default=None)
    ap.add_argument("--ptq-histogram", action="store_true", help="also the torchao histogram PTQ row")
    ap.add_argument("--all-int8", action="store_true", help="pruned+int8 for every criterion (default: L1)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--report", default=str(REPO / "docs/results/compression.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.base_epochs = args.base_epochs or 3
        args.max_steps = args.max_steps or 40
        args.query_subset = args.query_subset or 200
        args.gallery_subset = args.gallery_subset or 1500
    args.base_epochs = args.base_epochs or 6
    args.work = args.work or str(REPO / "out/bench_compression" / ("quick" if args.quick else "full"))
    bench = Bench(args)
    rows = []
    for name in args.models.split(","):
        run_rows(bench, name, rows, args.quick)
        report = Path(args.report)
        write_report(rows, args, report, report.with_name(report.stem + ".png"))
    log(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

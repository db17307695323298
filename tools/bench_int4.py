"""4-bit weights benchmark: int8 vs mixed int4/int8 under a board's flash, synthetic set (visible->visible).

    .venv/bin/python tools/bench_int4.py --model sclnet --width 1.0 --board stm32h743 \
        --base-ckpt out/bench_int4/base_sclnet/last.pt
    .venv/bin/python tools/bench_int4.py --model resnet18 --width 0.5 --board stm32f746

Per model: int8 QAT -> .tflite -> firmware build (flash); per-layer int4 sensitivity
(embedding drift); the int4 layers chosen for the board's flash (minus --code-margin for the
int4 kernels' code); mixed int4/int8 QAT -> .tflite with INT4 filters -> firmware build.
Accuracy is scored through the .tflite files in LiteRT (optimized kernels, full query x gallery);
parity: BUILTIN_REF vs the quantized torch graph on 64 training images.
Resumable: each step is cached as JSON under --work/MODEL_wW_BOARD/ (delete one to redo it).
Without --base-ckpt a base is trained (short budget) under --work. Appends to --report.
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


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args):
        from edgereid.boards import load_board
        from edgereid.data import load_dataset

        self.args = args
        self.board = load_board(args.board)
        self.work = Path(args.work) / f"{args.model}_w{args.width:g}_{args.board}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.data = load_dataset("synthetic")
        self.size = tuple(args.size)

    def cached(self, key, fn):
        path = self.work / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        log(f"{key} ...")
        t0 = time.time()
        row = fn()
        row["seconds"] = round(time.time() - t0, 1)
        write_text(path, json.dumps(row, indent=2))
        log(f"{key}: {json.dumps({k: v for k, v in row.items() if not isinstance(v, (dict, list))})}")
        return row

    # ----- model and data
    def base_path(self):
        from edgereid.engine import TrainConfig, train

        if self.args.base_ckpt:
            return Path(self.args.base_ckpt)
        out = self.work / "base"
        ckpt = out / "last.pt"
        if self.args.base_epochs == 0:   # flash-only runs: weights need not be trained to be counted
            if not ckpt.exists():
                from edgereid.engine import save_checkpoint
                from edgereid.models import build_model

                m = build_model(self.args.model, self.data.num_train_pids, width=self.args.width)
                save_checkpoint(ckpt, model_name=self.args.model,
                                model_args={"num_classes": self.data.num_train_pids, "width": self.args.width},
                                state_dict=m.state_dict(),
                                preprocess={"size": list(self.size), "mean": [0.485, 0.456, 0.406],
                                            "std": [0.229, 0.224, 0.225], "channel_order": "rgb"})
            return ckpt
        if not ckpt.exists() or not torch.load(ckpt, weights_only=False).get("finished", True):
            log(f"training {self.args.model} base ({self.args.base_epochs} epochs)")
            cfg = TrainConfig(model=self.args.model, epochs=self.args.base_epochs, width=self.args.width,
                              image_size=self.size, out=str(out), progress=False, warmup_epochs=1, p=16, k=4,
                              checkpoint_every_steps=50)
            train(cfg, resume=ckpt.exists())
        return ckpt

    def model(self):
        from edgereid.compress import load_model

        return load_model(self.base_path())[0]

    def loaders(self):
        from edgereid.compress.pipeline import calibration_loader, train_loader

        return (calibration_loader(self.data.train, self.size, 256),
                train_loader(self.data.train, self.size, p=8, k=4))

    def images(self, records):
        from edgereid.data import ReidImageDataset, build_transforms

        ds = ReidImageDataset(records, build_transforms(self.size, train=False))
        return torch.stack([ds[i][0] for i in range(len(ds))])

    # ----- scoring
    def score_tflite(self, path, quantized) -> dict:
        from edgereid.compress import embedding_cosine
        from edgereid.export import run_tflite
        from edgereid.metrics.rank import evaluate_rank

        q, g = self.data.query, self.data.gallery
        feats = run_tflite(path, self.images(q + g).numpy(), reference_kernels=False)
        f = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        pid = np.array([r.pid for r in q + g])
        cam = np.array([r.camid for r in q + g])
        n = len(q)
        res = evaluate_rank(1.0 - f[:n].astype(np.float64) @ f[n:].astype(np.float64).T, pid[:n], pid[n:],
                            cam[:n], cam[n:])
        rng = np.random.default_rng(0)
        parity = self.images([self.data.train[i] for i in rng.choice(len(self.data.train), 64, replace=False)])
        ref = run_tflite(path, parity.numpy(), reference_kernels=True)
        with torch.no_grad():
            qt = torch.cat([quantized(x) for x in parity.split(32)])
        return {"mAP": 100 * float(res.mAP), "rank1": 100 * float(res.rank(1)),
                "cos_tflite_ref_vs_torch": embedding_cosine(torch.from_numpy(ref), qt),
                "queries": n, "gallery": len(g)}

    def flash(self, tflite, name) -> dict:
        """Firmware flash for the board; when it does not build there (too big, or a kernel missing),
        the same model built for a roomier board of the same core, and the .tflite constant bytes."""
        from edgereid.compress.mixed_precision import tflite_weight_flash
        from edgereid.firmware import build_firmware

        out = {"tflite_const_bytes": tflite_weight_flash(tflite)}
        for board in (self.args.board, self.args.roomy_board):
            try:
                res = build_firmware(tflite, board, self.work / f"fw_{name}_{board}")
                out.update({"board": board, "flash_bytes": res.size.flash_bytes, "ram_bytes": res.size.ram_bytes})
                return out
            except Exception as exc:  # record why, try the roomy board
                out[f"error_{board}"] = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else repr(exc)
                log(f"firmware for {board}: {out[f'error_{board}']}")
        return out

    # ----- steps
    def qat(self, int4_layers):
        from edgereid.compress import quantize_qat

        calib, tl = self.loaders()
        return quantize_qat(self.model(), tl, self.args.qat_epochs, self.data.num_train_pids, lr=self.args.qat_lr,
                            calib=calib, log=log, max_steps_per_epoch=self.args.max_steps, int4_layers=int4_layers)

    def export(self, q, name, int4):
        from edgereid.export import export_tflite
        from edgereid.export.int4 import export_int4_tflite

        pre = {"size": list(self.size), "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
               "channel_order": "rgb"}
        fn = export_int4_tflite if int4 else (lambda *a, **k: export_tflite(*a, int8=True, **k))
        return fn(q, self.work / f"{name}.tflite", preprocess=pre, model_name=self.args.model)

    def run(self):
        from edgereid.compress.mixed_precision import (FlashBudgetError, choose_int4_layers, int4_candidates,
                                                       layer_sensitivity)
        from edgereid.compress.quantize import calibration_batches

        a = self.args
        rows = {}
        rows["float"] = self.cached("float", lambda: {"ckpt": str(self.base_path()),
                                                      **({} if a.skip_eval else self._float_score())})

        def int8_row():
            q = self.qat(())
            path = self.export(q, "int8", int4=False)
            return {**self.score_tflite(path, q), **self.flash(path, "int8")} if not a.skip_eval else \
                self.flash(path, "int8")

        rows["int8"] = self.cached("int8", int8_row)
        calib, _ = self.loaders()
        model = self.model()
        candidates = int4_candidates(model, calibration_batches(calib, 2)[0])
        sens = self.cached("sensitivity", lambda: {"drift": layer_sensitivity(model, calib, max_images=a.sens_images,
                                                                              log=log)})["drift"]
        budget = self.board.memory.flash_bytes - a.code_margin
        int8_flash = rows["int8"].get("flash_bytes") or rows["int8"]["tflite_const_bytes"]
        try:
            plan = choose_int4_layers(candidates, sens, int8_flash_bytes=int8_flash, flash_budget=budget)
        except FlashBudgetError as exc:
            rows["plan"] = {"error": str(exc), "budget": budget, "int8_flash_bytes": int8_flash}
            rows["all_int4"] = self.cached("all_int4", lambda: self.all_int4_row(candidates))
            return rows
        rows["plan"] = {**plan.to_dict(), "candidates": len(candidates),
                        "int4_weight_elements": sum(c.weight_elements for c in candidates
                                                    if c.name in plan.int4_layers),
                        "all_weight_elements": sum(c.weight_elements for c in candidates)}

        def mixed_row():
            q = self.qat(plan.int4_layers)
            path = self.export(q, "mixed", int4=True)
            return {**(self.score_tflite(path, q) if not a.skip_eval else {}), **self.flash(path, "mixed")}

        rows["mixed"] = self.cached("mixed", mixed_row)
        if a.all_int4:
            rows["all_int4"] = self.cached("all_int4", lambda: self.all_int4_row(candidates))
        return rows

    def all_int4_row(self, candidates):
        """Every candidate layer int4: the floor of the flash estimate, and what int4 everywhere costs."""
        q = self.qat(tuple(c.name for c in candidates))
        path = self.export(q, "all_int4", int4=True)
        return {**(self.score_tflite(path, q) if not self.args.skip_eval else {}), **self.flash(path, "all_int4")}

    def _float_score(self):
        from edgereid.engine import evaluate

        res = evaluate(self.model(), self.data, size=self.size).main
        return {"mAP": 100 * float(res.mAP), "rank1": 100 * float(res.rank(1))}


HEADER = """# 4-bit weights: int8 vs mixed int4/int8 under a board's flash (tools/bench_int4.py)

Synthetic set, visible->visible, full query x gallery, scored through each .tflite in LiteRT.
Training budgets are short (2 CPU cores shared by six jobs): see each section's base and QAT
settings. Written by tools/bench_int4.py; docs/compression.md explains the method.
The SCL-net base was trained with (OMP_NUM_THREADS=1; stopped by --max-minutes):
`nice -n 10 .venv/bin/python -m edgereid.cli.entry train --model sclnet --size 128x64 --epochs 10
--warmup-epochs 1 --p 16 --k 4 --max-minutes 25 --checkpoint-every 50 --quiet --out out/bench_int4/base_sclnet`.
Flash: `firmware flash` is text + data of the firmware image built by `edgereid.firmware.build_firmware`
(the int4 layers through the `_s4` kernels); a model that overflows the board is built for mps2-an500
(Cortex-M7 like both STM32 boards, 4 MiB) to size it, and the board's linker message is listed.
"""


def base_training(path) -> str:
    """How the base checkpoint was trained, from the checkpoint itself."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ckpt.get("train_config")
    if not cfg:
        return "untrained: random initialisation (flash only)"
    done = "finished" if ckpt.get("finished", True) else "stopped early"
    return (f"trained {ckpt.get('global_step')} steps, {done} at epoch {ckpt.get('epoch')} of {cfg.get('epochs')}, "
            f"P x K {cfg.get('p')} x {cfg.get('k')}, lr {cfg.get('lr')}, size {cfg.get('image_size')}")


def report(args, rows, board) -> str:
    cmd = "nice -n 10 .venv/bin/python tools/bench_int4.py " + " ".join(sys.argv[1:])
    flash = board.memory.flash_bytes
    lines = [f"## {args.model} width {args.width:g} on {args.board} (flash {flash:,} B)", "",
             f"Command: `{cmd}`", ""]
    lines += [f"Base: {rows['float'].get('ckpt')} ({base_training(rows['float'].get('ckpt'))}); QAT {args.qat_epochs} epoch(s) at lr {args.qat_lr:g}"
              f"{f', at most {args.max_steps} steps per epoch' if args.max_steps else ''}; sensitivity on "
              f"{args.sens_images} calibration images.", ""]
    lines += ["| row | mAP | rank-1 | .tflite BUILTIN_REF vs torch cos | firmware flash (board) | .tflite const bytes |",
              "|---|---|---|---|---|---|"]
    for key in ("float", "int8", "mixed", "all_int4"):
        r = rows.get(key)
        if not r:
            continue
        fw = f"{r['flash_bytes']:,} B ({r['board']})" if "flash_bytes" in r else "-"
        cos = f"{r['cos_tflite_ref_vs_torch']:.4f}" if "cos_tflite_ref_vs_torch" in r else "-"
        mAP = f"{r['mAP']:.2f}" if "mAP" in r else "-"
        r1 = f"{r['rank1']:.2f}" if "rank1" in r else "-"
        lines.append(f"| {key} | {mAP} | {r1} | {cos} | {fw} | {r.get('tflite_const_bytes', '-')} |")
    lines.append("")
    for key in ("int8", "mixed", "all_int4"):
        for k, v in (rows.get(key) or {}).items():
            if k.startswith("error_"):
                lines.append(f"- {key} firmware build for {k[6:]}: `{v}`")
    plan = rows.get("plan", {})
    if "error" in plan:
        lines.append(f"- mixed precision: **no plan**: `{plan['error']}`")
    elif plan:
        lines.append(f"- plan: {len(plan['int4_layers'])} of {plan['candidates']} layers int4 "
                     f"({plan['int4_weight_elements']:,} of {plan['all_weight_elements']:,} weights), "
                     f"int8 flash {plan['int8_flash_bytes']:,} B - saved {plan['saved_bytes']:,} B = estimated "
                     f"{plan['estimated_flash_bytes']:,} B for a budget of {plan['flash_budget']:,} B "
                     f"(board flash - {args.code_margin:,} B margin for the int4 kernels' code); int4 layers: "
                     + ", ".join(f"`{n}`" for n in plan["int4_layers"]))
    if rows.get("mixed") and rows.get("int8") and "mAP" in rows["mixed"]:
        d = rows["mixed"]["mAP"] - rows["int8"]["mAP"]
        fits = rows["mixed"].get("board") == args.board and rows["mixed"].get("flash_bytes", flash + 1) <= flash
        lines.append(f"- target mAP >= int8 - 1.0: mixed - int8 = {d:+.2f} ({'met' if d >= -1.0 else 'missed'}); "
                     f"builds for {args.board} within its flash: {'yes' if fits else 'no'}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sclnet")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--board", default="stm32h743")
    ap.add_argument("--roomy-board", default="mps2-an500", help="same core, more flash: sizes a model that "
                    "does not fit --board")
    ap.add_argument("--base-ckpt", default=None)
    ap.add_argument("--base-epochs", type=int, default=6)
    ap.add_argument("--size", type=int, nargs=2, default=(128, 64))
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--qat-lr", type=float, default=3e-6)
    ap.add_argument("--max-steps", type=int, default=None, help="cap on QAT steps per epoch")
    ap.add_argument("--sens-images", type=int, default=64)
    ap.add_argument("--code-margin", type=int, default=16384, help="flash kept for the int4 kernels' code "
                    "(edgereid.compress.mixed_precision.INT4_CODE_BYTES is 20 KiB; the published runs used 16 KiB)")
    ap.add_argument("--all-int4", action="store_true", help="also the all-int4 row (always when no plan fits)")
    ap.add_argument("--skip-eval", action="store_true", help="flash only (no QAT accuracy scoring)")
    ap.add_argument("--work", default="out/bench_int4")
    ap.add_argument("--report", default="docs/results/int4.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    bench = Bench(args)
    rows = bench.run()
    text = report(args, rows, bench.board)
    print(text)
    # One section per model/board, kept across runs; the report is the header plus every section.
    sections_path = Path(args.work) / "report_sections.json"
    sections = json.loads(sections_path.read_text()) if sections_path.exists() else {}
    sections[bench.work.name] = text
    write_text(sections_path, json.dumps(sections, indent=2))
    write_text(Path(args.report), HEADER + "\n" + "\n".join(sections[k] for k in sorted(sections)))


if __name__ == "__main__":
    main()

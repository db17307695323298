"""`edgereid demo`: the main job on the embedded default (the synthetic set).

synthesize -> colour-histogram baseline -> train SCL-net -> evaluate (visible->visible on
the Market-1501 layout, infrared->visible on the SYSU-MM01 layout) -> int8 PTQ through NNCF
and full-integer TFLite export (scored in LiteRT) -> C firmware for a Cortex-M4 board, run
in QEMU over the HIL protocol and compared byte for byte with LiteRT -> BiRe-ID: a small binary
ResNet-18 trained with KR-GAL + FR-GAL, exported in Larq Compute Engine's format and scored in
LCE's interpreter -> report with plots.
Every step is resumable (see steps.py): rerunning the command continues an interrupted demo.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from edgereid.atomic import write_text
from edgereid.pipeline.steps import StepRunner


@dataclass
class DemoConfig:
    out: str = "out/demo"
    data_root: str = "data/synthetic"
    seed: int = 0
    model: str = "sclnet"
    width: float = 1.0
    epochs: int = 12
    p: int = 16  # identities per batch
    max_train_minutes: float = 20.0  # the budget for training on 2 CPU cores
    sysu_trials: int = 10
    board: str = "mps2-an386"  # firmware target that QEMU runs here
    fit_boards: tuple = ("stm32h743", "stm32f746", "nrf52840")  # real MCUs: size check only
    hil_inputs: int = 8
    binary_width: float = 0.25  # BiRe-ID stage: binary ResNet-18 width, trained from scratch
    binary_epochs: int = 8
    binary_max_minutes: float = 3.0  # its training budget (stops after a checkpoint)
    binary_exact_images: int = 16  # test images whose every LCE output is compared with the int8 emulation
    progress: bool = True


def _rank_summary(result) -> dict:
    return {**result.summary(), "cmc": [float(v) for v in result.cmc[:20]]}


def run_demo(cfg: DemoConfig, echo=print) -> Path:
    """Run every step of the demo into cfg.out; return the report path."""
    # The stages are imported here, not at the top, so that `edgereid --help` and the other
    # commands do not pay for torch, NNCF and TensorFlow (about 15 s); no cycle is involved.
    from edgereid.baselines.histogram import evaluate_histogram_baseline
    from edgereid.data import load_dataset
    from edgereid.data.synthetic import ensure_synthetic
    from edgereid.engine import TrainConfig, evaluate, load_checkpoint, model_from_checkpoint, train
    from edgereid.models import model_complexity

    out = Path(cfg.out)
    steps = StepRunner(out, echo)
    root = Path(cfg.data_root)

    def synth():
        ensure_synthetic(root, seed=cfg.seed, progress=cfg.progress)
        return json.loads((root / "manifest.json").read_text())

    manifest = steps.run("synthesize", synth, key={"root": str(root), "seed": cfg.seed})
    market = load_dataset(f"synthetic:{root}")
    sysu = load_dataset(f"synthetic-sysu:{root}")

    def baseline():
        return {"visible->visible": _rank_summary(evaluate_histogram_baseline(market)),
                "infrared->visible": _rank_summary(evaluate_histogram_baseline(sysu, trials=cfg.sysu_trials))}

    base = steps.run("baseline", baseline, key={"manifest": manifest.get("version")})

    train_cfg = TrainConfig(model=cfg.model, data=f"synthetic:{root}", epochs=cfg.epochs, seed=cfg.seed,
                            width=cfg.width, p=cfg.p,
                            out=str(out / "train"), max_minutes=cfg.max_train_minutes,
                            checkpoint_every_steps=50, progress=cfg.progress)

    def train_step():
        last = Path(train_cfg.out) / "last.pt"
        # A demo interrupted during training resumes from its last (mid-epoch) checkpoint.
        path = train(train_cfg, resume=last.exists(), dataset=market)
        ckpt = load_checkpoint(path)
        model, _ = model_from_checkpoint(ckpt)
        params, macs = model_complexity(model, tuple(train_cfg.image_size))
        return {"checkpoint": str(path), "finished": bool(ckpt.get("finished")), "epochs_done": int(ckpt["epoch"]),
                "params": params, "macs": macs}

    trained = steps.run("train", train_step, key=train_cfg.to_dict())
    train_minutes = steps.seconds("train") / 60.0

    def eval_step():
        v = evaluate(trained["checkpoint"], market, progress=cfg.progress)
        ir = evaluate(trained["checkpoint"], sysu, progress=cfg.progress, sysu_trials=cfg.sysu_trials)
        return {"visible->visible": _rank_summary(v.main),
                "infrared->visible": _rank_summary(ir.results["all-search single-shot"]),
                "infrared->visible indoor": _rank_summary(ir.results["indoor-search single-shot"])}

    scores = steps.run("evaluate", eval_step, key={"checkpoint": trained["checkpoint"]})

    def int8_step():
        from edgereid.compress import compress

        report = compress(trained["checkpoint"], out / "int8", dataset=market, quantize="int8",
                          seed=cfg.seed, evaluate=False, log=echo)
        tflite = out / "int8" / "model_int8.tflite"
        r = evaluate(tflite, market, progress=cfg.progress).main
        return {"tflite": str(tflite), "tflite_bytes": report["int8"]["tflite_bytes"],
                "method": report["int8"]["method"], "visible->visible": _rank_summary(r)}

    int8 = steps.run("int8", int8_step, key={"checkpoint": trained["checkpoint"]})

    def firmware_step():
        return _firmware(cfg, Path(int8["tflite"]), out / "firmware")

    firmware = steps.run("firmware", firmware_step, key={"tflite": int8["tflite"], "board": cfg.board,
                                                         "n": cfg.hil_inputs})

    bireid_cfg = TrainConfig(model="bireid_resnet18", data=f"synthetic:{root}", epochs=cfg.binary_epochs,
                             seed=cfg.seed, width=cfg.binary_width, p=cfg.p, lr=1e-3, weight_decay=0.0,
                             warmup_epochs=1, kr_gal=1e-4, fr_gal=1e-4, out=str(out / "bireid"),
                             max_minutes=cfg.binary_max_minutes, checkpoint_every_steps=50, progress=cfg.progress)

    def bireid_step():
        return _bireid(cfg, bireid_cfg, market, echo)

    bireid = steps.run("bireid", bireid_step, key={**bireid_cfg.to_dict(), "exact": cfg.binary_exact_images})
    bireid["minutes"] = steps.seconds("bireid") / 60.0
    return write_report(out, cfg, manifest, base, trained, train_minutes, scores, int8, firmware, bireid)


def _bireid(cfg: DemoConfig, train_cfg, market, echo) -> dict:
    """Train the binary model (KR-GAL + FR-GAL), export it in the LCE format (int8), score it in torch and
    in LCE's interpreter, and compare every output of a debug export with the int8 emulation."""
    import numpy as np

    from edgereid.engine import evaluate, load_checkpoint, model_from_checkpoint, train
    from edgereid.export.lce import LceEmbedder, calibration_images, export_lce, lce_op_counts, quantize_image
    from edgereid.models import binary_complexity
    from edgereid.tflite import LceRunner

    last = Path(train_cfg.out) / "last.pt"
    path = train(train_cfg, resume=last.exists(), dataset=market)
    model, ckpt = model_from_checkpoint(path)
    size = tuple(ckpt["preprocess"]["size"])
    torch_scores = evaluate(model, market, size=size, progress=cfg.progress).main
    calib = calibration_images(market.train, size, 256, seed=cfg.seed)
    tflite = Path(train_cfg.out) / "bireid_lce.tflite"
    res = export_lce(model, tflite, calib=calib, input_size=size, preprocess=ckpt["preprocess"],
                     model_name="bireid_resnet18")
    embedder = LceEmbedder(tflite)
    try:
        lce_scores = evaluate(embedder, market, size=size, progress=cfg.progress).main
    finally:
        embedder.close()
    debug = export_lce(model, None, calib=calib, input_size=size, debug=True, preprocess=ckpt["preprocess"])
    images = calibration_images(market.query, size, cfg.binary_exact_images, seed=cfg.seed + 1)
    equal = total = 0
    with LceRunner(debug.data) as runner:
        for i in range(images.shape[0]):
            q = quantize_image(images[i:i + 1].permute(0, 2, 3, 1).numpy(), debug.input.scale, debug.input.zero_point)
            for a, b in zip(runner.run([q]), debug.emulated_outputs(q)):
                equal += int(np.array_equal(a, b))
                total += 1
    counts = binary_complexity(model, size)
    echo(f"[bireid] mAP torch {100 * torch_scores.mAP:.1f}, LCE {100 * lce_scores.mAP:.1f}; "
         f"{equal}/{total} debug outputs equal to the int8 emulation")
    return {"checkpoint": str(path), "finished": bool(ckpt.get("finished")), "epochs_done": int(ckpt["epoch"]),
            "torch": _rank_summary(torch_scores), "lce": _rank_summary(lce_scores), "tflite": str(tflite),
            "tflite_bytes": len(res.data), "ops": lce_op_counts(res.data), "exact_equal": equal, "exact_total": total,
            "exact_images": int(images.shape[0]), "binary_macs": counts["binary_macs"],
            "float_macs": counts["float_macs"], "binary_weights": counts["binary_weights"],
            "float_params": counts["float_params"]}


def _firmware(cfg: DemoConfig, tflite: Path, out: Path) -> dict:
    """Build for the QEMU board and run HIL there; size-check the real MCUs."""
    from edgereid.firmware.build import DoesNotFitError, build_firmware
    from edgereid.hil import run_hil

    hil = run_hil(tflite, cfg.board, n=cfg.hil_inputs, seed=cfg.seed, report=out / f"hil_{cfg.board}.md",
                  out_dir=out / cfg.board)
    result = {"board": cfg.board, "target": hil.target, "unit": hil.unit, "passed": hil.passed,
              "inputs": hil.n, "output_bytes": hil.output_bytes, "mismatched_bytes": hil.mismatched_bytes,
              "count": hil.count_stats(), "fit": {}}
    for board in cfg.fit_boards:
        try:
            size = build_firmware(tflite, board, out / board).size
            result["fit"][board] = {"fits": True, "flash_bytes": size.flash_bytes, "ram_bytes": size.ram_bytes}
        except DoesNotFitError as exc:
            result["fit"][board] = {"fits": False, "why": str(exc)}
    return result


def write_report(out: Path, cfg: DemoConfig, manifest: dict, base: dict, trained: dict,
                 train_minutes: float, scores: dict, int8: dict, firmware: dict, bireid: dict | None = None) -> Path:
    from edgereid.metrics import plot_cmc

    plot_cmc({f"{cfg.model} visible->visible": scores["visible->visible"]["cmc"],
              "histogram visible->visible": base["visible->visible"]["cmc"],
              f"{cfg.model} infrared->visible": scores["infrared->visible"]["cmc"],
              "histogram infrared->visible": base["infrared->visible"]["cmc"]},
             out / "cmc.png", title="CMC on the synthetic set")

    def row(name, r, params="", macs="", minutes=""):
        return (f"| {name} | {100 * r['mAP']:.1f} | {100 * r['rank1']:.1f} | {100 * r['mINP']:.1f} "
                f"| {params} | {macs} | {minutes} |")

    ratio = scores["visible->visible"]["mAP"] / max(base["visible->visible"]["mAP"], 1e-9)
    lines = [
        "# edgereid demo report", "",
        f"Synthetic set: seed {manifest.get('seed')}, generator version {manifest.get('version')}, "
        f"root `{cfg.data_root}`.", "",
        f"Training: {cfg.model}, {trained['epochs_done']} epoch(s) "
        f"({'finished' if trained['finished'] else 'stopped by the time budget'}), "
        f"{train_minutes:.1f} min on this machine.", "",
        "| model | mAP % | rank-1 % | mINP % | params | MACs | train min |",
        "|---|---|---|---|---|---|---|",
        row("colour histogram, visible->visible", base["visible->visible"]),
        row("colour histogram, infrared->visible (all-search)", base["infrared->visible"]),
        row(f"{cfg.model}, visible->visible", scores["visible->visible"], f"{trained['params']:,}",
            f"{trained['macs']:,}", f"{train_minutes:.1f}"),
        row(f"{cfg.model}, infrared->visible (all-search)", scores["infrared->visible"]),
        row(f"{cfg.model}, infrared->visible (indoor-search)", scores["infrared->visible indoor"]),
        row(f"{cfg.model} int8 TFLite ({int8['method']}, LiteRT), visible->visible", int8["visible->visible"]),
        *(_bireid_rows(bireid, cfg, row) if bireid else []),
        "",
        f"{cfg.model} visible->visible mAP is {ratio:.2f}x the histogram baseline's; the int8 TFLite "
        f"({int8['tflite_bytes']:,} bytes) is {100 * (int8['visible->visible']['mAP'] - scores['visible->visible']['mAP']):+.1f}"
        " mAP points from float.", "",
        "## Firmware", "",
        f"Generated C for `{firmware['board']}`, run in {firmware['target']} over the HIL protocol: "
        f"{firmware['inputs']} random inputs, {firmware['output_bytes']:,} output bytes, "
        f"{firmware['mismatched_bytes']} differing from LiteRT BUILTIN_REF "
        f"({'PASS' if firmware['passed'] else 'FAIL'}); {firmware['count'].get('median', 0):,.0f} "
        f"{firmware['unit']} per inference (median). Per-layer counts: `firmware/hil_{firmware['board']}.md`.", "",
        "| board | fits | flash | RAM |", "|---|---|---|---|",
        *[f"| {b} | yes | {f['flash_bytes']:,} B | {f['ram_bytes']:,} B |" if f["fits"] else f"| {b} | no | {f['why']} | |"
          for b, f in firmware["fit"].items()],
        "",
        *(_bireid_text(bireid) if bireid else []),
        "![CMC](cmc.png)", "",
        "Configuration:", "", "```json", json.dumps(asdict(cfg), indent=1), "```", "",
    ]
    return write_text(out / "report.md", "\n".join(lines))


def _bireid_rows(b: dict, cfg: DemoConfig, row) -> list[str]:
    params = f"{b['binary_weights']:,} bin + {b['float_params']:,}"
    macs = f"{b['binary_macs']:,} bin + {b['float_macs']:,}"
    return [row(f"bireid_resnet18 binary (width {cfg.binary_width}, KR+FR-GAL), visible->visible", b["torch"],
                params, macs, f"{b['minutes']:.1f}"),
            row("bireid_resnet18 int8 LCE TFLite (Larq Compute Engine), visible->visible", b["lce"])]


def _bireid_text(b: dict) -> list[str]:
    ok = b["exact_equal"] == b["exact_total"]
    return ["## BiRe-ID (binary)", "",
            f"Binary ResNet-18 of BiRe-ID units, trained from scratch with KR-GAL and FR-GAL for "
            f"{b['epochs_done']} epoch(s) ({'finished' if b['finished'] else 'stopped by the time budget'}); the "
            f"stage (training, export, scoring) took {b['minutes']:.1f} min. Exported in Larq Compute Engine's "
            f"format ({b['tflite_bytes']:,} bytes: " + ", ".join(f"{k} x{v}" for k, v in b["ops"].items())
            + f"); on {b['exact_images']} test images every output of a debug export (embedding and each "
            f"bitpacked tensor) equals the int8 emulation of the torch model in {b['exact_equal']} of "
            f"{b['exact_total']} cases ({'PASS' if ok else 'FAIL'}). Ablation and exactness on 256 images: "
            f"docs/results/binary.md.", ""]

"""`edgereid demo`: the main job on the embedded default (the synthetic set).

synthesize -> colour-histogram baseline -> train SCL-net -> evaluate (visible->visible on
the Market-1501 layout, infrared->visible on the SYSU-MM01 layout) -> int8 PTQ through NNCF
and full-integer TFLite export (scored in LiteRT) -> C firmware for a Cortex-M4 board, run
in QEMU over the HIL protocol and compared byte for byte with LiteRT -> BiRe-ID: a small binary
ResNet-18 trained with KR-GAL + FR-GAL, exported in Larq Compute Engine's format and scored in
LCE's interpreter -> a small hardware-aware search for a real MCU (stm32h743), its choice retrained,
int8, built for the MCU and run bit-exact in QEMU on its Cortex-M7 twin (demo_search.py) -> report with
plots and the stage timings against their budgets.
Every step is resumable (see steps.py): rerunning the command continues an interrupted demo.
"""
from __future__ import annotations

import json
import time
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
    # Half width: a quarter of full SCL-net's MACs (34M vs 132M at 128x64), so that its 12 epochs finish
    # within the cap (about 0.4 s per step at 1 thread here) and the search stage fits the 25-min demo.
    width: float = 0.5
    epochs: int = 12
    warmup_epochs: int = 2
    p: int = 16  # identities per batch
    # SCL-net training cap: the whole demo aims at 25 min on 2 shared CPU cores (if the machine is slower
    # than planned the cap cuts the schedule, and the report says after how many steps).
    max_train_minutes: float = 7.0
    sysu_trials: int = 10
    board: str = "mps2-an386"  # firmware target that QEMU runs here
    fit_boards: tuple = ("stm32h743", "stm32f746", "nrf52840")  # real MCUs: size check only
    hil_inputs: int = 8
    binary_width: float = 0.25  # BiRe-ID stage: binary ResNet-18 width, trained from scratch
    binary_epochs: int = 8
    binary_max_minutes: float = 3.0  # its training budget (stops after a checkpoint)
    binary_exact_images: int = 16  # test images whose every LCE output is compared with the int8 emulation
    # Search stage: a small search for a real MCU, its choice retrained, int8, fitting it, bit-exact on its twin.
    search_board: str = "stm32h743"
    search_latency_ms: float = 40.0  # the board file sets memory budgets only; tools/bench_search.py uses 40 ms too
    search_space: str = "mcu"
    search_twin: str = "mps2-an500"  # QEMU's Cortex-M7 board: the bit-exact run and instruction counts
    search_latency_boards: tuple = ("rpi5-npu",)  # predicted latency of the choice on these and search_board
    supernet_epochs: int = 3
    search_p: int = 8
    search_k: int = 4  # images per identity and modality
    supernet_max_minutes: float = 3.5  # the supernet's cap (the search finishes it past the cap, and says so)
    search_population: int = 8  # 8 + 2 x 4 candidates scored, a few seconds each
    search_generations: int = 3
    search_parents: int = 4
    search_train_epochs: int = 8
    search_train_p: int = 8
    search_train_k: int = 4
    search_train_minutes: float = 5.0  # the retraining's cap
    search_modality: str = "infrared"  # split BNs: the int8 export's modality (the query camera's)
    search_calib_images: int = 256
    # Planned minutes per step on 2 shared cores (the report compares each step's measured time with
    # its plan). The train, bireid, supernet and retraining plans rest on the caps above; the other
    # steps have no cap: their plans come from timed runs of the demo on this machine kind.
    stage_budget_minutes: tuple = (("synthesize", 0.5), ("baseline", 0.5), ("train", 7.0), ("evaluate", 1.0),
                                   ("int8", 1.0), ("firmware", 0.5), ("bireid", 3.5), ("search", 4.5),
                                   ("search_train", 5.0), ("search_evaluate", 0.5), ("search_int8", 0.5),
                                   ("search_firmware", 0.5))
    # torch's intra-op threads for the whole demo. 1, not torch's default (one per core): with another job
    # on one of the 2 cores, 2 threads ran SCL-net's forward about 10x slower than 1 here (the threads wait
    # on each other), and training results depend on the thread count, so the default stays fixed.
    torch_threads: int = 1
    progress: bool = True


def _rank_summary(result) -> dict:
    return {**result.summary(), "cmc": [float(v) for v in result.cmc[:20]]}


def run_demo(cfg: DemoConfig, echo=print) -> Path:
    """Run every step of the demo into cfg.out; return the report path."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        return _run_demo(cfg, echo)
    finally:
        torch.set_num_threads(threads)


def _run_demo(cfg: DemoConfig, echo=print) -> Path:
    # The stages are imported here, not at the top, so that `edgereid --help` and the other
    # commands do not pay for torch, NNCF and TensorFlow (about 15 s); no cycle is involved.
    from edgereid.baselines.histogram import evaluate_histogram_baseline
    from edgereid.data import load_dataset
    from edgereid.data.synthetic import ensure_synthetic
    from edgereid.engine import TrainConfig, evaluate
    from edgereid.pipeline.demo_search import planned_steps, train_with_summary

    started = time.monotonic()
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
                            width=cfg.width, p=cfg.p, warmup_epochs=cfg.warmup_epochs,
                            out=str(out / "train"), max_minutes=cfg.max_train_minutes,
                            checkpoint_every_steps=50, progress=cfg.progress)

    def train_step():
        return train_with_summary(train_cfg, market)

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
    bireid.setdefault("steps_planned", planned_steps(market.train, bireid_cfg.p, bireid_cfg.k, bireid_cfg.seed,
                                                     bireid_cfg.epochs, False))
    bireid["minutes"] = steps.seconds("bireid") / 60.0
    from edgereid.pipeline.demo_search import run_search_stage

    searched = run_search_stage(cfg, steps, out, root, market, sysu, echo, _rank_summary)
    return write_report(out, cfg, manifest, base, trained, train_minutes, scores, int8, firmware, bireid, searched,
                        timings={**steps.timings(), "this run": time.monotonic() - started})


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
            "steps_done": int(ckpt["global_step"]), "torch": _rank_summary(torch_scores),
            "lce": _rank_summary(lce_scores), "tflite": str(tflite),
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
                 train_minutes: float, scores: dict, int8: dict, firmware: dict, bireid: dict | None = None,
                 searched: dict | None = None, timings: dict | None = None) -> Path:
    from edgereid.metrics import plot_cmc
    from edgereid.pipeline.demo_search import search_report_lines

    curves = {f"{cfg.model} visible->visible": scores["visible->visible"]["cmc"],
              "histogram visible->visible": base["visible->visible"]["cmc"],
              f"{cfg.model} infrared->visible": scores["infrared->visible"]["cmc"],
              "histogram infrared->visible": base["infrared->visible"]["cmc"]}
    if searched:
        curves[f"searched for {cfg.search_board}, infrared->visible"] = \
            searched["scores"]["infrared->visible"]["cmc"]
    plot_cmc(curves,
             out / "cmc.png", title="CMC on the synthetic set")

    def row(name, r, params="", macs="", minutes=""):
        return (f"| {name} | {100 * r['mAP']:.1f} | {100 * r['rank1']:.1f} | {100 * r['mINP']:.1f} "
                f"| {params} | {macs} | {minutes} |")

    ratio = scores["visible->visible"]["mAP"] / max(base["visible->visible"]["mAP"], 1e-9)
    lines = [
        "# edgereid demo report", "",
        f"Synthetic set: seed {manifest.get('seed')}, generator version {manifest.get('version')}, "
        f"root `{cfg.data_root}`.", "",
        f"Training: {cfg.model} (width {cfg.width:g}), {trained['epochs_done']} of {cfg.epochs} epoch(s) "
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
        *(search_report_lines(cfg, searched) if searched else []),
        *(timing_lines(cfg, timings, _cut_short(cfg, trained, bireid, searched)) if timings else []),
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


def _cut_short(cfg: DemoConfig, trained: dict, bireid: dict | None, searched: dict | None) -> dict:
    """Step name -> what its cap cut (only the steps a cap stopped before their plan ended)."""
    def cut(result, cap, what):
        done, planned = result.get("steps_done"), result.get("steps_planned")
        share = f"{done} of {planned} planned steps ({100 * done / planned:.0f}%)" if done and planned else \
            f"{result['epochs_done']} epoch(s)"
        return f"{what} stopped by its {cap:g}-min cap after {share}; the rest of its schedule did not run"

    notes = {}
    if not trained["finished"]:
        notes["train"] = cut(trained, cfg.max_train_minutes, f"{cfg.model} training")
    if bireid and not bireid["finished"]:
        notes["bireid"] = cut(bireid, cfg.binary_max_minutes, "BiRe-ID training")
    if searched:
        c = searched["search"]["supernet_cut"]
        if c:
            notes["search"] = (f"supernet stopped by its {c['cap_minutes']:g}-min cap at step {c['steps_at_cap']} of "
                               f"{searched['search']['supernet_steps']}, then finished past the cap (the search "
                               "ranks only on a finished supernet)")
        if not searched["train"]["finished"]:
            notes["search_train"] = cut(searched["train"], cfg.search_train_minutes, "retraining of the choice")
    return notes


def timing_lines(cfg: DemoConfig, timings: dict, notes: dict) -> list[str]:
    """Stage timings against their budgets (DemoConfig.stage_budget_minutes) and what the caps cut."""
    budget = dict(cfg.stage_budget_minutes)
    steps = {k: v for k, v in timings.items() if k != "this run"}
    lines = ["## Stage timings", "",
             "Measured seconds per step (OUT/state.json; a step skipped on a resumed run keeps its first time) "
             "against its planned minutes.", "",
             "| step | planned min | measured min | within plan | cut short by its cap |", "|---|---|---|---|---|"]
    for name in [n for n in budget if n in steps] + [n for n in steps if n not in budget]:
        seconds, plan = steps[name], budget.get(name)
        within = "" if plan is None else ("yes" if seconds <= 60 * plan else "**no**")
        lines.append(f"| {name} | {'' if plan is None else f'{plan:g}'} | {seconds / 60:.1f} | {within} | "
                     f"{notes.get(name, 'no')} |")
    total, planned = sum(steps.values()) / 60, sum(budget.values())
    lines += [f"| all steps | {planned:g} | {total:.1f} | {'yes' if total <= planned else '**no**'} | |", ""]
    if "this run" in timings:
        lines += [f"This invocation ran {timings['this run'] / 60:.1f} min up to the report (steps done before "
                  "excluded; module imports and data loading included).", ""]
    return lines

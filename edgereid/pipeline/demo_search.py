"""The demo's search stage: what a user's job ends with.

A small hardware-aware search (`edgereid.search.search.search`) for a real MCU on the synthetic
visible+infrared set -> the chosen network retrained with the one training loop (CM-NAS
two-modality recipe, as `edgereid train --arch best.json` does) -> scored infrared->visible
(SYSU-MM01 layout) and visible->visible -> int8 TFLite (as `edgereid export --int8` does) ->
firmware built for the MCU (its flash and RAM against the board's budgets) and run bit-exact
in QEMU on the MCU's Cortex twin -> its latency predicted from the tables of the MCU and of
other boards. Each part is a resumable step of the demo's StepRunner.
"""
from __future__ import annotations

from pathlib import Path


def split_bn_count(arch) -> tuple[int, int]:
    """(split, all) BN switches of a search-space architecture."""
    from edgereid.search.bn_switches import bn_bits

    bits = bn_bits(arch)
    return bits.count("1"), len(bits)


def planned_steps(records, p: int, k: int, seed: int, epochs: int, cross_modal: bool) -> int:
    """Optimizer steps a training of `epochs` epochs would take: epoch 0's batch count times `epochs` (the
    identity samplers' count can differ by a batch between epochs, so this is the plan, not an exact count)."""
    from edgereid.engine.batches import epoch_batches

    return epochs * len(epoch_batches(records, p, k, seed, 0, cross_modal))


def run_search_stage(cfg, steps, out: Path, root: Path, market, sysu, echo, rank_summary) -> dict:
    """Every step of the search stage; returns what the report shows."""
    from edgereid.engine import TrainConfig

    search_out = out / "search"
    key = {"board": cfg.search_board, "latency_ms": cfg.search_latency_ms, "space": cfg.search_space,
           "supernet_epochs": cfg.supernet_epochs, "p": cfg.search_p, "k": cfg.search_k,
           "population": cfg.search_population, "generations": cfg.search_generations,
           "parents": cfg.search_parents, "seed": cfg.seed, "root": str(root)}
    found = steps.run("search", lambda: _search(cfg, search_out, sysu, echo), key=key)

    from edgereid.search_space import Architecture

    arch = Architecture.from_dict(found["arch"])
    train_cfg = TrainConfig(model="arch", model_kwargs={"architecture": found["arch"]},
                            data=f"synthetic-sysu:{root}", cross_modal=True, epochs=cfg.search_train_epochs,
                            warmup_epochs=cfg.warmup_epochs,
                            p=cfg.search_train_p, k=cfg.search_train_k, seed=cfg.seed,
                            image_size=tuple(arch.input_shape[:2]), out=str(out / "search_train"),
                            max_minutes=cfg.search_train_minutes, checkpoint_every_steps=20, progress=cfg.progress)
    trained = steps.run("search_train", lambda: train_with_summary(train_cfg, sysu), key=train_cfg.to_dict())

    def evaluate_step():
        from edgereid.engine import evaluate

        ir = evaluate(trained["checkpoint"], sysu, progress=cfg.progress, sysu_trials=cfg.sysu_trials)
        v = evaluate(trained["checkpoint"], market, progress=cfg.progress).main
        return {"infrared->visible": rank_summary(ir.results["all-search single-shot"]),
                "infrared->visible indoor": rank_summary(ir.results["indoor-search single-shot"]),
                "visible->visible": rank_summary(v)}

    scores = steps.run("search_evaluate", evaluate_step,
                       key={"checkpoint": trained["checkpoint"], "trials": cfg.sysu_trials})
    int8 = steps.run("search_int8", lambda: _int8(cfg, trained["checkpoint"], arch, out / "search_int8", sysu,
                                                  rank_summary),
                     key={"checkpoint": trained["checkpoint"], "modality": cfg.search_modality,
                          "calib": cfg.search_calib_images, "trials": cfg.sysu_trials})
    firmware = steps.run("search_firmware", lambda: _firmware(cfg, Path(int8["tflite"]), arch,
                                                              out / "search_firmware"),
                         key={"tflite": int8["tflite"], "board": cfg.search_board, "twin": cfg.search_twin,
                              "n": cfg.hil_inputs, "latency_boards": list(cfg.search_latency_boards)})
    return {"search": found, "train": trained, "scores": scores, "int8": int8, "firmware": firmware,
            "minutes": {name: steps.seconds(name) / 60.0 for name in
                        ("search", "search_train", "search_evaluate", "search_int8", "search_firmware")}}


def _search(cfg, search_out: Path, sysu, echo) -> dict:
    from edgereid.engine import load_checkpoint
    from edgereid.errors import EdgereidError
    from edgereid.search.search import search

    options = dict(space=cfg.search_space, latency_ms=cfg.search_latency_ms, out=search_out,
                   supernet_epochs=cfg.supernet_epochs, population=cfg.search_population,
                   generations=cfg.search_generations, parents=cfg.search_parents, p=cfg.search_p, k=cfg.search_k,
                   seed=cfg.seed, resume=True, progress=cfg.progress, log=echo)
    supernet = search_out / "supernet.pt"
    cut = None
    try:
        result = search(cfg.search_board, sysu, max_minutes=cfg.supernet_max_minutes, **options)
    except EdgereidError:
        ckpt = load_checkpoint(supernet) if supernet.is_file() else None
        if ckpt is None or ckpt.get("finished"):
            raise   # not the supernet's time cap: a real error
        # The evolution ranks candidates with the supernet's weights, so `search` refuses a
        # supernet stopped mid-schedule; the demo finishes its remaining steps (one resume) and
        # reports the overrun rather than stopping the whole demo.
        cut = {"steps_at_cap": int(ckpt["global_step"]), "cap_minutes": cfg.supernet_max_minutes}
        echo(f"[search] the supernet's {cfg.supernet_max_minutes:g}-min cap stopped it at step "
             f"{cut['steps_at_cap']}; finishing its remaining steps")
        result = search(cfg.search_board, sysu, max_minutes=None, **options)
    sn = load_checkpoint(supernet)
    best = result.best
    split, bns = split_bn_count(best.arch)
    return {"arch": best.arch.to_dict(), "score": best.score, "cost": best.cost.to_dict(),
            "budget": {"latency_ms": result.budget.latency_ms, "flash_bytes": result.budget.flash_bytes,
                       "ram_bytes": result.budget.ram_bytes},
            "candidates": len(result.candidates), "front": len(result.front),
            "supernet_steps": int(sn["global_step"]), "supernet_finished": bool(sn.get("finished")),
            "supernet_cut": cut, "split_bns": split, "bns": bns, "out": str(search_out),
            "pareto_png": str(search_out / "pareto.png")}


def train_with_summary(train_cfg, dataset) -> dict:
    """Train (resuming an interrupted run from its last checkpoint) and summarise the result:
    what the report shows of every training stage of the demo."""
    from edgereid.engine import load_checkpoint, model_from_checkpoint, train
    from edgereid.models import modality, model_complexity

    last = Path(train_cfg.out) / "last.pt"
    path = train(train_cfg, resume=last.exists(), dataset=dataset)
    ckpt = load_checkpoint(path)
    model, _ = model_from_checkpoint(ckpt)
    with modality(model, "visible"):   # split BNs need a modality to run; the counts are the same for both
        params, macs = model_complexity(model, tuple(train_cfg.image_size))
    return {"checkpoint": str(path), "finished": bool(ckpt.get("finished")), "epochs_done": int(ckpt["epoch"]),
            "steps_done": int(ckpt["global_step"]),
            "steps_planned": planned_steps(dataset.train, train_cfg.p, train_cfg.k, train_cfg.seed, train_cfg.epochs,
                                           train_cfg.cross_modal),
            "params": params, "macs": macs}


def _int8(cfg, checkpoint: str, arch, out_dir: Path, sysu, rank_summary) -> dict:
    """PTQ + full-integer TFLite, as `edgereid export --int8 [--modality M]` does."""
    from edgereid.compress import load_model, quantize
    from edgereid.compress.pipeline import calibration_loader
    from edgereid.engine import evaluate
    from edgereid.export import export_tflite, select_modality

    split, _ = split_bn_count(arch)
    # Split BNs fold into the convs one modality at a time: the MCU's image then serves that
    # modality (the query camera); shared BNs give one export that serves both.
    modality = cfg.search_modality if split else None
    model, ckpt = load_model(checkpoint)
    pre, name = ckpt["preprocess"], ckpt["model_name"]
    model = select_modality(model, modality, name)
    records = [r for r in sysu.train if modality is None or r.modality == modality]
    model = quantize(model, calibration_loader(records, pre["size"], cfg.search_calib_images, seed=cfg.seed))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = export_tflite(model, out_dir / "model_int8.tflite", int8=True, preprocess=pre, model_name=name,
                         modality=modality)
    result = {"tflite": str(path), "tflite_bytes": path.stat().st_size, "modality": modality,
              "calib_images": min(cfg.search_calib_images, len(records))}
    if modality is None:   # one export embeds both modalities: score it on the cross-modal protocol
        ir = evaluate(path, sysu, progress=cfg.progress, sysu_trials=cfg.sysu_trials)
        result["infrared->visible"] = rank_summary(ir.results["all-search single-shot"])
    return result


def _firmware(cfg, tflite: Path, arch, out: Path) -> dict:
    """Build for the MCU (fit check), run bit-exact on its QEMU twin, predict its latency on several boards."""
    from edgereid.boards import load_board
    from edgereid.firmware.build import DoesNotFitError, build_firmware
    from edgereid.hil import run_hil
    from edgereid.latency import load_table, predict
    from edgereid.latency.pruning import milliseconds_per_unit

    board = load_board(cfg.search_board)
    result = {"board": board.name, "flash_budget": board.memory.flash_bytes, "ram_budget": board.memory.ram_bytes}
    try:
        size = build_firmware(tflite, board.name, out / board.name).size
        result.update(fits=True, flash_bytes=size.flash_bytes, ram_bytes=size.ram_bytes,
                      arena_bytes=size.arena_bytes)
    except DoesNotFitError as exc:
        result.update(fits=False, why=str(exc))
    hil = run_hil(tflite, cfg.search_twin, n=cfg.hil_inputs, seed=cfg.seed, report=out / f"hil_{cfg.search_twin}.md",
                  out_dir=out / cfg.search_twin)
    result["hil"] = {"board": cfg.search_twin, "target": hil.target, "unit": hil.unit, "passed": hil.passed,
                     "inputs": hil.n, "output_bytes": hil.output_bytes, "mismatched_bytes": hil.mismatched_bytes,
                     "count": hil.count_stats()}
    result["predicted_ms"] = {}
    for name in dict.fromkeys((cfg.search_board, *cfg.search_latency_boards)):
        b = load_board(name)
        table = load_table(b)
        result["predicted_ms"][name] = predict(arch, b, table).total * milliseconds_per_unit(table, b)
    return result


def search_report_lines(cfg, s: dict) -> list[str]:
    """The report's "Search for <board>" section."""
    found, trained, scores, int8, fw = s["search"], s["train"], s["scores"], s["int8"], s["firmware"]
    cost, budget, hil = found["cost"], found["budget"], fw["hil"]
    arch = found["arch"]
    blocks = " / ".join(f"{b['width']}x{b['depth']} k{b['kernel']} e{b['expand']} s{b['stride']}"
                        for b in arch["blocks"])

    def pct(r):
        return f"{100 * r['mAP']:.1f}"

    lines = [f"## Search for {cfg.search_board}", "",
             f"`edgereid.search.search.search` on `synthetic-sysu:{cfg.data_root}` (infrared->visible), space "
             f"`{cfg.search_space}`, budget: latency {budget['latency_ms']:.4g} ms predicted on "
             f"{cfg.search_board}, flash {budget['flash_bytes']:,} B, RAM {budget['ram_bytes']:,} B (board file). "
             f"Supernet: {cfg.supernet_epochs} epoch(s), {found['supernet_steps']} steps (P={cfg.search_p}, "
             f"K={cfg.search_k} per modality); evolution: population {cfg.search_population}, "
             f"{cfg.search_generations} generations, {found['candidates']} candidates scored, "
             f"{found['front']} on the Pareto front. Folder `search/` (its report.md, pareto.md, best.json).", ""]
    if found["supernet_cut"]:
        c = found["supernet_cut"]
        lines += [f"**Cut short:** the supernet's {c['cap_minutes']:g}-min cap stopped it at step {c['steps_at_cap']} "
                  f"of {found['supernet_steps']}; the search cannot rank on an unfinished supernet, so the demo "
                  "finished the remaining steps past the cap (see the stage timings).", ""]
    lines += [f"Chosen: stem {arch['stem']['width']}; {blocks}; embedding {arch['head']['embedding']}; "
              f"{found['split_bns']}/{found['bns']} BN layers split per modality. Supernet validation mAP "
              f"{100 * found['score']:.1f}% (for ranking only); predicted {cost['latency_ms']:.4g} ms, flash "
              f"{cost['flash_bytes'] / 1024:.0f} KiB, RAM {cost['ram_bytes'] / 1024:.0f} KiB (the search's estimates).",
              ""]
    state = ("finished" if trained["finished"] else
             f"**cut short** by its {cfg.search_train_minutes:g}-min cap after {trained['steps_done']} of "
             f"{trained['steps_planned']} planned steps")
    lines += [f"Retrained (model `arch`, CM-NAS two-modality recipe, P={cfg.search_train_p} x (K={cfg.search_train_k} "
              f"visible + K infrared)): {trained['epochs_done']} of {cfg.search_train_epochs} epoch(s), {state}; "
              f"{trained['params']:,} params, {trained['macs']:,} MACs.", "",
              "| searched network | mAP % | rank-1 % | mINP % |", "|---|---|---|---|"]
    for what, r in (("float, infrared->visible (all-search)", scores["infrared->visible"]),
                    ("float, infrared->visible (indoor-search)", scores["infrared->visible indoor"]),
                    ("float, visible->visible", scores["visible->visible"]),
                    *((("int8 TFLite (LiteRT), infrared->visible (all-search)", int8["infrared->visible"]),)
                      if "infrared->visible" in int8 else ())):
        lines.append(f"| {what} | {pct(r)} | {100 * r['rank1']:.1f} | {100 * r['mINP']:.1f} |")
    lines.append("")
    if int8["modality"]:
        lines += [f"int8: the chosen network has split BNs, so it is exported for the {int8['modality']} modality "
                  f"(its BNs folded, calibrated on {int8['calib_images']} {int8['modality']} training images): the "
                  "MCU's image serves the query camera; that one-modality export is not scored infrared->visible.", ""]
    else:
        lines += [f"int8: all BNs shared, so one export (calibrated on {int8['calib_images']} training images of "
                  "both modalities) serves both modalities.", ""]
    fit = (f"fits: flash {fw['flash_bytes']:,} B of {fw['flash_budget']:,} B "
           f"({100 * fw['flash_bytes'] / fw['flash_budget']:.0f}%), RAM {fw['ram_bytes']:,} B of "
           f"{fw['ram_budget']:,} B ({100 * fw['ram_bytes'] / fw['ram_budget']:.0f}%; arena {fw['arena_bytes']:,} B)"
           if fw["fits"] else f"**does not fit**: {fw['why']}")
    lines += [f"Firmware for `{fw['board']}` ({int8['tflite_bytes']:,}-byte int8 TFLite): {fit}.", "",
              f"Bit-exactness on `{hil['board']}` ({hil['target']}, the Cortex twin): {hil['inputs']} random inputs, "
              f"{hil['output_bytes']:,} output bytes, {hil['mismatched_bytes']} differing from LiteRT "
              f"({'PASS' if hil['passed'] else 'FAIL'}); {hil['count'].get('median', 0):,.0f} {hil['unit']} per "
              f"inference (median). Per-layer counts: `search_firmware/hil_{hil['board']}.md`.", "",
              "Predicted latency of the chosen network (board latency tables):", "",
              "| board | predicted ms |", "|---|---|",
              *[f"| {b} | {ms:.4g} |" for b, ms in fw["predicted_ms"].items()], "",
              "![Pareto front of the search](search/pareto.png)", ""]
    return lines

#!/usr/bin/env python3
"""CM-NAS accuracy comparisons (issue 11): searched BN switches, and the search against chance.

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_cmnas.py [--data synthetic-sysu] [--board stm32h743]
        [--latency-ms 40] [--supernet-epochs 20] [--epochs 12] [--seeds 0,1] [--out out/cmnas]

Stages (each cached under --out, so a rerun skips what is done and resumes what was cut):
1. `edgereid search --board B --latency-ms T`: trains the weight-sharing supernet
   (OUT/search_<board>/supernet.pt) and runs the evolutionary search under the board's
   budgets (best.json, candidates.json there).
2. BN switches (CM-NAS proper): the chosen architecture's backbone (or --backbone) is
   fixed and only its BN switches are searched (edgereid.search.bn_switches), scored by
   the supernet on the validation split (held-out training identities).
3. Search beats chance: --random architectures drawn from the same space by the search's
   own sampler, kept only when they meet the same budget (same CostModel), scored by
   the supernet too.
4. Retrains, one recipe for every row (`edgereid train --arch A --cross-modal`), each
   evaluated on the test split (`edgereid eval`: SYSU-MM01 all-search infrared->visible,
   10 gallery draws). Results go into OUT/rows.json, keyed by row, architecture, seed and
   recipe; --max-minutes stops starting rows (and cuts the running one at a checkpoint)
   so that the page is written with what finished, the rest listed as not run.
Writes docs/results/search_cmnas.md and .png.
"""
from __future__ import annotations

import argparse
import datetime
import json
import random
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from edgereid.atomic import write_text  # noqa: E402
from edgereid.search_space import Architecture  # noqa: E402

MAIN_SETTING = "all-search single-shot"   # SYSU-MM01 all-search, infrared query -> visible gallery


@dataclass(frozen=True)
class Row:
    """One retrain: an architecture at a seed, under the shared recipe."""
    key: str            # folder name under OUT/retrain and key in OUT/rows.json
    section: str        # "bn" (BN switches) or "chance" (search vs random architectures)
    label: str
    arch: Architecture
    seed: int


def _blocks_text(arch: Architecture) -> str:
    return (f"stem {arch.stem.width}; " + " / ".join(f"{b.width}x{b.depth} k{b.kernel} e{b.expand} s{b.stride}"
                                                    for b in arch.blocks) + f"; emb {arch.head.embedding}")


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


def _write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


# ---- stages 1-3: search, BN-switch search, random architectures ---------------------------------------------

class SearchStages:
    """The supernet, its scorer and the costs on the board, shared by the search stages."""

    def __init__(self, args):
        from edgereid.boards import load_board
        from edgereid.data import load_dataset
        from edgereid.latency import load_table
        from edgereid.search.budget import CostModel, board_budget
        from edgereid.search_space import load_space

        self.args = args
        self.board = load_board(args.board)
        self.space = load_space(args.space)
        self.budget = board_budget(self.board, args.latency_ms)
        self.costs = CostModel(self.board, load_table(self.board))
        self.dataset = load_dataset(args.data)
        self.search_dir = args.out / f"search_{args.board}"
        self._scorer = None

    def run_search(self):
        """Stage 1: `edgereid search` (resumes the supernet and the evolution where they stopped)."""
        from edgereid.search.search import search

        a = self.args
        return search(self.board, self.dataset, space=a.space, latency_ms=a.latency_ms, out=self.search_dir,
                      supernet_epochs=a.supernet_epochs, population=a.population, generations=a.generations,
                      parents=a.parents, p=a.p, k=a.k, seed=a.search_seed, resume=True,
                      max_minutes=a.supernet_max_minutes, progress=True, log=tqdm.write)

    @property
    def scorer(self):
        """The supernet (trained by stage 1; loaded, not retrained) scoring sub-networks on the validation split."""
        if self._scorer is None:
            from edgereid.search.supernet_training import SubnetScorer, split_validation, train_supernet

            split = split_validation(self.dataset, seed=self.args.search_seed)
            supernet, info = train_supernet(self.space, split, self.search_dir / "supernet.pt",
                                            epochs=self.args.supernet_epochs, p=self.args.p, k=self.args.k,
                                            seed=self.args.search_seed, resume=True, progress=False)
            if not info.get("finished"):
                raise SystemExit("the supernet is not trained yet; stage 1 should have trained it")
            supernet.eval()
            self._scorer = SubnetScorer(supernet, self.space, split, seed=self.args.search_seed)
        return self._scorer

    def bn_search(self, backbone: Architecture) -> dict:
        """Stage 2: search only `backbone`'s BN switches; val scores of all-shared and all-split too."""
        from edgereid.search.bn_switches import bn_bits, search_bn_switches, with_bn_switches

        a = self.args
        path = a.out / "bn_search.json"
        cached = _read_json(path, None)
        settings = {"backbone": with_bn_switches(backbone, "shared").to_dict(), "population": a.bn_population,
                    "generations": a.bn_generations, "seed": a.search_seed}
        if cached is not None and cached["settings"] == settings:
            return cached
        state = a.out / "bn_search_state.json"
        if cached is not None and state.is_file():
            state.unlink()     # the evolution of another backbone or setting: not to be resumed
        scored = search_bn_switches(backbone, self.budget, self.costs, self.scorer, population=a.bn_population,
                                    generations=a.bn_generations, parents=a.parents, seed=a.search_seed,
                                    state_path=state, resume=True, progress=True)
        best = max(scored, key=lambda c: c.score)
        result = {"settings": settings, "candidates": len(scored), "cost": best.cost.to_dict(),
                  "searched": {"arch": best.arch.to_dict(), "bits": bn_bits(best.arch), "val": best.score},
                  "scores_by_generation": [c.score for c in scored]}
        for name in ("shared", "split"):
            arch = with_bn_switches(backbone, name)
            result[f"all-{name}"] = {"arch": arch.to_dict(), "bits": bn_bits(arch), "val": self.scorer(arch)}
        _write_json(path, result)
        return result

    def random_architectures(self, searched: Architecture) -> dict:
        """Stage 3: the first --random draws of the search's sampler within the budget (not the searched one)."""
        from edgereid.search_space.space import sample

        a = self.args
        path = a.out / "random_archs.json"
        cached = _read_json(path, None)
        if cached is not None and cached["seed"] == a.random_seed and len(cached["archs"]) >= a.random:
            return cached
        rng = random.Random(a.random_seed)
        archs, draws = [], 0
        while len(archs) < a.random:
            arch = sample(self.space, rng)
            draws += 1
            cost = self.costs(arch)
            if cost.violations(self.budget) or arch == searched or any(arch.to_dict() == x["arch"] for x in archs):
                continue
            archs.append({"arch": arch.to_dict(), "cost": cost.to_dict(), "val": self.scorer(arch)})
        result = {"seed": a.random_seed, "draws": draws, "archs": archs}
        _write_json(path, result)
        return result


def chance_levels(stages: SearchStages, out: Path, draws: int = 5) -> dict:
    """mAP of random embeddings (mean of `draws` seeds) on the validation split and on the test split under the
    same protocols: the floor a scored or retrained network has to clear to mean anything."""
    import numpy as np

    from edgereid.metrics import eval_sysu, evaluate_rank
    from edgereid.search.supernet_training import split_validation

    path = out / "chance.json"
    cached = _read_json(path, None)
    if cached is not None and cached.get("draws") == draws:
        return cached
    split = split_validation(stages.dataset, seed=stages.args.search_seed)
    ds = stages.dataset

    def ids(records):
        return np.array([r.pid for r in records]), np.array([r.camid for r in records])

    val, test = [], []
    for seed in range(draws):
        rng = np.random.default_rng([seed, 29])
        (qp, qc), (gp, gc) = ids(split.val_query), ids(split.val_gallery)
        dist = rng.random((len(qp), len(gp)))
        val.append(evaluate_rank(dist, qp, gp, qc, gc).mAP)
        (qp, qc), (gp, gc) = ids(ds.query), ids(ds.gallery)
        qf, gf = rng.standard_normal((len(qp), 64)), rng.standard_normal((len(gp), 64))
        perm = ds.info.get("rand_perm_cam")
        test.append(eval_sysu(qf, qp, qc, gf, gp, gc, [r.path for r in ds.gallery], mode="all", shot=1, trials=10,
                              permutations=perm).mAP)
    result = {"draws": draws, "val_mAP": float(np.mean(val)), "test_mAP": float(np.mean(test))}
    _write_json(path, result)
    return result


# ---- stage 4: retrain + evaluate ----------------------------------------------------------------------------

def recipe_of(args) -> dict:
    """The one training recipe every row uses (TrainConfig fields)."""
    return {"data": args.data, "epochs": args.epochs, "p": args.p, "k": args.k, "lr": args.lr,
            "warmup_epochs": args.warmup_epochs, "cross_modal": True}


def train_command(row: Row, args, out: Path) -> str:
    r = recipe_of(args)
    return (f".venv/bin/edgereid train --arch {out / 'arch.json'} --data {r['data']} --cross-modal "
            f"--epochs {r['epochs']} --p {r['p']} --k {r['k']} --lr {r['lr']} --warmup-epochs {r['warmup_epochs']} "
            f"--size {row.arch.input_shape[0]}x{row.arch.input_shape[1]} --seed {row.seed} --out {out}")


def _run_settings(train_config: dict) -> dict:
    """What makes two runs the same run (not where they write, how long they may take, or their progress bar)."""
    return {k: v for k, v in train_config.items() if k not in ("out", "max_minutes", "progress")}


def retrain_and_evaluate(row: Row, args, deadline: float | None) -> dict | None:
    """Train `row` under the recipe (resuming a cut run), evaluate on the test split; None if cut by the deadline."""
    from edgereid.engine import TrainConfig, evaluate, load_checkpoint, train
    from edgereid.search_space.architecture import save_architecture

    out = args.out / "retrain" / row.key
    save_architecture(row.arch, out / "arch.json")
    write_text(out / "command.txt", train_command(row, args, out) + f"\n.venv/bin/edgereid eval {out / 'last.pt'} "
               f"--data {args.data} --json {out / 'eval_cli.json'}\n")   # the same run from the command line
    last = out / "last.pt"
    cfg = TrainConfig(model="arch", model_kwargs={"architecture": row.arch.to_dict()}, seed=row.seed,
                      image_size=tuple(row.arch.input_shape[:2]), out=str(out), progress=True, **recipe_of(args))
    ckpt = load_checkpoint(last) if last.is_file() else None
    if ckpt is not None and _run_settings(ckpt.get("train_config", {})) != _run_settings(cfg.to_dict()):
        last.unlink()     # another architecture, seed or recipe trained here before: start afresh
        ckpt = None
    t0, resumed = time.time(), ckpt is not None
    if ckpt is None or not ckpt.get("finished"):
        cfg.max_minutes = None if deadline is None else max(0.5, (deadline - time.time()) / 60)
        train(cfg, resume=ckpt is not None)
        ckpt = load_checkpoint(last)
        if not ckpt.get("finished"):
            return None
    train_s = time.time() - t0
    t1 = time.time()
    result = evaluate(ckpt, args.data, progress=False, sysu_trials=10)
    write_text(out / "eval.json", json.dumps({"checkpoint": str(last), "dataset": result.dataset,
                                              "protocol": result.protocol, "settings": result.settings,
                                              "results": result.rows()}, indent=2) + "\n")
    rows = {r["setting"]: r for r in result.rows()}
    main = rows[MAIN_SETTING]
    return {"arch": row.arch.to_dict(), "seed": row.seed, "recipe": recipe_of(args), "mAP": main["mAP"],
            "rank1": main["rank1"], "mINP": main["mINP"], "train_s": train_s, "eval_s": time.time() - t1,
            "steps": ckpt["global_step"], "settings": list(rows),
            "resumed": resumed}


def run_rows(rows: list[Row], args) -> dict:
    """Every row retrained and evaluated once; finished rows come from OUT/rows.json."""
    path = args.out / "rows.json"
    done = _read_json(path, {})
    deadlines = [] if args.max_minutes is None else [time.time() + 60 * args.max_minutes]
    if args.stop_at:
        now = datetime.datetime.now(datetime.timezone.utc)
        hour, minute = (int(x) for x in args.stop_at.split(":"))
        deadlines.append(now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp())
    deadline = min(deadlines) if deadlines else None

    def finished(row):
        got = done.get(row.key)
        return got is not None and got["arch"] == row.arch.to_dict() and got["seed"] == row.seed and \
            got["recipe"] == recipe_of(args)

    todo = [r for r in rows if not finished(r)]
    bar = tqdm(todo, desc="retrain rows", unit="row")
    for row in bar:
        if deadline is not None and time.time() > deadline:
            tqdm.write(f"time limit reached: {row.key} and later rows not run")
            break
        bar.set_postfix(row=row.key)
        got = retrain_and_evaluate(row, args, deadline)
        if got is None:
            tqdm.write(f"{row.key}: cut at a checkpoint by the time limit (a rerun resumes it)")
            break
        done[row.key] = got
        _write_json(path, done)
        tqdm.write(f"{row.key}: all-search mAP {100 * got['mAP']:.2f}% rank-1 {100 * got['rank1']:.2f}% "
                   f"({got['train_s'] / 60:.1f} min training)")
    return {r.key: done[r.key] for r in rows if finished(r)}


# ---- the page ------------------------------------------------------------------------------------------------

def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _mean(xs):
    return statistics.fmean(xs) if xs else None


def write_page(args, search_result, bn: dict, rnd: dict, rows: list[Row], results: dict, chance: dict,
               wall_s: float) -> None:
    from edgereid.search.bn_switches import bn_bits

    cmd = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/bench_cmnas.py " + " ".join(
        shlex.quote(a) for a in args.argv)
    seeds = args.seeds
    missing = [r.key for r in rows if r.key not in results]
    name, _, root = args.data.partition(":")
    manifest = _read_json(Path(root or REPO / "data" / "synthetic") / "manifest.json", {}) \
        if name.startswith("synthetic") else {}
    best = search_result.best
    lines = [
        "# CM-NAS on the synthetic cross-modal task: searched BN switches, and the search against chance", "",
        f"Command: `{cmd}`  ",
        f"Date: {datetime.date.today()}; wall time of this invocation {wall_s / 60:.0f} min (cached stages skipped); "
        "2 shared CPU cores, one thread.", "",
        f"Data `{args.data}`" + (f" (generator {manifest.get('generator', '?')} v{manifest.get('version', '?')}, "
                                  f"{manifest.get('num_ids', '?')} identities)" if manifest else "")
        + f"; board `{args.board}`, budget {search_result.budget.describe()}; space `{args.space}`.", "",
        "Every retrain uses one recipe: `edgereid train --arch A --cross-modal` (CE + four-way triplet + SP + CMMD, "
        f"identity-aligned P x (K visible + K infrared) batches), {args.epochs} epochs, P={args.p}, K={args.k}, "
        f"Adam lr {args.lr}, {args.warmup_epochs} warm-up epoch(s) then cosine, from scratch. Test: "
        "`edgereid eval` on the test identities, SYSU-MM01 all-search single-shot, infrared query -> visible "
        "gallery, 10 gallery draws. Per-row commands and eval JSON: "
        f"`{_shown(args.out)}/retrain/<row>/` (`arch.json`, `last.pt`, `eval.json`).", "",
        f"Supernet: `{_shown(args.out)}/search_{args.board}/supernet.pt`, {args.supernet_epochs} epochs (sandwich sampling "
        "of sub-networks and their BN switches); the evolutionary search (population "
        f"{args.population}, {args.generations} generations) scored sub-networks by validation mAP on held-out "
        f"training identities; chosen: `{_shown(args.out)}/search_{args.board}/best.json` (validation mAP "
        f"{100 * best.score:.1f}%, {best.cost.latency_ms:.3g} ms).", ""]
    lines += [f"Chance level (random embeddings, mean of {chance['draws']} draws, same protocols): validation "
              f"mAP {100 * chance['val_mAP']:.2f}%, test all-search mAP {100 * chance['test_mAP']:.2f}%.", ""]
    if missing:
        lines += [f"**Not run (cut by the time limit, --max-minutes / --stop-at):** {', '.join(missing)}.", ""]

    # Section 1
    backbone_source = "the search's choice, best.json" if args.backbone is None else str(args.backbone)
    lines += ["## 1. BN switches on a fixed backbone (CM-NAS proper)", "",
              f"Backbone ({backbone_source}): "
              f"{_blocks_text(Architecture.from_dict(bn['searched']['arch']))}; predicted "
              f"{bn['cost']['latency_ms']:.3g} ms, flash {bn['cost']['flash_bytes'] / 1024:.0f} KiB, RAM "
              f"{bn['cost']['ram_bytes'] / 1024:.0f} KiB on {args.board} (the same for every switch setting: a "
              "split BN folds into its conv per modality). Its BN switches alone were searched by evolution "
              f"(population {args.bn_population}, {args.bn_generations} generations, {bn['candidates']} settings "
              "scored with the supernet's weights, BN statistics re-estimated per setting).", "",
              "| BN switches | split / BN layers | supernet val mAP | "
              + " | ".join(f"test mAP seed {s}" for s in seeds) + " | mean mAP | mean rank-1 |",
              "|---|---|---|" + "---|" * len(seeds) + "---|---|"]
    means = {}
    for name in ("all-shared", "all-split", "searched"):
        bits = bn[name]["bits"]
        got = [results.get(f"bn-{name}-s{s}") for s in seeds]
        maps = [g["mAP"] for g in got if g]
        r1s = [g["rank1"] for g in got if g]
        means[name] = _mean(maps) if len(maps) == len(seeds) else None
        lines.append(f"| {name} | {bits.count('1')}/{len(bits)} | {100 * bn[name]['val']:.1f} | "
                     + " | ".join(_pct(g["mAP"]) if g else "not run" for g in got)
                     + f" | {_pct(means[name])} | {_pct(_mean(r1s) if len(r1s) == len(seeds) else None)} |")
    lines += ["", f"Searched switches (build order: stem, blocks, head; 1 = split): `{bn['searched']['bits']}`.", ""]
    if None in means.values():
        lines += ["**Target (searched >= better of all-shared / all-split + 2 mAP points): not decided, rows "
                  "missing.**", ""]
    else:
        better = max(means["all-shared"], means["all-split"])
        gap = 100 * (means["searched"] - better)
        verdict = "met" if gap >= 2.0 else "MISSED"
        lines += [f"**Target (searched >= better of all-shared / all-split + 2 mAP points): {verdict}.** Searched "
                  f"{_pct(means['searched'])}% vs {_pct(better)}% (the better of the two): {gap:+.2f} points "
                  f"(mean over seeds {', '.join(map(str, seeds))}).", ""]
        per_seed = []
        for s in seeds:
            sh, sp, se = (results[f"bn-{n}-s{s}"]["mAP"] for n in ("all-shared", "all-split", "searched"))
            per_seed.append(f"seed {s}: {100 * (se - max(sh, sp)):+.2f}")
        lines += ["Searched minus the better of the two, per seed: " + "; ".join(per_seed) + ".", ""]

    # Section 2
    chance = [r for r in rows if r.section == "chance"]
    lines += ["## 2. The search against chance", "",
              f"The search's choice for {args.board} against {len(rnd['archs'])} random architectures: the first "
              f"draws of the search's own sampler (seed {args.random_seed}) that meet the same budget under the same "
              f"cost model ({len(rnd['archs'])} of {rnd['draws']} draws met it). All retrained with the recipe "
              f"above, seed {args.chance_seed}.", "",
              "| architecture | blocks (width x depth, kernel, expansion, stride) | BN split | latency ms | flash KiB "
              "| RAM KiB | supernet val mAP | test mAP | test rank-1 |",
              "|---|---|---|---|---|---|---|---|---|"]
    costs = {"chance-searched": search_result.best.cost.to_dict()}
    vals = {"chance-searched": search_result.best.score}
    for i, x in enumerate(rnd["archs"]):
        costs[f"chance-random{i + 1}"], vals[f"chance-random{i + 1}"] = x["cost"], x["val"]
    for row in chance:
        c, got = costs[row.key], results.get(row.key)
        bits = bn_bits(row.arch)
        lines.append(f"| {row.label} | {_blocks_text(row.arch)} | {bits.count('1')}/{len(bits)} | "
                     f"{c['latency_ms']:.3g} | {c['flash_bytes'] / 1024:.0f} | {c['ram_bytes'] / 1024:.0f} | "
                     f"{100 * vals[row.key]:.1f} | {_pct(got['mAP']) if got else 'not run'} | "
                     f"{_pct(got['rank1']) if got else 'not run'} |")
    ranked = [r.key for r in chance if r.key in results]
    if "chance-searched" in results and len(ranked) > 1:
        order = sorted(ranked, key=lambda k: -results[k]["mAP"])
        rank = order.index("chance-searched") + 1
        best_random = max(results[k]["mAP"] for k in ranked if k != "chance-searched")
        lines += ["", f"**The searched architecture ranks {rank} of {len(ranked)} by test mAP** "
                      f"({_pct(results['chance-searched']['mAP'])}% vs the best random {_pct(best_random)}%, "
                      f"random mean {_pct(_mean([results[k]['mAP'] for k in ranked if k != 'chance-searched']))}%).",
                  ""]
    else:
        lines += ["", "**Rank of the searched architecture: not decided, rows missing.**", ""]
    train_minutes = [g["train_s"] / 60 for g in results.values() if not g["resumed"]]   # whole runs only
    if train_minutes:
        lines += [f"Retrain time per row (this machine, one thread, rows trained in one go): "
                  f"{min(train_minutes):.1f} to {max(train_minutes):.1f} min.", ""]
    lines += ["![CM-NAS comparisons](search_cmnas.png)", ""]
    write_text(args.results, "\n".join(lines) + "\n")
    _plot(args, bn, rows, results, costs)


def _plot(args, bn, rows, results, costs) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for i, name in enumerate(("all-shared", "all-split", "searched")):
        got = [results[f"bn-{name}-s{s}"]["mAP"] * 100 for s in args.seeds if f"bn-{name}-s{s}" in results]
        if got:
            left.bar(i, statistics.fmean(got), color=f"C{i}", alpha=0.6)
            left.scatter([i] * len(got), got, color="k", s=12, zorder=3)
    left.set_xticks(range(3), ["all-shared", "all-split", "searched"])
    left.set_ylabel("test mAP, all-search IR->VIS (%)")
    left.set_title("BN switches, fixed backbone (dots: seeds)")
    for row in rows:
        if row.section != "chance" or row.key not in results:
            continue
        searched = row.key == "chance-searched"
        right.scatter(costs[row.key]["latency_ms"], 100 * results[row.key]["mAP"], s=40 if searched else 20,
                      color="C3" if searched else "C0", label="searched" if searched else None, zorder=3)
    right.scatter([], [], color="C0", s=20, label="random (same budget)")
    right.axvline(args.latency_ms, color="grey", linestyle="--", label="latency budget")
    right.set_xlabel(f"predicted latency on {args.board} (ms)")
    right.set_ylabel("test mAP (%)")
    right.set_title("search vs random architectures")
    right.legend(fontsize=8)
    fig.tight_layout()
    tmp = args.plot.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(args.plot)


# ---- main ----------------------------------------------------------------------------------------------------

def _shown(path: Path) -> str:
    """A path as the page shows it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="synthetic-sysu")
    ap.add_argument("--board", default="stm32h743")
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--space", default="mcu")
    ap.add_argument("--supernet-epochs", type=int, default=20)
    ap.add_argument("--supernet-max-minutes", type=float, default=None,
                    help="cut supernet training after this long (a rerun resumes it)")
    ap.add_argument("--population", type=int, default=12)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--parents", type=int, default=4)
    ap.add_argument("--search-seed", type=int, default=0)
    ap.add_argument("--backbone", type=Path, default=None,
                    help="architecture JSON whose BN switches are searched (default: the search's best.json)")
    ap.add_argument("--bn-population", type=int, default=12)
    ap.add_argument("--bn-generations", type=int, default=4)
    ap.add_argument("--random", type=int, default=5, help="random architectures meeting the budget")
    ap.add_argument("--random-seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=12, help="retrain epochs (the shared recipe)")
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-epochs", type=int, default=1)
    ap.add_argument("--seeds", type=_int_list, default=[0, 1], help="retrain seeds of the BN-switch rows")
    ap.add_argument("--chance-seed", type=int, default=0, help="retrain seed of the search-vs-chance rows")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop starting retrains after this long; the page lists what was not run")
    ap.add_argument("--stop-at", default=None, metavar="HH:MM",
                    help="UTC time of day after which no retrain starts (and the running one is cut), as --max-minutes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "cmnas")
    ap.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "search_cmnas.md")
    ap.add_argument("--plot", type=Path, default=None, help="default: --results with .png")
    args = ap.parse_args(argv)
    args.plot = args.plot or args.results.with_suffix(".png")
    args.argv = list(argv)
    return args


def main(argv=None) -> int:
    from edgereid.search_space.architecture import load_architecture

    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    stages = SearchStages(args)
    search_result = stages.run_search()
    searched = search_result.best.arch
    backbone = load_architecture(args.backbone) if args.backbone else searched
    bn = stages.bn_search(backbone)
    rnd = stages.random_architectures(searched)
    chance = chance_levels(stages, args.out)

    def bn_row(name, seed):
        return Row(f"bn-{name}-s{seed}", "bn", name, Architecture.from_dict(bn[name]["arch"]), seed)

    first, rest = args.seeds[:1], args.seeds[1:]
    # Order: one seed of the BN comparison, then the search-vs-chance rows, then more BN seeds,
    # so that a deadline cuts the repeats first.
    rows = [bn_row(n, s) for s in first for n in ("all-shared", "all-split", "searched")]
    rows.append(Row("chance-searched", "chance", "searched (best.json)", searched, args.chance_seed))
    rows += [Row(f"chance-random{i + 1}", "chance", f"random {i + 1}", Architecture.from_dict(x["arch"]),
                 args.chance_seed) for i, x in enumerate(rnd["archs"])]
    rows += [bn_row(n, s) for s in rest for n in ("all-shared", "all-split", "searched")]
    results = run_rows(rows, args)
    write_page(args, search_result, bn, rnd, rows, results, chance, time.time() - t0)
    print(args.results.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

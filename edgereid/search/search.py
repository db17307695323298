"""`search(board, data, ...)`: the one call behind `edgereid search --board B`.

Method (Once-for-All with CM-NAS's BN switches): a weight-sharing supernet over the
space is trained once (sandwich-style sampling of sub-networks and their BN switches);
then an evolutionary search scores sub-networks on a held-out validation split with
the supernet's weights, keeping only those that meet the board's latency (its table),
flash and RAM (the firmware planner) budgets. Why this method: one supernet serves
every board, so `--board rpi5-npu` and `--board stm32h743` searches reuse it, and the
constraints stay hard (a differentiable search only penalises latency softly).

Writes under `out`: supernet.pt (+ .jsonl log), search_state.json (resumable),
candidates.json, pareto.md / pareto.png (validation mAP vs predicted latency),
best.json (the chosen architecture) and report.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgereid.atomic import write_text
from edgereid.boards import load_board
from edgereid.data import load_dataset
from edgereid.errors import EdgereidError
from edgereid.latency import load_table
from edgereid.latency.fusion import rules_for_board
from edgereid.latency.runtime import runtime_of
from edgereid.search.budget import Budget, CostModel, board_budget, check_budget
from edgereid.search.evolution import Candidate, evolve, pareto_front
from edgereid.search.supernet_training import SubnetScorer, split_validation, train_supernet
from edgereid.search_space import load_space
from edgereid.search_space.architecture import save_architecture


@dataclass(frozen=True)
class SearchResult:
    best: Candidate
    front: list[Candidate]
    candidates: list[Candidate]
    budget: Budget
    out: Path


def search(board, data="synthetic-sysu", *, space: str = "mcu", latency_ms: float | None = None, out="out/search",
           supernet_epochs: int = 4, population: int = 12, generations: int = 5, parents: int = 4, p: int = 8,
           k: int = 4, seed: int = 0, resume: bool = False, max_minutes: float | None = None,
           progress: bool = True, log=print) -> SearchResult:
    """Train the supernet (or reuse / resume `out/supernet.pt`), search under the board's
    budgets, write the results; `board` is a name or a Board, `data` a dataset spec or a
    loaded ReidDataset."""
    board = load_board(board) if isinstance(board, str) else board
    out = Path(out)
    table = load_table(board)
    table.check_runtime(runtime_of(board), rules_for_board(board).id)
    space_obj = load_space(space)
    budget = board_budget(board, latency_ms)
    costs = CostModel(board, table)
    floor = check_budget(space_obj, costs, budget)        # an impossible budget stops here, before training
    log(f"search on {budget.describe()}; the space reaches {floor.latency_ms:.4g} ms at best")

    dataset = load_dataset(data) if isinstance(data, str) else data
    split = split_validation(dataset, seed=seed)
    supernet, info = train_supernet(space_obj, split, out / "supernet.pt", epochs=supernet_epochs, p=p, k=k,
                                    seed=seed, resume=resume, max_minutes=max_minutes, progress=progress, log=log)
    if not info.get("finished"):
        raise EdgereidError(f"supernet training stopped after {info.get('global_step')} steps (--max-minutes); "
                            "run the search again with --resume to continue it")
    scorer = SubnetScorer(supernet, space_obj, split, seed=seed, p=p, k=k)
    candidates = evolve(space_obj, budget, costs, scorer, population=population, generations=generations,
                        parents=parents, seed=seed, state_path=out / "search_state.json", resume=resume,
                        progress=progress)
    front = pareto_front(candidates)
    best = max(candidates, key=lambda c: c.score)
    save_architecture(best.arch, out / "best.json")
    write_text(out / "candidates.json", json.dumps([c.to_dict() for c in candidates], indent=1) + "\n")
    _write_pareto(front, candidates, budget, out)
    write_text(out / "report.md", _report(board, dataset.name, space_obj.name, budget, floor, info, split, best,
                                          front, candidates, seed))
    log(f"best: validation mAP {100 * best.score:.1f}% at {best.cost.latency_ms:.4g} ms, flash "
        f"{best.cost.flash_bytes / 1024:.0f} KiB, RAM {best.cost.ram_bytes / 1024:.0f} KiB -> {out / 'best.json'}")
    return SearchResult(best, front, candidates, budget, out)


def _write_pareto(front, candidates, budget: Budget, out: Path) -> None:
    rows = ["| predicted latency (ms) | validation mAP | flash (KiB) | RAM (KiB) | BN switches split |",
            "|---|---|---|---|---|"]
    for c in front:
        bns = [c.arch.stem.bn, c.arch.head.bn] + [x for b in c.arch.blocks for x in b.bn]
        rows.append(f"| {c.cost.latency_ms:.4g} | {100 * c.score:.1f}% | {c.cost.flash_bytes / 1024:.0f} | "
                    f"{c.cost.ram_bytes / 1024:.0f} | {sum(x == 'split' for x in bns)}/{len(bns)} |")
    write_text(out / "pareto.md", "\n".join(rows) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([c.cost.latency_ms for c in candidates], [100 * c.score for c in candidates], s=12, alpha=0.5,
               label="candidates")
    ax.plot([c.cost.latency_ms for c in front], [100 * c.score for c in front], "o-", color="C3",
            label="Pareto front")
    ax.axvline(budget.latency_ms, color="grey", linestyle="--", label="latency budget")
    ax.set_xlabel(f"predicted latency on {budget.board} (ms)")
    ax.set_ylabel("validation mAP (%)")
    ax.legend()
    fig.tight_layout()
    tmp = out / "pareto.png.tmp"
    fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(out / "pareto.png")


def _report(board, data_name, space, budget, floor, info, split, best, front, candidates, seed) -> str:
    return "\n".join([
        f"# Search on {board.name}", "",
        f"Space `{space}`, data `{data_name}` ({'visible+infrared, infrared->visible' if split.cross_modal else 'visible'}"
        f" validation mAP on {len({r.pid for r in split.val_query})} held-out training identities), seed {seed}.",
        f"Budget: {budget.describe()}. The space's floor on this board: {floor.latency_ms:.4g} ms, "
        f"flash {floor.flash_bytes / 1024:.0f} KiB, RAM {floor.ram_bytes / 1024:.0f} KiB.",
        f"Supernet: {info.get('epochs')} epochs, {info.get('global_step')} steps.",
        f"Candidates scored: {len(candidates)}; on the Pareto front: {len(front)}.", "",
        f"Chosen (`best.json`): validation mAP {100 * best.score:.1f}%, predicted latency "
        f"{best.cost.latency_ms:.4g} ms, flash {best.cost.flash_bytes / 1024:.0f} KiB, "
        f"RAM {best.cost.ram_bytes / 1024:.0f} KiB.", "",
        "Validation mAP here is the supernet's estimate with shared weights (BN statistics re-estimated per "
        "candidate), for ranking only: retrain the choice (`edgereid train --arch best.json`) for its accuracy.",
        "", "![Pareto front](pareto.png)", ""])

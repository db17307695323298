"""Hardware-aware search: budgets and the space's floor on a board, the evolutionary search
under hard constraints (resumable), and a tiny end-to-end `search` run."""
import json
import random

import pytest
import torch

from edgereid.boards import load_board
from edgereid.cli import main
from edgereid.errors import EdgereidError
from edgereid.latency import load_table
from edgereid.search.budget import Budget, Cost, CostModel, board_budget, check_budget, smallest_architecture, \
    space_floor
from edgereid.search.evolution import evolve, pareto_front
from edgereid.search.search import search
from edgereid.search_space import load_space
from edgereid.search_space.space import sample
from test_engine_cross_modal import _tiny_two_modality

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def stm32():
    board = load_board("stm32h743")
    return board, CostModel(board, load_table(board))


def test_space_floor_is_below_every_architecture(stm32):
    board, costs = stm32
    space = load_space("mcu")
    floor = space_floor(space, costs)
    lat = [costs(sample(space, random.Random(s))).latency_ms for s in range(25)]
    assert floor.latency_ms <= min(lat) * (1 + 1e-9)
    # Here the smallest architecture is the fastest one: the DP reaches exactly its latency.
    assert floor.latency_ms == pytest.approx(costs(smallest_architecture(space)).latency_ms, rel=1e-9)
    assert floor.flash_bytes == costs(smallest_architecture(space)).flash_bytes


def test_impossible_budget_names_what_the_space_reaches(stm32):
    board, costs = stm32
    space = load_space("mcu")
    with pytest.raises(EdgereidError, match=r"cannot meet the budget on stm32h743: latency 0.001 ms \(the fastest "
                                            r"architecture takes [0-9.]+ ms\)"):
        check_budget(space, costs, Budget("stm32h743", 0.001, 2 * 1024 * 1024, 512 * 1024))
    with pytest.raises(EdgereidError, match=r"flash 1 KiB \(the smallest architecture needs [0-9]+ KiB\).*RAM"):
        check_budget(space, costs, Budget("stm32h743", 1e6, 1024, 1024))
    with pytest.raises(EdgereidError, match="give the latency target"):
        board_budget(board, None)


def test_evolution_meets_the_budget_and_resumes(stm32, tmp_path):
    board, costs = stm32
    space = load_space("mcu")
    budget = Budget("stm32h743", 25.0, 2 * 1024 * 1024, 512 * 1024)

    def score(arch):   # a stand-in accuracy: wider is better
        return sum(b.width * b.depth for b in arch.blocks) / 1000.0

    full = evolve(space, budget, costs, score, population=6, generations=3, parents=2, seed=4, progress=False)
    assert len(full) == 6 + 2 * 4
    assert all(not c.cost.violations(budget) for c in full)
    assert len({c.arch.to_json() for c in full}) == len(full)
    gens1 = evolve(space, budget, costs, score, population=6, generations=1, parents=2, seed=4, progress=False,
                   state_path=tmp_path / "state.json")
    resumed = evolve(space, budget, costs, score, population=6, generations=3, parents=2, seed=4, progress=False,
                     state_path=tmp_path / "state.json", resume=True)
    assert len(gens1) == 6
    assert [c.arch.to_json() for c in resumed] == [c.arch.to_json() for c in full]
    front = pareto_front(full)
    assert all(a.cost.latency_ms < b.cost.latency_ms and a.score < b.score for a, b in zip(front, front[1:]))


def test_tiny_search_end_to_end(tmp_path):
    data = _tiny_two_modality(tmp_path, num_ids=12, per_mod=4)
    out = tmp_path / "search"
    result = search("stm32h743", data, space="tiny", latency_ms=50.0, out=out, supernet_epochs=1, population=4,
                    generations=2, parents=2, p=2, k=2, progress=False, log=lambda *_: None)
    for name in ("supernet.pt", "search_state.json", "candidates.json", "pareto.md", "pareto.png", "best.json",
                 "report.md"):
        assert (out / name).is_file(), name
    assert not result.best.cost.violations(result.budget)
    best = json.loads((out / "best.json").read_text())
    assert best["space"] == "tiny"
    again = search("stm32h743", data, space="tiny", latency_ms=50.0, out=out, supernet_epochs=1, population=4,
                   generations=2, parents=2, p=2, k=2, progress=False, resume=True, log=lambda *_: None)
    assert again.best.arch == result.best.arch and again.best.score == result.best.score


def test_search_cli_refuses_an_impossible_budget(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--board", "nrf52840", "--latency-ms", "0.01", "--out", "unused"])
    assert exc.value.code == 2
    assert "the fastest architecture takes" in capsys.readouterr().err

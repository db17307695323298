"""`edgereid profile`: measure every kernel of a search space on a board into its table.

Order of work: the per-inference overhead (chains of 1..4 tiny ops, a line fitted
through their medians: intercept = fixed overhead), then one micro-model per kernel.
Each kernel's entry is its micro-model's median minus the fixed overhead, so it keeps
its own per-layer overhead and a model's prediction is overhead + sum of entries.
The table is saved (atomically) after every entry; `resume=True` skips kernels
already measured with the same runtime version and transport kind.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from edgereid.errors import LatencyError
from edgereid.latency.backends import Backend, open_backend
from edgereid.latency.fusion import rules_for_board
from edgereid.latency.kernels import Kernel
from edgereid.latency.micromodels import micro_model_spec, overhead_chain_spec, write_model
from edgereid.latency.space_kernels import space_kernels
from edgereid.latency.stats import summarize
from edgereid.latency.table import Entry, LatencyTable, LatencyTableWarning, measured_provenance
from edgereid.search_space.space import load_space

OVERHEAD_CHAIN = (1, 2, 3, 4)


def _transport_kind(transport: str) -> str:
    return transport.split(":", 1)[0]


def _same_source(entry: Entry | None, runtime: dict, transport: str) -> bool:
    """Was `entry` measured by this runtime version over this kind of transport?"""
    if entry is None or entry.estimated:
        return False
    p = entry.provenance
    return (p.get("runtime") == f"{runtime.get('name')} {runtime.get('version')}"
            and _transport_kind(p.get("transport", "")) == _transport_kind(transport))


def start_table(path: Path, board, backend: Backend, rules_id: str, resume: bool) -> LatencyTable:
    """The table to fill: the existing file's entries (estimated ones get replaced one by one)."""
    fresh = LatencyTable(board=board.name, runtime=backend.runtime, fusion_rules=rules_id, unit=backend.unit,
                         path=path)
    if not path.exists():
        return fresh
    try:
        old = LatencyTable.load(path)
    except LatencyError:
        if resume:
            raise  # never silently throw away a half-made profile
        warnings.warn(f"latency table {path} is unreadable; starting a new one", LatencyTableWarning, stacklevel=3)
        return fresh
    if old.board != board.name or old.fusion_rules != rules_id or old.unit != backend.unit:
        if resume:
            raise LatencyError(f"cannot resume {path}: it is for board {old.board}, rules {old.fusion_rules}, "
                               f"unit {old.unit}; this profile is {board.name}, {rules_id}, {backend.unit}")
        return fresh
    old.runtime, old.path = backend.runtime, path
    old.notes = ""
    return old


def _measure_overhead(backend: Backend, tmp: Path, repeats: int, warmup: int) -> tuple[Entry, Entry]:
    paths = [write_model(overhead_chain_spec(n), tmp / f"overhead-{n}.tflite") for n in OVERHEAD_CHAIN]
    summaries = {}
    for path, samples in backend.measure(paths, repeats, warmup):
        summaries[path] = summarize(samples)
    medians = np.array([summaries[p].median for p in paths])
    slope, intercept = np.polyfit(np.array(OVERHEAD_CHAIN, dtype=float), medians, 1)
    first = summaries[paths[0]]
    prov = measured_provenance(backend.runtime, backend.transport, backend.host,
                               method=f"intercept of a line through chains of {list(OVERHEAD_CHAIN)} "
                                      f"1x1x8 int8 ADDs")
    per_inference = Entry(max(float(intercept), 0.0), first.iqr, first.n, prov, first.dropped)
    per_layer = Entry(max(float(slope), 0.0), first.iqr, first.n,
                      dict(prov, method="slope of the same line (already inside every kernel entry)"))
    return per_inference, per_layer


DEFAULT_OUT = Path("out") / "luts"    # relative to the working directory


def default_table_out(board) -> Path:
    """Where `profile` writes when not told: out/luts/<board>.json under the working directory.

    The shipped tables (the board YAML's latency_table) are read, never written by default:
    pass `out=board's table path` (CLI: `--out boards/luts/<board>.json`) to refresh one."""
    return DEFAULT_OUT / f"{board.name}.json"


def profile(board, transport: str | None = None, space: str | None = None, repeats: int | None = None,
            warmup: int | None = None, resume: bool = False, out: Path | None = None, progress: bool = True,
            flash_cmd: str | None = None, on_entry: Callable[[Kernel, Entry], None] | None = None,
            limit: int | None = None, jobs: int = 1) -> LatencyTable:
    """Profile the kernels of `space` on `board`; returns the saved table.

    `on_entry(kernel, entry)` is called after each entry is saved; `limit` stops after
    that many new entries (a quick partial profile; --resume continues it). `jobs` > 1
    builds and runs that many micro-models at once (QEMU only); entries then arrive in
    the order they finish, each saved as it comes, so an interruption still loses only
    the models in flight.
    """
    from tqdm import tqdm

    from edgereid.boards import load_board

    board = load_board(board) if isinstance(board, (str, Path)) else board
    rules = rules_for_board(board)
    search_space = load_space(space)
    kernels = space_kernels(search_space, rules)
    path = Path(out) if out else default_table_out(board)
    with open_backend(board, transport, flash_cmd, jobs=jobs) as backend:
        repeats = backend.default_repeats if repeats is None else repeats
        warmup = backend.default_warmup if warmup is None else warmup
        if repeats < 1:
            raise LatencyError(f"--repeats must be at least 1, got {repeats}")
        table = start_table(path, board, backend, rules.id, resume)
        table.notes = (f"kernels of search space '{search_space.name}' (input {search_space.input_shape}); "
                       f"{repeats} repeats after {warmup} warm-up runs, outliers beyond 1.5 IQR dropped")
        todo = [k for k in kernels if not (resume and _same_source(table.get(k), backend.runtime,
                                                                   backend.transport))]
        if limit is not None:
            todo = todo[:limit]
        with tempfile.TemporaryDirectory(prefix="edgereid-profile-") as tmp:
            tmp = Path(tmp)
            if not (resume and _same_source(table.overhead, backend.runtime, backend.transport)):
                table.overhead, table.per_layer = _measure_overhead(backend, tmp, repeats, warmup)
                table.save()
            base = table.overhead.median
            bar = tqdm(total=len(todo), desc=f"profile {board.name}", unit="kernel", disable=not progress)
            try:
                for start in range(0, len(todo), backend.chunk):
                    chunk = todo[start:start + backend.chunk]
                    paths = {write_model(micro_model_spec(k), tmp / f"k{start + i}.tflite"): k
                             for i, k in enumerate(chunk)}
                    for model_path, samples in backend.measure(list(paths), repeats, warmup):
                        kernel = paths[model_path]
                        s = summarize(samples)
                        entry = Entry(max(s.median - base, 0.0), s.iqr, s.n,
                                      measured_provenance(backend.runtime, backend.transport, backend.host,
                                                          **backend.provenance(model_path)),
                                      s.dropped)
                        table.put(kernel, entry)
                        table.save()
                        bar.update(1)
                        if on_entry:
                            on_entry(kernel, entry)
                        model_path.unlink(missing_ok=True)
            finally:
                bar.close()
    return table

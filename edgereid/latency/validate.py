"""Prove the prediction: random architectures, built, measured end to end, compared.

`validate(board, n)` draws architectures from the space (architecture i from seed
`seed + i`), builds each as int8 .tflite, measures it on the target (host: LiteRT one
thread, many repeats, median; QEMU: HIL instruction count) and predicts it from the
board's table. Records go to <out_dir>/latency/<board>.json (default out_dir: `out`,
relative to the working directory; the committed figures use docs/results) after every
architecture; `resume=True` keeps the finished ones. The summary (share within
+-10 %, MAPE), a scatter plot and <out_dir>/latency.md are written at the end.
"""
from __future__ import annotations

import json
import random
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.atomic import save_figure, write_text
from edgereid.errors import LatencyError
from edgereid.latency.backends import open_backend
from edgereid.latency.fusion import architecture_kernels, rules_for_board
from edgereid.latency.predict import predict_kernels
from edgereid.latency.stats import summarize
from edgereid.latency.table import LatencyTable, LatencyTableWarning, host_description, load_table, now_utc
from edgereid.search_space import count_macs, load_space, sample, to_tflite

RESULTS_DIR = Path("out")            # default out_dir, relative to the working directory
TOLERANCE = 0.10
FORMAT = "edgereid-latency-validation"


@dataclass(frozen=True)
class ValidationSummary:
    board: str
    unit: str
    n: int
    within: float          # share of |error| <= TOLERANCE
    mape: float            # mean absolute percentage error, in %
    max_error: float       # largest |error|, in %
    fitted_share: float    # share of kernels predicted by the fitted model

    def format(self) -> str:
        return (f"{self.board}: {self.n} architectures, {100 * self.within:.1f}% within +-{100 * TOLERANCE:.0f}%, "
                f"MAPE {self.mape:.2f}%, worst {self.max_error:.1f}%, "
                f"{100 * self.fitted_share:.1f}% of kernels not in the table (fitted)")


def _results_file(out_dir: Path, board: str, space: str) -> Path:
    """One records file per board and search space (board and space names hold no underscore)."""
    return out_dir / "latency" / f"{board}_{space}.json"


def _load_records(path: Path, board, space: str, seed: int, resume: bool) -> dict:
    fresh = {"format": FORMAT, "board": board.name, "space": space, "seed": seed, "records": []}
    if not resume or not path.exists():
        return fresh
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LatencyError(f"cannot resume from {path}: {exc}") from None
    if data.get("format") != FORMAT or data.get("board") != board.name or data.get("space") != space \
            or data.get("seed") != seed:
        raise LatencyError(f"cannot resume from {path}: it holds board {data.get('board')}, space "
                           f"{data.get('space')}, seed {data.get('seed')}; asked {board.name}, {space}, {seed}")
    return data


def summarize_records(board: str, unit: str, records: list) -> ValidationSummary:
    if not records:
        raise LatencyError(f"no validation records for {board}")
    err = np.array([r["predicted"] / r["measured"] - 1.0 for r in records])
    fitted = sum(r["fitted_kernels"] for r in records) / max(1, sum(r["kernels"] for r in records))
    return ValidationSummary(board, unit, len(records), float(np.mean(np.abs(err) <= TOLERANCE)),
                             float(100 * np.mean(np.abs(err))), float(100 * np.max(np.abs(err))), fitted)


def validate(board, n: int = 200, space: str | None = None, resume: bool = False, seed: int = 0,
             repeats: int | None = None, warmup: int | None = None, transport: str | None = None,
             out_dir: Path | None = None, table_file: Path | None = None,
             progress: bool = True, jobs: int = 1) -> ValidationSummary:
    """Measure `n` random architectures of `space` on `board` and compare with the table's prediction.

    `jobs` > 1 builds and runs that many architectures at once (QEMU only); records are
    saved as each one finishes and kept in index order.
    """
    from tqdm import tqdm

    from edgereid.boards import load_board

    board = load_board(board) if isinstance(board, (str, Path)) else board
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    search_space = load_space(space)
    rules = rules_for_board(board)
    table = LatencyTable.load(table_file) if table_file else load_table(board)
    path = _results_file(out_dir, board.name, search_space.name)
    data = _load_records(path, board, search_space.name, seed, resume)
    done = {r["index"] for r in data["records"]}
    with open_backend(board, transport, jobs=jobs) as backend, \
            tempfile.TemporaryDirectory(prefix="edgereid-val-") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("always", LatencyTableWarning)
            table.check_runtime(backend.runtime, rules.id)
        if data["records"] and data.get("runtime") not in (None, backend.runtime):
            old = data["runtime"]
            warnings.warn(f"{path}: its {len(data['records'])} records were measured with {old.get('name')} "
                          f"{old.get('version')}, not {backend.runtime.get('name')} {backend.runtime.get('version')} "
                          "(or another compiler/emulator); measuring them again", LatencyTableWarning, stacklevel=2)
            data["records"] = []
            done = set()
        if table.unit != backend.unit:
            raise LatencyError(f"latency table {table.path} is in {table.unit}, the {backend.transport} "
                               f"measurement in {backend.unit}")
        if repeats is None:  # end-to-end runs are longer and noisier than kernels: more of them
            repeats = 1 if backend.deterministic else backend.default_repeats * 4
        warmup = backend.default_warmup if warmup is None else warmup
        data.update(table=str(table.path), runtime=backend.runtime, transport=backend.transport,
                    host=backend.host, repeats=repeats, warmup=warmup, unit=backend.unit)
        todo = [i for i in range(n) if i not in done]
        bar = tqdm(total=len(todo), desc=f"validate {board.name}", unit="arch", disable=not progress)
        try:
            for start in range(0, len(todo), backend.chunk):
                batch = {}
                for i in todo[start:start + backend.chunk]:
                    arch = sample(search_space, random.Random(seed + i))
                    batch[to_tflite(arch, Path(tmp) / f"arch{i}.tflite", seed=seed + i)] = (i, arch)
                for model, samples in backend.measure(list(batch), repeats, warmup):
                    i, arch = batch[model]
                    measured = summarize(samples)
                    pred = predict_kernels(architecture_kernels(arch, rules), table)
                    data["records"].append({
                        "index": i, "measured": measured.median, "measured_iqr": measured.iqr,
                        "predicted": pred.total, "kernels": len(pred.layers), "fitted_kernels": len(pred.fitted),
                        "macs": count_macs(arch), "architecture": arch.to_dict(), "date": now_utc()})
                    data["records"].sort(key=lambda r: r["index"])
                    write_text(path, json.dumps(data, indent=1) + "\n")
                    model.unlink(missing_ok=True)
                    bar.update(1)
        finally:
            bar.close()
    records = [r for r in data["records"] if r["index"] < n]
    summary = summarize_records(board.name, data["unit"], records)
    plot_scatter(records, summary, path.with_suffix(".png"))
    write_report(out_dir)
    return summary


def plot_scatter(records: list, summary: ValidationSummary, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit = (1e3, "ms") if summary.unit == "s" else (1e-6, f"M {summary.unit}")
    m = np.array([r["measured"] for r in records]) * scale
    p = np.array([r["predicted"] for r in records]) * scale
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    lo, hi = min(m.min(), p.min()) * 0.9, max(m.max(), p.max()) * 1.1
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="prediction = measurement")
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.85", label="+-10%")
    ax.scatter(m, p, s=10, alpha=0.8)
    ax.set_xlabel(f"measured ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.set_title(f"{summary.board}: {100 * summary.within:.0f}% within +-10%, MAPE {summary.mape:.1f}%",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def _dates(records: list) -> str:
    dates = sorted(r["date"] for r in records if r.get("date"))
    if not dates:
        return "?"
    first, last = dates[0][:16].replace("T", " "), dates[-1][:16].replace("T", " ")
    return first if first == last else f"{first} to {last[11:] if last[:10] == first[:10] else last}"


def _shown(path) -> str:
    """A path as a command line would give it: relative to the working directory when under it."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def write_report(out_dir: Path) -> Path:
    """<out_dir>/latency.md from every board's validation records present in <out_dir>/latency/."""
    out_dir = Path(out_dir)
    lines = ["# Latency prediction vs measurement", "",
             "Random architectures from the search space are built as .tflite at their blocks' precisions "
             "(space mcu: int8; space mcu-mixed: each block's 1x1 convs int8, int4 filters, or binary convs in "
             "the Larq Compute Engine format with int8 activations in and out), measured end to end on the "
             "target and predicted from the board's latency table (per-inference overhead + sum of fused kernel "
             "entries; kernels missing from the table come from a per-op model fitted to the table and are "
             "counted below). Host: LiteRT, one thread, median of many runs (wall-clock, disturbed by whatever "
             "else runs); a file with binary convs runs in LCE's interpreter (optimized kernels, XNNPACK for "
             "the builtin ops, one thread). QEMU boards: HIL instruction counts under -icount shift=0 "
             "(deterministic, read through SysTick in whole ticks of 40 instructions on mps2, 31.25 on mps3); "
             "every output is checked against LiteRT BUILTIN_REF, or LCE's interpreter for binary convs.", "",
             "QEMU counts instructions, not cycles: memory wait states are not modelled, so where the weights "
             "and the arena lie (mps3-an547: weights in DDR, arena in SRAM) does not change a count, and a real "
             "core adds stalls and multi-beat Helium instructions. A table holds for the firmware sources it "
             "was profiled with (`runtime.version`, a digest of firmware/ and the code generator): after a "
             "kernel change, profile and validate again.", "",
             "Reproduce (resumable; `--jobs J` builds and runs J models at once on QEMU boards, where counts do "
             "not depend on the machine's load):", "", "```"]
    files = sorted((out_dir / "latency").glob("*.json"))
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        jobs = " --jobs 2" if data.get("transport") == "qemu" else ""
        table = f" --table {_shown(data['table'])}" if data.get("table") else ""
        lines.append(f"edgereid profile --board {data['board']} --space {data['space']}"
                     f"{table.replace('--table', '--out')}{jobs}")
        lines.append(f"edgereid profile --validate --board {data['board']} --space {data['space']}{table} "
                     f"--results-dir {_shown(out_dir)} --n {len(data['records'])} --resume{jobs}")
    lines += ["```", "", "| board | space | unit | n | within +-10% | MAPE | worst | fitted kernels | measured with "
              "| measured (UTC) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        if not data["records"]:
            continue
        s = summarize_records(data["board"], data["unit"], data["records"])
        rt = data.get("runtime", {})
        lines.append(f"| {s.board} | {data['space']} | {s.unit} | {s.n} | {100 * s.within:.1f}% | {s.mape:.2f}% | "
                     f"{s.max_error:.1f}% | {100 * s.fitted_share:.1f}% | {rt.get('name')} {rt.get('version')} "
                     f"via {data.get('transport')} on {data.get('host')} | {_dates(data['records'])} |")
    lines.append("")
    for f in files:
        if f.with_suffix(".png").exists():
            lines += [f"![{f.stem}](latency/{f.stem}.png)", ""]
    lines.append(f"Generated {now_utc()} on {host_description()}.")
    return write_text(out_dir / "latency.md", "\n".join(lines) + "\n")

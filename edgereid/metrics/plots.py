"""CMC curves as a PNG (matplotlib's object API with the Agg canvas: no display, no pyplot state)."""
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from edgereid.atomic import save_figure
from edgereid.errors import EdgereidError


def plot_cmc(results: dict, path, max_rank: int | None = None, title: str = "CMC") -> Path:
    """One curve per entry of `results` (name -> CMC array, rank 1 first); returns `path`."""
    if not results:
        raise EdgereidError("plot_cmc: expected at least one CMC curve, got none")
    fig = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, cmc in results.items():
        cmc = np.asarray(getattr(cmc, "cmc", cmc), dtype=np.float64).reshape(-1)
        if cmc.size == 0:
            raise EdgereidError(f"plot_cmc: CMC curve {name!r} is empty")
        if max_rank is not None:
            cmc = cmc[:max_rank]
        ranks = np.arange(1, cmc.size + 1)
        ax.plot(ranks, 100.0 * cmc, marker="o" if cmc.size <= 20 else None, markersize=3,
                label=f"{name} (R1 {100.0 * cmc[0]:.1f}%)")
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)

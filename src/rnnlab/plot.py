"""Perplexity curves from a metrics history, drawn outside the training loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .train import EpochStats


def plot_perplexity(
    history: Sequence[EpochStats], path: str | Path, every: int = 10, title: str = ""
) -> Path:
    """Save the book's animator figure: perplexity at every ``every``-th epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [s for s in history if s.epoch % every == 0] or list(history[-1:])
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    ax.plot([s.epoch for s in points], [s.perplexity for s in points], label="train")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path

"""A live perplexity plot for Jupyter, the book's ``Animator`` as a training callback.

The trainer knows nothing of plotting: pass ``LivePlot()`` in ``callbacks`` and it redraws
one output cell after each epoch. IPython is imported only when a plot is drawn, so the
library itself does not need it.
"""

from __future__ import annotations

import io
from typing import Any

from .errors import RnnlabError
from .train import EpochStats


class LivePlot:
    """Training (and validation, when the trainer reports it) perplexity against epoch,
    redrawn in place every ``every`` epochs and once more by :meth:`close`."""

    def __init__(self, every: int = 1, title: str = "", figsize: tuple[float, float] = (4.5, 3.2),
                 log_y: bool = False) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every, self.title, self.figsize, self.log_y = every, title, figsize, log_y
        self.history: list[EpochStats] = []
        self._handle: Any = None
        self._drawn = 0  # epochs shown in the last drawing

    def __call__(self, stats: EpochStats) -> None:
        self.history.append(stats)
        if stats.epoch % self.every == 0:
            self.draw()

    def close(self) -> None:
        """Draw the last epochs if the final redraw fell between two ``every``."""
        if self.history and self._drawn != len(self.history):
            self.draw()

    def png(self) -> bytes:
        """The current figure as PNG bytes (drawn off-screen with Agg, whatever the
        notebook's matplotlib backend is)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.figsize, dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        epochs = [s.epoch for s in self.history]
        ax.plot(epochs, [s.perplexity for s in self.history], label="train")
        val = [(s.epoch, s.val_perplexity) for s in self.history if s.val_perplexity is not None]
        if val:
            ax.plot(*zip(*val), "--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("perplexity")
        if self.log_y:
            ax.set_yscale("log")
        if self.title:
            ax.set_title(self.title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

    def draw(self) -> None:
        try:
            from IPython import display
        except ImportError:
            raise RnnlabError(
                "LivePlot draws in Jupyter and needs IPython; pip install ipykernel"
            ) from None
        image = display.Image(data=self.png(), format="png")
        if self._handle is None:
            self._handle = display.display(image, display_id=True)
        else:
            self._handle.update(image)
        self._drawn = len(self.history)

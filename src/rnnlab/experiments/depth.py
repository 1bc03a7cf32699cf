"""Exercise 2 of section 8.6: stack 1 to 4 recurrent layers with the book's settings, then
show what the deep ones need (more epochs, another learning rate, gated cells)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..errors import ConfigError
from ..models import MODELS
from ..runs import load_dataset
from .common import Report, markdown_table, pyplot, save_figure, settings_table
from .lm import Outcome, Setting, run_setting


@dataclass
class DepthConfig:
    max_tokens: int = field(default=10000, metadata={"help": "Time Machine tokens trained on"})
    batch_size: int = field(default=32, metadata={"help": "sequences per batch"})
    seq_len: int = field(default=35, metadata={"help": "tokens per sequence (num_steps)"})
    hidden_size: int = field(default=256, metadata={"help": "hidden units per layer"})
    lr: float = field(default=1.0, metadata={"help": "SGD learning rate (the book's)"})
    clip: float = field(default=1.0, metadata={"help": "gradient-norm bound theta"})
    epochs: int = field(default=30, metadata={"help": "epochs of every setting (the book: 500)"})
    max_layers: int = field(default=4, metadata={"help": "train 1..max-layers layers"})
    long_epochs: int = field(
        default=90, metadata={"help": "epochs of the deepest RNN trained longer; 0: skip"}
    )
    deep_lr: float = field(
        default=2.0, metadata={"help": "learning rate of the deepest RNN's retry; 0: skip"}
    )
    cells: str = field(
        default="gru", metadata={"help": "comma-separated models tried at max-layers, or ''"}
    )
    seed: int = field(default=0, metadata={"help": "seed for weights and batches"})

    def __post_init__(self) -> None:
        for name in ("max_tokens", "batch_size", "seq_len", "hidden_size", "lr", "clip",
                     "epochs", "max_layers"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        for cell in self.cell_list:
            if cell not in MODELS:
                raise ConfigError(f"unknown model {cell!r} in --cells; choose from {', '.join(MODELS)}")

    @property
    def cell_list(self) -> list[str]:
        return [c.strip() for c in self.cells.split(",") if c.strip()]

    def settings(self) -> list[Setting]:
        base: dict[str, Any] = {"hidden_size": self.hidden_size, "lr": self.lr,
                                "epochs": self.epochs}
        out = [Setting(f"rnn, {n} layer{'s' * (n > 1)}", num_layers=n, **base)
               for n in range(1, self.max_layers + 1)]
        deep = self.max_layers
        if self.long_epochs:
            out.append(Setting(f"rnn, {deep} layers, {self.long_epochs} epochs", num_layers=deep,
                               **{**base, "epochs": self.long_epochs}))
        if self.deep_lr:
            out.append(Setting(f"rnn, {deep} layers, lr {self.deep_lr:g}", num_layers=deep,
                               **{**base, "lr": self.deep_lr}))
        out += [Setting(f"{cell}, {deep} layers", model=cell, num_layers=deep, **base)
                for cell in self.cell_list]
        return out


@dataclass
class DepthResult:
    outcomes: list[Outcome]
    report: Path
    seconds: float


def run(config: DepthConfig, out_dir: str | Path) -> DepthResult:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = config
    report = Report("Deeper RNNs on the Time Machine (exercise 2)")
    data = load_dataset(DataConfig(max_tokens=c.max_tokens, batch_size=c.batch_size,
                                   seq_len=c.seq_len))
    outcomes = [
        run_setting(s, len(data.vocab), data.ids, batch_size=c.batch_size, seq_len=c.seq_len,
                    clip=c.clip, seed=c.seed)
        for s in c.settings()
    ]
    rows = [
        [o.setting.label, o.setting.epochs, o.setting.lr, o.parameters,
         o.history[-1].perplexity, o.tokens_per_s, o.seconds]
        for o in outcomes
    ]
    header = ["setting", "epochs", "lr", "parameters", "final perplexity", "tokens/sec",
              "seconds"]
    report.add(
        f"Training perplexity on the first {c.max_tokens} tokens, batch {c.batch_size}, "
        f"{c.seq_len} steps, {c.hidden_size} hidden units, clip {c.clip:g}; tokens/sec is the "
        f"mean over the run on this machine.\n\n" + markdown_table(header, rows)
    )
    _plot(outcomes, out_dir)
    report.figure("depth", "Training perplexity per epoch for each depth and remedy.")
    report.add("## Settings\n\n" + settings_table(c))
    seconds = report.seconds
    return DepthResult(outcomes, report.write(out_dir), seconds)


def _plot(outcomes: list[Outcome], out_dir: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for o in outcomes:
        style = "-" if o.setting.model == "rnn" and o.setting.lr == outcomes[0].setting.lr else "--"
        ax.plot([s.epoch for s in o.history], [s.perplexity for s in o.history], style,
                lw=1.2, label=o.setting.label)
    ax.set(xlabel="epoch", ylabel="training perplexity", yscale="log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, out_dir, "depth")

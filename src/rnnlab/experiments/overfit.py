"""Exercise 1 of section 8.6: a model large enough to memorise its training text, with a
held-out tail of the Time Machine to watch it happen, then what closes the gap.

The first ``max_tokens`` tokens are split in order: the last ``val_fraction`` is validation,
the same for every setting; most settings train on the first ``train_tokens`` of the rest,
"more data" on all of it (for the same number of updates).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import DataConfig
from ..errors import ConfigError
from ..runs import load_dataset
from .common import Report, markdown_table, pyplot, save_figure, settings_table
from .lm import Outcome, Setting, run_setting


@dataclass
class OverfitConfig:
    max_tokens: int = field(default=50000, metadata={"help": "Time Machine tokens used"})
    val_fraction: float = field(default=0.1, metadata={"help": "share held out, at the end"})
    train_tokens: int = field(
        default=10000, metadata={"help": "training tokens of every setting but 'more data'"}
    )
    model: str = field(default="rnn", metadata={"help": "model from the registry"})
    hidden_size: int = field(default=512, metadata={"help": "hidden units of the large model"})
    small_hidden_size: int = field(default=64, metadata={"help": "hidden units of the small one"})
    optimizer: str = field(default="adam", metadata={"help": "sgd or adam"})
    lr: float = field(default=0.002, metadata={"help": "learning rate"})
    epochs: int = field(default=100, metadata={"help": "epochs on train-tokens tokens"})
    dropout: float = field(default=0.5, metadata={"help": "dropout of the 'dropout' setting"})
    weight_decay: float = field(
        default=1.0, metadata={"help": "decoupled weight decay of the 'weight decay' setting"}
    )
    batch_size: int = field(default=32, metadata={"help": "sequences per batch"})
    seq_len: int = field(default=35, metadata={"help": "tokens per sequence"})
    clip: float = field(default=1.0, metadata={"help": "gradient-norm bound theta"})
    seed: int = field(default=0, metadata={"help": "seed for weights and batches"})

    def __post_init__(self) -> None:
        for name in ("max_tokens", "train_tokens", "hidden_size", "small_hidden_size", "lr",
                     "epochs", "batch_size", "seq_len", "clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        if not 0 < self.val_fraction < 1:
            raise ConfigError("val-fraction must lie between 0 and 1")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.train_tokens > self.num_train:
            raise ConfigError(
                f"train-tokens {self.train_tokens} exceeds the {self.num_train} tokens before "
                f"the validation split; raise --max-tokens or lower --train-tokens"
            )

    @property
    def num_train(self) -> int:
        return self.max_tokens - int(self.max_tokens * self.val_fraction)

    def settings(self) -> list[Setting]:
        large = Setting(
            f"large ({self.hidden_size} hidden)", model=self.model, hidden_size=self.hidden_size,
            lr=self.lr, epochs=self.epochs, optimizer=self.optimizer,
            max_tokens=self.train_tokens,
        )
        out = [large]
        if self.dropout:
            out.append(replace(large, label=f"dropout {self.dropout:g}", dropout=self.dropout))
        if self.weight_decay:
            out.append(replace(large, label=f"weight decay {self.weight_decay:g}",
                               weight_decay=self.weight_decay))
        out.append(replace(large, label=f"small ({self.small_hidden_size} hidden)",
                           hidden_size=self.small_hidden_size))
        if self.num_train > self.train_tokens:
            # The same number of updates over more text: each token is seen fewer times.
            epochs = max(1, round(self.epochs * self.train_tokens / self.num_train))
            out.append(replace(large, label=f"more data ({self.num_train} tokens)",
                               epochs=epochs, max_tokens=self.num_train))
        return out


@dataclass
class OverfitResult:
    outcomes: list[Outcome]
    report: Path
    seconds: float


def run(config: OverfitConfig, out_dir: str | Path) -> OverfitResult:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = config
    report = Report("Overfitting and what closes the gap (exercise 1)")
    data = load_dataset(DataConfig(max_tokens=c.max_tokens, batch_size=c.batch_size,
                                   seq_len=c.seq_len))
    train_ids, val_ids = data.ids[: c.num_train], data.ids[c.num_train :]
    outcomes = [
        run_setting(s, len(data.vocab), train_ids, val_ids=val_ids, batch_size=c.batch_size,
                    seq_len=c.seq_len, clip=c.clip, seed=c.seed)
        for s in c.settings()
    ]
    rows = []
    for o in outcomes:
        best_epoch, best = o.best_val
        last = o.history[-1]
        assert last.val_perplexity is not None  # run_setting validates after every epoch
        rows.append([o.setting.label, o.setting.max_tokens, o.setting.epochs, o.parameters,
                     last.perplexity, last.val_perplexity, best, best_epoch,
                     last.val_perplexity / last.perplexity, o.seconds])
    header = ["setting", "train tokens", "epochs", "parameters", "final train ppl",
              "final val ppl", "best val ppl", "at epoch", "gap (val/train)", "seconds"]
    report.add(
        f"Validation: the last {len(val_ids)} of the first {c.max_tokens} Time Machine "
        f"tokens. {c.optimizer.upper()}, lr {c.lr:g}, batch {c.batch_size}, {c.seq_len} "
        f"steps, clip {c.clip:g}.\n\n" + markdown_table(header, rows)
    )
    _plot(outcomes, out_dir)
    report.figure("overfit", "Training (solid) and validation (dashed) perplexity per setting.")
    report.add("## Settings\n\n" + settings_table(c))
    seconds = report.seconds
    return OverfitResult(outcomes, report.write(out_dir), seconds)


def _plot(outcomes: list[Outcome], out_dir: Path) -> None:
    plt = pyplot()
    n = len(outcomes)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.0), dpi=120, sharey=True, squeeze=False)
    for ax, o in zip(axes[0], outcomes):
        epochs = [s.epoch for s in o.history]
        ax.plot(epochs, [s.perplexity for s in o.history], label="train")
        ax.plot(epochs[: len(o.val_perplexity)], o.val_perplexity, "--", label="validation")
        ax.set(title=o.setting.label, xlabel="epoch", yscale="log")
        ax.title.set_fontsize(8)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("perplexity")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, out_dir, "overfit")

"""Train a grid of models on one corpus and tabulate them: the book's chapter 9 in one call.

A grid entry is a model name with optional overrides of model or training fields, written
as ``NAME[:FIELD=VALUE...]`` with the CLI's kebab-case names, e.g. ``lstm:num-layers=2:lr=2``.
Every entry trains through ``train_run`` into its own run directory under the output
directory, next to ``compare.md``, ``compare.csv`` and ``perplexity.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, ModelConfig, TrainConfig
from .errors import ConfigError
from .models import MODELS
from .runs import train_run
from .train import Callback, EpochStats

log = logging.getLogger(__name__)

# The book's runs (sections 8.6, 9.1, 9.2, 9.3): 256 hidden, lr 1, and lr 2 for the deep LSTM.
DEFAULT_GRID = (
    "rnn",
    "gru",
    "lstm",
    "lstm:num-layers=2:lr=2",
    "scratch",
    "gru-scratch",
    "lstm-scratch",
)
TABLE = "compare.md"
CSV = "compare.csv"
PLOT = "perplexity.png"
YTICKS = (1, 1.2, 1.5, 2, 3, 5, 10, 20, 50, 100)
CSV_FIELDS = (
    "label", "model", "parameters", "final_perplexity", "best_perplexity",
    "final_val_perplexity", "best_val_perplexity", "tokens_per_s", "train_seconds",
    "wall_seconds", "run_dir",
)


def _overridable() -> dict[str, tuple[str, dataclasses.Field[Any]]]:
    """Kebab-case name -> (config section, field) for every model and training field."""
    fields: dict[str, tuple[str, dataclasses.Field[Any]]] = {}
    for section, cls in (("model", ModelConfig), ("train", TrainConfig)):
        for f in dataclasses.fields(cls):
            if f.name != "model":
                fields[f.name.replace("_", "-")] = (section, f)
    return fields


def _convert(key: str, text: str, annotation: str) -> Any:
    """``text`` as the type of a field annotated ``annotation`` (a string, since the config
    module postpones annotations)."""
    if "None" in annotation and text.lower() == "none":
        return None
    if "bool" in annotation:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ConfigError(f"{key} takes true or false, got {text!r}")
    kind: type = str
    if "int" in annotation:
        kind = int
    elif "float" in annotation:
        kind = float
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{key} takes a {kind.__name__}, got {text!r}") from None


@dataclass(frozen=True)
class GridEntry:
    label: str  # the entry as written, e.g. "lstm:num-layers=2:lr=2"
    config: Config


def parse_entry(spec: str, base: Config) -> GridEntry:
    """``NAME[:FIELD=VALUE...]`` on top of ``base``; the overrides are validated like flags."""
    name, *pairs = spec.split(":")
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r} in {spec!r}; choose one of {', '.join(MODELS)}")
    fields = _overridable()
    changes: dict[str, dict[str, Any]] = {"model": {"model": name}, "train": {}}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in fields:
            raise ConfigError(
                f"cannot read {pair!r} in {spec!r}; write FIELD=VALUE with FIELD one of "
                f"{', '.join(fields)}"
            )
        section, f = fields[key]
        changes[section][f.name] = _convert(key, text, str(f.type))
    config = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, **changes["model"]),
        train=dataclasses.replace(base.train, **changes["train"]),
    )
    return GridEntry(spec, config)


def parse_grid(specs: Sequence[str], base: Config) -> list[GridEntry]:
    entries = [parse_entry(spec, base) for spec in specs]
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"the grid lists a model twice: {', '.join(labels)}")
    return entries


def slug(label: str) -> str:
    """A directory name for a grid entry: ``lstm:num-layers=2:lr=2`` -> ``lstm-num-layers-2-lr-2``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-")


@dataclass
class CompareResult:
    label: str
    model: str
    parameters: int
    history: list[EpochStats]
    wall_seconds: float  # data, model, training and the run directory
    run_dir: Path

    @property
    def final_perplexity(self) -> float:
        return self.history[-1].perplexity

    @property
    def best_perplexity(self) -> float:
        return min(s.perplexity for s in self.history)

    @property
    def val_perplexities(self) -> list[float]:
        return [s.val_perplexity for s in self.history if s.val_perplexity is not None]

    @property
    def train_seconds(self) -> float:
        return sum(s.seconds for s in self.history)

    @property
    def tokens_per_s(self) -> float:
        """Over all epochs (tokens over seconds), steadier than one epoch's figure on a
        machine other work shares."""
        tokens = sum(s.tokens_per_s * s.seconds for s in self.history)
        return tokens / self.train_seconds

    def row(self) -> dict[str, Any]:
        vals = self.val_perplexities
        return {
            "label": self.label,
            "model": self.model,
            "parameters": self.parameters,
            "final_perplexity": self.final_perplexity,
            "best_perplexity": self.best_perplexity,
            "final_val_perplexity": vals[-1] if vals else None,
            "best_val_perplexity": min(vals) if vals else None,
            "tokens_per_s": self.tokens_per_s,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "run_dir": str(self.run_dir),
        }


def run_grid(
    entries: Sequence[GridEntry],
    out_dir: str | Path,
    callbacks: Callable[[GridEntry], Sequence[Callback]] = lambda entry: (),
) -> Iterator[CompareResult]:
    """Train every entry in turn into ``out_dir/<slug>``, yielding each result as it is
    done; ``callbacks(entry)`` gives the per-epoch callbacks of that entry's run."""
    out_dir = Path(out_dir)
    for entry in entries:
        log.info("training %s", entry.label)
        start = time.perf_counter()
        run = train_run(entry.config, out_dir / slug(entry.label), callbacks(entry))
        wall = time.perf_counter() - start
        parameters = sum(p.numel() for p in run.model.parameters())
        yield CompareResult(
            entry.label, entry.config.model.model, parameters, run.history, wall, run.run_dir
        )


def table_csv(results: Sequence[CompareResult]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: "" if v is None else v for k, v in r.row().items()})
    return out.getvalue()


def table_markdown(results: Sequence[CompareResult]) -> str:
    with_val = any(r.val_perplexities for r in results)
    head = ["model", "parameters", "final perplexity", "best perplexity"]
    if with_val:
        head += ["final val perplexity", "best val perplexity"]
    head += ["tokens/sec", "train s", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        row = r.row()
        cells = [f"`{r.label}`", f"{r.parameters:,}", f"{r.final_perplexity:.2f}",
                 f"{r.best_perplexity:.2f}"]
        if with_val:
            cells += [
                "" if row[k] is None else f"{row[k]:.2f}"
                for k in ("final_val_perplexity", "best_val_perplexity")
            ]
        cells += [f"{r.tokens_per_s:,.0f}", f"{r.train_seconds:.1f}", f"{r.wall_seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(results: Sequence[CompareResult], path: str | Path, title: str = "") -> Path:
    """Every entry's training perplexity per epoch on one log-scale axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for r in results:
        ax.plot([s.epoch for s in r.history], [s.perplexity for s in r.history], label=r.label,
                linewidth=1.2)
    ax.set_yscale("log")
    # plain numbers at readable perplexities rather than powers of ten
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    lows, highs = zip(*[(min(s.perplexity for s in r.history), max(s.perplexity for s in r.history))
                        for r in results])
    ticks = [t for t in YTICKS if min(lows) * 0.95 <= t <= max(highs) * 1.05]
    if len(ticks) >= 3:  # else the range is narrow and matplotlib's own ticks do better
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("epoch")
    ax.set_ylabel("training perplexity (log scale)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(results: Sequence[CompareResult], out_dir: str | Path, title: str = "") -> Path:
    """``compare.md``, ``compare.csv`` and ``perplexity.png`` in ``out_dir``."""
    from .checkpoint import atomic_write

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / TABLE, table_markdown(results).encode())
    atomic_write(out_dir / CSV, table_csv(results).encode())
    plot_comparison(results, out_dir / PLOT, title)
    return out_dir


def compare(
    base: Config,
    specs: Sequence[str] = DEFAULT_GRID,
    out_dir: str | Path = "runs/compare",
    callbacks: Callable[[GridEntry], Sequence[Callback]] = lambda entry: (),
) -> list[CompareResult]:
    """Train the grid ``specs`` (on ``base``'s data and settings) and write the report,
    rewritten after every entry so that an interrupted grid keeps what it finished."""
    entries = parse_grid(specs, base)
    title = Path(base.data.text).name if base.data.text else base.data.corpus
    results: list[CompareResult] = []
    for result in run_grid(entries, out_dir, callbacks):
        results.append(result)
        write_report(results, out_dir, title=f"{title}, {base.train.epochs} epochs")
    return results

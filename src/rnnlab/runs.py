"""A whole training run from a ``Config``: data, model, training, run directory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .batches import check_length
from .checkpoint import METRIC_FIELDS, METRICS, save_run
from .config import Config, DataConfig
from .corpus import Corpus, load_corpus
from .models import model_from_config
from .plot import plot_perplexity
from .train import Callback, EpochStats, select_device, train
from .vocab import Vocab


@dataclass
class Dataset:
    """A corpus as token ids (1-D int64) with its vocabulary."""

    ids: torch.Tensor
    vocab: Vocab
    corpus: Corpus


def load_dataset(cfg: DataConfig) -> Dataset:
    """The book's ``load_corpus_time_machine``: tokens, a vocabulary built on the whole
    corpus, and the ids of the first ``max_tokens`` tokens."""
    corpus = load_corpus(cfg.corpus, cfg.text, cfg.preprocess, cfg.token, cfg.encoding)
    vocab = Vocab(corpus.tokens, token_type=cfg.token)
    max_tokens = cfg.max_tokens if cfg.max_tokens is not None else corpus.default_max_tokens
    tokens = corpus.tokens if max_tokens is None else corpus.tokens[:max_tokens]
    ids = torch.tensor(vocab.encode(tokens), dtype=torch.long)
    check_length(len(ids), cfg.batch_size, cfg.seq_len)
    return Dataset(ids, vocab, corpus)


def default_run_dir(config: Config, root: str | Path = "runs") -> Path:
    name = Path(config.data.text).stem if config.data.text else config.data.corpus
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{name}-{config.model.model}-{stamp}"


class MetricsLog:
    """Appends one CSV row per epoch as training goes, so progress is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text(",".join(METRIC_FIELDS) + "\n")

    def __call__(self, s: EpochStats) -> None:
        with self.path.open("a") as f:
            f.write(f"{s.epoch},{s.perplexity:.6f},{s.tokens_per_s:.1f}\n")


@dataclass
class RunResult:
    model: nn.Module
    vocab: Vocab
    history: list[EpochStats]
    run_dir: Path
    device: torch.device
    seconds: float


def train_run(
    config: Config, run_dir: str | Path, callbacks: Sequence[Callback] = ()
) -> RunResult:
    """Train as ``config`` says and write the run directory; returns the trained model."""
    data = load_dataset(config.data)
    device = select_device(config.train.device)
    torch.manual_seed(config.train.seed)
    m = config.model
    model = model_from_config(m, len(data.vocab))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data.vocab.save(run_dir / "vocab.json")
    start = time.perf_counter()
    t = config.train
    history = train(
        model,
        data.ids,
        batch_size=config.data.batch_size,
        seq_len=config.data.seq_len,
        epochs=t.epochs,
        lr=t.lr,
        clip=t.clip,
        random_iter=config.data.random_iter,
        seed=t.seed,
        device=device,
        callbacks=[MetricsLog(run_dir / METRICS), *callbacks],
    )
    seconds = time.perf_counter() - start
    save_run(run_dir, model, data.vocab, config, history)
    plot_perplexity(history, run_dir / "perplexity.png", title=f"{m.model}, {data.corpus.name}")
    model.eval()
    return RunResult(model, data.vocab, history, run_dir, device, seconds)

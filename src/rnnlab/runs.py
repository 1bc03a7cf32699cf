"""A whole training run from a ``Config``: data, model, training, run directory."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .batches import check_length
from .checkpoint import (
    CHECKPOINTS,
    METRICS,
    atomic_write,
    latest_checkpoint,
    load_checkpoint,
    metrics_csv,
    metrics_row,
    model_bytes,
    read_config,
    read_manifest,
    read_vocab,
    save_checkpoint,
    save_description,
    save_progress,
    write_manifest,
)
from .config import Config, DataConfig
from .corpus import Corpus, load_corpus
from .errors import CheckpointError, CorpusError
from .evaluate import evaluate
from .models import model_from_config
from .optim import build_optimizer, build_scheduler
from .plot import plot_perplexity
from .train import Callback, EpochStats, Trainer, select_device
from .vocab import Vocab


@dataclass
class Dataset:
    """A corpus as token ids (1-D int64) with its vocabulary. ``ids`` is the training part;
    ``val_ids`` and ``test_ids`` the held-out parts, None when empty. ``corpus`` names the
    source (name, sha1, preprocessing) without its token list."""

    ids: torch.Tensor
    vocab: Vocab
    corpus: Corpus
    val_ids: torch.Tensor | None = None
    test_ids: torch.Tensor | None = None


def split_ids(
    ids: torch.Tensor, val_fraction: float, test_fraction: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut a token stream into contiguous train, validation and test parts, in that order.

    Contiguous rather than shuffled so that no held-out text also sits inside a training
    sequence; the parts are views that together are exactly ``ids``.
    """
    n = len(ids)
    num_test = round(n * test_fraction)
    num_val = round(n * val_fraction)
    num_train = n - num_val - num_test
    return ids[:num_train], ids[num_train : num_train + num_val], ids[num_train + num_val :]


def load_dataset(cfg: DataConfig) -> Dataset:
    """The book's ``load_corpus_time_machine``: tokens, a vocabulary built on the whole
    corpus, and the ids of the first ``max_tokens`` tokens (0: all), split as
    ``cfg.held_out`` says."""
    corpus = load_corpus(cfg.corpus, cfg.text, cfg.preprocess, cfg.token, cfg.encoding)
    vocab = Vocab(corpus.tokens, token_type=cfg.token)
    max_tokens = cfg.max_tokens if cfg.max_tokens is not None else corpus.default_max_tokens
    tokens = corpus.tokens if not max_tokens else corpus.tokens[:max_tokens]
    ids = torch.tensor(vocab.encode(tokens), dtype=torch.long)
    train, val, test = split_ids(ids, *cfg.held_out)
    check_length(len(train), cfg.batch_size, cfg.seq_len)
    val_fraction, test_fraction = cfg.held_out
    for name, part, fraction in (("validation", val, val_fraction), ("test", test, test_fraction)):
        if fraction > 0 and len(part) < 2:
            raise CorpusError(
                f"the {name} part of {len(ids)} tokens is too short to score; raise its "
                f"fraction, use a longer text, or pass --{name[:4]}-fraction 0"
            )
    # Keep the ids only: the token list costs tens of bytes a character (Python strings).
    lean = dataclasses.replace(corpus, tokens=[])
    return Dataset(train, vocab, lean, val if len(val) else None, test if len(test) else None)


BEST_WEIGHTS = "best.safetensors"  # the weights with the lowest validation loss


def save_weights(path: Path, model: nn.Module) -> None:
    atomic_write(path, model_bytes(model))


def load_best(model: nn.Module, run_dir: str | Path, device: torch.device | str = "cpu") -> None:
    """Load a run's ``best.safetensors`` into ``model`` (built from the run's config)."""
    path = Path(run_dir) / BEST_WEIGHTS
    if not path.is_file():
        raise CheckpointError(
            f"{run_dir} has no {BEST_WEIGHTS}; only runs with a validation split write one "
            f"(--val-fraction above 0)"
        )
    try:
        model.load_state_dict(load_file(path, device=str(device)))
    except (SafetensorError, RuntimeError, OSError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise CheckpointError(f"{path} is corrupt or from another model ({reason})") from None


def default_run_dir(config: Config, root: str | Path = "runs") -> Path:
    name = Path(config.data.text).stem if config.data.text else config.data.corpus
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{name}-{config.model.model}-{stamp}"


class MetricsLog:
    """Keeps ``metrics.csv`` current: one row per epoch, appended as each epoch ends."""

    def __init__(self, path: Path, history: Sequence[EpochStats] = ()) -> None:
        self.path = path
        path.write_text(metrics_csv(history))

    def __call__(self, s: EpochStats) -> None:
        with self.path.open("a") as f:
            f.write(metrics_row(s))


@dataclass
class RunResult:
    model: nn.Module
    vocab: Vocab
    history: list[EpochStats]
    run_dir: Path
    device: torch.device
    seconds: float
    stopped: bool = False  # True when a stop was requested before the configured end


class Run:
    """A training run bound to its run directory: build it fresh or resume it, then
    ``fit()``. The directory is the checkpoint: it holds all that is needed to continue."""

    def __init__(self, config: Config, run_dir: str | Path, callbacks: Sequence[Callback] = ()):
        self.config = config
        self.run_dir = Path(run_dir)
        self.data = load_dataset(config.data)
        self.device = select_device(config.train.device)
        if config.train.threads is not None:
            # The per-step products (batch x hidden x hidden) are small: a second thread
            # helps little on idle cores and collapses when the cores are shared.
            torch.set_num_threads(config.train.threads)
        torch.manual_seed(config.train.seed)
        self.model = model_from_config(config.model, len(self.data.vocab))
        t = config.train
        optimizer = build_optimizer(t, self.model.parameters())
        self.trainer = Trainer(
            self.model,
            self.data.ids,
            batch_size=config.data.batch_size,
            seq_len=config.data.seq_len,
            epochs=t.epochs,
            lr=t.lr,
            clip=t.clip,
            random_iter=config.data.random_iter,
            seed=t.seed,
            device=self.device,
            optimizer=optimizer,
            scheduler=build_scheduler(t, optimizer, t.epochs),
            validate=self._validate if self.data.val_ids is not None else None,
            eval_every=t.eval_every,
            callbacks=[self._on_epoch, *callbacks],
        )
        self.metrics: MetricsLog | None = None
        self.best: tuple[float, str] | None = None  # (loss, checkpoint name)
        self.seconds = 0.0
        self._last_save = time.monotonic()

    @classmethod
    def resume(cls, run_dir: str | Path, callbacks: Sequence[Callback] = ()) -> Run:
        """Continue a run from its latest checkpoint, with the configuration it was given."""
        run_dir = Path(run_dir)
        config = read_config(run_dir)
        manifest = read_manifest(run_dir)
        run = cls(config, run_dir, callbacks)
        if manifest.get("corpus_sha1") not in (None, run.data.corpus.sha1):
            raise CheckpointError(
                f"the corpus has changed since {run_dir} was trained (sha1 "
                f"{run.data.corpus.sha1} != {manifest['corpus_sha1']}); restore the original text"
            )
        if read_vocab(run_dir) != run.data.vocab:
            raise CheckpointError(
                f"the vocabulary of {run_dir} does not match the corpus; resume with the "
                f"original text or start a new run"
            )
        path = latest_checkpoint(run_dir)
        weights, state = load_checkpoint(path)
        try:
            run.model.load_state_dict(weights)
            run.trainer.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise CheckpointError(f"{path} does not fit this run ({reason})") from None
        best = state.get("best")
        if isinstance(best, list) and len(best) == 2:
            run.best = (float(best[0]), str(best[1]))
        return run

    def _validate(self, model: nn.Module) -> float:
        assert self.data.val_ids is not None
        d = self.config.data
        return evaluate(model, self.data.val_ids, d.batch_size, d.seq_len).loss

    def _keep_best(self, stats: EpochStats) -> None:
        """Save the weights as ``best.safetensors`` when the validation loss is the lowest
        so far (the history survives a resume, so the comparison does too)."""
        earlier = [s.val_loss for s in self.trainer.history[:-1] if s.val_loss is not None]
        if stats.val_loss is not None and all(stats.val_loss < v for v in earlier):
            save_weights(self.run_dir / BEST_WEIGHTS, self.model)

    def _on_epoch(self, stats: EpochStats) -> None:
        if self.metrics is not None:
            self.metrics(stats)
        self._keep_best(stats)
        t = self.config.train
        minutes = (time.monotonic() - self._last_save) / 60
        due = stats.epoch % t.save_every == 0 or (t.save_minutes and minutes >= t.save_minutes)
        if due and not self.trainer.done:
            self.save()

    def fit(self, max_steps: int | None = None) -> RunResult:
        """Train to the configured end, for ``max_steps`` batches, or until
        ``trainer.request_stop()``; the run directory ends with a checkpoint either way."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.trainer.step == 0:
            shutil.rmtree(self.run_dir / CHECKPOINTS, ignore_errors=True)  # a fresh run
        save_description(self.run_dir, self.data.vocab, self.config)
        self.metrics = MetricsLog(self.run_dir / METRICS, self.trainer.history)
        start = time.perf_counter()
        try:
            history = self.trainer.fit(max_steps)
        finally:
            self.seconds += time.perf_counter() - start
        self.save()
        if self.trainer.history:
            # Drawn once a fit ends rather than at every checkpoint: a plot costs more than
            # the checkpoint itself, and metrics.csv already shows progress as it happens.
            title = f"{self.config.model.model}, {self.data.corpus.name}"
            plot_perplexity(self.trainer.history, self.run_dir / "perplexity.png", title=title)
        self.model.eval()
        return RunResult(
            self.model, self.data.vocab, history, self.run_dir, self.device, self.seconds,
            stopped=not self.trainer.done,
        )

    def save(self) -> Path:
        """A resumable checkpoint, plus the run directory's latest weights and metrics."""
        history = self.trainer.history
        state = self.trainer.state_dict()
        name = f"step-{self.trainer.step:09d}"
        if history and self.trainer.batch == 0:  # only whole epochs compete for best
            last = history[-1]
            loss = last.val_loss if last.val_loss is not None else last.loss
            if self.best is None or loss < self.best[0]:
                self.best = (loss, name)
        state["best"] = list(self.best) if self.best else None
        keep = [self.best[1]] if self.best else []
        path = save_checkpoint(self.run_dir, self.model, state, self.config.train.keep_last, keep)
        if self.best:
            atomic_write(self.run_dir / CHECKPOINTS / "best", self.best[1].encode())
        save_progress(self.run_dir, self.model, history)
        write_manifest(
            self.run_dir,
            corpus=self.data.corpus.name,
            corpus_sha1=self.data.corpus.sha1,
            device=str(self.device),
            seed=self.config.train.seed,
            epoch=self.trainer.epoch,
            step=self.trainer.step,
        )
        self._last_save = time.monotonic()
        return path


def train_run(
    config: Config, run_dir: str | Path, callbacks: Sequence[Callback] = ()
) -> RunResult:
    """Train as ``config`` says and write the run directory; returns the trained model."""
    return Run(config, run_dir, callbacks).fit()

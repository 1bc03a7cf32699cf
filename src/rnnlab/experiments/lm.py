"""Train one language-model setting of an experiment and keep what its tables and plots need."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch

from ..evaluate import evaluate
from ..models import build_model
from ..train import EpochStats, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One row of an experiment's table: a model and how it is trained."""

    label: str
    model: str = "rnn"
    hidden_size: int = 256
    num_layers: int = 1
    lr: float = 1.0
    epochs: int = 100
    dropout: float = 0.0
    weight_decay: float = 0.0
    optimizer: str = "sgd"  # "sgd" (the book's) or "adam"
    max_tokens: int | None = None  # train on only this many of the training tokens


@dataclass
class Outcome:
    setting: Setting
    history: list[EpochStats]
    parameters: int
    seconds: float
    val_perplexity: list[float] = field(default_factory=list)  # one per epoch, when validated

    @property
    def tokens_per_s(self) -> float:
        """Mean over the run, steadier than one epoch's figure on a busy machine."""
        return sum(s.tokens_per_s * s.seconds for s in self.history) / max(
            sum(s.seconds for s in self.history), 1e-9
        )

    @property
    def best_val(self) -> tuple[int, float]:
        """(epoch, perplexity) of the lowest validation perplexity."""
        i = min(range(len(self.val_perplexity)), key=self.val_perplexity.__getitem__)
        return i + 1, self.val_perplexity[i]


def run_setting(
    setting: Setting,
    vocab_size: int,
    ids: torch.Tensor,
    *,
    val_ids: torch.Tensor | None = None,
    batch_size: int = 32,
    seq_len: int = 35,
    clip: float | None = 1.0,
    seed: int = 0,
) -> Outcome:
    """Train ``setting`` on ``ids`` with the library's trainer and the setting's optimizer
    (SGD is the book's); validate on ``val_ids`` after every epoch."""
    torch.manual_seed(seed)
    s = setting
    if s.max_tokens is not None:
        ids = ids[: s.max_tokens]
    model = build_model(s.model, vocab_size, s.hidden_size, s.num_layers, dropout=s.dropout)
    optimizers = {"sgd": torch.optim.SGD, "adam": torch.optim.AdamW if s.weight_decay else
                  torch.optim.Adam}
    optimizer = optimizers[s.optimizer](model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    validate = None
    if val_ids is not None:

        def validate(m: torch.nn.Module) -> float:
            return evaluate(m, val_ids, batch_size, seq_len).loss

    start = time.perf_counter()
    history = train(
        model, ids, batch_size=batch_size, seq_len=seq_len, epochs=s.epochs, lr=s.lr,
        clip=clip, seed=seed, optimizer=optimizer, validate=validate,
    )
    seconds = time.perf_counter() - start
    log.info("%s: perplexity %.3f after %d epochs, %.1f s", s.label, history[-1].perplexity,
             s.epochs, seconds)
    val = [st.val_perplexity for st in history if st.val_perplexity is not None]
    parameters = sum(p.numel() for p in model.parameters())
    return Outcome(s, history, parameters, seconds, [v for v in val if not math.isnan(v)])

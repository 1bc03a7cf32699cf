"""Held-out loss, perplexity and bits per token of a model on a token stream."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .models import State, Stateful
from .vocab import Vocab


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy per predicted token, nats
    perplexity: float
    bits_per_token: float  # bits per character for char models
    num_tokens: int  # tokens predicted


@torch.no_grad()
def evaluate(
    model: nn.Module, ids: torch.Tensor, batch_size: int = 32, seq_len: int = 35
) -> Evaluation:
    """Score every next-token prediction of ``ids`` (1-D int64) once, in order.

    The stream is cut into ``batch_size`` contiguous rows read ``seq_len`` tokens at a time
    with the state carried, so each token is predicted with all the context before it in its
    row, as in training with sequential partitioning. No random offset: results repeat.
    """
    device = next(model.parameters()).device
    ids = ids.to(device)
    batch_size = max(1, min(batch_size, (len(ids) - 1) // max(seq_len, 1) or 1))
    row_len = (len(ids) - 1) // batch_size
    if row_len < 1:
        raise ValueError(f"need at least 2 tokens to evaluate, got {len(ids)}")
    xs = ids[: batch_size * row_len].view(batch_size, row_len)  # (B, L)
    ys = ids[1 : batch_size * row_len + 1].view(batch_size, row_len)
    was_training = model.training
    model.eval()
    state: State = cast(Stateful, model).init_state(batch_size, device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, row_len, seq_len):
        logits, state = model(xs[:, start : start + seq_len], state)  # (B, t, V)
        y = ys[:, start : start + seq_len]
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), reduction="sum"
        )
    model.train(was_training)
    n = batch_size * row_len
    loss = total.item() / n
    return Evaluation(loss, math.exp(min(loss, 700.0)), loss / math.log(2), n)


def evaluate_tokens(
    model: nn.Module,
    vocab: Vocab,
    tokens: Sequence[str],
    batch_size: int = 32,
    seq_len: int = 35,
) -> tuple[Evaluation, Counter[str]]:
    """``evaluate`` on a token sequence, any text: tokens outside ``vocab`` are scored as
    ``<unk>`` and returned with their counts, so a user sees what the model never saw."""
    unknown = Counter(t for t in tokens if t not in vocab)
    ids = torch.tensor(vocab.encode(list(tokens)), dtype=torch.long)
    return evaluate(model, ids, batch_size, seq_len), unknown

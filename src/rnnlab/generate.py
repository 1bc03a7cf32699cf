"""Text generation: warm the state up on a prefix, then extend it one token at a time."""

from __future__ import annotations

import torch
from torch import nn

from .errors import ConfigError
from .vocab import Vocab


@torch.no_grad()
def predict(
    model: nn.Module,
    vocab: Vocab,
    prefix: str,
    num_preds: int = 50,
    device: torch.device | str | None = None,
) -> str:
    """Greedy generation as the book's ``predict_ch8``: ``prefix`` followed by ``num_preds``
    tokens. Prefix tokens missing from the vocabulary are read as ``<unk>``."""
    ids = vocab.encode(prefix)
    if not ids:
        raise ConfigError("the prefix is empty; pass at least one character with --prefix")
    if num_preds < 0:
        raise ConfigError(f"num-preds must be zero or more, got {num_preds}")
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    state = model.init_state(1, device)
    # Warm-up: the whole prefix but its last token in one call only updates the state.
    if len(ids) > 1:
        _, state = model(torch.tensor([ids[:-1]], device=device), state)
    token = torch.tensor([[ids[-1]]], device=device)  # (1, 1)
    generated = torch.empty(num_preds, dtype=torch.long, device=device)
    for i in range(num_preds):
        logits, state = model(token, state)  # (1, 1, V)
        token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (1, 1)
        generated[i] = token[0, 0]
    model.train(was_training)
    sep = " " if vocab.token_type == "word" and num_preds else ""
    return prefix + sep + vocab.decode(generated.tolist())

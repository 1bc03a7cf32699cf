"""Choosing the next token from a model's logits: greedy, or sampling with temperature,
sharpening, top-k and top-p (nucleus).

Sharpening is the book's exercise: sample from ``q ∝ P^alpha``. Since
``P^alpha ∝ exp(alpha * logits)``, it is the same distribution as temperature ``1 / alpha``;
both act together as the one temperature ``temperature / alpha``. Temperature 0 (or
``alpha`` going to infinity) is greedy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def next_token_probs(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    alpha: float = 1.0,
) -> torch.Tensor:
    """The distribution to sample the next token from, for ``temperature > 0``.

    ``logits`` (B, V) -> probabilities (B, V), float32, each row summing to 1. The order is
    the usual one: scale by ``alpha / temperature``, keep the ``top_k`` largest, then keep the
    nucleus, the fewest most likely tokens whose probability adds up to at least ``top_p``.
    """
    if temperature <= 0:
        raise ValueError(f"sampling needs a temperature above 0, got {temperature}")
    scaled = logits.float() * (alpha / temperature)  # (B, V)
    if top_k is not None and top_k < scaled.shape[-1]:
        # By index rather than by threshold, so that ties never let more than k through.
        keep = scaled.topk(top_k, dim=-1).indices  # (B, k)
        outside = torch.ones_like(scaled, dtype=torch.bool).scatter(-1, keep, False)
        scaled = scaled.masked_fill(outside, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)  # (B, V)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)  # (B, V) each
        before = sorted_probs.cumsum(-1) - sorted_probs  # mass of the more likely tokens
        # The most likely token always stays: its mass before is 0 < top_p.
        drop_sorted = before >= top_p
        drop = torch.empty_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def choose_tokens(
    logits: torch.Tensor,
    generators: Sequence[torch.Generator],
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    alpha: float = 1.0,
) -> torch.Tensor:
    """The next token of each row: ``logits`` (B, V) -> ids (B,) int64.

    Temperature 0 takes the most likely token. Otherwise row ``b`` draws from
    ``generators[b]`` alone, so what a row samples does not depend on the other rows in
    the batch (nor on the global RNG).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    # Row by row: on a CPU, softmax over several rows of a few dozen logits starts a
    # thread pool that costs far more than the arithmetic (milliseconds on a busy machine).
    return torch.cat([
        torch.multinomial(next_token_probs(row[None], temperature, top_k, top_p, alpha)[0],
                          1, generator=g)
        for row, g in zip(logits, generators)
    ])  # (B,)

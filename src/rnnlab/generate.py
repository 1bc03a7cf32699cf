"""Text generation: warm the state up on a prefix, then extend it one token at a time.

One loop serves every model, every prompt and every sample: all rows of a call run in one
batch from ``model.init_state(rows, device)``, so the generator never looks inside the
state. Rows are ordered prompt by prompt, ``row = prompt_index * num_samples + sample``.
Prompts of different lengths are warmed up together: each row reads its own prefix token
by token and starts to generate once its prefix is consumed. Sample ``s`` of every prompt
draws from its own ``torch.Generator`` seeded with ``seed + s``, so a batched call returns
exactly what each prompt gives alone, and sample 0 is what ``num_samples=1`` gives.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from .config import GenerateConfig
from .errors import ConfigError
from .models import Stateful
from .sampling import choose_tokens
from .vocab import Vocab

log = logging.getLogger(__name__)


class Piece(NamedTuple):
    """A piece of one row's text, in the order it was produced: first the prefix, then
    one piece per generated token. The pieces of a row join to its full text; ``final``
    marks its last piece."""

    row: int
    text: str
    final: bool = False


def encode_prefix(vocab: Vocab, prefix: str, unknown: str = "unk") -> list[int]:
    """The ids the model reads for ``prefix``. Tokens outside the vocabulary are read as
    ``<unk>`` (``unknown="unk"``), dropped (``"skip"``) or refused (``"error"``)."""
    tokens = vocab.tokenize(prefix)
    missing = vocab.unknown(prefix)
    if missing:
        kind = "words" if vocab.token_type == "word" else "characters"
        shown = ", ".join(repr(t) for t in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        if unknown == "error":
            raise ConfigError(
                f"prefix {kind} not in the vocabulary: {shown}{more}; pass --unknown unk to "
                f"read them as <unk> or --unknown skip to drop them"
            )
        if unknown == "skip":
            tokens = [t for t in tokens if t in vocab]
        else:
            log.warning("prefix %s not in the vocabulary, read as <unk>: %s%s", kind, shown, more)
    if not tokens:
        raise ConfigError("the prefix is empty; pass at least one known character with --prefix")
    return vocab.encode(tokens)


class _StopWatch:
    """Finds the stop string in what a row generates, including an occurrence that begins
    in the prefix and ends in the generated text (not one wholly inside the prefix)."""

    def __init__(self, stop: str | None, prefix: str) -> None:
        self.stop = stop
        self.window = self._tail(prefix)

    def _tail(self, text: str) -> str:
        keep = len(self.stop) - 1 if self.stop else 0
        return text[-keep:] if keep else ""

    def add(self, piece: str) -> tuple[str, bool]:
        """The piece, cut just after the stop string if it completes it, and whether it did."""
        if self.stop is None:
            return piece, False
        before = len(self.window)
        self.window += piece
        found = self.window.find(self.stop, max(0, before - len(self.stop) + 1))
        if found < 0:
            self.window = self._tail(self.window)
            return piece, False
        excess = len(self.window) - (found + len(self.stop))
        return piece[: len(piece) - excess], True


def _config(config: GenerateConfig | None, overrides: dict[str, Any]) -> GenerateConfig:
    config = config or GenerateConfig()
    try:
        return dataclasses.replace(config, **overrides)
    except TypeError as exc:
        raise ConfigError(f"unknown generation setting: {exc}") from None


def stream_batch(
    model: nn.Module,
    vocab: Vocab,
    prompts: str | Sequence[str],
    config: GenerateConfig | None = None,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> Iterator[Piece]:
    """Generate ``num_samples`` texts for each prompt in one batch, yielding ``Piece``s as
    they are produced. ``overrides`` replace fields of ``config`` (``temperature=0.8``).

    Settings and prompts are checked here, before the first piece is asked for.
    """
    cfg = _config(config, overrides)
    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not texts:
        raise ConfigError("no prompt given; pass at least one --prefix")
    ids = [encode_prefix(vocab, text, cfg.unknown) for text in texts]
    if device is None:
        device = next(model.parameters()).device
    return _generate_rows(model, vocab, texts, ids, cfg, torch.device(device))


def _generate_rows(
    model: nn.Module,
    vocab: Vocab,
    texts: list[str],
    ids: list[list[int]],
    cfg: GenerateConfig,
    device: torch.device,
) -> Iterator[Piece]:
    n = cfg.num_samples
    rows = [row_ids for row_ids in ids for _ in range(n)]
    prefixes = [text for text in texts for _ in range(n)]
    generators = [
        torch.Generator(device=device).manual_seed(cfg.seed + s) for _ in ids for s in range(n)
    ]
    for r, text in enumerate(prefixes):
        yield Piece(r, text, final=cfg.num_preds == 0)
    if cfg.num_preds == 0:
        return
    sep = " " if vocab.token_type == "word" else ""
    choose = partial(choose_tokens, temperature=cfg.temperature, top_k=cfg.top_k,
                     top_p=cfg.top_p, alpha=cfg.alpha)
    lengths = [len(row) for row in rows]
    longest = max(lengths)
    stops = [_StopWatch(cfg.stop, text) for text in prefixes]
    produced = [0] * len(rows)
    active = [True] * len(rows)
    was_training = model.training
    model.eval()
    try:
        state = cast(Stateful, model).init_state(len(rows), device)
        pos = min(lengths) - 1  # position, in every row, of the token fed next
        if pos > 0:
            # Every row is still inside its prefix here, so one call warms them all up.
            warm = torch.tensor([row[:pos] for row in rows], device=device)  # (B, pos)
            with torch.no_grad():
                _, state = model(warm, state)
        feed = torch.tensor([[row[pos]] for row in rows], device=device)  # (B, 1)
        while any(active):
            # no_grad around the call only: a with-block spanning a yield would leak it.
            with torch.no_grad():
                logits, state = model(feed, state)  # (B, 1, V)
            pos += 1
            if pos >= longest and all(active):  # the common case, kept lean
                chosen = choose(logits[:, -1], generators)  # (B,)
                feed = chosen.unsqueeze(1)  # (B, 1)
                sampling: Sequence[int] = range(len(rows))
            else:
                # Rows still reading their prefix are fed it; finished rows are fed anything.
                nxt = [row[pos] if pos < len(row) else 0 for row in rows]
                sampling = [r for r in range(len(rows)) if active[r] and pos >= lengths[r]]
                chosen = choose(
                    logits[torch.tensor(sampling, dtype=torch.long, device=device), -1],
                    [generators[r] for r in sampling],
                ) if sampling else torch.empty(0, dtype=torch.long)  # (S,)
                for r, token in zip(sampling, chosen.tolist()):
                    nxt[r] = token
                feed = torch.tensor(nxt, device=device).unsqueeze(1)  # (B, 1)
            for r, token in zip(sampling, chosen.tolist()):
                produced[r] += 1
                piece, stopped = stops[r].add(sep + vocab.idx_to_token[token])
                if stopped or produced[r] == cfg.num_preds:
                    active[r] = False
                yield Piece(r, piece, final=not active[r])
    finally:
        model.train(was_training)


def generate(
    model: nn.Module,
    vocab: Vocab,
    prompts: str | Sequence[str],
    config: GenerateConfig | None = None,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> list[str]:
    """``num_samples`` texts for each prompt, each its prefix followed by up to
    ``num_preds`` tokens (fewer when the stop string ends it), in row order."""
    pieces = stream_batch(model, vocab, prompts, config, device, **overrides)
    rows: dict[int, list[str]] = {}
    for piece in pieces:
        rows.setdefault(piece.row, []).append(piece.text)
    return ["".join(rows[r]) for r in range(len(rows))]


def stream(
    model: nn.Module,
    vocab: Vocab,
    prompt: str,
    config: GenerateConfig | None = None,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> Iterator[str]:
    """One text, as it is produced: the prefix first, then one piece per token."""
    cfg = _config(config, overrides)
    if cfg.num_samples != 1:
        raise ConfigError("stream gives one sample; use stream_batch for several")
    return (piece.text for piece in stream_batch(model, vocab, prompt, cfg, device))


def predict(
    model: nn.Module,
    vocab: Vocab,
    prefix: str,
    num_preds: int = 50,
    device: torch.device | str | None = None,
) -> str:
    """Greedy generation as the book's ``predict_ch8``: ``prefix`` followed by ``num_preds``
    tokens. Prefix tokens missing from the vocabulary are read as ``<unk>``."""
    return generate(model, vocab, prefix, GenerateConfig(num_preds=num_preds), device)[0]

"""Minibatches of ``(batch_size, seq_len)`` token ids, a whole epoch at a time.

Each epoch is built with a handful of tensor ops on the device that holds the token stream,
so the training loop only indexes ready tensors: no Python per sample, no host transfers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import CorpusError


@dataclass(frozen=True)
class Epoch:
    """One epoch of minibatches.

    ``inputs`` and ``labels``: (num_batches, batch_size, seq_len), token ids; labels are the
    inputs shifted by one position in the token stream. ``offset`` is where the epoch starts.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    offset: int

    def __len__(self) -> int:
        return self.inputs.shape[0]


def min_tokens(batch_size: int, seq_len: int) -> int:
    """The shortest stream that yields one minibatch whatever the random offset."""
    return (batch_size + 1) * seq_len


def check_length(num_tokens: int, batch_size: int, seq_len: int) -> None:
    need = min_tokens(batch_size, seq_len)
    if num_tokens < need:
        raise CorpusError(
            f"the corpus has {num_tokens} tokens, shorter than one minibatch: batch-size "
            f"{batch_size} and seq-len {seq_len} need at least {need}; use a longer text, "
            f"a larger --max-tokens, or a smaller --batch-size or --seq-len"
        )


def _offset(seq_len: int, generator: torch.Generator) -> int:
    return int(torch.randint(seq_len, (1,), generator=generator).item())


def sequential_epoch(
    ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> Epoch:
    """Sequential partitioning from a random offset in ``[0, seq_len)`` (the book's
    ``seq_data_iter_sequential``): row ``b`` of batch ``i + 1`` continues the text exactly
    where row ``b`` of batch ``i`` stopped, so a hidden state can be carried across batches."""
    check_length(len(ids), batch_size, seq_len)
    offset = _offset(seq_len, generator)
    num_tokens = (len(ids) - offset - 1) // batch_size * batch_size
    xs = ids[offset : offset + num_tokens].view(batch_size, -1)  # (B, L)
    ys = ids[offset + 1 : offset + 1 + num_tokens].view(batch_size, -1)
    num_batches = xs.shape[1] // seq_len
    span = num_batches * seq_len

    def cut(t: torch.Tensor) -> torch.Tensor:
        # (B, nb * T) -> (nb, B, T)
        return t[:, :span].reshape(batch_size, num_batches, seq_len).transpose(0, 1).contiguous()

    return Epoch(cut(xs), cut(ys), offset)


def random_epoch(
    ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> Epoch:
    """Random sampling (the book's ``seq_data_iter_random``): non-overlapping subsequences
    from a random offset, in shuffled order; neighbouring batches are not adjacent in text."""
    check_length(len(ids), batch_size, seq_len)
    offset = _offset(seq_len, generator)
    num_subseqs = (len(ids) - offset - 1) // seq_len
    num_batches = num_subseqs // batch_size
    order = torch.randperm(num_subseqs, generator=generator)[: num_batches * batch_size]
    starts = (offset + order * seq_len).to(ids.device).view(num_batches, batch_size, 1)
    positions = starts + torch.arange(seq_len, device=ids.device)  # (nb, B, T)
    return Epoch(ids[positions], ids[positions + 1], offset)


def make_epoch(
    ids: torch.Tensor,
    batch_size: int,
    seq_len: int,
    generator: torch.Generator,
    random_iter: bool = False,
) -> Epoch:
    build = random_epoch if random_iter else sequential_epoch
    return build(ids, batch_size, seq_len, generator)

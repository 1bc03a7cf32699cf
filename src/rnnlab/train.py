"""One training loop for every model: SGD, gradient clipping, truncated BPTT.

The loop knows nothing of files or plots: it reports each epoch to callbacks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .batches import Epoch, make_epoch
from .errors import ConfigError, TrainingDiverged
from .models import State, detach_state


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    loss: float  # mean cross-entropy per token, nats
    perplexity: float  # exp(loss)
    tokens_per_s: float
    seconds: float


Callback = Callable[[EpochStats], None]


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU. Asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but CUDA is not available; use --device cpu")
    return device


def clip_gradients(params: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """The book's ``grad_clipping``: when the global L2 norm of all gradients exceeds
    ``max_norm``, scale them all by ``max_norm / norm``. Stays on the device (no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / norm, max=1.0))
    return norm


def train_epoch(
    model: nn.Module,
    epoch: Epoch,
    optimizer: torch.optim.Optimizer,
    clip: float | None,
    random_iter: bool,
) -> torch.Tensor:
    """One pass over ``epoch``; returns the summed per-batch mean loss as a device tensor."""
    params = [p for p in model.parameters() if p.requires_grad]
    device = epoch.inputs.device
    batch_size = epoch.inputs.shape[1]
    total = torch.zeros((), device=device)
    state: State | None = None
    for x, y in zip(epoch.inputs, epoch.labels):  # x, y: (B, T)
        # Sequential batches continue the previous rows, so the state carries over, but
        # detached: gradients stop at the batch boundary. Random batches are unrelated
        # text, so each starts from a fresh state.
        if state is None or random_iter:
            state = model.init_state(batch_size, device)
        else:
            state = detach_state(state)
        logits, state = model(x, state)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            clip_gradients(params, clip)
        optimizer.step()
        total += loss.detach()
    return total


def train(
    model: nn.Module,
    ids: torch.Tensor,
    *,
    batch_size: int = 32,
    seq_len: int = 35,
    epochs: int = 500,
    lr: float = 1.0,
    clip: float | None = 1.0,
    random_iter: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    callbacks: Sequence[Callback] = (),
) -> list[EpochStats]:
    """Train ``model`` on the token stream ``ids`` (1-D int64) and return one
    ``EpochStats`` per epoch. Each callback sees every epoch's stats as it ends."""
    device = torch.device(device)
    model.to(device)
    model.train()
    ids = ids.to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, foreach=True)
    history: list[EpochStats] = []
    for epoch_no in range(1, epochs + 1):
        start = time.perf_counter()
        epoch = make_epoch(ids, batch_size, seq_len, generator, random_iter)
        total = train_epoch(model, epoch, optimizer, clip, random_iter)
        loss = total.item() / len(epoch)  # the epoch's one host sync
        seconds = time.perf_counter() - start
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {loss} in epoch {epoch_no}; lower --lr or set --clip"
            )
        stats = EpochStats(
            epoch_no, loss, math.exp(loss), epoch.inputs.numel() / seconds, seconds
        )
        history.append(stats)
        for callback in callbacks:
            callback(stats)
    return history

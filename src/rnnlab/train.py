"""One training loop for every model: an optimizer (SGD by default), gradient clipping,
truncated backpropagation through time.

The loop knows nothing of files or plots: it reports each epoch to callbacks. Its whole
position (epoch, batch, carried hidden state, random generators, optimizer and scheduler)
is exposed through ``state_dict`` so a run can stop anywhere and resume bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .batches import Epoch, make_epoch
from .errors import ConfigError, TrainingDiverged
from .memory import retain_freed_memory
from .models import State, Stateful, detach_state


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    loss: float  # mean training loss per batch: cross-entropy per token (nats) by default
    perplexity: float  # exp(loss)
    tokens_per_s: float
    seconds: float
    lr: float | None = None  # learning rate used in this epoch
    val_loss: float | None = None  # held-out loss when validation ran this epoch
    val_perplexity: float | None = None


Callback = Callable[[EpochStats], None]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs, labels) -> scalar


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per token: logits (B, T, V), labels (B, T) token ids."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
Validator = Callable[[nn.Module], float]  # returns a held-out mean loss in nats


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


class Trainer:
    """Trains ``model`` on the token stream ``ids`` (1-D int64) for ``epochs`` epochs.

    ``fit()`` runs until the end, until ``max_steps`` more batches, or until
    ``request_stop()`` is called (it finishes the current batch first).
    """

    def __init__(
        self,
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
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        validate: Validator | None = None,
        eval_every: int = 1,
        callbacks: Sequence[Callback] = (),
        loss: Loss = token_cross_entropy,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.ids = ids.to(self.device)
        self.batch_size, self.seq_len, self.epochs = batch_size, seq_len, epochs
        self.clip, self.random_iter = clip, random_iter
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optimizer or torch.optim.SGD(self.params, lr=lr, foreach=True)
        self.scheduler = scheduler  # stepped once per epoch; plateau schedulers get the loss
        self.validate, self.eval_every = validate, eval_every
        self.callbacks = list(callbacks)
        self.loss = loss
        self.generator = torch.Generator().manual_seed(seed)
        self.history: list[EpochStats] = []
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches completed in the current epoch
        self.step = 0  # batches completed in the whole run
        self.state: State | None = None  # hidden state carried between sequential batches
        self._epoch_data: Epoch | None = None
        self._epoch_rng: torch.Tensor | None = None  # generator state that rebuilds it
        self._losses: torch.Tensor | None = None  # per-batch losses of the current epoch
        self._seconds = 0.0  # time spent in the current epoch so far
        self._stop = False

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def request_stop(self) -> None:
        self._stop = True

    def _begin_epoch(self) -> Epoch:
        if self._epoch_data is None:
            self._epoch_rng = self.generator.get_state()
            self._epoch_data = make_epoch(
                self.ids, self.batch_size, self.seq_len, self.generator, self.random_iter
            )
            self._losses = torch.zeros(len(self._epoch_data), device=self.device)
            self.batch, self.state, self._seconds = 0, None, 0.0
        return self._epoch_data

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Sequential batches continue the previous rows, so the state carries over, but
        # detached: gradients stop at the batch boundary. Random batches are unrelated
        # text, so each starts from a fresh state.
        if self.state is None or self.random_iter:
            state = cast(Stateful, self.model).init_state(self.batch_size, self.device)
        else:
            state = detach_state(self.state)
        logits, self.state = self.model(x, state)  # (B, T, V)
        loss = self.loss(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            clip_gradients(self.params, self.clip)
        self.optimizer.step()
        return loss.detach()

    def _check_finite(self) -> None:
        assert self._losses is not None
        bad = (~torch.isfinite(self._losses[: self.batch])).nonzero()
        if len(bad):
            step = int(bad[0])
            value = float(self._losses[step])
            raise TrainingDiverged(
                f"the loss became {value} in epoch {self.epoch + 1}, step {step + 1}; "
                f"lower --lr or clip gradients with --clip (the last good checkpoint is kept)"
            )

    def _end_epoch(self, epoch: Epoch) -> EpochStats:
        assert self._losses is not None
        self._check_finite()  # the epoch's one host sync
        loss = float(self._losses.mean())
        lr = float(self.optimizer.param_groups[0]["lr"])
        val_loss = None
        if self.validate is not None and (self.epoch + 1) % self.eval_every == 0:
            val_loss = self.validate(self.model)
            self.model.train()
        if self.scheduler is not None:
            metric = val_loss if val_loss is not None else loss
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                # With a validator, only validation losses are compared: a training loss
                # from an epoch between evaluations would look like an improvement.
                if val_loss is not None or self.validate is None:
                    self.scheduler.step(metric)
            else:
                self.scheduler.step()
        self.epoch += 1
        stats = EpochStats(
            self.epoch,
            loss,
            math.exp(min(loss, 700.0)),
            epoch.inputs.numel() / self._seconds,
            self._seconds,
            lr,
            val_loss,
            None if val_loss is None else math.exp(min(val_loss, 700.0)),
        )
        self.history.append(stats)
        self._epoch_data, self._losses, self.batch = None, None, 0
        return stats

    def fit(self, max_steps: int | None = None) -> list[EpochStats]:
        """Train to the end (or for ``max_steps`` batches, or until a stop is requested)."""
        if self.device.type == "cpu":
            retain_freed_memory()  # each step's buffers are reused, not faulted in anew
        self.model.train()
        self._stop = False
        budget = math.inf if max_steps is None else max_steps
        while not self.done and budget > 0 and not self._stop:
            start = time.perf_counter()
            epoch = self._begin_epoch()
            assert self._losses is not None
            while self.batch < len(epoch) and budget > 0 and not self._stop:
                i = self.batch
                self._losses[i] = self._train_batch(epoch.inputs[i], epoch.labels[i])
                self.batch += 1
                self.step += 1
                budget -= 1
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self._seconds += time.perf_counter() - start
            if self.batch == len(epoch):
                stats = self._end_epoch(epoch)
                for callback in self.callbacks:
                    callback(stats)
            else:
                self._check_finite()
        return self.history

    def state_dict(self) -> dict[str, Any]:
        """Everything but the model weights needed to continue exactly: tensors and plain
        Python values only."""
        state = None if self.state is None else detach_state(self.state)
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "seconds": self._seconds,
            "generator": self.generator.get_state(),
            "epoch_generator": self._epoch_rng if self._epoch_data is not None else None,
            "losses": None if self._losses is None else self._losses[: self.batch].cpu(),
            "hidden": None if state is None else (state if torch.is_tensor(state) else tuple(state)),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "history": [dict(vars(s)) for s in self.history],
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.epoch, self.batch, self.step = int(sd["epoch"]), int(sd["batch"]), int(sd["step"])
        self.history = [EpochStats(**h) for h in sd["history"]]
        self.optimizer.load_state_dict(sd["optimizer"])
        if self.scheduler is not None and sd["scheduler"] is not None:
            self.scheduler.load_state_dict(sd["scheduler"])
        torch.set_rng_state(sd["torch_rng"])
        if sd["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(sd["cuda_rng"]))
        self._epoch_data = self._losses = None
        self.state = None
        if sd["epoch_generator"] is not None:
            # Rebuild the interrupted epoch from the generator state that made it.
            self.generator.set_state(sd["epoch_generator"])
            batch = self.batch
            epoch = self._begin_epoch()
            self.batch, self._seconds = batch, float(sd["seconds"])
            assert self._losses is not None
            self._losses[:batch] = sd["losses"].to(self.device)
            hidden = sd["hidden"]
            if hidden is not None:
                self.state = (
                    hidden.to(self.device)
                    if torch.is_tensor(hidden)
                    else tuple(h.to(self.device) for h in hidden)
                )
            assert len(epoch) > batch
        self.generator.set_state(sd["generator"])


def train(model: nn.Module, ids: torch.Tensor, **options: Any) -> list[EpochStats]:
    """Train ``model`` on the token stream ``ids`` (1-D int64) to the end and return one
    ``EpochStats`` per epoch. ``options`` are ``Trainer``'s keywords: ``batch_size``,
    ``seq_len``, ``epochs``, ``lr``, ``clip``, ``random_iter``, ``seed``, ``device``,
    ``optimizer``, ``scheduler``, ``validate``, ``eval_every``, ``callbacks``, ``loss``."""
    return Trainer(model, ids, **options).fit()

"""Optimizers and learning-rate schedules by name, built from a ``TrainConfig``.

Everything here is ``torch.optim``; this module only maps config names onto it, so the
trainer holds a plain optimizer and scheduler and never asks which one it has.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .config import OPTIMIZERS, SCHEDULES, TrainConfig
from .errors import ConfigError


def build_optimizer(config: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """``sgd`` (the book), ``adam``, ``adamw`` or ``rmsprop`` (char-rnn) at ``config.lr``.

    ``weight_decay`` goes to every optimizer (decoupled for ``adamw``, an L2 term for the
    others); ``momentum`` to the two that have one, ``sgd`` and ``rmsprop``.
    """
    params = [p for p in params if p.requires_grad]
    lr, wd, momentum = config.lr, config.weight_decay, config.momentum
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd, foreach=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, foreach=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, foreach=True)
    if config.optimizer == "rmsprop":
        # char-rnn's RMSprop: decay 0.95 of the squared-gradient average, eps 1e-8.
        return torch.optim.RMSprop(
            params, lr=lr, alpha=0.95, eps=1e-8, momentum=momentum, weight_decay=wd, foreach=True
        )
    raise ConfigError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")


class StepAfter:
    """The lr factor of the step schedule after ``k`` finished epochs: multiplied by
    ``gamma`` at the end of epoch ``first``, then every ``step_size`` epochs.

    With ``first == step_size`` this is ``torch.optim.lr_scheduler.StepLR``. A class rather
    than a lambda so the scheduler's state dict stays plain data.
    """

    def __init__(self, first: int, step_size: int, gamma: float) -> None:
        self.first, self.step_size, self.gamma = first, step_size, gamma

    def __call__(self, k: int) -> float:
        decays = 0 if k < self.first else (k - self.first) // self.step_size + 1
        return float(self.gamma**decays)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    """A scheduler stepped once per epoch, or None for a constant rate.

    ``step``: lr times ``gamma`` every ``step_size`` epochs, the first time after
    ``decay_after`` epochs (0: after ``step_size``). ``cosine``: from lr down to ``min_lr``
    over ``epochs``. ``plateau``: lr times ``gamma`` when the validation loss (the training
    loss without a validation split) has not improved for ``patience`` evaluations.
    """
    if config.schedule == "constant":
        return None
    if config.schedule == "step":
        first = config.decay_after or config.step_size
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, StepAfter(first, config.step_size, config.gamma)
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs, eta_min=config.min_lr
        )
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.gamma, patience=config.patience, min_lr=config.min_lr
        )
    raise ConfigError(f"unknown schedule {config.schedule!r}; choose one of {', '.join(SCHEDULES)}")

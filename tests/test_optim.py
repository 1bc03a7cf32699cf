import importlib
import math

import pytest
import torch

from rnnlab.config import OPTIMIZERS, TrainConfig
from rnnlab.errors import ConfigError
from rnnlab.models import build_model
from rnnlab.optim import build_optimizer, build_scheduler
from rnnlab.train import train
from rnnlab.vocab import Vocab

from .common import TINY_TEXT

train_module = importlib.import_module("rnnlab.train")  # the package re-exports train()

LR = {"sgd": 1.0, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01}
TORCH_CLASS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


def tiny():
    vocab = Vocab(TINY_TEXT)
    ids = torch.tensor(vocab.encode(TINY_TEXT * 3))
    return build_model("rnn", len(vocab), hidden_size=16), ids


def run(config: TrainConfig, validate=None, eval_every=1):
    model, ids = tiny()
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer, config.epochs)
    history = train(
        model, ids, batch_size=4, seq_len=8, epochs=config.epochs, clip=config.clip,
        optimizer=optimizer, scheduler=scheduler, validate=validate, eval_every=eval_every,
    )
    return history, optimizer


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains_through_the_same_loop(name):
    momentum = 0.5 if name in ("sgd", "rmsprop") else 0.0
    config = TrainConfig(optimizer=name, lr=LR[name], epochs=15, weight_decay=1e-4,
                         momentum=momentum)
    history, optimizer = run(config)
    assert type(optimizer) is TORCH_CLASS[name]
    group = optimizer.param_groups[0]
    assert group["lr"] == LR[name] and group["weight_decay"] == 1e-4
    if "momentum" in group:
        assert group["momentum"] == momentum
    assert history[-1].perplexity < history[0].perplexity * 0.7
    assert all(s.lr == LR[name] for s in history)  # constant schedule


def reference_lrs(make, epochs, lr=1.0, metrics=None):
    """The lr of each epoch as torch's own scheduler gives it on a throwaway optimizer."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make(opt)
    lrs = []
    for epoch in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(*([] if metrics is None else [metrics[epoch]]))
    return lrs


def test_step_schedule_is_torch_step_lr():
    history, _ = run(TrainConfig(schedule="step", step_size=2, gamma=0.5, epochs=7))
    expected = reference_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5), 7)
    assert [s.lr for s in history] == pytest.approx(expected)
    assert expected[-1] == 0.125  # the comparison is not vacuous


def test_step_schedule_waits_decay_after_epochs():
    # First decay at the end of epoch 3, then every 2 epochs: char-rnn's "decay after".
    history, _ = run(TrainConfig(schedule="step", step_size=2, decay_after=3, gamma=0.5, epochs=8))
    assert [s.lr for s in history] == pytest.approx([1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125])


def test_cosine_schedule_is_torch_cosine():
    history, _ = run(TrainConfig(schedule="cosine", min_lr=0.1, epochs=6))
    expected = reference_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.1), 6
    )
    assert [s.lr for s in history] == pytest.approx(expected)
    assert expected[0] == 1.0 and expected[-1] < 0.2


def test_plateau_schedule_follows_the_validation_loss():
    losses = [3.0, 2.0, 2.5, 2.6, 2.7, 1.0, 1.5, 1.6, 1.7]
    feed = iter(losses)
    history, _ = run(TrainConfig(schedule="plateau", gamma=0.5, patience=1, epochs=9),
                     validate=lambda model: next(feed))
    assert [s.val_loss for s in history] == losses
    expected = reference_lrs(
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1),
        9, metrics=losses,
    )
    assert [s.lr for s in history] == pytest.approx(expected)
    assert min(expected) < 1.0


def test_plateau_between_evaluations_compares_validation_losses_only():
    # Evaluated every 2 epochs; the training losses of the other epochs are not compared.
    losses = iter([2.0, 2.1, 2.2, 2.3])
    history, _ = run(TrainConfig(schedule="plateau", gamma=0.5, patience=1, epochs=8),
                     validate=lambda model: next(losses), eval_every=2)
    assert [s.val_loss is not None for s in history] == [False, True] * 4
    expected = reference_lrs(
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1),
        4, metrics=[2.0, 2.1, 2.2, 2.3],
    )
    assert [s.lr for s in history][1::2] == pytest.approx(expected)


def test_plateau_without_validation_uses_the_training_loss():
    config = TrainConfig(schedule="plateau", gamma=0.5, patience=0, epochs=6, lr=50.0)
    history, _ = run(config)
    expected = reference_lrs(
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=0),
        6, lr=50.0, metrics=[s.loss for s in history],
    )
    assert [s.lr for s in history] == pytest.approx(expected)


@pytest.mark.parametrize("clip, calls", [(1.0, True), (0, False), (None, False)])
def test_clipping_can_be_turned_off(monkeypatch, clip, calls):
    seen = []
    real = train_module.clip_gradients
    monkeypatch.setattr(train_module, "clip_gradients",
                        lambda params, theta: seen.append(theta) or real(params, theta))
    config = TrainConfig(clip=clip, epochs=1)
    assert config.clip == (1.0 if calls else None)
    run(config)
    assert bool(seen) == calls and all(theta == 1.0 for theta in seen)


def test_unclipped_steps_differ_from_clipped_ones():
    torch.manual_seed(0)
    history_off, _ = run(TrainConfig(clip=None, epochs=2, lr=5.0))
    torch.manual_seed(0)
    history_on, _ = run(TrainConfig(clip=0.01, epochs=2, lr=5.0))
    assert not math.isclose(history_off[-1].loss, history_on[-1].loss)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum applies"),
        ({"gamma": 1.5}, "gamma"),
        ({"eval_every": 0}, "eval-every"),
        ({"weight_decay": -1}, "weight-decay"),
    ],
)
def test_bad_training_options_are_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**fields)

"""Exercise 3 of section 8.6: the autoregressive model of section 8.1 against an RNN.

The book's series ``x_t = sin(0.01 t) + N(0, 0.2^2)`` for t = 1..1000, tau = 4, the first
600 points for training. Both models follow the library's model interface on real-valued
sequences: ``init_state(batch_size, device)`` and ``forward(x (B, T), state) -> (y (B, T),
state)`` where ``y[:, t]`` predicts ``x[:, t + 1]``. The book's MLP becomes a sequence model
whose state is its window of the last tau values, so the library's trainer trains both
(random sampling of subsequences, a mean-squared-error loss, Adam), and one rollout makes
their k-step predictions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models import State, Stateful
from ..train import train
from .common import Report, markdown_table, pyplot, save_figure, settings_table

K_SHOWN = (1, 4, 16, 64)  # the book's figure
log = logging.getLogger(__name__)


@dataclass
class AutoregressiveConfig:
    num_points: int = field(default=1000, metadata={"help": "length T of the series"})
    noise: float = field(default=0.2, metadata={"help": "standard deviation of the noise"})
    tau: int = field(default=4, metadata={"help": "observations each prediction starts from"})
    num_train: int = field(default=600, metadata={"help": "leading points used for training"})
    epochs: int = field(default=20, metadata={"help": "passes over the training points"})
    batch_size: int = field(default=2, metadata={"help": "subsequences per minibatch"})
    seq_len: int = field(
        default=16, metadata={"help": "subsequence length; seq-len - tau + 1 targets each"}
    )
    lr: float = field(default=0.01, metadata={"help": "Adam learning rate"})
    mlp_hidden_size: int = field(default=10, metadata={"help": "hidden units of the MLP"})
    rnn_hidden_size: int = field(default=16, metadata={"help": "hidden units of the RNN"})
    cell: str = field(default="gru", metadata={"help": "RNN cell: rnn, gru or lstm"})
    max_k: int = field(default=64, metadata={"help": "longest k-step-ahead prediction"})
    long_context: int = field(
        default=32, metadata={"help": "also score the RNN given this many observations; 0: skip"}
    )
    seed: int = field(default=0, metadata={"help": "seed for noise, weights and batches"})

    def __post_init__(self) -> None:
        for name in ("num_points", "tau", "num_train", "epochs", "batch_size", "seq_len",
                     "lr", "mlp_hidden_size", "rnn_hidden_size", "max_k"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        if self.cell not in ("rnn", "gru", "lstm"):
            raise ConfigError(f"cell must be rnn, gru or lstm, got {self.cell!r}")
        if self.seq_len < self.tau:
            raise ConfigError("seq-len must be at least tau so each subsequence has a target")
        if not max(self.tau, self.long_context) + self.max_k < self.num_train < self.num_points:
            raise ConfigError("need tau + max-k < num-train < num-points (and long-context)")
        if self.long_context < 0:
            raise ConfigError("long-context must be zero or more")


def make_series(num_points: int, noise: float, seed: int) -> torch.Tensor:
    """The book's ``x_t = sin(0.01 t) + noise`` for t = 1..num_points, float32 (T,)."""
    generator = torch.Generator().manual_seed(seed)
    time = torch.arange(1, num_points + 1, dtype=torch.float32)
    return torch.sin(0.01 * time) + noise * torch.randn(num_points, generator=generator)


class WindowMLP(nn.Module):
    """The book's model: ``Linear(tau, 10), ReLU, Linear(10, 1)`` on the last tau values.

    As a sequence model its state is that window (B, tau), so it can be rolled out on its own
    predictions exactly like an RNN; the first tau - 1 outputs of a fresh state see zeros.
    """

    def __init__(self, tau: int = 4, hidden_size: int = 10) -> None:
        super().__init__()
        self.tau = tau
        self.net = nn.Sequential(nn.Linear(tau, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)  # as the book initialises it

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        return torch.zeros(batch_size, self.tau, device=device)  # (B, tau)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        assert isinstance(state, torch.Tensor)
        seq = torch.cat([state, x], 1)  # (B, tau + T)
        windows = seq.unfold(1, self.tau, 1)[:, 1:]  # (B, T, tau): window t ends at x[:, t]
        return self.net(windows).squeeze(-1), seq[:, -self.tau :]  # (B, T), (B, tau)


class RNNRegressor(nn.Module):
    """A latent autoregressive model: a framework RNN cell over the values, then a dense
    layer from each hidden state to the next value."""

    def __init__(self, hidden_size: int = 16, num_layers: int = 1, cell: str = "gru") -> None:
        super().__init__()
        self.cell = cell
        self.rnn = getattr(nn, cell.upper())(1, hidden_size, num_layers, batch_first=True)
        self.dense = nn.Linear(hidden_size, 1)

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        shape = (self.rnn.num_layers, batch_size, self.rnn.hidden_size)  # (L, B, H)
        h = torch.zeros(shape, device=device)
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hidden, state = self.rnn(x.unsqueeze(-1), state)  # (B, T, H)
        return self.dense(hidden).squeeze(-1), state  # (B, T)


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def windowed_mse(tau: int) -> Loss:
    """MSE over the positions that follow at least tau observations, the targets the
    book's (features, label) pairs hold; both models are scored on the same ones."""

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs[:, tau - 1 :], targets[:, tau - 1 :])

    return loss


def fit(
    model: nn.Module,
    series: torch.Tensor,
    loss_fn: Loss,
    *,
    epochs: int,
    batch_size: int,
    seq_len: int,
    lr: float,
    seed: int,
) -> list[float]:
    """Adam on random subsequences of ``series`` (1-D float), a fresh state for each,
    through the library's trainer with ``loss_fn`` in place of cross-entropy and no
    clipping; returns each epoch's mean loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    stats = train(
        model, series, batch_size=batch_size, seq_len=seq_len, epochs=epochs, clip=None,
        random_iter=True, seed=seed, optimizer=optimizer, loss=loss_fn,
    )
    history = [s.loss for s in stats]
    log.info("%s: training MSE %.4f after %d epochs", type(model).__name__, history[-1], epochs)
    return history


@torch.no_grad()
def rollout(model: nn.Module, windows: torch.Tensor, steps: int) -> torch.Tensor:
    """Predict ``steps`` values after each row of ``windows`` (N, tau) of observations,
    feeding each prediction back as the next input. Returns (steps, N)."""
    was_training = model.training
    model.eval()
    state = cast(Stateful, model).init_state(windows.shape[0], windows.device)
    outputs, state = model(windows, state)
    prediction = outputs[:, -1]  # (N,)
    predictions = [prediction]
    for _ in range(steps - 1):
        outputs, state = model(prediction.unsqueeze(1), state)
        prediction = outputs[:, -1]
        predictions.append(prediction)
    model.train(was_training)
    return torch.stack(predictions)  # (steps, N)


def k_step_predictions(
    model: nn.Module, series: torch.Tensor, tau: int, max_k: int
) -> torch.Tensor:
    """``out[k - 1, i]`` predicts ``series[i + tau + k - 1]`` from ``series[i : i + tau]``
    alone (the book's k-step-ahead prediction); NaN where that lies past the end. (max_k, N)"""
    windows = series.unfold(0, tau, 1)[: len(series) - tau]  # (N, tau)
    out = rollout(model, windows, max_k)
    n = windows.shape[0]
    for k in range(1, max_k + 1):
        out[k - 1, n - k + 1 :] = math.nan  # targets beyond the series
    return out


def k_step_mse(
    predictions: torch.Tensor, series: torch.Tensor, tau: int, first_target: int
) -> list[float]:
    """MSE of each k's predictions over the targets at index >= ``first_target``."""
    errors = []
    for k in range(1, predictions.shape[0] + 1):
        start = max(first_target - tau - k + 1, 0)
        end = len(series) - tau - k + 1
        targets = series[start + tau + k - 1 : end + tau + k - 1]
        errors.append(F.mse_loss(predictions[k - 1, start:end], targets).item())
    return errors


@dataclass
class Forecaster:
    """A trained model and how many observations it is given before it predicts."""

    model: nn.Module
    context: int
    predictions: torch.Tensor  # (max_k, N): k_step_predictions
    test_mse: list[float]  # k = 1..max_k, held-out targets


@dataclass
class AutoregressiveResult:
    test_mse: dict[str, list[float]]  # row name -> MSE for k = 1..max_k on held-out targets
    train_loss: dict[str, list[float]]  # model name -> loss per epoch
    report: Path
    seconds: float


def run(config: AutoregressiveConfig, out_dir: str | Path) -> AutoregressiveResult:
    """Train both models, predict, and write figures and ``report.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = config
    report = Report("Autoregressive model vs RNN on the book's noisy sine (section 8.1)")
    series = make_series(c.num_points, c.noise, c.seed)
    torch.manual_seed(c.seed)
    rnn_name = c.cell.upper()
    models: dict[str, nn.Module] = {
        "MLP (book)": WindowMLP(c.tau, c.mlp_hidden_size),
        rnn_name: RNNRegressor(c.rnn_hidden_size, cell=c.cell),
    }
    loss_fn = windowed_mse(c.tau)
    train_loss = {
        name: fit(model, series[: c.num_train], loss_fn, epochs=c.epochs,
                  batch_size=c.batch_size, seq_len=c.seq_len, lr=c.lr, seed=c.seed)
        for name, model in models.items()
    }
    rows = [(name, model, c.tau) for name, model in models.items()]
    if c.long_context:
        # The same trained RNN, warmed up on more of the past: a latent autoregressive
        # model is not limited to tau observations.
        rows.append((f"{rnn_name}, {c.long_context} observations", models[rnn_name],
                     c.long_context))
    forecasters = {}
    for name, model, context in rows:
        predictions = k_step_predictions(model, series, context, c.max_k)
        forecasters[name] = Forecaster(
            model, context, predictions, k_step_mse(predictions, series, context, c.num_train)
        )

    shown = [k for k in K_SHOWN if k <= c.max_k]
    table = [
        [name, f.context, sum(p.numel() for p in f.model.parameters())]
        + [f.test_mse[k - 1] for k in shown]
        for name, f in forecasters.items()
    ]
    header = ["model", "observations", "parameters"] + [f"k={k}" for k in shown]
    losses = ", ".join(f"{name} {loss[-1]:.4g}" for name, loss in train_loss.items())
    report.add(
        f"Both models are trained by the same loop on the same minibatches of the first "
        f"{c.num_train} points, and in the first two rows see the same {c.tau} observations "
        f"before each prediction. Held-out MSE of the k-step-ahead predictions (targets "
        f"after point {c.num_train}; the noise alone gives {c.noise ** 2:.3g}):\n\n"
        + markdown_table(header, table)
        + f"\n\nFinal training MSE: {losses}."
    )
    _plot_one_step(series, forecasters, c, out_dir)
    report.figure("one_step", "One-step-ahead predictions; training ends at the dashed line.")
    _plot_multistep(series, forecasters, c, out_dir)
    report.figure(
        "multistep",
        f"Predictions from point {c.num_train} on, each model feeding back its own output.",
    )
    _plot_k_step(series, forecasters, shown, c, out_dir)
    report.figure("k_step", "k-step-ahead predictions for k = " + ", ".join(map(str, shown)))
    _plot_mse(forecasters, c, out_dir)
    report.figure("mse_by_k", "Held-out MSE against the number of steps ahead k.")
    report.add("## Settings\n\n" + settings_table(c))
    seconds = report.seconds
    path = report.write(out_dir)
    test_mse = {name: f.test_mse for name, f in forecasters.items()}
    return AutoregressiveResult(test_mse, train_loss, path, seconds)


def _plot_one_step(series, forecasters, c, out_dir) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3), dpi=120)
    time = torch.arange(1, c.num_points + 1)
    ax.plot(time, series, color="0.7", lw=0.8, label="data")
    for name, f in forecasters.items():
        ax.plot(time[f.context :], f.predictions[0], lw=1, label=name)
    ax.axvline(c.num_train, color="k", ls="--", lw=0.8)
    ax.set(xlabel="time", ylabel="x", title="1-step-ahead predictions")
    ax.legend(fontsize=8)
    save_figure(fig, out_dir, "one_step")


def _plot_multistep(series, forecasters, c, out_dir) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3), dpi=120)
    time = torch.arange(1, c.num_points + 1)
    ax.plot(time, series, color="0.7", lw=0.8, label="data")
    for name, f in forecasters.items():
        window = series[c.num_train - f.context : c.num_train].unsqueeze(0)  # (1, context)
        future = rollout(f.model, window, c.num_points - c.num_train)[:, 0]
        ax.plot(time[c.num_train :], future, lw=1, label=f"{name}, own predictions")
    ax.axvline(c.num_train, color="k", ls="--", lw=0.8)
    ax.set(xlabel="time", ylabel="x", title="multistep predictions")
    ax.legend(fontsize=8)
    save_figure(fig, out_dir, "multistep")


def _plot_k_step(series, forecasters, shown, c, out_dir) -> None:
    plt = pyplot()
    n = len(forecasters)
    fig, axes = plt.subplots(1, n, figsize=(3.5 * n, 3), dpi=120, sharey=True, squeeze=False)
    for ax, (name, f) in zip(axes[0], forecasters.items()):
        ax.plot(torch.arange(1, c.num_points + 1), series, color="0.8", lw=0.8, label="data")
        for k in shown:
            p = f.predictions[k - 1]
            time = torch.arange(f.context + k, f.context + k + len(p))  # 1-based target time
            ax.plot(time, p, lw=0.9, label=f"{k}-step")
        ax.set(xlabel="time", ylim=(-2.0, 2.0))
        ax.set_title(name, fontsize=9)
    axes[0][0].set_ylabel("x")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, out_dir, "k_step")


def _plot_mse(forecasters, c, out_dir) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    for name, f in forecasters.items():
        ax.plot(range(1, len(f.test_mse) + 1), f.test_mse, label=name)
    ax.axhline(c.noise**2, color="0.5", ls=":", lw=0.8, label="noise variance")
    ax.set(xlabel="steps ahead k", ylabel="held-out MSE", xscale="log", yscale="log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out_dir, "mse_by_k")

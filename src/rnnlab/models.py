"""Language models behind one interface, and a registry to build them by name.

Every model is an ``nn.Module`` with

- ``init_state(batch_size, device)``: the zero state (the book's ``begin_state``);
- ``forward(tokens, state) -> (logits, state)``: tokens (B, T) int64, logits (B, T, V).

The state is a tensor or a tuple of tensors; only the model knows which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

State = Union[torch.Tensor, tuple[torch.Tensor, ...]]


class RNNModel(nn.Module):
    """The book's concise model: the framework's ``nn.RNN`` (tanh) on one-hot inputs,
    then a dense layer from hidden state to vocabulary logits."""

    def __init__(self, vocab_size: int, hidden_size: int = 256, num_layers: int = 1) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, hidden_size, num_layers, batch_first=True)
        self.dense = nn.Linear(hidden_size, vocab_size)

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        return torch.zeros(
            self.rnn.num_layers, batch_size, self.rnn.hidden_size, device=device
        )  # (L, B, H)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        x = F.one_hot(tokens, self.vocab_size).to(self.dense.weight.dtype)  # (B, T, V)
        hidden, state = self.rnn(x, state)  # (B, T, H), (L, B, H)
        return self.dense(hidden), state  # (B, T, V)


class RNNScratch(nn.Module):
    """The from-scratch RNN of section 8.5: ``H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)``,
    ``O_t = H_t W_hq + b_q``, with one-hot ``X_t``. Parameters are ``nn.Parameter``s, so the
    same optimizer, clipping and ``state_dict`` code serve it and ``RNNModel`` alike."""

    def __init__(
        self, vocab_size: int, hidden_size: int = 256, num_layers: int = 1, sigma: float = 0.01
    ) -> None:
        super().__init__()
        if num_layers != 1:
            raise ConfigError("the scratch RNN has one layer; use --model rnn for --num-layers > 1")
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.W_xh = nn.Parameter(torch.randn(vocab_size, hidden_size) * sigma)
        self.W_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) * sigma)
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hq = nn.Parameter(torch.randn(hidden_size, vocab_size) * sigma)
        self.b_q = nn.Parameter(torch.zeros(vocab_size))

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        return torch.zeros(batch_size, self.hidden_size, device=device)  # (B, H)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        assert isinstance(state, torch.Tensor)
        x = F.one_hot(tokens, self.vocab_size).to(self.W_xh.dtype)  # (B, T, V)
        h = state
        outputs = []
        for x_t in x.unbind(1):  # x_t: (B, V)
            h = torch.tanh(x_t @ self.W_xh + h @ self.W_hh + self.b_h)  # (B, H)
            outputs.append(h)
        hidden = torch.stack(outputs, 1)  # (B, T, H)
        return hidden @ self.W_hq + self.b_q, h

    @torch.no_grad()
    def copy_from(self, concise: RNNModel) -> RNNScratch:
        """Take a one-layer ``RNNModel``'s weights (the two framework biases add up to b_h)."""
        rnn = concise.rnn
        self.W_xh.copy_(rnn.weight_ih_l0.T)
        self.W_hh.copy_(rnn.weight_hh_l0.T)
        self.b_h.copy_(rnn.bias_ih_l0 + rnn.bias_hh_l0)
        self.W_hq.copy_(concise.dense.weight.T)
        self.b_q.copy_(concise.dense.bias)
        return self


ModelFactory = Callable[..., nn.Module]

MODELS: dict[str, ModelFactory] = {
    "rnn": RNNModel,
    "scratch": RNNScratch,
}


def build_model(name: str, vocab_size: int, hidden_size: int = 256, num_layers: int = 1) -> nn.Module:
    """A model from the registry by name."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](vocab_size, hidden_size=hidden_size, num_layers=num_layers)


def detach_state(state: State) -> State:
    """Cut the graph at the batch boundary, keeping the values (truncated BPTT)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    return tuple(s.detach() for s in state)

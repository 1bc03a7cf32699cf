"""Language models behind one interface, and a registry to build them by name.

Every model is an ``nn.Module`` with

- ``init_state(batch_size, device)``: the zero state (the book's ``begin_state``);
- ``forward(tokens, state) -> (logits, state)``: tokens (B, T) int64, logits (B, T, V).

The state is a tensor or a tuple of tensors; only the model knows which.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .fused import tanh_rnn, tanh_rnn_lookup

if TYPE_CHECKING:
    from .config import ModelConfig

State = torch.Tensor | tuple[torch.Tensor, ...]


class Stateful(Protocol):
    """What callers use of a model beyond ``nn.Module``: mypy reads any other attribute of
    a module as a tensor or submodule, so call sites cast to this to call ``init_state``."""

    def init_state(self, batch_size: int, device: torch.device | str) -> State: ...


class TiedLinear(nn.Module):
    """The output layer of a model with tied weights: ``logits = h E^T + b``, ``E`` the
    embedding matrix. The embedding is held outside the module tree so that the state dict
    stores the shared matrix once (safetensors refuses tensors that share memory)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self._embedding = [embedding]  # a list, so not registered as a submodule
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    @property
    def weight(self) -> torch.Tensor:
        return self._embedding[0].weight  # (V, H)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.weight, self.bias)


class RNNModel(nn.Module):
    """The book's concise model: a framework recurrent layer (``nn.RNN`` tanh by default,
    ``nn.GRU`` or ``nn.LSTM`` by ``cell``) on one-hot inputs, then a dense layer from hidden
    state to vocabulary logits.

    ``embed_size`` replaces the one-hot input by a learned embedding; ``tie_weights`` shares
    that embedding with the output layer (needs ``embed_size == hidden_size``). ``dropout``
    acts, as in char-rnn, on the input of every layer but the first and on the last layer's
    output. Parameters are ``rnn.*`` and ``dense.*`` (plus ``embedding.*``), the names the
    book's ``RNNModel`` uses.
    """

    CELLS = ("RNN", "GRU", "LSTM")

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        *,
        cell: str = "RNN",
        nonlinearity: str = "tanh",
        embed_size: int | None = None,
        dropout: float = 0.0,
        tie_weights: bool = False,
    ) -> None:
        super().__init__()
        if cell not in self.CELLS:
            raise ConfigError(f"unknown cell {cell!r}; choose one of {', '.join(self.CELLS)}")
        if tie_weights and embed_size != hidden_size:
            raise ConfigError(
                "tie-weights shares the embedding with the output layer, so it needs "
                f"--embed-size equal to --hidden-size ({hidden_size}), got {embed_size}"
            )
        self.vocab_size, self.cell = vocab_size, cell
        self.embedding = nn.Embedding(vocab_size, embed_size) if embed_size else None
        extra = {"nonlinearity": nonlinearity} if cell == "RNN" else {}
        self.rnn = getattr(nn, cell)(
            embed_size or vocab_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # the framework's is between layers
            **extra,
        )
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.dense: nn.Linear | TiedLinear
        if tie_weights:
            assert self.embedding is not None
            self.dense = TiedLinear(self.embedding)
        else:
            self.dense = nn.Linear(hidden_size, vocab_size)

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        h = torch.zeros(
            self.rnn.num_layers, batch_size, self.rnn.hidden_size,
            device=device, dtype=self.dense.bias.dtype,
        )  # (L, B, H)
        return (h, torch.zeros_like(h)) if self.cell == "LSTM" else h

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self._fused(tokens):
            return self._forward_fused(tokens, state)
        if self.embedding is not None:
            x = self.embedding(tokens)  # (B, T, E)
        else:
            x = F.one_hot(tokens, self.vocab_size).to(self.dense.weight.dtype)  # (B, T, V)
        hidden, state = self.rnn(x, state)  # (B, T, H), (L, B, H) or a pair of them
        return self.dense(self.drop(hidden)), state  # (B, T, V)

    def _fused(self, tokens: torch.Tensor) -> bool:
        # cuDNN's fused kernel beats the step loop on CUDA; elsewhere the tanh layer runs as
        # one autograd node (rnnlab.fused), which is faster than nn.RNN's CPU path
        return (
            self.cell == "RNN"
            and self.rnn.nonlinearity == "tanh"
            and not self.rnn.bidirectional
            and tokens.device.type != "cuda"
        )

    def _forward_fused(
        self, tokens: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        """The same layers as ``self.rnn``, time-major, with the one-hot product done as a row
        lookup of the input weight (``one_hot(x) W^T`` selects columns of ``W``)."""
        assert isinstance(state, torch.Tensor)
        rnn, time_major = self.rnn, tokens.t()  # (T, B)
        finals = []
        x = self.embedding(time_major) if self.embedding is not None else None  # (T, B, E)
        for layer in range(rnn.num_layers):
            w_ih = getattr(rnn, f"weight_ih_l{layer}")  # (H, in)
            bias = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
            w_hh = getattr(rnn, f"weight_hh_l{layer}")  # (H, H)
            if x is None:
                # bias folded into the (V, H) table: a contiguous gather, no (T, B, H) add,
                # done inside the recurrence's node
                x = tanh_rnn_lookup(time_major, w_ih.t() + bias, state[layer], w_hh)
            else:
                if layer > 0:  # nn.RNN's dropout sits between layers
                    x = F.dropout(x, rnn.dropout, self.training)
                x = tanh_rnn(F.linear(x, w_ih, bias), state[layer], w_hh)  # (T, B, H)
            finals.append(x[-1])
        # V is small, so the dense layer runs time-major and only the logits are transposed
        return self.dense(self.drop(x)).transpose(0, 1), torch.stack(finals)  # (B, T, V)


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
        # X_t W_xh with one-hot X_t is row X_t of W_xh: a lookup, then the fused step loop
        hidden = tanh_rnn_lookup(
            tokens.t(), self.W_xh + self.b_h, state, self.W_hh.t()
        )  # (T, B, H)
        # H W_hq + b_q as one fused product-and-bias, like the concise model's dense layer
        return F.linear(hidden, self.W_hq.T, self.b_q).transpose(0, 1), hidden[-1]  # (B, T, V)

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


def _normal(*shape: int, sigma: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * sigma)


def _one_hot_layer_check(name: str, num_layers: int) -> None:
    if num_layers != 1:
        raise ConfigError(
            f"the scratch {name} has one layer; use --model {name.lower()} for --num-layers > 1"
        )


class GRUScratch(nn.Module):
    """The from-scratch GRU of section 9.1 with one-hot ``X_t``:

    ``Z_t = sigmoid(X_t W_xz + H_{t-1} W_hz + b_z)``, ``R_t`` likewise with ``W_xr, W_hr, b_r``,
    ``H~_t = tanh(X_t W_xh + b_xh + R_t * (H_{t-1} W_hh + b_hh))``,
    ``H_t = Z_t * H_{t-1} + (1 - Z_t) * H~_t``, ``O_t = H_t W_hq + b_q``.

    The reset gate multiplies ``H_{t-1} W_hh + b_hh`` rather than ``H_{t-1}`` as in the
    book's equation (9.1.3): that is the cuDNN form that ``nn.GRU`` (and so the book's
    concise GRU) computes, and it lets ``copy_from`` reproduce ``nn.GRU`` exactly.
    """

    def __init__(
        self, vocab_size: int, hidden_size: int = 256, num_layers: int = 1, sigma: float = 0.01
    ) -> None:
        super().__init__()
        _one_hot_layer_check("GRU", num_layers)
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        v, h = vocab_size, hidden_size
        self.W_xz, self.W_hz = _normal(v, h, sigma=sigma), _normal(h, h, sigma=sigma)
        self.W_xr, self.W_hr = _normal(v, h, sigma=sigma), _normal(h, h, sigma=sigma)
        self.W_xh, self.W_hh = _normal(v, h, sigma=sigma), _normal(h, h, sigma=sigma)
        self.b_z, self.b_r = nn.Parameter(torch.zeros(h)), nn.Parameter(torch.zeros(h))
        self.b_xh, self.b_hh = nn.Parameter(torch.zeros(h)), nn.Parameter(torch.zeros(h))
        self.W_hq, self.b_q = _normal(h, v, sigma=sigma), nn.Parameter(torch.zeros(v))

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=self.b_q.dtype)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        assert isinstance(state, torch.Tensor)
        x = F.one_hot(tokens, self.vocab_size).to(self.W_xz.dtype)  # (B, T, V)
        # The input terms of all steps in one product each; only the hidden terms recur.
        xz, xr = x @ self.W_xz + self.b_z, x @ self.W_xr + self.b_r  # (B, T, H)
        xh = x @ self.W_xh + self.b_xh  # (B, T, H)
        w_h = torch.cat([self.W_hz, self.W_hr, self.W_hh], 1)  # (H, 3H)
        h = state
        outputs = []
        for t in range(x.shape[1]):
            hz, hr, hh = (h @ w_h).chunk(3, dim=1)  # 3 x (B, H)
            z = torch.sigmoid(xz[:, t] + hz)
            r = torch.sigmoid(xr[:, t] + hr)
            h_tilde = torch.tanh(xh[:, t] + r * (hh + self.b_hh))
            h = z * h + (1 - z) * h_tilde  # (B, H)
            outputs.append(h)
        hidden = torch.stack(outputs, 1)  # (B, T, H)
        return hidden @ self.W_hq + self.b_q, h

    @torch.no_grad()
    def copy_from(self, concise: RNNModel) -> GRUScratch:
        """Take a one-layer ``gru`` model's weights. ``nn.GRU`` stacks its gates as
        (reset, update, new); the biases of the two gates add up."""
        g = concise.rnn
        w_ir, w_iz, w_in = g.weight_ih_l0.chunk(3)
        w_hr, w_hz, w_hn = g.weight_hh_l0.chunk(3)
        b_ir, b_iz, b_in = g.bias_ih_l0.chunk(3)
        b_hr, b_hz, b_hn = g.bias_hh_l0.chunk(3)
        for param, value in [
            (self.W_xr, w_ir.T), (self.W_hr, w_hr.T), (self.b_r, b_ir + b_hr),
            (self.W_xz, w_iz.T), (self.W_hz, w_hz.T), (self.b_z, b_iz + b_hz),
            (self.W_xh, w_in.T), (self.W_hh, w_hn.T), (self.b_xh, b_in), (self.b_hh, b_hn),
            (self.W_hq, concise.dense.weight.T), (self.b_q, concise.dense.bias),
        ]:
            param.copy_(value)
        return self


class LSTMScratch(nn.Module):
    """The from-scratch LSTM of section 9.2 with one-hot ``X_t``:

    ``I_t = sigmoid(X_t W_xi + H_{t-1} W_hi + b_i)``, ``F_t`` and ``O_t`` likewise,
    ``C~_t = tanh(X_t W_xc + H_{t-1} W_hc + b_c)``, ``C_t = F_t * C_{t-1} + I_t * C~_t``,
    ``H_t = O_t * tanh(C_t)``, ``O_t = H_t W_hq + b_q``. The state is the pair ``(H, C)``.
    """

    GATES = ("i", "f", "c", "o")  # nn.LSTM's order: input, forget, cell, output

    def __init__(
        self, vocab_size: int, hidden_size: int = 256, num_layers: int = 1, sigma: float = 0.01
    ) -> None:
        super().__init__()
        _one_hot_layer_check("LSTM", num_layers)
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        v, h = vocab_size, hidden_size
        for g in self.GATES:
            setattr(self, f"W_x{g}", _normal(v, h, sigma=sigma))
            setattr(self, f"W_h{g}", _normal(h, h, sigma=sigma))
            setattr(self, f"b_{g}", nn.Parameter(torch.zeros(h)))
        self.W_hq, self.b_q = _normal(h, v, sigma=sigma), nn.Parameter(torch.zeros(v))

    def init_state(self, batch_size: int, device: torch.device | str) -> State:
        h = torch.zeros(batch_size, self.hidden_size, device=device, dtype=self.b_q.dtype)
        return h, torch.zeros_like(h)  # (B, H) each

    def _stacked(self, kind: str) -> torch.Tensor:
        return torch.cat([getattr(self, f"{kind}{g}") for g in self.GATES], -1)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state
        x = F.one_hot(tokens, self.vocab_size).to(self.W_hq.dtype)  # (B, T, V)
        # The four gates' input terms for all steps in one product; only H W_h* recurs.
        xg = x @ self._stacked("W_x") + self._stacked("b_")  # (B, T, 4H)
        w_h = self._stacked("W_h")  # (H, 4H)
        outputs = []
        for t in range(x.shape[1]):
            i, f, c_tilde, o = (xg[:, t] + h @ w_h).chunk(4, dim=1)  # 4 x (B, H)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(c_tilde)
            h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
            outputs.append(h)
        hidden = torch.stack(outputs, 1)  # (B, T, H)
        return hidden @ self.W_hq + self.b_q, (h, c)

    @torch.no_grad()
    def copy_from(self, concise: RNNModel) -> LSTMScratch:
        """Take a one-layer ``lstm`` model's weights (the two framework biases add up)."""
        l = concise.rnn
        bias = l.bias_ih_l0 + l.bias_hh_l0
        for g, w_x, w_h, b in zip(
            self.GATES, l.weight_ih_l0.chunk(4), l.weight_hh_l0.chunk(4), bias.chunk(4)
        ):
            getattr(self, f"W_x{g}").copy_(w_x.T)
            getattr(self, f"W_h{g}").copy_(w_h.T)
            getattr(self, f"b_{g}").copy_(b)
        self.W_hq.copy_(concise.dense.weight.T)
        self.b_q.copy_(concise.dense.bias)
        return self


ModelFactory = Callable[..., nn.Module]


def _one_hot_only(cls: type[nn.Module]) -> ModelFactory:
    """A factory for a from-scratch model, which has one-hot input and no dropout: asking
    for an embedding, dropout or tied weights is an error rather than silently ignored."""

    def factory(
        vocab_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        *,
        embed_size: int | None = None,
        dropout: float = 0.0,
        tie_weights: bool = False,
    ) -> nn.Module:
        if embed_size is not None or dropout or tie_weights:
            raise ConfigError(
                f"the scratch models take one-hot input without dropout; drop --embed-size, "
                f"--dropout and --tie-weights or use a framework model ({', '.join(FRAMEWORK)})"
            )
        return cls(vocab_size, hidden_size=hidden_size, num_layers=num_layers)

    factory.__doc__ = cls.__doc__
    return factory


FRAMEWORK = ("rnn", "rnn-relu", "gru", "lstm")

MODELS: dict[str, ModelFactory] = {
    "rnn": RNNModel,
    "rnn-relu": partial(RNNModel, nonlinearity="relu"),
    "gru": partial(RNNModel, cell="GRU"),
    "lstm": partial(RNNModel, cell="LSTM"),
    "scratch": _one_hot_only(RNNScratch),
    "gru-scratch": _one_hot_only(GRUScratch),
    "lstm-scratch": _one_hot_only(LSTMScratch),
}


def build_model(
    name: str,
    vocab_size: int,
    hidden_size: int = 256,
    num_layers: int = 1,
    *,
    embed_size: int | None = None,
    dropout: float = 0.0,
    tie_weights: bool = False,
) -> nn.Module:
    """A model from the registry by name; the keyword arguments are ``ModelConfig``'s."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](
        vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        embed_size=embed_size,
        dropout=dropout,
        tie_weights=tie_weights,
    )


def model_from_config(config: ModelConfig, vocab_size: int) -> nn.Module:
    """``build_model`` with every field of a ``ModelConfig``."""
    return build_model(
        config.model,
        vocab_size,
        config.hidden_size,
        config.num_layers,
        embed_size=config.embed_size,
        dropout=config.dropout,
        tie_weights=config.tie_weights,
    )


def detach_state(state: State) -> State:
    """Cut the graph at the batch boundary, keeping the values (truncated BPTT)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    return tuple(s.detach() for s in state)

"""A whole tanh-RNN layer over a sequence as one autograd node, for the CPU.

``h_t = tanh(x_t + h_{t-1} W^T)`` for ``t = 1..T``, where ``x_t`` already holds the input
projection and both biases. Autograd of the per-step loop records ~5 nodes per step and,
in backward, computes the weight gradient as T small outer products. Here the forward loop
is three in-place kernels per step (``addmm`` into a preallocated output, then the tanh);
backward walks the steps with one ``addmm`` and one ``tanh_backward`` each, only for the
gradient that must flow through ``W`` step by step, and then gets the weight gradient as a
single large GEMM over all steps.

The tanh is computed as ``2 sigmoid(2z) - 1``: ATen's CPU ``tanh`` kernel takes about five
times as long as its ``sigmoid`` (21 vs 4 us for a 32x256 step here), and the tanh was a
tenth of the step. Doubling the inputs and the weight is exact in floating point, so the
pre-activations come out exactly doubled and only the last rounding differs, by at most
~2e-7 from ``torch.tanh``. The backward needs only the tanh values, so it is unchanged.

``tanh_rnn_lookup`` also takes in the first layer's input projection when the input is
one-hot: the rows of a (V, H) table gathered straight into the output buffer, and the
table's gradient summed back by token in the same node.

On CUDA the framework's cuDNN kernel is faster still; callers use this only off CUDA.
"""

from __future__ import annotations

from typing import Any

import torch

# d tanh(z)/dz * g = g * (1 - tanh(z)^2) in one pass, written over g
_tanh_backward_into = torch.ops.aten.tanh_backward.grad_input


def _recur_(hidden: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Run the recurrence in place over ``hidden`` (T, B, H), which holds 2 x_t on entry.
    Returns ``weight`` in the (out, in) layout the backward wants."""
    # BLAS runs h @ W fastest with W stored (in, out); the backward wants (out, in)
    w2_io, w_oi = weight.t().mul(2), weight.contiguous()  # 2W, so u_t = 2 z_t exactly
    minus_one = hidden.new_full((), -1.0)
    h = h0
    for u in hidden.unbind(0):
        # h_t = tanh(z_t) = 2 sigmoid(u_t) - 1, written over u_t
        h = torch.add(minus_one, u.addmm_(h, w2_io).sigmoid_(), alpha=2, out=u)
    return w_oi


def _recur_backward(
    grad_hidden: torch.Tensor,
    hidden: torch.Tensor,
    h0: torch.Tensor,
    weight: torch.Tensor,
    need_h0: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Gradients w.r.t. the x_t (T, B, H), h0 and the (out, in) weight."""
    # the gradient w.r.t. the pre-activations, built in place over the direct gradients
    grad_z = grad_hidden.clone(memory_format=torch.contiguous_format)  # (T, B, H)
    zs, hs = grad_z.unbind(0), hidden.unbind(0)
    _tanh_backward_into(zs[-1], hs[-1], grad_input=zs[-1])
    for t in range(len(zs) - 2, -1, -1):
        # dL/dh_t = (its direct gradient) + dL/dz_{t+1} W, then through tanh
        _tanh_backward_into(zs[t].addmm_(zs[t + 1], weight), hs[t], grad_input=zs[t])
    grad_h0 = grad_z[0] @ weight if need_h0 else None
    # dL/dW = sum_t dz_t^T h_{t-1}: one (H, T*B) x (T*B, H) GEMM instead of T small ones
    flat_z = grad_z.reshape(-1, grad_z.shape[-1])  # (T*B, H)
    grad_w = flat_z[h0.shape[0] :].t() @ hidden[:-1].reshape(-1, hidden.shape[-1])
    grad_w.addmm_(grad_z[0].t(), h0)
    return grad_z, grad_h0, grad_w


class _TanhRNN(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        # x: (T, B, H) input projections plus biases; h0: (B, H); weight: (H, H) as (out, in)
        # one doubled copy of the inputs up front, then every step updates its slice in place
        hidden = x.mul(2).contiguous()  # (T, B, H)
        w_oi = _recur_(hidden, h0, weight)
        ctx.save_for_backward(h0, w_oi, hidden)
        return hidden

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        h0, weight, hidden = ctx.saved_tensors
        return _recur_backward(grad_hidden, hidden, h0, weight, ctx.needs_input_grad[1])


class _TanhRNNLookup(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        tokens: torch.Tensor,
        table: torch.Tensor,
        h0: torch.Tensor,
        weight: torch.Tensor,
    ) -> torch.Tensor:
        # tokens: (T, B) int64; table: (V, H) input projection rows plus biases
        flat = tokens.reshape(-1)  # (T*B,)
        # the gathered (doubled) rows are the output buffer the recurrence updates in place;
        # a table built from a transposed weight is column-major, and gathering rows from
        # it is ten times slower than from a row-major copy
        rows = table.mul(2).contiguous()  # (V, H)
        hidden = rows.index_select(0, flat).view(*tokens.shape, table.shape[1])  # (T, B, H)
        w_oi = _recur_(hidden, h0, weight)
        ctx.save_for_backward(flat, h0, w_oi, hidden)
        ctx.rows = table.shape[0]
        return hidden

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_hidden: torch.Tensor
    ) -> tuple[None, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        flat, h0, weight, hidden = ctx.saved_tensors
        grad_z, grad_h0, grad_w = _recur_backward(
            grad_hidden, hidden, h0, weight, ctx.needs_input_grad[2]
        )
        grad_table = None
        if ctx.needs_input_grad[1]:
            # each row's gradient is the sum of dL/dz over the positions that picked it
            grad_table = grad_z.new_zeros(ctx.rows, grad_z.shape[-1]).index_add_(
                0, flat, grad_z.view(-1, grad_z.shape[-1])
            )  # (V, H)
        return None, grad_table, grad_h0, grad_w


def tanh_rnn(x: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """All hidden states of a tanh RNN layer.

    x: (T, B, H) input projections with both biases added; h0: (B, H) initial state;
    weight: (H, H) recurrent weight in ``nn.RNN``'s (out, in) layout. Returns (T, B, H);
    the last step is the final state.
    """
    if x.shape[0] == 0:
        return x
    return _TanhRNN.apply(x, h0, weight)


def tanh_rnn_lookup(
    tokens: torch.Tensor, table: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """``tanh_rnn(table[tokens], h0, weight)`` as one node: a one-hot input's projection
    (``one_hot(tokens) W_ih^T + b`` is row ``tokens`` of ``W_ih^T + b``) without a separate
    lookup node or a copy of the looked-up rows.

    tokens: (T, B) int64 time-major; table: (V, H) input weight rows with both biases added;
    h0: (B, H); weight: (H, H) in (out, in) layout. Returns (T, B, H).
    """
    if tokens.shape[0] == 0:
        return table.new_empty(*tokens.shape, table.shape[1])
    return _TanhRNNLookup.apply(tokens, table, h0, weight)

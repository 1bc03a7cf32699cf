"""A whole tanh-RNN layer over a sequence as one autograd node, for the CPU.

``h_t = tanh(x_t + h_{t-1} W^T)`` for ``t = 1..T``, where ``x_t`` already holds the input
projection and both biases. Autograd of the per-step loop records ~5 nodes per step and,
in backward, computes the weight gradient as T small outer products. Here the forward loop
is two in-place kernels per step (``addmm`` into a preallocated output, ``tanh_``); backward
walks the steps with one ``addmm`` and one ``mul`` each, only for the gradient that must
flow through ``W`` step by step, and then gets the weight gradient as a single large GEMM
over all steps. The arithmetic is the same as the loop's, so results agree to rounding.

On CUDA the framework's cuDNN kernel is faster still; callers use this only off CUDA.
"""

from __future__ import annotations

from typing import Any

import torch


class _TanhRNN(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        # x: (T, B, H) input projections plus biases; h0: (B, H); weight: (H, H) as (out, in)
        # BLAS runs h @ W fastest with W stored (in, out); the backward wants (out, in)
        w_io, w_oi = weight.t().contiguous(), weight.contiguous()
        # one copy of the inputs up front, then every step updates its slice in place
        hidden = x.clone(memory_format=torch.contiguous_format)  # (T, B, H)
        h = h0
        for h_t in hidden.unbind(0):
            h = h_t.addmm_(h, w_io).tanh_()
        ctx.save_for_backward(h0, w_oi, hidden)
        return hidden

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        h0, weight, hidden = ctx.saved_tensors
        steps = hidden.shape[0]
        # d tanh(z) / dz = 1 - tanh(z)^2 for all steps at once
        slope = torch.mul(hidden, hidden).neg_().add_(1.0)
        # the gradient w.r.t. the pre-activations, built in place over the direct gradients
        grad_z = grad_hidden.clone(memory_format=torch.contiguous_format)  # (T, B, H)
        slopes, zs = slope.unbind(0), grad_z.unbind(0)
        zs[-1].mul_(slopes[-1])
        for t in range(steps - 2, -1, -1):
            # dL/dh_t = (its direct gradient) + dL/dz_{t+1} W, then through tanh
            zs[t].addmm_(zs[t + 1], weight).mul_(slopes[t])
        grad_h0 = grad_z[0] @ weight if ctx.needs_input_grad[1] else None
        # dL/dW = sum_t dz_t^T h_{t-1}: one (H, T*B) x (T*B, H) GEMM instead of T small ones
        flat_z = grad_z.reshape(-1, grad_z.shape[-1])  # (T*B, H)
        grad_w = flat_z[h0.shape[0] :].t() @ hidden[:-1].reshape(-1, hidden.shape[-1])
        grad_w.addmm_(grad_z[0].t(), h0)
        return grad_z, grad_h0, grad_w


def tanh_rnn(x: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """All hidden states of a tanh RNN layer.

    x: (T, B, H) input projections with both biases added; h0: (B, H) initial state;
    weight: (H, H) recurrent weight in ``nn.RNN``'s (out, in) layout. Returns (T, B, H);
    the last step is the final state.
    """
    if x.shape[0] == 0:
        return x
    return _TanhRNN.apply(x, h0, weight)

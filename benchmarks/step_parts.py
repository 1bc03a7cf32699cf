"""One training step of the book's model (``rnn``, hidden 256, batch (32, 35)) split into
its parts, each timed on its own with the CPU clock (best of several rounds), next to the
whole step; the difference is what the parts do not show alone (autograd bookkeeping,
allocation, cold caches between phases).

    python benchmarks/step_parts.py [--hidden 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.fused import _TanhRNNLookup
from rnnlab.train import clip_gradients


def best_ms(fn: Callable[[], Any], n: int = 100, rounds: int = 5) -> float:
    for _ in range(5):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e3


def no_grad(fn: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: torch.no_grad()(fn)()


class _Ctx:
    """Stands in for autograd's context, to time the node's forward and backward alone."""

    needs_input_grad = (False, True, False, True)

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        self.saved_tensors = tensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = rnnlab.load_dataset(rnnlab.DataConfig())
    vocab = len(data.vocab)
    torch.manual_seed(0)
    model = rnnlab.build_model("rnn", vocab, args.hidden)
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=1.0, foreach=True)
    x, y = data.ids[: 32 * 35].view(32, 35), data.ids[1 : 32 * 35 + 1].view(32, 35)
    state = model.init_state(32, "cpu")
    rnn, dense = model.rnn, model.dense

    def forward_loss() -> torch.Tensor:
        logits, _ = model(x, state)
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    def forward_backward() -> None:
        loss = forward_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def step() -> None:
        forward_backward()
        clip_gradients(params, 1.0)
        optimizer.step()

    ctx, tokens = _Ctx(), x.t()
    with torch.no_grad():
        table = rnn.weight_ih_l0.t() + rnn.bias_ih_l0 + rnn.bias_hh_l0
        w_hh, h0 = rnn.weight_hh_l0, state[0]
        hidden = _TanhRNNLookup.forward(ctx, tokens, table, h0, w_hh)
    ctx.rows = table.shape[0]
    upstream = torch.randn_like(hidden)
    hidden_leaf = hidden.detach().requires_grad_()

    def dense_loss() -> torch.Tensor:
        logits = dense(hidden_leaf).transpose(0, 1)
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    def dense_loss_backward() -> None:
        hidden_leaf.grad = dense.weight.grad = dense.bias.grad = None
        dense_loss().backward()

    parts = {
        "whole step": step,
        "forward + loss (graph recorded)": forward_loss,
        "forward + loss + backward": forward_backward,
    }
    with torch.no_grad():
        flat = upstream.reshape(-1, args.hidden)
        past = hidden[:-1].reshape(-1, args.hidden)
        w_io = w_hh.t().contiguous()
        parts["recurrent node forward (lookup, 35 steps)"] = no_grad(
            lambda: _TanhRNNLookup.forward(ctx, tokens, table, h0, w_hh)
        )
        parts["recurrent node backward (incl. weight GEMM)"] = no_grad(
            lambda: _TanhRNNLookup.backward(ctx, upstream)
        )
        parts["  of which the weight-gradient GEMM"] = no_grad(lambda: flat[32:].t() @ past)
        parts["  35 step products h W alone"] = no_grad(
            lambda: [torch.mm(h, w_io) for h in hidden.unbind(0)]
        )
    parts["dense layer + cross-entropy forward"] = dense_loss
    parts["dense layer + cross-entropy fwd + bwd"] = dense_loss_backward
    forward_backward()
    parts["clipping (foreach norm, mul)"] = lambda: clip_gradients(params, 1.0)
    parts["SGD step (foreach)"] = optimizer.step
    print(f"hidden {args.hidden}, threads {args.threads}, batch (32, 35); best CPU ms per call")
    for name, fn in parts.items():
        print(f"{name:46s} {best_ms(fn):7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

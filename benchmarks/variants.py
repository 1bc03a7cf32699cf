"""Ablation: the candidate speed-ups for one training step, measured side by side.

Each variant trains the same (32, 35) minibatches with the trainer's step (forward,
cross-entropy, backward, foreach clipping, foreach SGD); variants are interleaved and each
keeps its best epoch. CPU time (``time.process_time``) is the default clock because it
is robust to other processes on a shared machine; ``--clock wall`` shows what threads buy.

    python benchmarks/variants.py [--threads 1] [--clock cpu] [--compile]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.fused import tanh_rnn
from rnnlab.models import RNNModel, RNNScratch
from rnnlab.train import clip_gradients

HERE = Path(__file__).resolve().parent


class FrameworkRNN(RNNModel):
    """The book's path: nn.RNN on one-hot inputs (what RNNModel runs on CUDA)."""

    def _fused(self, tokens: torch.Tensor) -> bool:
        return False


class LoopScratch(RNNScratch):
    """The per-step loop autograd records, one-hot GEMM input (section 8.5 as written)."""

    def forward(self, tokens, state):
        x = F.one_hot(tokens, self.vocab_size).to(self.W_xh.dtype)  # (B, T, V)
        h, outputs = state, []
        for x_t in x.unbind(1):
            h = torch.tanh(x_t @ self.W_xh + h @ self.W_hh + self.b_h)
            outputs.append(h)
        return torch.stack(outputs, 1) @ self.W_hq + self.b_q, h


class FusedOneHot(RNNScratch):
    """The fused layer, but the input projection as the one-hot GEMM."""

    def forward(self, tokens, state):
        x = F.one_hot(tokens.t(), self.vocab_size).to(self.W_xh.dtype) @ self.W_xh + self.b_h
        hidden = tanh_rnn(x, state, self.W_hh.t())
        return (hidden @ self.W_hq + self.b_q).transpose(0, 1), hidden[-1]


def variants(compile_: bool) -> dict[str, type]:
    out = {
        "nn.RNN, one-hot (book)": FrameworkRNN,
        "scratch step loop, one-hot": LoopScratch,
        "fused, one-hot GEMM input": FusedOneHot,
        "fused, row lookup (rnnlab rnn)": RNNModel,
        "fused, row lookup (rnnlab scratch)": RNNScratch,
    }
    if compile_:
        out["torch.compile(scratch step loop)"] = LoopScratch
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    data = rnnlab.load_dataset(rnnlab.DataConfig())
    vocab = len(data.vocab)
    epoch = rnnlab.make_epoch(data.ids, 32, 35, torch.Generator().manual_seed(0))
    runs = {}
    for name, cls in variants(args.compile).items():
        torch.manual_seed(0)
        model = cls(vocab, 256)
        forward = torch.compile(model) if name.startswith("torch.compile") else model
        params = list(model.parameters())
        runs[name] = (model, forward, params, torch.optim.SGD(params, lr=1.0, foreach=True))

    def one_epoch(model, forward, params, optimizer) -> float:
        state = model.init_state(32, "cpu")
        start = clock()
        for x, y in zip(epoch.inputs, epoch.labels):
            logits, state = forward(x, state.detach())
            loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(params, 1.0)
            optimizer.step()
        return clock() - start

    for run in runs.values():
        one_epoch(*run)  # warm-up (and compilation)
    best = {name: float("inf") for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            best[name] = min(best[name], one_epoch(*run))
    base = best["nn.RNN, one-hot (book)"]
    result = {}
    print(f"threads {args.threads}, clock {args.clock}, best epoch of {args.rounds}")
    for name, seconds in best.items():
        tps = epoch.inputs.numel() / seconds
        result[name] = tps
        print(f"{name:36s} {tps:10,.0f} tokens/s  {base / seconds:5.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "tokens_per_s": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

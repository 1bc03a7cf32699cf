"""rnnlab on a CUDA GPU at the book's configuration: a few minutes, prepared to run as is.

On CUDA, ``RNNModel`` runs the framework's cuDNN kernel (rnnlab.fused is the CPU path) and
the trainer makes no host synchronisation inside an epoch. Variants, each timed over whole
epochs with one synchronisation at the end:

- ``trainer``: ``rnnlab.train`` as the CLI runs it (fp32);
- ``bf16``: the same step under ``torch.autocast(bfloat16)``;
- ``graph``: the whole step (forward, loss, backward, clipping, SGD) captured once as a
  CUDA graph and replayed per minibatch, so Python and kernel launches drop out.

The book's GPU figure is about 280k tokens/s; the goal is at least 10x that. The book's own
code is also timed when the d2l package imports here (see setup_d2l_env.sh; add the CUDA
build of torch to that environment on the GPU machine).

    python benchmarks/bench_gpu.py [--epochs 200] [--json benchmarks/results/gpu.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.models import detach_state
from rnnlab.train import clip_gradients

HERE = Path(__file__).resolve().parent
BATCH, STEPS, LR, CLIP = 32, 35, 1.0, 1.0


def epochs_on(ids: torch.Tensor, epochs: int, device: torch.device) -> list[rnnlab.Epoch]:
    g = torch.Generator().manual_seed(0)
    return [rnnlab.make_epoch(ids.to(device), BATCH, STEPS, g) for _ in range(epochs)]


def plain_step(model, params, optimizer, vocab_size: int, dtype: torch.dtype | None):
    def step(x, y, state):
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, vocab_size).float(), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(params, CLIP)
        optimizer.step()
        return loss.detach(), state

    return step


def run_eager(model, epochs, vocab_size, dtype) -> tuple[float, float]:
    """tokens/s and final-epoch perplexity; one host sync per epoch, as the trainer does."""
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=LR, foreach=True)
    step = plain_step(model, params, optimizer, vocab_size, dtype)
    return _timed(model, epochs, step)


def _timed(model, epochs, step: Callable) -> tuple[float, float]:
    device = epochs[0].inputs.device
    tokens, loss_sum = 0, torch.zeros((), device=device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for epoch in epochs:
        state = model.init_state(BATCH, device)
        loss_sum = torch.zeros((), device=device)
        for x, y in zip(epoch.inputs, epoch.labels):
            loss, state = step(x, y, detach_state(state))
            loss_sum += loss
        tokens += epoch.inputs.numel()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return tokens / seconds, math.exp(loss_sum.item() / len(epochs[-1]))


def run_graph(model, epochs, vocab_size) -> tuple[float, float]:
    """The whole training step as one CUDA graph, replayed per minibatch."""
    device = epochs[0].inputs.device
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=LR, foreach=True)
    static_x = epochs[0].inputs[0].clone()
    static_y = epochs[0].labels[0].clone()
    static_state = model.init_state(BATCH, device)

    def step():
        logits, new_state = model(static_x, static_state)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), static_y.reshape(-1))
        loss.backward()
        clip_gradients(params, CLIP)
        optimizer.step()
        return loss.detach(), new_state

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the graph, as capture requires
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss, static_new_state = step()

    def replay(x, y, state):
        static_x.copy_(x)
        static_y.copy_(y)
        static_state.copy_(state)
        graph.replay()
        return static_loss.clone(), static_new_state

    return _timed(model, epochs, replay)


def book_on_gpu(ids_epochs: int) -> dict | None:
    """The book's train_ch8 on the GPU, if d2l imports in this environment."""
    try:
        sys.path.insert(0, str(HERE))
        import run_book
        from d2l_stubs import load_d2l

        load_d2l()
    except Exception as exc:  # noqa: BLE001  (the book is optional here)
        return {"skipped": f"d2l not importable: {exc}"}
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_book.main(["--epochs", str(ids_epochs)])
    return json.loads(out.getvalue().strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--book-epochs", type=int, default=50)
    parser.add_argument("--json", default=str(HERE / "results" / "gpu.json"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device here; this benchmark needs a GPU", file=sys.stderr)
        return 1
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 for the trainer figure
    data = rnnlab.load_dataset(rnnlab.DataConfig())
    vocab_size = len(data.vocab)
    epochs = epochs_on(data.ids, args.epochs, device)
    results: dict[str, dict] = {"device": {"name": torch.cuda.get_device_name()}}

    def fresh():
        torch.manual_seed(0)
        return rnnlab.build_model("rnn", vocab_size).to(device).train()

    start = time.perf_counter()
    history = rnnlab.train(fresh(), data.ids, epochs=args.epochs, device=device)
    wall = time.perf_counter() - start
    results["trainer"] = {
        "tokens_per_s": sum(s.tokens_per_s for s in history[1:]) / max(len(history) - 1, 1),
        "whole_run_tokens_per_s": len(history) * epochs[0].inputs.numel() / wall,
        "perplexity": history[-1].perplexity,
    }
    for name, run in [
        ("eager fp32", lambda: run_eager(fresh(), epochs, vocab_size, None)),
        ("eager bf16 autocast", lambda: run_eager(fresh(), epochs, vocab_size, torch.bfloat16)),
        ("cuda graph fp32", lambda: run_graph(fresh(), epochs, vocab_size)),
    ]:
        try:
            run()  # warm-up (cuDNN plans, allocator)
            tps, ppl = run()
            results[name] = {"tokens_per_s": tps, "perplexity": ppl}
        except Exception as exc:  # noqa: BLE001  (report it, keep the other figures)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results["book"] = book_on_gpu(args.book_epochs)
    book_gpu = 280_000
    for name, r in results.items():
        if isinstance(r, dict) and "tokens_per_s" in r:
            print(f"{name:22s} {r['tokens_per_s']:12,.0f} tokens/s  "
                  f"{r['tokens_per_s'] / book_gpu:5.1f}x the book's GPU figure  "
                  f"ppl {r.get('perplexity', float('nan')):.2f}")
        elif name != "device":
            print(f"{name:22s} {r}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

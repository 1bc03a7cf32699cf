"""Where one training step of the book's model goes, by operator (torch.profiler).

The step is the trainer's: forward, cross-entropy, backward, clipping (foreach), SGD
(foreach), on one (32, 35) minibatch of the Time Machine. Writes the operator table, and the
step split by phase with ``time.process_time`` (best of many, robust to other processes).

    python benchmarks/profile_step.py [--model rnn] [--threads 1] [--trace out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import rnnlab
from rnnlab.memory import retain_freed_memory
from rnnlab.train import clip_gradients

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rnn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--keep-malloc", action="store_true",
                        help="leave glibc's thresholds as they are (the trainer raises them)")
    parser.add_argument("--out", default=str(HERE / "results" / "profile_step.txt"))
    parser.add_argument("--trace", help="also write a Chrome trace here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.keep_malloc:
        retain_freed_memory()  # as Trainer.fit does on the CPU
    # one thread: CPU time, robust to other load; more: wall time (CPU time adds threads up)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    data = rnnlab.load_dataset(rnnlab.DataConfig())
    vocab_size = len(data.vocab)
    torch.manual_seed(0)
    model = rnnlab.build_model(args.model, vocab_size)
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=1.0, foreach=True)
    x = data.ids[: 32 * 35].view(32, 35)
    y = data.ids[1 : 32 * 35 + 1].view(32, 35)
    state = model.init_state(32, "cpu")

    phases = {"forward": 0.0, "loss": 0.0, "backward": 0.0, "clip+sgd": 0.0}
    best = {k: float("inf") for k in phases}

    def step(timed: bool = False) -> None:
        t0 = clock()
        logits, _ = model(x, state)
        t1 = clock()
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        t2 = clock()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = clock()
        clip_gradients(params, 1.0)
        optimizer.step()
        t4 = clock()
        if timed:
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                best[k] = min(best[k], v)

    for _ in range(5):
        step()
    for _ in range(200):
        step(timed=True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            step()
    if args.trace:
        prof.export_chrome_trace(args.trace)
    total = sum(best.values())
    lines = [
        f"model {args.model}, threads {args.threads}, batch (32, 35), torch {torch.__version__}",
        f"best {'CPU' if args.threads == 1 else 'wall'} time per step by phase (ms): "
        + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in best.items())
        + f"; total {total * 1e3:.2f} ms = {32 * 35 / total:,.0f} tokens/s",
        "",
        f"operators over {args.steps} steps (profiler overhead inflates the small ones):",
        prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=40
        ),
    ]
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hardware bound for training the book's RNN on this machine's CPU.

Measures fp32 GEMM throughput for the shapes one training step runs (the per-step
recurrent product, which is sequential in time, and the large products over all steps),
counts the FLOPs per training token, and turns them into a tokens/sec bound.

    python benchmarks/roofline.py [--threads 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

# the book's configuration
BATCH, STEPS, HIDDEN, VOCAB = 32, 35, 256, 28


def flops_per_token(hidden: int = HIDDEN, vocab: int = VOCAB) -> dict[str, int]:
    """Multiply-adds count 2. Forward + backward per training token.

    recurrent: h W_hh forward, dH through W_hh backward (both sequential per step),
    and dW_hh (one product over all steps): 3 x 2H^2.
    output: dense forward, its input gradient and weight gradient: 3 x 2HV.
    The input projection is a row lookup of W_ih (one-hot x W_ih), so it is not counted;
    the book's one-hot GEMM would add 2 x 2VH.
    """
    return {
        "recurrent_sequential": 2 * 2 * hidden * hidden,
        "recurrent_weight_grad": 2 * hidden * hidden,
        "output_layer": 3 * 2 * hidden * vocab,
        "onehot_input_gemm_not_counted": 2 * 2 * vocab * hidden,
    }


def gemm_rate(m: int, k: int, n: int, threads: int, seconds: float = 0.3) -> float:
    """Best-of-5 GFLOP/s of an (m, k) x (k, n) fp32 product with ``threads`` threads.

    One thread is timed by CPU time, which other processes on a shared machine barely
    disturb; more threads need the wall clock, so their figure suffers from any load."""
    torch.set_num_threads(threads)
    clock = time.process_time if threads == 1 else time.perf_counter
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(20):
        torch.mm(a, b, out=out)
    reps = min(max(10, int(seconds / max(_time_once(a, b, out), 1e-7))), 2000)
    best = float("inf")
    for _ in range(5):
        start = clock()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        best = min(best, (clock() - start) / reps)
    return 2 * m * k * n / best / 1e9


def _time_once(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> float:
    start = time.perf_counter()
    torch.mm(a, b, out=out)
    return time.perf_counter() - start


SHAPES = {
    "per_step h@W_hh (32x256x256)": (BATCH, HIDDEN, HIDDEN),
    "dW_hh over all steps (256x1120x256)": (HIDDEN, BATCH * STEPS, HIDDEN),
    "dense (1120x256x28)": (BATCH * STEPS, HIDDEN, VOCAB),
    "large square (1024x1024x1024)": (1024, 1024, 1024),
}


def _bound(rates: dict[str, float]) -> float:
    """Tokens/s if every product of a step ran at the rate measured for its shape."""
    f = flops_per_token()
    seconds_per_token = (
        f["recurrent_sequential"] / (rates["per_step h@W_hh (32x256x256)"] * 1e9)
        + f["recurrent_weight_grad"] / (rates["dW_hh over all steps (256x1120x256)"] * 1e9)
        + f["output_layer"] / (rates["dense (1120x256x28)"] * 1e9)
    )
    return 1 / seconds_per_token


def measure(threads: list[int]) -> dict:
    rates = {
        name: {str(t): round(gemm_rate(*shape, threads=t), 1) for t in threads}
        for name, shape in SHAPES.items()
    }
    best = {name: max(r.values()) for name, r in rates.items()}
    f = flops_per_token()
    counted = f["recurrent_sequential"] + f["recurrent_weight_grad"] + f["output_layer"]
    peak = best["large square (1024x1024x1024)"] * 1e9
    return {
        "gflops": rates,
        "flops_per_token": counted,
        "flops_breakdown": f,
        "bound_tokens_per_s": round(_bound(best)),
        # a run at t threads can use only t cores: its own bound
        "bound_by_threads": {
            str(t): round(_bound({name: r[str(t)] for name, r in rates.items()}))
            for t in threads
        },
        "peak_gemm_bound_tokens_per_s": round(peak / counted),
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    result = measure(args.threads)
    for name, r in result["gflops"].items():
        rates = ", ".join(f"{t} thr {g:7.1f}" for t, g in r.items())
        print(f"{name:38s} GFLOP/s: {rates}")
    print(f"FLOPs per training token: {result['flops_per_token']:,}")
    print(f"bound from the shapes a step runs: {result['bound_tokens_per_s']:,} tokens/s")
    for t, b in result["bound_by_threads"].items():
        print(f"  with {t} thread(s):                 {b:,} tokens/s")
    print(f"bound at the large-GEMM peak:      {result['peak_gemm_bound_tokens_per_s']:,} tokens/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

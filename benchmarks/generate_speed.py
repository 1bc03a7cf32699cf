"""Generation speed: characters per second of rnnlab's generator, side by side with the
book's ``predict_ch8`` loop (one forward call and one ``.item()`` per character).

Untrained models of the book's size (hidden 256, the Time Machine's 28 tokens): speed does
not depend on the weights. Each figure is the best of ``--repeats`` runs.

    python benchmarks/generate_speed.py [--models rnn lstm scratch] [--chars 500]
        [--samples 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from rnnlab.generate import generate, predict
from rnnlab.models import build_model
from rnnlab.vocab import Vocab

PREFIX = "time traveller"


@torch.no_grad()
def book_predict(model, vocab, prefix: str, num_preds: int) -> str:
    """d2l's predict_ch8: warm up and generate one token per forward call."""
    outputs = [vocab.index(prefix[0])]
    state = model.init_state(1, "cpu")
    for ch in prefix[1:]:
        _, state = model(torch.tensor([[outputs[-1]]]), state)
        outputs.append(vocab.index(ch))
    for _ in range(num_preds):
        y, state = model(torch.tensor([[outputs[-1]]]), state)
        outputs.append(int(y.argmax(-1).reshape(1)))
    return vocab.decode(outputs)


def best_rate(run: Callable[[], object], chars: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return chars / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rnn", "gru", "lstm", "scratch"])
    parser.add_argument("--chars", type=int, default=500, help="characters per sample")
    parser.add_argument("--samples", type=int, default=16, help="rows of the batched run")
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    vocab = Vocab("abcdefghijklmnopqrstuvwxyz ")  # 28 tokens with <unk>, as the book's
    n = args.chars
    print(f"chars/sec, {n} characters per sample, hidden {args.hidden_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"| model | book loop | predict (greedy) | sample T=1 | sample T=1, top-p 0.9 "
          f"| {args.samples} samples, one batch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, len(vocab), args.hidden_size).eval()
        assert predict(model, vocab, PREFIX, n) == book_predict(model, vocab, PREFIX, n)
        runs = {
            "book": lambda m=model: book_predict(m, vocab, PREFIX, n),
            "greedy": lambda m=model: predict(m, vocab, PREFIX, n),
            "sample": lambda m=model: generate(m, vocab, PREFIX, num_preds=n, temperature=1.0),
            "top-p": lambda m=model: generate(m, vocab, PREFIX, num_preds=n, temperature=1.0,
                                              top_p=0.9),
            "batch": lambda m=model: generate(m, vocab, PREFIX, num_preds=n, temperature=1.0,
                                              num_samples=args.samples),
        }
        rates = [best_rate(run, n * (args.samples if key == "batch" else 1), args.repeats)
                 for key, run in runs.items()]
        print(f"| {name} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |")


if __name__ == "__main__":
    main()

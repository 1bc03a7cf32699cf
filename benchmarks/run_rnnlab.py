"""One training run of rnnlab at the book's configuration.

Prints one JSON line on stdout: per-epoch tokens/sec (``EpochStats.tokens_per_s``), final
perplexity, wall time, peak RSS.

    python benchmarks/run_rnnlab.py --model rnn --epochs 500 [--threads 1]
    python benchmarks/run_rnnlab.py --model rnn --text ../shared/data/tinyshakespeare.txt --epochs 2
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

import rnnlab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rnn")
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--text", help="a text file (raw preprocessing, every token)")
    parser.add_argument("--max-tokens", type=int, help="default: the corpus's (10000 for the book)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model not in rnnlab.MODELS:
        print(json.dumps({"side": "rnnlab", "skipped": f"no model {args.model!r}"}))
        return 0
    data = rnnlab.load_dataset(rnnlab.DataConfig(text=args.text, max_tokens=args.max_tokens))
    torch.manual_seed(0)
    model = rnnlab.build_model(args.model, len(data.vocab), args.hidden_size, args.num_layers)
    cpu_start, start = time.process_time(), time.perf_counter()
    history = rnnlab.train(
        model, data.ids, batch_size=32, seq_len=35, epochs=args.epochs, lr=args.lr, clip=1.0,
        device=args.device,
    )
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(json.dumps({
        "side": "rnnlab",
        "perplexity": history[-1].perplexity,
        "tokens_per_s": [s.tokens_per_s for s in history],
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens": sum(s.tokens_per_s * s.seconds for s in history),  # process CPU time, all threads: robust to other load at 1 thread
        "threads": torch.get_num_threads(),
        "num_tokens": len(data.ids),
        "vocab_size": len(data.vocab),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

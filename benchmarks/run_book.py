"""One training run of the book's own code (d2l 0.17.6), as a reader would run it.

Runs under benchmarks/.d2l-env (see setup_d2l_env.sh). Prints one JSON line on stdout:
per-epoch tokens/sec as ``train_epoch_ch8`` measures it, final perplexity, wall time,
peak RSS. The book's own prints (predictions, summary) go to stderr.

    benchmarks/.d2l-env/bin/python benchmarks/run_book.py --cell rnn --epochs 500
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "src" / "rnnlab" / "data" / "timemachine.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="rnn")
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import torch
    from d2l_stubs import load_d2l
    from torch import nn

    if args.threads:
        torch.set_num_threads(args.threads)
    d2l = load_d2l()
    # d2l reads ../data/timemachine.txt relative to the working directory after a sha1 check
    work = Path(tempfile.mkdtemp(prefix="d2l-bench-"))
    (work / "data").mkdir()
    (work / "run").mkdir()
    shutil.copy(CORPUS, work / "data" / "timemachine.txt")
    os.chdir(work / "run")
    try:
        train_iter, vocab = d2l.load_data_time_machine(32, 35)
        layer = getattr(nn, args.cell.upper())(len(vocab), args.hidden_size, args.num_layers)
        device = d2l.try_gpu()
        net = d2l.RNNModel(layer, vocab_size=len(vocab)).to(device)

        epochs: list[tuple[float, float]] = []  # (perplexity, tokens/sec) per epoch
        original = d2l.train_epoch_ch8

        seconds: list[float] = []

        def recorded(*a, **k):  # observes train_ch8's epochs; changes nothing
            begin = time.perf_counter()
            result = original(*a, **k)
            seconds.append(time.perf_counter() - begin)
            epochs.append(result)
            return result

        d2l.train_epoch_ch8 = recorded
        cpu_start, start = time.process_time(), time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            d2l.train_ch8(net, train_iter, vocab, args.lr, args.epochs, device)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    finally:
        os.chdir(HERE)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "side": "book",
        "perplexity": epochs[-1][0],
        "tokens_per_s": [speed for _, speed in epochs],
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens": sum(speed * t for (_, speed), t in zip(epochs, seconds)),  # process CPU time, all threads: robust to other load at 1 thread
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

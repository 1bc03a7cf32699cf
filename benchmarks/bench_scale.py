"""Training cost against corpus size: tokens/sec and peak RSS for growing corpora.

Each corpus trains the book's model (rnn, 256 hidden, batch 32, 35 steps) for a few epochs
in its own process: the book's 10000 tokens, the whole Time Machine (book preprocessing)
and Tiny Shakespeare (raw). Constant tokens/sec means cost linear in corpus size; the peak
RSS over the 10000-token run's shows what the data adds (the token ids and the epoch's
staged batches, 8 bytes per token each).

    python benchmarks/bench_scale.py [--shakespeare ../shared/data/tinyshakespeare.txt]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shakespeare", default=str(HERE.parent.parent / "shared" / "data"
                                                     / "tinyshakespeare.txt"))
    parser.add_argument("--model", default="rnn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=str(HERE / "results" / "scale.json"))
    args = parser.parse_args(argv)
    runs = {
        "Time Machine, first 10000 chars": ["--epochs", "20"],
        "Time Machine, whole (book preprocessing)": ["--epochs", "3", "--max-tokens", "1000000000"],
        "Tiny Shakespeare (raw)": ["--epochs", "2", "--text", args.shakespeare],
    }
    results = {}
    print("| corpus | tokens | vocab | epochs | tokens/s (median epoch) | wall s | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, extra in runs.items():
        cmd = [sys.executable, str(HERE / "run_rnnlab.py"), "--model", args.model,
               "--threads", str(args.threads), *extra]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        results[name] = r
        tps = statistics.median(r["tokens_per_s"])
        print(f"| {name} | {r['num_tokens']:,} | {r['vocab_size']} | {len(r['tokens_per_s'])} | "
              f"{tps:,.0f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} |", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

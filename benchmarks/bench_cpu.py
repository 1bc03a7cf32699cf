"""rnnlab against the book's own code (d2l 0.17.6), interleaved, on this machine's CPU.

Every run is its own process. Each repeat runs the book and rnnlab for every cell, the order
alternating between repeats, so both sides see the same machine load; the speed figure is
the median over epochs (the first, warm-up epoch left out) of each run, and the ratio to the
book is taken within each repeat, then the median over repeats. One full-length run per
entry gives the final perplexity and wall time. The roofline (roofline.py) gives the bound.

    benchmarks/setup_d2l_env.sh          # once
    .venv/bin/python benchmarks/bench_cpu.py --cells rnn gru lstm lstm2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOOK_PYTHON = HERE / ".d2l-env" / "bin" / "python"


@dataclass(frozen=True)
class Entry:
    """One row: an rnnlab model and the book's model it is compared with."""

    name: str
    book: list[str]  # run_book.py arguments
    rnnlab: list[str]  # run_rnnlab.py arguments
    bound: bool  # whether roofline.py's bound (the tanh RNN's) applies
    full_run: bool = True  # False where another entry's full run has the same mathematics


CELLS: dict[str, list[Entry]] = {
    "rnn": [
        Entry("rnn", ["--cell", "rnn"], ["--model", "rnn"], True),
        Entry("scratch", ["--cell", "rnn"], ["--model", "scratch"], True),
        Entry("rnn, torch's default threads", ["--cell", "rnn"],
              ["--model", "rnn", "--threads", "0"], True, full_run=False),
    ],
    "gru": [Entry("gru", ["--cell", "gru"], ["--model", "gru"], False)],
    "lstm": [Entry("lstm", ["--cell", "lstm"], ["--model", "lstm"], False)],
    "lstm2": [
        Entry(
            "lstm 2 layers, lr 2",
            ["--cell", "lstm", "--num-layers", "2", "--lr", "2"],
            ["--model", "lstm", "--num-layers", "2", "--lr", "2"],
            False,
        )
    ],
}


def run(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def book_cmd(entry: Entry, epochs: int, threads: int) -> list[str]:
    return [str(BOOK_PYTHON), str(HERE / "run_book.py"), "--epochs", str(epochs),
            "--threads", str(threads), *entry.book]


def rnnlab_cmd(entry: Entry, epochs: int, threads: int) -> list[str]:
    # the entry's own arguments come last, so an entry may override --threads
    return [sys.executable, str(HERE / "run_rnnlab.py"), "--epochs", str(epochs),
            "--threads", str(threads), *entry.rnnlab]


def speed(result: dict) -> float:
    """Median tokens/sec over a run's epochs, the warm-up epoch left out."""
    per_epoch = result["tokens_per_s"]
    return statistics.median(per_epoch[1:] if len(per_epoch) > 1 else per_epoch)


def cpu_speed(result: dict) -> float:
    """Tokens per second of the process's CPU time over the whole run: at one thread,
    barely disturbed by other processes on a shared machine."""
    return result["tokens"] / result["cpu_s"]


def measure(entries: list[Entry], args: argparse.Namespace, log) -> dict[str, dict]:
    """Speed runs. ``book`` and ``ratio`` are keyed by the book's thread setting."""
    settings = [str(t) for t in args.book_threads]
    rows: dict[str, dict] = {
        e.name: {"rnnlab": [], "book": {t: [] for t in settings}, "ratio": {t: [] for t in settings},
                 "rnnlab_cpu": [], "book_cpu": {t: [] for t in settings},
                 "ratio_cpu": {t: [] for t in settings}}
        for e in entries
    }
    for repeat in range(args.repeats):
        books: dict[tuple[str, str], float] = {}  # one book run per configuration and repeat
        books_cpu: dict[tuple[str, str], float] = {}
        for entry in entries:
            key = " ".join(entry.book)
            jobs = [("book", t, book_cmd(entry, args.speed_epochs, int(t)))
                    for t in settings if (key, t) not in books]
            jobs.append(("rnnlab", "", rnnlab_cmd(entry, args.speed_epochs, args.threads)))
            if repeat % 2:
                jobs.reverse()
            for side, threads, cmd in jobs:
                result = run(cmd)
                if result.get("skipped"):
                    log(f"skip {entry.name}: {result['skipped']}")
                    rows.pop(entry.name, None)
                    continue
                if side == "book":
                    books[key, threads] = speed(result)
                    books_cpu[key, threads] = cpu_speed(result)
                else:
                    rows[entry.name]["rnnlab"].append(speed(result))
                    rows[entry.name]["threads"] = result["threads"]
                    rows[entry.name]["rnnlab_cpu"].append(cpu_speed(result))
                log(f"repeat {repeat + 1} {entry.name:30s} {side:6s} threads "
                    f"{result['threads']} {speed(result):9.0f} tok/s")
            if entry.name in rows:
                row = rows[entry.name]
                for t in settings:
                    row["book"][t].append(books[key, t])
                    row["ratio"][t].append(row["rnnlab"][-1] / books[key, t])
                    row["book_cpu"][t].append(books_cpu[key, t])
                    row["ratio_cpu"][t].append(row["rnnlab_cpu"][-1] / books_cpu[key, t])
    return rows


def full_runs(entries: list[Entry], args: argparse.Namespace, log) -> dict[str, dict]:
    out: dict[str, dict] = {}
    books: dict[str, dict] = {}
    for entry in entries:
        key = " ".join(entry.book)
        if key not in books:
            books[key] = run(book_cmd(entry, args.full_epochs, args.full_book_threads))
        mine = run(rnnlab_cmd(entry, args.full_epochs, args.threads))
        out[entry.name] = {"book": books[key], "rnnlab": mine}
        log(f"full {entry.name}: book ppl {books[key]['perplexity']:.3f} "
            f"{books[key]['wall_s']:.1f} s, rnnlab ppl {mine['perplexity']:.3f} {mine['wall_s']:.1f} s")
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def _seconds(result: dict) -> str:
    cpu = f" ({result['cpu_s']:.1f})" if "cpu_s" in result else ""
    return f"{result['wall_s']:.1f}{cpu}"


def bound_for(roof: dict | None, threads: int) -> int | None:
    """The roofline bound for a run at ``threads`` threads (older JSON: the single bound)."""
    if not roof:
        return None
    return roof.get("bound_by_threads", {}).get(str(threads), roof["bound_tokens_per_s"])


def table(rows: dict, full: dict, roof: dict | None, settings: list[str]) -> str:
    def threads(t: str) -> str:
        return "default threads" if t == "0" else f"{t} thread" + ("s" if t != "1" else "")

    head = ["model", "rnnlab tokens/s"]
    for t in settings:
        head += [f"book tokens/s ({threads(t)})", f"ratio to book ({threads(t)})",
                 f"ratio by CPU time ({threads(t)})"]
    head += ["% of bound", "book ppl", "rnnlab ppl", "book wall s (CPU s)",
             "rnnlab wall s (CPU s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in rows.items():
        cells = [name, spread(r["rnnlab"])]
        for t in settings:
            ratio = r["ratio"][t]
            by_cpu = r["ratio_cpu"][t]
            cells += [spread(r["book"][t]),
                      f"{statistics.median(ratio):.2f}x ({min(ratio):.2f}-{max(ratio):.2f})",
                      f"{statistics.median(by_cpu):.2f}x ({min(by_cpu):.2f}-{max(by_cpu):.2f})"]
        bound = bound_for(roof, r.get("threads", 1))
        cells.append(f"{100 * statistics.median(r['rnnlab']) / bound:.0f}% of {bound // 1000}k"
                     if bound and r.get("bound") else "-")
        f = full.get(name)
        cells += ([f"{f['book']['perplexity']:.3f}", f"{f['rnnlab']['perplexity']:.3f}",
                   _seconds(f["book"]), _seconds(f["rnnlab"])] if f else ["-"] * 4)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["rnn"], choices=list(CELLS))
    parser.add_argument("--only", nargs="+", help="run only the entries with these names")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--speed-epochs", type=int, default=30)
    parser.add_argument("--full-epochs", type=int, default=500, help="0 skips the full runs")
    parser.add_argument("--full-cells", nargs="*", default=["rnn"],
                        help="cells that also get a full-length run (perplexity, wall time)")
    parser.add_argument("--threads", type=int, default=1, help="rnnlab's torch threads")
    parser.add_argument("--book-threads", type=int, nargs="+", default=[0, 1],
                        help="the book's torch threads for the speed runs (0: torch's default)")
    parser.add_argument("--full-book-threads", type=int, default=1,
                        help="the book's threads in its full-length run (perplexity)")
    parser.add_argument("--no-roofline", action="store_true")
    parser.add_argument("--roofline-json", help="take the bound from roofline.py's saved JSON "
                        "instead of measuring it in this run")
    parser.add_argument("--json", default=str(HERE / "results" / "cpu.json"))
    args = parser.parse_args(argv)
    if not BOOK_PYTHON.exists():
        print(f"no book environment at {BOOK_PYTHON.parent.parent}; run "
              "benchmarks/setup_d2l_env.sh first", file=sys.stderr)
        return 1

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    entries = [e for cell in args.cells for e in CELLS[cell] if not args.only or e.name in args.only]
    roof = None
    if args.roofline_json:
        roof = json.loads(Path(args.roofline_json).read_text())
    elif not args.no_roofline:
        sys.path.insert(0, str(HERE))
        import roofline

        roof = roofline.measure([1, 2])
        log(f"roofline: {roof['flops_per_token']:,} FLOP/token, "
            f"bound {roof['bound_tokens_per_s']:,} tokens/s")
    rows = measure(entries, args, log)
    for e in entries:
        if e.name in rows:
            rows[e.name]["bound"] = e.bound
    full = {}
    if args.full_epochs:
        chosen = [e for c in args.full_cells if c in args.cells for e in CELLS[c]
                  if e.name in rows and e.full_run]
        full = full_runs(chosen, args, log)
    text = table(rows, full, roof, [str(t) for t in args.book_threads])
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "roofline": roof, "speed": rows, "full": full,
                   "table": text}, f, indent=2)
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

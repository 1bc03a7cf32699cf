"""Command line: ``rnnlab train`` and ``rnnlab generate``, mirroring the Python API.

Flags map one to one onto config fields (``--seq-len`` -> ``DataConfig.seq_len``) and take
their defaults from the dataclasses. Generated text goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .checkpoint import CONFIG, load_run
from .config import Config, DataConfig, ModelConfig, TrainConfig
from .errors import RnnlabError
from .config import UNKNOWN_POLICIES, GenerateConfig
from .errors import ConfigError
from .generate import Piece, predict, stream_batch
from .models import MODELS
from .runs import default_run_dir, train_run
from .experiments.cli import add_experiment_parser
from .train import EpochStats

PROMPTS = ("time traveller", "traveller")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


# (flags, section, field, extra argparse keywords, help)
TRAIN_FLAGS: list[tuple[tuple[str, ...], type, str, dict[str, Any], str]] = [
    (("--model",), ModelConfig, "model", {"choices": list(MODELS)}, "model from the registry"),
    (("--hidden-size",), ModelConfig, "hidden_size", {"type": _positive(int)},
     "hidden units per layer (the book's num_hiddens)"),
    (("--num-layers",), ModelConfig, "num_layers", {"type": _positive(int)}, "stacked layers"),
    (("--embed-size",), ModelConfig, "embed_size", {"type": _positive(int)},
     "learned embedding of this size instead of one-hot input (framework models)"),
    (("--dropout",), ModelConfig, "dropout", {"type": _fraction},
     "dropout on the input of every layer but the first and on the output, in [0, 1)"),
    (("--tie-weights",), ModelConfig, "tie_weights", {"action": "store_true"},
     "share the embedding with the output layer (needs --embed-size = --hidden-size)"),
    (("--epochs",), TrainConfig, "epochs", {"type": _positive(int)}, "passes over the data"),
    (("--lr",), TrainConfig, "lr", {"type": _positive(float)}, "SGD learning rate"),
    (("--clip",), TrainConfig, "clip", {"type": _positive(float)},
     "clip gradients to this global L2 norm (the book's theta)"),
    (("--seed",), TrainConfig, "seed", {"type": int}, "seed for weights and batches"),
    (("--device",), TrainConfig, "device", {}, "auto, cpu, cuda or cuda:N"),
    (("--batch-size",), DataConfig, "batch_size", {"type": _positive(int)}, "sequences per batch"),
    (("--seq-len", "--num-steps"), DataConfig, "seq_len", {"type": _positive(int)},
     "tokens per sequence (the book's num_steps)"),
    (("--max-tokens",), DataConfig, "max_tokens", {"type": _positive(int)},
     "use the first N tokens (default: 10000 for the Time Machine, all of any other text)"),
    (("--random-iter",), DataConfig, "random_iter", {"action": "store_true"},
     "random sampling instead of sequential partitioning"),
    (("--corpus",), DataConfig, "corpus", {}, "bundled or registered corpus name"),
    (("--text",), DataConfig, "text", {"metavar": "PATH"}, "train on this text file instead"),
    (("--encoding",), DataConfig, "encoding", {}, "encoding of --text"),
    (("--preprocess",), DataConfig, "preprocess", {"choices": ["auto", "book", "raw"]},
     "book: letters only, lower case; raw: every character; auto: book for the Time "
     "Machine, raw otherwise"),
    (("--token",), DataConfig, "token", {"choices": ["char", "word"]}, "token unit"),
]


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (defaults: the book's section 8.6 run)",
        description="Train a language model and write a run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for flags, section, name, extra, help_text in TRAIN_FLAGS:
        default = {f.name: f for f in dataclasses.fields(section)}[name].default
        p.add_argument(*flags, dest=name, default=default, help=help_text, **extra)
    p.add_argument("--out", type=Path, help="run directory (default: runs/<corpus>-<model>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--num-preds", type=int, default=50, help="characters predicted at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


# (flags, GenerateConfig field, extra argparse keywords, help)
GENERATE_FLAGS: list[tuple[tuple[str, ...], str, dict[str, Any], str]] = [
    (("--num-preds",), "num_preds", {"type": int}, "tokens generated after each prefix"),
    (("--temperature",), "temperature", {"type": float},
     "0: greedy, the book's prediction; 1: sample from the model's distribution; "
     "below 1 sharper, above 1 flatter"),
    (("--top-k",), "top_k", {"type": int, "metavar": "K"},
     "sample among the K most likely tokens only"),
    (("--top-p",), "top_p", {"type": float, "metavar": "P"},
     "sample among the fewest most likely tokens whose probability adds up to P (nucleus)"),
    (("--alpha",), "alpha", {"type": float},
     "sample from P^alpha (the book's exercise): the same as dividing --temperature by alpha"),
    (("--seed",), "seed", {"type": int}, "the same seed gives the same samples"),
    (("--num-samples",), "num_samples", {"type": int},
     "samples per prefix, generated in one batch; sample s uses seed + s"),
    (("--stop",), "stop", {"metavar": "TEXT"},
     "end a sample once it generates TEXT, which ends the output (bash: --stop $'\\n')"),
    (("--unknown",), "unknown", {"choices": list(UNKNOWN_POLICIES)},
     "prefix characters outside the vocabulary: unk reads them as <unk>, skip drops them, "
     "error refuses the prefix"),
]


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate text from a trained run",
        description="Warm up on each prefix, then generate greedily (the book) or by "
        "sampling from a run directory. Text goes to stdout as it is generated.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a training run's directory")
    p.add_argument("--prefix", action="append", metavar="TEXT", default=argparse.SUPPRESS,
                   help=f"text to warm the state up on; repeat for several prompts "
                   f"(default: {PROMPTS[0]!r})")
    p.add_argument("--prefix-file", action="append", type=Path, metavar="PATH",
                   default=argparse.SUPPRESS,
                   help="a file whose whole text is a prompt (after any --prefix); repeatable")
    p.add_argument("--encoding", default="utf-8", help="encoding of --prefix-file")
    defaults = {f.name: f.default for f in dataclasses.fields(GenerateConfig)}
    for flags, name, extra, help_text in GENERATE_FLAGS:
        p.add_argument(*flags, dest=name, default=defaults[name], help=help_text, **extra)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--verbose", action="store_true",
                   help="report the generation speed (characters/sec) on stderr")
    p.set_defaults(func=cmd_generate, parser=p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Train and sample recurrent language models."
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_generate(sub)
    add_experiment_parser(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    def section(cls: type) -> Any:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    return Config(section(DataConfig), section(ModelConfig), section(TrainConfig))


class ProgressBar:
    """A tqdm bar over epochs with live perplexity and tokens/sec, on stderr."""

    def __init__(self, epochs: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, s: EpochStats) -> None:
        self.bar.set_postfix(ppl=f"{s.perplexity:.2f}", tok_s=f"{s.tokens_per_s:,.0f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    run_dir = args.out or default_run_dir(config)
    if (run_dir / CONFIG).exists() and not args.overwrite:
        raise RnnlabError(f"{run_dir} already holds a run; pick another --out or pass --overwrite")
    bar = None if args.quiet else ProgressBar(config.train.epochs)
    try:
        result = train_run(config, run_dir, callbacks=[bar] if bar else [])
    finally:
        if bar:
            bar.close()
    last = result.history[-1]
    print(f"perplexity {last.perplexity:.1f}, {last.tokens_per_s:.1f} tokens/sec on {result.device}")
    for prompt in PROMPTS:
        print(predict(result.model, result.vocab, prompt, args.num_preds))
    print(f"trained in {result.seconds:.1f} s; run saved to {result.run_dir}", file=sys.stderr)
    return 0


def _prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(getattr(args, "prefix", []))
    for path in getattr(args, "prefix_file", []):
        try:
            prompts.append(path.read_text(encoding=args.encoding))
        except (OSError, UnicodeDecodeError, LookupError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
            raise RnnlabError(f"cannot read --prefix-file {path}: {reason}") from None
    return prompts or [PROMPTS[0]]


def _write_rows(pieces: Iterable[Piece], rows: int) -> None:
    """Write each row's text as its pieces come, one row after the other, each ending in
    a newline: the first row streams, later ones follow from what was held back."""
    held: list[list[str]] = [[] for _ in range(rows)]
    finished = [False] * rows
    current = 0
    for piece in pieces:
        held[piece.row].append(piece.text)
        finished[piece.row] = piece.final
        while current < rows and (held[current] or finished[current]):
            sys.stdout.write("".join(held[current]))
            held[current].clear()
            if not finished[current]:
                break
            sys.stdout.write("\n")
            current += 1
        sys.stdout.flush()


def cmd_generate(args: argparse.Namespace) -> int:
    from .train import select_device

    try:
        config = GenerateConfig(**{name: getattr(args, name) for _, name, _, _ in GENERATE_FLAGS})
    except ConfigError as exc:
        args.parser.error(str(exc))  # a bad flag: exit 2, as argparse's own checks do
    prompts = _prompts(args)
    device = select_device(args.device)
    model, vocab, _ = load_run(args.run_dir, device)
    rows = len(prompts) * config.num_samples
    start = time.perf_counter()
    pieces = stream_batch(model, vocab, prompts, config, device)
    counted = _TokenCounter(pieces)
    _write_rows(counted, rows)
    seconds = time.perf_counter() - start
    if args.verbose:
        unit, short = ("characters", "chars") if vocab.token_type == "char" else ("words",) * 2
        print(
            f"{counted.generated} {unit} generated in {seconds:.3f} s "
            f"({counted.generated / max(seconds, 1e-9):,.0f} {short}/sec; {rows} "
            f"sample{'s' if rows > 1 else ''}, seed {config.seed})",
            file=sys.stderr,
        )
    return 0


class _TokenCounter:
    """Passes pieces through, counting the generated tokens (one piece each after the
    prefix)."""

    def __init__(self, pieces: Iterable[Piece]) -> None:
        self.pieces = pieces
        self.generated = 0

    def __iter__(self) -> Iterator[Piece]:
        seen: set[int] = set()
        for piece in self.pieces:
            self.generated += piece.row in seen
            seen.add(piece.row)
            yield piece


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``rnnlab train`` and ``rnnlab generate``, mirroring the Python API.

Flags map one to one onto config fields (``--seq-len`` -> ``DataConfig.seq_len``) and take
their defaults from the dataclasses. Generated text goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .checkpoint import CONFIG, load_run
from .config import (
    OPTIMIZERS,
    SCHEDULES,
    UNKNOWN_POLICIES,
    Config,
    DataConfig,
    GenerateConfig,
    ModelConfig,
    TrainConfig,
)
from .corpus import load_corpus, preprocess_mode
from .errors import ConfigError, RnnlabError
from .evaluate import evaluate_tokens
from .experiments.cli import add_experiment_parser
from .generate import Piece, predict, stream_batch
from .models import MODELS
from .presets import PRESETS, get_preset, layer
from .runs import Run, default_run_dir, load_best, load_dataset
from .signals import graceful_stop
from .train import EpochStats

PROMPTS = ("time traveller", "traveller")


def _number(kind: Callable[[str], Any], accept: Callable[[Any], bool], rule: str) -> Any:
    """An argparse type: ``kind(text)`` that must satisfy ``accept`` (stated as ``rule``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _positive(kind: Callable[[str], Any]) -> Any:
    return _number(kind, lambda v: v > 0, "positive")


_fraction = _number(float, lambda v: 0.0 <= v < 1.0, "at least 0 and below 1")
_non_negative = _number(float, lambda v: v >= 0, "zero or more")
_non_negative_int = _number(int, lambda v: v >= 0, "zero or more")

SECTIONS = {DataConfig: "data", ModelConfig: "model", TrainConfig: "train"}

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
    (("--lr",), TrainConfig, "lr", {"type": _positive(float)}, "learning rate"),
    (("--optimizer",), TrainConfig, "optimizer", {"choices": list(OPTIMIZERS)},
     "sgd (the book), adam, adamw or rmsprop (char-rnn)"),
    (("--weight-decay",), TrainConfig, "weight_decay", {"type": _non_negative},
     "weight decay (decoupled for adamw, an L2 term otherwise)"),
    (("--momentum",), TrainConfig, "momentum", {"type": _non_negative},
     "momentum of sgd or rmsprop"),
    (("--schedule",), TrainConfig, "schedule", {"choices": list(SCHEDULES)},
     "learning-rate schedule, stepped once per epoch"),
    (("--step-size",), TrainConfig, "step_size", {"type": _positive(int)},
     "step schedule: epochs between decays"),
    (("--decay-after",), TrainConfig, "decay_after", {"type": _non_negative_int},
     "step schedule: epochs before the first decay (0: --step-size)"),
    (("--gamma",), TrainConfig, "gamma", {"type": _positive(float)},
     "step and plateau schedules: lr factor at each decay"),
    (("--patience",), TrainConfig, "patience", {"type": _non_negative_int},
     "plateau schedule: evaluations without improvement before a decay"),
    (("--min-lr",), TrainConfig, "min_lr", {"type": _non_negative},
     "cosine and plateau schedules: the lowest lr"),
    (("--clip",), TrainConfig, "clip", {"type": _non_negative},
     "clip gradients to this global L2 norm (the book's theta); 0: no clipping"),
    (("--no-clip",), TrainConfig, "clip", {"action": "store_const", "const": None},
     "do not clip gradients (same as --clip 0)"),
    (("--eval-every",), TrainConfig, "eval_every", {"type": _positive(int)},
     "epochs between validation passes"),
    (("--seed",), TrainConfig, "seed", {"type": int}, "seed for weights and batches"),
    (("--device",), TrainConfig, "device", {}, "auto, cpu, cuda or cuda:N"),
    (("--save-every",), TrainConfig, "save_every", {"type": _positive(int)},
     "write a resumable checkpoint every N epochs (and always at the end)"),
    (("--save-minutes",), TrainConfig, "save_minutes", {"type": _positive(float)},
     "also write one when this many minutes have passed"),
    (("--keep-last",), TrainConfig, "keep_last", {"type": _positive(int)},
     "checkpoints kept besides the best"),
    (("--threads",), TrainConfig, "threads", {"type": _positive(int)},
     "CPU threads (default: torch's); 1 is fastest when other jobs share the cores"),
    (("--batch-size",), DataConfig, "batch_size", {"type": _positive(int)}, "sequences per batch"),
    (("--seq-len", "--num-steps"), DataConfig, "seq_len", {"type": _positive(int)},
     "tokens per sequence (the book's num_steps)"),
    (("--max-tokens",), DataConfig, "max_tokens", {"type": _non_negative_int},
     "use the first N tokens, 0 all (None: 10000 for the Time Machine, all of any other text)"),
    (("--val-fraction",), DataConfig, "val_fraction", {"type": _fraction},
     ("hold out this last part of the tokens (before the test part) for validation "
      "(None: 0 for the Time Machine, as in the book; 0.1 for any other text)")),
    (("--test-fraction",), DataConfig, "test_fraction", {"type": _fraction},
     "hold out this last part of the tokens as a test set"),
    (("--random-iter",), DataConfig, "random_iter", {"action": "store_true"},
     "random sampling instead of sequential partitioning"),
    (("--corpus",), DataConfig, "corpus", {}, "bundled or registered corpus name"),
    (("--text",), DataConfig, "text", {"metavar": "PATH"}, "train on this text file instead"),
    (("--encoding",), DataConfig, "encoding", {}, "encoding of --text"),
    (("--preprocess",), DataConfig, "preprocess", {"choices": ["auto", "book", "raw"]},
     ("book: letters only, lower case; raw: every character; auto: book for the Time "
      "Machine, raw otherwise")),
    (("--token",), DataConfig, "token", {"choices": ["char", "word"]}, "token unit"),
]


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (defaults: the book's section 8.6 run)",
        description="Train a language model and write a run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", choices=list(PRESETS),
                   help="start from a named run; flags given here override it")
    # Flags not given stay out of the namespace, so a preset can supply them instead.
    for flags, section, name, extra, help_text in TRAIN_FLAGS:
        default = {f.name: f for f in dataclasses.fields(section)}[name].default
        if extra.get("action") not in ("store_true", "store_const"):
            help_text = f"{help_text} (default: {default})"
        p.add_argument(*flags, dest=name, default=argparse.SUPPRESS, help=help_text, **extra)
    p.add_argument("--out", type=Path, help="run directory (default: runs/<corpus>-<model>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a stopped run to its configured end (its flags are kept)")
    p.add_argument("--num-preds", type=int, default=50, help="characters predicted at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


# (flags, GenerateConfig field, extra argparse keywords, help)
GENERATE_FLAGS: list[tuple[tuple[str, ...], str, dict[str, Any], str]] = [
    (("--num-preds",), "num_preds", {"type": int}, "tokens generated after each prefix"),
    (("--temperature",), "temperature", {"type": float},
     ("0: greedy, the book's prediction; 1: sample from the model's distribution; "
      "below 1 sharper, above 1 flatter")),
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
     ("prefix characters outside the vocabulary: unk reads them as <unk>, skip drops them, "
      "error refuses the prefix")),
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
    p.add_argument("--best", action="store_true",
                   help="use the weights with the best validation loss (best.safetensors)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--verbose", action="store_true",
                   help="report the generation speed (characters/sec) on stderr")
    p.set_defaults(func=cmd_generate, parser=p)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="perplexity and bits per character of a trained run on a text",
        description="Score a trained run on a whole text, preprocessed as the run was. "
        "Characters outside the run's vocabulary are scored as <unk> and listed.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a training run's directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", metavar="PATH", help="a text file to score")
    source.add_argument("--corpus", help="a bundled or registered corpus to score")
    source.add_argument("--split", choices=["val", "test"],
                        help="the run's own held-out part, as its config cuts it")
    p.add_argument("--encoding", default="utf-8", help="encoding of --text (default: utf-8)")
    p.add_argument("--best", action="store_true",
                   help="use the weights with the best validation loss (best.safetensors)")
    p.add_argument("--batch-size", type=_positive(int),
                   help="rows scored in parallel (default: the run's, as in its validation)")
    p.add_argument("--seq-len", type=_positive(int),
                   help="tokens per forward pass, the state carried across (default: the run's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.set_defaults(func=cmd_evaluate)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    from .compare import DEFAULT_GRID

    p = sub.add_parser(
        "compare",
        help="train a grid of models on one corpus and tabulate them",
        description="Train every model of a grid with the same data and settings, then write "
        "a table (Markdown and CSV) and one plot of every perplexity curve. An entry is "
        "NAME[:FIELD=VALUE...], FIELD a model or training flag without its dashes, e.g. "
        "lstm:num-layers=2:lr=2.",
    )
    p.add_argument("--models", nargs="+", default=list(DEFAULT_GRID), metavar="ENTRY",
                   help=f"the grid (default: {' '.join(DEFAULT_GRID)})")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="start every entry from a named run; flags and entries override it")
    for flags, section, name, extra, help_text in TRAIN_FLAGS:
        if name == "model":
            continue
        default = {f.name: f for f in dataclasses.fields(section)}[name].default
        if extra.get("action") not in ("store_true", "store_const"):
            help_text = f"{help_text} (default: {default})"
        p.add_argument(*flags, dest=name, default=argparse.SUPPRESS, help=help_text, **extra)
    p.add_argument("--out", type=Path,
                   help="output directory (default: runs/compare-<corpus>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a comparison in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Train and sample recurrent language models."
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_generate(sub)
    add_experiment_parser(sub)
    _add_evaluate(sub)
    _add_compare(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults, then ``--preset``, then the flags given on the command line."""
    flags: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS.values()}
    for _, section, name, _, _ in TRAIN_FLAGS:
        if hasattr(args, name):
            flags[SECTIONS[section]][name] = getattr(args, name)
    preset = get_preset(args.preset) if getattr(args, "preset", None) else {}
    return layer(preset, flags)


class ProgressBar:
    """A tqdm bar over epochs with live perplexity and tokens/sec, on stderr."""

    def __init__(self, epochs: int, initial: int = 0) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]

        self.bar = tqdm(
            total=epochs, initial=initial, unit="epoch", file=sys.stderr, dynamic_ncols=True
        )
        self.val = ""  # the latest validation perplexity, shown until the next evaluation

    def __call__(self, s: EpochStats) -> None:
        if s.val_perplexity is not None:
            self.val = f"{s.val_perplexity:.2f}"
        shown = {"val_ppl": self.val} if self.val else {}
        self.bar.set_postfix(ppl=f"{s.perplexity:.2f}", **shown, tok_s=f"{s.tokens_per_s:,.0f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _start_run(args: argparse.Namespace) -> Run:
    if args.resume is not None:
        return Run.resume(args.resume)
    config = config_from_args(args)
    run_dir = args.out or default_run_dir(config)
    if (run_dir / CONFIG).exists() and not args.overwrite:
        raise RnnlabError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
            f"pick another --out, or pass --overwrite"
        )
    return Run(config, run_dir)


def cmd_train(args: argparse.Namespace) -> int:
    run = _start_run(args)
    trainer = run.trainer
    bar = None if args.quiet else ProgressBar(trainer.epochs, initial=trainer.epoch)
    if bar:
        trainer.callbacks.append(bar)
    try:
        with graceful_stop(trainer.request_stop) as stop:
            result = run.fit()
    finally:
        if bar:
            bar.close()
    if result.stopped:
        print(
            f"rnnlab: stopped in epoch {trainer.epoch + 1} after step {trainer.step}; saved. "
            f"Resume with: rnnlab train --resume {result.run_dir}",
            file=sys.stderr,
        )
        return stop.exit_code if stop.signum else 1
    last = result.history[-1]
    print(f"perplexity {last.perplexity:.1f}, {last.tokens_per_s:.1f} tokens/sec on {result.device}")
    validated = [s for s in result.history if s.val_loss is not None]
    if validated:
        best = min(validated, key=lambda s: s.val_loss or 0.0)
        print(f"validation perplexity {validated[-1].val_perplexity:.3f}; best "
              f"{best.val_perplexity:.3f} (loss {best.val_loss:.4f} nats) in epoch {best.epoch}, "
              f"kept in best.safetensors", file=sys.stderr)
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
    if args.best:
        load_best(model, args.run_dir, device)
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .train import select_device

    device = select_device(args.device)
    model, vocab, config = load_run(args.run_dir, device)
    if args.best:
        load_best(model, args.run_dir, device)
    d = config.data
    if args.split:
        data = load_dataset(d)
        ids = data.val_ids if args.split == "val" else data.test_ids
        if ids is None:
            raise RnnlabError(f"{args.run_dir} was trained without a {args.split} part; "
                              f"pass --text or --corpus instead")
        tokens = [data.vocab.idx_to_token[i] for i in ids.tolist()]
        label = f"{data.corpus.name} ({args.split})"
    else:
        mode = preprocess_mode(d.corpus, d.text, d.preprocess)  # as the run was trained
        corpus = load_corpus(args.corpus or d.corpus, args.text, mode, d.token, args.encoding)
        label, tokens = corpus.name, corpus.tokens
    result, unknown = evaluate_tokens(
        model, vocab, tokens, args.batch_size or d.batch_size, args.seq_len or d.seq_len
    )
    unit = "char" if d.token == "char" else "word"
    print(
        f"{label}: {result.num_tokens} {unit}s scored, loss {result.loss:.4f} nats, "
        f"perplexity {result.perplexity:.4f}, {result.bits_per_token:.4f} bits/{unit}"
    )
    count = sum(unknown.values())
    listed = ", ".join(f"{t!r} x{n}" for t, n in unknown.most_common())
    print(f"unknown: {count} {unit}s outside the vocabulary, scored as <unk>" +
          (f": {listed}" if count else ""))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import time

    from .compare import CSV, PLOT, TABLE, compare, parse_grid, table_markdown

    base = config_from_args(args)
    parse_grid(args.models, base)  # a bad entry fails before any training
    name = Path(base.data.text).stem if base.data.text else base.data.corpus
    out = args.out or Path("runs") / f"compare-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (out / CSV).exists() and not args.overwrite:
        raise RnnlabError(f"{out} already holds a comparison; pick another --out or pass "
                          f"--overwrite")
    bars: list[ProgressBar] = []

    def progress(entry: Any) -> list[Any]:
        if args.quiet:
            return []
        if bars:
            bars[-1].close()
        bars.append(ProgressBar(entry.config.train.epochs))
        bars[-1].bar.set_description(entry.label)
        return [bars[-1]]

    try:
        results = compare(base, args.models, out, progress)
    finally:
        if bars:
            bars[-1].close()
    print(table_markdown(results), end="")
    print(f"table in {out / TABLE} and {out / CSV}, curves in {out / PLOT}", file=sys.stderr)
    return 0


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
    except BrokenPipeError:
        # The reader closed the pipe (`rnnlab generate ... | head`): the run is saved and
        # there is no one left to print to. Point stdout at /dev/null so that Python's
        # final flush does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())

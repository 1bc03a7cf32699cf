"""``rnnlab experiment NAME``: one subcommand per experiment, its flags read from the
fields of the experiment's config dataclass (defaults and help text live there)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

from ..errors import ConfigError, RnnlabError
from . import EXPERIMENTS
from .common import REPORT


def _add_fields(parser: argparse.ArgumentParser, config: type) -> None:
    for f in dataclasses.fields(config):
        kind = {"int": int, "float": float, "str": str}[str(f.type).split(" ")[0]]
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default,
            help=f.metadata.get("help", ""),
        )


def add_experiment_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="run one of the section's exercises and write figures and a report",
        description="Run an experiment; it writes PNG and SVG figures and report.md into --out.",
    )
    names = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name, experiment in EXPERIMENTS.items():
        q = names.add_parser(
            name, help=experiment.summary, description=experiment.summary,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        _add_fields(q, experiment.config)
        q.add_argument("--out", type=Path, help="output directory (default: runs/experiment-"
                       f"{name}-<time>)")
        q.add_argument("--overwrite", action="store_true",
                       help="replace an experiment already in --out")
        q.set_defaults(parser=q)
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args: argparse.Namespace) -> int:
    experiment = EXPERIMENTS[args.experiment]
    try:
        config = experiment.config(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(experiment.config)}
        )
    except ConfigError as exc:
        args.parser.error(str(exc))  # a bad flag value: exit 2, as argparse's own checks do
    out = args.out or Path("runs") / f"experiment-{args.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (out / REPORT).exists() and not args.overwrite:
        raise RnnlabError(f"{out} already holds an experiment; pick another --out or pass "
                          f"--overwrite")
    print(f"running {args.experiment}; writing to {out}", file=sys.stderr)
    # Each trained setting is logged as it finishes: progress on stderr, the report on stdout.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("rnnlab.experiments")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = experiment.run(config, out)
    finally:
        logger.removeHandler(handler)
    print(result.report.read_text(encoding="utf-8"))
    print(f"done in {result.seconds:.1f} s; report at {result.report}", file=sys.stderr)
    return 0

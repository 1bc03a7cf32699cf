"""The exercises of d2l section 8.6 as experiments: each trains a few settings and writes
PNG and SVG figures and a Markdown ``report.md`` into its run directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import autoregressive, depth, overfit
from .autoregressive import AutoregressiveConfig
from .depth import DepthConfig
from .overfit import OverfitConfig


@dataclass(frozen=True)
class Experiment:
    config: type
    run: Callable[..., Any]  # run(config, out_dir) -> a result with .report and .seconds
    summary: str


EXPERIMENTS: dict[str, Experiment] = {
    "overfit": Experiment(
        OverfitConfig, overfit.run,
        "exercise 1: memorise the training text, watch validation turn up, close the gap",
    ),
    "depth": Experiment(
        DepthConfig, depth.run, "exercise 2: 1 to 4 layers, and what makes the deep ones work"
    ),
    "autoregressive": Experiment(
        AutoregressiveConfig, autoregressive.run,
        "exercise 3: section 8.1's MLP against an RNN, k-step-ahead predictions",
    ),
}

__all__ = ["EXPERIMENTS", "AutoregressiveConfig", "DepthConfig", "Experiment", "OverfitConfig"]

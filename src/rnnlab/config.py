"""Typed, validated configuration. Defaults are the book's run (d2l section 8.6).

The book's names, once: ``num_steps`` is ``seq_len``, ``num_hiddens`` is ``hidden_size``,
``begin_state`` is ``init_state``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "plateau")


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{name.replace('_', '-')} must be positive, got {value}")


@dataclass
class DataConfig:
    """Which text, how it is tokenized, and how it is cut into minibatches."""

    corpus: str = "timemachine"  # a bundled or registered corpus name; ignored when text is set
    text: str | None = None  # path to a text file used instead of corpus
    encoding: str = "utf-8"  # of the text file
    preprocess: str = "auto"  # "book" (letters only, lower case), "raw" (every character), "auto"
    token: str = "char"  # "char" or "word"
    max_tokens: int | None = None  # None: the corpus default (10000 for the Time Machine, else all)
    batch_size: int = 32
    seq_len: int = 35  # the book's num_steps
    random_iter: bool = False  # random sampling instead of sequential partitioning
    # Held-out parts of the token stream, cut from its end: validation, then test. None:
    # 0 for the bundled Time Machine (the book trains on all of it), else 0.1.
    val_fraction: float | None = None
    test_fraction: float = 0.0

    def __post_init__(self) -> None:
        _positive(self, "batch_size", "seq_len")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ConfigError(f"max-tokens must be 0 (all) or positive, got {self.max_tokens}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1), got {value}")
        if (self.val_fraction or 0.0) + self.test_fraction >= 1.0:
            raise ConfigError(
                "val-fraction plus test-fraction must leave some text to train on (below 1)"
            )

    @property
    def held_out(self) -> tuple[float, float]:
        """The validation and test fractions, with ``None`` resolved."""
        val = self.val_fraction
        if val is None:
            val = 0.0 if self.text is None and self.corpus == "timemachine" else 0.1
        return val, self.test_fraction
        if self.preprocess not in ("auto", "book", "raw"):
            raise ConfigError(f"preprocess must be auto, book or raw, got {self.preprocess!r}")
        if self.token not in ("char", "word"):
            raise ConfigError(f"token must be char or word, got {self.token!r}")


@dataclass
class ModelConfig:
    """Which model and how large."""

    model: str = "rnn"
    hidden_size: int = 256  # the book's num_hiddens
    num_layers: int = 1
    embed_size: int | None = None  # None: one-hot input, as in the book
    dropout: float = 0.0  # on the input of every layer but the first, and on the output
    tie_weights: bool = False  # share the embedding with the output layer

    def __post_init__(self) -> None:
        _positive(self, "hidden_size", "num_layers", "embed_size")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be at least 0 and below 1, got {self.dropout}")
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise ConfigError(
                "tie-weights shares the embedding with the output layer, so it needs "
                f"--embed-size equal to --hidden-size ({self.hidden_size}), got {self.embed_size}"
            )


@dataclass
class TrainConfig:
    """How the model is optimised."""

    epochs: int = 500
    lr: float = 1.0
    clip: float | None = 1.0  # global gradient-norm bound theta; None (or 0) disables clipping
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when present, else CPU
    threads: int | None = None  # CPU threads for torch; None keeps torch's default
    optimizer: str = "sgd"  # one of OPTIMIZERS; the book uses plain SGD
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd and rmsprop only
    schedule: str = "constant"  # one of SCHEDULES, stepped once per epoch
    step_size: int = 1  # step: epochs between decays
    decay_after: int = 0  # step: epochs before the first decay (0: step_size)
    gamma: float = 0.1  # step and plateau: factor applied to the lr at each decay
    patience: int = 10  # plateau: evaluations without improvement before a decay
    min_lr: float = 0.0  # cosine and plateau: the lowest lr
    eval_every: int = 1  # epochs between validation passes (with a validation split)
    save_every: int = 10  # epochs between checkpoints (one is always written at the end)
    save_minutes: float | None = None  # also checkpoint when this much time has passed
    keep_last: int = 2  # checkpoints kept besides the best

    def __post_init__(self) -> None:
        if self.clip == 0:
            self.clip = None
        self._check_optimization()
        _positive(
            self, "epochs", "lr", "clip", "save_every", "save_minutes", "keep_last", "threads"
        )

    def _check_optimization(self) -> None:
        _positive(self, "step_size", "eval_every", "gamma")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"
            )
        if self.momentum and self.optimizer not in ("sgd", "rmsprop"):
            raise ConfigError(f"momentum applies to sgd and rmsprop, not {self.optimizer}")
        for name in ("weight_decay", "momentum", "decay_after", "patience", "min_lr"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', '-')} must not be negative")
        if self.gamma > 1:
            raise ConfigError(f"gamma is a decay factor, at most 1, got {self.gamma}")


@dataclass
class Config:
    """Everything that defines a run; written to ``config.json`` in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        try:
            return cls(
                data=DataConfig(**raw.get("data", {})),
                model=ModelConfig(**raw.get("model", {})),
                train=TrainConfig(**raw.get("train", {})),
            )
        except TypeError as exc:
            raise ConfigError(f"config has an unknown or missing field: {exc}") from None


UNKNOWN_POLICIES = ("unk", "skip", "error")


@dataclass
class GenerateConfig:
    """How text is generated from a prefix. The defaults are the book's greedy prediction.

    ``temperature`` 0 is greedy; above 0 samples. ``alpha`` samples from ``P^alpha``
    (the book's exercise), which is temperature ``1 / alpha``. Sample ``s`` of every prompt
    draws from its own generator seeded with ``seed + s``.
    """

    num_preds: int = 50  # tokens generated after the prefix
    temperature: float = 0.0  # 0: greedy; 1: the model's distribution; below 1 sharper
    top_k: int | None = None  # sample among the k most likely tokens only
    top_p: float = 1.0  # sample among the fewest tokens whose probability reaches top_p
    alpha: float = 1.0  # sample from P^alpha; the same as dividing the temperature by alpha
    seed: int = 0  # samples repeat for a given seed
    num_samples: int = 1  # samples per prompt, generated in one batch
    stop: str | None = None  # end a sample once this text appears in what it generated
    unknown: str = "unk"  # prefix tokens outside the vocabulary: "unk", "skip" or "error"

    def __post_init__(self) -> None:
        if self.num_preds < 0:
            raise ConfigError(f"num-preds must be zero or more, got {self.num_preds}")
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be zero (greedy) or more, got {self.temperature}")
        _positive(self, "top_k", "alpha", "num_samples")
        if not 0 <= self.seed <= 2**63 - self.num_samples:  # sample s is seeded with seed + s
            raise ConfigError(f"seed must be from 0 to 2**63 - num-samples, got {self.seed}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p must be above 0 and at most 1, got {self.top_p}")
        if self.stop == "":
            raise ConfigError("stop must be a non-empty string")
        if self.unknown not in UNKNOWN_POLICIES:
            raise ConfigError(
                f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, got {self.unknown!r}"
            )
        if self.temperature == 0 and (
            self.top_k is not None or self.top_p < 1 or self.alpha != 1
        ):
            raise ConfigError(
                "top-k, top-p and alpha shape sampling, but temperature 0 is greedy; "
                "pass a temperature above 0 (1 samples from the model's distribution)"
            )

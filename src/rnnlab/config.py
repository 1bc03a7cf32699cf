"""Typed, validated configuration. Defaults are the book's run (d2l section 8.6).

The book's names, once: ``num_steps`` is ``seq_len``, ``num_hiddens`` is ``hidden_size``,
``begin_state`` is ``init_state``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


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

    def __post_init__(self) -> None:
        _positive(self, "max_tokens", "batch_size", "seq_len")
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
    clip: float | None = 1.0  # global gradient-norm bound theta; None disables clipping
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when present, else CPU

    def __post_init__(self) -> None:
        _positive(self, "epochs", "lr", "clip")


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

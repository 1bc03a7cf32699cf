"""Named runs: partial configs layered between the defaults and the command-line flags.

Precedence is default < preset < flag: a preset names only the fields it changes, and a
flag given on the command line wins over both.
"""

from __future__ import annotations

import copy
from typing import Any

from .config import Config
from .errors import ConfigError

Partial = dict[str, dict[str, Any]]  # section ("data", "model", "train") -> field -> value

PRESETS: dict[str, Partial] = {
    # The book's section 8.6 run, which the defaults already are.
    "d2l-8.6": {},
    # The 1.0 edition's concise RNN (section 9.6): 32 hidden units, minibatches of 1024
    # subsequences of 32 tokens, each from a fresh state, 100 epochs of SGD at lr 1 with
    # clipping at 1, and a held-out validation part. That edition draws 10000 overlapping
    # training windows; non-overlapping windows need more text for a batch of 1024, so the
    # whole book is used (max_tokens 0) with its last tenth held out.
    "d2l-9.6": {
        "data": {
            "corpus": "timemachine", "batch_size": 1024, "seq_len": 32, "max_tokens": 0,
            "random_iter": True, "val_fraction": 0.1,
        },
        "model": {"model": "rnn", "hidden_size": 32},
        "train": {"epochs": 100, "lr": 1.0, "clip": 1.0},
    },
    # karpathy's char-rnn defaults: a 2-layer LSTM of 128 on tiny shakespeare, sequences of
    # 50 in batches of 50, RMSprop at 2e-3 decayed by 0.97 per epoch after epoch 10, gradients
    # clipped at 5 (char-rnn clips each element; here the global norm), 10% held out.
    "char-rnn": {
        "data": {
            "corpus": "tinyshakespeare", "preprocess": "raw", "batch_size": 50, "seq_len": 50,
            "val_fraction": 0.1,
        },
        "model": {"model": "lstm", "hidden_size": 128, "num_layers": 2, "dropout": 0.0},
        "train": {
            "epochs": 50, "optimizer": "rmsprop", "lr": 2e-3, "clip": 5.0,
            "schedule": "step", "gamma": 0.97, "step_size": 1, "decay_after": 10,
        },
    },
}


def get_preset(name: str) -> Partial:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def layer(*partials: Partial) -> Config:
    """A config from the defaults with each partial applied in turn, later ones winning."""
    merged: Partial = {"data": {}, "model": {}, "train": {}}
    for partial in partials:
        for section, fields in partial.items():
            if section not in merged:
                raise ConfigError(f"unknown config section {section!r}")
            merged[section].update(fields)
    return Config.from_dict(merged)

"""The run directory: weights (safetensors), config, vocabulary and metrics.

Nothing here unpickles: weights are safetensors, everything else is JSON or CSV. Every file
is written to a temporary name and renamed, so a crash leaves the previous version whole.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from .config import Config
from .errors import CheckpointError, ConfigError
from .models import model_from_config
from .train import EpochStats
from .vocab import Vocab

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
VOCAB = "vocab.json"
METRICS = "metrics.csv"
METRIC_FIELDS = ("epoch", "perplexity", "tokens_per_s")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a flushed temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def metrics_csv(history: Sequence[EpochStats]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_FIELDS)
    for s in history:
        writer.writerow((s.epoch, f"{s.perplexity:.6f}", f"{s.tokens_per_s:.1f}"))
    return out.getvalue()


def save_run(
    run_dir: str | Path,
    model: nn.Module,
    vocab: Vocab,
    config: Config,
    history: Sequence[EpochStats] = (),
) -> Path:
    """Write everything needed to load ``model`` back into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(run_dir / WEIGHTS, save(tensors, metadata={"format": "rnnlab"}))
    atomic_write(run_dir / CONFIG, json.dumps(config.to_dict(), indent=2).encode())
    atomic_write(run_dir / VOCAB, json.dumps(vocab.to_dict(), ensure_ascii=False).encode())
    atomic_write(run_dir / METRICS, metrics_csv(history).encode())
    return run_dir


def load_run(
    run_dir: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, Vocab, Config]:
    """The model (in eval mode, on ``device``), vocabulary and config of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run directory; pass the --out of a training run")
    for name in (WEIGHTS, CONFIG, VOCAB):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir} has no {name}; is it an rnnlab run directory?")
    try:
        config = Config.from_dict(json.loads((run_dir / CONFIG).read_text(encoding="utf-8")))
        vocab = Vocab.load(run_dir / VOCAB)
    except (ValueError, ConfigError, UnicodeDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{run_dir} has a corrupt config or vocabulary ({exc})") from None
    model = model_from_config(config.model, len(vocab))
    try:
        weights = load_file(run_dir / WEIGHTS, device=str(device))
        model.load_state_dict(weights)
    except (SafetensorError, RuntimeError, OSError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise CheckpointError(
            f"{run_dir / WEIGHTS} is corrupt or from another model ({reason}); retrain or "
            f"restore the file"
        ) from None
    model.to(device).eval()
    return model, vocab, config

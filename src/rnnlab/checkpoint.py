"""The run directory: weights (safetensors), config, vocabulary and metrics.

Nothing here unpickles: weights are safetensors, everything else is JSON or CSV. Every file
is written to a temporary name and renamed, so a crash leaves the previous version whole.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from . import __version__, treeio
from .atomic import atomic_write
from .config import Config
from .errors import CheckpointError, ConfigError
from .models import model_from_config
from .train import EpochStats
from .vocab import Vocab

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
VOCAB = "vocab.json"
METRICS = "metrics.csv"
# val_* are empty in epochs without a validation pass; val_bpc is bits per token.
METRIC_FIELDS = ("epoch", "perplexity", "tokens_per_s", "lr", "val_perplexity", "val_bpc")
MANIFEST = "manifest.json"
CHECKPOINTS = "checkpoints"  # resumable states: step-<N>/ and the pointers latest, best
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"
FORMAT_VERSION = 1  # of the run directory; newer versions are refused, not misread


def model_bytes(model: nn.Module) -> bytes:
    """The model's ``state_dict`` as safetensors bytes (CPU tensors, so any device loads it)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save(tensors, metadata={"format": "rnnlab"})


def metrics_row(s: EpochStats) -> str:
    lr = "" if s.lr is None else f"{s.lr:.6g}"
    val_ppl = "" if s.val_perplexity is None else f"{s.val_perplexity:.6f}"
    val_bpc = "" if s.val_loss is None else f"{s.val_loss / math.log(2):.6f}"
    return f"{s.epoch},{s.perplexity:.6f},{s.tokens_per_s:.1f},{lr},{val_ppl},{val_bpc}\n"


def metrics_csv(history: Sequence[EpochStats]) -> str:
    return ",".join(METRIC_FIELDS) + "\n" + "".join(metrics_row(s) for s in history)


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
    save_description(run_dir, vocab, config)
    save_progress(run_dir, model, history)
    return run_dir


def save_description(run_dir: Path, vocab: Vocab, config: Config) -> None:
    """The parts of a run directory that do not change while it trains."""
    atomic_write(run_dir / CONFIG, json.dumps(config.to_dict(), indent=2).encode())
    atomic_write(run_dir / VOCAB, json.dumps(vocab.to_dict(), ensure_ascii=False).encode())


def save_progress(run_dir: Path, model: nn.Module, history: Sequence[EpochStats]) -> None:
    """The parts that change: the latest weights and the metrics."""
    atomic_write(run_dir / WEIGHTS, model_bytes(model))
    atomic_write(run_dir / METRICS, metrics_csv(history).encode())


def _require_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run directory; pass the --out of a training run")
    for name in (WEIGHTS, CONFIG, VOCAB):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir} has no {name}; is it an rnnlab run directory?")


def read_config(run_dir: Path) -> Config:
    _require_run_dir(run_dir)
    try:
        return Config.from_dict(json.loads((run_dir / CONFIG).read_text(encoding="utf-8")))
    except (ValueError, ConfigError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"{run_dir} has a corrupt config ({exc})") from None


def read_vocab(run_dir: Path) -> Vocab:
    try:
        return Vocab.load(run_dir / VOCAB)
    except (OSError, ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"{run_dir} has a corrupt vocabulary ({exc})") from None


def read_manifest(run_dir: Path) -> dict:
    """The run's manifest; refuses runs written by a newer format."""
    path = run_dir / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version = manifest["format_version"]
        if not isinstance(version, int):
            raise ValueError("bad format version")  # noqa: TRY004 - a corrupt file
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc})") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{run_dir} was written by a newer rnnlab (format {version} > {FORMAT_VERSION}); "
            f"upgrade rnnlab to load it"
        )
    return manifest


def load_run(
    run_dir: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, Vocab, Config]:
    """The model (in eval mode, on ``device``), vocabulary and config of a run directory.
    Weights saved on a GPU load on the CPU and the other way round."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    vocab = read_vocab(run_dir)
    read_manifest(run_dir)
    try:
        model = model_from_config(config.model, len(vocab))
    except ConfigError as exc:
        raise CheckpointError(f"{run_dir} names a model this rnnlab cannot build ({exc})") from None
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


# --- resumable checkpoints -------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(run_dir: Path, **fields: object) -> None:
    """Versions and provenance: what wrote this run, on what, from which corpus."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "rnnlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **fields,
    }
    atomic_write(run_dir / MANIFEST, json.dumps(manifest, indent=2).encode())


def save_checkpoint(
    run_dir: str | Path,
    model: nn.Module,
    trainer_state: dict,
    keep_last: int = 2,
    keep: Sequence[str] = (),
) -> Path:
    """Write a resumable checkpoint as ``checkpoints/step-<N>/`` and point ``latest`` at it.

    The directory is filled under a temporary name and renamed only when complete; the
    ``latest`` pointer moves after that. A crash at any moment leaves the previous
    checkpoint whole and pointed to. Older checkpoints beyond ``keep_last`` are removed,
    except those named in ``keep`` (e.g. the best).
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{int(trainer_state['step']):09d}"
    final = root / name
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
        try:
            tensors, skeleton = treeio.split(trainer_state)
            files = {
                WEIGHTS: model_bytes(model),
                TRAINER_TENSORS: save(tensors, metadata={"format": "rnnlab"}),
                TRAINER_STATE: json.dumps(
                    {"format_version": FORMAT_VERSION, "state": skeleton}
                ).encode(),
            }
            for file_name, data in files.items():
                with open(tmp / file_name, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            _fsync_dir(tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    atomic_write(root / "latest", name.encode())
    _fsync_dir(root)
    kept = sorted(p.name for p in root.glob("step-*"))
    for old in kept[: max(0, len(kept) - keep_last)]:
        if old not in keep and old != name:
            shutil.rmtree(root / old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint ``latest`` points to, else the newest complete one."""
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / "latest"
    if pointer.is_file():
        name = pointer.read_text(errors="replace").strip()
        if name.startswith("step-") and (root / name / TRAINER_STATE).is_file():
            return root / name
    found = sorted(p for p in root.glob("step-*") if (p / TRAINER_STATE).is_file())
    if not found:
        raise CheckpointError(
            f"{run_dir} has no checkpoint to resume from; start a new run without --resume"
        )
    return found[-1]


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Model weights and trainer state of one checkpoint directory, checked, never pickled."""
    path = Path(path)
    try:
        raw = json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))
        version = raw["format_version"]
        if not isinstance(version, int):
            raise ValueError("bad format version")  # noqa: TRY004 - a corrupt file
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path} is corrupt ({exc}); write the name of an earlier step-* directory "
            f"into {path.parent / 'latest'}, or start a new run"
        ) from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer rnnlab (format {version} > {FORMAT_VERSION}); "
            f"upgrade rnnlab to load it"
        )
    try:
        weights = load_file(path / WEIGHTS)
        # Fresh copies: safetensors hands out views at any byte offset of its buffer, and
        # BLAS results can depend on operand alignment, so a carried hidden state used as
        # loaded would make a resumed run drift from an uninterrupted one in the last bits.
        tensors = {k: v.clone() for k, v in load_file(path / TRAINER_TENSORS).items()}
        state = treeio.join(tensors, raw["state"])
        if not isinstance(state, dict):
            raise ValueError("trainer state is not a mapping")  # noqa: TRY004 - a corrupt file
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path} is corrupt ({reason}); write the name of an earlier step-* directory "
            f"into {path.parent / 'latest'}, or start a new run"
        ) from None
    return weights, state

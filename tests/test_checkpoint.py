import csv

import pytest
import torch

from rnnlab.checkpoint import load_run, save_run
from rnnlab.config import Config, ModelConfig
from rnnlab.errors import CheckpointError
from rnnlab.models import MODELS, build_model
from rnnlab.train import EpochStats
from rnnlab.vocab import Vocab

from .common import TINY_TEXT


@pytest.mark.parametrize("name", sorted(MODELS))
def test_run_directory_round_trip_is_exact(tmp_path, name):
    vocab = Vocab(TINY_TEXT)
    config = Config(model=ModelConfig(model=name, hidden_size=8))
    model = build_model(name, len(vocab), 8)
    history = [EpochStats(1, 2.0, 7.389056, 1234.5, 0.1), EpochStats(2, 1.5, 4.481689, 2000.0, 0.1)]
    save_run(tmp_path, model, vocab, config, history)
    loaded, vocab2, config2 = load_run(tmp_path)
    assert vocab2 == vocab and config2 == config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "perplexity", "tokens_per_s", "lr", "val_perplexity",
                             "val_bpc"]
    assert rows[0]["lr"] == rows[0]["val_perplexity"] == ""  # not recorded in these stats
    assert not list(tmp_path.glob(".*tmp"))


def saved(tmp_path):
    vocab = Vocab(TINY_TEXT)
    save_run(tmp_path, build_model("rnn", len(vocab), 8), vocab, Config(model=ModelConfig(hidden_size=8)))
    return tmp_path


def test_truncated_weights_are_a_clear_error(tmp_path):
    run = saved(tmp_path)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(run)


def test_pickle_is_never_loaded(tmp_path):
    run = saved(tmp_path)
    torch.save(build_model("rnn", 10, 8).state_dict(), run / "model.safetensors")
    with pytest.raises(CheckpointError):
        load_run(run)


def test_foreign_and_missing(tmp_path):
    with pytest.raises(CheckpointError, match="not a run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_run(tmp_path)
    run = saved(tmp_path / "r")
    (run / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt config"):
        load_run(run)

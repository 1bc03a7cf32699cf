"""The held-out split, validation during training, the best weights, `rnnlab evaluate`."""

import csv
import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.checkpoint import load_run
from rnnlab.cli import main
from rnnlab.config import Config, DataConfig, ModelConfig, TrainConfig
from rnnlab.errors import ConfigError, CorpusError
from rnnlab.evaluate import evaluate
from rnnlab.runs import Run, load_best, load_dataset, split_ids, train_run

from .common import TINY_TEXT


@given(
    n=st.integers(2, 5000),
    val=st.floats(0, 0.6),
    test=st.floats(0, 0.39),
)
def test_split_is_contiguous_disjoint_and_whole(n, val, test):
    ids = torch.arange(n)
    train, held, tested = split_ids(ids, val, test)
    assert torch.equal(torch.cat([train, held, tested]), ids)  # in order, nothing lost
    assert len(held) == round(n * val) and len(tested) == round(n * test)


def test_auto_split_is_off_for_the_book_and_a_tenth_otherwise(tiny_text_file):
    book = load_dataset(DataConfig())
    assert book.val_ids is None and len(book.ids) == 10000  # the book's run, unchanged
    own = load_dataset(DataConfig(text=str(tiny_text_file), batch_size=2, seq_len=8))
    total = len(TINY_TEXT) * 3
    assert len(own.val_ids) == round(total * 0.1) and len(own.ids) + len(own.val_ids) == total
    assert own.test_ids is None
    both = load_dataset(DataConfig(text=str(tiny_text_file), batch_size=2, seq_len=8,
                                   val_fraction=0.2, test_fraction=0.1))
    assert (len(both.val_ids), len(both.test_ids)) == (round(total * 0.2), round(total * 0.1))
    # The parts are the stream's consecutive pieces.
    whole = torch.tensor(both.vocab.encode(TINY_TEXT * 3))
    assert torch.equal(torch.cat([both.ids, both.val_ids, both.test_ids]), whole)


def test_bad_fractions():
    with pytest.raises(ConfigError, match="val-fraction"):
        DataConfig(val_fraction=1.0)
    with pytest.raises(ConfigError, match="leave some text"):
        DataConfig(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(CorpusError, match="shorter than one minibatch"):
        load_dataset(DataConfig(val_fraction=0.99, batch_size=32, seq_len=35))


def tiny_config(text, **train):
    return Config(
        DataConfig(text=str(text), batch_size=2, seq_len=8),
        ModelConfig(model="gru", hidden_size=16),
        TrainConfig(device="cpu", **{"epochs": 6, "eval_every": 2, "optimizer": "adam",
                                     "lr": 0.02, **train}),
    )


def test_validation_columns_and_best_weights(tmp_path, tiny_text_file):
    result = train_run(tiny_config(tiny_text_file), tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert list(rows[0])[:3] == ["epoch", "perplexity", "tokens_per_s"]
    evaluated = [r for r in rows if r["val_perplexity"]]
    assert [int(r["epoch"]) for r in evaluated] == [2, 4, 6]  # every --eval-every epochs
    assert all(float(r["lr"]) == 0.02 for r in rows)
    for r, s in zip(evaluated, result.history[1::2]):
        assert float(r["val_perplexity"]) == pytest.approx(math.exp(s.val_loss), rel=1e-5)
        assert float(r["val_bpc"]) == pytest.approx(s.val_loss / math.log(2), rel=1e-5)
    # best.safetensors scores exactly the lowest validation loss seen.
    model, _, config = load_run(tmp_path / "run")
    load_best(model, tmp_path / "run")
    val_ids = load_dataset(config.data).val_ids
    best = evaluate(model, val_ids, 2, 8).loss
    assert best == pytest.approx(min(s.val_loss for s in result.history if s.val_loss), rel=1e-6)


def test_no_split_no_validation_no_best(tmp_path, tiny_text_file, capsys):
    config = tiny_config(tiny_text_file)
    config.data.val_fraction = 0.0
    result = train_run(config, tmp_path / "run")
    assert all(s.val_loss is None for s in result.history)
    assert not (tmp_path / "run" / "best.safetensors").exists()
    assert main(["evaluate", str(tmp_path / "run"), "--text", str(tiny_text_file), "--best"]) == 1
    assert "has no best.safetensors" in capsys.readouterr().err


NUMBERS = re.compile(
    r"(\d+) chars scored, loss ([\d.]+) nats, perplexity ([\d.]+), ([\d.]+) bits/char"
)


def test_evaluate_cli_equals_evaluate_and_reports_unknown_chars(tmp_path, tiny_text_file, capsys):
    train_run(tiny_config(tiny_text_file, epochs=2), tmp_path / "run")
    other = tmp_path / "other.txt"
    other.write_text("The time traveller: QQ Z!\n" + TINY_TEXT, encoding="utf-8")
    assert main(["evaluate", str(tmp_path / "run"), "--text", str(other),
                 "--batch-size", "3", "--seq-len", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    count, loss, ppl, bpc = NUMBERS.search(lines[0]).groups()
    model, vocab, _ = load_run(tmp_path / "run")
    text = other.read_text()
    expected = evaluate(model, torch.tensor(vocab.encode(text)), 3, 5)
    assert int(count) == expected.num_tokens
    assert float(loss) == pytest.approx(expected.loss, abs=1e-4)
    assert float(ppl) == pytest.approx(expected.perplexity, abs=1e-4)
    assert float(bpc) == pytest.approx(expected.bits_per_token, abs=1e-4)
    # T, Q, Z, ':' and '!' never occur in the training text.
    assert lines[1].startswith("unknown: 6 chars outside the vocabulary")
    for shown in ("'Q' x2", "'T' x1", "'Z' x1", "':' x1", "'!' x1"):
        assert shown in lines[1]


def test_evaluate_preprocesses_as_the_run_did(tmp_path, capsys):
    # The book's preprocessing lower-cases and drops punctuation, so none of it is unknown.
    out = tmp_path / "book"
    assert main(["train", "--epochs", "1", "--hidden-size", "8", "--batch-size", "4",
                 "--seq-len", "8", "--max-tokens", "400", "--quiet", "--out", str(out)]) == 0
    text = tmp_path / "shout.txt"
    text.write_text("THE TIME TRAVELLER!!! (for so it will be convenient)\n")
    capsys.readouterr()
    assert main(["evaluate", str(out), "--text", str(text)]) == 0
    assert "unknown: 0 chars" in capsys.readouterr().out


def test_evaluate_on_the_validation_text_repeats_the_validation_loss(
    tmp_path, tiny_text_file, capsys
):
    result = train_run(tiny_config(tiny_text_file), tmp_path / "run")
    val_ids = load_dataset(load_run(tmp_path / "run")[2].data).val_ids
    held_out = tmp_path / "held_out.txt"
    held_out.write_text(result.vocab.decode(val_ids.tolist()), encoding="utf-8")
    assert main(["evaluate", str(tmp_path / "run"), "--text", str(held_out)]) == 0
    loss = float(NUMBERS.search(capsys.readouterr().out).group(2))
    assert loss == pytest.approx(result.history[-1].val_loss, abs=1e-4)
    assert main(["evaluate", str(tmp_path / "run"), "--split", "val"]) == 0
    assert float(NUMBERS.search(capsys.readouterr().out).group(2)) == loss
    assert main(["evaluate", str(tmp_path / "run"), "--split", "test"]) == 1
    assert "without a test part" in capsys.readouterr().err


def test_optimizer_schedule_and_best_resume_exactly(tmp_path, tiny_text_file):
    def config():
        return tiny_config(tiny_text_file, optimizer="rmsprop", momentum=0.5, lr=0.01,
                           schedule="step", gamma=0.5, eval_every=1, epochs=3)

    whole = Run(config(), tmp_path / "whole").fit()
    Run(config(), tmp_path / "cut").fit(max_steps=40)  # stops inside the second epoch
    resumed = Run.resume(tmp_path / "cut").fit()
    assert [s.lr for s in resumed.history] == [s.lr for s in whole.history] == [0.01, 0.005, 0.0025]
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    best = [(tmp_path / d / "best.safetensors").read_bytes() for d in ("whole", "cut")]
    assert best[0] == best[1]

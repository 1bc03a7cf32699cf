import csv
import json

import pytest

from rnnlab.cli import main
from rnnlab.compare import (
    DEFAULT_GRID,
    CompareResult,
    compare,
    parse_entry,
    parse_grid,
    slug,
    table_csv,
    table_markdown,
)
from rnnlab.config import Config, DataConfig, ModelConfig, TrainConfig
from rnnlab.errors import ConfigError
from rnnlab.models import MODELS, model_from_config
from rnnlab.train import EpochStats
from rnnlab.vocab import Vocab


def tiny_base(text_file, epochs=3):
    return Config(
        data=DataConfig(text=str(text_file), batch_size=2, seq_len=8),
        model=ModelConfig(hidden_size=8),
        train=TrainConfig(epochs=epochs, save_every=100),
    )


def test_entries_override_model_and_training_fields():
    base = Config(model=ModelConfig(hidden_size=32), train=TrainConfig(lr=1.0))
    entry = parse_entry("lstm:num-layers=2:lr=2:embed-size=32:tie-weights=true:clip=none", base)
    assert entry.label == "lstm:num-layers=2:lr=2:embed-size=32:tie-weights=true:clip=none"
    m, t = entry.config.model, entry.config.train
    assert (m.model, m.num_layers, m.hidden_size, m.embed_size, m.tie_weights) == (
        "lstm", 2, 32, 32, True)
    assert t.lr == 2.0 and t.clip is None
    assert base.model.model == "rnn" and base.train.lr == 1.0  # the base is left alone
    assert parse_entry("gru", base).config.model == ModelConfig(model="gru", hidden_size=32)


@pytest.mark.parametrize("spec, match", [
    ("transformer", "unknown model 'transformer'.*lstm"),
    ("lstm:layers=2", "FIELD=VALUE with FIELD one of hidden-size, num-layers"),
    ("lstm:lr", "FIELD=VALUE"),
    ("lstm:lr=fast", "lr takes a float"),
    ("lstm:num-layers=0", "num-layers must be positive"),
    ("lstm:tie-weights=maybe", "true or false"),
    ("lstm:tie-weights=1", "embed-size equal to --hidden-size"),
])
def test_bad_entries_are_clear_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_entry(spec, Config())


def test_default_grid_is_the_books_chapter_9_and_registered():
    entries = parse_grid(DEFAULT_GRID, Config())
    assert {e.config.model.model for e in entries} <= set(MODELS)
    deep = [e for e in entries if e.config.model.num_layers == 2]
    assert [(e.config.model.model, e.config.train.lr) for e in deep] == [("lstm", 2.0)]
    with pytest.raises(ConfigError, match="twice"):
        parse_grid(["rnn", "rnn"], Config())


def test_slug():
    assert slug("lstm:num-layers=2:lr=0.5") == "lstm-num-layers-2-lr-0.5"


def test_table_figures_from_a_known_history(tmp_path):
    # two epochs: 1000 tokens in 1 s, then 3000 tokens in 0.5 s -> 4000 / 1.5 tokens/sec
    history = [
        EpochStats(1, 1.0, 2.5, 1000.0, 1.0, val_loss=1.1, val_perplexity=3.0),
        EpochStats(2, 0.5, 1.9, 6000.0, 0.5),
        EpochStats(3, 0.6, 2.1, 3000.0, 0.0 + 1e-9, val_loss=0.9, val_perplexity=2.2),
    ]
    plain = [EpochStats(1, 0.1, 1.05, 500.0, 2.0)]
    results = [CompareResult("gru:lr=2", "gru", 1234, history, 9.0, tmp_path / "a"),
               CompareResult("rnn", "rnn", 56, plain, 3.0, tmp_path / "b")]
    assert results[0].tokens_per_s == pytest.approx(4000 / 1.5, rel=1e-6)
    lines = table_markdown(results).splitlines()
    assert lines[0] == ("| model | parameters | final perplexity | best perplexity | final val "
                        "perplexity | best val perplexity | tokens/sec | train s | wall s |")
    assert lines[2] == "| `gru:lr=2` | 1,234 | 2.10 | 1.90 | 2.20 | 2.20 | 2,667 | 1.5 | 9.0 |"
    assert lines[3] == "| `rnn` | 56 | 1.05 | 1.05 |  |  | 500 | 2.0 | 3.0 |"
    rows = list(csv.DictReader(table_csv(results).splitlines()))
    assert float(rows[0]["best_val_perplexity"]) == 2.2 and rows[1]["best_val_perplexity"] == ""
    assert float(rows[0]["final_perplexity"]) == 2.1 and float(rows[0]["best_perplexity"]) == 1.9


def test_compare_trains_every_entry_and_tabulates_it(tmp_path, tiny_text_file):
    base = tiny_base(tiny_text_file)
    grid = ["rnn", "gru:lr=2", "lstm:num-layers=2", "lstm-scratch"]
    results = compare(base, grid, tmp_path)
    assert [r.label for r in results] == grid
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert [r["label"] for r in rows] == grid
    for spec, row in zip(grid, rows):
        run_dir = tmp_path / slug(spec)
        assert row["run_dir"] == str(run_dir)
        # the table agrees with the run directory's own metrics
        metrics = list(csv.DictReader((run_dir / "metrics.csv").open()))
        ppl = [float(m["perplexity"]) for m in metrics]
        assert len(ppl) == 3
        assert float(row["final_perplexity"]) == pytest.approx(ppl[-1], rel=1e-5)
        assert float(row["best_perplexity"]) == pytest.approx(min(ppl), rel=1e-5)
        # parameters counted independently from a freshly built model of the entry
        vocab_size = len(Vocab.load(run_dir / "vocab.json"))
        fresh = model_from_config(parse_entry(spec, base).config.model, vocab_size)
        assert int(row["parameters"]) == sum(p.numel() for p in fresh.parameters())
        assert float(row["tokens_per_s"]) > 0
        assert float(row["wall_seconds"]) >= float(row["train_seconds"]) > 0
    table = (tmp_path / "compare.md").read_text()
    assert table.count("\n") == 2 + len(grid) and "`gru:lr=2`" in table
    png = (tmp_path / "perplexity.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert results[1].history != results[0].history


def test_an_interrupted_grid_keeps_the_entries_it_finished(tmp_path, tiny_text_file):
    def stop_in_second(entry):
        def callback(stats):
            if entry.label == "gru":
                raise KeyboardInterrupt

        return [callback]

    with pytest.raises(KeyboardInterrupt):
        compare(tiny_base(tiny_text_file, epochs=2), ["rnn", "gru"], tmp_path, stop_in_second)
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert [r["label"] for r in rows] == ["rnn"]


def test_cli_compare(tmp_path, tiny_text_file, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--text", str(tiny_text_file), "--models", "rnn", "gru:hidden-size=16",
            "--hidden-size", "8", "--epochs", "2", "--batch-size", "2", "--seq-len", "8",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("| model | parameters |") and "`gru:hidden-size=16`" in stdout
    configs = [Config.from_dict(json.loads((out / d / "config.json").read_text()))
               for d in ("rnn", "gru-hidden-size-16")]
    assert [(c.model.model, c.model.hidden_size, c.train.epochs) for c in configs] == [
        ("rnn", 8, 2), ("gru", 16, 2)]
    assert main(argv) == 1  # never overwrites a comparison unasked
    assert "--overwrite" in capsys.readouterr().err
    assert main(["compare", "--models", "lstm:nope=1", "--out", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()

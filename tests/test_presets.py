import pytest

from rnnlab.cli import build_parser, config_from_args, main
from rnnlab.config import Config
from rnnlab.corpus import load_corpus
from rnnlab.errors import ConfigError
from rnnlab.models import MODELS
from rnnlab.presets import PRESETS, get_preset, layer
from rnnlab.runs import load_dataset


def parsed(*flags: str) -> Config:
    return config_from_args(build_parser().parse_args(["train", *flags]))


def test_no_preset_and_the_book_preset_are_the_defaults():
    assert parsed() == Config()
    assert parsed("--preset", "d2l-8.6") == Config()


def test_precedence_default_then_preset_then_flag():
    config = parsed("--preset", "char-rnn", "--lr", "0.01", "--batch-size", "32", "--no-clip")
    assert config.train.lr == 0.01  # flag over preset
    assert config.data.batch_size == 32  # a flag equal to the default still wins
    assert config.train.clip is None  # --no-clip over the preset's 5
    assert config.train.optimizer == "rmsprop"  # preset over default
    assert config.data.seq_len == 50 and config.model.model == "lstm"
    assert config.train.seed == Config().train.seed  # default where neither speaks


def test_flags_without_preset_override_defaults():
    config = parsed("--optimizer", "adam", "--clip", "0", "--random-iter", "--val-fraction", "0.2")
    assert config.train.optimizer == "adam" and config.train.clip is None
    assert config.data.random_iter and config.data.val_fraction == 0.2
    assert config.model == Config().model


def test_layer_later_partials_win_and_presets_are_not_mutated():
    before = get_preset("char-rnn")
    config = layer(get_preset("char-rnn"), {"train": {"epochs": 3}})
    assert config.train.epochs == 3 and config.train.optimizer == "rmsprop"
    assert get_preset("char-rnn") == before == PRESETS["char-rnn"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_config(name):
    config = layer(get_preset(name))
    assert config.model.model in MODELS


def test_d2l_9_6_is_the_1_0_editions_run():
    config = layer(get_preset("d2l-9.6"))
    assert (config.model.model, config.model.hidden_size) == ("rnn", 32)
    assert (config.data.batch_size, config.data.seq_len, config.train.epochs) == (1024, 32, 100)
    assert (config.train.lr, config.train.clip, config.train.optimizer) == (1.0, 1.0, "sgd")
    data = load_dataset(config.data)  # the whole book, split; enough for a batch of 1024
    assert data.val_ids is not None
    total = len(data.ids) + len(data.val_ids)
    assert total == len(load_corpus("timemachine").tokens)
    assert len(data.val_ids) == round(total * 0.1)


def test_char_rnn_preset():
    config = layer(get_preset("char-rnn"))
    assert (config.model.model, config.model.hidden_size, config.model.num_layers) == ("lstm", 128, 2)
    assert (config.data.batch_size, config.data.seq_len) == (50, 50)
    assert (config.train.optimizer, config.train.lr) == ("rmsprop", 2e-3)
    assert config.data.corpus == "tinyshakespeare" and config.data.held_out == (0.1, 0.0)


def test_unknown_preset(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "nope"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("nope")

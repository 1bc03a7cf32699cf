import pytest
import torch
from torch import nn

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.experiments import (
    EXPERIMENTS,
    AutoregressiveConfig,
    DepthConfig,
    OverfitConfig,
    depth,
    overfit,
)
from rnnlab.experiments import autoregressive as ar
from rnnlab.experiments.common import markdown_table

FIGURES = {
    "autoregressive": ("one_step", "multistep", "k_step", "mse_by_k"),
    "depth": ("depth",),
    "overfit": ("overfit",),
}
TINY_LM = {"batch_size": 4, "seq_len": 5, "hidden_size": 8, "epochs": 1, "seed": 0}


class Persistence(nn.Module):
    """Predicts that the next value equals the current one; its state is the last value."""

    def init_state(self, batch_size, device):
        return torch.zeros(batch_size, 1, device=device)

    def forward(self, x, state):
        return x, x[:, -1:]


def test_window_mlp_matches_the_books_feature_matrix():
    tau, series = 4, ar.make_series(50, 0.2, seed=1)
    mlp = ar.WindowMLP(tau, 10)
    # The book's features: column i holds x[i : T - tau + i].
    features = torch.stack([series[i : len(series) - tau + i] for i in range(tau)], 1)
    expected = mlp.net(features).squeeze(-1)  # predicts x[tau:]
    outputs, state = mlp(series.unsqueeze(0), mlp.init_state(1, "cpu"))
    torch.testing.assert_close(outputs[0, tau - 1 : -1], expected)
    torch.testing.assert_close(state[0], series[-tau:])


def test_window_mlp_state_carries_across_calls():
    mlp, series = ar.WindowMLP(3, 5), torch.randn(2, 12)
    whole, _ = mlp(series, mlp.init_state(2, "cpu"))
    first, state = mlp(series[:, :7], mlp.init_state(2, "cpu"))
    second, _ = mlp(series[:, 7:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_rnn_regressor_state_carries_across_calls(cell):
    model, series = ar.RNNRegressor(6, cell=cell), torch.randn(3, 10)
    whole, _ = model(series, model.init_state(3, "cpu"))
    first, state = model(series[:, :4], model.init_state(3, "cpu"))
    second, _ = model(series[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_k_step_predictions_and_mse_against_persistence():
    tau, max_k, first = 4, 6, 30
    series = ar.make_series(60, 0.2, seed=2)
    preds = ar.k_step_predictions(Persistence(), series, tau, max_k)
    for k in range(1, max_k + 1):
        n = len(series) - tau - k + 1  # starts whose target lies inside the series
        torch.testing.assert_close(preds[k - 1, :n], series[tau - 1 : tau - 1 + n])
        assert torch.isnan(preds[k - 1, n:]).all()
    errors = ar.k_step_mse(preds, series, tau, first)
    for k, error in enumerate(errors, start=1):
        t = torch.arange(first, len(series))  # every held-out target; it saw x[t - k]
        assert error == pytest.approx(((series[t] - series[t - k]) ** 2).mean().item(), rel=1e-5)


def test_fit_lowers_the_loss_of_both_models():
    series = ar.make_series(300, 0.05, seed=0)
    for model in (ar.WindowMLP(4, 10), ar.RNNRegressor(8)):
        losses = ar.fit(model, series, ar.windowed_mse(4), epochs=15, batch_size=4,
                        seq_len=12, lr=0.01, seed=0)
        assert losses[-1] < 0.5 * losses[0]


def test_autoregressive_config_rejects_impossible_splits():
    with pytest.raises(ConfigError, match="num-train"):
        AutoregressiveConfig(num_points=100, num_train=150)
    with pytest.raises(ConfigError, match="cell"):
        AutoregressiveConfig(cell="transformer")


def test_depth_settings_and_run(tmp_path):
    config = DepthConfig(max_tokens=400, max_layers=2, long_epochs=2, deep_lr=0.5,
                         cells="gru", **TINY_LM)
    labels = [s.label for s in config.settings()]
    assert labels == ["rnn, 1 layer", "rnn, 2 layers", "rnn, 2 layers, 2 epochs",
                      "rnn, 2 layers, lr 0.5", "gru, 2 layers"]
    result = depth.run(config, tmp_path)
    by_label = {o.setting.label: o for o in result.outcomes}
    # nn.RNN with one-hot input: layer 1 has V*H + H*H + 2H, every further layer 2H*H + 2H.
    v, h = 28, 8
    one = v * h + h * h + 2 * h + h * v + v
    assert by_label["rnn, 1 layer"].parameters == one
    assert by_label["rnn, 2 layers"].parameters == one + 2 * h * h + 2 * h
    assert len(by_label["rnn, 2 layers, 2 epochs"].history) == 2
    assert "| rnn, 2 layers, lr 0.5 |" in result.report.read_text()
    assert (tmp_path / "depth.svg").exists() and (tmp_path / "depth.png").exists()


def test_overfit_settings_share_one_validation_split(tmp_path):
    config = OverfitConfig(max_tokens=1000, train_tokens=300, small_hidden_size=4,
                           dropout=0.5, weight_decay=0.1, **TINY_LM)
    settings = config.settings()
    assert [s.label for s in settings] == ["large (8 hidden)", "dropout 0.5",
                                          "weight decay 0.1", "small (4 hidden)",
                                          "more data (900 tokens)"]
    assert settings[-1].max_tokens == 900 and settings[0].max_tokens == 300
    result = overfit.run(config, tmp_path)
    for o in result.outcomes:
        assert len(o.val_perplexity) == len(o.history) == o.setting.epochs
        assert all(v > 1 for v in o.val_perplexity)
    assert "| large (8 hidden) | 300 |" in result.report.read_text()
    with pytest.raises(ConfigError, match="train-tokens"):
        OverfitConfig(max_tokens=1000, train_tokens=950)


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, 0.123456], ["x", 123456.7]]) == (
        "| a | b |\n| --- | --- |\n| 1 | 0.1235 |\n| x | 123,457 |"
    )


def test_cli_runs_the_autoregressive_experiment(tmp_path, capsys):
    assert set(EXPERIMENTS) == set(FIGURES)
    flags = ["--epochs", "1", "--num-points", "150", "--num-train", "100", "--max-k", "16",
             "--long-context", "8"]
    assert main(["experiment", "autoregressive", "--out", str(tmp_path), *flags]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ") and "Wall time" in out
    assert "| model | observations | parameters | k=1 | k=4 | k=16 |" in out
    assert "| MLP (book) | 4 | 61 |" in out  # Linear(4, 10) and Linear(10, 1)
    assert "| GRU | 4 |" in out and "| GRU, 8 observations | 8 |" in out
    assert (tmp_path / "report.md").read_text().strip() == out.strip()
    assert main(["experiment", "autoregressive", "--out", str(tmp_path), *flags]) == 1
    assert "already holds an experiment" in capsys.readouterr().err
    for stem in FIGURES["autoregressive"]:
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        assert (tmp_path / f"{stem}.svg").read_text().lstrip().startswith("<?xml")


def test_cli_bad_experiment_values(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "depth", "--cells", "nope", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "depth", "--epochs", "many"])
    assert exc.value.code == 2

import math

import pytest
import torch
from torch import nn

from rnnlab.errors import ConfigError, TrainingDiverged
from rnnlab.models import MODELS, RNNModel, build_model
from rnnlab.train import clip_gradients, select_device, train
from rnnlab.vocab import Vocab

from .common import TINY_TEXT


def tiny_ids():
    vocab = Vocab(TINY_TEXT)
    return torch.tensor(vocab.encode(TINY_TEXT * 3)), vocab


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("random_iter", [False, True])
def test_every_model_learns_through_the_same_loop(name, random_iter):
    ids, vocab = tiny_ids()
    model = build_model(name, len(vocab), hidden_size=32)
    seen = []
    history = train(model, ids, batch_size=4, seq_len=8, epochs=30, lr=1.0,
                    random_iter=random_iter, callbacks=[seen.append])
    assert [s.epoch for s in history] == list(range(1, 31)) and seen == history
    assert history[-1].perplexity < history[0].perplexity * 0.6
    assert all(math.isclose(s.perplexity, math.exp(s.loss)) for s in history)
    assert all(s.tokens_per_s > 0 for s in history)


class StateSpy(nn.Module):
    """Wraps a model and records, per call, whether the state came in fresh (all zeros)
    and whether it was attached to an earlier graph."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def init_state(self, batch_size, device):
        return self.inner.init_state(batch_size, device)

    def forward(self, tokens, state):
        self.calls.append((bool((state == 0).all()), state.requires_grad))
        return self.inner(tokens, state)


@pytest.mark.parametrize("random_iter, fresh_after_first", [(False, False), (True, True)])
def test_state_is_carried_detached_or_reset(random_iter, fresh_after_first):
    ids, vocab = tiny_ids()
    spy = StateSpy(RNNModel(len(vocab), 16))
    train(spy, ids, batch_size=2, seq_len=10, epochs=2, random_iter=random_iter)
    per_epoch = len(spy.calls) // 2
    assert per_epoch > 2
    for epoch in (spy.calls[:per_epoch], spy.calls[per_epoch:]):
        assert epoch[0][0]  # every epoch starts fresh
        assert all(fresh == fresh_after_first for fresh, _ in epoch[1:])
        assert not any(attached for _, attached in epoch)  # never attached to the last graph


def test_clipping_is_the_books_formula():
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))]
    params[0].grad = torch.tensor([3.0, 0.0, 0.0])
    params[1].grad = torch.tensor([[0.0, 4.0], [0.0, 0.0]])
    norm = clip_gradients(params, 1.0)
    assert float(norm) == pytest.approx(5.0)
    assert torch.allclose(params[0].grad, torch.tensor([0.6, 0.0, 0.0]))
    assert torch.allclose(params[1].grad, torch.tensor([[0.0, 0.8], [0.0, 0.0]]))
    clip_gradients(params, 10.0)  # under the bound: unchanged
    assert torch.allclose(params[0].grad, torch.tensor([0.6, 0.0, 0.0]))


def test_same_seed_same_history():
    ids, vocab = tiny_ids()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = RNNModel(len(vocab), 16)
        runs.append([s.loss for s in train(model, ids, batch_size=2, seq_len=8, epochs=3, seed=4)])
    assert runs[0] == runs[1]


def test_nan_loss_stops_with_the_epoch_named():
    ids, vocab = tiny_ids()
    model = RNNModel(len(vocab), 8)
    with torch.no_grad():
        model.dense.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="epoch 1.*--lr"):
        train(model, ids, batch_size=2, seq_len=8, epochs=3)


def test_device_selection():
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cpu"):
            select_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        select_device("tpu9")


def test_a_custom_loss_trains_a_regression_model_through_the_same_loop():
    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(1, 8, batch_first=True)
            self.out = nn.Linear(8, 1)

        def init_state(self, batch_size, device):
            return torch.zeros(1, batch_size, 8, device=device)

        def forward(self, x, state):
            hidden, state = self.rnn(x[..., None], state)  # (B, T, 8)
            return self.out(hidden)[..., 0], state  # (B, T)

    series = torch.sin(torch.arange(400) * 0.1)
    torch.manual_seed(0)
    model = Regressor()
    seen = []
    history = train(model, series, batch_size=4, seq_len=10, epochs=15, clip=None,
                    random_iter=True, loss=lambda out, y: ((out - y) ** 2).mean(),
                    optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
                    callbacks=[seen.append])
    assert history[-1].loss < history[0].loss / 5 and seen == history
    x = series[:10][None]
    with torch.no_grad():
        out, _ = model(x, model.init_state(1, "cpu"))
    assert float(((out - series[1:11]) ** 2).mean()) < 0.05  # it learned the next value

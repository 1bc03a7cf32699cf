import pytest
import torch
import torch.nn.functional as F

from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.models import (
    FRAMEWORK,
    MODELS,
    GRUScratch,
    LSTMScratch,
    RNNModel,
    RNNScratch,
    build_model,
    detach_state,
    model_from_config,
)
from rnnlab.train import train
from rnnlab.vocab import Vocab

from .common import TINY_TEXT


def loss_and_grads(model, tokens, labels, state):
    logits, new_state = model(tokens, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    model.zero_grad()
    loss.backward()
    return logits, new_state


def test_scratch_and_concise_agree_on_logits_and_gradients():
    torch.manual_seed(0)
    vocab, hidden = 28, 256
    concise = RNNModel(vocab, hidden).double()
    scratch = RNNScratch(vocab, hidden).double().copy_from(concise)
    tokens = torch.randint(vocab, (32, 35))
    labels = torch.randint(vocab, (32, 35))
    h0 = torch.randn(32, hidden, dtype=torch.double) * 0.5
    lc, sc = loss_and_grads(concise, tokens, labels, h0[None].clone())
    ls, ss = loss_and_grads(scratch, tokens, labels, h0.clone())
    torch.testing.assert_close(lc, ls, atol=1e-5, rtol=0)
    torch.testing.assert_close(sc[0], ss, atol=1e-5, rtol=0)
    rnn = concise.rnn
    for scratch_grad, concise_grad in [
        (scratch.W_xh.grad, rnn.weight_ih_l0.grad.T),
        (scratch.W_hh.grad, rnn.weight_hh_l0.grad.T),
        (scratch.b_h.grad, rnn.bias_ih_l0.grad),
        (scratch.b_h.grad, rnn.bias_hh_l0.grad),
        (scratch.W_hq.grad, concise.dense.weight.grad.T),
        (scratch.b_q.grad, concise.dense.bias.grad),
    ]:
        torch.testing.assert_close(scratch_grad, concise_grad, atol=1e-5, rtol=0)


def test_float32_parity_at_book_size():
    torch.manual_seed(1)
    concise = RNNModel(28, 256)
    scratch = RNNScratch(28, 256).copy_from(concise)
    tokens = torch.randint(28, (32, 35))
    lc, _ = concise(tokens, concise.init_state(32, "cpu"))
    ls, _ = scratch(tokens, scratch.init_state(32, "cpu"))
    torch.testing.assert_close(lc, ls, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_interface_shapes_and_state_carry(name):
    model = build_model(name, vocab_size=11, hidden_size=8)
    state = model.init_state(3, "cpu")
    tokens = torch.randint(11, (3, 5))
    logits, new_state = model(tokens, state)
    assert logits.shape == (3, 5, 11)
    # feeding the sequence in two halves with the carried state gives the same logits
    first, mid = model(tokens[:, :2], state)
    second, _ = model(tokens[:, 2:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)
    detached = detach_state(new_state)
    assert not torch.is_tensor(detached) or not detached.requires_grad


def test_deep_concise_model():
    model = build_model("rnn", 10, 6, num_layers=3)
    assert model.init_state(2, "cpu").shape == (3, 2, 6)


def test_unknown_model_lists_the_registry():
    with pytest.raises(ConfigError, match="rnn, rnn-relu, gru, lstm, scratch, gru-scratch"):
        build_model("transformer", 10)


def test_detach_state_handles_tuples():
    a = torch.ones(2, requires_grad=True) * 2
    out = detach_state((a, a))
    assert isinstance(out, tuple) and not any(t.requires_grad for t in out)


def gate_grads(concise, scratch, gates, framework_order):
    """(scratch grad, framework grad) pairs for a gated cell: ``framework_order`` names the
    gate blocks of nn.GRU / nn.LSTM's stacked weights, ``gates`` maps a block to the scratch
    parameter names (W_x, W_h, and the biases that block's input and hidden bias feed)."""
    rnn, pairs = concise.rnn, []
    blocks = {
        k: dict(zip(framework_order, getattr(rnn, f"{k}_l0").grad.chunk(len(framework_order))))
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    for block, (w_x, w_h, b_x, b_h) in gates.items():
        pairs += [
            (getattr(scratch, w_x).grad, blocks["weight_ih"][block].T),
            (getattr(scratch, w_h).grad, blocks["weight_hh"][block].T),
            (getattr(scratch, b_x).grad, blocks["bias_ih"][block]),
            (getattr(scratch, b_h).grad, blocks["bias_hh"][block]),
        ]
    pairs += [
        (scratch.W_hq.grad, concise.dense.weight.grad.T),
        (scratch.b_q.grad, concise.dense.bias.grad),
    ]
    return pairs


GATED = {
    "gru": (
        GRUScratch,
        ("r", "z", "n"),
        {"r": ("W_xr", "W_hr", "b_r", "b_r"), "z": ("W_xz", "W_hz", "b_z", "b_z"),
         "n": ("W_xh", "W_hh", "b_xh", "b_hh")},
    ),
    "lstm": (
        LSTMScratch,
        ("i", "f", "g", "o"),
        {g: (f"W_x{s}", f"W_h{s}", f"b_{s}", f"b_{s}") for g, s in zip("ifgo", "ifco")},
    ),
}


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated_scratch_cells_match_the_framework(name):
    """Given nn.GRU / nn.LSTM's weights, the scratch cell gives the same logits, final state
    and gradient for every parameter (float64, from a non-zero state)."""
    scratch_cls, order, gates = GATED[name]
    torch.manual_seed(0)
    vocab, hidden, batch = 28, 32, 6
    concise = build_model(name, vocab, hidden).double()
    scratch = scratch_cls(vocab, hidden).double().copy_from(concise)
    tokens, labels = torch.randint(vocab, (batch, 35)), torch.randint(vocab, (batch, 35))
    if name == "lstm":
        h0, c0 = torch.randn(2, batch, hidden, dtype=torch.double) * 0.5
        concise_state, scratch_state = (h0[None], c0[None]), (h0, c0)
    else:
        h0 = torch.randn(batch, hidden, dtype=torch.double) * 0.5
        concise_state, scratch_state = h0[None], h0
    lc, sc = loss_and_grads(concise, tokens, labels, concise_state)
    ls, ss = loss_and_grads(scratch, tokens, labels, scratch_state)
    torch.testing.assert_close(lc, ls, atol=1e-5, rtol=0)
    if name == "lstm":
        for framework_part, scratch_part in zip(sc, ss):
            torch.testing.assert_close(framework_part[0], scratch_part, atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(sc[0], ss, atol=1e-5, rtol=0)
    pairs = gate_grads(concise, scratch, gates, order)
    covered = {id(p.grad) for p in scratch.parameters()}
    assert covered == {id(g) for g, _ in pairs}  # every scratch parameter is checked
    for scratch_grad, concise_grad in pairs:
        assert concise_grad.abs().max() > 0
        torch.testing.assert_close(scratch_grad, concise_grad, atol=1e-5, rtol=0)


def test_relu_cell_is_a_relu_recurrence():
    torch.manual_seed(0)
    model = build_model("rnn-relu", 7, 5)
    tokens = torch.randint(7, (2, 4))
    logits, h = model(tokens, model.init_state(2, "cpu"))
    rnn, x = model.rnn, torch.eye(7)[tokens]
    state = torch.zeros(2, 5)
    for t in range(4):
        state = torch.relu(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
                           + state @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
    torch.testing.assert_close(h[0], state)
    torch.testing.assert_close(logits[:, -1], model.dense(state))


@pytest.mark.parametrize("name", FRAMEWORK)
def test_framework_cells_take_layers_embedding_dropout_and_tied_weights(name):
    model = build_model(name, 11, 8, num_layers=2, embed_size=8, dropout=0.5, tie_weights=True)
    assert model.dense.weight is model.embedding.weight
    state = model.init_state(3, "cpu")
    shapes = [s.shape for s in (state if isinstance(state, tuple) else (state,))]
    assert all(shape == (2, 3, 8) for shape in shapes)
    tokens = torch.randint(11, (3, 5))
    model.eval()  # dropout off: the carried state splits a sequence exactly
    logits, _ = model(tokens, state)
    first, mid = model(tokens[:, :2], state)
    second, _ = model(tokens[:, 2:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)
    model.train()  # dropout on: two passes differ
    assert not torch.equal(model(tokens, state)[0], model(tokens, state)[0])
    # the shared matrix is one parameter and one state-dict entry; the output layer's
    # gradient reaches it
    names = [n for n, _ in model.named_parameters()]
    assert "embedding.weight" in names and "dense.weight" not in model.state_dict()
    model.zero_grad()
    model.dense(torch.ones(8)).sum().backward()
    assert model.embedding.weight.grad.abs().sum() > 0


def test_embedding_replaces_one_hot_input():
    model = build_model("gru", 11, 8, embed_size=4)
    assert model.rnn.input_size == 4 and model.embedding.weight.shape == (11, 4)
    assert build_model("gru", 11, 8).rnn.input_size == 11


def test_dropout_is_between_layers_in_the_framework_cell():
    assert build_model("lstm", 11, 8, num_layers=2, dropout=0.3).rnn.dropout == 0.3
    assert build_model("lstm", 11, 8, dropout=0.3).rnn.dropout == 0.0  # no second layer


@pytest.mark.parametrize("kwargs, match", [
    ({"tie_weights": True}, "embed-size equal to --hidden-size"),
    ({"embed_size": 4, "tie_weights": True}, "embed-size equal to --hidden-size"),
])
def test_tying_needs_matching_sizes(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_model("lstm", 11, 8, **kwargs)
    with pytest.raises(ConfigError, match=match):
        ModelConfig(model="lstm", hidden_size=8, **kwargs)


@pytest.mark.parametrize("name", ["scratch", "gru-scratch", "lstm-scratch"])
@pytest.mark.parametrize("kwargs", [{"embed_size": 8}, {"dropout": 0.1}, {"num_layers": 2}])
def test_scratch_models_refuse_what_they_do_not_have(name, kwargs):
    with pytest.raises(ConfigError, match="--"):
        build_model(name, 11, 8, **kwargs)


@pytest.mark.parametrize("bad", [{"dropout": 1.0}, {"dropout": -0.1}, {"embed_size": 0}])
def test_model_config_is_validated(bad):
    with pytest.raises(ConfigError):
        ModelConfig(**bad)


def test_model_from_config_passes_every_field():
    config = ModelConfig(model="lstm", hidden_size=8, num_layers=2, embed_size=8,
                         dropout=0.25, tie_weights=True)
    model = model_from_config(config, 11)
    assert (model.cell, model.rnn.num_layers, model.rnn.hidden_size) == ("LSTM", 2, 8)
    assert model.rnn.dropout == 0.25 and model.dense.weight is model.embedding.weight


def test_deep_tied_lstm_learns_through_the_one_loop():
    vocab = Vocab(TINY_TEXT)
    ids = torch.tensor(vocab.encode(TINY_TEXT * 3))
    model = build_model("lstm", len(vocab), 32, num_layers=2, embed_size=32, tie_weights=True,
                        dropout=0.1)
    history = train(model, ids, batch_size=4, seq_len=8, epochs=30, lr=2.0)
    assert history[-1].perplexity < history[0].perplexity * 0.6


def test_model_options_round_trip_through_the_run_directory(tmp_path):
    from rnnlab.checkpoint import load_run, save_run
    from rnnlab.config import Config

    vocab = Vocab(TINY_TEXT)
    config = Config(model=ModelConfig(model="gru", hidden_size=8, num_layers=2, embed_size=8,
                                      dropout=0.5, tie_weights=True))
    model = model_from_config(config.model, len(vocab))
    save_run(tmp_path, model, vocab, config)
    loaded, _, config2 = load_run(tmp_path)
    assert config2 == config
    assert loaded.dense.weight is loaded.embedding.weight  # still tied after loading
    assert torch.equal(loaded.embedding.weight, model.embedding.weight)
    tokens = torch.randint(len(vocab), (2, 6))
    model.eval()
    torch.testing.assert_close(loaded(tokens, loaded.init_state(2, "cpu"))[0],
                               model(tokens, model.init_state(2, "cpu"))[0])

import pytest
import torch
import torch.nn.functional as F

from rnnlab.fused import tanh_rnn, tanh_rnn_lookup
from rnnlab.models import RNNModel, RNNScratch


def naive_tanh_rnn(x, h0, weight):
    """The per-step loop autograd records: the independent reference."""
    h, outputs = h0, []
    for x_t in x.unbind(0):
        h = torch.tanh(x_t + h @ weight.T)
        outputs.append(h)
    return torch.stack(outputs)


def double_inputs(steps=6, batch=3, hidden=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, hidden, dtype=torch.double, generator=g).requires_grad_()
    h0 = torch.randn(batch, hidden, dtype=torch.double, generator=g).requires_grad_()
    w = (torch.randn(hidden, hidden, dtype=torch.double, generator=g) * 0.5).requires_grad_()
    return x, h0, w


def test_gradcheck_against_finite_differences():
    assert torch.autograd.gradcheck(tanh_rnn, double_inputs())


@pytest.mark.parametrize("steps", [1, 2, 35])
def test_values_and_gradients_match_the_step_loop(steps):
    x, h0, w = double_inputs(steps=steps, hidden=7, seed=steps)
    upstream = torch.randn(steps, 3, 7, dtype=torch.double)
    fused = tanh_rnn(x, h0, w)
    naive = naive_tanh_rnn(x, h0, w)
    torch.testing.assert_close(fused, naive, atol=1e-12, rtol=0)
    got = torch.autograd.grad((fused * upstream).sum(), (x, h0, w))
    want = torch.autograd.grad((naive * upstream).sum(), (x, h0, w))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_non_contiguous_weight_and_upstream_gradient():
    x, h0, w = double_inputs(hidden=6)
    w_t = w.detach().T.clone().requires_grad_()  # a (in, out) parameter, passed transposed
    upstream = torch.randn(3, 6, 6, dtype=torch.double).transpose(0, 1)  # (T, B, H), strided
    got = torch.autograd.grad((tanh_rnn(x, h0, w_t.T) * upstream).sum(), (x, w_t))
    want = torch.autograd.grad((naive_tanh_rnn(x, h0, w_t.T) * upstream).sum(), (x, w_t))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_no_gradient_needed_for_the_initial_state():
    x, _, w = double_inputs()
    h0 = torch.zeros(3, 5, dtype=torch.double)  # a fresh state does not require grad
    tanh_rnn(x, h0, w).sum().backward()
    assert x.grad is not None and w.grad is not None and h0.grad is None


def lookup_inputs(steps=6, batch=3, rows=4, hidden=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    # few rows, so tokens repeat and each row's gradient sums several positions
    tokens = torch.randint(rows, (steps, batch), generator=g)
    table = torch.randn(rows, hidden, dtype=torch.double, generator=g).requires_grad_()
    _, h0, w = double_inputs(steps, batch, hidden, seed)
    return tokens, table, h0, w


def test_lookup_gradcheck_against_finite_differences():
    tokens, table, h0, w = lookup_inputs()
    assert torch.autograd.gradcheck(lambda *a: tanh_rnn_lookup(tokens, *a), (table, h0, w))


@pytest.mark.parametrize("steps", [1, 35])
def test_lookup_matches_one_hot_product_then_step_loop(steps):
    tokens, table, h0, w = lookup_inputs(steps=steps, seed=steps)
    upstream = torch.randn(steps, 3, 5, dtype=torch.double)
    fused = tanh_rnn_lookup(tokens.t().contiguous().t(), table, h0, w)  # strided tokens
    x = F.one_hot(tokens, 4).double() @ table  # (T, B, H), the book's one-hot product
    naive = naive_tanh_rnn(x, h0, w)
    torch.testing.assert_close(fused, naive, atol=1e-12, rtol=0)
    got = torch.autograd.grad((fused * upstream).sum(), (table, h0, w))
    want = torch.autograd.grad((naive * upstream).sum(), (table, h0, w))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_lookup_of_no_steps_is_empty():
    tokens, table, h0, w = lookup_inputs()
    assert tanh_rnn_lookup(tokens[:0], table, h0, w).shape == (0, 3, 5)


def nn_rnn_reference(model, tokens, state):
    """RNNModel's framework path: nn.RNN on one-hot inputs, then the dense layer."""
    x = F.one_hot(tokens, model.vocab_size).to(model.dense.weight.dtype)
    hidden, state = model.rnn(x, state)
    return model.dense(hidden), state


@pytest.mark.parametrize("num_layers", [1, 2])
def test_concise_model_matches_nn_rnn(num_layers):
    torch.manual_seed(0)
    model = RNNModel(11, 16, num_layers).double()
    tokens, labels = torch.randint(11, (4, 9)), torch.randint(11, (4, 9))
    state = torch.randn(num_layers, 4, 16, dtype=torch.double) * 0.5
    results = []
    for forward in (model, lambda t, s: nn_rnn_reference(model, t, s)):
        model.zero_grad()
        logits, new_state = forward(tokens, state)
        F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1)).backward()
        results.append((logits, new_state, [p.grad.clone() for p in model.parameters()]))
    (la, sa, ga), (lb, sb, gb) = results
    torch.testing.assert_close(la, lb, atol=1e-10, rtol=0)
    torch.testing.assert_close(sa, sb, atol=1e-10, rtol=0)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_scratch_model_matches_its_step_loop():
    torch.manual_seed(0)
    model = RNNScratch(11, 16).double()
    tokens = torch.randint(11, (4, 9))
    h0 = torch.randn(4, 16, dtype=torch.double)
    logits, state = model(tokens, h0)
    x = F.one_hot(tokens.T, 11).double() @ model.W_xh + model.b_h  # (T, B, H)
    hidden = naive_tanh_rnn(x, h0, model.W_hh.T)
    torch.testing.assert_close(logits, (hidden @ model.W_hq + model.b_q).transpose(0, 1))
    torch.testing.assert_close(state, hidden[-1])


def test_embedding_tied_deep_model_matches_nn_rnn_in_eval():
    torch.manual_seed(0)
    model = RNNModel(11, 16, 3, embed_size=16, dropout=0.3, tie_weights=True).double().eval()
    tokens = torch.randint(11, (2, 5))
    state = torch.randn(3, 2, 16, dtype=torch.double)
    logits, new_state = model(tokens, state)
    hidden, want_state = model.rnn(model.embedding(tokens), state)
    torch.testing.assert_close(logits, model.dense(hidden), atol=1e-10, rtol=0)
    torch.testing.assert_close(new_state, want_state, atol=1e-10, rtol=0)


def test_dropout_between_layers_is_active_in_training():
    torch.manual_seed(0)
    model = RNNModel(11, 16, 2, dropout=0.5).train()
    tokens = torch.randint(11, (2, 5))
    state = model.init_state(2, "cpu")
    first, _ = model(tokens, state)
    second, _ = model(tokens, state)
    assert not torch.allclose(first, second)


def test_float32_tanh_form_stays_within_rounding_of_torch_tanh():
    # the node computes tanh(z) as 2 sigmoid(2z) - 1; at the book's size and in float32 it
    # must stay within a few units in the last place of the torch.tanh loop
    g = torch.Generator().manual_seed(0)
    x = torch.randn(35, 32, 256, generator=g) * 2
    h0 = torch.randn(32, 256, generator=g).tanh()
    w = torch.randn(256, 256, generator=g) * 0.1
    with torch.no_grad():
        fused, naive = tanh_rnn(x, h0, w), naive_tanh_rnn(x, h0, w)
    assert (fused - naive).abs().max() < 2e-6
    assert fused.abs().max() <= 1.0

import pytest
import torch

from rnnlab.errors import ConfigError
from rnnlab.generate import predict
from rnnlab.models import MODELS, RNNModel, build_model
from rnnlab.train import train
from rnnlab.vocab import UNK, Vocab

from .common import TINY_TEXT


def reference_predict(model, vocab, prefix, num_preds):
    """The book's predict_ch8, one token per call."""
    outputs = [vocab.index(prefix[0])]
    state = model.init_state(1, "cpu")
    for ch in prefix[1:]:
        _, state = model(torch.tensor([[outputs[-1]]]), state)
        outputs.append(vocab.index(ch))
    for _ in range(num_preds):
        y, state = model(torch.tensor([[outputs[-1]]]), state)
        outputs.append(int(y.argmax(-1).reshape(1)))
    return vocab.decode(outputs[len(prefix):])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_greedy_matches_the_books_loop(name):
    vocab = Vocab(TINY_TEXT)
    model = build_model(name, len(vocab), 16)
    out = predict(model, vocab, "time traveller", 20)
    assert out.startswith("time traveller") and len(out) == len("time traveller") + 20
    with torch.no_grad():
        assert out[len("time traveller"):] == reference_predict(model, vocab, "time traveller", 20)


def test_trained_model_continues_its_text():
    vocab = Vocab(TINY_TEXT)
    ids = torch.tensor(vocab.encode(TINY_TEXT * 6))
    torch.manual_seed(0)
    model = RNNModel(len(vocab), 64)
    train(model, ids, batch_size=4, seq_len=16, epochs=150, lr=1.0)
    assert predict(model, vocab, "his grey eyes", 15) == "his grey eyes shone and twin"


def test_unknown_prefix_characters_do_not_crash():
    vocab = Vocab(TINY_TEXT)
    model = RNNModel(len(vocab), 8)
    out = predict(model, vocab, "Zebra?", 5)
    assert out.startswith("Zebra?") and len(out) == 11
    with pytest.raises(ConfigError, match="prefix is empty"):
        predict(model, vocab, "", 5)

import collections

from hypothesis import given
from hypothesis import strategies as st

from rnnlab.corpus import load_corpus
from rnnlab.vocab import UNK, Vocab


def test_timemachine_vocab_has_28_tokens_by_frequency():
    corpus = load_corpus("timemachine")
    vocab = Vocab(corpus.tokens)
    assert len(vocab) == 28
    assert vocab.idx_to_token[0] == UNK
    assert set(vocab.idx_to_token[1:]) == set("abcdefghijklmnopqrstuvwxyz ")
    counts = collections.Counter(corpus.tokens)
    freqs = [counts[t] for t in vocab.idx_to_token[1:]]
    assert freqs == sorted(freqs, reverse=True)
    assert vocab.idx_to_token[1:3] == [" ", "e"]


def test_reserved_tokens_and_min_freq():
    vocab = Vocab(list("aaabbc"), min_freq=2, reserved_tokens=["<bos>"])
    assert vocab.idx_to_token == [UNK, "<bos>", "a", "b"]
    assert vocab.index("c") == vocab.unk


def test_word_tokens_decode_with_spaces():
    vocab = Vocab(["the", "cat", "the", "dog"], token_type="word")
    assert vocab.encode("the dog") == [vocab.index("the"), vocab.index("dog")]
    assert vocab.decode(vocab.encode("the dog")) == "the dog"
    assert vocab.decode(vocab.encode("the bird")) == f"the {UNK}"


def test_unknown_characters_map_to_unk():
    vocab = Vocab("abc")
    assert vocab.encode("abZ") == [vocab.index("a"), vocab.index("b"), 0]
    assert vocab.unknown("abZY!") == ["!", "Y", "Z"]


def test_json_round_trip(tmp_path):
    vocab = Vocab("hello world, ünïcode\n", reserved_tokens=["<pad>"])
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == vocab


@given(st.text(min_size=1))
def test_encode_decode_round_trip_on_its_own_text(text):
    vocab = Vocab(text)
    assert vocab.decode(vocab.encode(text)) == text

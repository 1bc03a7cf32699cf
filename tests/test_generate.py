import contextlib
import io
import itertools
import math

import pytest
import torch
from torch import nn

from rnnlab.checkpoint import load_run
from rnnlab.cli import main
from rnnlab.config import GenerateConfig
from rnnlab.errors import ConfigError
from rnnlab.generate import generate, predict, stream, stream_batch
from rnnlab.models import MODELS, RNNModel, build_model
from rnnlab.sampling import next_token_probs
from rnnlab.train import train
from rnnlab.vocab import Vocab

from .common import TINY_TEXT

PREFIX = "time traveller"


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


class TableModel(nn.Module):
    """Logits we control: row ``t`` of a fixed table follows token ``t``. Its state is a
    tuple that only counts steps, so the generator's tuple handling is exercised too."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)  # (V, V)

    def init_state(self, batch_size, device):
        return (torch.zeros(batch_size, 1, device=device),)

    def forward(self, tokens, state):
        return self.table[tokens], (state[0] + tokens.shape[1],)  # (B, T, V)


def table_setup(seed=0, size=12, scale=3.0):
    vocab = Vocab("".join(chr(ord("a") + i) for i in range(size - 1)))
    table = torch.randn(size, size, generator=torch.Generator().manual_seed(seed)) * scale
    table[:, vocab.unk] = -1e9  # never generate <unk>, whose text reads back as 5 tokens
    return TableModel(table), vocab


def transitions(vocab, text):
    ids = vocab.encode(text)
    return list(itertools.pairwise(ids))


@pytest.fixture
def tiny():
    vocab = Vocab(TINY_TEXT)
    torch.manual_seed(0)
    return build_model("rnn", len(vocab), 16), vocab


# The book's greedy prediction ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_greedy_matches_the_books_loop(name):
    vocab = Vocab(TINY_TEXT)
    model = build_model(name, len(vocab), 16)
    out = predict(model, vocab, PREFIX, 20)
    assert out.startswith(PREFIX) and len(out) == len(PREFIX) + 20
    with torch.no_grad():
        assert out[len(PREFIX):] == reference_predict(model, vocab, PREFIX, 20)


def test_trained_model_continues_its_text():
    vocab = Vocab(TINY_TEXT)
    ids = torch.tensor(vocab.encode(TINY_TEXT * 6))
    torch.manual_seed(0)
    model = RNNModel(len(vocab), 64)
    train(model, ids, batch_size=4, seq_len=16, epochs=150, lr=1.0)
    assert predict(model, vocab, "his grey eyes", 15) == "his grey eyes shone and twin"


def test_generation_leaves_the_training_mode_as_it_was(tiny):
    model, vocab = tiny
    model.train()
    generate(model, vocab, "the", num_preds=3, temperature=1.0)
    assert model.training
    model.eval()
    predict(model, vocab, "the", 3)
    assert not model.training


# Sampling through the one generator, for every model -----------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sampling_keeps_the_prefix_and_the_exact_length(name):
    vocab = Vocab(TINY_TEXT)
    model = build_model(name, len(vocab), 16)
    texts = generate(model, vocab, PREFIX, num_preds=30, temperature=1.0, num_samples=3)
    assert len(texts) == 3
    for text in texts:
        assert text.startswith(PREFIX)
        assert len(text.replace("<unk>", "?")) == len(PREFIX) + 30  # <unk> is one token


def test_word_tokens_are_joined_by_spaces(tiny):
    vocab = Vocab(TINY_TEXT.split(), token_type="word")
    model = build_model("gru", len(vocab), 16)
    text = generate(model, vocab, "the time", num_preds=7, temperature=1.0)[0]
    assert text.startswith("the time ") and len(text.split()) == 2 + 7
    assert predict(model, vocab, "the time", 0) == "the time"


def test_temperature_zero_is_greedy(tiny):
    model, vocab = tiny
    greedy = predict(model, vocab, PREFIX, 40)
    assert generate(model, vocab, PREFIX, num_preds=40)[0] == greedy
    assert generate(model, vocab, PREFIX, num_preds=40, temperature=0.0, seed=7)[0] == greedy
    # ... and the limit of sampling as the temperature goes to 0.
    assert generate(model, vocab, PREFIX, num_preds=40, temperature=1e-4, seed=3)[0] == greedy


def test_a_seed_repeats_its_samples_and_other_seeds_differ(tiny):
    model, vocab = tiny  # untrained: close to uniform over the vocabulary
    first = generate(model, vocab, PREFIX, num_preds=60, temperature=1.0, seed=11)
    torch.manual_seed(123)  # the global RNG plays no part
    assert generate(model, vocab, PREFIX, num_preds=60, temperature=1.0, seed=11) == first
    other = generate(model, vocab, PREFIX, num_preds=60, temperature=1.0, seed=12)
    assert other != first
    samples = generate(model, vocab, PREFIX, num_preds=60, temperature=1.0, num_samples=3)
    assert len(set(samples)) == 3


# Token choice, against logits we control ----------------------------------------------


def test_top_k_never_leaves_the_k_most_likely():
    model, vocab = table_setup()
    allowed = {a: set(model.table[a].topk(3).indices.tolist()) for a in range(len(vocab))}
    # A high temperature flattens the distribution, so any token outside would show up.
    text = generate(model, vocab, "a", num_preds=400, temperature=5.0, top_k=3, seed=1)[0]
    pairs = transitions(vocab, text)
    assert all(b in allowed[a] for a, b in pairs)
    assert len({b for a, b in pairs if a == pairs[0][0]}) > 1  # it did sample
    free = generate(model, vocab, "a", num_preds=400, temperature=5.0, seed=1)[0]
    assert any(b not in allowed[a] for a, b in transitions(vocab, free))  # the check can fail
    # top-k 1 is greedy
    assert generate(model, vocab, "a", num_preds=30, temperature=5.0, top_k=1)[0] == predict(
        model, vocab, "a", 30
    )


def test_top_k_keeps_exactly_k_under_ties():
    probs = next_token_probs(torch.zeros(2, 10), top_k=4)
    assert ((probs > 0).sum(-1) == 4).all()
    assert torch.allclose(probs.sum(-1), torch.ones(2))


def nucleus(p, top_p):
    """The fewest most likely tokens whose probability adds up to at least top_p."""
    order = sorted(range(len(p)), key=lambda i: -p[i])
    kept, mass = set(), 0.0
    for i in order:
        kept.add(i)
        mass += p[i]
        if mass >= top_p:
            break
    return kept


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.15, 0.25]]))
    probs = next_token_probs(logits, top_p=0.7)[0]
    assert torch.allclose(probs, torch.tensor([0.0, 0.5 / 0.75, 0.0, 0.25 / 0.75]))
    assert torch.allclose(next_token_probs(logits, top_p=0.1)[0], torch.tensor([0.0, 1, 0, 0]))

    model, vocab = table_setup(size=8, scale=1.5)
    dist = torch.softmax(model.table.detach() / 2.0, -1).tolist()
    allowed = {a: nucleus(dist[a], 0.6) for a in range(len(vocab))}
    text = generate(model, vocab, "a", num_preds=400, temperature=2.0, top_p=0.6, seed=2)[0]
    pairs = transitions(vocab, text)
    assert all(b in allowed[a] for a, b in pairs)
    free = generate(model, vocab, "a", num_preds=400, temperature=2.0, seed=2)[0]
    assert any(b not in allowed[a] for a, b in transitions(vocab, free))


def test_alpha_sharpening_is_temperature_one_over_alpha():
    logits = torch.randn(3, 9, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits, -1)
    for alpha in (0.5, 2.0, 3.0):
        sharpened = p**alpha / (p**alpha).sum(-1, keepdim=True)  # the book's P^alpha
        assert torch.allclose(next_token_probs(logits, alpha=alpha), sharpened, atol=1e-6)
        assert torch.allclose(next_token_probs(logits, 1 / alpha), sharpened, atol=1e-6)
    model, vocab = table_setup()
    by_alpha = generate(model, vocab, "a", num_preds=200, temperature=1.0, alpha=4.0, seed=5)
    by_temperature = generate(model, vocab, "a", num_preds=200, temperature=0.25, seed=5)
    assert by_alpha == by_temperature


def test_sharper_sampling_agrees_more_with_greedy():
    model, vocab = table_setup()
    greedy = predict(model, vocab, "a", 1)
    firsts = {a: generate(model, vocab, "a", num_preds=1, temperature=1.0, alpha=a,
                          num_samples=200)
              for a in (1.0, 8.0)}
    agree = {a: sum(t == greedy for t in texts) for a, texts in firsts.items()}
    top = torch.softmax(model.table[vocab.index("a")].detach(), -1).max().item()
    assert agree[8.0] > agree[1.0]
    assert abs(agree[1.0] / 200 - top) < 4 * math.sqrt(top * (1 - top) / 200)


# Batches, streaming, stop -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_batched_prompts_equal_each_prompt_alone(name):
    vocab = Vocab(TINY_TEXT)
    model = build_model(name, len(vocab), 16)
    prompts = ["t", PREFIX, "his grey"]  # different lengths
    for temperature in (0.0, 1.0):
        batched = generate(model, vocab, prompts, num_preds=25, temperature=temperature,
                           num_samples=2, seed=5)
        # Row order is prompt by prompt; sample s of every prompt uses seed + s.
        alone = [generate(model, vocab, p, num_preds=25, temperature=temperature, seed=5 + s)[0]
                 for p in prompts for s in range(2)]
        assert batched == alone
    assert generate(model, vocab, prompts, num_preds=25) == [
        predict(model, vocab, p, 25) for p in prompts
    ]


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_deep_models_with_embedding_and_dropout_sample_as_one_batch(name):
    vocab = Vocab(TINY_TEXT)
    model = build_model(name, len(vocab), 16, num_layers=2, embed_size=8, dropout=0.5)
    model.train()  # generation switches dropout off and back
    prompts = ["a", PREFIX]
    batched = generate(model, vocab, prompts, num_preds=20, temperature=1.0, num_samples=2)
    alone = [generate(model, vocab, p, num_preds=20, temperature=1.0, seed=s)[0]
             for p in prompts for s in range(2)]
    assert batched == alone and model.training


def test_a_row_may_stop_while_another_still_reads_its_prefix():
    model, vocab = table_setup()
    first = predict(model, vocab, "a", 1)[-1]  # greedy after "a"
    prompts = ["a", "abcdefghij"]
    for temperature in (0.0, 1.0):
        batched = generate(model, vocab, prompts, num_preds=6, temperature=temperature,
                           stop=first)
        assert batched == [generate(model, vocab, p, num_preds=6, temperature=temperature,
                                    stop=first)[0] for p in prompts]
        if temperature == 0:
            assert batched[0] == "a" + first  # stopped while row 1 was still warming up


def test_streamed_pieces_join_to_the_full_text(tiny):
    model, vocab = tiny
    pieces = list(stream(model, vocab, PREFIX, num_preds=30, temperature=1.0, seed=4))
    assert pieces[0] == PREFIX and len(pieces) == 31
    assert "".join(pieces) == generate(model, vocab, PREFIX, num_preds=30, temperature=1.0,
                                       seed=4)[0]
    rows: dict[int, str] = {}
    for piece in stream_batch(model, vocab, ["a", "bb"], num_preds=5, num_samples=2):
        assert not rows.get(piece.row, "").endswith("|")  # nothing after a row's final piece
        rows[piece.row] = rows.get(piece.row, "") + piece.text + ("|" if piece.final else "")
    assert [rows[r] for r in range(4)] == [
        t + "|" for t in generate(model, vocab, ["a", "bb"], num_preds=5, num_samples=2)
    ]


def test_stream_yields_as_it_generates(tiny):
    model, vocab = tiny
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    pieces = stream(model, vocab, PREFIX, num_preds=100)
    assert next(pieces) == PREFIX and next(pieces) and next(pieces)
    assert len(calls) <= 3  # one warm-up call, then one per token so far
    hook.remove()


def test_stop_string_ends_the_text(tiny):
    model, vocab = tiny
    full = generate(model, vocab, "t", num_preds=60, temperature=1.0, seed=9)[0]
    stop = full[20:23]
    end = full.index(stop, 1) + len(stop)  # first occurrence that ends after the prefix
    out = generate(model, vocab, "t", num_preds=60, temperature=1.0, seed=9, stop=stop)[0]
    assert out == full[:end] and out.endswith(stop)
    assert "".join(stream(model, vocab, "t", num_preds=60, temperature=1.0, seed=9,
                          stop=stop)) == out


def test_stop_string_in_the_prefix_alone_does_not_stop(tiny):
    model, vocab = tiny
    full = predict(model, vocab, "the time", 30)
    out = generate(model, vocab, "the time", num_preds=30, stop="the")[0]
    assert len(out) > len("the time")  # "the" in the prefix did not stop it
    found = full.find("the", len("the time") - 2)  # an occurrence ending after the prefix
    assert out == (full if found < 0 else full[: found + 3])
    # An occurrence that starts in the prefix and ends in the generated text counts.
    stop = "e" + full[len("the time")]
    assert generate(model, vocab, "the time", num_preds=30, stop=stop)[0] == full[:9]


def test_stop_string_inside_a_word_cuts_the_word():
    vocab = Vocab(TINY_TEXT.split(), token_type="word")
    model = build_model("rnn", len(vocab), 16)
    full = predict(model, vocab, "the", 10)
    word = full.split()[3]
    stop = word[:2] if len(word) > 1 else word
    out = generate(model, vocab, "the", num_preds=10, stop=stop)[0]
    assert out.endswith(stop) and full.startswith(out)
    assert stop not in out[len("the") : -len(stop)]


# Characters outside the vocabulary --------------------------------------------------


def test_unknown_characters_read_as_unk_by_default(tiny):
    model, vocab = tiny
    out = predict(model, vocab, "Zebra?", 5)
    assert out.startswith("Zebra?") and len(out) == 11
    with torch.no_grad():
        assert out[6:] == reference_predict(model, vocab, "Zebra?", 5)  # vocab.index -> <unk>
    with pytest.raises(ConfigError, match="prefix is empty"):
        predict(model, vocab, "", 5)


def test_unknown_characters_skipped(tiny):
    model, vocab = tiny
    out = generate(model, vocab, "Zeb?ra", num_preds=12, unknown="skip")[0]
    assert out == "Zeb?ra" + predict(model, vocab, "ebra", 12)[4:]
    with pytest.raises(ConfigError, match="prefix is empty"):
        generate(model, vocab, "ZZ?", unknown="skip")


def test_unknown_characters_refused_with_one_line(tiny):
    model, vocab = tiny
    with pytest.raises(ConfigError) as err:
        generate(model, vocab, "Zebra?\n", unknown="error")
    message = str(err.value)
    assert "'Z'" in message and "'?'" in message and "--unknown unk" in message
    assert "--unknown skip" in message and len(message.splitlines()) == 1
    assert "'\\n'" not in message  # newline is in the vocabulary
    assert generate(model, vocab, "grey eyes", unknown="error")  # a known prefix is fine


# Configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("fields, message", [
    ({"num_preds": -1}, "num-preds"),
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": 1.0, "top_k": 0}, "top-k"),
    ({"temperature": 1.0, "top_p": 0.0}, "top-p"),
    ({"temperature": 1.0, "top_p": 1.5}, "top-p"),
    ({"temperature": 1.0, "alpha": 0.0}, "alpha"),
    ({"num_samples": 0}, "num-samples"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"stop": ""}, "stop"),
    ({"unknown": "ignore"}, "unknown"),
    ({"top_k": 5}, "temperature above 0"),
    ({"alpha": 2.0}, "temperature above 0"),
])
def test_bad_settings_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        GenerateConfig(**fields)


def test_overrides_are_checked_too(tiny):
    model, vocab = tiny
    with pytest.raises(ConfigError, match="top-p"):
        generate(model, vocab, "the", temperature=1.0, top_p=2.0)
    with pytest.raises(ConfigError, match="unknown generation setting"):
        generate(model, vocab, "the", temprature=1.0)
    with pytest.raises(ConfigError, match="stream_batch"):
        stream(model, vocab, "the", num_samples=2)


# The command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run directory and what `rnnlab train` printed."""
    out = tmp_path_factory.mktemp("gen") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", "--epochs", "3", "--hidden-size", "16", "--batch-size", "4",
                     "--seq-len", "8", "--max-tokens", "400", "--quiet", "--out", str(out)]) == 0
    return out, printed.getvalue().splitlines()


def gen(run, capsys, *flags):
    code = main(["generate", str(run[0]), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_defaults_reproduce_the_training_prediction(run, capsys):
    code, out, _ = gen(run, capsys)
    assert code == 0 and out == run[1][1] + "\n"  # 50 greedy characters after "time traveller"
    assert len(out) == len(PREFIX) + 50 + 1


def test_cli_sampling_matches_the_python_api(run, capsys):
    model, vocab, _ = load_run(run[0])
    flags = ["--temperature", "0.8", "--top-k", "5", "--top-p", "0.9", "--seed", "3",
             "--num-samples", "2", "--prefix", "the", "--prefix", "time traveller",
             "--num-preds", "30"]
    code, out, _ = gen(run, capsys, *flags)
    expected = generate(model, vocab, ["the", "time traveller"], temperature=0.8, top_k=5,
                        top_p=0.9, seed=3, num_samples=2, num_preds=30)
    assert code == 0 and out == "".join(t + "\n" for t in expected)
    assert gen(run, capsys, *flags)[1] == out  # the same seed repeats
    flags[flags.index("--seed") + 1] = "4"
    assert gen(run, capsys, *flags)[1] != out


def test_cli_alpha_prefix_file_stop_and_verbose(run, capsys, tmp_path):
    model, vocab, _ = load_run(run[0])
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("the time machine ", encoding="utf-8")
    code, out, err = gen(run, capsys, "--prefix-file", str(prompt), "--temperature", "1",
                         "--alpha", "2", "--stop", "e", "--num-preds", "200", "--verbose")
    expected = generate(model, vocab, "the time machine ", temperature=0.5, stop="e",
                        num_preds=200)[0]
    assert code == 0 and out == expected + "\n" and out.rstrip("\n").endswith("e")
    generated = len(expected) - len("the time machine ")
    assert err.startswith(f"{generated} characters generated in ") and "chars/sec" in err
    code, out, err = gen(run, capsys, "--prefix-file", str(tmp_path / "none.txt"))
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "--prefix-file" in err


def test_cli_unknown_policies(run, capsys):
    code, out, err = gen(run, capsys, "--prefix", "Zebra", "--unknown", "error")
    assert code == 1 and out == ""
    assert err.strip() == ("rnnlab: error: prefix characters not in the vocabulary: 'Z'; pass "
                           "--unknown unk to read them as <unk> or --unknown skip to drop them")
    code, out, _ = gen(run, capsys, "--prefix", "Zebra", "--unknown", "skip", "--num-preds", "9")
    assert code == 0 and out.startswith("Zebra") and len(out) == len("Zebra") + 9 + 1


@pytest.mark.parametrize("flags", [
    ["--top-p", "0"], ["--top-p", "1.5"], ["--temperature", "-1"], ["--top-k", "0"],
    ["--num-samples", "0"], ["--num-preds", "-1"], ["--unknown", "drop"], ["--alpha", "x"],
    ["--top-k", "5"],  # sampling settings with the greedy default temperature
])
def test_cli_bad_flags_exit_2_with_one_line(run, capsys, flags):
    with pytest.raises(SystemExit) as exc:
        main(["generate", str(run[0]), *flags])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("rnnlab generate: error:")


def test_cli_help_shows_the_config_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in ("num_preds", "top_p", "alpha", "seed", "unknown"):
        value = getattr(GenerateConfig(), field)
        assert f"(default: {value})" in text, field


def test_cli_writes_the_first_row_as_it_comes_and_the_others_in_order(monkeypatch):
    from rnnlab.cli import _write_rows
    from rnnlab.generate import Piece

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    seen = []

    def pieces():
        for piece in [Piece(0, "ab"), Piece(1, "xy"), Piece(0, "c"), Piece(1, "z", True),
                      Piece(0, "d", True)]:
            yield piece
            seen.append(out.getvalue())

    _write_rows(pieces(), 2)
    assert seen == ["ab", "ab", "abc", "abc", "abcd\nxyz\n"]

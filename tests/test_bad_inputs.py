"""Every bad input gets a one-line error, exit 1 or 2, and nothing written or overwritten."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab import treeio
from rnnlab.checkpoint import latest_checkpoint, load_checkpoint, load_run
from rnnlab.cli import main
from rnnlab.corpus import load_corpus
from rnnlab.errors import CheckpointError, CorpusError
from rnnlab.runs import Run

from .common import TINY_TEXT

SMALL = ["--epochs", "2", "--hidden-size", "8", "--batch-size", "2", "--seq-len", "5",
         "--quiet", "--val-fraction", "0"]


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def trained(tmp_path, tiny_text_file):
    out = tmp_path / "run"
    assert main(["train", "--text", str(tiny_text_file), *SMALL, "--out", str(out)]) == 0
    return out


def make_inputs(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "short.txt").write_text("too short")
    (tmp_path / "adir").mkdir()


FRESH_RUN_CASES = [
    # (flags, exit code, words the message must contain)
    (["--text", "missing.txt"], 1, "does not exist"),
    (["--text", "adir"], 1, "is a directory"),
    (["--text", "empty.txt"], 1, "is empty"),
    (["--text", "latin1.txt"], 1, "--encoding"),
    (["--text", "binary.bin"], 1, "binary"),
    (["--text", "short.txt"], 1, "need at least 15"),
    (["--epochs", "0"], 2, "must be positive"),
    (["--batch-size", "-3"], 2, "must be positive"),
    (["--lr", "0"], 2, "must be positive"),
    (["--seq-len", "0"], 2, "must be positive"),
    (["--model", "transformer"], 2, "invalid choice"),
    (["--preset", "nope"], 2, "invalid choice"),
]


@pytest.mark.parametrize("flags, code, message", FRESH_RUN_CASES)
def test_bad_training_input(tmp_path, monkeypatch, capsys, flags, code, message):
    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    try:
        got = main(["train", *SMALL, *flags, "--out", "out"])
    except SystemExit as exc:
        got = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code
    assert message in err[-1] and err[-1].startswith(("rnnlab: error:", "rnnlab train: error:"))
    if code == 1:
        assert len(err) == 1
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda(tmp_path, tiny_text_file, capsys):
    assert main(["train", "--text", str(tiny_text_file), *SMALL, "--device", "cuda",
                 "--out", str(tmp_path / "o")]) == 1
    assert "--device cpu" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_existing_run_is_refused(trained, tiny_text_file, capsys):
    before = snapshot(trained)
    assert main(["train", "--text", str(tiny_text_file), *SMALL, "--out", str(trained)]) == 1
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err
    assert snapshot(trained) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle"])
@pytest.mark.parametrize("command", ["generate", "resume"])
def test_corrupt_checkpoint(trained, capsys, damage, command):
    target = (latest_checkpoint(trained) / "model.safetensors") if command == "resume" \
        else trained / "model.safetensors"
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        target.write_bytes(b"\x93NUMPY" + bytes(500))
    else:
        torch.save({"x": torch.ones(2)}, target)
    before = snapshot(trained)
    args = ["generate", str(trained)] if command == "generate" else \
        ["train", "--resume", str(trained), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt" in err[0]
    assert snapshot(trained) == before


def test_newer_format(trained, capsys):
    manifest = json.loads((trained / "manifest.json").read_text())
    (trained / "manifest.json").write_text(json.dumps({**manifest, "format_version": 7}))
    assert main(["generate", str(trained)]) == 1
    assert "newer rnnlab" in capsys.readouterr().err


def test_vocabulary_mismatch_on_resume(trained, capsys):
    vocab = json.loads((trained / "vocab.json").read_text())
    vocab["idx_to_token"] = vocab["idx_to_token"][:1] + vocab["idx_to_token"][:0:-1]
    (trained / "vocab.json").write_text(json.dumps(vocab))
    assert main(["train", "--resume", str(trained), "--quiet"]) == 1
    assert "vocabulary" in capsys.readouterr().err


def test_resume_of_a_non_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "run directory" in capsys.readouterr().err


# --- property-based and fuzz tests ------------------------------------------------------

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
    st.text(max_size=5),
    st.builds(lambda n: torch.randn(n), st.integers(0, 4)),
)
trees = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.tuples(kids, kids),
        st.dictionaries(st.text(max_size=4), kids, max_size=3),
        st.dictionaries(st.integers(0, 9), kids, max_size=3),
    ),
    max_leaves=12,
)


def same(a, b):
    if torch.is_tensor(a):
        return torch.is_tensor(b) and torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


@settings(max_examples=80, deadline=None)
@given(trees)
def test_training_state_round_trip(tree):
    from safetensors.torch import load, save

    tensors, skeleton = treeio.split(tree)
    back = treeio.join(load(save(tensors)), json.loads(json.dumps(skeleton)))
    assert same(tree, back)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_random_bytes_as_corpus(tmp_path, data):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(data)
    try:
        corpus = load_corpus(text=path)
    except CorpusError as exc:
        assert "\n" not in str(exc)
    else:
        assert corpus.tokens


CHECKPOINT_FILES = ["model.safetensors", "config.json", "vocab.json", "manifest.json",
                    "checkpoints/latest", "CKPT/trainer.json", "CKPT/trainer.safetensors",
                    "CKPT/model.safetensors"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    text = root / "t.txt"
    text.write_text(TINY_TEXT * 3)
    from rnnlab.config import Config, DataConfig, ModelConfig, TrainConfig

    config = Config(DataConfig(text=str(text), batch_size=2, seq_len=5, val_fraction=0.0),
                    ModelConfig(hidden_size=8), TrainConfig(epochs=1))
    Run(config, root / "run").fit()
    return root / "run"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(CHECKPOINT_FILES), data=st.binary(max_size=300),
       keep=st.integers(0, 2000))
def test_random_bytes_as_checkpoint(pristine, tmp_path_factory, which, data, keep):
    import shutil

    run = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(pristine, run)
    ckpt = latest_checkpoint(run).relative_to(run)
    target = run / which.replace("CKPT", str(ckpt))
    original = target.read_bytes()
    target.write_bytes(original[:keep] + data)  # a damaged prefix or pure noise
    for load in (lambda: load_run(run), lambda: load_checkpoint(latest_checkpoint(run)),
                 lambda: Run.resume(run)):
        try:
            load()
        except (CheckpointError, CorpusError) as exc:
            assert "\n" not in str(exc)

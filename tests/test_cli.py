import csv
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.vocab import Vocab

SMALL = ["--epochs", "3", "--hidden-size", "16", "--batch-size", "4", "--seq-len", "8",
         "--max-tokens", "400", "--quiet"]


def test_train_writes_run_dir_and_generate_reproduces(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out), "--num-preds", "20"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("perplexity ") and printed[0].endswith("tokens/sec on cpu")
    assert printed[1].startswith("time traveller") and printed[2].startswith("traveller")
    for name in ("model.safetensors", "config.json", "vocab.json", "metrics.csv", "perplexity.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert main(["generate", str(out), "--prefix", "time traveller", "--num-preds", "20"]) == 0
    assert capsys.readouterr().out.strip() == printed[1]


def test_scratch_model_and_num_steps_alias(tmp_path, capsys):
    out = tmp_path / "s"
    args = [a if a != "--seq-len" else "--num-steps" for a in SMALL]
    assert main(["train", *args, "--model", "scratch", "--out", str(out), "--random-iter"]) == 0
    assert '"seq_len": 8' in (out / "config.json").read_text()
    assert '"random_iter": true' in (out / "config.json").read_text()


def test_own_text(tmp_path, tiny_text_file, capsys):
    out = tmp_path / "t"
    assert main(["train", "--text", str(tiny_text_file), "--epochs", "2", "--hidden-size", "8",
                 "--batch-size", "2", "--seq-len", "8", "--quiet", "--out", str(out)]) == 0
    vocab = Vocab.load(out / "vocab.json")
    assert "\n" in vocab and "t" in vocab  # raw preprocessing keeps newlines


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--lr", "-1"], ["--batch-size", "x"],
                                   ["--model", "nope"], ["--hidden-size", "0"]])
def test_bad_flags_exit_2_with_one_line(flags, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnnlab train: error:")


@pytest.mark.parametrize("extra, message", [
    (["--text", "/no/such/file.txt"], "does not exist"),
    (["--max-tokens", "30"], "at least 40"),
    (["--device", "cuda"], "--device cpu"),
])
def test_runtime_errors_are_one_line(tmp_path, capsys, extra, message):
    import torch

    if extra[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert main(["train", *SMALL, *extra, "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rnnlab: error:") and message in err
    assert not (tmp_path / "x" / "config.json").exists()


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["train", *SMALL, "--out", str(out), "--seed", "9"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert main(["train", *SMALL, "--out", str(out), "--seed", "9", "--overwrite"]) == 0


def test_generate_on_a_missing_run(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "none")]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_console_script_help():
    for args in (["--help"], ["train", "--help"], ["generate", "--help"]):
        done = subprocess.run([sys.executable, "-m", "rnnlab", *args], check=False,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "usage: rnnlab" in done.stdout
    script = Path(sys.executable).parent / "rnnlab"  # the installed console script
    done = subprocess.run([str(script), "train", "--help"], check=False, capture_output=True,
                          text=True)
    assert "--num-steps" in done.stdout and "(default: 256)" in done.stdout


def test_a_closed_pipe_is_not_a_traceback(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError

        def flush(self):
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["generate", str(out)]) == 0
    assert (out / "model.safetensors").is_file()

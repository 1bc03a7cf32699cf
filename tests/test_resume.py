import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.checkpoint import latest_checkpoint, load_checkpoint, load_run
from rnnlab.config import Config, DataConfig, ModelConfig, TrainConfig
from rnnlab.errors import CheckpointError, TrainingDiverged
from rnnlab.runs import Run

from .common import TINY_TEXT


def tiny_config(text_file, **train):
    train = {"epochs": 6, "save_every": 2, "seed": 3, **train}
    return Config(
        data=DataConfig(text=str(text_file), batch_size=3, seq_len=7, val_fraction=0.0),
        model=ModelConfig(hidden_size=16),
        train=TrainConfig(**train),
    )


def losses(run_dir):
    lines = (Path(run_dir) / "metrics.csv").read_text().splitlines()
    return [line.split(",")[:2] for line in lines]  # epoch, perplexity


def weights(run_dir):
    return load_file(Path(run_dir) / "model.safetensors")


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.parametrize("random_iter", [False, True])
def test_stop_mid_epoch_and_resume_is_bitwise_identical(tmp_path, tiny_text_file, random_iter):
    config = tiny_config(tiny_text_file)
    config.data.random_iter = random_iter
    Run(config, tmp_path / "straight").fit()

    first = Run(config, tmp_path / "stopped")
    first.metrics = None
    while first.trainer.epoch < 2:  # step up to the start of the third epoch
        first.trainer.fit(max_steps=1)
    result = first.fit(max_steps=2)  # two batches into it, then save
    assert result.stopped and first.trainer.epoch == 2 and first.trainer.batch == 2
    state = load_checkpoint(latest_checkpoint(tmp_path / "stopped"))[1]
    assert state["batch"] == 2 and state["epoch"] == 2 and state["hidden"] is not None

    resumed = Run.resume(tmp_path / "stopped")
    assert resumed.trainer.step == first.trainer.step
    resumed.fit()
    assert_same_weights(tmp_path / "straight", tmp_path / "stopped")
    assert losses(tmp_path / "straight") == losses(tmp_path / "stopped")


def test_checkpoints_rotate_and_keep_the_best(tmp_path, tiny_text_file):
    config = tiny_config(tiny_text_file, epochs=8, save_every=1, keep_last=2)
    Run(config, tmp_path / "r").fit()
    root = tmp_path / "r" / "checkpoints"
    names = sorted(p.name for p in root.glob("step-*"))
    best = (root / "best").read_text()
    assert (root / "latest").read_text() == names[-1]
    assert set(names) - {best} <= set(names[-2:]) and len(names) <= 3
    assert not list(root.glob(".tmp-*"))
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["torch"] == torch.__version__
    assert manifest["corpus_sha1"] and manifest["seed"] == 3


def test_checkpoint_holds_optimizer_and_rng_state(tmp_path, tiny_text_file):
    config = tiny_config(tiny_text_file, epochs=2)
    run = Run(config, tmp_path / "r")
    run.fit(max_steps=3)
    _, state = load_checkpoint(latest_checkpoint(tmp_path / "r"))
    assert {"optimizer", "generator", "torch_rng", "hidden", "history", "step"} <= set(state)
    assert torch.equal(state["generator"], run.trainer.generator.get_state())
    assert state["optimizer"]["param_groups"][0]["lr"] == 1.0
    # fresh 64-byte-aligned copies, not views into the file's buffer: BLAS results may
    # depend on alignment, and the carried state goes straight into a matrix product
    assert state["hidden"].data_ptr() % 64 == 0


def test_nan_loss_keeps_the_last_good_checkpoint(tmp_path, tiny_text_file):
    config = tiny_config(tiny_text_file, epochs=4, save_every=1)
    run = Run(config, tmp_path / "r")
    run.fit(max_steps=len(run.trainer._begin_epoch()) * 2)  # two good epochs, saved
    good = weights(tmp_path / "r")
    with torch.no_grad():
        next(run.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"epoch 3, step 1; lower --lr"):
        run.fit()
    model, _, _ = load_run(tmp_path / "r")
    for k, v in model.state_dict().items():
        assert torch.equal(v, good[k])
    Run.resume(tmp_path / "r")  # and it still resumes


def test_newer_format_is_refused(tmp_path, tiny_text_file):
    Run(tiny_config(tiny_text_file, epochs=1), tmp_path / "r").fit()
    path = tmp_path / "r" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="newer rnnlab"):
        Run.resume(tmp_path / "r")
    with pytest.raises(CheckpointError, match="upgrade"):
        load_run(tmp_path / "r")


def test_changed_corpus_is_refused_on_resume(tmp_path, tiny_text_file):
    Run(tiny_config(tiny_text_file, epochs=1), tmp_path / "r").fit()
    tiny_text_file.write_text(TINY_TEXT.upper() * 3)
    with pytest.raises(CheckpointError, match="corpus has changed"):
        Run.resume(tmp_path / "r")


KILL_SCRIPT = r"""
import os, sys, time
from pathlib import Path
import rnnlab.checkpoint as ck
from rnnlab.config import Config, DataConfig, ModelConfig, TrainConfig
from rnnlab.runs import Run

real_replace = os.replace
saves = 0
def slow_replace(src, dst):
    global saves
    if Path(dst).name.startswith("step-"):
        saves += 1
        if saves == 3:  # the third checkpoint: announce, then hang inside the save
            Path(sys.argv[2]).write_text("saving")
            time.sleep(60)
    real_replace(src, dst)
ck.os.replace = slow_replace
config = Config(
    data=DataConfig(text=sys.argv[3], batch_size=3, seq_len=7, val_fraction=0.0),
    model=ModelConfig(hidden_size=16),
    train=TrainConfig(epochs=50, save_every=1),
)
Run(config, sys.argv[1]).fit()
"""


def test_sigkill_during_a_save_leaves_a_loadable_checkpoint(tmp_path, tiny_text_file):
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "r"), str(marker), str(tiny_text_file)]
    )
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    root = tmp_path / "r" / "checkpoints"
    assert list(root.glob(".tmp-*"))  # the half-written one was left under its temporary name
    latest = latest_checkpoint(tmp_path / "r")
    assert latest.name == (root / "latest").read_text()
    load_checkpoint(latest)
    load_run(tmp_path / "r")
    resumed = Run.resume(tmp_path / "r")
    assert resumed.trainer.epoch == 2
    resumed.trainer.epochs = 3
    resumed.fit()  # and training goes on


def test_sigint_saves_and_resume_finishes_like_an_uninterrupted_run(tmp_path, tiny_text_file):
    args = ["--text", str(tiny_text_file), "--batch-size", "3", "--seq-len", "7",
            "--hidden-size", "16", "--epochs", "40", "--val-fraction", "0", "--quiet"]
    cli = [sys.executable, "-m", "rnnlab", "train"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*cli, *args, "--out", str(tmp_path / "a")], env=env,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "a" / "metrics.csv"
    deadline = time.time() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > 3):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"rnnlab train --resume {tmp_path / 'a'}" in err
    done = subprocess.run([*cli, "--resume", str(tmp_path / "a"), "--quiet"], check=False,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("perplexity ")
    straight = subprocess.run([*cli, *args, "--out", str(tmp_path / "b")], check=False,
                              env=env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_threads_setting_is_applied_and_recorded(tmp_path, tiny_text_file):
    before = torch.get_num_threads()
    try:
        wanted = before + 1  # differs from whatever the suite runs with
        run = Run(tiny_config(tiny_text_file, epochs=1, threads=wanted), tmp_path / "r")
        assert torch.get_num_threads() == wanted
        run.fit()
        config = json.loads((tmp_path / "r" / "config.json").read_text())
        assert config["train"]["threads"] == wanted
    finally:
        torch.set_num_threads(before)

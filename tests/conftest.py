import os

import pytest
import torch

# Tiny models gain nothing from threads, and on a busy machine spinning threads cost a lot.
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses
torch.set_num_threads(1)

from .common import TINY_TEXT


@pytest.fixture
def tiny_text_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT * 3, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

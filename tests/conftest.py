import pytest
import torch

from .common import TINY_TEXT


@pytest.fixture
def tiny_text_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT * 3, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

import math

import torch
import torch.nn.functional as F

from rnnlab.evaluate import evaluate
from rnnlab.models import RNNModel


def test_evaluate_equals_a_plain_full_sequence_pass():
    torch.manual_seed(0)
    model = RNNModel(7, 12)
    ids = torch.randint(7, (3 * 40 + 1,))
    result = evaluate(model, ids, batch_size=3, seq_len=9)  # 9 does not divide 40
    rows = ids[:120].view(3, 40)
    labels = ids[1:121].view(3, 40)
    logits, _ = model(rows, model.init_state(3, "cpu"))
    expected = F.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1)).item()
    assert result.num_tokens == 120
    assert math.isclose(result.loss, expected, rel_tol=1e-5)
    assert math.isclose(result.bits_per_token, expected / math.log(2), rel_tol=1e-5)
    assert math.isclose(result.perplexity, math.exp(expected), rel_tol=1e-5)


def test_short_streams_shrink_the_batch():
    model = RNNModel(5, 4)
    result = evaluate(model, torch.tensor([1, 2, 3, 4]), batch_size=32, seq_len=35)
    assert result.num_tokens == 3

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.batches import make_epoch, min_tokens, random_epoch, sequential_epoch
from rnnlab.errors import CorpusError


def stream(n):
    return torch.arange(n)  # token i has id i, so ids are positions in the stream


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 400),
    batch_size=st.integers(1, 6),
    seq_len=st.integers(1, 9),
    random_iter=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_labels_are_inputs_shifted_by_one(n, batch_size, seq_len, random_iter, seed):
    if n < min_tokens(batch_size, seq_len):
        with pytest.raises(CorpusError, match="at least"):
            make_epoch(stream(n), batch_size, seq_len, torch.Generator().manual_seed(seed), random_iter)
        return
    ep = make_epoch(stream(n), batch_size, seq_len, torch.Generator().manual_seed(seed), random_iter)
    assert len(ep) >= 1
    assert ep.inputs.shape == ep.labels.shape == (len(ep), batch_size, seq_len)
    assert torch.equal(ep.labels, ep.inputs + 1)
    # every subsequence is contiguous text
    assert torch.equal(ep.inputs[..., 1:] - ep.inputs[..., :-1], torch.ones_like(ep.inputs[..., 1:]))
    assert int(ep.labels.max()) < n and 0 <= ep.offset < seq_len


def test_sequential_rows_continue_across_batches():
    g = torch.Generator().manual_seed(1)
    ep = sequential_epoch(stream(1000), 4, 7, g)
    for i in range(len(ep) - 1):
        assert torch.equal(ep.inputs[i + 1, :, 0], ep.inputs[i, :, -1] + 1)
    assert int(ep.inputs[0, 0, 0]) == ep.offset


def test_sequential_matches_the_book_layout():
    # The book: Xs = corpus[offset:offset+num_tokens].reshape(batch_size, -1), then column
    # slices of num_steps.
    ids = stream(103)
    ep = sequential_epoch(ids, 3, 5, torch.Generator().manual_seed(0))
    off = ep.offset
    num_tokens = (103 - off - 1) // 3 * 3
    xs = ids[off : off + num_tokens].reshape(3, -1)
    book = [xs[:, i : i + 5] for i in range(0, xs.shape[1] // 5 * 5, 5)]
    assert len(book) == len(ep)
    for mine, theirs in zip(ep.inputs, book):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("random_iter", [False, True])
def test_every_offset_occurs(random_iter):
    g = torch.Generator().manual_seed(0)
    seen = {make_epoch(stream(500), 4, 7, g, random_iter).offset for _ in range(300)}
    assert seen == set(range(7))


def test_random_sampling_never_repeats_a_subsequence():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        ep = random_epoch(stream(2000), 5, 9, g)
        starts = ep.inputs[..., 0].flatten().tolist()
        assert len(starts) == len(set(starts))
        assert all((s - ep.offset) % 9 == 0 for s in starts)  # non-overlapping grid


def test_seeded_epochs_repeat():
    a = make_epoch(stream(900), 4, 6, torch.Generator().manual_seed(5), True)
    b = make_epoch(stream(900), 4, 6, torch.Generator().manual_seed(5), True)
    assert torch.equal(a.inputs, b.inputs)


def test_too_short_corpus_names_the_minimum():
    with pytest.raises(CorpusError, match="at least 36"):
        sequential_epoch(stream(30), 5, 6, torch.Generator())

"""Vocabulary: tokens <-> integer ids, ordered by frequency as in the book."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

UNK = "<unk>"


class Vocab:
    """Maps tokens to ids. Id 0 is ``<unk>``, then reserved tokens, then tokens by
    decreasing frequency (ties keep first-occurrence order, as the book's sort does)."""

    def __init__(
        self,
        tokens: Iterable[str] = (),
        min_freq: int = 0,
        reserved_tokens: Sequence[str] = (),
        token_type: str = "char",
    ) -> None:
        counts = collections.Counter(tokens)
        self.token_freqs = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        self.token_type = token_type
        self.idx_to_token: list[str] = [UNK, *[t for t in reserved_tokens if t != UNK]]
        for token, freq in self.token_freqs:
            if freq < min_freq:
                break
            if token not in self.idx_to_token:
                self.idx_to_token.append(token)
        self._rebuild_index()

    def _rebuild_index(self) -> None:
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token: str) -> bool:
        return token in self.token_to_idx

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocab)
            and self.idx_to_token == other.idx_to_token
            and self.token_type == other.token_type
        )

    @property
    def unk(self) -> int:
        return 0

    def index(self, token: str) -> int:
        """The id of ``token``, or the ``<unk>`` id when it is not in the vocabulary."""
        return self.token_to_idx.get(token, self.unk)

    def tokenize(self, text: str) -> list[str]:
        """Split raw text into this vocabulary's kind of token."""
        return text.split() if self.token_type == "word" else list(text)

    def encode(self, text: str | Sequence[str]) -> list[int]:
        tokens = self.tokenize(text) if isinstance(text, str) else text
        return [self.index(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        sep = " " if self.token_type == "word" else ""
        return sep.join(self.idx_to_token[int(i)] for i in ids)

    def unknown(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` that are not in the vocabulary."""
        return sorted({t for t in self.tokenize(text) if t not in self.token_to_idx})

    def to_dict(self) -> dict[str, object]:
        return {"token_type": self.token_type, "idx_to_token": list(self.idx_to_token)}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Vocab:
        tokens = raw.get("idx_to_token")
        token_type = raw.get("token_type", "char")
        if (
            not isinstance(tokens, list)
            or not tokens
            or tokens[0] != UNK
            or not all(isinstance(t, str) for t in tokens)
            or len(set(tokens)) != len(tokens)
            or token_type not in ("char", "word")
        ):
            raise ValueError("not an rnnlab vocabulary")
        vocab = cls(token_type=str(token_type))
        vocab.idx_to_token = list(tokens)
        vocab._rebuild_index()
        return vocab

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

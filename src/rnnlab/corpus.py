"""Corpora: the bundled Time Machine, registered downloads, and any local text file."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .atomic import atomic_write
from .errors import CorpusError


@dataclass(frozen=True)
class CorpusSource:
    filename: str
    sha1: str
    url: str | None = None  # None: shipped inside the package
    preprocess: str = "raw"  # what "auto" means for this corpus
    max_tokens: int | None = None  # the default truncation (None keeps all)


# The Time Machine is the book's corpus: it ships with the package and defaults to the book's
# preprocessing and first 10000 tokens. Everything else downloads once into the cache.
CORPORA: dict[str, CorpusSource] = {
    "timemachine": CorpusSource(
        "timemachine.txt",
        "090b5e7e70c295757f55df93cb0a180b9691891a",
        url=None,
        preprocess="book",
        max_tokens=10000,
    ),
    "tinyshakespeare": CorpusSource(
        "tinyshakespeare.txt",
        "04486597058d11dcc2c556b1d0433891eb639d2e",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    ),
}


@dataclass(frozen=True)
class Corpus:
    """A tokenized text. ``tokens`` is the whole stream, before any ``max_tokens`` cut."""

    name: str
    sha1: str
    tokens: list[str]
    token_type: str
    preprocess: str
    default_max_tokens: int | None


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def cache_dir() -> Path:
    """``$RNNLAB_CACHE``, else ``$XDG_CACHE_HOME/rnnlab``, else ``~/.cache/rnnlab``."""
    if os.environ.get("RNNLAB_CACHE"):
        return Path(os.environ["RNNLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab"


def download(url: str, sha1: str, dest: Path, timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a copy with the right sha1 is already there.

    The bytes go to a temporary file beside ``dest`` and are renamed into place only after
    the checksum matches, so an interrupted download never leaves a corrupt corpus behind.
    """
    if dest.is_file() and sha1_of(dest.read_bytes()) == sha1:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except OSError as exc:
        raise CorpusError(
            f"could not download {url} ({exc}); put the file at {dest} or pass --text PATH"
        ) from None
    if sha1_of(data) != sha1:
        raise CorpusError(f"{url} has sha1 {sha1_of(data)}, expected {sha1}; nothing was saved")
    atomic_write(dest, data)
    return dest


def corpus_bytes(name: str) -> bytes:
    """The verified bytes of a registered corpus, downloading it if needed."""
    if name not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    source = CORPORA[name]
    if source.url is None:
        data = resources.files("rnnlab").joinpath("data", source.filename).read_bytes()
    else:
        data = download(source.url, source.sha1, cache_dir() / source.filename).read_bytes()
    if sha1_of(data) != source.sha1:
        raise CorpusError(f"corpus {name!r} is corrupt (sha1 mismatch); reinstall rnnlab")
    return data


def read_text_file(path: str | Path, encoding: str = "utf-8") -> bytes:
    """The bytes of a user's text file, refusing what cannot be a corpus."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"text file {p} does not exist; check the --text path")
    if p.is_dir():
        raise CorpusError(f"{p} is a directory; pass a text file to --text")
    data = p.read_bytes()
    if not data.strip():
        raise CorpusError(f"text file {p} is empty; pass a file with some text in it")
    if b"\x00" in data[:65536] and not encoding.lower().startswith("utf-16"):
        raise CorpusError(f"{p} looks like a binary file, not text; pass a text file")
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{p} is not valid {encoding} (byte {exc.start}); pass --encoding, e.g. latin-1"
        ) from None
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r}; pass e.g. --encoding utf-8") from None
    return data


def preprocess_lines(text: str, mode: str) -> list[str]:
    """``book``: per line, runs of non-letters become one space, stripped, lower-cased
    (the book's ``read_time_machine``). ``raw``: the text as it is, one piece."""
    if mode == "book":
        return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]
    return [text]


def tokenize(lines: list[str], token_type: str) -> list[str]:
    """Char tokens concatenate lines without a separator, exactly as the book's corpus does."""
    if token_type == "word":
        return [word for line in lines for word in line.split()]
    return [ch for line in lines for ch in line]


def preprocess_mode(name: str, text: str | Path | None, preprocess: str) -> str:
    """What ``preprocess`` means for a corpus: ``auto`` is the corpus's own default (the
    book's for the Time Machine, ``raw`` for any text file)."""
    if preprocess != "auto":
        return preprocess
    if text is None and name in CORPORA:
        return CORPORA[name].preprocess
    return "raw"


def load_corpus(
    name: str = "timemachine",
    text: str | Path | None = None,
    preprocess: str = "auto",
    token_type: str = "char",
    encoding: str = "utf-8",
) -> Corpus:
    """Read, preprocess and tokenize a corpus: a text file when ``text`` is set, else ``name``."""
    if text is not None:
        data = read_text_file(text, encoding)
        label, default_pre, default_max = Path(text).stem, "raw", None
        decoded = data.decode(encoding)
    else:
        data = corpus_bytes(name)
        source = CORPORA[name]
        label, default_pre, default_max = name, source.preprocess, source.max_tokens
        decoded = data.decode("utf-8")
    mode = default_pre if preprocess == "auto" else preprocess
    tokens = tokenize(preprocess_lines(decoded, mode), token_type)
    if not tokens:
        raise CorpusError(f"{label} has no tokens after {mode} preprocessing; try --preprocess raw")
    return Corpus(label, sha1_of(data), tokens, token_type, mode, default_max)

import hashlib
import http.server
import threading

import pytest

from rnnlab import corpus as corpus_mod
from rnnlab.corpus import CorpusSource, download, load_corpus, preprocess_lines
from rnnlab.errors import CorpusError


def test_bundled_timemachine_is_verified_and_book_preprocessed():
    c = load_corpus("timemachine")
    assert c.sha1 == "090b5e7e70c295757f55df93cb0a180b9691891a"
    assert c.preprocess == "book" and c.default_max_tokens == 10000
    assert "".join(c.tokens[:20]) == "the time machine by "
    assert set(c.tokens) <= set("abcdefghijklmnopqrstuvwxyz ")
    assert len(c.tokens) == 170580  # the book's len(corpus) for char tokens


def test_book_preprocessing_line_by_line():
    assert preprocess_lines("Hello,  World!!\n--x--\n", "book") == ["hello world", "x"]


def test_raw_text_keeps_every_character(tiny_text_file):
    tiny_text_file.write_text("Ab,\nc d\n", encoding="utf-8")
    c = load_corpus(text=tiny_text_file)
    assert c.tokens == list("Ab,\nc d\n") and c.preprocess == "raw"
    assert c.default_max_tokens is None


def test_word_tokens(tiny_text_file):
    c = load_corpus(text=tiny_text_file, token_type="word", preprocess="book")
    assert c.tokens[:3] == ["the", "time", "traveller"]


@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist"), (b"", "is empty"), (b"\xff\xfe\xfa abc", "--encoding"),
     (b"abc\x00\x01\x02", "binary")],
)
def test_bad_text_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_corpus(text=path)


def test_directory_is_refused(tmp_path):
    with pytest.raises(CorpusError, match="directory"):
        load_corpus(text=tmp_path)


def test_other_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    assert "é" in load_corpus(text=path, encoding="latin-1").tokens


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_registered_corpus_downloads_once_into_cache(http_server, tmp_path, monkeypatch):
    root, base, hits = http_server
    payload = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20
    (root / "input.txt").write_bytes(payload)
    sha1 = hashlib.sha1(payload).hexdigest()
    monkeypatch.setitem(
        corpus_mod.CORPORA, "mini", CorpusSource("mini.txt", sha1, url=f"{base}/input.txt")
    )
    monkeypatch.delenv("RNNLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    c = load_corpus("mini")
    assert "".join(c.tokens) == payload.decode()
    cached = tmp_path / "xdg" / "rnnlab" / "mini.txt"
    assert cached.read_bytes() == payload
    load_corpus("mini")
    assert len(hits) == 1  # the second load used the cache
    assert [p.name for p in cached.parent.iterdir()] == ["mini.txt"]  # no temporary left


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "c"))
    assert corpus_mod.cache_dir() == tmp_path / "c"


def test_download_with_wrong_sha1_saves_nothing(http_server, tmp_path):
    root, base, _ = http_server
    (root / "f.txt").write_bytes(b"tampered")
    dest = tmp_path / "cache" / "f.txt"
    with pytest.raises(CorpusError, match="sha1"):
        download(f"{base}/f.txt", "0" * 40, dest)
    assert not dest.parent.exists() or not any(dest.parent.iterdir())


def test_unreachable_download_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="--text"):
        download("http://127.0.0.1:9/nothing.txt", "0" * 40, tmp_path / "x.txt", timeout=2)


def test_unknown_corpus():
    with pytest.raises(CorpusError, match="timemachine"):
        load_corpus("nope")

"""Downloads, without the network: a local HTTP server on 127.0.0.1 or a fake opener."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from deepmf import readers
from deepmf.errors import DataError
from deepmf.readers.download import ensure_release, fetch, safe_extract

U_DATA = "1\t10\t5\t881250949\n2\t10\t3\t891717742\n2\t20\t4\t891717743\n"
U_ITEM = "10|Toy Story (1995)|01-Jan-1995||url|0|1\n20|Heat (1995)|01-Jan-1995||url|1|0\n"
U_GENRE = "unknown|0\nAction|1\n"


def make_zip(path: Path, files: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return hashlib.md5(path.read_bytes()).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty cache dir and no DEEPMF_DATA_DIR, so the download step is reached."""
    monkeypatch.delenv("DEEPMF_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "deepmf"


def point_at(monkeypatch, url: str, md5: str | None) -> None:
    entry = replace(readers.MOVIELENS["ml-100k"], url=url, md5=md5)
    monkeypatch.setitem(readers.MOVIELENS, "ml-100k", entry)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_extract_and_read(served, env, monkeypatch, tmp_path):
    root, base = served
    md5 = make_zip(root / "ml-100k.zip", {"ml-100k/u.data": U_DATA, "ml-100k/u.item": U_ITEM,
                                          "ml-100k/u.genre": U_GENRE})
    point_at(monkeypatch, f"{base}/ml-100k.zip", md5)
    data = readers.load_dataset("ml-100k", tmp_path / "nowhere")
    assert (data.n_users, data.n_items, len(data.interactions)) == (2, 2, 3)
    assert data.item_info["title"].tolist() == ["Toy Story (1995)", "Heat (1995)"]
    assert data.item_info["genres"].tolist() == ["Action", "unknown"]
    assert data.source == str(env / "ml-100k")
    assert leftovers(env) == ["ml-100k", "u.data", "u.genre", "u.item"]
    # Found in the cache the second time: no server needed.
    point_at(monkeypatch, "http://127.0.0.1:9/unused.zip", md5)
    assert len(readers.load_dataset("ml-100k").interactions) == 3


def test_checksum_mismatch_leaves_nothing(served, env, monkeypatch):
    root, base = served
    make_zip(root / "ml-100k.zip", {"ml-100k/u.data": U_DATA})
    url = f"{base}/ml-100k.zip"
    point_at(monkeypatch, url, "0" * 32)
    with pytest.raises(DataError) as err:
        readers.load_dataset("ml-100k")
    message = str(err.value)
    assert message.startswith(f"checksum mismatch for {url}: expected {'0' * 32}, got ")
    assert "\n" not in message
    assert leftovers(env) == []


def test_unreachable_url(env, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    point_at(monkeypatch, url, "0" * 32)
    with pytest.raises(DataError) as err:
        readers.load_dataset("ml-100k")
    message = str(err.value)
    assert message.startswith(f"could not download {url}: ")
    assert "offline? put the files in one of:" in message and str(env) in message
    assert "\n" not in message and leftovers(env) == []


def test_http_error(served, env, monkeypatch):
    _, base = served
    point_at(monkeypatch, f"{base}/missing.zip", "0" * 32)
    with pytest.raises(DataError, match="could not download .*missing.zip: HTTP 404"):
        readers.load_dataset("ml-100k")
    assert leftovers(env) == []


def test_unknown_checksum_refuses(env, monkeypatch):
    point_at(monkeypatch, "http://127.0.0.1:9/ml-100k.zip", None)
    with pytest.raises(DataError, match="no published checksum"):
        readers.load_dataset("ml-100k")


def test_download_off(env, monkeypatch):
    with pytest.raises(DataError, match="downloading is off"):
        readers.load_dataset("ml-100k", download=False)


class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_fetch_with_fake_opener(tmp_path):
    payload = b"x" * 200_000
    calls = []

    def opener(url, timeout=None):
        calls.append(url)
        return FakeResponse(payload)

    dest = fetch("https://example.invalid/a.zip", tmp_path / "sub" / "a.zip",
                 hashlib.md5(payload).hexdigest(), opener=opener, progress=True)
    assert dest.read_bytes() == payload and calls == ["https://example.invalid/a.zip"]
    assert leftovers(tmp_path / "sub") == ["a.zip"]


def test_zip_path_traversal_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    make_zip(archive, {"ml-100k/u.data": U_DATA, "../outside.txt": "gotcha"})
    with pytest.raises(DataError, match="unsafe path"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_zip_without_ratings_file(served, tmp_path, monkeypatch):
    root, base = served
    md5 = make_zip(root / "ml-100k.zip", {"ml-100k/README": "no data"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="zip has no ml-100k/u.data"):
        ensure_release(f"{base}/ml-100k.zip", md5, cache, "ml-100k", "u.data", progress=False)
    assert leftovers(cache) == []


def test_table_has_published_checksums():
    assert readers.MOVIELENS["ml-100k"].md5 == "0e33842e24a9c977be4e0107933c0723"
    assert readers.MOVIELENS["ml-1m"].md5 == "c4d9eecfca2ab87c1945afe126590906"
    for entry in readers.MOVIELENS.values():
        assert entry.url.startswith("https://files.grouplens.org/datasets/movielens/")

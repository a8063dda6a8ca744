"""Downloads against a local http.server on 127.0.0.1 only: resume, servers ignoring Range, mirrors, checks."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from NeuralNetworks.data.download import download_file, download_mnist, download_quickdraw, quickdraw_url
from NeuralNetworks.data.errors import DownloadError
from NeuralNetworks.data.mnist import load_mnist
from NeuralNetworks.data.quickdraw import load_quickdraw

BODY = bytes(range(256)) * 40  # 10 KiB
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (behaviour, body)`` and logs ``(path, Range header)`` of each request.

    Behaviours: "range" honours Range, "plain" ignores it, "forbidden" answers 403, "cut" announces the whole
    body but drops the connection halfway.
    """

    def do_GET(self) -> None:
        self.server.log.append((self.path, self.headers.get("Range")))
        behaviour, body = self.server.routes.get(self.path, ("missing", b""))
        if behaviour in ("missing", "forbidden"):
            self.send_error(404 if behaviour == "missing" else 403)
            return
        requested = self.headers.get("Range")
        start = int(requested.removeprefix("bytes=").rstrip("-")) if requested and behaviour == "range" else 0
        if start >= len(body) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:len(body) // 2] if behaviour == "cut" else body[start:])

    def log_message(self, *args: object) -> None:
        pass


class LocalServer:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.routes, self.httpd.log = {}, []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, behaviour: str, body: bytes = BODY) -> str:
        self.httpd.routes[path] = (behaviour, body)
        return self.url + path

    @property
    def log(self) -> list[tuple[str, str | None]]:
        return self.httpd.log


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    thread = threading.Thread(target=local.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield local
    local.httpd.shutdown()
    local.httpd.server_close()


def test_plain_download(server, tmp_path):
    target = download_file(server.serve("/file.bin", "plain"), tmp_path / "sub" / "file.bin", sha256=BODY_SHA256,
                           progress=False)
    assert target.read_bytes() == BODY and not (tmp_path / "sub" / "file.bin.part").exists()


def test_resumes_part_with_range(server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(BODY[:1000])
    target = download_file(server.serve("/file.bin", "range"), tmp_path / "file.bin", sha256=BODY_SHA256,
                           progress=False)
    assert target.read_bytes() == BODY
    assert server.log == [("/file.bin", "bytes=1000-")]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(b"stale bytes")
    target = download_file(server.serve("/file.bin", "plain"), tmp_path / "file.bin", sha256=BODY_SHA256,
                           progress=False)
    assert target.read_bytes() == BODY and server.log == [("/file.bin", "bytes=11-")]


def test_complete_part_answered_416_is_kept(server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(BODY)
    target = download_file(server.serve("/file.bin", "range"), tmp_path / "file.bin", sha256=BODY_SHA256,
                           progress=False)
    assert target.read_bytes() == BODY and len(server.log) == 1


def test_resumed_part_with_wrong_content_is_downloaded_again(server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(b"\xff" * 500)  # right length prefix, wrong bytes
    target = download_file(server.serve("/file.bin", "range"), tmp_path / "file.bin", sha256=BODY_SHA256,
                           progress=False)
    assert target.read_bytes() == BODY
    assert server.log == [("/file.bin", "bytes=500-"), ("/file.bin", None)]


def test_forbidden_mirror_then_good_one(server, tmp_path):
    urls = [server.serve("/a/file.bin", "forbidden"), server.serve("/b/file.bin", "plain")]
    assert download_file(urls, tmp_path / "file.bin", sha256=BODY_SHA256, progress=False).read_bytes() == BODY
    assert [path for path, _ in server.log] == ["/a/file.bin", "/b/file.bin"]


def test_interrupted_transfer_is_resumed_by_the_next_mirror(server, tmp_path):
    urls = [server.serve("/a/file.bin", "cut"), server.serve("/b/file.bin", "range")]
    assert download_file(urls, tmp_path / "file.bin", sha256=BODY_SHA256, progress=False).read_bytes() == BODY
    assert server.log == [("/a/file.bin", None), ("/b/file.bin", f"bytes={len(BODY) // 2}-")]


def test_bad_checksum_falls_back_then_fails_with_every_reason(server, tmp_path):
    bad = server.serve("/bad/file.bin", "plain", BODY[::-1])
    good = server.serve("/good/file.bin", "plain")
    assert download_file([bad, good], tmp_path / "ok.bin", sha256=BODY_SHA256, progress=False).read_bytes() == BODY
    forbidden = server.serve("/no/file.bin", "forbidden")
    with pytest.raises(DownloadError) as caught:
        download_file([bad, forbidden], tmp_path / "file.bin", sha256=BODY_SHA256, progress=False)
    message = str(caught.value)
    assert f"{bad}: SHA-256 {hashlib.sha256(BODY[::-1]).hexdigest()}, expected {BODY_SHA256}" in message
    assert f"{forbidden}: HTTP Error 403" in message
    assert not (tmp_path / "file.bin").exists() and not (tmp_path / "file.bin.part").exists()


def test_existing_valid_file_is_not_downloaded_but_a_corrupt_one_is(server, tmp_path):
    url = server.serve("/file.bin", "plain")
    (tmp_path / "file.bin").write_bytes(BODY)
    download_file(url, tmp_path / "file.bin", sha256=BODY_SHA256, progress=False)
    assert server.log == []
    (tmp_path / "file.bin").write_bytes(b"corrupt")
    assert download_file(url, tmp_path / "file.bin", sha256=BODY_SHA256, progress=False).read_bytes() == BODY


def test_unreachable_host_is_reported(tmp_path):
    server = LocalServer()
    url = server.url + "/file.bin"
    server.httpd.server_close()  # nothing listens on that port any more
    with pytest.raises(DownloadError, match=r"file\.bin: download failed from every mirror: http://127\.0\.0\.1"):
        download_file(url, tmp_path / "file.bin", progress=False, timeout=5)


def test_quickdraw_url_encodes_spaces():
    assert quickdraw_url("The Eiffel Tower", "https://host/x/") == "https://host/x/The%20Eiffel%20Tower.npy"


def npy_bytes(tmp_path: Path, array: np.ndarray) -> bytes:
    np.save(tmp_path / "scratch.npy", array)
    return (tmp_path / "scratch.npy").read_bytes()


def test_download_quickdraw_checks_the_npy_header(server, tmp_path):
    good = npy_bytes(tmp_path, np.full((5, 784), 3, np.uint8))
    server.serve("/bitmaps/The%20Eiffel%20Tower.npy", "range", good)
    server.serve("/bitmaps/cat.npy", "plain", npy_bytes(tmp_path, np.zeros((5, 10), np.uint8)))
    server.serve("/bitmaps/dog.npy", "plain", good[:-784])
    out = tmp_path / "doodles"
    paths = download_quickdraw(["The Eiffel Tower"], out, base_urls=[server.url + "/bitmaps/"], progress=False)
    assert paths == [out / "The Eiffel Tower.npy"]
    assert load_quickdraw(out).class_names == ["The Eiffel Tower"]
    with pytest.raises(DownloadError, match=r"/bitmaps/cat\.npy: array is uint8 of shape \(5, 10\), expected"):
        download_quickdraw("cat", out, base_urls=[server.url + "/bitmaps/"], progress=False)
    with pytest.raises(DownloadError, match=r"/bitmaps/dog\.npy: not a readable \.npy file"):
        download_quickdraw("dog", out, base_urls=[server.url + "/bitmaps/"], progress=False)
    assert sorted(path.name for path in out.iterdir()) == ["The Eiffel Tower.npy"]


def test_download_mnist_from_local_mirrors_with_real_checksums(server, tmp_path, mnist_dir):
    for path in mnist_dir.glob("*.gz"):
        server.serve(f"/good/{path.name}", "range", path.read_bytes())
        server.serve(f"/broken/{path.name}", "plain", path.read_bytes()[:-100])
    out = tmp_path / "mnist"
    paths = download_mnist(out, mirrors=[server.url + "/broken", server.url + "/good/"], progress=False)
    assert sorted(path.name for path in paths) == sorted(path.name for path in mnist_dir.glob("*.gz"))
    assert load_mnist(out).class_counts("test").sum() == 10_000
    with pytest.raises(DownloadError, match="gzip"):
        download_mnist(tmp_path / "again", mirrors=[server.url + "/broken/"], progress=False)


def test_download_by_name_lands_where_load_looks(server, tmp_path, monkeypatch):
    from NeuralNetworks import data
    from NeuralNetworks.data.catalog import download

    server.serve("/bitmaps/cat.npy", "range", npy_bytes(tmp_path, np.full((5, 784), 3, np.uint8)))
    monkeypatch.chdir(tmp_path)
    paths = download("doodle", classes=["cat"], mirrors=[server.url + "/bitmaps/"], progress=False)
    assert paths == [Path("datasets/doodle/cat.npy")]
    assert data.load("doodle").class_names == ["cat"]


@pytest.mark.parametrize("name, options, message", [
    ("shapes", {}, "nothing to download"),
    ("doodle", {}, "needs class names"),
    ("fashion-mnist", {}, "not supported"),
    ("cifar", {}, "Unknown dataset 'cifar'"),
])
def test_download_by_name_refusals(name, options, message):
    from NeuralNetworks.data.catalog import download

    with pytest.raises(ValueError, match=message):
        download(name, **options)

"""Serve an exported site on 127.0.0.1 and drive it in headless Chromium (``web/tools/browser.mjs``).

Shared by the browser tests (``tests/web``) and ``python -m benchmarks.web``.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, Sequence

from runtime.errors import UserError

from .common import ROOT

WEB_DIR = os.path.join(ROOT, "web")
DRIVER = os.path.join(WEB_DIR, "tools", "browser.mjs")
CHROMIUM = "/usr/bin/chromium"
TEST_DIR = "_test"  # site/_test/texts.json: the texts the driver scores


class BrowserUnavailable(UserError):
    """Node, the npm packages or Chromium are missing."""


def check_tools() -> str:
    """The node executable; one clear error naming what to install if anything is missing."""
    node = shutil.which("node")
    if node is None:
        raise BrowserUnavailable("node is not installed (apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(WEB_DIR, "node_modules", "playwright-core")):
        raise BrowserUnavailable(f"playwright-core is not installed: run 'npm ci' in {WEB_DIR}")
    if not os.path.exists(CHROMIUM):
        raise BrowserUnavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    return node


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript", ".js": "text/javascript"}

    def end_headers(self) -> None:
        # Cross-origin isolation: performance.now() at 5 us instead of 100 us resolution (the
        # latency rows); every file is same-origin, so nothing else changes.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet: the driver records every request
        pass


@contextlib.contextmanager
def serve_site(site: str) -> Iterator[str]:
    """``http://127.0.0.1:PORT/`` serving ``site`` until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_texts(site: str, texts: Sequence[str]) -> None:
    """The texts the driver scores, as JSON (lone surrogates stay \\udxxx escapes)."""
    os.makedirs(os.path.join(site, TEST_DIR), exist_ok=True)
    with open(os.path.join(site, TEST_DIR, "texts.json"), "w", encoding="ascii") as f:
        json.dump(list(texts), f)


def run_driver(mode: str, site: str, texts: Sequence[str], out_json: str, extra: str | None = None,
               timeout: float = 600) -> dict:
    """Run ``browser.mjs MODE`` on ``texts`` against a copy of ``site`` served here; its JSON result.

    The copy gets the texts in ``_test/``; ``site`` itself is never changed."""
    node = check_tools()
    with tempfile.TemporaryDirectory(prefix="reviewkit-site-") as tmp:
        served = os.path.join(tmp, "web")
        shutil.copytree(site, served)
        write_texts(served, texts)
        with serve_site(served) as url:
            cmd = [node, DRIVER, mode, url, out_json] + ([extra] if extra is not None else [])
            proc = subprocess.run(cmd, cwd=WEB_DIR, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    with open(out_json, encoding="utf-8") as f:
        return json.load(f)

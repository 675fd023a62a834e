"""``python -m export web``: the bundle as a static web site in ``OUT/web/`` (see web/README.md).

The site is self-contained and flat (plain file names): the demo (``index.html``), the JS
package (``web/src``), ``model.onnx`` + ``vocab.txt`` + the two ``.tflite`` files for the MediaPipe
conformance page, onnxruntime-web's and MediaPipe's ``.mjs``/``.js``/``.wasm`` files (from
``web/node_modules`` after ``npm ci``), a ``.gz`` copy of every large file, and a ``manifest.json``:
the bundle's, with ``files`` cut to the model files the site holds and a ``"web"`` section listing
every other file (size, sha256, gzip size). The bundle's own manifest gets the same ``"web"``
summary, without the per-file list.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import tempfile

from runtime.bundle import MANIFEST, Bundle
from runtime.files import atomic_write_text, sha256_file

from .errors import ExportError

logger = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB_DIR = os.path.join(ROOT, "web")
DEFAULT_NODE_MODULES = os.path.join(WEB_DIR, "node_modules")
SITE_DIR = "web"  # OUT/web

PACKAGE_FILES = ("classifier.js", "manifest.js", "tokenizer.js", "records.js", "index.js")  # web/src
PAGE_FILES = ("index.html", "served.js", "app.js", "worker.js", "style.css", "conformance.html",  # web/site
              "conformance.js")
MODEL_FILES = ("model.onnx", "vocab.txt", "labels.txt", "model.tflite", "model.int8.tflite")  # from the bundle
# npm package -> the files of its dist folder the site loads (wasm-only onnxruntime build, SIMD MediaPipe)
NPM_FILES = {
    "onnxruntime-web": ("dist", ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")),
    "@mediapipe/tasks-text": ("", ("text_bundle.mjs", "wasm/text_wasm_internal.js", "wasm/text_wasm_internal.wasm")),
}
# What the demo page fetches before its first prediction (the rest is the conformance page's).
DEMO_FILES = ("index.html", "served.js", "style.css", "app.js", "worker.js", "classifier.js", "manifest.js",
              "tokenizer.js",
              "records.js",
              MANIFEST, "vocab.txt", "labels.txt", "model.onnx", "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs",
              "ort-wasm-simd-threaded.wasm")
GZIP_MIN_BYTES = 16 * 1024  # smaller files are not worth a .gz copy


def npm_sources(node_modules: str) -> dict[str, str]:
    """Site file name -> its path under ``node_modules``; one clear error if any is missing."""
    sources, missing = {}, []
    for package, (folder, names) in NPM_FILES.items():
        for name in names:
            path = os.path.join(node_modules, package, folder, name)
            if os.path.isfile(path):
                sources[os.path.basename(name)] = path
            else:
                missing.append(path)
    if missing:
        raise ExportError(f"the browser runtime is not installed ({missing[0]} is missing): run 'npm ci' in "
                          f"{WEB_DIR} (Node.js 20+), or pass --node-modules DIR")
    return sources


def npm_versions(node_modules: str) -> dict[str, str]:
    versions = {}
    for package in NPM_FILES:
        with open(os.path.join(node_modules, package, "package.json"), encoding="utf-8") as f:
            versions[package] = json.load(f)["version"]
    return versions


def _gzip_copy(path: str) -> int:
    """Write ``path``.gz (best compression, no timestamp: reproducible); its size."""
    with open(path, "rb") as f:
        data = gzip.compress(f.read(), compresslevel=9, mtime=0)
    with open(path + ".gz", "wb") as f:
        f.write(data)
    return len(data)


def _web_section(site: str, versions: dict[str, str], model_files: dict) -> dict:
    """Sizes and hashes of every site file but the manifest and the .gz copies."""
    files = {}
    for name in sorted(os.listdir(site)):
        if name.endswith(".gz") or name == MANIFEST:
            continue
        path = os.path.join(site, name)
        entry = {"size": os.path.getsize(path), "sha256": sha256_file(path)}
        if os.path.isfile(path + ".gz"):
            entry["gzip_size"] = os.path.getsize(path + ".gz")
        files[name] = entry
    demo = [files[n] for n in DEMO_FILES if n in files]
    return {
        "dir": SITE_DIR,
        "npm": versions,
        "model": "model.onnx",
        "files": {n: e for n, e in files.items() if n not in model_files},
        "demo_bytes": sum(e["size"] for e in demo),  # + manifest.json
        "demo_gzip_bytes": sum(e.get("gzip_size", e["size"]) for e in demo),
        "total_bytes": sum(e["size"] for e in files.values()),
        "total_gzip_bytes": sum(e.get("gzip_size", e["size"]) for e in files.values()),
    }


def build_site(bundle_dir: str, site: str, node_modules: str = DEFAULT_NODE_MODULES) -> dict:
    """Write the site into the empty directory ``site``; returns its manifest."""
    bundle = Bundle.load(bundle_dir)  # sha256 of every file: a tampered bundle is refused here
    sources = npm_sources(node_modules)
    for name in PACKAGE_FILES:
        sources[name] = os.path.join(WEB_DIR, "src", name)
    for name in PAGE_FILES:
        sources[name] = os.path.join(WEB_DIR, "site", name)
    model_files = {n: bundle.manifest["files"][n] for n in MODEL_FILES if n in bundle.manifest["files"]}
    if "model.onnx" not in model_files:
        raise ExportError(f"{bundle_dir}: no model.onnx in the bundle (run 'python -m export onnx' and 'verify')")
    for name in model_files:
        sources[name] = bundle.path(name)
    for name, src in sources.items():
        shutil.copyfile(src, os.path.join(site, name))
        if os.path.getsize(src) >= GZIP_MIN_BYTES:
            _gzip_copy(os.path.join(site, name))
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files", "web")}
    manifest["files"] = model_files
    manifest["web"] = _web_section(site, npm_versions(node_modules), model_files)
    atomic_write_text(os.path.join(site, MANIFEST), json.dumps(manifest, indent=2) + "\n")
    return manifest


def _replace_dir(src: str, dest: str) -> None:
    """Move the finished ``src`` onto ``dest``; an old ``dest`` is removed only after."""
    old = None
    if os.path.exists(dest):
        old = tempfile.mkdtemp(prefix=".web.old.", dir=os.path.dirname(dest))
        os.replace(dest, os.path.join(old, "web"))
    os.replace(src, dest)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export_web(out: str, node_modules: str = DEFAULT_NODE_MODULES) -> dict:
    """Build ``out/web/`` from the verified bundle ``out``; record the summary in its manifest."""
    if not os.path.isfile(os.path.join(out, MANIFEST)):
        raise ExportError(f"{out}: no {MANIFEST} (run 'python -m export verify' first)")
    dest = os.path.join(out, SITE_DIR)
    tmp = tempfile.mkdtemp(prefix=".web.", suffix=".tmp", dir=out)
    try:
        manifest = build_site(out, tmp, node_modules)
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    web = manifest["web"]
    summary = {k: v for k, v in web.items() if k != "files"}
    with open(os.path.join(out, MANIFEST), encoding="utf-8") as f:
        bundle_manifest = json.load(f)
    bundle_manifest["web"] = {**bundle_manifest.get("web", {}), **summary}
    atomic_write_text(os.path.join(out, MANIFEST), json.dumps(bundle_manifest, indent=2) + "\n")
    logger.info(f"wrote {dest}/: the demo loads {web['demo_bytes'] / 1e6:.1f} MB "
                f"({web['demo_gzip_bytes'] / 1e6:.1f} MB gzipped); "
                f"try: cd {dest} && python -m http.server --bind 127.0.0.1")
    return manifest


def step_web(cfg, required: bool = True) -> None:
    """The ``web`` step of ``python -m export`` (``cfg``: an ExportConfig). In ``export all``
    (``required=False``) a missing ``npm ci`` skips the site with a note instead of failing."""
    node_modules = getattr(cfg, "node_modules", None) or DEFAULT_NODE_MODULES
    if not required:
        try:
            npm_sources(node_modules)
        except ExportError as e:
            logger.info(f"skipping the web site: {e}")
            return
    export_web(cfg.out, node_modules)

"""``python -m export web``: the verified bundle as a flat static site in ``OUT/web/`` (web/README.md). Its
manifest.json: the bundle's, ``files`` cut to its model files, and a ``"web"`` section listing the others."""
from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
from pathlib import Path

from runtime.bundle import MANIFEST, Bundle

from .errors import ExportError
from .manifest import file_entries, write_manifest

logger = logging.getLogger(__name__)

WEB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
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
              "tokenizer.js", "records.js", MANIFEST, "vocab.txt", "labels.txt", "model.onnx", "ort.wasm.min.mjs",
              "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
GZIP_MIN_BYTES = 16 * 1024  # smaller files are not worth a .gz copy


def npm_sources(node_modules: str) -> dict[str, str]:
    """Site file name -> its path under ``node_modules``; one clear error if any is missing."""
    sources = {os.path.basename(name): os.path.join(node_modules, package, folder, name)
               for package, (folder, names) in NPM_FILES.items() for name in names}
    missing = [path for path in sources.values() if not os.path.isfile(path)]
    if missing:
        raise ExportError(f"the browser runtime is not installed ({missing[0]} is missing): run 'npm ci' in "
                          f"{WEB_DIR} (Node.js 20+), or pass --node-modules DIR")
    return sources


def _web_section(site: str, node_modules: str, model_files: dict) -> dict:
    """Sizes and hashes of every site file but the manifest and the .gz copies."""
    files = file_entries(site, [n for n in sorted(os.listdir(site)) if not n.endswith(".gz") and n != MANIFEST])
    for name, entry in files.items():
        if os.path.isfile(os.path.join(site, name + ".gz")):
            entry["gzip_size"] = os.path.getsize(os.path.join(site, name + ".gz"))
    demo = [files[n] for n in DEMO_FILES if n in files]
    return {
        "dir": SITE_DIR,
        "npm": {package: json.loads(Path(node_modules, package, "package.json").read_text(encoding="utf-8"))["version"]
                for package in NPM_FILES},
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
    sources = {**npm_sources(node_modules), **{name: os.path.join(WEB_DIR, "src", name) for name in PACKAGE_FILES},
               **{name: os.path.join(WEB_DIR, "site", name) for name in PAGE_FILES}}
    model_files = {n: bundle.manifest["files"][n] for n in MODEL_FILES if n in bundle.manifest["files"]}
    if "model.onnx" not in model_files:
        raise ExportError(f"{bundle_dir}: no model.onnx in the bundle (run 'python -m export onnx' and 'verify')")
    for name in model_files:
        sources[name] = bundle.path(name)
    for name, src in sources.items():
        data = Path(src).read_bytes()
        Path(site, name).write_bytes(data)
        if len(data) >= GZIP_MIN_BYTES:  # best compression, no timestamp: reproducible
            Path(site, name + ".gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files", "web")}
    manifest["files"] = model_files
    manifest["web"] = _web_section(site, node_modules, model_files)
    write_manifest(site, manifest)
    return manifest


def export_web(out: str, node_modules: str = DEFAULT_NODE_MODULES) -> dict:
    """Build ``out/web/`` from the verified bundle ``out``; record the summary in its manifest."""
    if not os.path.isfile(os.path.join(out, MANIFEST)):
        raise ExportError(f"{out}: no {MANIFEST} (run 'python -m export verify' first)")
    dest = os.path.join(out, SITE_DIR)
    with tempfile.TemporaryDirectory(prefix=".web.", suffix=".tmp", dir=out, ignore_cleanup_errors=True) as tmp:
        site = os.path.join(tmp, SITE_DIR)
        os.mkdir(site)
        manifest = build_site(out, site, node_modules)
        os.chmod(site, 0o755)
        if os.path.exists(dest):
            os.replace(dest, os.path.join(tmp, "old"))  # removed with tmp, once the new site is in place
        os.replace(site, dest)
    web = manifest["web"]
    bundle_manifest = json.loads(Path(out, MANIFEST).read_text(encoding="utf-8"))
    bundle_manifest["web"] = {**bundle_manifest.get("web", {}), **{k: v for k, v in web.items() if k != "files"}}
    write_manifest(out, bundle_manifest)
    logger.info(f"wrote {dest}/: the demo loads {web['demo_bytes'] / 1e6:.1f} MB "
                f"({web['demo_gzip_bytes'] / 1e6:.1f} MB gzipped); "
                f"try: cd {dest} && python -m http.server --bind 127.0.0.1")
    return manifest


def step_web(cfg, required: bool = True) -> None:
    """The ``web`` step (``cfg``: an ExportConfig); ``export all`` (not ``required``) skips it without ``npm ci``."""
    node_modules = cfg.node_modules or DEFAULT_NODE_MODULES
    if not required:
        try:
            npm_sources(node_modules)
        except ExportError as e:
            logger.info(f"skipping the web site: {e}")
            return
    export_web(cfg.out, node_modules)

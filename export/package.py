"""Copy the runtime's subset of a verified bundle elsewhere (the bundled default model), with its own
manifest listing only the copied files, so the runtime's hash check covers exactly what ships."""
from __future__ import annotations

import os
import shutil

from runtime.bundle import DEFAULT_MODELS, LABELS_FILE, MANIFEST, Bundle

from .errors import ExportError
from .manifest import write_manifest

RUNTIME_FILES = (*DEFAULT_MODELS.values(), "vocab.txt", LABELS_FILE)  # each backend's default model


def without_builder_paths(value):
    """``value`` with every absolute path reduced to its file name, and no output directory: a
    shipped manifest says nothing of the building machine's file system."""
    if isinstance(value, dict):
        return {k: without_builder_paths(v) for k, v in value.items() if k != "out"}
    if isinstance(value, list):
        return [without_builder_paths(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value)
    return value


def package_runtime_bundle(src: str, dest: str, files=RUNTIME_FILES) -> str:
    """Verify ``src`` against its manifest, then copy ``files`` and a pruned manifest to ``dest``."""
    bundle = Bundle.load(src)  # refuses a tampered or unverified source
    manifest = bundle.manifest  # ours to prune: the bundle is not used after
    if os.path.abspath(src) == os.path.abspath(dest):
        raise ExportError(f"{dest}: destination is the source bundle")
    os.makedirs(dest, exist_ok=True)
    for name in files:
        if name not in manifest["files"]:
            raise ExportError(f"{src}: the bundle has no {name} to package")
    for name in set(os.listdir(dest)) - {*files, MANIFEST}:  # a stale file from an older default must not linger
        os.unlink(os.path.join(dest, name))
    for name in files:
        shutil.copyfile(bundle.path(name), os.path.join(dest, f".{name}.tmp"))
        os.replace(os.path.join(dest, f".{name}.tmp"), os.path.join(dest, name))
    manifest["files"] = {n: manifest["files"][n] for n in files}
    results = manifest.get("verification", {}).get("results", {})
    manifest["verification"]["results"] = {n: r for n, r in results.items()
                                           if n in files or n.split(":", 1)[-1] in files}
    shipped = {k: v for k, v in manifest.items() if k not in ("web", "micro")}  # directories that do not ship
    write_manifest(dest, without_builder_paths(shipped))
    Bundle.load(dest)  # the copy must verify too
    return dest

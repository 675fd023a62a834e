"""The C tokenizer built on the host, once per session, with the bundled model's vocabulary."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from export.micro import SOURCES, vocab_sources
from runtime.tokenizer import Tokenizer, read_vocab

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VOCAB = os.path.join(ROOT, "runtime", "default_model", "vocab.txt")
WARNINGS = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror")
BUILDS = {"O2": ("-O2",), "asan": ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                   "-fno-omit-frame-pointer")}


@dataclass
class Driver:
    """tests/micro/driver.c linked with micro/tokenizer.c and a generated vocab_data.c."""
    path: str

    def ids(self, texts: list[bytes], maxlen: int, chunk: int = 0) -> np.ndarray:
        """``[len(texts), maxlen]`` int32 ids from the C tokenizer (fed ``chunk`` bytes at a time)."""
        data = b"".join(struct.pack("<I", len(t)) + t for t in texts)
        proc = subprocess.run([self.path, "ids", str(maxlen), str(chunk)], input=data, capture_output=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
        return np.frombuffer(proc.stdout, dtype="<i4").reshape(len(texts), maxlen)

    def fuzz(self, seconds: float, seed: int) -> int:
        proc = subprocess.run([self.path, "fuzz", str(seconds), str(seed)], capture_output=True, text=True,
                              timeout=60 + seconds)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return int(proc.stdout)


def python_ids(tok: Tokenizer, texts: list[bytes]) -> np.ndarray:
    """The contract: the Python tokenizer on the text as the runtime decodes bytes."""
    return tok.encode_batch([t.decode("utf-8", "replace") for t in texts])


def bundle_copy(tiny_bundle, tmp_path) -> str:
    """A copy of the tiny bundle whose manifest has a reference accuracy (1.0), as verify writes."""
    out = str(tmp_path / "bundle")
    shutil.copytree(tiny_bundle, out)
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    manifest["verification"]["reference"] = {"file": "model.keras", "accuracy": 1.0}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return out


@pytest.fixture(scope="session")
def vocab() -> dict[str, int]:
    return read_vocab(VOCAB)


@pytest.fixture(scope="session")
def c_sources(tmp_path_factory, vocab) -> str:
    """A directory with the C tokenizer and the bundled vocabulary as vocab_data.h/.c."""
    src = str(tmp_path_factory.mktemp("micro_src"))
    for name in ("tokenizer.h", "tokenizer.c"):
        shutil.copyfile(os.path.join(SOURCES, name), os.path.join(src, name))
    for name, text in vocab_sources(vocab, 256).items():
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    return src


def _build(src: str, name: str, flags: tuple[str, ...]) -> Driver:
    exe = os.path.join(src, f"driver_{name}")
    cmd = ["gcc", *WARNINGS, *flags, "-I", src, os.path.join(HERE, "driver.c"), os.path.join(src, "tokenizer.c"),
           os.path.join(src, "vocab_data.c"), "-o", exe]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return Driver(exe)


@pytest.fixture(scope="session")
def driver(c_sources) -> Driver:
    """-O2 -Wall -Wextra -Werror -pedantic."""
    return _build(c_sources, "O2", BUILDS["O2"])


@pytest.fixture(scope="session")
def asan_driver(c_sources) -> Driver:
    """The same under AddressSanitizer and UndefinedBehaviorSanitizer (any finding aborts)."""
    return _build(c_sources, "asan", BUILDS["asan"])

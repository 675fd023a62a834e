"""Smoke test of ``python -m benchmarks.micro``: what it writes, never the speeds."""
from __future__ import annotations

import json
import os

from benchmarks import micro as B
from export import micro as M
from runtime.errors import run_cli
from tests.conftest import write_imdb_tar
from tests.micro.conftest import bundle_copy


def test_benchmark_row_for_a_bundle_with_micro(tiny_trained, tiny_bundle, tmp_path, capsys):
    model, tok, texts, labels = tiny_trained
    bundle = bundle_copy(tiny_bundle, tmp_path)
    M.export_micro(bundle, model, tok, tok.encode_batch(texts), texts, labels)
    data = write_imdb_tar(tmp_path / "imdb.tar.gz", n_per_split=40)
    out = tmp_path / "bench"
    assert run_cli(B.main, ["--bundle", bundle, "--data", data, "--out", str(out)]) == 0
    result = json.load(open(out / "micro.json"))
    assert result["reviews"] == 40 and 0.5 < result["accuracy"] <= 1.0
    flash = result["flash_bytes"]
    assert flash["model"] == os.path.getsize(os.path.join(bundle, "micro", "model.tflite"))
    assert flash["total"] > flash["model"] + flash["vocab"] and result["arena_bytes"] <= 8 * 1024
    assert result["c_tokenizer"]["reviews_per_s"] > 0 and result["invoke_us"]["p50"] > 0
    table = capsys.readouterr().out
    assert table.splitlines()[2].startswith("| TFLite Micro (host) | micro/model.tflite |")
    assert (out / "micro.md").read_text().startswith(table.strip())


def test_bundle_without_micro_is_one_error_line(tiny_bundle, tmp_path, capsys):
    assert run_cli(B.main, ["--bundle", tiny_bundle, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "python -m export micro" in err and err.count("\n") == 1

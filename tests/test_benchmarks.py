"""Smoke test of ``python -m benchmarks`` on the tiny bundle and a tiny IMDB archive.

It checks what the benchmark writes and the shape of its table, never the speeds.
"""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.report import COLUMNS
from tests.conftest import write_imdb_tar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = [
    ("Keras/TensorFlow (baseline)", "model.keras"),
    ("onnxruntime float", "model.onnx"),
    ("onnxruntime int8", "model.int8.onnx"),
    ("LiteRT float", "model.tflite"),
    ("LiteRT dynamic-range", "model.dynamic.tflite"),
    ("LiteRT int8", "model.int8.tflite"),
    ("MediaPipe float", "model.tflite"),
    ("MediaPipe int8", "model.int8.tflite"),
]
MEDIAPIPE_EMPTY = ["tokenizer reviews/s (best / median)", "tokenizer MB/s", "model reviews/s (best / median)"]


@pytest.fixture(scope="module")
def bench_run(tiny_bundle, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    data = write_imdb_tar(tmp / "imdb.tar.gz", n_per_split=60)
    out = tmp / "out"
    cmd = [sys.executable, "-m", "benchmarks", "--bundle", tiny_bundle, "--data", data, "--out", str(out),
           "--repeats", "1", "--latency-reviews", "10"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def table_cells(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_writes_json_markdown_and_png(bench_run):
    out, _ = bench_run
    assert sorted(os.listdir(out)) == ["bench.json", "bench.md", "bench.png"]
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((out / "bench.json").read_text())
    assert result["data"]["n_reviews"] == 60 and result["settings"]["repeats"] == 1
    assert result["command"].startswith("python -m benchmarks --bundle ")
    assert [(r["name"], r["model"]) for r in result["rows"]] == ROWS
    md = (out / "bench.md").read_text()
    for item in ("- date: ", "- machine: ", "- python ", "onnxruntime ", "- command: `python -m benchmarks"):
        assert item in md


def test_table_has_every_engine_and_column(bench_run):
    out, proc = bench_run
    printed = table_cells(proc.stdout)
    assert printed == table_cells((out / "bench.md").read_text())  # the same table in both
    header, rule, *rows = printed
    assert header == COLUMNS and set("".join(rule)) == {"-"}
    assert [tuple(row[:2]) for row in rows] == ROWS
    for row in rows:
        cells = dict(zip(COLUMNS, row))
        assert len(row) == len(COLUMNS)
        assert 0.0 <= float(cells["accuracy"]) <= 1.0
        assert float(cells["peak RSS MB"]) > 0 and float(cells["size MB"]) > 0
        for column in ("end-to-end reviews/s (best / median)", "latency p50 / p99 ms", "cold start s (best / median)"):
            best, median = (float(v.replace(",", "")) for v in cells[column].split(" / "))
            assert best > 0 and median > 0
        empty = [c for c in MEDIAPIPE_EMPTY if cells[c] == ""]
        assert empty == (MEDIAPIPE_EMPTY if row[0].startswith("MediaPipe") else [])
    keras = dict(zip(COLUMNS, rows[0]))
    assert keras["end-to-end vs Keras"] == keras["p50 vs Keras"] == "1.00x"
    assert keras["max abs diff vs Keras"] == "0.0e+00"


def test_float_engines_agree_with_keras(bench_run):
    result = json.loads((bench_run[0] / "bench.json").read_text())
    for row in result["rows"]:
        if row["model"] in ("model.onnx", "model.tflite"):  # float: the same probabilities
            assert row["max_abs_diff_vs_keras"] < 1e-4, row["name"]
        assert row["accuracy"] == pytest.approx(result["rows"][0]["accuracy"], abs=0.05)


def test_the_steady_state_table_gives_each_command_as_a_ratio_to_the_local_engine_of_its_checkout(capsys):
    from benchmarks.batch import print_steady

    results = [
        {"checkout": "/a/main", "command": "local --workers 2", "start_s": 1.0, "steady_rows_per_s": 40_000},
        {"checkout": "/a/main", "command": "spark local[2]", "start_s": 5.0, "steady_rows_per_s": 30_000},
        {"checkout": "/a/old", "command": "local --workers 2", "start_s": 1.0, "steady_rows_per_s": 20_000},
        {"checkout": "/a/old", "command": "spark local[2]", "start_s": 5.0, "steady_rows_per_s": 30_000},
        {"checkout": "/a/old", "command": "spark cluster", "exactly_once": False},  # failed: no steady figure
    ]
    print_steady(results)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["| main | local --workers 2 | 1.0 | 40,000 | 100% |",
                        "| main | spark local[2] | 5.0 | 30,000 | 75% |",
                        "| old | local --workers 2 | 1.0 | 20,000 | 100% |",
                        "| old | spark local[2] | 5.0 | 30,000 | 150% |"]


def test_the_classes_table_scores_each_bundle_and_gives_its_ratio_to_the_first(tiny_bundle, three_class_bundle,
                                                                                tmp_path):
    data = write_imdb_tar(tmp_path / "imdb.tar.gz", n_per_split=30)
    cmd = [sys.executable, "-m", "benchmarks.classes", "--bundle", tiny_bundle, "--bundle", three_class_bundle,
           "--data", data, "--limit", "40", "--repeats", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, rule, two, three = proc.stdout.strip().splitlines()
    assert header == "| bundle | classes | best run (s) | rows/s | ratio to the first |"
    assert [two.split(" | ")[1], three.split(" | ")[1]] == ["2", "3"]
    assert two.endswith(" | 100% |")


def test_the_classes_table_needs_two_bundles_and_real_ones(tiny_bundle, tmp_path):
    one = subprocess.run([sys.executable, "-m", "benchmarks.classes", "--bundle", tiny_bundle],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (one.returncode, one.stderr) == (
        2, "python -m benchmarks.classes: error: give --bundle at least twice: the ratio is to the first\n")
    bad = subprocess.run([sys.executable, "-m", "benchmarks.classes", "--bundle", tiny_bundle, "--bundle",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"Error: {tmp_path}: not a bundle (")

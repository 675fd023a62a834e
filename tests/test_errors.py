"""The error table: (command, mistake) -> (the one stderr line, exit code), for every CLI.

The same mistake gives the same line and code everywhere (runtime.errors.run_cli): bad input,
options, data or a missing extra exit 2; a failed conversion or check exits 1. Each row runs the
command's ``main`` in this process, so the table stays fast.
"""
from __future__ import annotations

import os
import shutil
import sys

import pytest

import benchmarks.__main__ as benchmarks_cli
import export.__main__ as export_cli
import runtime.batch as batch_cli
import runtime.predict as predict_cli
import trainer.__main__ as trainer_cli
from runtime.errors import DISTRIBUTION

CLIS = {"trainer": trainer_cli.main, "export": export_cli.main, "benchmarks": benchmarks_cli.main,
        "predict": predict_cli.main, "batch": batch_cli.main}
NO_DATA = "Error: IMDB data path does not exist: /nonexistent"
MISSING = "(run 'python -m export train --out {tmp}' first: it trains, or adopts an existing model with --model PATH)"
NO_SOURCE = ("Error: no IMDB data source known for this model: pass --data PATH (a folder, tar archive or URL "
             "such as https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz) or set IMDB_DATA")


def extra_line(module: str) -> str:
    return f"Error: this needs the [train] extra (no module named {module!r}): pip install '{DISTRIBUTION}[train]'"


# (cli, argv, expected last stderr line ({tmp}: a fresh directory, {model}: one holding a bare
#  model.keras + vocab.txt), exit code, blocked module or None)
TABLE = [
    # the same data mistake, every command that reads data
    ("trainer", ["--data", "/nonexistent", "--out", "{tmp}"], NO_DATA, 2, None),
    ("export", ["train", "--data", "/nonexistent", "--out", "{tmp}"], NO_DATA, 2, None),
    ("export", ["all", "--data", "/nonexistent", "--out", "{tmp}"], NO_DATA, 2, None),
    ("export", ["verify", "--data", "/nonexistent", "--out", "{model}"], NO_DATA, 2, None),
    ("benchmarks", ["--data", "/nonexistent", "--bundle", "{bundle}", "--out", "{tmp}"], NO_DATA, 2, None),
    # bad training options, trainer and export alike
    ("trainer", ["--epochs", "0", "--out", "{tmp}"], "Error: --epochs must be at least 1, got 0", 2, None),
    ("export", ["train", "--epochs", "0", "--out", "{tmp}"], "Error: --epochs must be at least 1, got 0", 2, None),
    ("trainer", ["--num-words", "4"], "Error: --num-words must be greater than 4, got 4", 2, None),
    ("trainer", ["--early-stopping", "-1"],
     "Error: --early-stopping must be 0 (off) or a patience >= 1, got -1", 2, None),
    ("export", ["all", "--maxlen", "0", "--out", "{tmp}"], "Error: --maxlen must be at least 1, got 0", 2, None),
    # options a step does not use are not offered (argparse's own usage error, exit 2)
    ("export", ["verify", "--maxlen", "128"],
     "python -m export: error: unrecognized arguments: --maxlen 128", 2, None),
    ("export", ["onnx", "--data", "x"], "python -m export: error: unrecognized arguments: --data x", 2, None),
    ("trainer", ["--epochs", "x"], "python -m trainer: error: argument --epochs: invalid int value: 'x'", 2, None),
    # a step without its inputs: the hint is true for that step
    ("export", ["onnx", "--out", "{tmp}"], "Error: {tmp}: missing model.keras " + MISSING, 2, None),
    ("export", ["tflite", "--out", "{tmp}"], "Error: {tmp}: missing model.keras, vocab.txt " + MISSING, 2, None),
    ("export", ["verify", "--out", "{tmp}"], "Error: {tmp}: missing model.keras, vocab.txt " + MISSING, 2, None),
    ("export", ["all", "--model", "{tmp}/nope.keras", "--out", "{tmp}/b"],
     "Error: {tmp}/nope.keras: no such model file", 2, None),
    # no data source recorded with a bare model, none given: never a silent download
    ("export", ["verify", "--out", "{model}"], NO_SOURCE, 2, None),
    ("export", ["tflite", "--out", "{model}"], NO_SOURCE, 2, None),
    ("export", ["tflite", "--out", "{model}", "--calibration-size", "10"],
     "Error: --calibration-size must be at least 500, got 10", 2, None),
    ("export", ["package", "--out", "{tmp}", "--dest", "{tmp}/d"], None, 2, None),
    # never the checkout's bundled model by default
    ("export", ["package", "--out", "{tmp}"],
     "python -m export package: error: the following arguments are required: --dest", 2, None),
    # a runtime-only install: one line naming the extra, before any data is read
    ("trainer", ["--data", "/nonexistent", "--out", "{tmp}"], extra_line("keras"), 2, "keras"),
    ("export", ["all", "--data", "/nonexistent", "--out", "{tmp}"], extra_line("tf2onnx"), 2, "tf2onnx"),
    ("export", ["verify", "--out", "{tmp}"], extra_line("tensorflow"), 2, "tensorflow"),
    # benchmarks
    ("benchmarks", ["--bundle", "{tmp}", "--out", "{tmp}/bench"], None, 2, None),
    ("benchmarks", ["--repeats", "0"],
     "python -m benchmarks: error: --repeats, --latency-reviews and --limit must be at least 1", 2, None),
    # runtime.predict and runtime.batch: the same mistake, the same line
    *[(cli, [*argv, *extra], line, 2, None) for cli, extra in (("predict", []), ("batch", ["{tmp}/out.csv"]))
      for argv, line in (
          (["/nonexistent.txt"], "Error: /nonexistent.txt: no such file or directory"),
          (["/dev/zero"], "Error: /dev/zero: is a device, not a file (pipe it in with '<' or '-' if you mean it)"),
          (["samples/reviews.txt", "--batch-size", "0"], "Error: --batch-size must be at least 1, got 0"),
          (["samples/reviews.txt", "--threshold", "2"], "Error: --threshold must be between 0 and 1, got 2.0"),
          (["samples/reviews.txt", "--model", "/nonexistent"], "Error: /nonexistent: no such bundle directory"),
          (["samples/reviews.txt", "--model", "README.md"],
           "Error: README.md: not a model file: give a bundle directory, or a .onnx or .tflite file in one"),
          (["samples/reviews.txt", "--format", "xml"],
           f"python -m runtime.{'predict' if cli == 'predict' else 'batch'}: error: argument --format: invalid "
           "choice: 'xml' (choose from 'csv', 'tsv', 'jsonl', 'parquet')"))],
    # a column an option names is checked before any engine starts (Spark too)
    ("batch", ["samples/reviews.txt", "{tmp}/out.csv", "--id-column", "nope", "--engine", "spark"],
     "Error: plain text has no columns: --id-column and --keep-columns need Parquet, CSV, TSV or JSONL input",
     2, None),
]


@pytest.fixture
def dirs(tmp_path, tiny_bundle):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.keras", "vocab.txt"):  # no metrics.json: no recorded data source
        shutil.copy(os.path.join(tiny_bundle, name), model / name)
    empty = tmp_path / "empty"
    empty.mkdir()
    return {"tmp": str(empty), "model": str(model), "bundle": tiny_bundle}


def _ids(row):
    cli, argv, *_ , blocked = row
    return f"{cli} {' '.join(argv)}" + (f" [no {blocked}]" if blocked else "")


@pytest.mark.parametrize("row", TABLE, ids=[_ids(r) for r in TABLE])
def test_error_table(row, dirs, capsys, monkeypatch):
    cli, argv, line, code, blocked = row
    monkeypatch.delenv("IMDB_DATA", raising=False)
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # samples/ is here
    if blocked:
        monkeypatch.setitem(sys.modules, blocked, None)  # find_spec -> None: "not installed"
    assert CLIS[cli]([a.format(**dirs) for a in argv]) == code
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\n")[-1]
    if line is None:  # the message is another module's; its shape is what is pinned
        assert err.startswith("Error: ") and err.count("\n") == 1, err
    elif line.endswith("*"):
        assert last.startswith(line[:-1].format(**dirs)) and err.count("\n") == 1, err
    else:
        assert last == line.format(**dirs), err
        if line.startswith("Error: "):
            assert err.count("Error") == 1 and "Traceback" not in err, err  # progress lines may come first
        elif ": error: " in line:  # a usage mistake: the one line, without the whole usage first
            assert err == line.format(**dirs) + "\n", err


def test_a_conversion_failure_exits_1(dirs, capsys, monkeypatch):
    from export import onnx_export

    def broken(proto, maxlen, outputs):
        raise onnx_export.OnnxExportError("ONNX 'input_ids' is FLOAT [batch, 256], expected 'input_ids' INT32")

    monkeypatch.setattr(onnx_export, "check_onnx", broken)
    assert export_cli.main(["onnx", "--out", dirs["model"]]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "Error: ONNX 'input_ids' is FLOAT [batch, 256], expected 'input_ids' INT32")
    assert not os.path.exists(os.path.join(dirs["model"], "model.onnx"))


# As on a runtime-only install: the [train] packages cannot be imported at all.
BLOCK_TRAIN_EXTRA = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "keras", "tf2onnx", "onnx", "matplotlib", "flatbuffers"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("command", [["trainer"], ["export", "all"], ["export", "verify"]])
def test_runtime_only_install_gets_one_line_before_reading_data(command, tmp_path):
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", BLOCK_TRAIN_EXTRA, *command, "--data", "/nonexistent",
                           "--out", str(tmp_path / "out")], cwd=root, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, extra_line("tensorflow") + "\n")
    assert not os.path.exists(tmp_path / "out")

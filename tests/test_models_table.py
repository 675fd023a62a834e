"""benchmarks.models: the Choosing-a-model table from bundles and seed summaries."""
import json

import pytest

from benchmarks.models import accuracy_text, parse_bundle, table
from runtime.errors import UserError


def test_parse_bundle():
    assert parse_bundle("linear=out/linear") == ("linear", "out/linear", None)
    assert parse_bundle("masked 512=b,runs/seeds.json") == ("masked 512", "b", "runs/seeds.json")
    for bad in ("linear", "=b", "linear="):
        with pytest.raises(UserError):
            parse_bundle(bad)


def test_accuracy_text(tmp_path):
    manifest = {"verification": {"reference": {"accuracy": 0.91284}}, "arch": {"name": "linear"}}
    assert accuracy_text(manifest, None) == "91.28, deterministic"
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({"n": 3, "mean": 0.8813, "min": 0.8804, "max": 0.882}))
    manifest["arch"]["name"] = "tutorial"
    assert accuracy_text(manifest, str(seeds)) == "88.13 mean (88.04–88.20), 3 seeds"
    assert accuracy_text(manifest, None) == "91.28, 1 seed"


def test_table_row():
    row = {"name": "linear", "maxlen": 1024, "accuracy": "91.28, deterministic", "int8_tflite_accuracy": 0.9126,
           "arch": {"shipped_int8": {"mode": "dynamic"}, "parameters": 1058578},
           "sizes_mb": {"model.int8.tflite": 1.19, "model.int8.onnx": 1.07, "model.onnx": 4.24},
           "litert_int8": {"single_p50_us": 24.2, "batch64_us": 20.04, "batch256_us": 101.6}}
    lines = table([row]).splitlines()
    assert len(lines) == 3 and lines[2] == ("| linear | 1024 | 91.28, deterministic | 91.26 (dynamic) | 1058578 | "
                                            "1.19 / 1.07 / 4.24 | 24 / 20.0 / 101.6 |")

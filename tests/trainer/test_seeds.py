"""python -m trainer.seeds: one run per seed, mean and spread."""
import json

import pytest

from runtime.errors import UserError
from trainer.seeds import main, parse_seeds, summarize_seeds


def test_parse_seeds():
    assert parse_seeds("42,43, 44") == [42, 43, 44]
    for bad in ("", "a,b", "42,42"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_summary_mean_and_spread():
    s = summarize_seeds({42: 0.88, 43: 0.90, 44: 0.86})
    assert s["n"] == 3 and s["min"] == 0.86 and s["max"] == 0.90 and abs(s["mean"] - 0.88) < 1e-12


def test_cli_trains_each_seed(tiny_imdb_tar, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["--data", tiny_imdb_tar, "--seeds", "1,2", "--epochs", "2", "--num-words", "40",
                 "--validation-size", "50", "--mask-padding", "--out", str(out)]) == 0
    summary = json.load(open(out / "seeds.json"))
    per_seed = {s: json.load(open(out / f"seed-{s}" / "metrics.json")) for s in (1, 2)}
    assert summary["seeds"] == {str(s): m["test_accuracy"] for s, m in per_seed.items()}
    assert per_seed[1]["config"]["seed"] == 1 and per_seed[2]["config"]["mask_padding"] is True
    assert summary["config"]["mask_padding"] is True and "seed" not in summary["config"]
    assert "mean" in capsys.readouterr().out

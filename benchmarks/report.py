"""The benchmark's outputs, all rendered from the result dict: a Markdown table (bench.md and
stdout), bench.json and a bar chart of end-to-end throughput (bench.png)."""
from __future__ import annotations

import io
import json
import os

from runtime.files import atomic_write_bytes, atomic_write_text

COLUMNS = [
    "engine", "model file", "size MB",
    "tokenizer reviews/s (best / median)", "tokenizer MB/s",
    "model reviews/s (best / median)",
    "end-to-end reviews/s (best / median)", "end-to-end vs Keras",
    "latency p50 / p99 ms", "p50 vs Keras",
    "cold start s (best / median)", "cold start vs Keras", "peak RSS MB",
    "accuracy", "max abs diff vs Keras",
]


def _rate(part: dict | None, key: str = "reviews_per_s") -> str:
    return "" if part is None else f"{part[key]:,.0f} / {part['median_' + key]:,.0f}"


def _speedup(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _megabytes(size: int) -> str:
    """Two decimals; two significant digits under 0.01 MB (a test model's few KB is not 0.00)."""
    mb = size / 1e6
    return f"{mb:.2f}" if mb >= 0.01 or mb == 0 else f"{mb:.2g}"


def table_rows(result: dict) -> list[list[str]]:
    """One list of cells per engine, in ``COLUMNS`` order; empty where a column does not apply."""
    rows = []
    for r in result["rows"]:
        tok, lat, cold, ratio = r.get("tokenizer"), r["latency"], r["cold_start"], r.get("vs_keras", {})
        rows.append([
            r["name"], r["model"], _megabytes(r["size_bytes"]),
            _rate(tok), "" if tok is None else f"{tok['mb_per_s']:.1f}",
            _rate(r.get("model_only")),
            _rate(r["end_to_end"]), _speedup(ratio.get("end_to_end")),
            f"{lat['p50_ms']:.3f} / {lat['p99_ms']:.3f}", _speedup(ratio.get("latency_p50")),
            f"{cold['min_s']:.2f} / {cold['median_s']:.2f}", _speedup(ratio.get("cold_start")),
            f"{cold['peak_rss_mb']:.0f}",
            f"{r['accuracy']:.4f}",
            "" if r.get("max_abs_diff_vs_keras") is None else f"{r['max_abs_diff_vs_keras']:.1e}",
        ])
    return rows


def markdown_table(result: dict) -> str:
    rows = [COLUMNS] + table_rows(result)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    m, s, d = result["machine"], result["settings"], result["data"]
    packages = ", ".join(f"{name} {version}" for name, version in result["packages"].items())
    lines = [
        "# Benchmark: scoring IMDB reviews",
        "",
        f"- date: {result['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}",
        f"- python {result['python']}; {packages}",
        f"- command: `{result['command']}` ({result['wall_s']:.0f} s)",
        f"- data: {d['n_reviews']:,} IMDB test reviews ({d['n_bytes'] / 1e6:.1f} MB of UTF-8) from `{d['source']}`; "
        f"bundle `{result['bundle']}`",
        f"- batch {s['batch']}, {s['repeats']} repeats (best = fastest, median = median run), "
        f"latency over the first {s['latency_reviews']} reviews, one per request",
        "",
        markdown_table(result),
        "",
        "Columns:",
        "",
        "- tokenizer: raw text to `[256]` int32 ids in batches of 256. Keras row: the plain regex "
        "reference (`Tokenizer.encode_batch_reference`, the tokenizer before the fast path); "
        "runtime rows: `Tokenizer.encode_batch` (same ids).",
        "- model: pre-tokenized ids to probabilities. Keras: `model.predict(ids, batch_size=256)`; "
        "runtime rows: `Classifier.predict_ids` per 256 rows.",
        "- end-to-end: raw text to probabilities. Keras: reference tokenizer then `model.predict`; runtime rows: "
        "`Classifier.predict` (batch 256); MediaPipe: `TextClassifier.classify` on each lowercased review "
        "(it has no batch API, and tokenizes inside its graph: no separate tokenizer or model column).",
        "- latency: one review per request, end to end. " + result["notes"]["keras_latency"],
        "- cold start: wall time of a fresh `python -m benchmarks.child` process that imports the engine, "
        "loads the bundle (the runtime verifies every sha256) and scores one review; files are in the page "
        "cache. peak RSS: that process's own high-water mark (`VmHWM`).",
        "- MediaPipe: its Python package imports TensorFlow, OpenCV and matplotlib when they are installed "
        "(they are here), so its cold start and peak RSS say little about a phone app.",
        "- vs Keras: speed-up over the Keras row (higher is better), from the best runs.",
        "- threads: library defaults (onnxruntime one per core, LiteRT one, TensorFlow its own pools); "
        "the tokenizer is single-threaded.",
        "- size: the model file alone (every row also needs the 125 kB vocab.txt).",
    ]
    return "\n".join(lines) + "\n"


def bar_chart_png(result: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    names = [r["name"] for r in rows]
    rates = [r["end_to_end"]["reviews_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.5), dpi=100)
    bars = ax.barh(names, rates, color=["#888888" if r["model"] == "model.keras" else "#3b75af" for r in rows])
    ax.invert_yaxis()  # first row on top, as in the table
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in rates], padding=3, fontsize=8)
    ax.set_xlabel("reviews/s, raw text to probability (best run)")
    ax.set_title(f"End-to-end throughput, {result['data']['n_reviews']:,} IMDB reviews\n"
                 f"{result['machine']['cpu']}, {result['machine']['cores']} cores, {result['date'][:10]}", fontsize=10)
    ax.set_xlim(0, max(rates) * 1.2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_outputs(out: str, result: dict) -> list[str]:
    """``bench.json``, ``bench.md`` and ``bench.png`` in ``out``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, name) for name in ("bench.json", "bench.md", "bench.png")]
    atomic_write_text(paths[0], json.dumps(result, indent=2) + "\n")
    atomic_write_text(paths[1], markdown(result))
    atomic_write_bytes(paths[2], bar_chart_png(result))
    return paths

"""The verification table (printed and in ``report.md``), rendered from the manifest alone."""
from __future__ import annotations

import os

from runtime.files import atomic_write_text


EDGE_ROWS_LINE = (" Every format also scores the edge rows (empty, whitespace only, '<br />' only, one token, "
                  "maxlen + 1 tokens) alone with each backend that opens it; a row it cannot score fails it.")


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def verification_table(manifest: dict) -> str:
    """One Markdown row per format and per MediaPipe check; failures named in the last column."""
    ver, files = manifest["verification"], manifest["files"]
    rows = [["format", "accuracy", "agreement", "max abs diff", "mean abs diff", "alone vs batch", "size KiB",
             "sha256", "check"],
            ["model.keras (reference)", _fmt(ver["reference"]["accuracy"], ".4f"), "", "", "", "",
             _fmt(files.get("model.keras", {}).get("size", 0) / 1024, ".0f"),
             files.get("model.keras", {}).get("sha256", "")[:12], ""]]
    for name, r in ver["results"].items():
        f = files.get(name, {})
        rows.append([name, _fmt(r.get("accuracy"), ".4f"), _fmt(r["agreement"], ".2%"), _fmt(r["max_abs_diff"], ".2e"),
                     _fmt(r["mean_abs_diff"], ".2e"), _fmt(r.get("batch_max_abs_diff"), ".1e"),
                     _fmt(f["size"] / 1024 if f else None, ".0f"),
                     f.get("sha256", "")[:12], "PASS" if r["passed"] else "FAIL: " + "; ".join(r["failures"])])
    return _markdown(rows)


def _markdown(rows: list[list[str]]) -> str:
    """A Markdown table, its columns padded to their widest cell; ``rows[0]`` is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def per_class_section(training: dict) -> list[str]:
    """The trainer's per-class figures and confusion matrix on the test split (metrics.json's
    ``per_class`` and ``confusion``, in ``labels`` order), as report lines; none if it has none."""
    per_class, confusion = training.get("per_class"), training.get("confusion")
    if not per_class:
        return []
    labels = training.get("labels") or list(per_class)
    rows = [["label", "precision", "recall", "F1", "support"]]
    rows += [[label, f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", str(c["support"])]
             for label, c in ((label, per_class[label]) for label in labels)]
    parts = ["### Per class (test split)", "", _markdown(rows), ""]
    if confusion:
        matrix = [["true \\ predicted", *labels]] + [[label, *map(str, row)] for label, row in zip(labels, confusion)]
        parts += ["Confusion matrix: rows are the true class, columns the predicted class.", "", _markdown(matrix), ""]
    return parts


def mediapipe_line(status: dict) -> str:
    """Whether the MediaPipe conformance check ran, and why not where it did not."""
    skipped = status.get("skipped") or {}
    if "*" in skipped:
        return f"MediaPipe check: skipped ({skipped['*']})."
    parts = [f"ran on {', '.join(status['ran'])}"] if status.get("ran") else []
    parts += [f"skipped {name} ({why})" for name, why in skipped.items()]
    return f"MediaPipe check: {'; '.join(parts) or 'no TFLite model to check'}."


def write_report(out: str, manifest: dict) -> str:
    ver, training = manifest["verification"], manifest.get("training") or {}
    tol = ver["tolerances"]
    parts = [
        f"# {manifest['name']} export report",
        "",
        f"Created {manifest['created']}. Reference: Keras `model.keras`, scored on the {ver['dataset']['n']} "
        f"{ver['dataset']['name']} reviews; every format is scored by its own interpreter "
        "(onnxruntime, LiteRT) on the same token ids; MediaPipe rows compare MediaPipe's TextClassifier "
        "on lowercased raw text with the LiteRT interpreter.",
        "",
        f"Checks: float formats max |dp| <= {tol['float_max_abs_diff']:g} and 100% label agreement (near-ties "
        "excepted: rows whose reference scores of the two labels are within twice that); quantized "
        f"formats >= {tol['quantized_min_agreement']:.0%} agreement and accuracy within "
        f"{tol['quantized_max_accuracy_drop'] * 100:.1f} points of Keras; MediaPipe max |dp| <= "
        f"{tol['mediapipe_max_abs_diff']:g}. Every format: a review scored alone must match its score inside a "
        f"batch (max |dp| <= {tol.get('batch_max_abs_diff', 0):g}, first 64 test reviews; 'alone vs batch')."
        + EDGE_ROWS_LINE * any("edge_rows" in r for r in ver["results"].values()),
        "",
        verification_table(manifest),
        "",
    ]
    if ver.get("mediapipe"):
        parts += [mediapipe_line(ver["mediapipe"]), ""]
    if training:
        parts += ["## Training", "",
                  f"Test accuracy {training['test_accuracy']:.4f}, loss {training['test_loss']:.4f}; best validation "
                  f"epoch {training['best_epoch']} of {training['epochs_run']}; {training['train_seconds']} s.", ""]
        parts += per_class_section(training)
    for plot in ("loss.png", "accuracy.png"):
        if os.path.isfile(os.path.join(out, plot)):
            parts += [f"![{plot[:-4]}]({plot})", ""]
    path = os.path.join(out, "report.md")
    atomic_write_text(path, "\n".join(parts))
    return path

"""N-class bundles in the runtime (issue 18): the manifest's label rules, ``predict_proba`` and
``classify`` on every backend, ``--all-scores`` in every format of ``runtime.predict`` and
``runtime.batch``, and Spark writing the local engine's bytes.

The bundle is the session fixture ``three_class_bundle`` (tests/conftest.py): a trained
three-class tutorial model, labels alpha/beta/gamma, ONNX and TFLite float/int8.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import batch, spark as rs
from runtime.batch import main as batch_main
from runtime.bundle import MAX_LABELS, BundleError, parse_manifest
from runtime.model import Classifier, ClassifierError, predicted
from runtime.predict import main as predict_main
from runtime.records import judge
from tests.conftest import THREE_LABELS, three_class_corpus
from tests.runtime.test_spark import spark_lines

LABELS = THREE_LABELS
TEXTS = three_class_corpus(30, seed=5)[0] + ["", "zzz words it has never seen", "  "]
PREDICT_ERROR = ("predict() gives one probability per text for two-class bundles; this bundle has 3 labels: "
                 "use predict_proba()")
THRESHOLD_ERROR = ("a threshold (--threshold) is for two-class bundles; this bundle has 3 labels and predicts "
                   "the arg-max")
LABELS_RULE = "labels: must be 2 to 1000 distinct non-empty strings (the class names, in output order), got "
NUMBER = "threshold: must be a number between 0 and 1 (exclusive), got "
SUMMARY = r"scored {n} rows{counts} in \d+\.\d\d s, \d+ rows/s"
MANY = [f"c{i}" for i in range(MAX_LABELS + 1)]


@pytest.fixture(scope="module")
def clf3(three_class_bundle):
    return Classifier.load(three_class_bundle, threads=1)


@pytest.fixture(scope="module")
def keras_scores(three_class_bundle, clf3):
    """The trained Keras model's ``[n, 3]`` softmax on TEXTS: the reference of every export."""
    import keras

    model = keras.models.load_model(os.path.join(three_class_bundle, "model.keras"))
    return np.asarray(model(clf3.tokenizer.encode_batch(TEXTS), training=False))


def run(capsys, main, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def rewrite(src, dest, labels, threshold, lines=None) -> str:
    """A copy of the bundle ``src`` with these labels and threshold in its manifest, and ``lines``
    (default: the rule's) in a labels.txt the manifest vouches for."""
    from runtime.bundle import labels_file_lines

    shutil.copytree(src, dest)
    text = "".join(f"{line}\n" for line in (labels_file_lines(labels) if lines is None else lines))
    (dest / "labels.txt").write_text(text, encoding="utf-8")
    manifest = json.loads((dest / "manifest.json").read_text())
    data = text.encode()
    manifest.update(labels=labels, threshold=threshold)
    manifest["files"]["labels.txt"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return str(dest)


# -- the API ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model, max_diff, agreement", [
    ("model.onnx", 1e-5, 1.0), ("model.tflite", 1e-5, 1.0),
    ("model.int8.onnx", 0.05, 0.95), ("model.int8.tflite", 0.05, 0.95),
])
def test_predict_proba_on_every_backend(three_class_bundle, keras_scores, model, max_diff, agreement):
    clf = Classifier.load(three_class_bundle, model=model)
    scores = clf.predict_proba(TEXTS)
    assert (scores.shape, scores.dtype, clf.num_classes, clf.labels) == ((len(TEXTS), 3), np.float32, 3, LABELS)
    assert np.abs(scores - keras_scores).max() <= max_diff
    assert np.mean(scores.argmax(axis=1) == keras_scores.argmax(axis=1)) >= agreement
    assert np.abs(scores.sum(axis=1) - 1).max() <= 0.01  # int8 outputs step by 1/256
    assert clf.predict_proba([]).shape == (0, 3) and clf.predict_proba(t for t in TEXTS[:2]).shape == (2, 3)


def test_two_class_predict_proba_is_one_minus_p_and_p(clf):
    p = clf.predict(TEXTS)
    scores = clf.predict_proba(TEXTS)
    assert (scores.shape, scores.dtype, clf.num_classes) == ((len(TEXTS), 2), np.float32, 2)
    np.testing.assert_array_equal(scores[:, 1], p)
    np.testing.assert_array_equal(scores[:, 0], np.float32(1) - p)
    assert clf.predict_proba([]).shape == (0, 2)


def test_classify_gives_the_arg_max_label_and_its_probability(clf3):
    scores = clf3.predict_proba(TEXTS)
    want = [(LABELS[i], float(s[i])) for i, s in zip(scores.argmax(axis=1), scores)]
    assert clf3.classify(TEXTS) == want
    assert {label for label, _ in want} == set(LABELS)  # the corpus has every class
    assert clf3.threshold is None


def test_two_class_classify_gives_the_probability_of_its_label(clf):
    p = clf.predict(TEXTS)
    want = [("positive", float(q)) if q >= 0.5 else ("negative", float(np.float32(1) - q)) for q in p]
    assert clf.classify(TEXTS) == want
    assert [label for label, _ in clf.classify(TEXTS, threshold=1.0)] == ["negative"] * len(TEXTS)


def test_the_decision_rule():
    ties = np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.25, 0.25, 0.25], [0.1, 0.2, 0.7]], np.float32)
    assert predicted(ties, None).tolist() == [0, 1, 0, 2]  # ties: the lowest index
    two = np.array([[0.5, 0.5], [0.6, 0.4], [0.3, 0.7]], np.float32)
    assert predicted(two, 0.5).tolist() == [1, 0, 1]  # from the threshold on
    assert predicted(two, 0.7).tolist() == [0, 0, 0]  # float32(0.7) < 0.7: compared as written


def test_predict_and_a_threshold_are_refused_for_n_classes(clf3):
    for call in (lambda: clf3.predict(["apple"]), lambda: clf3.predict_one("apple")):
        with pytest.raises(ClassifierError) as e:
            call()
        assert str(e.value) == PREDICT_ERROR
    with pytest.raises(ClassifierError) as e:
        clf3.classify(["apple"], threshold=0.5)
    assert str(e.value) == THRESHOLD_ERROR


def test_threshold_on_the_command_line_is_refused_for_n_classes(three_class_bundle, tmp_path, capsys):
    out = tmp_path / "out.csv"
    code, stdout, err = run(capsys, predict_main, "--text", "apple", "--model", three_class_bundle,
                            "--threshold", "0.3", "-o", out)
    assert (code, stdout, err) == (2, "", f"Error: {THRESHOLD_ERROR}\n") and not out.exists()


# -- --all-scores in every format -------------------------------------------------------------
def expected_cells(clf, texts) -> list[list]:
    """Each row's key, label, probability and class probabilities as written (6 decimals), then
    the error; a row with an error has none of them."""
    rows = []
    for number, (text, s) in enumerate(zip(texts, clf.predict_proba(texts)), 1):
        error = judge(text)[1]
        i = int(np.argmax(s))
        rows.append([number, None, None, *[None] * len(s), error] if error else
                    [number, LABELS[i], f"{s[i]:.6f}", *(f"{v:.6f}" for v in s), None])
    return rows


def as_text(rows, fmt: str) -> str:
    if fmt == "jsonl":
        names = ["row", "label", "probability", *LABELS, "error"]
        return "".join("{" + ", ".join(f'"{n}": ' + ("null" if v is None else v if n in ("probability", *LABELS)
                                                        else json.dumps(v)) for n, v in zip(names, row)) + "}\n"
                       for row in rows)
    sep = "\t" if fmt == "tsv" else ","
    header = sep.join(["row", "label", "probability", *LABELS, "error"]) + "\n"
    return header + "".join(sep.join("" if v is None else str(v) for v in row) + "\n" for row in rows)


@pytest.mark.parametrize("front", ["predict", "batch"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_all_scores_in_every_format(three_class_bundle, clf3, tmp_path, capsys, front, fmt):
    inp, out = tmp_path / "in.txt", tmp_path / f"out.{fmt}"
    inp.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    args = [inp, "-o", out] if front == "predict" else [inp, out, "--workers", "2"]
    main = predict_main if front == "predict" else batch_main
    code, stdout, err = run(capsys, main, *args, "--model", three_class_bundle, "--all-scores", "--format", fmt)
    assert (code, stdout) == (0, "")
    assert re.fullmatch(SUMMARY.format(n=len(TEXTS), counts=r" \(2 with errors\)") + f" -> {out}\n", err)
    rows = expected_cells(clf3, TEXTS)
    if fmt != "parquet":
        assert out.read_text(encoding="utf-8") == as_text(rows, fmt)
        return
    table = pq.read_table(out)
    assert table.schema.names == ["row", "label", "probability", *LABELS, "error"]
    assert [table.schema.field(n).type for n in ["probability", *LABELS]] == [pa.float32()] * 4
    scores, bad = clf3.predict_proba(TEXTS), [judge(t)[1] is not None for t in TEXTS]
    got = np.array([table.column(n).to_pylist() for n in LABELS], dtype=float).T  # null: nan
    assert np.isnan(got[bad]).all() and np.array_equal(got[~np.array(bad)], scores[~np.array(bad)])
    assert table.column("label").to_pylist() == [r[1] for r in rows]
    assert table.column("error").to_pylist() == [r[-1] for r in rows]


def test_without_all_scores_the_label_and_its_probability(three_class_bundle, clf3, capsys):
    code, out, err = run(capsys, predict_main, *[a for t in TEXTS[:5] for a in ("--text", t)],
                         "--model", three_class_bundle)
    want = [f"{n},{label},{p},\n" for n, label, p, *_ in expected_cells(clf3, TEXTS[:5])]
    assert (code, out) == (0, "row,label,probability,error\n" + "".join(want))
    assert re.fullmatch(SUMMARY.format(n=5, counts="") + "\n", err)  # no positive count for 3 labels


def test_two_class_all_scores_columns_are_named_by_both_labels(bundle, clf, capsys):
    texts = ["a great and wonderful film", "awful boring mess", ""]
    code, out, err = run(capsys, predict_main, *[a for t in texts for a in ("--text", t)], "--model", bundle,
                         "--all-scores")
    p = clf.predict(texts)
    rows = [f"1,positive,{p[0]:.6f},{1 - p[0]:.6f},{p[0]:.6f},", f"2,negative,{p[1]:.6f},{1 - p[1]:.6f},{p[1]:.6f},",
            "3,,,,,empty text"]
    assert (code, out) == (0, "row,label,probability,negative,positive,error\n" + "\n".join(rows) + "\n")
    assert re.fullmatch(SUMMARY.format(n=3, counts=r" \(1 positive, 1 with errors\)") + "\n", err)
    _, plain, _ = run(capsys, predict_main, *[a for t in texts for a in ("--text", t)], "--model", bundle)
    assert plain == "".join(",".join(line.split(",")[:3] + line.split(",")[5:]) + "\n"
                            for line in out.splitlines())  # the same rows less the two columns


@pytest.mark.parametrize("labels, extra", [
    (["alpha", "error", "gamma"], []), (["alpha", "row", "gamma"], []), (["file", "beta", "gamma"], []),
    (["alpha", "beta", "stars"], ["--keep-columns", "stars"]), (["alpha", "beta", "id"], ["--id-column", "id"]),
])
def test_a_class_column_named_as_another_output_column_is_refused(three_class_bundle, tmp_path, capsys,
                                                                  labels, extra):
    model = rewrite(three_class_bundle, tmp_path / "b", labels, None)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.csv"
    inp.write_text('{"id": 1, "text": "apple", "stars": 5}\n', encoding="utf-8")
    clash = next(label for label in labels if label not in LABELS)
    code, stdout, err = run(capsys, batch_main, inp, out, "--model", model, "--all-scores", *extra)
    assert (code, stdout, err) == (2, "", f"Error: label {clash!r} clashes with the output column of that name "
                                          "(--all-scores)\n")
    assert not out.exists()
    assert run(capsys, batch_main, inp, out, "--model", model, *extra)[0] == 0  # without --all-scores: no clash


# -- the manifest's label rules ---------------------------------------------------------------
def manifest_problem(labels, threshold="absent") -> str:
    obj = {"format_version": 1, "labels": labels, "files": {}}
    if threshold != "absent":
        obj["threshold"] = threshold
    with pytest.raises(BundleError) as e:
        parse_manifest(obj, "m.json")
    problems = [p.removeprefix("  - ") for p in str(e.value).splitlines()[1:] if not p.startswith("  - tokenizer")]
    return "\n".join(problems)


@pytest.mark.parametrize("labels, threshold, problem", [
    (["alpha"], None, LABELS_RULE + '["alpha"]'),
    (["a", "b", "a"], None, LABELS_RULE + '["a", "b", "a"]'),
    (["a", "", "c"], None, LABELS_RULE + '["a", "", "c"]'),
    (["a", 2, "c"], None, LABELS_RULE + '["a", 2, "c"]'),
    (MANY, None, LABELS_RULE + json.dumps(MANY)[:97] + "..."),  # the value shown cut to 100 characters
    (["a", "b", "c"], 0.5, "threshold: must be null for 3 labels (the arg-max), got 0.5"),
    (["a", "b", "c"], "abc", 'threshold: must be null for 3 labels (the arg-max), got "abc"'),
    (["a", "b"], None, NUMBER + "null"),
    (["a", "b"], 1.5, NUMBER + "1.5"),
    (["a", "b", "c"], "absent", "threshold: missing (two labels: the probability from which the second is "
                                "predicted; more: null)"),
    ("abc", "abc", LABELS_RULE + '"abc"\n' + NUMBER + '"abc"'),  # unusable labels: a threshold still a number
])
def test_manifest_label_rules(labels, threshold, problem):
    assert manifest_problem(labels, threshold) == problem


def test_valid_label_counts_and_thresholds(tiny_bundle):
    spec = json.load(open(os.path.join(tiny_bundle, "manifest.json")))
    for labels, threshold in ((["a", "b"], 0.25), (["a", "b", "c"], None), ([f"c{i}" for i in range(1000)], None)):
        parsed = parse_manifest({**spec, "labels": labels, "threshold": threshold}, "m.json")
        assert (parsed.labels, parsed.threshold) == (tuple(labels), threshold)
    assert manifest_problem(5, None) == LABELS_RULE + "5"  # labels unusable: null is no problem of its own


@pytest.mark.parametrize("which, lines, expected", [
    ("three", ["alpha", "beta"], '["alpha", "beta", "gamma"]'),
    ("three", ["gamma", "beta", "alpha"], '["alpha", "beta", "gamma"]'),
    ("two", ["negative", "positive"], '["positive"]'),
    ("two", ["negative"], '["positive"]'),
])
def test_labels_txt_must_match_the_manifest(three_class_bundle, tiny_bundle, tmp_path, which, lines, expected):
    src, labels = (three_class_bundle, LABELS) if which == "three" else (tiny_bundle, ["negative", "positive"])
    root = rewrite(src, tmp_path / "b", labels, None if which == "three" else 0.5, lines)
    with pytest.raises(BundleError) as e:
        Classifier.load(root)
    assert str(e.value) == (f"{root}/labels.txt: lines {json.dumps(lines)} do not match the labels of "
                            f"manifest.json (expected {expected})")


@pytest.mark.parametrize("model, shape", [("model.onnx", "[?, 3]"), ("model.tflite", "[?, 3]"),
                                          ("model.int8.tflite", "[?, 3]")])
def test_a_model_wider_than_two_labels_is_refused(three_class_bundle, tmp_path, model, shape):
    root = rewrite(three_class_bundle, tmp_path / "b", ["alpha", "beta"], 0.5)
    with pytest.raises(BundleError) as e:
        Classifier.load(root, model=model)
    assert str(e.value) == (f"{root}/{model}: model output shape {shape} does not fit the 2 labels of "
                            "manifest.json (expected [?, 1])")


def test_a_sigmoid_model_with_three_labels_is_refused_in_one_line(tiny_bundle, tmp_path, capsys):
    root = rewrite(tiny_bundle, tmp_path / "b", LABELS, None)
    code, out, err = run(capsys, predict_main, "--text", "good", "--model", root)
    assert (code, out, err) == (2, "", f"Error: {root}/model.onnx: model output shape [?, 1] does not fit the "
                                       "3 labels of manifest.json (expected [?, 3])\n")


# -- Spark: the local engine's bytes ----------------------------------------------------------
def test_spark_writes_the_local_engines_bytes(spark_session, three_class_bundle, tmp_path):
    inp = tmp_path / "in.jsonl"
    texts = three_class_corpus(500, seed=8)[0] + ["", " "]
    inp.write_text("".join(json.dumps({"id": f"k{i}", "text": t, "stars": i % 5}) + "\n"
                           for i, t in enumerate(texts)), encoding="utf-8")
    opts = dict(model=three_class_bundle, id_column="id", keep_columns=["stars"], all_scores=True)
    got = rs.score_file(str(inp), str(tmp_path / "spark.csv"), spark=spark_session, batch_size=128, **opts)
    want = batch.score_file(str(inp), str(tmp_path / "local.csv"), workers=1, **opts)
    assert (got.rows, got.positive, got.bad, got.two_class) == (want.rows, 0, 2, False)
    headers, lines = spark_lines(str(tmp_path / "spark.csv"))
    local = (tmp_path / "local.csv").read_text(encoding="utf-8").splitlines()
    assert set(headers) == {local[0]} == {"id,label,probability,alpha,beta,gamma,error,stars"}
    assert sorted(lines) == sorted(local[1:]) and len(lines) == len(texts)


def test_score_dataframe_all_scores(spark_session, three_class_bundle, clf3):
    df = spark_session.createDataFrame([(f"k{i}", t) for i, t in enumerate(TEXTS)], "id string, text string")
    scored = rs.score_dataframe(df, id_col="id", model=three_class_bundle, all_scores=True)
    assert scored.columns == ["id", "label", "probability", *LABELS, "error"]
    rows = {r["id"]: r for r in scored.collect()}
    for i, (text, s) in enumerate(zip(TEXTS, clf3.predict_proba(TEXTS))):
        r = rows[f"k{i}"]
        if judge(text)[1] is not None:
            assert (r["label"], r["probability"], r["alpha"], r["error"]) == (None, None, None, judge(text)[1])
            continue
        assert r["label"] == LABELS[int(np.argmax(s))] and r["error"] is None
        assert np.abs(np.array([r[n] for n in LABELS]) - s).max() <= 1e-6
        assert abs(r["probability"] - s.max()) <= 1e-6

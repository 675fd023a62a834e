"""The export steps as plain functions; ``python -m export`` is a thin shell over them.

Each step reads and writes files in one output directory (the bundle):
train -> model.keras + vocab.txt; onnx -> model.onnx (+ model.int8.onnx);
tflite -> model.tflite, model.dynamic.tflite, model.int8.tflite (+ labels.txt);
verify -> manifest.json + report.md; micro -> micro/ (+ its section of manifest.json).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from runtime.bundle import EXPORTED_MODELS, MANIFEST
from runtime.files import atomic_write_bytes, atomic_write_text, sha256_file
from runtime.tokenizer import Tokenizer
from trainer.data import recorded_source, resolve_source
from trainer.dataset import IMDB, Request, calibration_rows, load_dataset, source_kind
from trainer.train import TOKENIZER_FILE, TrainConfig, refuse_verified_bundle, split_validation, validation_size

from . import verify as V
from .errors import ExportError
from .manifest import IMDB_LABELS, build_manifest, labels_file_lines, metadata_texts, trained_labels, write_manifest

logger = logging.getLogger(__name__)

MODEL_VERSION = "1.0.0"


@dataclass
class ExportConfig:
    out: str = "artifacts"
    model: str | None = None  # an existing model.keras (vocab.txt beside it); None -> train
    int8: bool = True  # also write the quantized variants
    int8_io: bool = False  # int8 output tensor in model.int8.tflite (the runtime dequantizes)
    calibration_size: int = 1000  # training reviews for full-integer calibration
    mediapipe_samples: int = 500  # test reviews scored by MediaPipe in verify (0 = skip)
    node_modules: str | None = None  # web: onnxruntime-web etc. (None: web/node_modules)
    train: TrainConfig = field(default_factory=TrainConfig)
    # What one command has read, kept for its later steps (never across commands): the IMDB
    # data by source, metrics.json by its file state.
    read: dict = field(default_factory=dict, repr=False, compare=False)


def _need(out: str, *names: str) -> None:
    missing = [n for n in names if not os.path.isfile(os.path.join(out, n))]
    if missing:
        raise ExportError(f"{out}: missing {', '.join(missing)} (run 'python -m export train --out {out}' "
                          "first: it trains, or adopts an existing model with --model PATH)")


def training_metadata(cfg: ExportConfig) -> dict:
    """The trainer's metrics.json in ``cfg.out`` ({} for a bare model): its ``data`` source and
    ``config``; parsed once per command unless the file changes (the train step writes it)."""
    path = os.path.join(cfg.out, "metrics.json")
    if not os.path.isfile(path):
        return {}
    st = os.stat(path)
    key = ("metrics", st.st_mtime_ns, st.st_size)
    if key not in cfg.read:
        cfg.read[key] = _read_metadata(path)
    return cfg.read[key]


def _read_metadata(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: unreadable ({e})") from None
    if not isinstance(meta, dict):
        raise ExportError(f"{path}: not a JSON object")
    return meta


def data_source(cfg: ExportConfig) -> str:
    """--data, else $IMDB_DATA, else the source recorded at training; never a silent download."""
    recorded = training_metadata(cfg).get("data")
    return resolve_source(cfg.train.data, recorded if isinstance(recorded, str) else None, default=None)


def _invalidate_manifest(out: str) -> None:
    """A new model file makes the old manifest a lie; verify writes a fresh one."""
    path = os.path.join(out, MANIFEST)
    if os.path.exists(path):
        os.unlink(path)
        logger.info(f"removed stale {path}; run 'python -m export verify' to write a new one")


def load_keras(out: str):
    import keras

    import trainer.ngrams  # noqa: F401  registers the custom layers of the bigram/linear architectures

    # safe_mode: refuse lambdas / arbitrary code in the archive.
    return keras.models.load_model(os.path.join(out, "model.keras"), safe_mode=True, compile=False)


def model_labels(cfg: ExportConfig, model) -> list[str]:
    """The class names of metrics.json (IMDB's two without one), checked against the width of
    ``model``'s output: 1 (a sigmoid) for two classes, N (a softmax) for N."""
    from trainer.model import outputs

    labels = trained_labels(training_metadata(cfg))
    width = model.output_shape[-1]
    if width != outputs(len(labels)):
        raise ExportError(f"{cfg.out}: model.keras has {width} output{'s' * (width != 1)}, but metrics.json names "
                          f"{len(labels)} labels {labels} (needing {outputs(len(labels))})")
    return labels


def load_tokenizer(out: str) -> Tokenizer:
    """The tokenizer the model in ``out`` was trained with: ``vocab.txt`` + ``tokenizer.json``.

    A model trained before ``tokenizer.json`` existed gets the maxlen of its input layer.
    """
    _need(out, "vocab.txt")
    path = os.path.join(out, TOKENIZER_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                maxlen = json.load(f)["maxlen"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ExportError(f"{path}: unreadable ({e})") from None
        if type(maxlen) is not int or maxlen < 1:
            raise ExportError(f"{path}: maxlen must be a positive integer, got {maxlen!r}")
    else:
        maxlen = load_keras(out).input_shape[1]
    return Tokenizer.load(os.path.join(out, "vocab.txt"), maxlen=maxlen)


def step_train(cfg: ExportConfig) -> None:
    """Train into ``cfg.out``, or adopt ``cfg.model`` (copied, never modified)."""
    if cfg.model is None:
        from trainer.train import train

        train(dataclasses.replace(cfg.train, out=cfg.out))
        return
    src_dir = os.path.dirname(os.path.abspath(cfg.model))
    if not os.path.isfile(cfg.model):
        raise ExportError(f"{cfg.model}: no such model file")
    if not os.path.isfile(os.path.join(src_dir, "vocab.txt")):
        raise ExportError(f"{cfg.model}: no vocab.txt beside the model (the trainer writes both)")
    if os.path.abspath(src_dir) == os.path.abspath(cfg.out):
        return
    refuse_verified_bundle(cfg.out, cfg.train.force)
    os.makedirs(cfg.out, exist_ok=True)
    for name in ("vocab.txt", TOKENIZER_FILE, "metrics.json", "history.json", "loss.png", "accuracy.png"):
        if os.path.isfile(os.path.join(src_dir, name)):
            shutil.copyfile(os.path.join(src_dir, name), os.path.join(cfg.out, name))
    shutil.copyfile(cfg.model, os.path.join(cfg.out, "model.keras"))
    logger.info(f"using {cfg.model}")


def step_onnx(cfg: ExportConfig) -> None:
    from .onnx_export import quantize_onnx, to_onnx

    _need(cfg.out, "model.keras")
    _invalidate_manifest(cfg.out)
    to_onnx(load_keras(cfg.out), os.path.join(cfg.out, "model.onnx"))
    logger.info("wrote model.onnx")
    if cfg.int8:
        quantize_onnx(os.path.join(cfg.out, "model.onnx"), os.path.join(cfg.out, "model.int8.onnx"))
        logger.info("wrote model.int8.onnx")


def _trained(cfg: ExportConfig, name: str):
    """A training option as metrics.json records it, else as this command has it (a bare model)."""
    trained = training_metadata(cfg).get("config") or {}
    value = trained.get(name)
    return getattr(cfg.train, name) if value is None else value


def data_request(cfg: ExportConfig) -> Request:
    """What the trainer read (trainer.dataset): its source (``data_source``), test set, columns,
    label order and split, from metrics.json when recorded."""
    meta = training_metadata(cfg)
    labels, test_data = meta.get("labels") or _trained(cfg, "labels"), meta.get("test_data")
    return Request(data_source(cfg), test_data if isinstance(test_data, str) else cfg.train.test_data,
                   _trained(cfg, "text_column"), _trained(cfg, "label_column"),
                   tuple(labels) if labels else None, _trained(cfg, "test_size"), _trained(cfg, "seed"))


def _load_data(cfg: ExportConfig):
    """The trainer's data (``trainer.dataset.Dataset``); the steps of one ``export all`` read it once."""
    request = data_request(cfg)
    key = ("data", request)
    if key not in cfg.read:
        what = "IMDB reviews" if source_kind(request.data) == IMDB else "labelled texts"
        logger.info(f"reading {what} from {request.data}")
        cfg.read[key] = load_dataset(request)
    return cfg.read[key]


def trainer_split(cfg: ExportConfig):
    """The trainer's ((train texts, labels), (validation texts, labels)) split of its training
    rows: its validation size and seed from metrics.json when recorded."""
    data = _load_data(cfg)
    size = validation_size(data, _trained(cfg, "validation_size"))
    return split_validation(data, size, _trained(cfg, "seed"))


def calibration_ids(cfg: ExportConfig, tok: Tokenizer) -> np.ndarray:
    """Training rows (never test rows), of every class: [n, maxlen] int32 (``calibration_rows``)."""
    (texts, labels), _ = trainer_split(cfg)
    rows = calibration_rows(texts, labels, cfg.calibration_size, _load_data(cfg).imdb, _trained(cfg, "seed"))
    return tok.encode_batch(rows)


def step_tflite(cfg: ExportConfig) -> None:
    from .metadata import add_metadata
    from .tflite_export import to_tflite

    _need(cfg.out, "model.keras", "vocab.txt")
    if cfg.calibration_size < 500 and cfg.int8:
        raise ExportError(f"--calibration-size must be at least 500, got {cfg.calibration_size}")
    if cfg.int8:
        data_source(cfg)  # calibration reads the training reviews: fail before converting anything
    _invalidate_manifest(cfg.out)
    model, tok = load_keras(cfg.out), load_tokenizer(cfg.out)
    labels = model_labels(cfg, model)
    lines = labels_file_lines(labels)  # one per output score
    atomic_write_text(os.path.join(cfg.out, "labels.txt"), "".join(f"{line}\n" for line in lines))
    modes = [("float", "model.tflite")]
    if cfg.int8:
        modes += [("dynamic", "model.dynamic.tflite"), ("int8", "model.int8.tflite")]
    calib = calibration_ids(cfg, tok) if cfg.int8 else None
    for mode, name in modes:
        flat = to_tflite(model, mode, calibration_ids=calib if mode == "int8" else None,
                         int8_io=cfg.int8_io and mode == "int8")
        flat = add_metadata(flat, vocab_path=os.path.join(cfg.out, "vocab.txt"), labels=lines,
                            version=MODEL_VERSION, **metadata_texts(labels, mode))
        atomic_write_bytes(os.path.join(cfg.out, name), flat)
        logger.info(f"wrote {name} ({len(flat) / 1024:.0f} KiB)")
    _ship_int8(cfg, tok)


def _ship_int8(cfg: ExportConfig, tok: Tokenizer) -> None:
    """model.int8.tflite: full-integer, or dynamic-range when full-integer loses on validation (export.archs)."""
    from .archs import QUANTIZATION_FILE, VALIDATION_REVIEWS, choose_shipped_int8

    record = os.path.join(cfg.out, QUANTIZATION_FILE)
    if os.path.exists(record):
        os.unlink(record)
    if not cfg.int8 or cfg.int8_io:  # --int8-io asks for the full-integer model explicitly
        return
    _, (texts, labels) = trainer_split(cfg)
    held_out = not training_metadata(cfg).get("fit_on_validation", False)
    choose_shipped_int8(cfg.out, tok.encode_batch(texts[:VALIDATION_REVIEWS]), labels[:VALIDATION_REVIEWS],
                        held_out)


def _mediapipe_results(cfg: ExportConfig, texts: list[str], ids: np.ndarray,
                       labels: list[str]) -> tuple[list[V.Result], dict]:
    """MediaPipe TextClassifier vs the LiteRT interpreter on an even sample of test reviews; its
    categories (``labels_file_lines(labels)``) mapped by name to the model's columns.

    Returns the results and what the manifest records: ``{"ran": [...], "skipped": {name: why}}``.
    """
    status = {"ran": [], "skipped": {}}
    if not cfg.mediapipe_samples:
        status["skipped"]["*"] = "--mediapipe-samples 0"
        return [], status
    from .mediapipe_check import MediaPipeUnavailable, mediapipe_scores

    rows = np.linspace(0, len(texts) - 1, min(cfg.mediapipe_samples, len(texts))).astype(int)
    results = []
    for name in ("model.tflite", "model.int8.tflite"):
        path = os.path.join(cfg.out, name)
        if not os.path.isfile(path):
            continue
        if _output_dtype(path) == np.int8:
            status["skipped"][name] = "int8 output tensor (--int8-io); MediaPipe takes float32/uint8"
            logger.info(f"MediaPipe cannot run {name}: its output is int8 (--int8-io); MediaPipe takes float32/uint8")
            continue
        try:
            mp = mediapipe_scores(path, [texts[i] for i in rows], labels_file_lines(labels))
        except MediaPipeUnavailable as e:
            status["skipped"]["*"] = str(e)
            logger.info(f"skipping the MediaPipe conformance check: {e}")
            return [], status
        lite = V.score_file(path, ids[rows])
        results.append(V.compare(f"mediapipe:{name}", mp, lite, None, quantized=False,
                                 max_abs_diff=V.MEDIAPIPE_MAX_ABS_DIFF))
        status["ran"].append(name)
    return results, status


def _output_dtype(path: str):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=path).get_output_details()[0]["dtype"]


def _format_results(out: str, ids: np.ndarray, reference: np.ndarray, labels: np.ndarray,
                    edge: tuple[list[str], np.ndarray]) -> list[V.Result]:
    """Every exported model file scored by its own interpreter and compared with Keras (``reference``
    [n] or [n, N]), and made to score the ``edge`` rows (names, ids) no test review looks like."""
    results, width = [], 1 if reference.ndim == 1 else reference.shape[1]
    for name in EXPORTED_MODELS:
        path = os.path.join(out, name)
        if os.path.isfile(path):
            logger.info(f"scoring with {name}")
            probs = V.score_file(path, ids)
            results.append(V.compare(name, probs, reference, labels, quantized=name in V.QUANTIZED,
                                     reference_accuracy=V.accuracy(reference, labels)))
            V.check_batch_independence(results[-1], path, ids, probs)
            V.check_edge_rows(results[-1], path, *edge, width=width)
            if name.endswith(".tflite"):  # LiteRT's default kernels depend on the CPU
                results[-1].figures.update(V.kernel_figures(path, ids, reference, labels))
    return results


def step_verify(cfg: ExportConfig) -> list[V.Result]:
    """Score the whole test split with every format; write manifest.json and report.md."""
    from .archs import arch_section
    from .report import write_report

    _need(cfg.out, "model.keras", "vocab.txt")
    tok = load_tokenizer(cfg.out)
    kept = kept_targets(cfg.out)  # read before anything is rewritten
    imdb = _load_data(cfg)
    ids = tok.encode_batch(imdb.test_texts)  # [25000, maxlen] int32
    logger.info(f"scoring {len(ids)} test reviews with Keras (the reference)")
    keras_model = load_keras(cfg.out)
    labels = model_labels(cfg, keras_model)
    reference = V.probabilities(keras_model.predict(ids, batch_size=V.SCORE_BATCH, verbose=0))  # [n] or [n, N]
    results = _format_results(cfg.out, ids, reference, imdb.test_labels, V.edge_rows(tok))
    V.check_vocab_fits(results, cfg.out, tok.num_words)
    if not results:
        raise ExportError(f"{cfg.out}: no exported model to verify (run 'python -m export onnx' / 'tflite')")
    mp_results, mp_status = _mediapipe_results(cfg, imdb.test_texts, ids, labels)
    results += mp_results
    verification = {
        "dataset": {"name": "IMDB test" if labels == IMDB_LABELS else "test", "n": len(ids),
                    "source": training_metadata(cfg).get("test_data") or recorded_source(data_source(cfg))},
        "reference": {"file": "model.keras", "accuracy": V.accuracy(reference, imdb.test_labels)},
        "tolerances": V.tolerances(),
        "results": {r.name: {**r.figures, "passed": r.passed, "failures": r.failures} for r in results},
        "mediapipe": mp_status,
    }
    manifest = build_manifest(cfg.out, tok, training_metadata(cfg) or None, verification)
    manifest["arch"] = arch_section(keras_model, cfg.out)  # the architecture and what model.int8.tflite holds
    manifest.update(kept)
    write_manifest(cfg.out, manifest)
    write_report(cfg.out, manifest)
    return results


# the targets verify does not rebuild: manifest key -> (its directory, the check that it is current)
def kept_targets(out: str) -> dict:
    """The ``micro`` and ``web`` sections of the manifest verify is about to replace, for targets
    whose directory is still there and still made from this bundle's files; any other is dropped
    with a line saying how to rebuild it. The old manifest is not trusted: each is re-checked."""
    try:
        with open(os.path.join(out, MANIFEST), encoding="utf-8") as f:
            old = json.load(f)
        models = {name: old["files"][name]["sha256"] for name in old["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    kept = {}
    for key, why_stale in (("micro", _micro_stale), ("web", _web_stale)):
        section = old.get(key)
        if not isinstance(section, dict):
            continue
        why = why_stale(out, section, models)
        if why is None:
            kept[key] = section
        else:
            logger.info(f"dropping the manifest's {key} section: {why} (run 'python -m export {key} --out {out}')")
    return kept


def _changed(out: str, listed: dict) -> str | None:
    """The first of ``listed`` (name -> sha256) that is not the file of that name in ``out``."""
    for name, digest in listed.items():
        path = os.path.join(out, name)
        if not os.path.isfile(path) or sha256_file(path) != digest:
            return name
    return None


def _micro_stale(out: str, section: dict, models: dict) -> str | None:
    # micro/ is made from model.keras: it is current while model.keras and its own files are
    if (name := _changed(out, {"model.keras": models.get("model.keras")})) is not None:
        return f"{name} changed since micro/ was made"
    files = section.get("files") if isinstance(section.get("files"), dict) else {}
    listed = {os.path.join(str(section.get("dir", "micro")), n): e.get("sha256") for n, e in files.items()
              if isinstance(e, dict)}
    if not listed or (name := _changed(out, listed)) is not None:
        return f"{name or 'micro/'} is missing or modified"
    return None


def _web_stale(out: str, section: dict, models: dict) -> str | None:
    from runtime.bundle import Bundle, BundleError

    site = os.path.join(out, str(section.get("dir", "web")))
    try:
        copies = Bundle.load(site).manifest["files"]  # the site's own copies, sha256 checked
    except BundleError as e:
        return str(e).splitlines()[0]
    if (name := _changed(out, {n: e["sha256"] for n, e in copies.items()})) is not None:
        return f"web/{name} is not the bundle's {name}"
    return None


def step_micro(cfg: ExportConfig) -> list[V.Result]:
    """micro/: the TFLite Micro model and C sources, checked on the test set (export/micro.py)."""
    from .micro import export_micro

    _need(cfg.out, "model.keras", "vocab.txt")
    tok = load_tokenizer(cfg.out)
    imdb = _load_data(cfg)
    return export_micro(cfg.out, load_keras(cfg.out), tok, calibration_ids(cfg, tok), imdb.test_texts,
                        imdb.test_labels)


def _shipped_int8_mode(out: str) -> str | None:
    """What model.int8.tflite holds, as the tflite step recorded it (None: not recorded)."""
    from .archs import QUANTIZATION_FILE

    try:
        with open(os.path.join(out, QUANTIZATION_FILE), encoding="utf-8") as f:
            return json.load(f).get("mode")
    except (OSError, ValueError, AttributeError):
        return None


def _micro_applies(cfg: ExportConfig) -> bool:
    """export all makes micro/ for the full-integer tutorial model, where TFLite Micro is installed."""
    from .micro import tflm_available

    trained = training_metadata(cfg).get("config") or {}
    if not cfg.int8 or cfg.int8_io:
        return False
    if trained.get("arch", "tutorial") != "tutorial" or trained.get("mask_padding"):
        logger.info("skipping the micro step: it covers the tutorial architecture without --mask-padding")
        return False
    two_class = len(training_metadata(cfg).get("labels") or IMDB_LABELS) == 2  # N classes: see micro.micro_model
    if two_class and _shipped_int8_mode(cfg.out) not in (None, "int8"):  # checked against the full-integer model
        logger.info("skipping the micro step: model.int8.tflite ships dynamic-range for this model")
        return False
    if not tflm_available():
        logger.info("skipping the micro step: no tflite-micro here (its wheels are for Linux x86_64)")
        return False
    return True


def export_all(cfg: ExportConfig) -> list[V.Result]:
    """train, onnx, tflite, verify, then the micro and web targets. Into an existing bundle too: it ends with a
    fresh manifest
    (until then the old one is gone, so the directory never claims files it no longer has)."""
    cfg.train.force = True
    step_train(cfg)
    data_source(cfg)  # a model without a known data source fails now, not after two conversions
    step_onnx(cfg)
    step_tflite(cfg)
    results = step_verify(cfg)
    if _micro_applies(cfg):
        results += step_micro(cfg)
    if all(r.passed for r in results):  # no web site for a bundle that failed a check
        step_web(cfg, required=False)
    return results


def step_web(cfg: ExportConfig, required: bool = True) -> None:
    """web/: the verified bundle as a static site (export/web.py)."""
    from .web import step_web as export_web

    export_web(cfg, required)


# name -> the step's function; ``python -m export`` adds a sub-command per entry. A new target
# adds its function here and its options in export/__main__.py.
STEPS: dict[str, Callable[..., "list[V.Result] | None"]] = {
    "all": export_all, "train": step_train, "onnx": step_onnx, "tflite": step_tflite, "verify": step_verify,
    "micro": step_micro, "web": step_web,
}

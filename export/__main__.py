"""``python -m export``: turn a trained model into verified edge artifacts.

Steps (each works on one output directory, the bundle):
  all     train (unless --model is given), onnx, tflite, verify, web
  train   train the tutorial model into --out (or copy --model there)
  onnx    model.onnx and model.int8.onnx from model.keras
  tflite  model.tflite, model.dynamic.tflite, model.int8.tflite with MediaPipe metadata
  verify  score the IMDB test set with every format, write manifest.json and report.md
  web     the verified bundle as a static web site in --out/web (needs 'npm ci' in web/)
  package copy the runtime's files of a verified bundle to --dest (the bundled default model)
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from trainer.__main__ import add_train_arguments, config_from_args
from trainer.data import DataError
from trainer.train import TrainError

from runtime.backends import BackendError
from runtime.bundle import BundleError
from runtime.tokenizer import TokenizerError

from .package import DEFAULT_DEST, package_runtime_bundle
from .errors import ExportError
from .pipeline import ExportConfig, export_all, step_onnx, step_tflite, step_train, step_verify

# What a step raises for bad input or a failed conversion: shown as one "Error:" line, exit 2.
USER_ERRORS = (DataError, TrainError, ExportError, BundleError, BackendError, TokenizerError, OSError)

EPILOG = """examples:
  python -m export all --data ../shared/data/aclImdb_v1_labeled.tar.gz --out artifacts
  python -m export all --model artifacts/model.keras --out bundle --no-int8
  python -m export verify --out artifacts

exit codes: 0 every check passed, 1 a verification check failed, 2 bad input or a step failed
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for step in ("all", "train", "onnx", "tflite", "verify"):
        p = sub.add_parser(step, help=__doc__.split(f"  {step:<8}")[1].split("\n")[0])
        p.add_argument("--out", default="artifacts", help="output directory, the bundle (default %(default)s)")
        if step in ("all", "train"):
            p.add_argument("--model", help="an existing model.keras (vocab.txt beside it) instead of training; "
                                           "it is copied, never changed")
        add_train_arguments(p)  # --data and the training defaults: calibration and verify read the same split
        if step in ("all", "onnx", "tflite"):
            p.add_argument("--no-int8", dest="int8", action="store_false", help="skip the quantized variants")
        if step in ("all", "tflite"):
            p.add_argument("--int8-io", action="store_true",
                           help="int8 output tensor in model.int8.tflite (the runtime dequantizes it)")
            p.add_argument("--calibration-size", type=int, default=ExportConfig.calibration_size,
                           help="training reviews used to calibrate model.int8.tflite, at least 500 "
                                "(default %(default)s)")
        if step in ("all", "verify"):
            p.add_argument("--mediapipe-samples", type=int, default=ExportConfig.mediapipe_samples,
                           help="test reviews scored by MediaPipe's TextClassifier when it is installed; "
                                "0 skips (default %(default)s)")
    p = sub.add_parser("web", help="the verified bundle as a static web site in --out/web")
    p.add_argument("--out", default="artifacts", help="the verified bundle (default %(default)s)")
    p.add_argument("--node-modules", help="where onnxruntime-web and @mediapipe/tasks-text are installed "
                                          "(default: web/node_modules, after 'npm ci' in web/)")
    p = sub.add_parser("package", help="copy the runtime's files of a verified bundle to --dest")
    p.add_argument("--out", default="artifacts", help="the verified bundle to copy from (default %(default)s)")
    p.add_argument("--dest", default=DEFAULT_DEST, help="where the runtime bundle goes (default %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.step == "package":
        try:
            print(package_runtime_bundle(args.out, args.dest), file=sys.stderr)
        except (BundleError, ValueError) as e:
            print(f"Error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.step == "web":
        from .web import step_web

        try:
            step_web(ExportConfig(out=args.out, node_modules=args.node_modules))
        except USER_ERRORS as e:
            print(f"Error: {e}", file=sys.stderr)
            return 2
        return 0
    cfg = ExportConfig(out=args.out, train=config_from_args(args),
                       **{k: getattr(args, k) for k in ("model", "int8", "int8_io", "calibration_size",
                                                        "mediapipe_samples") if hasattr(args, k)})
    steps = {"all": export_all, "train": step_train, "onnx": step_onnx, "tflite": step_tflite,
             "verify": step_verify}
    try:
        results = steps[args.step](cfg)
    except USER_ERRORS as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    if results is None:
        return 0
    from .report import verification_table
    from runtime.bundle import Bundle

    print(verification_table(Bundle.load(cfg.out, verify=False).manifest))
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"FAILED {r.name}: {'; '.join(r.failures)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

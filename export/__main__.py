"""``python -m export``: turn a trained model into verified edge artifacts.

Steps (each works on one output directory, the bundle):
  all     train (unless --model is given), onnx, tflite, verify, micro, web
  train   train a model (--arch, on --data) into --out (or copy --model there)
  onnx    model.onnx and model.int8.onnx from model.keras
  tflite  model.tflite, model.dynamic.tflite, model.int8.tflite with MediaPipe metadata
  verify  score the test split with every format, write manifest.json and report.md
  micro   micro/: TFLite Micro model + C tokenizer and vocabulary, checked with TFLM (after verify)
  web     the verified bundle as a static web site in --out/web (needs 'npm ci' in web/)
  package copy the runtime's files of a verified bundle to --dest (the bundled default model)
"""
from __future__ import annotations

import argparse
import os
import sys

from runtime.errors import ArgumentParser, run_cli
from trainer.cli import add_train_arguments, add_verbose_argument, config_from_args, log_to_stderr
from trainer.data import RECORDED_DEFAULT, add_data_argument
from trainer.noise import EXPORT_MODULES, check_extra, quiet_native

from .package import package_runtime_bundle
from .pipeline import STEPS, ExportConfig

EPILOG = """examples:
  python -m export all --data ../shared/data/aclImdb_v1_labeled.tar.gz --out artifacts
  python -m export all --model artifacts/model.keras --out bundle --no-int8
  python -m export verify --out artifacts

tflite and verify read the IMDB data the model was trained on (recorded in metrics.json);
--data or $IMDB_DATA override it.

exit codes: 0 every check passed, 1 a conversion or verification check failed,
2 bad input, options or a missing extra
"""


def _model(p):
    p.add_argument("--model", help="an existing model.keras (vocab.txt beside it) instead of training; "
                                   "it is copied, never changed")


def _data(p):
    add_data_argument(p, default=RECORDED_DEFAULT)  # calibration and verify read the training data


def _int8(p):
    p.add_argument("--no-int8", dest="int8", action="store_false", help="skip the quantized variants")


def _tflite(p):
    p.add_argument("--int8-io", action="store_true",
                   help="int8 output tensor in model.int8.tflite (the runtime dequantizes it)")
    _calibration(p)


def _calibration(p):
    p.add_argument("--calibration-size", type=int, default=ExportConfig.calibration_size,
                   help="training reviews used to calibrate model.int8.tflite, at least 500 (default %(default)s)")


def _node_modules(p):
    p.add_argument("--node-modules", help="where onnxruntime-web and @mediapipe/tasks-text are installed "
                                          "(default: web/node_modules, after 'npm ci' in web/)")


def _mediapipe(p):
    p.add_argument("--mediapipe-samples", type=int, default=ExportConfig.mediapipe_samples,
                   help="test reviews scored by MediaPipe's TextClassifier when it is installed; "
                        "0 skips (default %(default)s)")


# Each step's options: only what it uses (the tokenizer's maxlen and vocabulary come from the
# trainer's tokenizer.json, never from an option of a later step).
STEP_OPTIONS = {
    "all": (_model, add_train_arguments, _int8, _tflite, _mediapipe),
    "train": (_model, add_train_arguments),
    "onnx": (_int8,),
    "tflite": (_data, _int8, _tflite),
    "verify": (_data, _mediapipe),
    "micro": (_data, _calibration),
    "web": (_node_modules,),
}
CONFIG_FIELDS = ("model", "int8", "int8_io", "calibration_size", "mediapipe_samples", "node_modules")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m export", description=__doc__.split("\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for step, adders in STEP_OPTIONS.items():
        p = sub.add_parser(step, help=__doc__.split(f"  {step:<8}")[1].split("\n")[0])
        p.add_argument("--out", default="artifacts", help="output directory, the bundle (default %(default)s)")
        for add in adders:
            add(p)
        add_verbose_argument(p)
    p = sub.add_parser("package", help="copy the runtime's files of a verified bundle to --dest")
    p.add_argument("--out", default="artifacts", help="the verified bundle to copy from (default %(default)s)")
    p.add_argument("--dest", required=True,
                   help="where the runtime bundle goes (the checkout's bundled model is runtime/default_model)")
    return parser


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr()
    if args.step == "package":
        print(package_runtime_bundle(args.out, args.dest), file=sys.stderr)
        return 0
    check_extra(EXPORT_MODULES)  # before anything else: one line naming the [train] extra
    train = config_from_args(args)
    cfg = ExportConfig(out=args.out, train=train, **{k: getattr(args, k) for k in CONFIG_FIELDS if hasattr(args, k)})
    with quiet_native(args.verbose):  # validate() may import Keras, which logs at import
        if args.step in ("all", "train") and getattr(args, "model", None) is None:
            train.validate()
        results = STEPS[args.step](cfg)
    return 0 if results is None else report(cfg.out, results)


def report(out: str, results) -> int:
    """The verification table on stdout; failures and one closing line naming the outputs on stderr."""
    from runtime.bundle import MANIFEST, Bundle

    from .report import verification_table

    print(verification_table(Bundle.load(out, verify=False).manifest))
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"FAILED {r.name}: {'; '.join(r.failures)}", file=sys.stderr)
    outputs = f"{os.path.join(out, 'report.md')} and {os.path.join(out, MANIFEST)}"
    if failed:
        print(f"{len(failed)} of {len(results)} checks failed; wrote {outputs}", file=sys.stderr)
        return 1
    print(f"all {len(results)} checks passed; wrote {outputs}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Full-precision scores of samples/reviews.txt from the installed runtime, as JSON on stdout.

Used by .ci/arm64 on both sides (x86 host, emulated arm64) so their numbers can be compared
exactly; the CLI's csv keeps 6 decimals only. Usage (from samples/, so that the installed
package is imported, not the checkout):

    python ../.ci/arm64-scores.py reviews.txt onnx tflite tflite-deterministic
"""
import importlib.util
import json
import platform
import sys

SETTINGS = {"onnx": {"backend": "onnx"}, "tflite": {"backend": "tflite"},
            "tflite-deterministic": {"backend": "tflite", "deterministic": True}}


def main(path: str, names: list[str]) -> None:
    import runtime

    with open(path, encoding="utf-8") as f:
        texts = f.read().splitlines()
    scores = {name: [float(p) for p in runtime.Classifier.load(**SETTINGS[name]).predict(texts)]
              for name in names}
    assert "site-packages" in runtime.__file__, f"imported the checkout, not the install: {runtime.__file__}"
    assert "tensorflow" not in sys.modules, "the runtime imported TensorFlow"
    json.dump({"machine": platform.machine(), "tensorflow_installed": importlib.util.find_spec("tensorflow")
               is not None, "scores": scores}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

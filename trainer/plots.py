"""The tutorial's two plots: training vs validation loss and accuracy per epoch."""
from __future__ import annotations

import io
import os

from runtime.files import atomic_write_bytes


def plot_history(history: dict, out_dir: str) -> list[str]:
    """Write ``loss.png`` and ``accuracy.png``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # no screen on CI or servers
    import matplotlib.pyplot as plt

    paths = []
    for metric, title in (("loss", "Training and validation loss"), ("accuracy", "Training and validation accuracy")):
        epochs = range(1, len(history[metric]) + 1)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(epochs, history[metric], "bo", label=f"Training {metric}")
        ax.plot(epochs, history[f"val_{metric}"], "b", label=f"Validation {metric}")
        ax.set(title=title, xlabel="Epochs", ylabel=metric.capitalize())
        ax.legend()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        path = os.path.join(out_dir, f"{metric}.png")
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths

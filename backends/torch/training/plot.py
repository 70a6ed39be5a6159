"""Loss and accuracy curves of a run (metrics.jsonl -> PNG), written atomically."""

from __future__ import annotations

from pathlib import Path

from mnc.io.atomic import atomic_path
from mnc.io.outputs import refuse_output_over_inputs
from mnc_backends.torch.training.rundir import METRICS, read_metrics


def plot_run(run: str | Path, output: str | Path | None = None) -> Path:
    """Two panels: train/val loss, and train top-1 with val top-1/top-5, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    folder = Path(run)
    entries = read_metrics(folder)
    if not entries:
        raise_empty(folder)
    target = Path(output) if output else (folder if folder.is_dir() else folder.parent) / \
        "curves.png"
    refuse_output_over_inputs(target, [folder / METRICS if folder.is_dir() else folder])
    epochs = [entry["epoch"] for entry in entries]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_axis.plot(epochs, [entry.get(key) for entry in entries], marker="o", label=label)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    for key, label in (("train_top1", "train top-1"), ("val_top1", "validation top-1"),
                       ("val_top5", "validation top-5")):
        accuracy_axis.plot(epochs, [100 * entry.get(key, 0.0) for entry in entries],
                           marker="o", label=label)
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(0, 100))
    for axis in (loss_axis, accuracy_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(folder.name)
    with atomic_path(target) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    return target


def raise_empty(folder: Path) -> None:
    from mnc.errors import UserFileError

    raise UserFileError(f"{folder}: metrics.jsonl has no finished epoch yet; nothing to plot")

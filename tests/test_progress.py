"""Progress reaches whoever watches: bars on a terminal or in a Jupyter kernel, a line every few
seconds in a log file."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import pytest
import tqdm.auto  # noqa: F401 - decided once per process; imported before a kernel is faked

from mnc import progress


@pytest.fixture
def in_a_notebook(monkeypatch):
    """What a Jupyter kernel looks like to library code: stderr is no terminal, IPython runs
    a shell whose config has an IPKernelApp section."""
    shell = SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setattr(sys, "stderr", io.StringIO())


@pytest.fixture
def in_a_log_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    return log


def test_a_log_file_gets_no_bars(in_a_log_file):
    assert not progress.interactive() and not progress.wanted(None)
    assert progress.wanted(True)


def test_a_log_file_gets_a_line_every_few_seconds_with_rate_and_time_left(
    in_a_log_file, monkeypatch
):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    bar = progress.bar(total=1000, desc="epoch 1/2", unit="img", file=in_a_log_file)
    assert isinstance(bar, progress.LogBar)
    bar.update(100)  # before the first interval: nothing yet
    assert in_a_log_file.getvalue() == ""
    clock[0] += progress.LOG_INTERVAL_S
    bar.update(150)
    clock[0] += 1.0
    bar.update(50)  # within the interval after a line: no new line
    clock[0] += progress.LOG_INTERVAL_S
    bar.update(100)
    bar.close()
    lines = in_a_log_file.getvalue().splitlines()
    assert lines[0] == "epoch 1/2: 250/1000 img (25%), 50 img/s, 15 s left"
    assert lines[1].startswith("epoch 1/2: 400/1000 img (40%), 36.4 img/s, 16 s left")
    # closed before the total: an interrupted run, not a finished one
    assert lines[2].startswith("epoch 1/2: 400/1000 img (40%)") and "stopped after 11 s" in lines[2]
    assert len(lines) == 3


def test_work_shorter_than_the_interval_prints_nothing_and_off_means_off(in_a_log_file):
    with progress.bar(total=10, desc="quick", file=in_a_log_file) as bar:
        bar.update(10)
    assert list(progress.bar(range(3), desc="items", file=in_a_log_file)) == [0, 1, 2]
    assert progress.bar(total=10, show=False, file=in_a_log_file).disable
    assert in_a_log_file.getvalue() == ""


def test_a_notebook_without_ipywidgets_gets_text_bars_and_no_warning(
    in_a_notebook, monkeypatch, recwarn
):
    import importlib.util

    import tqdm

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "ipywidgets" else real_find_spec(name, *rest),
    )
    bar = progress.bar(total=5, desc="epoch 1/1")
    bar.update(5)
    bar.close()
    assert type(bar) is tqdm.std.tqdm
    assert not [w for w in recwarn if "IProgress" in str(w.message)]


def test_a_notebook_gets_bars_from_every_part(in_a_notebook):
    assert progress.interactive() and progress.wanted(None) and not progress.wanted(False)
    pytest.importorskip("torch")
    from mnc_backends.torch.training import progress as training_progress

    bar = training_progress.bar(100, "epoch 1/1", enabled=None)
    assert not bar.disable
    bar.close()


def test_the_neural_comparison_bar_shows_in_a_notebook(in_a_notebook, monkeypatch):
    pytest.importorskip("torch")
    from mnc.cli.neuro_options import progress_bar

    made: list[dict] = []
    real_bar = progress.bar

    def spy(*args, **options):
        made.append(options)
        return real_bar(*args, **options)

    monkeypatch.setattr(progress, "bar", spy)
    update = progress_bar("features")
    update(0, 4)
    update(4, 4)
    assert len(made) == 1 and made[0].get("show") is None and made[0]["total"] == 4


def test_the_epoch_line_says_how_long_the_run_has_left():
    pytest.importorskip("torch")
    from mnc_backends.torch.training.progress import epoch_line

    entry = {
        "epoch": 2,
        "train_loss": 1.0,
        "train_top1": 0.5,
        "val_loss": 1.0,
        "val_top1": 0.5,
        "val_top5": 0.9,
        "lr": 0.01,
        "train_images_per_s": 100.0,
        "data_wait_fraction": 0.0,
        "epoch_seconds": 90.0,
    }
    assert epoch_line(entry, epochs=90).endswith("(about 2 h 12 min left for 88 more epochs)")
    assert "left" not in epoch_line({**entry, "epoch": 90}, epochs=90)

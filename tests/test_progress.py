"""Progress bars show where someone watches: a terminal or a Jupyter kernel, not a log file."""

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


def test_a_log_file_gets_no_bars(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress.interactive() and not progress.wanted(None)
    assert progress.wanted(True)


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
    assert len(made) == 1 and made[0]["disable"] is False and made[0]["total"] == 4

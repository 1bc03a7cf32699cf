import base64
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.notebook import LivePlot
from rnnlab.train import EpochStats

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "concise_rnn.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"


def stats(epoch, ppl, val=None):
    return EpochStats(epoch, 0.0, ppl, 1000.0, 0.1, 1.0, None, val)


def test_live_plot_draws_every_n_epochs_and_once_at_close(monkeypatch):
    drawn = []
    plot = LivePlot(every=3)
    monkeypatch.setattr(plot, "draw", lambda: drawn.append(len(plot.history)) or
                        setattr(plot, "_drawn", len(plot.history)))
    for epoch in range(1, 8):
        plot(stats(epoch, 10.0 / epoch))
    plot.close()
    plot.close()  # nothing new to draw
    assert drawn == [3, 6, 7]


def test_live_plot_png_has_train_and_validation_curves():
    plot = LivePlot()
    for epoch in range(1, 4):
        plot.history.append(stats(epoch, 9.0 - epoch))
    without_val = plot.png()
    plot.history.append(stats(4, 5.0, val=7.0))
    with_val = plot.png()
    assert without_val.startswith(PNG) and with_val.startswith(PNG)
    assert with_val != without_val


def test_live_plot_updates_one_display(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def fake_display(obj, display_id=None):
        shown.append((obj, display_id))
        return Handle()

    monkeypatch.setattr(display, "display", fake_display)
    plot = LivePlot()
    for epoch in range(1, 4):
        plot(stats(epoch, 5.0))
    assert len(shown) == 1 and shown[0][1] is True and len(updates) == 2
    assert updates[-1].data.startswith(PNG)


def test_live_plot_without_ipython_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)
    with pytest.raises(RnnlabError, match="pip install ipykernel"):
        LivePlot()(stats(1, 3.0))


def test_the_library_does_not_import_ipython():
    code = "import sys, rnnlab, rnnlab.notebook; assert 'IPython' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_concise_rnn_notebook_executes_headless(monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("RNNLAB_EPOCHS", "2")
    monkeypatch.setenv("RNNLAB_HIDDEN_SIZE", "16")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "parameters" in nb.cells[2].metadata.get("tags", [])
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "10000 tokens, vocabulary of 28" in text
    assert text.count("perplexity ") == 2 and "time traveller" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # one live plot per training run, updated in place
    assert base64.b64decode(images[0]["data"]["image/png"]).startswith(PNG)

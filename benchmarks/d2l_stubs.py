"""Import ``d2l.torch`` (release 0.17.6) without its notebook-only dependencies.

``d2l/torch.py`` imports torchvision, IPython and matplotlib_inline when it loads. None of
them is used by the code this benchmark runs (``load_data_time_machine``, ``RNNModel``,
``train_ch8``), and the torchvision on PyPI for this torch does not import, so they are
replaced by empty modules here. ``d2l.Animator`` (a live plot inside ``train_ch8``) becomes
a no-op. Nothing that touches data, the model, the loss, clipping or the optimizer is
changed.
"""

from __future__ import annotations

import sys
import types


def _empty(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


class _NoAnimator:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def add(self, *args: object, **kwargs: object) -> None:
        pass


def load_d2l() -> types.ModuleType:
    """``d2l.torch`` with the stubs above in place."""
    import matplotlib

    matplotlib.use("Agg")
    transforms = _empty("torchvision.transforms")
    _empty("torchvision", transforms=transforms)
    _empty("IPython.display")
    _empty("IPython", display=sys.modules["IPython.display"])
    backend_inline = _empty("matplotlib_inline.backend_inline", set_matplotlib_formats=lambda *a: None)
    _empty("matplotlib_inline", backend_inline=backend_inline)
    from d2l import torch as d2l

    d2l.Animator = _NoAnimator
    return d2l

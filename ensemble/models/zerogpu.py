"""Hugging Face ZeroGPU: a GPU is attached only while a function decorated with `spaces.GPU` runs.

    @gpu(duration=120)
    def answer(...): ...

Off Spaces (no `spaces` package) the decorator returns the function unchanged.
"""

from __future__ import annotations

import importlib.util


def gpu(fn=None, *, duration: int = 120):
    """`spaces.GPU(duration=...)` when the `spaces` package is importable, else the identity. Works bare
    (`@gpu`) and with arguments (`@gpu(duration=60)`)."""
    if importlib.util.find_spec("spaces") is None:
        return fn if fn is not None else (lambda f: f)
    import spaces

    wrap = spaces.GPU(duration=duration)
    return wrap(fn) if fn is not None else wrap

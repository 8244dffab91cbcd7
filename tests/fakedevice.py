"""Devices on a CPU-only machine, for checking that a method never mixes them.

`Placed(t, "cuda:1")` is a CPU tensor that says it lives on cuda:1. Every torch op on Placed tensors checks
that all of its tensor arguments with a dimension sit on one device, as CUDA does ("Expected all tensors to
be on the same device"), and its results live there too. `.to(device)`, `.cpu()` and `.cuda()` move a tensor
between pretend devices without copying. Plain tensors (made inside an op, autograd's gradients) match any
device: only tensors whose place was set explicitly are checked, so a test marks the inputs it cares about.
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten, tree_map


class Placed(torch.Tensor):
    place: torch.device

    @staticmethod
    def __new__(cls, data: torch.Tensor, place):
        out = torch.Tensor._make_subclass(cls, data, data.requires_grad)  # same storage, a leaf
        out.place = torch.device(place)
        return out

    @property
    def device(self) -> torch.device:
        return self.place

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda):
            return _move(func, args, kwargs)
        with torch._C.DisableTorchFunctionSubclass():
            leaves, _ = tree_flatten((args, kwargs))
            placed = [a for a in leaves if isinstance(a, Placed)]
            places = {a.place for a in placed if a.dim() > 0}
            if len(places) > 1:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found "
                                   f"{sorted(map(str, places))} in {getattr(func, '__name__', func)}")
            out = func(*args, **kwargs)
            if getattr(func, "__name__", "") in ("__get__", "__set__"):
                return out
            place = next(iter(places), None) or next((a.place for a in placed), None)
            return tree_map(lambda o: wrap(o, place), out)


def wrap(o, place):
    """An op's result lives where its inputs did. Results in an autograd graph stay plain (wrapping would
    cut them off the graph), so they match any device from there on."""
    if place is None or not isinstance(o, torch.Tensor) or o.requires_grad:
        return o
    return Placed(o, place)


def _move(func, args, kwargs) -> torch.Tensor:
    """Tensor.to / .cpu / .cuda: change the place and (for .to) the dtype; the data stays on the CPU."""
    self, rest = args[0], list(args[1:])
    target, dtype = self.place if isinstance(self, Placed) else torch.device("cpu"), None
    if func is torch.Tensor.cpu:
        target = torch.device("cpu")
    elif func is torch.Tensor.cuda:
        target = torch.device("cuda", rest[0] if rest else 0)
    for a in [*rest, kwargs.get("device"), kwargs.get("dtype")]:
        if isinstance(a, str | torch.device):
            target = torch.device(a)
        elif isinstance(a, torch.dtype):
            dtype = a
        elif isinstance(a, torch.Tensor):
            target, dtype = getattr(a, "place", torch.device("cpu")), a.dtype
    with torch._C.DisableTorchFunctionSubclass():
        data = torch.Tensor.to(self, dtype) if dtype is not None else self
    return data if data.requires_grad else Placed(data, target)

"""Hugging Face ZeroGPU: a GPU is attached only while a function decorated with `spaces.GPU` runs.

    @gpu(duration=answer_duration)           # an int, or a callable taking the function's own arguments
    def answer(config, messages, slot, solo): ...

How the `spaces` package (0.51) runs it, and what follows for this app:
- The decorated function runs in a worker process forked from the main one; its arguments are pickled into
  that worker and each yielded value is pickled back. So only plain data crosses: the config, the messages,
  a stop-flag slot number, a bool. No lambda, no lock, no session.
- The worker is forked once and reused while idle, so it holds what the main process had loaded *before the
  fork*: models are loaded and placed at start-up (`.to("cuda")` in the main process is what ZeroGPU's CUDA
  emulation expects), and nothing new is loaded afterwards (app.Models refuses it).
- Stop: `StopFlags` are bytes in anonymous shared memory made before any fork, so a flag the main process sets
  is seen by the worker, which checks it between tokens (the engine's should_stop). Closing the main side's
  generator also stops the worker at its next yield (spaces sets its stop event on GeneratorExit).
- `torch.cuda.mem_get_info` is not emulated: placement plans for `emulated_gpus()` instead.
Off Spaces (no `spaces` package, or SPACES_ZERO_GPU unset) `spaces.GPU` returns the function unchanged.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import threading

ZERO_GPU_BYTES = 74_625_056_768  # spaces.config's default ZEROGPU_CUDA_TOTAL_MEMORY (an H200 MIG 3g.71gb slice)
STARTUP_S = 20.0  # alignment of a new member set and the prompt's prefill (a guess: not measured on ZeroGPU)
STEP_S = 0.06  # one forward of one member for one token, with the fusion around it (a guess, as above)
MIN_S, MAX_S = 30, 300


def on_zero_gpu() -> bool:
    """As `spaces.config` decides it: SPACES_ZERO_GPU is 1/t/true."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def emulated_gpus() -> list[int]:
    """Bytes of the one GPU a ZeroGPU worker gets (what placement plans for at start-up)."""
    return [int(os.environ.get("ZEROGPU_CUDA_TOTAL_MEMORY", ZERO_GPU_BYTES))]


def gpu(fn=None, *, duration=120):
    """`spaces.GPU(duration=...)` when the `spaces` package is importable, else the identity. Works bare
    (`@gpu`) and with arguments (`@gpu(duration=60)`, `@gpu(duration=callable)`)."""
    if importlib.util.find_spec("spaces") is None:
        return fn if fn is not None else (lambda f: f)
    import spaces

    wrap = spaces.GPU(duration=duration)
    return wrap(fn) if fn is not None else wrap


def answer_duration(members: int, max_new_tokens: int, solo: bool, limit_s: float | None = None) -> int:
    """Seconds of GPU to ask for: each new token is one forward per member for the fused answer, and one
    more per member for the solo answers; clamped to [MIN_S, MAX_S] and to the answer's own time limit."""
    steps = max_new_tokens * members * (2 if solo else 1)
    seconds = STARTUP_S + STEP_S * steps
    if limit_s is not None:
        seconds = min(seconds, limit_s + STARTUP_S)
    return int(min(max(seconds, MIN_S), MAX_S))


class StopFlags:
    """Stop flags that a forked process sees: one byte per running answer in shared memory.

        slot = flags.acquire(); ...; flags.set(slot)   # main process
        flags.is_set(slot)                              # the worker, between tokens
        flags.release(slot)
    """

    def __init__(self, slots: int = 64):
        self.bytes = multiprocessing.get_context("fork").RawArray("b", slots)  # anonymous mmap: fork-shared
        self.free = list(range(slots))
        self.lock = threading.Lock()

    def acquire(self) -> int:
        with self.lock:
            if not self.free:
                raise RuntimeError("more answers running at once than stop flags")
            slot = self.free.pop()
        self.bytes[slot] = 0
        return slot

    def set(self, slot: int) -> None:
        self.bytes[slot] = 1

    def is_set(self, slot: int) -> bool:
        return bool(self.bytes[slot])

    def release(self, slot: int) -> None:
        with self.lock:
            self.free.append(slot)

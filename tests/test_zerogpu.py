"""ZeroGPU as the `spaces` package runs it, checked without ZeroGPU hardware: the @spaces.GPU function's
arguments and results pickle; a forked worker (as spaces forks one) answers from what was loaded before the
fork and stops on the shared flag between tokens; the duration callable takes the function's own arguments;
under SPACES_ZERO_GPU the models load at start-up, placement never asks CUDA for free memory, and nothing
new loads afterwards."""

import inspect
import multiprocessing
import pickle

import pytest
import spaces  # imported now, with SPACES_ZERO_GPU unset: tests that set it must not patch torch
import torch

import app
from app import Models
from ensemble.decode.events import FUSED, Finished, Piece
from ensemble.errors import LoadError
from ensemble.models import zerogpu
from ensemble.models.zerogpu import MAX_S, MIN_S, StopFlags, answer_duration, gpu
from tests.browser.server import tiny_presets
from ui.operator import HUB_PRESET

MESSAGES = [{"role": "user", "content": "Say something long."}]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def loaded(fixture_dirs):
    presets = tiny_presets(fixture_dirs, max_new_tokens=12)
    models = Models(zero_gpu=False)
    models.load(presets["tiny-pair"], lambda *a: None)
    return models, presets


def test_arguments_and_events_pickle(loaded):
    models, presets = loaded
    slot = models.flags.acquire()
    args = (presets["tiny-pair"], MESSAGES, slot, True)
    assert pickle.loads(pickle.dumps(args)) == args  # what spaces puts on its argument queue
    events = list(models._stream(*args))
    models.flags.release(slot)
    assert any(isinstance(e, Piece) for e in events) and {e.stream for e in events if isinstance(e, Finished)} == {
        FUSED, 0, 1}
    assert [pickle.loads(pickle.dumps(e)) for e in events] == events  # what comes back on its result queue


def worker(models, arg_bytes, results):
    """What spaces' thread_wrapper does in its forked process: unpickle the arguments, iterate, pickle back.
    One CPU thread: a forked child must not enter the parent's OpenMP pool (on ZeroGPU the work is on CUDA)."""
    torch.set_num_threads(1)
    for event in models._stream(*pickle.loads(arg_bytes)):
        results.put(pickle.dumps(event))
    results.put(None)


def test_a_forked_worker_stops_on_the_shared_flag(loaded):
    models, presets = loaded
    config = presets["tiny-pair"]
    slot = models.flags.acquire()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(target=worker, args=(models, pickle.dumps((config, MESSAGES, slot, False)), results))
    process.start()
    events = [pickle.loads(results.get(timeout=120))]
    models.flags.set(slot)  # the main process sees Stop; the worker must see it between tokens
    while (item := results.get(timeout=120)) is not None:
        events.append(pickle.loads(item))
    process.join(30)
    models.flags.release(slot)
    finished = [e for e in events if isinstance(e, Finished)]
    assert finished and all(e.reason == "cancelled" for e in finished)
    assert sum(isinstance(e, Piece) and e.stream == FUSED for e in events) < config.sampling.max_new_tokens


def test_stop_through_models_stream(loaded):
    models, presets = loaded
    events = list(models.stream(presets["tiny-pair"], MESSAGES, lambda: True, solo=False))
    assert {e.reason for e in events if isinstance(e, Finished)} == {"cancelled"}
    assert sum(isinstance(e, Piece) for e in events) <= 2  # at most the first token of each stream
    assert models.flags.free and not any(models.busy.values())  # slot and busy mark given back


def test_stop_flags_are_seen_across_fork():
    flags = StopFlags(4)
    slot = flags.acquire()
    context = multiprocessing.get_context("fork")
    seen = context.Queue()
    child = context.Process(target=lambda: seen.put(flags.is_set(slot)))
    flags.set(slot)
    child.start()
    assert seen.get(timeout=30) is True
    child.join(10)
    flags.release(slot)
    assert flags.acquire() == slot and not flags.is_set(slot)  # reused and cleared


def test_duration_callable_takes_the_functions_arguments(loaded):
    models, presets = loaded
    config = presets["tiny"]
    args = (config, MESSAGES, 0, True)
    inspect.signature(models.duration).bind(*args)  # spaces calls duration(*args, **kwargs) of the task
    inspect.signature(models._stream).bind(*args)
    assert MIN_S <= models.duration(*args) <= MAX_S
    assert answer_duration(2, 512, True) > answer_duration(2, 64, True) > answer_duration(2, 8, False) >= MIN_S
    assert answer_duration(4, 512, True) >= answer_duration(2, 512, True)
    assert answer_duration(4, 4096, True) == MAX_S and answer_duration(2, 512, True, limit_s=20) <= 40


def test_gpu_is_the_identity_off_zero_gpu():
    def f(a):
        return a

    assert spaces.GPU(duration=lambda a: 5)(f) is f and gpu(f, duration=lambda a: 5) is f


def test_zero_gpu_loads_at_start_up_and_then_only_builds(monkeypatch, fixture_dirs):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: pytest.fail("not emulated on ZeroGPU"))
    presets = tiny_presets(fixture_dirs, max_new_tokens=4)
    if torch.cuda.is_available():
        pytest.skip("checks the CPU stand-in; a CUDA machine would move the weights")
    models = Models()
    assert models.zero_gpu and models.pool.gpus == zerogpu.emulated_gpus() and models.pool.move_to == "cuda"
    models.pool.move_to = None  # no CUDA here to move to (spaces emulates it on a Space)
    models.start_up([presets["tiny-pair"]], lambda *a: None)
    assert models.frozen and len(models.models) == 2
    third = presets["tiny"]  # one more member, not loaded at start-up
    with pytest.raises(LoadError, match=r"only with the models it loaded at start-up .*not loaded: uni-gemma3"):
        models.load(third, lambda *a: None)
    pair = third.__class__(members=third.members[:2], method="unite", sampling=third.sampling)
    assert models.load(pair, lambda *a: None) is None  # allowed; aligned in the GPU worker, not here
    assert models.load(pair, lambda *a: None, build=True) is not None


def test_make_app_takes_the_start_up_path_on_zero_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("SPACE_ID", "someone/ensemble-chat")
    monkeypatch.setenv("ENSEMBLE_CACHE", str(tmp_path / "no-offline-models"))
    started = []
    monkeypatch.setattr(Models, "start_up", lambda self, configs, progress: started.append(list(configs)))
    monkeypatch.setattr(Models, "load", lambda *a, **k: pytest.fail("loaded lazily"))
    app.make_app(app.parse_args(["--data-dir", str(tmp_path)]))
    (configs,) = started
    hub = app.load_preset(HUB_PRESET)
    assert configs[0] == hub and all(m.model.count("/") == 1 for c in configs for m in c.members)

"""The Ensemble Chat web app: `python app.py [--host H] [--port P] [--preset NAME] [--data-dir D]`.

argparse -> presets -> Models (all model loading) -> ui.build_app -> launch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from ensemble.config import EnsembleConfig, SamplingConfig
from ensemble.presets import list_presets, load_preset


class Models:
    """Every model load goes through here: specs -> `ModelPool` (placement before download, weights kept
    for the process and shared by sessions) -> an Ensemble (alignment built once) per member set. Keeps the
    `keep` most recent ensembles; members no kept ensemble uses are unloaded."""

    def __init__(self, keep: int = 3, pool=None):
        from ensemble.models.pool import ModelPool
        from ensemble.models.zerogpu import gpu

        self.keep, self.lock = keep, threading.Lock()
        self.pool = pool or ModelPool()
        self.ensembles: OrderedDict[str, object] = OrderedDict()  # key -> Ensemble, least recently used first
        self.stream = gpu(self._stream)

    @property
    def models(self) -> dict:
        return self.pool.models  # load key -> LoadedModel

    @staticmethod
    def key(config: EnsembleConfig) -> str:
        return repr(dataclasses.replace(config, sampling=SamplingConfig()))

    def load(self, config: EnsembleConfig, progress: Callable[[float, str], None]):
        """The Ensemble for `config`, loading what is missing; progress(fraction, message) along the way."""
        from ensemble.decode.engine import Ensemble
        from ensemble.models.loading import load_key

        with self.lock:
            if self.key(config) in self.ensembles:
                self.ensembles.move_to_end(self.key(config))
                return self.ensembles[self.key(config)]
            share = len(config.members) / (len(config.members) + 1)  # the last part is the alignment
            models = self.pool.load(config.members, lambda p: progress(p.fraction * share, p.message))
            progress(share, "aligning the vocabularies")
            ensemble = self.ensembles[self.key(config)] = Ensemble(models, config)
            while len(self.ensembles) > self.keep:
                self.ensembles.popitem(last=False)
            used = {load_key(m.spec) for e in self.ensembles.values() for m in e.models}
            for spec in [s for s in self.pool.loaded() if load_key(s) not in used]:
                self.pool.unload(spec)
            progress(1.0, "ready")
            return ensemble

    def _stream(self, config: EnsembleConfig, messages: list[dict], should_stop: Callable[[], bool],
                solo: bool = True):
        ensemble = self.load(config, lambda *_: None)  # loaded by now, unless evicted meanwhile
        yield from ensemble.stream(messages, solo=solo, sampling=config.sampling, should_stop=should_stop)


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--preset", default=env("ENSEMBLE_PRESET", "offline-default"), help="the picker's default")
    p.add_argument("--data-dir", default=env("ENSEMBLE_DATA_DIR"), help="shared comparisons (SQLite); "
                   "default /data/ensemble-chat when /data exists, else ~/.local/share/ensemble-chat")
    p.add_argument("--public-url", default=env("ENSEMBLE_PUBLIC_URL", ""), help="base of share links")
    p.add_argument("--queue-size", type=int, default=16, help="waiting requests beyond this are refused")
    p.add_argument("--concurrency", type=int, default=1, help="loads/decodes on the device at once")
    p.add_argument("--max-prompt-chars", type=int, default=4000)
    p.add_argument("--max-turns", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=512, help="cap on the decoding slider")
    p.add_argument("--answer-seconds", type=float, default=180.0, help="an answer stops after this long")
    p.add_argument("--updates-per-second", type=float, default=15.0, help="streaming refresh rate in the browser")
    p.add_argument("--preload", action="store_true", help="load the default preset before serving")
    p.add_argument("--allow-remote", action="store_true", default=env("ENSEMBLE_ALLOW_REMOTE", "") == "1",
                   help="let the picker take members served at http://HOST:PORT (docs/remote.md)")
    return p.parse_args(argv)


def make_app(args: argparse.Namespace, models: Models):
    from ensemble.align import METHODS
    from ui import Context, Limits, build_app
    from ui.store import ComparisonStore, default_data_dir

    presets = {name: load_preset(name) for name in list_presets()}
    limits = Limits(args.max_prompt_chars, args.max_turns, args.max_new_tokens, args.queue_size, args.answer_seconds,
                    args.updates_per_second, allow_remote=args.allow_remote)
    store = ComparisonStore(args.data_dir or default_data_dir())
    ctx = Context(models, store, presets, sorted(METHODS), limits, args.preset, args.public_url)
    choices = sorted({m.model for p in presets.values() for m in p.members})
    if args.preload:
        models.load(presets[args.preset], lambda f, msg: print(f"[{f:.0%}] {msg}", flush=True))
    return build_app(ctx, choices, args.concurrency)


def main(argv=None) -> None:
    args = parse_args(argv)
    from ui.layout import launch_options

    demo = make_app(args, Models())
    demo.launch(server_name=args.host, server_port=args.port, **launch_options())


if __name__ == "__main__":
    main()

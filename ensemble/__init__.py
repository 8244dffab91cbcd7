"""Ensemble Chat: decode-time ensembles of causal LMs with different tokenizers.

    from ensemble import EnsembleConfig, MemberSpec, generate_stream, load_models

    config = EnsembleConfig(members=(MemberSpec("offline:smollm2-135m-instruct"),
                                     MemberSpec("offline:gemma-3-270m")), method="unite")
    models = load_models(config.members)
    for event in generate_stream(models, config, [{"role": "user", "content": "Hi!"}], solo=True):
        print(event)

Names resolve lazily, so `import ensemble.decode.events` (what the UI uses) never imports torch.
"""

from importlib import import_module

_EXPORTS = {
    "EnsembleConfig": "config", "MemberSpec": "config", "SamplingConfig": "config",
    "EnsembleError": "errors", "ConfigError": "errors", "LoadError": "errors", "PromptError": "errors",
    "Started": "decode.events", "Piece": "decode.events", "MemberFailed": "decode.events",
    "Finished": "decode.events", "Stats": "decode.events", "FUSED": "decode.events",
    "load_preset": "presets", "list_presets": "presets", "load_models": "models.pool",
    "generate_stream": "decode.engine", "Ensemble": "decode.engine", "METHODS": "align",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ensemble' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = sorted(_EXPORTS)
